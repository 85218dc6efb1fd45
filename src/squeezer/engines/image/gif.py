"""GIF output: frame differencing and palette reduction.

Pillow's GIF writer stores each frame after the first as the rectangle that
changed (``optimize`` also drops unused palette entries).  Lossless: the
decoded frames written again, kept only when every frame decodes to the same
pixels.  Lossy (the pipeline keeps the smallest that holds the level's SSIM
floor on every frame, :func:`frames_score`):

- one palette shared by every frame (:func:`shared_palette_frames`; opaque
  animations): libimagequant's palette of a montage of the frames, each frame
  remapped to it, so pixels that do not move keep the same index and the
  changed rectangle stays small (a generated 8-frame gradient animation: 35 %
  smaller than the input at SSIM 0.968, where per-frame palettes were not
  smaller at all);
- a palette per frame (:func:`palette_frames`, frames with transparency);
- each undithered (first) and dithered, downwards from the level's palette
  quality: dithering noise costs LZW bytes and luma SSIM on smooth areas.

Making unchanged pixels transparent inside the changed rectangle was measured
too and left out: after the shared palette it added 0.3-1 % (Pillow already
crops each frame to the rectangle that changed).
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


#: the montage a shared palette is built from: at most this many pixels (frames sampled)
SHARED_PALETTE_PIXELS = 4_000_000


def shared_palette_frames(frames: list[Image.Image], quality: int,
                          dither: float = 0.0) -> list[Image.Image] | None:
    """Every frame remapped to one palette (libimagequant on a montage of the frames, or
    Pillow's median cut on the non-GPL path); None for frames with transparency."""
    if any(f.mode in ("RGBA", "LA", "PA") or "transparency" in f.info for f in frames):
        return None
    rgb = [f.convert("RGB") for f in frames]
    w, h = rgb[0].size
    stride = max(1, -(-len(rgb) * w * h // SHARED_PALETTE_PIXELS))
    picked = rgb[::stride]
    montage = Image.new("RGB", (w, h * len(picked)))
    for i, frame in enumerate(picked):
        montage.paste(frame, (0, i * h))
    palette = png.quantize(montage, quality, 0.0)
    if palette is None:
        return None
    target = Image.new("P", (1, 1))
    target.putpalette(palette.getpalette("RGB") or [0, 0, 0])
    flag = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    return [frame.quantize(palette=target, dither=flag) for frame in rgb]


#: at most this many frames are measured for the floor (evenly spread, first and last included)
SCORED_FRAMES = 48


def frames_score(reference: list[Image.Image], result: list[Image.Image]) -> float:
    """The lowest SSIM floor measure over the frames (all of them, up to :data:`SCORED_FRAMES`)."""
    from squeezer.engines.image.quality import score

    n = len(reference)
    picks = sorted({round(i * (n - 1) / max(1, SCORED_FRAMES - 1))
                    for i in range(min(n, SCORED_FRAMES))})
    worst = 1.0
    for i in picks:
        ref = reference[i]
        got = result[i].convert("RGBA" if ref.mode in ("RGBA", "LA") else
                                "L" if ref.mode == "L" else "RGB")
        worst = min(worst, score(ref if ref.mode in ("RGB", "RGBA", "L") else
                                 ref.convert("RGBA"), got))
    return worst


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
