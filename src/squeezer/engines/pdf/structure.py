"""Lossless structural clean-up: junk removal, requested removals, stream deduplication.

Everything here keeps what a reader shows.  Page thumbnails, /PieceInfo
(private data of the application that wrote the file) and duplicated streams
are invisible; the ``remove_*`` knobs drop visible or interactive features
only when asked.  Names follow the PDF specification (ISO 32000) so each step
can be checked against it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.pdf import metadata
from squeezer.engines.pdf.options import Settings
from squeezer.engines.report import Report

#: Keys of /FontDescriptor that hold an embedded font program (ISO 32000 §9.8.1).
FONT_FILE_KEYS = ("/FontFile", "/FontFile2", "/FontFile3")


def clean(pdf: pikepdf.Pdf, settings: Settings, report: Report) -> None:
    """Drop invisible junk, then everything the settings ask to remove.

    Each removal that found something to remove is listed in ``report.requested_changes``:
    the pipeline keeps such a result even when it is not smaller, because
    handing back the original would hand back what the caller asked to remove.
    """
    drop_private_data(pdf)
    metadata.slim(pdf, settings.lean_metadata)
    drop_dead_destinations(pdf)
    removals = (
        ("form_fields", settings.remove_form_fields, flatten_form_fields),
        ("annotations", settings.remove_annotations, remove_annotations),
        ("javascript", settings.remove_javascript, remove_javascript),
        ("embedded_files", settings.remove_embedded_files, remove_embedded_files),
        ("bookmarks", settings.remove_bookmarks, remove_bookmarks),
        ("metadata", settings.remove_metadata, remove_metadata),
    )
    report.requested_changes = [name for name, asked, remove in removals if asked and remove(pdf)]
    if settings.linearize and not pdf.is_linearized:
        report.requested_changes.append("linearize")
    if settings.remove_encryption and pdf.is_encrypted:
        report.requested_changes.append("encryption")
    pdf.remove_unreferenced_resources()


def _delete(obj: pikepdf.Object, *keys: str) -> bool:
    """Delete ``keys`` from ``obj`` (a dictionary or stream; pikepdf types ``pdf.Root`` as a
    plain Object); True when any was there."""
    found = False
    for key in keys:
        if key in obj:
            del obj[key]
            found = True
    return found


def _form_xobjects(pdf: pikepdf.Pdf) -> Iterator[Stream]:
    for obj in pdf.objects:
        if isinstance(obj, Stream) and obj.get("/Subtype") == Name.Form:
            yield obj


def drop_private_data(pdf: pikepdf.Pdf) -> None:
    """Remove page thumbnails (/Thumb; their XMP copies go in :mod:`metadata`) and /PieceInfo
    application data."""
    _delete(pdf.Root, "/PieceInfo")
    for page in pdf.pages:
        _delete(page.obj, "/Thumb", "/PieceInfo")
    for form in _form_xobjects(pdf):
        _delete(form, "/PieceInfo")


def drop_dead_destinations(pdf: pikepdf.Pdf) -> int:
    """Unlink destinations that lead to page objects outside the page tree; return how many.

    A damaged page tree (a /Kids cycle, flattened by :mod:`document` to the
    pages readers show) leaves the other page objects reachable only through
    bookmarks, links and named destinations, which qpdf then writes with all
    their content, fonts and images: 81 % of a 1-page file of the corpus.  A
    reader cannot go to such a page anyway.  The bookmarks and link annotations
    stay (their count and text are unchanged); only their targets go.
    """
    pages = {page.obj.objgen for page in pdf.pages}
    orphans = {obj.objgen for obj in pdf.objects
               if isinstance(obj, Dictionary) and obj.get("/Type") == Name.Page
               and obj.objgen not in pages}
    if not orphans:
        return 0

    def dead(target: object) -> bool:
        """A destination (array, or a GoTo action's /D) whose page is an orphan."""
        if isinstance(target, Dictionary) and target.get("/S") == Name.GoTo:
            target = target.get("/D")
        return (isinstance(target, Array) and len(target) > 0
                and isinstance(target[0], Dictionary) and target[0].is_indirect
                and target[0].objgen in orphans)

    dropped = 0
    holders = list(_outline_items(pdf))
    for page in pdf.pages:
        holders += [a for a in _annotations(page) or [] if isinstance(a, Dictionary)]
    for holder in holders:
        for key in ("/Dest", "/A"):
            value = holder.get(key)
            if value is not None and dead(value):
                del holder[key]
                dropped += 1
    if dead(pdf.Root.get("/OpenAction")):
        del pdf.Root["/OpenAction"]
        dropped += 1
    dests = pdf.Root.get("/Dests")
    if isinstance(dests, Dictionary):
        for key in list(dests.keys()):
            value = dests[key]
            if dead(value) or (isinstance(value, Dictionary) and dead(value.get("/D"))):
                del dests[key]
                dropped += 1
    names = pdf.Root.get("/Names")
    tree = names.get("/Dests") if isinstance(names, Dictionary) else None
    if isinstance(tree, Dictionary):
        dropped += _drop_from_name_tree(tree, lambda value: dead(value) or (
            isinstance(value, Dictionary) and dead(value.get("/D"))))
    return dropped


def _outline_items(pdf: pikepdf.Pdf) -> Iterator[Dictionary]:
    """Every outline item (first/next links followed once each, so a cycle ends)."""
    outlines = pdf.Root.get("/Outlines")
    start = outlines.get("/First") if isinstance(outlines, Dictionary) else None
    stack, seen = [start], set()
    while stack:
        item = stack.pop()
        if not isinstance(item, Dictionary) or (item.is_indirect and item.objgen in seen):
            continue
        if item.is_indirect:
            seen.add(item.objgen)
        yield item
        stack += [item.get("/Next"), item.get("/First")]


def _drop_from_name_tree(node: Dictionary, dead, depth: int = 0) -> int:
    """Remove the entries of a name tree whose value ``dead`` says to; return how many."""
    if depth > 32:
        return 0
    dropped = 0
    leaf = node.get("/Names")
    if isinstance(leaf, Array):
        kept = []
        for i in range(0, len(leaf) - 1, 2):
            if dead(leaf[i + 1]):
                dropped += 1
            else:
                kept += [leaf[i], leaf[i + 1]]
        if dropped:
            node.Names = Array(kept)
    kids = node.get("/Kids")
    if isinstance(kids, Array):
        for kid in kids:
            if isinstance(kid, Dictionary):
                dropped += _drop_from_name_tree(kid, dead, depth + 1)
    return dropped


def _annotations(page: pikepdf.Page) -> Array | None:
    annots = page.obj.get("/Annots")
    return annots if isinstance(annots, Array) else None


def remove_annotations(pdf: pikepdf.Pdf) -> bool:
    """Remove comments, links and other annotations; form widgets are a separate knob."""
    removed = False
    for page in pdf.pages:
        annots = _annotations(page)
        if annots is None:
            continue
        kept = [a for a in annots if isinstance(a, Dictionary) and a.get("/Subtype") == Name.Widget]
        removed |= len(kept) != len(annots)
        if kept:
            page.obj.Annots = Array(kept)
        else:
            del page.obj["/Annots"]
    return removed


def flatten_form_fields(pdf: pikepdf.Pdf) -> bool:
    """Burn form fields' appearances into the page and drop the interactive form.

    qpdf flattens every annotation at once, so non-widget annotations are set
    aside while the widgets are flattened and put back afterwards.
    """
    if "/AcroForm" not in pdf.Root:
        return False
    try:
        pdf.generate_appearance_streams()
    except pikepdf.PdfError:
        pass  # fields without generatable appearances flatten as they are
    set_aside: dict[int, list[pikepdf.Object]] = {}
    for index, page in enumerate(pdf.pages):
        annots = _annotations(page)
        if annots is None:
            continue
        others = [a for a in annots if not (isinstance(a, Dictionary) and a.get("/Subtype") == Name.Widget)]
        widgets = [a for a in annots if a not in others]
        set_aside[index] = others
        page.obj.Annots = Array(widgets)
    pdf.flatten_annotations(mode="all")
    for index, others in set_aside.items():
        page = pdf.pages[index]
        if others:
            page.obj.Annots = Array(others)
        else:
            _delete(page.obj, "/Annots")
    return _delete(pdf.Root, "/AcroForm")


def remove_javascript(pdf: pikepdf.Pdf) -> bool:
    """Remove document JavaScript, JavaScript actions and additional-actions (/AA)."""
    removed = False
    names = pdf.Root.get("/Names")
    if isinstance(names, Dictionary):
        removed |= _delete(names, "/JavaScript")
    open_action = pdf.Root.get("/OpenAction")
    if isinstance(open_action, Dictionary) and open_action.get("/S") == Name.JavaScript:
        removed |= _delete(pdf.Root, "/OpenAction")
    removed |= _delete(pdf.Root, "/AA")
    for page in pdf.pages:
        removed |= _delete(page.obj, "/AA")
        for annot in _annotations(page) or []:
            if not isinstance(annot, Dictionary):
                continue
            removed |= _delete(annot, "/AA")
            action = annot.get("/A")
            if isinstance(action, Dictionary) and action.get("/S") == Name.JavaScript:
                removed |= _delete(annot, "/A")
    acroform = pdf.Root.get("/AcroForm")
    if isinstance(acroform, Dictionary):
        for field in _walk_fields(acroform.get("/Fields")):
            removed |= _delete(field, "/AA")
    return removed


def _walk_fields(fields: object) -> Iterator[Dictionary]:
    seen: set[tuple[int, int]] = set()
    stack = list(fields) if isinstance(fields, Array) else []
    while stack:
        field = stack.pop()
        if not isinstance(field, Dictionary):
            continue
        if field.is_indirect:
            if field.objgen in seen:
                continue
            seen.add(field.objgen)
        yield field
        kids = field.get("/Kids")
        if isinstance(kids, Array):
            stack.extend(kids)


def remove_embedded_files(pdf: pikepdf.Pdf) -> bool:
    """Remove the embedded-files name tree, associated files and file attachments."""
    removed = False
    names = pdf.Root.get("/Names")
    if isinstance(names, Dictionary):
        removed |= _delete(names, "/EmbeddedFiles")
    removed |= _delete(pdf.Root, "/AF")
    for page in pdf.pages:
        annots = _annotations(page)
        if annots is None:
            continue
        kept = [a for a in annots
                if not (isinstance(a, Dictionary) and a.get("/Subtype") == Name.FileAttachment)]
        if len(kept) != len(annots):
            removed = True
            if kept:
                page.obj.Annots = Array(kept)
            else:
                del page.obj["/Annots"]
    return removed


def remove_bookmarks(pdf: pikepdf.Pdf) -> bool:
    if pdf.Root.get("/PageMode") == Name.UseOutlines:
        pdf.Root.PageMode = Name.UseNone
    return _delete(pdf.Root, "/Outlines")


def remove_metadata(pdf: pikepdf.Pdf) -> bool:
    """Remove XMP streams everywhere and the document information dictionary."""
    removed = _delete(pdf.Root, "/Metadata")
    for obj in pdf.objects:
        if isinstance(obj, (Dictionary, Stream)) and "/Metadata" in obj:
            removed |= _delete(obj, "/Metadata")
    info = pdf.trailer.get("/Info")
    if info is not None:
        removed |= not isinstance(info, Dictionary) or len(info.keys()) > 0
        del pdf.trailer["/Info"]
    return removed


# --- deduplication -----------------------------------------------------------------


def _stream_key(stream: Stream) -> tuple[bytes, str]:
    """Identity of a stream: the digest of all its bytes plus its dictionary sans /Length.

    ICC profiles are compared by content instead, ignoring the header's
    creation date and profile ID: writers embed one copy of the same profile
    per image, stamped with a different date each time, and the colour
    transform the profile defines does not depend on either field.
    """
    profile = _icc_profile(stream)
    if profile is not None:
        digest = hashlib.sha256(b"icc" + profile).digest()
        skip: tuple[str, ...] = ("/Length", "/Filter", "/DecodeParms")
    else:
        digest = hashlib.sha256(stream.read_raw_bytes()).digest()
        skip = ("/Length",)
    items = sorted((str(k), v) for k, v in stream.stream_dict.items() if k not in skip)
    described = "".join(k + _unparse(v) for k, v in items)
    return digest, described


#: ICC header fields that name a copy rather than the colour space (ICC.1:2010 §7.2):
#: the creation date (bytes 24-35) and the profile ID (bytes 84-99).
_ICC_COPY_FIELDS = ((24, 36), (84, 100))


def _icc_profile(stream: Stream) -> bytes | None:
    """The profile bytes with their copy-specific fields zeroed, if ``stream`` is an ICC profile."""
    if "/N" not in stream.stream_dict or "/Subtype" in stream.stream_dict:
        return None
    try:
        data = bytearray(stream.read_bytes())
    except (pikepdf.PikepdfError, UnicodeDecodeError):
        return None
    if len(data) < 128 or data[36:40] != b"acsp":
        return None
    for start, end in _ICC_COPY_FIELDS:
        data[start:end] = bytes(end - start)
    return bytes(data)


def _unparse(value: object) -> str:
    """PDF syntax of a value; pikepdf hands scalars back as Python objects."""
    if isinstance(value, pikepdf.Object):
        return bytes(value.unparse()).decode("latin-1")
    return repr(value)


def _font_programs(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    found: set[tuple[int, int]] = set()
    for obj in pdf.objects:
        if isinstance(obj, Dictionary) and obj.get("/Type") == Name.FontDescriptor:
            for key in FONT_FILE_KEYS:
                program = obj.get(key)
                if isinstance(program, Stream) and program.is_indirect:
                    found.add(program.objgen)
    return found


def deduplicate_streams(pdf: pikepdf.Pdf, report: Report, max_passes: int = 4) -> None:
    """Point every reference to a stream at one copy of identical streams.

    Streams are identical when all their (encoded) bytes and their dictionaries
    match.  Dictionaries may reference other streams (an image's /SMask), so a
    pass that merged something is followed by another, until nothing changes.
    The copies become unreferenced and qpdf does not write them.
    """
    fonts = _font_programs(pdf)
    saved = 0
    # Merged copies stay in pdf.objects (unreferenced) until save; later passes
    # must not count or merge them again.
    merged: set[tuple[int, int]] = set()
    for _ in range(max_passes):
        canonical: dict[tuple[bytes, str], Stream] = {}
        replace: dict[tuple[int, int], Stream] = {}
        for obj in pdf.objects:
            if not isinstance(obj, Stream) or not obj.is_indirect or obj.objgen in merged:
                continue
            key = _stream_key(obj)
            first = canonical.setdefault(key, obj)
            if first.objgen != obj.objgen:
                replace[obj.objgen] = first
        if not replace:
            break
        for objgen, first in replace.items():
            length = int(pdf.get_object(objgen).stream_dict.get("/Length", 0))
            saved += length
            subtype = first.stream_dict.get("/Subtype")
            if subtype == Name.Image:
                report.images.deduplicated += 1
            elif objgen in fonts:
                report.fonts_deduplicated += 1
        _redirect_references(pdf, replace)
        merged.update(replace)
    report.steps["deduplication"] = report.steps.get("deduplication", 0) + saved


def _redirect_references(pdf: pikepdf.Pdf, replace: dict[tuple[int, int], Stream]) -> None:
    """Rewrite every reference to a key of ``replace`` into a reference to its value."""

    def visit(container: Dictionary | Array | Stream) -> None:
        if isinstance(container, Array):
            for i, value in enumerate(container):
                if not isinstance(value, pikepdf.Object):
                    continue
                if value.is_indirect:
                    if value.objgen in replace:
                        container[i] = replace[value.objgen]
                elif isinstance(value, (Dictionary, Array)):
                    visit(value)
            return
        for key in list(container.keys()):
            value = container[key]
            if not isinstance(value, pikepdf.Object):
                continue
            if value.is_indirect:
                if value.objgen in replace:
                    container[key] = replace[value.objgen]
            elif isinstance(value, (Dictionary, Array)):
                visit(value)

    for obj in pdf.objects:
        if isinstance(obj, (Dictionary, Array, Stream)):
            visit(obj)
    if isinstance(pdf.trailer, Dictionary):  # (it always is: pikepdf types it as an Object)
        visit(pdf.trailer)
