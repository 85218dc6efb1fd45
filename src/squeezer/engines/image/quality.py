"""Perceptual quality: the floor every lossy result must keep, and the searches that find it.

The measure is :mod:`SSIMULACRA2 <squeezer.engines.image.ssimulacra2>` over colour (the
engine used luma SSIM before; it could not see a blue turned grey nor a gradient cut into
six bands), plus a banding check (:func:`banding`): SSIMULACRA2 scores a clean gradient
rounded to steps of 4 at 86, and a careful viewer sees those steps at 2x.  A result keeps
the floor when its score is at least the level's and its banding at most the level's
(:class:`Floor`).

Images with transparency are scored as the reference program does, over a dark (0.1) and a
light (0.9) background, the lower score counting; the banding check sees the
alpha-premultiplied colour and the alpha plane as a fourth channel.

Scoring a whole image costs about 1 s per megapixel, so the search runs on a sample of
evenly spread tiles (:func:`sample`, :data:`SEARCH_PIXELS`) and the chosen result is checked
on a larger one (:data:`CHECK_PIXELS`; the whole image when smaller), stepping up when that
falls short.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from squeezer.engines.image import ssimulacra2

#: pixels of the sample a quality search scores its candidates on
SEARCH_PIXELS = 1 << 16
#: pixels the chosen result is checked on (the whole image when it is smaller)
CHECK_PIXELS = 1 << 18
#: side of the sample's tiles (starting on multiples of 16: each sees the JPEG block grid it
#: sees in the whole image; large enough for SSIMULACRA2's coarser scales to mean something)
TILE = 128
#: below this side SSIMULACRA2 has no scale to compute: images are enlarged (nearest) to it
MIN_SIDE = 16


@dataclass(frozen=True)
class Floor:
    """What a lossy result must keep: a SSIMULACRA2 score and at most some banding."""

    score: float
    #: the largest fraction of the smooth-gradient area where new band edges may appear
    banding: float = 1.0

    def holds(self, measure: Measure) -> bool:
        return measure.score >= self.score and measure.banding <= self.banding


@dataclass(frozen=True)
class Measure:
    score: float
    banding: float = 0.0

    def __lt__(self, other: Measure) -> bool:  # "worse than", for the lowest over frames
        return (self.score, -self.banding) < (other.score, -other.banding)


PERFECT = Measure(100.0, 0.0)


def _mode(image: Image.Image) -> str:
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P"
                                              and "transparency" in image.info):
        return "RGBA"
    return "L" if image.mode in ("L", "1", "I;16", "I") else "RGB"


def pixels(image: Image.Image, mode: str | None = None) -> np.ndarray:
    """8-bit pixels of ``image`` in ``mode`` (``RGBA``, ``RGB`` or ``L``), at least
    :data:`MIN_SIDE` on each side."""
    image = image.convert(mode or _mode(image))
    if image.width < MIN_SIDE or image.height < MIN_SIDE:
        factor = -(-MIN_SIDE // max(1, min(image.size)))
        image = image.resize((image.width * factor, image.height * factor),
                             Image.Resampling.NEAREST)
    return np.asarray(image)


class Reference:
    """The pixels a result is compared with (after orientation, resizing and flattening),
    prepared once for every candidate scored against them."""

    def __init__(self, image: Image.Image) -> None:
        self.size = image.size
        self.mode = _mode(image)
        self.array = pixels(image, self.mode)
        self._banding: Banding | None = None
        if self.mode == "RGBA":
            self.refs = [ssimulacra2.Reference(self.array, 0.1),
                         ssimulacra2.Reference(self.array, 0.9)]
        else:
            self.refs = [ssimulacra2.Reference(self.array)]

    def measure(self, image: Image.Image, floor: Floor | None = None) -> Measure:
        """The score and banding of ``image``; with a ``floor``, the banding is not computed
        for a score already below it (it cannot pass), which saves a third of a search."""
        if image.size != self.size:
            return Measure(-1000.0, 1.0)
        got = pixels(image, self.mode)
        if np.array_equal(got, self.array):
            return PERFECT
        score = min(ref.score(got) for ref in self.refs)
        if floor is not None and score < floor.score:
            return Measure(score, 1.0)
        if self._banding is None:
            self._banding = Banding(self.array)
        return Measure(score, self._banding.of(got))


class Check:
    """:func:`measure`'s reference half, kept for every candidate measured against the same
    image (an animation's frames are measured for each of 4-12 candidates)."""

    def __init__(self, reference: Image.Image) -> None:
        self.size = reference.size
        self.sampled = reference.width * reference.height > CHECK_PIXELS
        self.reference = Reference(sample(reference, CHECK_PIXELS) if self.sampled
                                   else reference)

    def measure(self, result: Image.Image, floor: Floor | None = None) -> Measure:
        """As :meth:`Reference.measure` (with a ``floor``, no banding for a failing score)."""
        if result.size != self.size:
            return Measure(-1000.0, 1.0)
        return self.reference.measure(sample(result, CHECK_PIXELS) if self.sampled else result,
                                      floor)


def measure(reference: Image.Image, result: Image.Image) -> Measure:
    """The floor measure of ``result`` against ``reference``: the whole image up to
    :data:`CHECK_PIXELS`, else the same tiles of both."""
    return Check(reference).measure(result)


def score(reference: Image.Image, result: Image.Image) -> float:
    """The SSIMULACRA2 part of :func:`measure` (for reports and the bench)."""
    return measure(reference, result).score


def sample(image: Image.Image, pixels: int = SEARCH_PIXELS, tile: int = TILE) -> Image.Image:
    """The image itself when small, else a grid of evenly spread ``tile`` squares pasted
    together (an even spread, not the busiest tiles, keeps the sample's score an estimate of
    the whole image's)."""
    width, height = image.size
    if width * height <= pixels * 1.5:
        return image
    tile = min(tile, width // 2 // 16 * 16 or 16, height // 2 // 16 * 16 or 16)
    per_side = max(2, round((pixels / (tile * tile)) ** 0.5))
    cols = min(per_side, width // tile)
    rows = min(per_side, height // tile)
    out = Image.new(image.mode, (cols * tile, rows * tile))
    if image.mode == "P":
        out.putpalette(image.getpalette() or [])
    for r in range(rows):
        y = (height - tile) * r // max(1, rows - 1) // 16 * 16
        for c in range(cols):
            x = (width - tile) * c // max(1, cols - 1) // 16 * 16
            out.paste(image.crop((x, y, x + tile, y + tile)), (c * tile, r * tile))
    if "transparency" in image.info:
        out.info["transparency"] = image.info["transparency"]
    return out


# --- banding -------------------------------------------------------------------------------------

#: the original's second differences (levels of 255) at most this in a smooth area: a ramp
#: of any slope is smooth, an edge or texture is not
SMOOTH_CURVE = 2
#: a band edge: the result steps by at least this much, and by 2 more than the original
BAND_STEP = 3


def _spread_max(a: np.ndarray, radius: int) -> np.ndarray:
    """The maximum over a (2 radius + 1) square around each pixel (separable)."""
    out = a
    for axis in (0, 1):
        acc = out.copy()
        n = out.shape[axis]
        for k in range(1, min(radius, n - 1) + 1):
            lo = [slice(None)] * 2
            hi = [slice(None)] * 2
            lo[axis], hi[axis] = slice(k, None), slice(None, -k)
            np.maximum(acc[tuple(lo)], out[tuple(hi)], out=acc[tuple(lo)])
            np.maximum(acc[tuple(hi)], out[tuple(lo)], out=acc[tuple(hi)])
        out = acc
    return out


def _premultiplied(a: np.ndarray) -> np.ndarray:
    if a.ndim == 3 and a.shape[2] == 4:
        alpha = a[..., 3:].astype(np.int32)
        colour = a[..., :3].astype(np.int32) * alpha // 255
        return np.concatenate([colour, alpha], axis=2).astype(np.int16)
    a = a.astype(np.int16)
    return a[..., None] if a.ndim == 2 else a


def _across(a: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op`` folded over the last (channel) axis: numpy's own reduction over an axis of 3-4
    is 5x slower than these whole-plane operations."""
    out = a[..., 0].copy()
    for c in range(1, a.shape[-1]):
        op(out, a[..., c], out=out)
    return out


class Banding:
    """The reference's half of :func:`banding` (its smooth-gradient mask and its own steps),
    computed once for every candidate a search compares with it: two thirds of the check."""

    def __init__(self, reference: np.ndarray) -> None:
        o = _premultiplied(reference)
        height, width = o.shape[:2]
        self.gradient: np.ndarray | None = None
        if height < 3 or width < 3:
            return
        self.dox = np.abs(np.diff(o, axis=1))
        self.doy = np.abs(np.diff(o, axis=0))
        curve = np.zeros((height, width), np.int16)
        curve[:, 1:-1] = _across(np.abs(o[:, 2:] - 2 * o[:, 1:-1] + o[:, :-2]), np.maximum)
        np.maximum(curve[1:-1], _across(np.abs(o[2:] - 2 * o[1:-1] + o[:-2]), np.maximum),
                   out=curve[1:-1])
        smooth = _spread_max(curve, 2) <= SMOOTH_CURVE
        spread = (_spread_max(_across(o, np.maximum), 4)
                  + _spread_max(-_across(o, np.minimum), 4))
        gradient = smooth & (spread >= 2)
        self.area = int(gradient.sum())
        if self.area >= 0.01 * height * width:
            self.gradient = gradient

    def of(self, result: np.ndarray) -> float:
        """The fraction of the reference's smooth gradients where ``result`` bands."""
        if self.gradient is None:
            return 0.0
        r = _premultiplied(result)
        height, width = r.shape[:2]
        drx = np.abs(np.diff(r, axis=1))
        dry = np.abs(np.diff(r, axis=0))
        edges = np.zeros((height, width), bool)
        step_x = (drx >= BAND_STEP) & (drx >= self.dox + 2)
        flat_x = np.zeros_like(step_x)
        flat_x[:, 1:-1] = (drx[:, :-2] == 0) & (drx[:, 2:] == 0)
        edges[:, :-1] |= _across(step_x & flat_x, np.logical_or)
        step_y = (dry >= BAND_STEP) & (dry >= self.doy + 2)
        flat_y = np.zeros_like(step_y)
        flat_y[1:-1] = (dry[:-2] == 0) & (dry[2:] == 0)
        edges[:-1] |= _across(step_y & flat_y, np.logical_or)
        return float((edges & self.gradient).sum() / self.area)


def banding(reference: np.ndarray, result: np.ndarray) -> float:
    """The fraction of the reference's smooth gradients where the result has new band edges.

    Smooth gradient: within 2 pixels the reference is locally a ramp (every second difference
    at most :data:`SMOOTH_CURVE` levels in every channel, whatever the slope: a steep
    gradient cut into flat cells is banding too), and the colour changes within 4 pixels (a
    flat area cannot band; a colour shift there is SSIMULACRA2's to see).  A band edge: in
    some channel, the result steps by at least :data:`BAND_STEP` levels (and 2 more than the
    original does there) between two pixels that are each on a flat run (no step on their
    other side) -- plateaus meeting at a step, which is what banding and blocking look like
    and what dithering and noise do not.  0 when smooth gradients cover under 1 % of the
    image."""
    return Banding(reference).of(result)


# --- searches ------------------------------------------------------------------------------------

Encoder = Callable[[Image.Image, int], bytes]
Decoder = Callable[[bytes], Image.Image]


#: SSIMULACRA2 points one quality step buys near the floors (jpegli, libjpeg-turbo and libwebp
#: on the bench's photos between q70 and q94: 0.4-0.9): the first guess of a secant step
SLOPE = 0.6
#: the secant aims this far above the floor (a guess that lands just short costs one probe)
AIM = 0.3
#: a passing score this close to the floor ends the search (the quality below it would fail)
TIGHT = 0.4
#: most probes a search makes (a typical image needs 3-4)
MAX_PROBES = 7


@dataclass
class Found:
    """A search's answer: the lowest quality found to keep the floor (or the cap when none
    did), and, when the search probed the whole image, that probe's bytes and measure."""

    quality: int
    data: bytes | None
    measure: Measure
    #: what the probes were measured against: the same pixels :func:`verified` checks on, so
    #: it is handed on (building it again was a sixth of a photo's time)
    reference: Reference | None = None
    #: bytes of the chosen quality's probe (the whole image or the check sample's mosaic), to
    #: compare two encoders searched on the same pixels before either writes the whole image
    probe_bytes: int = 0


def search(image: Image.Image, encode: Encoder, decode: Decoder, floor: Floor, lowest: int,
           cap: int, start: int | None = None, reference: Reference | None = None,
           slope: float = SLOPE) -> Found:
    """The lowest quality in [``lowest``, ``cap``] whose result keeps the floor, probed on the
    image the floor is checked on (the whole image up to 1.5 x :data:`CHECK_PIXELS`, else
    the check sample's tiles, encoded as a mosaic: tiles start on multiples of 16, so the
    encoder sees the same blocks).

    A secant search: from ``start``, each next quality is where the line through the last
    two scores (or :data:`SLOPE` from one) reaches the floor plus :data:`AIM`, kept inside
    the bracket of known failing and passing qualities, until the two are adjacent.  It
    replaced a walk on a 64 K pixel sample, which scored 1.5-6 points kinder than the check
    (its tiles' borders are structure the encoder keeps) and so was followed by up to 8
    whole-image steps; and a ladder walk that took 16 probes on a gray photo whose answer
    was 30 qualities below the usual one.  ``reference``: :attr:`Found.reference` of an earlier
    search on the same image (another encoder), reused.  ``slope``: the first guess of the
    points one quality step buys (:data:`SLOPE`; an encoder's own where it is known)."""
    whole = image.width * image.height <= CHECK_PIXELS * 1.5
    probe_image = image if whole else sample(image, CHECK_PIXELS)
    if reference is None or reference.size != probe_image.size:
        reference = Reference(probe_image)
    lowest = min(lowest, cap)
    probes: dict[int, tuple[bytes, Measure]] = {}

    def probe(q: int) -> Measure:
        data = encode(probe_image, q)
        got = reference.measure(decode(data), floor)
        probes[q] = (data, got)
        return got

    failing, passing = lowest - 1, None  # highest quality known to fail, lowest known to pass
    q = max(lowest, min(cap, start if start is not None else cap))
    last: tuple[int, float] | None = None
    while len(probes) < MAX_PROBES:
        got = probe(q)
        if floor.holds(got):
            passing = q
        else:
            failing = q
        if (passing is not None and passing - failing <= 1) or (passing is None and q >= cap):
            break
        if passing == q and got.score < floor.score + TIGHT:
            break  # one quality lower loses about SLOPE: it would fail
        if got.score >= floor.score and not floor.holds(got):
            guess = q + 2  # banding the score does not show: higher, by a step
        else:
            step_gain = slope
            if last is not None and last[0] != q and (got.score - last[1]) / (q - last[0]) > 0.1:
                step_gain = (got.score - last[1]) / (q - last[0])
            guess = q + math.ceil((floor.score + AIM - got.score) / step_gain)
        top = cap if passing is None else passing - 1
        guess = max(failing + 1, min(top, guess))
        if guess in probes:  # the line points at a probed quality: halve the bracket
            guess = (failing + 1 + top) // 2
        if guess in probes:
            break
        last = (q, got.score)
        q = guess
    chosen = passing if passing is not None else cap
    if chosen not in probes:
        probe(chosen)
    data, got = probes[chosen]
    return Found(chosen, data if whole else None, got, reference, len(data))


def lowest_passing(image: Image.Image, encode: Encoder, decode: Decoder, floor: Floor,
                   lowest: int, cap: int, step: int = 5, start: int | None = None) -> int:
    """The lowest quality of a ``step`` ladder from ``lowest`` to ``cap`` whose result keeps
    the floor on the search sample; ``cap`` when none below it does.

    Not a bisection over the whole range: re-encoding an already lossy image is not monotone
    in quality (the PDF engine measured quality 29 beating 41 on corpus JPEGs).  The walk
    starts at ``start`` (the level's usual answer) and goes down while the floor holds, or up
    until it does, so a typical image costs 2-4 encodes, not 10.
    """
    if cap <= lowest:
        return cap
    sample_image = sample(image)
    reference = Reference(sample_image)

    def passes(q: int) -> bool:
        return floor.holds(reference.measure(decode(encode(sample_image, q)), floor))

    ladder = list(range(lowest, cap, step)) + [cap]
    if start is None:
        index = 0
        while index < len(ladder) - 1 and not passes(ladder[index]):
            index += 1
        return ladder[index]
    index = min(range(len(ladder)), key=lambda i: abs(ladder[i] - start))
    if passes(ladder[index]):
        while index > 0 and passes(ladder[index - 1]):
            index -= 1
        return ladder[index]
    while index < len(ladder) - 1:
        index += 1
        if ladder[index] == cap or passes(ladder[index]):
            return ladder[index]
    return cap


def bisect_passing(image: Image.Image, encode: Encoder, decode: Decoder, floor: Floor,
                   lowest: int, cap: int) -> int:
    """Like :func:`lowest_passing` for encoders whose score rises with quality (first-generation
    WebP/AVIF/HEIC encodes): a bisection, 4-5 encodes of the sample instead of ~10."""
    if cap <= lowest:
        return cap
    sample_image = sample(image)
    reference = Reference(sample_image)

    def passes(q: int) -> bool:
        return floor.holds(reference.measure(decode(encode(sample_image, q)), floor))

    lo, hi = lowest, cap  # invariant: hi passes (or is the cap)
    if passes(lo):
        return lo
    while hi - lo > 2:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def verified(image: Image.Image, encode: Encoder, decode: Decoder, floor: Floor, quality: int,
             cap: int, step: int = 5,
             reference: Reference | None = None) -> tuple[int, bytes, Measure]:
    """Encode the whole image at ``quality`` and step up until the check sample keeps the
    floor (the search sample can be kinder than the whole); at ``cap`` the result is taken as
    it is.  ``reference``: :attr:`Found.reference` of the search on the same image, when its
    pixels are the check sample's (else it is built here)."""
    checked = image.width * image.height > CHECK_PIXELS
    checked_image = sample(image, CHECK_PIXELS) if checked else image
    if reference is None or reference.size != checked_image.size:
        reference = Reference(checked_image)
    while True:
        data = encode(image, quality)
        got = decode(data)
        result = reference.measure(sample(got, CHECK_PIXELS) if checked else got,
                                   None if quality >= cap else floor)
        if floor.holds(result) or quality >= cap:
            return quality, data, result
        quality = min(cap, quality + step)
