"""What a file is, from its first bytes (never its name).

Signatures from each format's specification: JPEG SOI, the PNG signature (APNG
is a PNG with an ``acTL`` chunk before the first ``IDAT``), ``GIF87a``/``GIF89a``,
RIFF ``WEBP`` (animated when the ``VP8X`` animation flag is set), ISO-BMFF
``ftyp`` brands for AVIF and HEIC/HEIF, TIFF byte-order marks, ``BM`` for BMP,
and an ``<svg`` root for SVG text.  PDF is recognised so the dispatcher can
hand it to the PDF engine; containers (ZIP and the formats built on it, tar,
gzip, xz, zstd, 7z) by :mod:`squeezer.engines.container.detect`, which reads a
ZIP's central directory to tell a DOCX from an XLSX or a JAR; video and audio
containers by :mod:`squeezer.engines.media.signatures`.  EPS/PostScript and
anything else is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from squeezer.engines.container import detect as _containers
from squeezer.engines.container.formats import ALIASES as _CONTAINER_ALIASES
from squeezer.engines.container.formats import FORMATS as _CONTAINERS
from squeezer.engines.errors import UnsupportedFormatError
from squeezer.engines.media import signatures as media

#: How many bytes :func:`sniff` reads: enough for an APNG's acTL after a large
#: iCCP/eXIf chunk and for an SVG's prolog and comments.
HEAD_BYTES = 64 * 1024

#: Canonical name -> file extension of that format.
EXTENSIONS = {
    "jpeg": "jpg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif", "heic": "heic",
    "tiff": "tif", "bmp": "bmp", "svg": "svg", "pdf": "pdf",
    **{fmt: row[0] for fmt, row in media.FORMATS.items()},
}
#: Canonical name -> media type (what the service records and serves).
MIME = {
    "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp",
    "avif": "image/avif", "heic": "image/heic", "tiff": "image/tiff", "bmp": "image/bmp",
    "svg": "image/svg+xml", "pdf": "application/pdf",
    **{fmt: row[1] for fmt, row in media.FORMATS.items()},
}
#: Extensions a user may already use for a format (kept in output names).
ALIASES = {"jpeg": {"jpg", "jpeg", "jpe", "jfif"}, "tiff": {"tif", "tiff"},
           "heic": {"heic", "heif", "hif"}, **media.ALIASES}
# containers: OOXML, ODF, EPUB, ZIP, JAR, APK, tar (plain, gz, xz, zst, bz2), gz, xz, zst, 7z
EXTENSIONS.update({name: ext for name, (ext, _, _) in _CONTAINERS.items()})
MIME.update({name: mime for name, (_, mime, _) in _CONTAINERS.items()})
ALIASES.update(_CONTAINER_ALIASES)

#: The message of the error for bytes no signature matches (the dispatcher then lets the PDF
#: engine's recovery try, since qpdf can rebuild a PDF whose header is missing).
UNKNOWN = ("not a supported file: expected a PDF, an image (JPEG, PNG, GIF, WebP, AVIF, HEIC, "
           "TIFF, BMP, SVG), a video (MP4, MOV, MKV, WebM, AVI, MPEG-TS, 3GP), audio (MP3, "
           "AAC, M4A, WAV, FLAC, OGG, Opus, AIFF), an office document, e-book or archive")

_AVIF_BRANDS = {b"avif", b"avis"}
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1",
                b"mif2", b"heif"}
_SVG_ROOT = re.compile(
    rb"^(?:\s|<\?xml[^>]*\?>|<!--.*?-->|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>)*<(?:[\w.-]+:)?svg[\s>/]",
    re.DOTALL | re.IGNORECASE,
)


@dataclass(frozen=True)
class Kind:
    """A sniffed format: its canonical name and whether it is animated (as far as the header says)."""

    format: str  #: jpeg, png, …, svg, pdf, a media format (``media.FORMATS``) or a container
    animated: bool = False

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def sniff_file(path: Path) -> Kind:
    with open(path, "rb") as f:
        kind = sniff(f.read(HEAD_BYTES))
    if kind.format == "mp4" and media.mp4_has_video(path) is False:
        return Kind("m4a")  # an MP4 whose tracks are all sound (its brand did not say)
    if kind.format in _CONTAINERS:
        return Kind(_containers.refine(path, kind.format))
    return kind


def sniff(head: bytes) -> Kind:
    """The format of a file whose first bytes are ``head``, or :class:`UnsupportedFormatError`."""
    container = _containers.sniff_head(head)
    if container is not None:
        return Kind(container)
    if head.startswith(b"\xff\xd8\xff"):
        return Kind("jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Kind("png", _png_animated(head))
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Kind("gif", _gif_animated(head))
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Kind("webp", head[12:16] == b"VP8X" and bool(head[20] & 0x02))
    if head[4:8] == b"ftyp":
        brands = _ftyp_brands(head)
        if brands & _AVIF_BRANDS:
            return Kind("avif", head[8:12] == b"avis")
        if brands & _HEIF_BRANDS:
            return Kind("heic")
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return Kind("tiff")
    if head[:2] == b"BM" and len(head) >= 26:
        return Kind("bmp")
    fmt = media.sniff_media(head)
    if fmt is not None:
        return Kind(fmt)
    if media.is_playlist(head):
        raise UnsupportedFormatError(media.PLAYLIST_MESSAGE)
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if start.startswith((b"%!PS", b"\xc5\xd0\xd3\xc6")) or head.startswith(b"\x04%!"):
        raise UnsupportedFormatError(
            "EPS/PostScript is refused: it is a program, not an image (convert it to PDF first)"
        )
    if b"%PDF-" in head[:1024]:
        return Kind("pdf")
    if _SVG_ROOT.match(start):
        return Kind("svg")
    raise UnsupportedFormatError(UNKNOWN)


def _png_animated(head: bytes) -> bool:
    pos = 8
    while pos + 8 <= len(head):
        length = int.from_bytes(head[pos:pos + 4], "big")
        kind = head[pos + 4:pos + 8]
        if kind == b"acTL":
            return True
        if kind in (b"IDAT", b"IEND"):
            return False
        pos += 12 + length
    return False


def _gif_animated(head: bytes) -> bool:
    """A GIF is animated when it has a NETSCAPE loop block or more than one image descriptor
    in the bytes read (a cheap hint; the decoder's frame count decides)."""
    return b"NETSCAPE2.0" in head or head.count(b"\x00\x2c") > 1


def _ftyp_brands(head: bytes) -> set[bytes]:
    size = int.from_bytes(head[0:4], "big")
    size = min(max(size, 16), len(head))
    brands = {head[8:12]}
    brands.update(head[i:i + 4] for i in range(16, size - 3, 4))
    return brands
