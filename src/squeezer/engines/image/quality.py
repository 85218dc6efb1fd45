"""Perceptual quality: the SSIM floor every lossy result must keep, and the quality search.

The measure is SSIM (:mod:`squeezer.engines.ssim`'s window and constants, via the PDF
engine's faster :class:`~squeezer.engines.ssim.Similarity`) on luma, since
that is what an eye sees first; images with transparency are measured on
alpha-premultiplied luma *and* on the alpha plane, and the lower score counts
(so neither a colour shift under a visible pixel nor a ragged edge passes).
Chroma is checked separately by the JPEG encoder to choose its subsampling.

Searching on the whole image would cost one full encode per rung; the search
runs on a mosaic of evenly spread tiles (about 0.13 megapixel) and the chosen
quality is then checked on the whole result, stepping up when the whole image
falls short.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image

from squeezer.engines.pdf.jpeg import mosaic  # one sampling for both engines
from squeezer.engines.ssim import Similarity

#: Above this many pixels the final check measures a larger mosaic, not the whole image.
FULL_CHECK_PIXELS = 4_000_000


def planes(image: Image.Image) -> list[np.ndarray]:
    """Luma (alpha-premultiplied when there is alpha) and, with transparency, the alpha plane."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), dtype=np.uint16)
        luma = np.asarray(rgba.convert("RGB").convert("L"), dtype=np.uint16)
        return [(luma * alpha // 255).astype(np.uint8), alpha.astype(np.uint8)]
    return [np.asarray(image.convert("L"))]


class Reference:
    """The pixels a result is compared with (after orientation, resizing and flattening)."""

    def __init__(self, image: Image.Image) -> None:
        self.size = image.size
        self.sims = [Similarity(p) for p in planes(image)]

    def score(self, image: Image.Image) -> float:
        if image.size != self.size:
            return 0.0
        got = planes(image)
        if len(got) != len(self.sims):
            # a result without alpha for an input with it (or the reverse): compare luma only
            got = got[:1]
        return float(min(sim(p) for sim, p in zip(self.sims, got, strict=False)))


def score(reference: Image.Image, result: Image.Image) -> float:
    """SSIM floor measure of ``result`` against ``reference`` (the whole image, or a large mosaic)."""
    if reference.width * reference.height > FULL_CHECK_PIXELS:
        return Reference(mosaic(reference, 1 << 20)).score(mosaic(result, 1 << 20))
    return Reference(reference).score(result)


Encoder = Callable[[Image.Image, int], bytes]
Decoder = Callable[[bytes], Image.Image]


def lowest_passing(image: Image.Image, encode: Encoder, decode: Decoder, floor: float,
                   lowest: int, cap: int, step: int = 5) -> int:
    """The lowest quality of a ``step`` ladder from ``lowest`` to ``cap`` whose result keeps
    SSIM >= ``floor`` on the sample mosaic; ``cap`` when none below it does.

    A ladder, not a bisection: re-encoding an already lossy image is not monotone in quality
    (the PDF engine measured quality 29 beating 41 on corpus JPEGs).  Rungs are tried from the
    bottom; the first that passes wins.
    """
    if cap <= lowest:
        return cap
    sample = mosaic(image)
    reference = Reference(sample)
    for quality in range(lowest, cap, step):
        if reference.score(decode(encode(sample, quality))) >= floor:
            return quality
    return cap


def bisect_passing(image: Image.Image, encode: Encoder, decode: Decoder, floor: float,
                   lowest: int, cap: int) -> int:
    """Like :func:`lowest_passing` for encoders whose SSIM rises with quality (first-generation
    WebP/AVIF/HEIC encodes): a bisection, 4-5 encodes of the sample instead of ~10."""
    if cap <= lowest:
        return cap
    sample = mosaic(image)
    reference = Reference(sample)
    lo, hi = lowest, cap  # invariant: hi passes (or is the cap)
    if reference.score(decode(encode(sample, lo))) >= floor:
        return lo
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if reference.score(decode(encode(sample, mid))) >= floor:
            hi = mid
        else:
            lo = mid
    return hi


def verified(image: Image.Image, encode: Encoder, decode: Decoder, floor: float, quality: int,
             cap: int, step: int = 5) -> tuple[int, bytes, float]:
    """Encode the whole image at ``quality`` and step up until the whole result keeps ``floor``
    (the sample can be kinder than the whole); at ``cap`` the result is taken as it is."""
    while True:
        data = encode(image, quality)
        got = score(image, decode(data))
        if got >= floor or quality >= cap:
            return quality, data, got
        quality = min(cap, quality + step)
