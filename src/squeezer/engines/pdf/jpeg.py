"""JPEG (DCTDecode) encoding, quality estimation and lossless re-optimisation.

Encoder choice, measured with ``bench/jpeg_encoders.py`` (bytes needed for equal
RGB SSIM, relative to Pillow/libjpeg-turbo 4:2:0 with optimised Huffman tables;
geometric mean over photographic images from the corpus plus synthetic photos,
768 px crops; lower is better):

| encoder | SSIM 0.90 | 0.93 | 0.95 | 0.97 | 0.98 | ms/MP |
|---|---|---|---|---|---|---|
| pillow 4:2:0 (baseline) | 1.000 | 1.000 | 1.000 | 1.000 | 1.000 | 7 |
| pillow 4:4:4 | 1.005 | 1.068 | 1.053 | 1.048 | 1.056 | 10 |
| pillow 4:2:0 progressive | 0.973 | 0.969 | 0.963 | 0.952 | 0.948 | 16 |
| pillow 4:2:0 + mozjpeg-lossless | 0.946 | 0.952 | 0.954 | 0.943 | 0.937 | 52 |
| pillow 4:4:4 + mozjpeg-lossless | 0.937 | 1.007 | 1.003 | 0.989 | 0.991 | 86 |
| jpegli (pyjpegli) | 0.954 | 0.987 | 0.940 | 0.944 | 0.962 | 8 |
| jpegli + mozjpeg-lossless | **0.837** | **0.894** | **0.864** | **0.868** | **0.871** | 53 |

(10 images: 8 corpus photos/scans, 2 synthetic; n = 6-7 images per column where
both curves reach the level.)  At equal *nominal* quality (45, 60, 75, 85) jpegli
+ mozjpeg gives the same mean SSIM as Pillow + mozjpeg (0.875/0.879, 0.900/0.899,
0.929/0.927, 0.951/0.951) with 14-15 % fewer bytes, so the two quality scales are
used interchangeably.  (A full mozjpeg encoder with trellis quantisation has no
pip wheel here: imagecodecs ships its mozjpeg codec as a stub.)

Choice: colour images go through jpegli (``pyjpegli``, RGB input only) and then
mozjpeg's lossless re-optimisation (progressive scans, optimal Huffman tables);
grayscale images through Pillow (libjpeg-turbo, which jpegli's binding cannot be
given) and the same re-optimisation.  Encoding costs ~50 ms per megapixel, most
of it the progressive-scan search; fast enough next to decoding and resampling.

Quality estimation: a JPEG carries its quantisation tables, not its quality
setting.  :func:`estimate_quality` fits the IJG quality whose scaled standard
luminance table is closest to the image's first table; re-encoding at a higher
quality than that would spend bytes on the previous encoder's artefacts.
"""

from __future__ import annotations

import io
from functools import lru_cache

import numpy as np
from PIL import Image, JpegImagePlugin

from squeezer.engines.ssim import Similarity

try:
    import pyjpegli as _jpegli
except ImportError:  # pragma: no cover - the dependency is declared
    _jpegli = None
try:  # lossless Huffman/progressive re-optimisation (jpegtran-like), optional
    import mozjpeg_lossless_optimization as _moz
except ImportError:  # pragma: no cover - the dependency is declared
    _moz = None

#: The IJG standard luminance quantisation table (ITU T.81 Annex K), natural order.
STD_LUMINANCE = np.array([
    16, 11, 10, 16, 24, 40, 51, 61,
    12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56,
    14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77,
    24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
], dtype=np.float64)


def _scaled_table(quality: int) -> np.ndarray:
    quality = min(max(quality, 1), 100)
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((STD_LUMINANCE * scale + 50) / 100), 1, 255)


_TABLES = {q: np.log(_scaled_table(q)) for q in range(1, 101)}


def _jpegli_tables() -> dict[int, np.ndarray]:
    """jpegli's luminance tables per quality (its scale differs from the IJG one)."""
    tables: dict[int, np.ndarray] = {}
    if _jpegli is not None:
        pixels = bytes(16 * 16 * 3)
        for q in range(1, 101):
            try:
                im = Image.open(io.BytesIO(_jpegli.encode(pixels, 16, 16, q)))
                if not isinstance(im, JpegImagePlugin.JpegImageFile):  # (jpegli writes JPEG)
                    continue
                tables[q] = np.log(np.asarray(list(im.quantization[0]), dtype=np.float64))
            except (ValueError, RuntimeError, OSError, KeyError):
                continue
    return tables


@lru_cache(maxsize=1)
def _candidate_tables() -> tuple[np.ndarray, np.ndarray]:
    """(quality per row, log luminance table per row): the IJG tables, then jpegli's; once."""
    families = [_TABLES, _jpegli_tables()]
    qualities = np.array([q for family in families for q in family], dtype=np.int64)
    tables = np.array([family[q] for family in families for q in family], dtype=np.float64)
    return qualities, tables


def estimate_quality(image: Image.Image) -> int | None:
    """The quality (1-100) whose luminance table best matches ``image``'s, or None.

    Fitted against the IJG tables (libjpeg, libjpeg-turbo, Pillow, most
    scanners) and jpegli's (what :func:`encode` writes for colour), whose
    qualities mean the same visual quality.  Compared in log space: tables of
    other encoders differ in shape as well as in scale.
    """
    tables = getattr(image, "quantization", None)
    if not tables or not isinstance(tables, dict):
        return None
    first = tables.get(0)
    if first is None or len(first) != 64:
        return None
    logs = np.log(np.maximum(np.asarray(list(first), dtype=np.float64), 1))
    qualities, tables = _candidate_tables()
    errors = np.abs(tables - logs).sum(axis=1)
    return int(qualities[int(np.argmin(errors))])  # the first of equal errors, as a loop would


def encode(image: Image.Image, quality: int) -> bytes:
    """Encode an L, RGB or CMYK Pillow image as a JPEG for a PDF /DCTDecode stream.

    RGB: jpegli; otherwise Pillow (libjpeg-turbo) with optimised Huffman tables.
    Then mozjpeg's lossless re-optimisation when it is smaller.
    """
    return optimize_losslessly(_encode_plain(image, quality))


def _encode_plain(image: Image.Image, quality: int) -> bytes:
    """:func:`encode` without the lossless re-optimisation (the same pixels, more bytes)."""
    if image.mode == "RGB" and _jpegli is not None:
        try:
            return _jpegli.encode(image.tobytes(), image.width, image.height, quality)
        except (ValueError, RuntimeError):
            pass  # fall back to libjpeg-turbo
    buf = io.BytesIO()
    if image.mode == "CMYK":
        # Pillow writes Adobe-inverted CMYK; PDF readers invert it back with /Decode
        image.save(buf, "JPEG", quality=quality, optimize=True)
    else:
        image.save(buf, "JPEG", quality=quality, optimize=True,
                   subsampling=0 if image.mode == "L" else 2)
    return buf.getvalue()


# --- perceptual quality selection ----------------------------------------------------------

#: The lowest quality :func:`choose_quality` ever picks, whatever the floor.
SEARCH_LOWEST = 25
#: Distance between the qualities :func:`choose_quality` tries.
SEARCH_STEP = 5
#: The search measures a mosaic of tiles of about this many pixels, not the whole image.
SAMPLE_PIXELS = 1 << 17
#: Tile side; a multiple of 16 so that tiles keep the image's 8x8 blocks and 2x2 chroma MCUs.
TILE = 64


def mosaic(image: Image.Image, pixels: int = SAMPLE_PIXELS) -> Image.Image:
    """The image itself when small, else a grid of evenly spread tiles pasted together.

    Tiles start on multiples of 16 pixels, so each sees the JPEG block grid it
    would see in the whole image; an even spread (not the busiest tiles) keeps
    the sample's mean SSIM an estimate of the whole image's.
    """
    width, height = image.size
    if width * height <= pixels or width < 2 * TILE or height < 2 * TILE:
        return image
    per_side = max(2, int((pixels / (TILE * TILE)) ** 0.5))
    cols = min(per_side, width // TILE)
    rows = min(per_side, height // TILE)
    out = Image.new(image.mode, (cols * TILE, rows * TILE))
    for r in range(rows):
        y = (height - TILE) * r // max(1, rows - 1) // 16 * 16
        for c in range(cols):
            x = (width - TILE) * c // max(1, cols - 1) // 16 * 16
            out.paste(image.crop((x, y, x + TILE, y + TILE)), (c * TILE, r * TILE))
    return out


def _planes(image: Image.Image) -> np.ndarray:
    """What the similarity is measured on: luma for colour (what a reader sees first, and what
    the page checks render), the samples for gray and for CMYK (each ink plane); H x W x C."""
    if image.mode == "RGB":
        image = image.convert("L")
    arr = np.asarray(image)
    return arr[:, :, None] if arr.ndim == 2 else arr


def similarity(references: list[Similarity], data: bytes) -> float:
    """Mean SSIM of the decoded JPEG ``data``'s planes (:func:`_planes`) against ``references``."""
    decoded = _planes(Image.open(io.BytesIO(data)))
    if decoded.shape[2] != len(references):
        return 0.0
    return float(np.mean([ref(decoded[:, :, c]) for c, ref in enumerate(references)]))


def choose_quality(image: Image.Image, floor: float, cap: int,
                   lowest: int = SEARCH_LOWEST) -> int:
    """The lowest quality of a ladder from ``lowest`` to ``cap`` whose JPEG keeps SSIM >= ``floor``.

    Measured on a tile mosaic of ``image`` (about 0.1 megapixel), at the
    image's own resolution, against the pixels about to be encoded (after any
    downsampling).  The rungs are tried upwards, :data:`SEARCH_STEP` apart, and
    the first that passes wins; ``cap`` when none below it does.  Not a
    bisection: SSIM is not monotone in quality (a re-encoded JPEG loses less
    where the new quantisation steps line up with the old ones; measured on
    the corpus, quality 29 can beat 41), so a bisection would skip the cheap
    rungs that pass.  At most ``(cap - lowest) / SEARCH_STEP`` encodes.
    """
    if cap <= lowest:
        return cap
    sample = mosaic(image)
    planes = _planes(sample)
    references = [Similarity(planes[:, :, c]) for c in range(planes.shape[2])]
    for quality in range(lowest, cap, SEARCH_STEP):
        if similarity(references, _encode_plain(sample, quality)) >= floor:
            return quality
    return cap


def optimize_losslessly(data: bytes) -> bytes:
    """Re-pack a JPEG's entropy coding without touching its coefficients; the smaller wins."""
    if _moz is None:
        return data
    try:
        out = _moz.optimize(data)
    except (ValueError, RuntimeError):
        return data
    if len(out) >= len(data) or adobe_marker(out) != adobe_marker(data):
        return data
    return out


def adobe_marker(data: bytes) -> tuple[bool, int | None]:
    """(has an Adobe APP14 segment, its colour transform byte) — readers use it to interpret colours."""
    pos = 2
    n = len(data)
    while pos + 4 <= n and data[pos] == 0xFF:
        marker = data[pos + 1]
        if marker in (0xDA, 0xD9):  # start of scan / end of image
            break
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xEE and data[pos + 4:pos + 9] == b"Adobe":
            transform = data[pos + 15] if pos + 15 < n else None
            return True, transform
        pos += 2 + length
    return False, None
