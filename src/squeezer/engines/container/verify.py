"""Checking a container before it is returned: it lists, every member inflates, it still opens.

- **ZIP**: the output is read back by :mod:`~squeezer.engines.container.zipread`
  (every member inflated, CRC-32 checked) and by Python's own :mod:`zipfile`
  (an independent reader) for the methods it knows.
- **OOXML**: the document opens in its maintained reader, python-docx,
  python-pptx or openpyxl, and has the same paragraphs (and table cells),
  slides (and their text), or sheets (and their cell values) as the input.  A
  package the reader refuses (a macro-enabled or template type it does not
  open, or a file it cannot read to begin with) is compared by the text of all
  its XML parts instead, and the report says so.
- **ODF**: odfpy loads it; paragraphs, headings, tables and pages and their
  text are the same (the text of a ``content.xml`` over
  :data:`ODFPY_MAX_BYTES` is compared with lxml: odfpy's DOM is slow there).
- **EPUB** and **website** checks live with their rules
  (:func:`squeezer.engines.container.epub.check`,
  :func:`squeezer.engines.container.website.check_references`).

A failed check never returns the output: the run keeps the input and says why.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path
from typing import Any

from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.container.zipread import open_zip
from squeezer.engines.limits import Limits

#: content.xml (expanded) above this is compared with lxml instead of odfpy: odfpy builds a
#: Python object per element, 4-15 CPU-s per load of a 7.5 MB content.xml (done twice, before
#: and after), more than the rest of the run on such a file (issue 17)
ODFPY_MAX_BYTES = 1 << 20
#: the label of the last-resort comparison: every XML part's text, when a reader refuses the file
XML_TEXT = "xml text"
TABLE_NS = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"


class VerificationFailed(Exception):
    """The output does not pass a check (the input is kept)."""


def zip_members(path: Path, limits: Limits) -> dict[str, bytes | None]:
    """Every member of the ZIP at ``path``, inflated and CRC-checked (None: not readable)."""
    out: dict[str, bytes | None] = {}
    try:
        with open_zip(path, ArchiveBudget(limits.model_copy(update={
                "max_archive_members": 0, "max_archive_bytes": 0}))) as z:
            for e in z.entries:
                out[e.name] = z.read(e) if e.readable and not e.is_dir else None
    except Exception as exc:  # noqa: BLE001 - any failure to read back is a failed check
        raise VerificationFailed(f"the output does not read back: {exc}") from None
    methods = set()
    try:
        with zipfile.ZipFile(path) as zf:
            methods = {i.compress_type for i in zf.infolist()}
            if methods <= {0, 8, 12, 14} and not any(i.flag_bits & 1 for i in zf.infolist()):
                bad = zf.testzip()
                if bad is not None:
                    raise VerificationFailed(f"zipfile finds {bad} damaged")
    except (zipfile.BadZipFile, OSError, NotImplementedError) as exc:
        raise VerificationFailed(f"zipfile cannot read the output: {exc}") from None
    return out


# --- document content, before and after -----------------------------------------------------


def document_signature(fmt: str, path: Path, parts: dict[str, bytes | None]) -> tuple[str, Any]:
    """``(how it was read, what must not change)`` for an OOXML or ODF document."""
    family = _family(fmt)
    try:
        if family == "word":
            return "python-docx", _docx(path)
        if family == "sheet":
            return "openpyxl", _xlsx(path)
        if family == "slides":
            return "python-pptx", _pptx(path)
        if family == "odf":
            content = parts.get("content.xml") or b""
            if len(content) <= ODFPY_MAX_BYTES:
                return "odfpy", _odf(path)
            return "lxml (content.xml too large for odfpy)", _odf_lxml(parts)
    except Exception:  # noqa: BLE001, S110 - the reader refuses it: compare the XML text
        pass
    return XML_TEXT, xml_text(parts)


def same_document(fmt: str, src: Path, before: dict[str, bytes | None], out: Path,
                  after: dict[str, bytes | None]) -> tuple[str, Any, bool]:
    """``(how it was read, the input's signature, whether the output's is the same)``.

    Both sides are read the same way: when the input's reader refuses it and the output's
    does not (odfpy, through defusedxml, refuses a manifest whose DOCTYPE names an external
    DTD, as OpenOffice 1.x/2.x wrote them; a rewritten manifest has none), the output is
    compared by XML text too."""
    label, want = document_signature(fmt, src, before)
    label_after, got = document_signature(fmt, out, after)
    if label_after != label and label == XML_TEXT:
        label_after, got = XML_TEXT, xml_text(after)
    return label, want, label_after == label and got == want


def _family(fmt: str) -> str:
    if fmt in ("docx", "docm", "dotx"):
        return "word"
    if fmt in ("xlsx", "xlsm", "xltx"):
        return "sheet"
    if fmt in ("pptx", "pptm", "ppsx", "potx"):
        return "slides"
    return "odf" if fmt.startswith(("od", "ot")) else "other"


def _docx(path: Path) -> Any:
    import docx

    doc = docx.Document(str(path))
    paragraphs = [p.text for p in doc.paragraphs]
    cells = [c.text for t in doc.tables for row in t.rows for c in row.cells]
    return {"paragraphs": len(paragraphs), "text": _digest(paragraphs + cells),
            "tables": len(doc.tables), "pictures": len(doc.inline_shapes)}


def _pptx(path: Path) -> Any:
    import pptx

    prs = pptx.Presentation(str(path))
    texts = []
    shapes = 0
    for slide in prs.slides:
        for shape in slide.shapes:
            shapes += 1
            if shape.has_text_frame:
                texts.append(shape.text_frame.text)
    return {"slides": len(prs.slides), "shapes": shapes, "text": _digest(texts)}


def _xlsx(path: Path) -> Any:
    import openpyxl

    # a file object: openpyxl refuses paths without an Excel extension (the run's scratch "out")
    with open(path, "rb") as f:
        return _workbook(openpyxl.load_workbook(f, read_only=True, data_only=False,
                                                keep_links=True))


def _workbook(wb: Any) -> Any:
    try:
        digest = hashlib.sha256()
        cells = 0
        for ws in wb.worksheets:
            for row in ws.iter_rows(values_only=True):
                for value in row:
                    if value is not None:
                        cells += 1
                        digest.update(repr(value).encode("utf-8", "replace") + b"\0")
        return {"sheets": list(wb.sheetnames), "cells": cells, "values": digest.hexdigest()}
    finally:
        wb.close()


def _odf(path: Path) -> Any:
    from odf import draw, opendocument, table, teletype, text

    doc = opendocument.load(str(path))
    paragraphs = doc.getElementsByType(text.P) + doc.getElementsByType(text.H)
    return {"paragraphs": len(paragraphs),
            "text": _digest([teletype.extractText(p) for p in paragraphs]),
            "tables": len(doc.getElementsByType(table.Table)),
            "pages": len(doc.getElementsByType(draw.Page))}


def _odf_lxml(parts: dict[str, bytes | None]) -> Any:
    from lxml import etree

    from squeezer.engines.container.odf import DRAW_NS, TEXT_NS

    root = etree.fromstring(parts.get("content.xml") or b"",
                            etree.XMLParser(resolve_entities=False, no_network=True,
                                            huge_tree=True))
    paragraphs = [el for el in root.iter(f"{{{TEXT_NS}}}p", f"{{{TEXT_NS}}}h")]
    return {"paragraphs": len(paragraphs),
            "text": _digest(["".join(p.itertext()) for p in paragraphs]),
            "tables": sum(1 for _ in root.iter(f"{{{TABLE_NS}}}table")),
            "pages": sum(1 for _ in root.iter(f"{{{DRAW_NS}}}page"))}


def xml_text(parts: dict[str, bytes | None]) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    digest = hashlib.sha256()
    count = 0
    for name in sorted(parts):
        data = parts[name]
        if data is None or not name.endswith(".xml") or name.startswith((
                "customXml/", "META-INF/", "_xmlsignatures/")):
            continue
        try:
            root = etree.fromstring(data, parser)
        except etree.XMLSyntaxError:
            continue
        count += 1
        digest.update(name.encode() + b"\0")
        for t in root.itertext():
            if t.strip():
                digest.update(t.encode("utf-8", "surrogatepass") + b"\0")
    return {"parts": count, "text": digest.hexdigest()}


def _digest(items: list[str]) -> str:
    h = hashlib.sha256()
    for item in items:
        h.update(item.encode("utf-8", "surrogatepass") + b"\0")
    return h.hexdigest()


def describe(label: str, signature: Any) -> str:
    counts = ", ".join(f"{v} {k}" for k, v in signature.items()
                       if isinstance(v, int)) if isinstance(signature, dict) else ""
    return f"{label}: opens{', ' + counts if counts else ''}; same text"
