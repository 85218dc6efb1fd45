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

A third candidate, libjpeg-turbo 4:2:0 with the chroma table at :data:`CHROMA_OFFSET`
qualities below the luma one (``turbo-lowchroma``), is kept only when its chroma
planes hold the floor less the chroma slack: 1-9 % fewer bytes at the same luma
SSIM on the bench's photos (pyjpegli exposes only a quality, so jpegli's own
distance and adaptive-quantisation knobs cannot be tried).

A JPEG input is never re-encoded above its own estimated quality (that would
spend bytes on the previous encoder's artefacts), and its lossless re-pack
(coefficients untouched) is always a candidate: the smaller of the two wins.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from squeezer.engines.pdf import jpeg as pdfjpeg

#: libjpeg's standard tables (Annex K), scaled by quality as libjpeg does
_STD_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40,
             57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24,
             35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98,
             112, 100, 103, 99]
_STD_CHROMA = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99,
               99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32
#: how many qualities below the luma table the ``turbo-lowchroma`` chroma table is
CHROMA_OFFSET = 15


def _scaled(table: list[int], quality: int) -> list[int]:
    quality = max(1, min(100, quality))
    factor = 5000 // quality if quality < 50 else 200 - 2 * quality
    return [min(255, max(1, (v * factor + 50) // 100)) for v in table]


def encode(image: Image.Image, quality: int, subsampling: str = "4:2:0") -> bytes:
    """A baseline-free (progressive, optimised) JPEG of an L or RGB image, no metadata.

    ``subsampling``: ``4:2:0`` (jpegli), ``turbo`` (libjpeg-turbo 4:2:0), ``4:4:4``
    (libjpeg-turbo) or ``turbo-lowchroma`` (libjpeg-turbo 4:2:0, coarser chroma table)."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if subsampling == "turbo-lowchroma" and image.mode == "RGB":
        buf = io.BytesIO()
        image.save(buf, "JPEG", optimize=True, subsampling=2,
                   qtables=[_scaled(_STD_LUMA, quality),
                            _scaled(_STD_CHROMA, max(5, quality - CHROMA_OFFSET))])
        return pdfjpeg.optimize_losslessly(buf.getvalue())
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
    from squeezer.engines.ssim import Similarity

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
