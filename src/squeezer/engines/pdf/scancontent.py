"""What a scanned page image holds: bitonal text, gray text, colour text, or a photograph.

The class decides the coder.  It is read off three numbers, each cheap on a
full page:

- **colour**: the share of pixels whose channels differ by more than
  :data:`CHROMA` (paper tint and JPEG chroma noise stay below it), measured
  on a 4x reduced copy.  A colour scan of a black-and-white letter is gray
  content (PassportPDF's "colour detection").
- **mid-tones**: scanned text is paper and ink with a thin anti-aliased rim;
  a photograph is mostly tones in between.  Measured at full resolution on
  blocks of about a fifth of an inch, a block is photographic when more than
  :data:`PHOTO_BLOCK_MID` of it is mid-tone.
- **bitonal**: text pages whose mid-tone share over the whole page is below
  :data:`BITONAL_MID` lose nothing visible as 1-bit.

The photographic blocks are also what the MRC step keeps out of the text mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from squeezer.engines.pdf.pixels import bands, converted

#: Channel spread (max - min) above which a pixel is coloured.
CHROMA = 48
#: Share of coloured pixels above which the page is a colour page.
COLOUR_SHARE = 0.002
#: Block side for the photo map, in inches.
BLOCK_INCHES = 0.2
#: A block is photographic when more than this share of its pixels is mid-tone.
PHOTO_BLOCK_MID = 0.35
#: ... and a page is a photograph when more than this share of its blocks is.
PHOTO_PAGE_SHARE = 0.5
#: Pages whose mid-tone share is below this are bitonal (black-and-white) content.
BITONAL_MID = 0.01
#: Mid-tone: between these fractions of the way from ink to paper.
MID_LOW, MID_HIGH = 0.25, 0.75


@dataclass
class Content:
    kind: str  #: "bitonal", "gray_text", "color_text" or "photo"
    colour: bool
    paper: float  #: the paper's gray level
    ink: float  #: the ink's gray level
    mid_share: float
    photo_share: float
    block: int  #: photo map block side in pixels
    photo: np.ndarray  #: block map, True where photographic


def luminance(pixels: np.ndarray, image: Image.Image | None = None) -> np.ndarray:
    """8-bit luma (Rec. 601, what PDF readers use for gray conversion) of an H x W x C image.

    ``image``: the same pixels as a Pillow image, when the caller has one (a
    decoded JPEG), which saves copying them into one.
    """
    if pixels.shape[2] == 1:
        return pixels[:, :, 0]
    if image is not None:
        return np.asarray(image.convert("L"))
    # band by band: a Pillow copy of a whole page is a third larger than its samples
    return converted(pixels, "RGB", "L")


def levels(gray: np.ndarray) -> tuple[float, float]:
    """(paper, ink) gray levels: a high and a very low percentile of a row sample."""
    sample = gray[::4, ::4]
    paper = float(np.percentile(sample, 90))
    ink = float(np.percentile(sample, 0.5))
    return paper, min(ink, paper - 1)


def is_colour(pixels: np.ndarray | None, image: Image.Image | None = None) -> bool:
    """Whether enough of the image (4 x 4 block means) has channels :data:`CHROMA` apart.

    ``pixels`` may be None when ``image`` is given."""
    if image is not None:
        if image.mode != "RGB":
            return False
    elif pixels is None or pixels.shape[2] == 1:
        return False
    if image is not None:
        small = np.asarray(image.reduce(4) if min(image.size) >= 64 else image)
    else:
        assert pixels is not None  # (returned above otherwise)
        small = _reduced4(pixels)
    r, g, b = small[:, :, 0], small[:, :, 1], small[:, :, 2]
    # (element-wise: numpy's reductions over a 3-long last axis are 10x slower)
    spread = np.maximum(np.maximum(r, g), b).astype(np.int16) - np.minimum(np.minimum(r, g), b)
    return float(np.mean(spread > CHROMA)) > COLOUR_SHARE


def _reduced4(pixels: np.ndarray) -> np.ndarray:
    """``Image.fromarray(pixels).reduce(4)`` (or ``pixels`` when smaller than 64), as an
    array, made band by band: the same 4 x 4 means without a Pillow copy of the page."""
    height, width = pixels.shape[:2]
    if min(height, width) < 64:
        return pixels
    step = bands(height, width * 4, 4).step
    return np.concatenate([
        np.asarray(Image.fromarray(np.ascontiguousarray(pixels[top:top + step])).reduce(4))
        for top in range(0, height, step)])


def mid_tones(gray: np.ndarray, paper: float, ink: float) -> np.ndarray:
    lo = ink + (paper - ink) * MID_LOW
    hi = ink + (paper - ink) * MID_HIGH
    return (gray > lo) & (gray < hi)


#: Rows of blocks whose mid-tone mask :func:`photo_blocks` makes at once.
STRIP_BLOCKS = 8


def photo_blocks(gray: np.ndarray, paper: float, ink: float, block: int) -> tuple[np.ndarray, float]:
    """(share of mid-tones in each ``block`` x ``block`` tile, share over the whole image).

    :func:`mid_tones` and :func:`block_share` a strip of block rows at a time: the same
    numbers, without the full-page temporaries (a 300 dpi page has 8 MB of them per mask,
    and the scan step classifies pages on several threads at once).
    """
    h = gray.shape[0]
    rows, mid = [], 0
    step = block * STRIP_BLOCKS
    for top in range(0, h, step):
        strip = mid_tones(gray[top:top + step], paper, ink)
        mid += int(np.count_nonzero(strip))
        rows.append(block_share(strip, block))
    shares = np.concatenate(rows) if rows else np.zeros((0, 0))
    return shares, mid / gray.size if gray.size else 0.0


def block_share(mask: np.ndarray, block: int) -> np.ndarray:
    """Share of True in each ``block`` x ``block`` tile (edge tiles padded with False)."""
    h, w = mask.shape
    bh, bw = -(-h // block), -(-w // block)
    padded = np.zeros((bh * block, bw * block), np.uint8)
    padded[:h, :w] = mask
    sums = padded.reshape(bh, block, bw, block).sum(axis=(1, 3), dtype=np.int32)
    return sums / float(block * block)


def classify(pixels: np.ndarray | None, dpi: float, gray: np.ndarray | None = None,
             image: Image.Image | None = None) -> Content:
    """The content class of a scanned page image (H x W x 1 or 3, uint8) drawn at ``dpi``
    (``image``: the same pixels as a Pillow image, see :func:`luminance`; with it and
    ``gray``, ``pixels`` may be None)."""
    if gray is None:
        assert pixels is not None
        gray = luminance(pixels, image)
    paper, ink = levels(gray)
    colour = is_colour(pixels, image)
    block = max(8, round(dpi * BLOCK_INCHES))
    shares, mid_share = photo_blocks(gray, paper, ink, block)
    photo = shares > PHOTO_BLOCK_MID
    photo_share = float(photo.mean()) if photo.size else 0.0
    if photo_share > PHOTO_PAGE_SHARE or paper - ink < 48:
        kind = "photo"
    elif colour:
        kind = "color_text"
    elif mid_share < BITONAL_MID and not photo.any():
        kind = "bitonal"
    else:
        kind = "gray_text"
    return Content(kind, colour, paper, ink, mid_share, photo_share, block, photo)
