"""Resizing with Tinify/Kraken semantics.

| mode | result |
|---|---|
| ``fit`` | scaled proportionally to fit inside width x height (either may be omitted) |
| ``scale`` | scaled proportionally to exactly the one dimension given |
| ``cover`` | scaled proportionally to cover width x height, the overflow cropped away |
| ``thumb`` | like ``cover``; a subject on a plain background is padded with that background instead of cut |
| ``crop`` | a width x height window cut out of the image, no scaling |
| ``exact`` | exactly width x height, aspect ratio ignored |

Nothing is ever enlarged unless ``upscale`` is set, except by ``exact`` (the
caller asked for those dimensions).  Where a mode cuts, ``crop`` picks the
window: ``center``, or ``entropy`` (the window whose luma histogram has the
most Shannon entropy, searched along the axis that is cut: detail rather than
sky or wall).  Lanczos resampling, in linear-light-agnostic 8-bit like every
other tool; frames of an animation are resized alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from squeezer.engines.image.options import CropAnchor, Resize, ResizeMode

_FILTER = Image.Resampling.LANCZOS


def plan(size: tuple[int, int], resize: Resize) -> tuple[tuple[int, int], tuple[int, int] | None]:
    """(scaled size, final size after the crop or None when nothing is cut) for ``size``."""
    w, h = size
    tw, th = resize.width, resize.height
    grow = resize.upscale
    mode = resize.mode
    if mode is ResizeMode.exact:
        return _box(resize), None
    if mode is ResizeMode.crop:
        tw, th = _box(resize)
        return (w, h), (min(tw, w), min(th, h)) if not grow else (tw, th)
    if mode in (ResizeMode.fit, ResizeMode.scale):
        factors = [f for f in ((tw / w) if tw else None, (th / h) if th else None) if f]
        factor = min(factors)
        if not grow:
            factor = min(factor, 1.0)
        return (max(1, round(w * factor)), max(1, round(h * factor))), None
    # cover, thumb
    tw, th = _box(resize)
    factor = max(tw / w, th / h)
    if not grow:
        factor = min(factor, 1.0)
    scaled = (max(1, round(w * factor)), max(1, round(h * factor)))
    return scaled, (min(tw, scaled[0]), min(th, scaled[1]))


def _box(resize: Resize) -> tuple[int, int]:
    """(width, height), which every mode but fit and scale has (:class:`Resize` validates it)."""
    if resize.width is None or resize.height is None:
        raise ValueError(f"resize mode {resize.mode.value} needs both width and height")
    return resize.width, resize.height


def apply(frames: list[Image.Image], resize: Resize) -> tuple[list[Image.Image], str]:
    """Resized frames and a one-line description of what was done ("" when nothing)."""
    first = frames[0]
    scaled, box = plan(first.size, resize)
    mode = resize.mode
    border = _plain_border(first) if mode is ResizeMode.thumb else None
    if border is not None:
        return _thumb_padded(frames, resize, border), (
            f"resized thumb {first.width}x{first.height} -> {resize.width}x{resize.height} "
            "(padded on its plain background)")
    anchor = resize.crop or (CropAnchor.center if mode is ResizeMode.crop else CropAnchor.entropy)
    out = []
    window = None
    for frame in frames:
        if scaled != frame.size:
            frame = frame.resize(scaled, _FILTER, reducing_gap=3.0)
        if box is not None and box != frame.size:
            if mode is ResizeMode.crop and resize.upscale and (box[0] > frame.width
                                                              or box[1] > frame.height):
                frame = _grow_to_cover(frame, box)
            if window is None:  # one window for every frame of an animation
                window = _window(frame, box, anchor)
            frame = frame.crop(window)
        out.append(frame)
    if out[0].size == first.size:
        return out, ""
    return out, f"resized {mode.value} {first.width}x{first.height} -> {out[0].width}x{out[0].height}"


def _grow_to_cover(frame: Image.Image, box: tuple[int, int]) -> Image.Image:
    factor = max(box[0] / frame.width, box[1] / frame.height)
    return frame.resize((max(box[0], round(frame.width * factor)),
                         max(box[1], round(frame.height * factor))), _FILTER)


def _window(frame: Image.Image, box: tuple[int, int], anchor: CropAnchor) -> tuple[int, int, int, int]:
    bw, bh = box
    w, h = frame.size
    x, y = (w - bw) // 2, (h - bh) // 2
    if anchor is CropAnchor.entropy and (w > bw or h > bh):
        luma = np.asarray(frame.convert("L"))
        if w > bw:
            x = _best_offset(luma, bw, axis=1)
        if h > bh:
            y = _best_offset(luma, bh, axis=0)
    return x, y, x + bw, y + bh


def _best_offset(luma: np.ndarray, length: int, axis: int) -> int:
    """The offset along ``axis`` of the ``length``-long window with the most entropy (16 steps)."""
    total = luma.shape[axis]
    best, best_entropy = (total - length) // 2, -1.0
    for offset in np.linspace(0, total - length, 17).astype(int):
        window = luma[offset:offset + length, :] if axis == 0 else luma[:, offset:offset + length]
        hist = np.bincount(window[::2, ::2].ravel(), minlength=256).astype(np.float64)
        p = hist[hist > 0] / hist.sum()
        entropy = float(-(p * np.log2(p)).sum())
        # prefer the centre on ties (within 1 %)
        if entropy > best_entropy * 1.01 or (entropy >= best_entropy * 0.99 and abs(
                offset - (total - length) / 2) < abs(best - (total - length) / 2)):
            best, best_entropy = int(offset), max(entropy, best_entropy)
    return best


def _plain_border(frame: Image.Image) -> tuple[int, ...] | None:
    """The colour of a uniform 2 px border (a cut-out subject), or None."""
    arr = np.asarray(frame)
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        return None
    edge = np.concatenate([arr[:2].reshape(-1, *arr.shape[2:]), arr[-2:].reshape(-1, *arr.shape[2:]),
                           arr[:, :2].reshape(-1, *arr.shape[2:]),
                           arr[:, -2:].reshape(-1, *arr.shape[2:])]).astype(np.int16)
    median = np.median(edge, axis=0)
    if np.abs(edge - median).max() > 6:
        return None
    return tuple(int(v) for v in np.atleast_1d(median))


def _thumb_padded(frames: list[Image.Image], resize: Resize,
                  border: tuple[int, ...]) -> list[Image.Image]:
    """``frames`` fitted into the box and padded with their plain border colour (else
    ``border``, the first frame's)."""
    box = _box(resize)
    out = []
    for frame in frames:
        color = _plain_border(frame) or border
        fitted, _ = plan(frame.size, Resize(mode=ResizeMode.fit, width=box[0], height=box[1],
                                            upscale=resize.upscale))
        small = frame.resize(fitted, _FILTER) if fitted != frame.size else frame
        canvas = Image.new(frame.mode, box, color if len(color) > 1 else color[0])
        canvas.paste(small, ((box[0] - small.width) // 2, (box[1] - small.height) // 2))
        out.append(canvas)
    return out
