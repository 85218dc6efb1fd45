"""Mixed Raster Content: a scanned page as a text mask, a background and a foreground colour.

A 300 dpi colour scan stored as one JPEG spends most of its bytes on text
edges, which JPEG codes worst.  MRC (ITU T.44, what DjVu and PassportPDF's
hyper-compression do) splits the page in three:

- the **mask**: 1 bit per pixel at full resolution, ink or not (adaptive
  threshold, :mod:`binarize`), coded losslessly (JBIG2 or CCITT G4, :mod:`bitonal`).  It carries
  the text's shape, so edges stay as sharp as the scan;
- the **background**: the page with the text removed (each masked pixel,
  and its one-pixel anti-aliased rim, filled from the paper around it) and
  downsampled to ``mrc_background_dpi``; smooth, so a small JPEG;
- the **foreground**: the text's colour, per block of about 1/25 inch, or a
  single colour when all the text is one ink (then no image at all).

In the PDF the scan's image XObject becomes a form XObject of the same object
number drawing, in the image's own unit square, the background and then the
foreground through the mask (an explicit /Mask, or a stencil mask filled with
the ink colour).  The page's content stream, and with it any invisible OCR
text layer, is not touched.

Photographic blocks (:mod:`scancontent`) are kept out of the mask: they stay
in the background, where JPEG is the right coder.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image

from squeezer.engines.pdf import binarize, bitonal, jpeg
from squeezer.engines.pdf.scancontent import Content
from squeezer.engines.ssim import Similarity

#: The lowest JPEG quality a layer gets.
MIN_QUALITY = 20
#: Foreground blocks are about this many per inch.
FOREGROUND_DPI = 25
#: A text colour spread (5th to 95th percentile, per channel) below this is one ink.
UNIFORM_SPREAD = 40
#: Resolution of the rendered-quality check (the bench and the verifier's 100 dpi).
CHECK_DPI = 100
#: Share of the original's text edges the composed page must keep (within one pixel).
LEGIBILITY_FLOOR = 0.85


@dataclass
class Layers:
    mask: np.ndarray  #: H x W bool, True = ink
    background: Image.Image  #: "L" or "RGB", downsampled
    foreground: Image.Image | None  #: low-resolution text colour; None when ``ink`` is all
    ink: tuple[int, ...]  #: the one ink colour (gray or RGB, 0-255) when foreground is None


def _blocks(pixels: np.ndarray, valid: np.ndarray, f: int) -> tuple[np.ndarray, np.ndarray]:
    """Per f x f block: sum of valid pixels (bh x bw x C, uint32) and their count.

    Strided adds (f row slices, then f column slices) rather than a reshaped
    sum: numpy reduces over non-adjacent axes three times slower.
    """
    h, w, _ = pixels.shape
    bh, bw = -(-h // f), -(-w // f)
    if (bh * f, bw * f) != (h, w):
        pixels = np.pad(pixels, ((0, bh * f - h), (0, bw * f - w), (0, 0)), mode="edge")
        valid = np.pad(valid, ((0, bh * f - h), (0, bw * f - w)))
    weighted = pixels * valid[:, :, None]
    return _sum_blocks(weighted, f), _sum_blocks(valid[:, :, None].view(np.uint8), f)[:, :, 0]


def _sum_blocks(a: np.ndarray, f: int) -> np.ndarray:
    rows = a[0::f].astype(np.uint32)
    for i in range(1, f):
        rows += a[i::f]
    out = rows[:, 0::f].copy()
    for j in range(1, f):
        out += rows[:, j::f]
    return out


def fill_holes(values: np.ndarray, valid: np.ndarray, default: float = 255.0) -> np.ndarray:
    """``values`` (h x w x C float) with the invalid cells filled from ever coarser averages.

    A pyramid push-pull: each level averages the valid cells of 2x2 blocks, and
    a hole takes the value of the coarsest level's block around it, so large
    holes get their surroundings' colour and small ones their neighbours'.
    """
    if valid.all():
        return values
    if not valid.any():
        return np.full_like(values, default)
    h, w, c = values.shape
    ph, pw = h + h % 2, w + w % 2
    v = np.zeros((ph, pw, c), np.float32)
    m = np.zeros((ph, pw), np.float32)
    v[:h, :w] = values * valid[:, :, None]
    m[:h, :w] = valid
    sums = v.reshape(ph // 2, 2, pw // 2, 2, c).sum(axis=(1, 3))
    counts = m.reshape(ph // 2, 2, pw // 2, 2).sum(axis=(1, 3))
    coarse = np.divide(sums, counts[:, :, None], out=np.zeros_like(sums),
                       where=counts[:, :, None] > 0)
    coarse = fill_holes(coarse, counts > 0, default)
    up = np.repeat(np.repeat(coarse, 2, axis=0), 2, axis=1)[:h, :w]
    out = values.copy()
    out[~valid] = up[~valid]
    return out


def _average(pixels: np.ndarray, valid: np.ndarray, f: int, default: float) -> np.ndarray:
    """Mean of the valid pixels of each f x f block, holes filled (:func:`fill_holes`).

    Pillow's ``reduce`` (C, 8-bit) averages the valid pixels (the others set to 0)
    and the validity itself; their ratio is the valid mean to within a level or
    two, well inside what the JPEG that follows loses, at a tenth of numpy's cost.
    """
    if f == 1:
        return fill_holes(pixels.astype(np.float64), valid, default)
    c = pixels.shape[2]
    planes = [np.asarray(Image.fromarray(pixels[:, :, i] * valid).reduce(f), np.float32)
              for i in range(c)]
    share = np.asarray(Image.fromarray(valid.view(np.uint8) * np.uint8(255)).reduce(f),
                       np.float32)
    seen = share > 0
    mean = np.stack(planes, axis=2) * (np.float32(255) / np.where(seen, share, 1))[:, :, None]
    return fill_holes(np.clip(mean, 0, 255), seen, default)


def _image(values: np.ndarray) -> Image.Image:
    arr = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return Image.fromarray(arr[:, :, 0] if arr.shape[2] == 1 else arr)


def split(pixels: np.ndarray, gray: np.ndarray, content: Content, dpi: float,
          background_dpi: int, *, threshold: int | None = None, repair: bool = False,
          preserve_smoothing: bool = False) -> Layers:
    """The MRC layers of a scanned page image (H x W x C uint8; C = 1 for gray content)."""
    mask = binarize.binarize(gray, dpi, threshold)
    if content.photo.any():
        block = content.block
        photo = np.repeat(np.repeat(content.photo, block, axis=0), block, axis=1)
        mask &= ~photo[: mask.shape[0], : mask.shape[1]]
    if repair:
        mask = binarize.repair(mask)
    if not content.colour and pixels.shape[2] == 3:
        pixels = gray[:, :, None]
    f = max(1, round(dpi / background_dpi))
    covered = mask if preserve_smoothing else binarize.dilate(mask)
    background = _image(_average(pixels, ~covered, f, content.paper))
    g = max(f, round(dpi / FOREGROUND_DPI))
    # The text's colour per block: what keeps the block's mean over the ink and its rim.
    # The rim is drawn with the background (it was filled from the paper), so the ink
    # takes the rim's darkness too: ink = (sum over ink+rim - rim * paper) / ink pixels.
    sums, counts = _blocks(pixels, mask, g)
    valid = counts > 0
    if not preserve_smoothing:
        rim_sums, rim_counts = _blocks(pixels, covered & ~mask, g)
        paper = _average(pixels, ~covered, g, content.paper)
        extra = rim_sums - rim_counts[:, :, None] * paper
        sums = np.clip(sums + extra, 0, None)
    if not valid.any():
        return Layers(mask, background, None, (0,) * pixels.shape[2])
    colours = sums[valid] / counts[valid][:, None]
    lo, hi = np.percentile(colours, 5, axis=0), np.percentile(colours, 95, axis=0)
    if float(np.max(hi - lo)) < UNIFORM_SPREAD:
        ink = tuple(round(v) for v in np.median(colours, axis=0))
        return Layers(mask, background, None, ink)
    mean = np.divide(sums, counts[:, :, None], out=np.zeros(sums.shape), where=valid[:, :, None])
    return Layers(mask, background, _image(fill_holes(mean, valid, content.ink)), ())


def _block_grid(blocks: np.ndarray, g: int, shape: tuple[int, int]) -> np.ndarray:
    return np.repeat(np.repeat(blocks, g, axis=0), g, axis=1)[: shape[0], : shape[1]]


def _check_size(shape: tuple[int, int], dpi: float) -> tuple[int, int]:
    h, w = shape
    scale = min(1.0, CHECK_DPI / dpi) if dpi > 0 else 1.0
    return max(8, round(w * scale)), max(8, round(h * scale))


def reduced(gray: np.ndarray, dpi: float) -> np.ndarray:
    """``gray`` box-filtered down to :data:`CHECK_DPI`, as a page check renders it."""
    return np.asarray(Image.fromarray(gray).resize(_check_size(gray.shape, dpi),
                                                   Image.Resampling.BOX))


def compose_reduced(layers: Layers, dpi: float) -> np.ndarray:
    """The page as a reader draws it, in gray at :data:`CHECK_DPI`.

    Composed at the check's resolution directly: each check pixel is the
    background and the ink mixed by the share of its area the mask covers,
    which is what box-filtering the full-resolution composition gives.
    """
    size = _check_size(layers.mask.shape, dpi)
    cover = np.asarray(Image.fromarray(layers.mask).convert("L").resize(
        size, Image.Resampling.BOX), dtype=np.float32) / 255.0
    background = np.asarray(layers.background.convert("L").resize(
        size, Image.Resampling.BILINEAR), dtype=np.float32)
    ink: np.ndarray | np.float32  # a plane, or one colour for the whole page
    if layers.foreground is not None:
        ink = np.asarray(layers.foreground.convert("L").resize(
            size, Image.Resampling.BILINEAR), dtype=np.float32)
    else:
        ink = np.float32(gray_of(layers.ink))
    return np.clip(np.rint(background + cover * (ink - background)), 0, 255).astype(np.uint8)


def gray_of(colour: tuple[int, ...]) -> int:
    """Rec. 601 luma of a gray or RGB colour."""
    if len(colour) == 1:
        return int(colour[0])
    return (colour[0] * 77 + colour[1] * 150 + colour[2] * 29 + 128) >> 8


def rendered_ssim(original_reduced: np.ndarray, composed_reduced: np.ndarray) -> float:
    """SSIM of the original and the re-encoded page, both at :data:`CHECK_DPI`."""
    return Similarity(original_reduced)(composed_reduced)


def _edges(gray: np.ndarray, step: float) -> np.ndarray:
    g = gray.astype(np.int16)
    edges = np.zeros(gray.shape, bool)
    edges[:, 1:] |= np.abs(g[:, 1:] - g[:, :-1]) > step
    edges[1:, :] |= np.abs(g[1:, :] - g[:-1, :]) > step
    return edges


def _mask_edges(mask: np.ndarray) -> np.ndarray:
    edges = np.zeros(mask.shape, bool)
    edges[:, 1:] |= mask[:, 1:] != mask[:, :-1]
    edges[1:, :] |= mask[1:, :] != mask[:-1, :]
    return edges


def legibility(original: np.ndarray, mask: np.ndarray, content: Content) -> float:
    """Share of the original's strong edges (text outlines) that the mask's outline follows
    within one pixel, outside photographic blocks (the foreground edge agreement).

    The composed page's edges are the mask's: it switches between the ink and the
    background there, and nowhere else has the contrast of a text edge.
    """
    step = 0.35 * (content.paper - content.ink)
    strong = _edges(original, step)
    if content.photo.any():
        photo = _block_grid(content.photo, content.block, strong.shape)
        strong &= ~photo
    total = int(strong.sum())
    if total == 0:
        return 1.0
    found = strong & binarize.dilate(_mask_edges(mask))
    return float(found.sum()) / total


# --- PDF objects ---------------------------------------------------------------------------


def _colour_space(image: Image.Image, original: object) -> object:
    """The original colour space when it has the layer's component count, else a Device one."""
    components = 3 if image.mode == "RGB" else 1
    if isinstance(original, Array) and len(original) >= 2 and str(original[0]) == "/ICCBased" \
            and isinstance(original[1], Stream) and int(original[1].get("/N", 0)) == components:
        return original
    if isinstance(original, Name) and original == (Name.DeviceRGB if components == 3 else Name.DeviceGray):
        return original
    return Name.DeviceRGB if components == 3 else Name.DeviceGray


@dataclass
class Encoded:
    """The coded layers, before anything is written into the document."""

    background: bytes
    mask: bitonal.Coded
    foreground: bytes | None

    @property
    def size(self) -> int:
        return len(self.background) + len(self.mask.data) + len(self.foreground or b"") + 40


def encode(layers: Layers, quality: int, jbig2: bool = True) -> Encoded:
    """The background as a JPEG at ``quality``, the foreground (the text's colour, a smoother
    layer still) at 5 less, and the mask in JBIG2 or G4 (:mod:`bitonal`)."""
    foreground = (jpeg.encode(layers.foreground, max(MIN_QUALITY, quality - 5))
                  if layers.foreground is not None else None)
    return Encoded(jpeg.encode(layers.background, quality), bitonal.encode(layers.mask, jbig2),
                   foreground)


def _jpeg_image(pdf: pikepdf.Pdf, image: Image.Image, data: bytes, space: object) -> Stream:
    return pdf.make_indirect(Stream(pdf, data, Type=Name.XObject, Subtype=Name.Image,
                                    Width=image.width, Height=image.height, ColorSpace=space,
                                    BitsPerComponent=8, Filter=Name.DCTDecode))


def _mask_stream(pdf: pikepdf.Pdf, mask: np.ndarray, coded: bitonal.Coded) -> Stream:
    """A stencil mask (/ImageMask): ink (sample 0) is painted, paper is not."""
    height, width = mask.shape
    stream = Stream(pdf, coded.data, Type=Name.XObject, Subtype=Name.Image, Width=width,
                    Height=height, ImageMask=True, Filter=coded.filter)
    if coded.decode_parms is not None:
        stream.DecodeParms = coded.decode_parms
    return pdf.make_indirect(stream)


def _colour_operator(ink: tuple[int, ...]) -> bytes:
    values = " ".join(f"{v / 255:.4f}" for v in ink)
    return f"{values} {'g' if len(ink) == 1 else 'rg'}".encode()


def write(pdf: pikepdf.Pdf, image: Stream, layers: Layers, encoded: Encoded) -> list[Stream]:
    """Turn ``image`` into the MRC form XObject (same object); returns the new image streams."""
    original_space = image.get("/ColorSpace")
    background = _jpeg_image(pdf, layers.background, encoded.background,
                             _colour_space(layers.background, original_space))
    mask = _mask_stream(pdf, layers.mask, encoded.mask)
    xobjects = Dictionary(B=background)
    made = [background, mask]
    if layers.foreground is None or encoded.foreground is None:
        xobjects.M = mask
        content = b"q /B Do Q q " + _colour_operator(layers.ink) + b" /M Do Q"
    else:
        foreground = _jpeg_image(pdf, layers.foreground, encoded.foreground,
                                 _colour_space(layers.foreground, original_space))
        foreground.Mask = mask
        xobjects.F = foreground
        made.append(foreground)
        content = b"q /B Do Q q /F Do Q"
    keep = {k: image[k] for k in ("/OC", "/StructParent", "/Metadata") if k in image}
    image.write(content)
    for key in list(image.keys()):
        if key != "/Length":  # qpdf keeps the stream length itself
            del image[key]
    image.Type = Name.XObject
    image.Subtype = Name.Form
    image.FormType = 1
    image.BBox = Array([0, 0, 1, 1])
    image.Resources = Dictionary(XObject=xobjects)
    for key, value in keep.items():
        image[key] = value
    return made
