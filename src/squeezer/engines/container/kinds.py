"""What a container member is: its bytes first, its name only where bytes cannot tell.

Images, PDFs and containers are recognised by the same signatures as whole
files (:func:`squeezer.engines.sniff.sniff`), fonts by their sfnt/WOFF/EOT
tags, XML and HTML by their first markup.  CSS, JavaScript and JSON have no
signature: their extension decides, and JSON must also start like JSON.
"""

from __future__ import annotations

from squeezer.engines.container.formats import FORMATS
from squeezer.engines.errors import UnsupportedFormatError
from squeezer.engines.sniff import sniff

#: every member type a report names
IMAGES = {"jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "bmp", "svg"}
TEXT_EXTENSIONS = {
    "css": "css", "js": "js", "mjs": "js", "json": "json", "webmanifest": "json", "map": "json",
    "html": "html", "htm": "html",
}
_FONT_TAGS = {b"\x00\x01\x00\x00": "font", b"OTTO": "font", b"true": "font", b"wOFF": "font",
              b"wOF2": "font", b"ttcf": "font"}
_XML_EXT = {"xml", "rels", "opf", "ncx", "xhtml", "vml", "rdf", "xsl", "plist", "svg"}


def extension(name: str) -> str:
    base = name.rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[-1].lower() if "." in base else ""


def member_kind(name: str, head: bytes) -> str:
    """The member's type (see :data:`IMAGES`; ``font``, ``xml``, ``html``, ``css``, ``js``,
    ``json``, ``pdf``, a container format, ``media``, ``text`` or ``other``)."""
    if name.endswith("/"):
        return "directory"
    if not head:
        return "empty"
    ext = extension(name)
    if head[:4] in _FONT_TAGS:
        return "font"
    if len(head) > 36 and head[34:36] == b"LP" and ext == "eot":
        return "font"
    try:
        fmt = sniff(head).format
    except UnsupportedFormatError:
        fmt = ""
    if fmt and fmt in IMAGES | {"pdf"} | set(FORMATS):
        return fmt
    if fmt:
        return fmt  # a family installed later (video, audio): its own name
    if head[4:8] == b"ftyp" or head[:4] in (b"\x1aE\xdf\xa3", b"RIFF", b"OggS", b"fLaC", b"ID3\x03",
                                             b"ID3\x04") or head[:2] == b"\xff\xfb":
        return "media"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    lower = text[:256].lower()
    if lower.startswith((b"<!doctype html", b"<html")) or (
            ext in ("html", "htm") and lower.startswith(b"<")):
        return "html"
    if ext in TEXT_EXTENSIONS and TEXT_EXTENSIONS[ext] != "html":
        kind = TEXT_EXTENSIONS[ext]
        if kind == "json" and not text[:1] in (b"{", b"["):
            return "text"
        return kind
    if text.startswith(b"<?xml") or (ext in _XML_EXT and text.startswith(b"<")):
        if ext == "xhtml" or b"<html" in lower:
            return "xhtml"
        return "xml"
    if _looks_textual(head):
        return "text"
    return "other"


def _looks_textual(head: bytes) -> bool:
    sample = head[:4096]
    if b"\0" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start > len(sample) - 4  # a character cut at the end of the sample
    return True
