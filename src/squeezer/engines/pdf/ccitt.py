"""CCITT Group 4 (ITU T.6) encoding of bitonal images, through Pillow's bundled libtiff.

Pillow writes a one-strip TIFF with ``compression="group4"``; the strip is
exactly the data a PDF ``/CCITTFaxDecode`` filter with ``/K -1`` decodes.  libtiff
codes 1-bits as black runs, so the image is handed over with ink as 1 and the
PDF side says ``/BlackIs1 false`` (decoded ink is 0, paper 1): a DeviceGray
1-bit image whose samples are those of the original.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, TiffImagePlugin

from squeezer.engines.pdf.pixels import open_as

ROWS_PER_STRIP = 278
STRIP_OFFSETS = 273
STRIP_BYTE_COUNTS = 279


def encode_g4(ink: np.ndarray) -> bytes:
    """G4 data of a boolean H x W array (True = the sample value 0, drawn black with DeviceGray)."""
    height, width = ink.shape
    image = Image.frombytes("1", (width, height), np.packbits(ink, axis=1).tobytes())
    buf = io.BytesIO()
    info = TiffImagePlugin.ImageFileDirectory_v2()
    info[ROWS_PER_STRIP] = height
    image.save(buf, "TIFF", compression="group4", tiffinfo=info)
    data = buf.getvalue()
    tiff = open_as(data, TiffImagePlugin.TiffImageFile)
    offsets = tiff.tag_v2.get(STRIP_OFFSETS)
    counts = tiff.tag_v2.get(STRIP_BYTE_COUNTS)
    if not offsets or not counts or len(offsets) != 1:
        raise ValueError("libtiff did not write a single strip")
    return data[offsets[0]: offsets[0] + counts[0]]


def decode(data: bytes, width: int, height: int, k: int = -1, black_is_1: bool = False) -> Image.Image:
    """The samples of a PDF /CCITTFaxDecode stream (Group 4, ``k < 0``) as an L image of 0 and 255.

    The data is wrapped in a one-strip TIFF for libtiff.  libtiff decodes black
    runs as 1-bits, shown black (0) under WhiteIsZero; a PDF reader gives them
    the sample 0 unless ``black_is_1``.  Pixel counts are the caller's to
    bound (the engine's budget), so Pillow's own bomb check is not made.
    """
    if k >= 0:
        raise ValueError("only Group 4 (K < 0) is decoded")
    tags = sorted([
        (256, 4, width), (257, 4, height), (258, 3, 1), (259, 3, 4),
        (262, 3, 0), (273, 4, 0), (277, 3, 1), (278, 4, height), (279, 4, len(data)),
    ])
    ifd_offset = 8
    data_offset = ifd_offset + 2 + 12 * len(tags) + 4
    out = bytearray(b"II*\x00" + ifd_offset.to_bytes(4, "little"))
    out += len(tags).to_bytes(2, "little")
    for tag, kind, value in tags:
        if tag == 273:
            value = data_offset
        size = 2 if kind == 3 else 4
        out += tag.to_bytes(2, "little") + kind.to_bytes(2, "little") + (1).to_bytes(4, "little")
        out += value.to_bytes(size, "little") + bytes(4 - size)
    out += bytes(4)  # no next IFD
    out += data
    image = open_as(bytes(out), TiffImagePlugin.TiffImageFile)
    image.load()
    gray = image.convert("L")
    return gray.point(lambda v: 255 - v) if black_is_1 else gray
