"""JPEG output: jpegli + mozjpeg's lossless re-pack, the PDF engine's measured best.

``bench/jpeg_encoders.py`` measured jpegli (``pyjpegli``) followed by mozjpeg's
lossless re-optimisation (progressive scans, optimal Huffman tables) at
0.84-0.89 x the bytes of Pillow/libjpeg-turbo at equal SSIM; the table and the
choice are in :mod:`squeezer.engines.pdf.jpeg`, which this module reuses.

Chroma subsampling by content: jpegli's binding always writes 4:2:0.  That is
invisible on photographs but smears saturated edges (red text, flat graphics);
when the 4:2:0 result's chroma SSIM falls below the luma floor, the image is
encoded 4:4:4 by libjpeg-turbo instead (and re-packed the same way).

Per image, libjpeg-turbo 4:2:0 (+ the same re-pack) is searched too and the
smaller result at the floor wins: on strongly coloured texture jpegli needs
more bytes for the same luma SSIM (``bench/image_bench.py``).

A JPEG input is never re-encoded above its own estimated quality (that would
spend bytes on the previous encoder's artefacts), and its lossless re-pack
(coefficients untouched) is always a candidate: the smaller of the two wins.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from squeezer.engines.pdf import jpeg as pdfjpeg


def encode(image: Image.Image, quality: int, subsampling: str = "4:2:0") -> bytes:
    """A baseline-free (progressive, optimised) JPEG of an L or RGB image, no metadata."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if subsampling in ("4:4:4", "turbo") and image.mode == "RGB":
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality, optimize=True,
                   subsampling=0 if subsampling == "4:4:4" else 2)
        return pdfjpeg.optimize_losslessly(buf.getvalue())
    return pdfjpeg.encode(image, quality)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def chroma_ok(reference: Image.Image, data: bytes, floor: float) -> bool:
    """Whether a 4:2:0 result keeps the chroma planes' SSIM at ``floor`` (vs the reference)."""
    if reference.mode != "RGB":
        return True
    from squeezer.engines.image.quality import mosaic
    from squeezer.engines.pdf.jpeg import Similarity

    ref = mosaic(reference).convert("YCbCr")
    got = decode(data)
    got = mosaic(got) if got.size == reference.size else got
    got = got.convert("YCbCr")
    if got.size != ref.size:
        got = mosaic(decode(data)).convert("YCbCr")
    scores = []
    for c in (1, 2):
        a = np.asarray(ref.getchannel(c))
        b = np.asarray(got.getchannel(c))
        if a.shape != b.shape:
            return True
        scores.append(Similarity(a)(b))
    return min(scores) >= floor


def lossless_repack(data: bytes) -> bytes:
    """The same coefficients, re-packed by mozjpeg (markers dropped); the input if not smaller."""
    return pdfjpeg.optimize_losslessly(data)


def with_metadata(data: bytes, exif: bytes | None, icc: bytes | None) -> bytes:
    """``data`` with an APP1 Exif and APP2 ICC_PROFILE segments inserted after SOI."""
    if not exif and not icc:
        return data
    segments = b""
    if exif:
        payload = exif if exif.startswith(b"Exif\x00\x00") else b"Exif\x00\x00" + exif
        if len(payload) + 2 <= 0xFFFF:
            segments += b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    if icc:
        chunk = 65519 - 14
        parts = [icc[i:i + chunk] for i in range(0, len(icc), chunk)]
        if len(parts) <= 255:
            for n, part in enumerate(parts, 1):
                payload = b"ICC_PROFILE\x00" + bytes([n, len(parts)]) + part
                segments += b"\xff\xe2" + (len(payload) + 2).to_bytes(2, "big") + payload
    return data[:2] + segments + data[2:]


def source_quality_cap(quality: int | None, cap: int) -> int:
    return min(cap, quality) if quality else cap
