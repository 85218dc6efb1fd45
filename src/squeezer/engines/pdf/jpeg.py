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

That table judges SSIM at the image's own resolution.  Judged where a page shows it
(:func:`choose_size_and_quality`, at the level's resolution), libjpeg-turbo 4:2:0 wins on
photographs with fine grain or noise, which jpegli spends bytes on and a page drawn smaller
averages away (issue 18: a 300 dpi synthetic photo page at 150 dpi, 118 KB against 131 KB for
SSIM 0.960 rendered at 100 dpi).  So colour searches measure both encoders and keep the
fewer bytes (:func:`encoders`), and a fixed quality keeps the smaller encoding
(:data:`SMALLEST`).  The searches bisect to the single quality between the ladder's rungs.

Quality estimation: a JPEG carries its quantisation tables, not its quality
setting.  :func:`estimate_quality` fits the IJG quality whose scaled standard
luminance table is closest to the image's first table; re-encoding at a higher
quality than that would spend bytes on the previous encoder's artefacts.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, JpegImagePlugin

from squeezer.engines import mozjpeg
from squeezer.engines.ssim import Similarity

try:
    import pyjpegli as _jpegli
except ImportError:  # pragma: no cover - the dependency is declared
    _jpegli = None

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


#: The encoders: jpegli (colour only) and libjpeg-turbo through Pillow (4:2:0 for colour).
JPEGLI = "jpegli"
LIBJPEG = "libjpeg"
#: :func:`encode` with each of :func:`encoders`, the fewest bytes kept: for a fixed quality
#: (no search), where the two scales keep about the same SSIM on average (the table above)
SMALLEST = "smallest"


def encoders(mode: str) -> tuple[str, ...]:
    """The encoders a search compares for an image of Pillow ``mode``.

    Colour: both.  jpegli wins on most photographs at the image's own resolution, but
    it spends bytes on fine texture (grain, noise, foliage) that a page drawn at the
    level's resolution averages away: on such images libjpeg-turbo keeps the same
    SSIM where the reader sees them for ~10 % fewer bytes (a 300 dpi synthetic photo
    page at 150 dpi: 118 KB against 131 KB for SSIM 0.960 at 100 dpi).  Which one wins
    is a property of the image, so each search measures both.  Gray and CMYK: jpegli's
    binding takes RGB only.
    """
    return (JPEGLI, LIBJPEG) if mode == "RGB" and _jpegli is not None else (LIBJPEG,)


def encode(image: Image.Image, quality: int, encoder: str = JPEGLI) -> bytes:
    """Encode an L, RGB or CMYK Pillow image as a JPEG for a PDF /DCTDecode stream.

    RGB: ``encoder`` (jpegli by default); otherwise Pillow (libjpeg-turbo) with optimised
    Huffman tables.  Then mozjpeg's lossless re-optimisation when it is smaller.
    :data:`SMALLEST`: each encoder, and the fewest bytes.
    """
    if encoder == SMALLEST:
        return min((encode(image, quality, e) for e in encoders(image.mode)), key=len)
    return optimize_losslessly(_encode_plain(image, quality, encoder), trusted=True)


def _encode_plain(image: Image.Image, quality: int, encoder: str = JPEGLI) -> bytes:
    """:func:`encode` without the lossless re-optimisation (the same pixels, more bytes)."""
    if image.mode == "RGB" and encoder == JPEGLI and _jpegli is not None:
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
    return choose_encoding(image, floor, cap, lowest, (JPEGLI,))[0]


def choose_encoding(image: Image.Image, floor: float, cap: int, lowest: int = SEARCH_LOWEST,
                    among: tuple[str, ...] | None = None) -> tuple[int, str]:
    """(quality, encoder): :func:`choose_quality` for each of ``among`` (default
    :func:`encoders`), and of those that keep the floor below ``cap`` the one whose mosaic
    takes the fewest bytes once re-packed (as :func:`encode` will).  When none does, the
    first encoder at ``cap``, or another one's lowest rung that keeps as much in fewer
    bytes (as :func:`choose_size_and_quality` does)."""
    among = among or encoders(image.mode)
    if cap <= lowest:
        return cap, among[0]
    sample = mosaic(image)
    planes = _planes(sample)
    references = [Similarity(planes[:, :, c]) for c in range(planes.shape[2])]

    def lowest_keeping(encoder: str, level: float) -> tuple[int, int, str] | None:
        def passes(quality: int) -> bytes | None:
            data = _encode_plain(sample, quality, encoder)
            return data if similarity(references, data) >= level else None

        for quality in range(lowest, cap, SEARCH_STEP):
            data = passes(quality)
            if data is not None:
                if quality > lowest:
                    quality, data = refine(passes, quality - SEARCH_STEP, quality, data)
                size = len(optimize_losslessly(data, trusted=True)) if len(among) > 1 else 0
                return size, quality, encoder
        return None

    passing = [found for encoder in among if (found := lowest_keeping(encoder, floor))]
    if passing:
        _, quality, encoder = min(passing)
        return quality, encoder
    if len(among) == 1:
        return cap, among[0]
    data = _encode_plain(sample, cap, among[0])
    kept = similarity(references, data)
    best = (len(optimize_losslessly(data, trusted=True)), cap, among[0])
    for encoder in among[1:]:
        found = lowest_keeping(encoder, kept)
        if found is not None and found[0] < best[0]:
            best = found
    return best[1], best[2]


# --- size and quality together, judged where the image is seen (issue 18, item 6) ----------

#: Fractions of the largest allowed size that :func:`choose_size_and_quality` also tries.
SIZE_STEPS = (1.0, 0.7, 0.5)
#: ... when the largest passes at this quality or below: an image that needs more at full
#: size has detail fewer pixels would lose (measured on the corpus: the smaller sizes of
#: such images almost never won, and tried for every image they cost a third more time).
SMALLER_BELOW_QUALITY = 50


@dataclass(frozen=True)
class Option:
    """One size an image may be encoded at, and the highest quality allowed there."""

    size: tuple[int, int]
    cap: int


def choose_size_and_quality(
    image: Image.Image,
    options: list[Option],
    view: tuple[int, int],
    floor: float,
    *,
    fallback: bool = True,
    lowest: int = SEARCH_LOWEST,
    resized: dict[tuple[int, int], Image.Image] | None = None,
) -> tuple[Image.Image, int, str] | None:
    """The (resampled image, quality) of the fewest bytes that still looks like ``image``.

    What a reader sees is the image drawn on the page: ``view`` is its size in pixels
    at the level's resolution where it is drawn largest.  Each option (a size at or
    below the largest allowed, largest first) is resampled from ``image``, and its
    lowest quality up to its cap whose JPEG, decoded and scaled to ``view``, keeps
    SSIM >= ``floor`` against ``image`` scaled to ``view``, is found as in
    :func:`choose_quality` (tile mosaics, a ladder scanned upwards).  The bytes of each
    pass are estimated from the mosaic's and the option with the fewest wins: a
    smooth photo drawn small ends at a lower resolution and a quality that keeps its
    looks, a detailed one at full size.

    When no rung of the first option passes, it is taken at its cap if ``fallback``
    (as :func:`choose_quality` does), else that option is out; None when no option is
    left.  ``resized`` may hold sizes already resampled (saves their work).

    Each size is searched with each of :func:`encoders` (colour: jpegli and
    libjpeg-turbo), and the passing JPEG of the fewest bytes once re-packed (as
    :func:`encode` re-packs) wins: the (image, quality, encoder) to encode with.
    """
    best: tuple[float, tuple[int, int], int, str] | None = None
    among = encoders(image.mode)
    starts = dict.fromkeys(among, lowest)
    for i, option in enumerate(options):
        sized = (resized or {}).get(option.size) or (image if option.size == image.size else None)
        probe = _Probe(image, option.size, sized, view)
        found: tuple[float, int, str] | None = None
        for encoder in among:
            quality, data = probe.lowest_passing(
                max(lowest, min(starts[encoder], option.cap)), option.cap, floor,
                top_first=i > 0, encoder=encoder)
            if quality is None or data is None:
                continue
            starts[encoder] = max(lowest, quality - SEARCH_STEP)  # fewer pixels rarely
            if len(among) > 1:                                     # need less quality
                data = optimize_losslessly(data, trusted=True)
            estimate = len(data) * probe.scale
            if found is None or estimate < found[0]:
                found = (estimate, quality, encoder)
        if found is None and i == 0:
            if not fallback:
                continue  # (its cap may be the strict one: smaller sizes still compete)
            found = _at_cap(probe, among, lowest, option.cap)
        if found is None:
            break  # smaller sizes lose more: they would not pass either
        if best is not None and found[0] >= best[0]:
            break  # bytes grew again as the size fell: smaller ones will not win
        best = (found[0], option.size, found[1], found[2])
        if found[1] > SMALLER_BELOW_QUALITY:
            break
    if best is None:
        return None
    _, size, quality, encoder = best
    chosen = (resized or {}).get(size) or (image if size == image.size else _resize(image, size))
    return chosen, quality, encoder


def _at_cap(probe: _Probe, among: tuple[str, ...], lowest: int,
            cap: int) -> tuple[float, int, str]:
    """(estimated bytes, quality, encoder) when no JPEG below ``cap`` keeps the floor.

    The level's answer is the first encoder at its cap; what that keeps where the
    reader sees the image is then the floor: another encoder's lowest rung that keeps
    as much, when it takes fewer bytes (fine grain and noise drawn at the level's
    resolution: libjpeg-turbo at quality 55 keeps what jpegli keeps at 75 in 6 % fewer
    bytes).
    """
    data = probe.encode(cap, among[0])
    best = (len(optimize_losslessly(data, trusted=True)) if len(among) > 1 else len(data),
            cap, among[0])
    kept = probe.similarity(data)
    for encoder in among[1:]:
        quality, other = probe.lowest_passing(lowest, cap, kept, encoder=encoder)
        if quality is not None and other is not None:
            size = len(optimize_losslessly(other, trusted=True))
            if size < best[0]:
                best = (size, quality, encoder)
    return best[0] * probe.scale, best[1], best[2]


def _resize(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    # (as pixels.resize: Lanczos after a box reduce by an integer factor when large)
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)


class _Probe:
    """Tiles of one candidate size, and the same places of the original as a reader sees them.

    The tiles are cut from ``sized`` (``image`` resampled to ``size``), or, without it,
    resampled from their own place in ``image`` (the same pixels: Lanczos reads the
    neighbours beyond the tile), so a size that loses costs no whole resampling.  They
    are block-aligned, as :func:`mosaic`'s; each tile's place in ``image`` is scaled
    straight to the view, and so is the decoded mosaic (all tiles at once: they share
    one scale), so both cover exactly the same part of the page.  A border of each view
    tile is left out of the comparison: there the scaled mosaic mixes neighbouring tiles.
    """

    def __init__(self, image: Image.Image, size: tuple[int, int], sized: Image.Image | None,
                 view: tuple[int, int]) -> None:
        width, height = size
        fx, fy = view[0] / width, view[1] / height  # view pixels per sized pixel
        sx, sy = image.width / width, image.height / height  # source pixels per sized pixel
        if width * height <= SAMPLE_PIXELS or width < 2 * TILE or height < 2 * TILE:
            boxes = [(0, 0, width, height)]
        else:
            per_side = max(2, int((SAMPLE_PIXELS / (TILE * TILE)) ** 0.5))
            cols, rows = min(per_side, width // TILE), min(per_side, height // TILE)
            boxes = [((width - TILE) * c // max(1, cols - 1) // 16 * 16,
                      (height - TILE) * r // max(1, rows - 1) // 16 * 16, TILE, TILE)
                     for r in range(rows) for c in range(cols)]
            boxes = [(x, y, x + w, y + h) for x, y, w, h in boxes]
        tile_w, tile_h = boxes[0][2] - boxes[0][0], boxes[0][3] - boxes[0][1]
        self.view_tile = (max(1, round(tile_w * fx)), max(1, round(tile_h * fy)))
        scaled = self.view_tile != (tile_w, tile_h)
        #: view pixels left out on each side of a tile (Lanczos reaches 3 pixels each way)
        self.margin = min(math.ceil(3 * max(fx, fy, 1.0)), min(self.view_tile) // 4) \
            if scaled and len(boxes) > 1 else 0
        self.boxes = boxes
        self.cols = len({b[0] for b in boxes})
        self.mosaic = Image.new(image.mode, (self.cols * tile_w, len(boxes) // self.cols * tile_h))
        for k, box in enumerate(boxes):
            tile = sized.crop(box) if sized is not None else image.resize(
                (box[2] - box[0], box[3] - box[1]), Image.Resampling.LANCZOS,
                box=(box[0] * sx, box[1] * sy, box[2] * sx, box[3] * sy))
            self.mosaic.paste(tile, self._slot(k, tile_w, tile_h))
        self.tile = (tile_w, tile_h)
        self.rows = len(boxes) // self.cols
        self.scale = width * height / (self.mosaic.width * self.mosaic.height)
        self.view_size = (self.cols * self.view_tile[0], self.rows * self.view_tile[1])
        reference = Image.new(image.mode, self.view_size)
        for k, b in enumerate(boxes):
            reference.paste(image.resize(self.view_tile, Image.Resampling.LANCZOS,
                                         box=(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy)),
                            self._slot(k, *self.view_tile))
        planes = self._interior(_planes(reference))
        self.references = [Similarity(planes[:, :, c]) for c in range(planes.shape[2])]

    def _slot(self, k: int, w: int, h: int) -> tuple[int, int]:
        return (k % self.cols) * w, (k // self.cols) * h

    def _interior(self, planes: np.ndarray) -> np.ndarray:
        """A view mosaic's planes without the margin of each tile (H' x W' x C)."""
        m = self.margin
        if not m:
            return planes
        (tw, th), c = self.view_tile, planes.shape[2]
        blocks = planes.reshape(self.rows, th, self.cols, tw, c)[:, m:th - m, :, m:tw - m, :]
        return blocks.reshape(self.rows * (th - 2 * m), self.cols * (tw - 2 * m), c)

    def encode(self, quality: int, encoder: str = JPEGLI) -> bytes:
        return _encode_plain(self.mosaic, quality, encoder)

    def similarity(self, data: bytes) -> float:
        decoded: Image.Image = Image.open(io.BytesIO(data))
        decoded.load()
        if decoded.mode != self.mosaic.mode:
            return 0.0
        if decoded.size != self.view_size:
            decoded = decoded.resize(self.view_size, Image.Resampling.LANCZOS)
        planes = self._interior(_planes(decoded))
        if planes.shape[2] != len(self.references):
            return 0.0
        return float(np.mean([ref(planes[:, :, c]) for c, ref in enumerate(self.references)]))

    def lowest_passing(self, start: int, cap: int, floor: float, top_first: bool = False,
                       encoder: str = JPEGLI) -> tuple[int | None, bytes | None]:
        """The lowest quality from ``start`` up to (not including) ``cap`` found to keep
        ``floor``, and its mosaic's JPEG; (None, None) when none does.

        The rungs of the ladder are scanned upwards, and between the first that passes and
        the one below it that fails the quality is bisected to the single step
        (:func:`refine`): a rung is 5 qualities, about 10 % of a photo's bytes at the
        qualities the levels use, and the bisection costs two or three mosaic encodes.

        ``top_first``: try the highest rung first, and give up when even it falls short
        (a smaller size usually does: one encode instead of the whole ladder).
        """
        rungs = list(range(start, cap, SEARCH_STEP))
        if top_first and len(rungs) > 1:
            top = self.encode(rungs[-1], encoder)
            if self.similarity(top) < floor:
                return None, None
        passes = lambda q: self._passing(q, floor, encoder)
        # every other rung upwards, then the one skipped below the first that passes:
        # half the encodes of a full scan for the same choice nearly always
        for k in range(0, len(rungs), 2):
            data = self.encode(rungs[k], encoder)
            if self.similarity(data) >= floor:
                if k > 0:
                    below = self.encode(rungs[k - 1], encoder)
                    if self.similarity(below) >= floor:
                        return refine(passes, rungs[k - 2], rungs[k - 1], below)  # (k >= 2)
                    return refine(passes, rungs[k - 1], rungs[k], data)
                return rungs[k], data
            if k + 1 == len(rungs) - 1:  # the last rung is odd: it is tried too
                data = self.encode(rungs[k + 1], encoder)
                if self.similarity(data) >= floor:
                    return refine(passes, rungs[k], rungs[k + 1], data)
        return None, None

    def _passing(self, quality: int, floor: float, encoder: str) -> bytes | None:
        data = self.encode(quality, encoder)
        return data if self.similarity(data) >= floor else None


def refine(passes: Callable[[int], bytes | None], failing: int, passing: int,
           data: bytes) -> tuple[int, bytes]:
    """Bisect between a quality known to fail and one known to pass (with its ``data``): the
    lowest quality found to pass and its JPEG.  ``passes(q)`` is the JPEG at ``q`` when it
    keeps the floor, else None."""
    while passing - failing > 1:
        middle = (failing + passing) // 2
        found = passes(middle)
        if found is None:
            failing = middle
        else:
            passing, data = middle, found
    return passing, data


def optimize_losslessly(data: bytes, *, trusted: bool = False) -> bytes:
    """Re-pack a JPEG's entropy coding without touching its coefficients; the smaller wins.

    ``trusted``: written by our own encoder (re-packed in process, see :mod:`..mozjpeg`).
    """
    out = mozjpeg.repack(data, trusted=trusted)
    if out is None or len(out) >= len(data) or adobe_marker(out) != adobe_marker(data):
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
