"""GIF output: frame differencing and palette reduction.

Pillow's GIF writer stores each frame after the first as the rectangle that
changed (``optimize`` also drops unused palette entries).  Lossless: the
decoded frames written again, kept only when every frame decodes to the same
pixels.  Lossy: each frame's palette chosen by libimagequant at the level's
palette quality (dithered), the result kept only at the level's SSIM floor.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageSequence

from squeezer.engines.image import png


def save(frames: list[Image.Image], durations: list[int], loop: int | None) -> bytes:
    buf = io.BytesIO()
    extra: dict = {"optimize": True}
    if len(frames) > 1:
        extra.update(save_all=True, append_images=frames[1:], duration=durations or 100,
                     loop=0 if loop is None else loop, disposal=1 if not _alpha(frames) else 2)
    frames[0].save(buf, "GIF", **extra)
    return buf.getvalue()


def _alpha(frames: list[Image.Image]) -> bool:
    return any(f.mode == "RGBA" or "transparency" in f.info for f in frames)


def palette_frames(frames: list[Image.Image], quality: int,
                   dither: float = 1.0) -> list[Image.Image] | None:
    out = []
    for frame in frames:
        quantized = png.palette_frame(frame, quality, dither)
        if quantized is None:
            return None
        out.append(quantized)
    return out


def frames_equal(data: bytes, frames: list[Image.Image]) -> bool:
    """Whether the GIF ``data`` decodes to exactly ``frames`` (as RGBA)."""
    try:
        image = Image.open(io.BytesIO(data))
        decoded = [f.convert("RGBA") for f in ImageSequence.Iterator(image)]
    except Exception:  # noqa: BLE001
        return False
    if len(decoded) != len(frames):
        return False
    for a, b in zip(decoded, frames, strict=True):
        x, y = np.asarray(a), np.asarray(b.convert("RGBA"))
        if x.shape != y.shape:
            return False
        visible = (x[..., 3] > 0) | (y[..., 3] > 0)
        if not np.array_equal(x[visible], y[visible]):
            return False
    return True


def decode_frames(data: bytes) -> list[Image.Image]:
    image = Image.open(io.BytesIO(data))
    return [f.convert("RGBA") for f in ImageSequence.Iterator(image)]
