"""JPEG output: jpegli + mozjpeg's lossless re-pack, the PDF engine's measured best.

``bench/jpeg_encoders.py`` measured jpegli (``pyjpegli``) followed by mozjpeg's
lossless re-optimisation (progressive scans, optimal Huffman tables) at
0.84-0.89 x the bytes of Pillow/libjpeg-turbo at equal SSIM; the table and the
choice are in :mod:`squeezer.engines.pdf.jpeg`, which this module reuses.

Measured again at equal SSIMULACRA2 (the floor the engine keeps now) on 8 corpus photos:
jpegli 4:2:0 needed the fewest bytes on every one at score 78, and on all but three at 85,
where libjpeg-turbo 4:4:4 was 0.6-5.8 % smaller (colour detail: 4:2:0 reaches a high floor
only at a high quality).  libjpeg-turbo 4:2:0, with its standard or a coarser chroma table,
was 3-40 % larger everywhere and is no longer tried.  pyjpegli exposes only a quality (always
4:2:0, always three components).

Gray: an image whose pixels are gray (every channel within :data:`GRAY_SPREAD` of the others)
is written with one component by libjpeg-turbo, as a gray source was (three components of
the same gray cost up to 2.8 x the bytes).

A JPEG input is never re-encoded above its own estimated quality (that would
spend bytes on the previous encoder's artefacts), and its lossless re-pack
(coefficients untouched) is always a candidate: the smaller of the two wins.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from squeezer.engines.pdf import jpeg as pdfjpeg

#: an RGB image is gray when no pixel's channels differ by more than this
GRAY_SPREAD = 2


def encode(image: Image.Image, quality: int, subsampling: str = "4:2:0", *,
           repack: bool = True) -> bytes:
    """A progressive, optimised JPEG of an L or RGB image, no metadata.

    ``subsampling``: ``4:2:0`` (jpegli for RGB; libjpeg-turbo with one component for L) or
    ``4:4:4`` (libjpeg-turbo).  ``repack``: mozjpeg's lossless re-pack (same pixels, fewer
    bytes; a third of a search's time when every rung had it, so the search encodes without
    it and only the result is re-packed, :func:`repacked`)."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    if subsampling == "4:4:4" and image.mode == "RGB":
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=quality, optimize=True, subsampling=0)
        data = buf.getvalue()
    else:
        data = pdfjpeg._encode_plain(image, quality)
    return pdfjpeg.optimize_losslessly(data, trusted=True) if repack else data


def repacked(data: bytes) -> bytes:
    """mozjpeg's lossless re-pack of an encoder's output (the smaller of the two)."""
    return pdfjpeg.optimize_losslessly(data, trusted=True)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def is_gray(image: Image.Image) -> bool:
    """Whether an RGB image's pixels are all gray (a gray photo saved in colour)."""
    if image.mode == "L":
        return True
    if image.mode != "RGB":
        return False
    a = np.asarray(image).astype(np.int16)
    return bool(np.abs(a[..., 0] - a[..., 1]).max() <= GRAY_SPREAD
                and np.abs(a[..., 1] - a[..., 2]).max() <= GRAY_SPREAD)


def components(data: bytes) -> int:
    """The number of colour components in a JPEG's frame header (0 when none is found)."""
    pos = 2
    while pos + 4 <= len(data) and data[pos] == 0xFF:
        marker = data[pos + 1]
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            return data[pos + 9] if pos + 9 < len(data) else 0
        pos += 2 + length
    return 0


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
