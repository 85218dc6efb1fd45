"""TIFF and BMP kept in their own format: lossless re-packs only.

A TIFF is an archival master more often than not, so keeping its format keeps
it lossless: the pixels re-written with Deflate (zlib level 9; Pillow's writer
cannot set a predictor).  BMP has no compression Pillow writes, so the only
gain is an 8-bit palette for images of at most 256 colours.  Asking for
``format: webp``/``avif``/``auto`` is the way to make either really small.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def tiff(frames: list[Image.Image], icc: bytes | None) -> bytes:
    buf = io.BytesIO()
    extra: dict = {"compression": "tiff_adobe_deflate"}
    if icc:
        extra["icc_profile"] = icc
    if len(frames) > 1:
        extra.update(save_all=True, append_images=frames[1:])
    frames[0].save(buf, "TIFF", **extra)
    return buf.getvalue()


def bmp(frame: Image.Image) -> bytes | None:
    """An exact 8-bit palette BMP, or None when the image has more than 256 colours or alpha."""
    if frame.mode not in ("RGB", "L"):
        return None
    if frame.mode == "L":
        paletted = frame
    else:
        colors = frame.getcolors(256)
        if colors is None:
            return None
        paletted = frame.quantize(len(colors), method=Image.Quantize.MAXCOVERAGE,
                                  dither=Image.Dither.NONE)
        if not np.array_equal(np.asarray(paletted.convert("RGB")), np.asarray(frame)):
            return None
    buf = io.BytesIO()
    paletted.save(buf, "BMP")
    return buf.getvalue()
