"""The size a codec's own header declares, read without decoding anything.

A PDF image's dictionary says how large it is (``/Width``, ``/Height``), but a
decoder believes the codec: a JPEG whose dictionary said 64 x 64 while its SOF
marker said 65 000 x 65 000 drove the engine to 5 GB in 5 s.  So before
anything decodes an image, the size each codec will actually allocate is read
from the codec's own header and checked against the pixel limit:

* DCT (JPEG): the frame header (SOF0 … SOF15) :func:`jpeg_size`;
* JPX (JPEG 2000): the codestream's SIZ marker, inside a JP2 file's ``jp2c``
  box or bare :func:`jpx_size`;
* JBIG2: every page-information and region segment's width and height
  (:func:`jbig2_sizes`), in the stream and its ``/JBIG2Globals``;
* CCITT fax: ``/Columns`` and ``/Rows`` of the decode parameters (the
  decoder's row width comes from there, not from ``/Width``);
* Flate and LZW with a predictor: the predictor's row (``/Columns`` x
  ``/Colors`` x ``/BitsPerComponent``).

Each function returns what the header says, or None when it says nothing
usable (a damaged header is the decoder's problem, and it fails fast on it).
Pure functions on bytes: no PDF library, no image library.
"""

from __future__ import annotations

import struct
import zlib

#: JPEG frame-header markers (SOF0-SOF15, not DHT C4, JPG C8 or DAC CC)
_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
#: how far into a JPEG the frame header is looked for (APPn segments come first)
JPEG_HEAD_BYTES = 1 << 20


def jpeg_size(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from a JPEG's frame header; height 0 means "defined
    later by a DNL marker" (which libjpeg refuses)."""
    if data[:2] != b"\xff\xd8":
        return None
    pos, end = 2, min(len(data), JPEG_HEAD_BYTES)
    while pos + 4 <= end:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # TEM, RSTn: no length
            pos += 2
            continue
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in _SOF:
            if pos + 10 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5:pos + 9])
            return width, height, data[pos + 9]
        if marker in (0xD9, 0xDA) or length < 2:  # EOI or SOS before any frame header
            return None
        pos += 2 + length
    return None


def jpeg_in_flate(raw: bytes) -> bytes:
    """The first bytes of a JPEG wrapped in Flate (``[/FlateDecode /DCTDecode]``), enough for
    :func:`jpeg_size`; inflating stops there, so a bomb costs nothing."""
    try:
        return zlib.decompressobj().decompress(raw, JPEG_HEAD_BYTES)
    except zlib.error:
        return b""


def jpx_size(data: bytes) -> tuple[int, int, int] | None:
    """``(width, height, components)`` from a JPEG 2000 codestream's SIZ marker (ISO 15444-1
    A.5.1), bare or inside a JP2 file's ``jp2c`` box."""
    codestream = data if data[:4] == b"\xff\x4f\xff\x51" else _jp2c(data)
    if codestream is None or len(codestream) < 42 or codestream[:4] != b"\xff\x4f\xff\x51":
        return None
    xsiz, ysiz, xosiz, yosiz = struct.unpack(">IIII", codestream[8:24])
    components = int.from_bytes(codestream[40:42], "big")
    return max(0, xsiz - xosiz), max(0, ysiz - yosiz), components


def _jp2c(data: bytes) -> bytes | None:
    pos = 0
    while pos + 8 <= len(data):
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        header = 8
        if length == 1:
            if pos + 16 > len(data):
                return None
            length, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif length == 0:
            length = len(data) - pos
        if length < header:
            return None
        if kind == b"jp2c":
            return data[pos + header:pos + length]
        pos += length
    return None


#: JBIG2 segment types whose data starts with a region segment information field
#: (ISO 14492 7.4.1): text, pattern/halftone, generic and refinement regions
_JBIG2_REGIONS = {4, 6, 7, 20, 22, 23, 36, 38, 39, 40, 42, 43}
_JBIG2_PAGE_INFO = 48


def jbig2_sizes(data: bytes) -> list[tuple[int, int]]:
    """``(width, height)`` of every page-information and region segment of an embedded JBIG2
    stream (the PDF organisation: segments with no file header, ISO 32000 7.4.7).

    A height of 0xFFFFFFFF (striped page, height to come) is reported as 0:
    the regions inside it are checked on their own.  Parsing stops at a
    segment of unknown length or at damage; what was read so far is returned.
    """
    found: list[tuple[int, int]] = []
    pos = 0
    while pos + 11 <= len(data):
        number = int.from_bytes(data[pos:pos + 4], "big")
        flags = data[pos + 4]
        kind, long_page = flags & 0x3F, bool(flags & 0x40)
        pos += 5
        count = data[pos] >> 5
        if count == 7:
            if pos + 4 > len(data):
                break
            count = int.from_bytes(data[pos:pos + 4], "big") & 0x1FFFFFFF
            pos += 4 + (count + 8) // 8
        else:
            pos += 1
        if count > 1 << 16:
            break
        pos += count * (1 if number <= 256 else 2 if number <= 65536 else 4)
        pos += 4 if long_page else 1
        if pos + 4 > len(data):
            break
        length = int.from_bytes(data[pos:pos + 4], "big")
        pos += 4
        if kind == _JBIG2_PAGE_INFO or kind in _JBIG2_REGIONS:
            if pos + 8 > len(data):
                break
            width, height = struct.unpack(">II", data[pos:pos + 8])
            found.append((width, 0 if height == 0xFFFFFFFF else height))
        if length == 0xFFFFFFFF:
            break  # an immediate generic region of unknown length: its size is already read
        pos += length
    return found


def predictor_row_bytes(columns: int, colors: int, bits: int) -> int:
    """Bytes of one row a PNG or TIFF predictor works on (ISO 32000 7.4.4.4)."""
    return (max(columns, 0) * max(colors, 1) * max(bits, 1) + 7) // 8
