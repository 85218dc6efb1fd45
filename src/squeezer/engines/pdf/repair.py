"""Repairs for files qpdf refuses to open although a reader shows them.

qpdf's own recovery (a rebuilt cross-reference table) runs first, in
:mod:`document`; a cyclic page tree is flattened there too.  What is left are
files whose trailer names no usable document catalog (``unable to find /Root
dictionary``, ``unable to find page tree``): an incremental update whose
``/Root`` points at the wrong object, or a catalog whose ``/Pages`` is gone.
Ghostscript shows such files by searching the file for the catalog and the
page tree, and so does :func:`patched_root`: it writes a copy of the input with
one more incremental update (the original bytes untouched) naming the last
catalog in the file, with a page tree found the same way when the catalog's
own is not there.  Failing that, :func:`via_pdfium` asks PDFium, whose parser
is lenient about other things, to import every page it can read into a fresh
document (outlines, forms and tags do not survive that).

The repaired copy then goes through the normal pipeline, and the report says
the input was repaired and how.
"""

from __future__ import annotations

import re
from pathlib import Path

#: An object header followed by a dictionary.
_OBJECT = re.compile(rb"(?<![0-9])(\d{1,10})\s+(\d{1,5})\s+obj\s*<<")
_CATALOG = re.compile(rb"/Type\s*/Catalog\b")
_PAGES_ROOT = re.compile(rb"/Type\s*/Pages\b")
_PAGES_ENTRY = re.compile(rb"/Pages\s+(\d+)\s+(\d+)\s+R")
#: A /Pages entry whatever its value (a reference, or the number or name damage left).
_ANY_PAGES_ENTRY = re.compile(rb"/Pages(?:\s+\d+\s+\d+\s+R\b|\s*[^/>\s]+)")
#: How far after an object header its dictionary is looked at.
_WINDOW = 4096
#: Larger files are not searched byte by byte (the search reads the whole file into memory).
MAX_SEARCH_BYTES = 256 << 20


def _objects(data: bytes) -> dict[tuple[int, int], tuple[int, bytes]]:
    """(number, generation) -> (offset, the start of its dictionary); the last one wins."""
    found: dict[tuple[int, int], tuple[int, bytes]] = {}
    for match in _OBJECT.finditer(data):
        head = data[match.end() - 2:match.end() - 2 + _WINDOW]
        end = head.find(b"endobj")
        found[(int(match.group(1)), int(match.group(2)))] = (
            match.start(), head[:end] if end >= 0 else head)
    return found


def patched_root(src: Path, out: Path) -> str | None:
    """Write ``src`` plus an update whose trailer names the file's last catalog; return a
    sentence saying what was done, or None when the file has no catalog to name."""
    if src.stat().st_size > MAX_SEARCH_BYTES:
        return None
    data = src.read_bytes()
    objects = _objects(data)
    catalogs = sorted(((offset, ref, text) for ref, (offset, text) in objects.items()
                       if _CATALOG.search(text)), key=lambda c: c[0])
    if not catalogs:
        return None
    _, root, text = catalogs[-1]
    pages = _PAGES_ENTRY.search(text)
    update = b""
    said = f"the trailer named no usable document catalog; used object {root[0]} {root[1]} R"
    if pages is None or (int(pages.group(1)), int(pages.group(2))) not in objects \
            or not _PAGES_ROOT.search(objects[(int(pages.group(1)), int(pages.group(2)))][1]):
        tree = _page_tree_root(objects)
        if tree is None:
            return None
        dictionary = _dictionary(text)
        if dictionary is None:
            return None
        body = _ANY_PAGES_ENTRY.sub(b"", dictionary)
        body = body[:2] + b" /Pages %d %d R" % tree + body[2:]
        update += b"%d %d obj\n" % root + body + b"\nendobj\n"
        said += f" and the page tree at object {tree[0]} {tree[1]} R"
    size = max(n for n, _ in objects) + 1
    at = len(data) + 1 + len(update)
    offset = len(data) + 1
    xref = b"xref\n0 1\n0000000000 65535 f \n"
    if update:
        xref += b"%d 1\n%010d %05d n \n" % (root[0], offset, root[1])
    prev = re.findall(rb"startxref\s+(\d+)", data[-4096:])
    trailer = b"trailer\n<< /Size %d /Root %d %d R" % (size, *root)
    if prev:
        trailer += b" /Prev " + prev[-1]
    out.write_bytes(data + b"\n" + update + xref + trailer + b" >>\nstartxref\n%d\n%%%%EOF\n" % at)
    return said


def _page_tree_root(objects: dict[tuple[int, int], tuple[int, bytes]]) -> tuple[int, int] | None:
    """The /Pages node without a /Parent, the last in the file (None when there is none)."""
    roots = [(offset, ref) for ref, (offset, text) in objects.items()
             if _PAGES_ROOT.search(text) and b"/Kids" in text and b"/Parent" not in text]
    return max(roots)[1] if roots else None


def _dictionary(text: bytes) -> bytes | None:
    """The outermost ``<< … >>`` at the start of ``text`` (nested dictionaries counted)."""
    depth, i = 0, 0
    while i < len(text) - 1:
        pair = text[i:i + 2]
        if pair == b"<<":
            depth += 1
            i += 2
            continue
        if pair == b">>":
            depth -= 1
            i += 2
            if depth == 0:
                return text[:i]
            continue
        if text[i:i + 1] == b"(":  # a literal string may hold unbalanced brackets
            close = text.find(b")", i)
            i = close + 1 if close > 0 else len(text)
            continue
        i += 1
    return None


def via_pdfium(src: Path, out: Path, password: str | None) -> str | None:
    """Import every page PDFium reads from ``src`` into a fresh document at ``out``."""
    import pypdfium2 as pdfium

    from squeezer.engines.pdf.pdfium_lock import LOCK

    with LOCK:
        try:
            doc = pdfium.PdfDocument(str(src), password=password or None)
        except pdfium.PdfiumError:
            return None
        try:
            count = len(doc)
            if count == 0:
                return None
            fresh = pdfium.PdfDocument.new()
            try:
                fresh.import_pages(doc)
                fresh.save(str(out))
            finally:
                fresh.close()
        except pdfium.PdfiumError:
            return None
        finally:
            doc.close()
    return (f"qpdf could not read the file; PDFium's reading of its {count} page(s) was "
            f"rebuilt into a new document (outlines, forms and tags are lost)")
