"""The GIF writer of :func:`squeezer.engines.image.gif.pack`: exact frames, smaller files.

``pack`` is trusted by the lossless path without decoding its output again, so these check
that every frame decodes to exactly the pixels given (moving objects, a frame identical to the
last, a still, few and many colours) and that the durations and the loop count survive.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageSequence

from squeezer.engines.image import compress, gif
from squeezer.engines.options import Options


def _decoded(data: bytes) -> tuple[list[np.ndarray], list[int], int | None]:
    image = Image.open(io.BytesIO(data))
    frames, durations = [], []
    for frame in ImageSequence.Iterator(image):
        frames.append(np.asarray(frame.convert("RGB")))
        durations.append(frame.info.get("duration", 0))
    return frames, durations, image.info.get("loop")


def _ball_over_gradient(n: int = 6, w: int = 160, h: int = 96) -> list[Image.Image]:
    y, x = np.mgrid[0:h, 0:w]
    grad = np.stack([x * 255 // w, y * 255 // h, 128 + 0 * x], -1).astype(np.uint8)
    frames = []
    for i in range(n):
        im = Image.fromarray(grad.copy())
        ImageDraw.Draw(im).ellipse((5 + i * 20, 30, 35 + i * 20, 60), fill=(220, 40, 40))
        frames.append(im.quantize(256, dither=Image.Dither.NONE).convert("RGB"))
    return frames


def test_pack_frames_decode_exactly_and_beat_pillows_writer() -> None:
    frames = _ball_over_gradient()
    frames.insert(3, frames[2].copy())  # the same picture twice: kept as a frame
    durations = [40, 80, 40, 120, 40, 60, 40]
    data = gif.pack(frames, durations, 0)
    assert data is not None
    got, got_durations, loop = _decoded(data)
    assert len(got) == len(frames)
    for a, b in zip(got, frames, strict=True):
        assert np.array_equal(a, np.asarray(b))
    assert got_durations == durations and loop == 0
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, optimize=True)
    # unchanged pixels inside each changed rectangle are transparent runs, and each table
    # holds only the colours used: well under Pillow's bytes
    assert len(data) < 0.85 * len(buf.getvalue())


def test_pack_still_few_colours_and_refusals() -> None:
    still = Image.new("RGB", (40, 30), (10, 20, 30))
    ImageDraw.Draw(still).rectangle((5, 5, 20, 20), fill=(200, 0, 0))
    data = gif.pack([still], [], None)
    assert data is not None
    got, _, _ = _decoded(data)
    assert len(got) == 1 and np.array_equal(got[0], np.asarray(still))
    # two colours: a 2-entry table (the header's flags) and 2-bit codes
    assert data[10] & 0x07 == 0 and data.index(b",") == 19
    buf = io.BytesIO()
    still.save(buf, "GIF", optimize=True)
    assert len(data) <= len(buf.getvalue())
    noisy = Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8))
    assert gif.pack([noisy], [], None) is None  # more than 256 colours
    alpha = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    assert gif.pack([alpha], [], None) is None  # transparency: Pillow's writer


def test_lossless_gif_animation_shrinks_with_its_frames_intact(tmp_path: Path) -> None:
    frames = _ball_over_gradient(8)
    src = tmp_path / "ball.gif"
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=50, loop=0)
    dst = tmp_path / "out.gif"
    report = compress(src, dst, Options(level="lossless"))
    assert dst.stat().st_size < 0.85 * src.stat().st_size
    got, durations, _ = _decoded(dst.read_bytes())
    assert report.frames == len(got) == 8 and durations == [50] * 8
    for a, b in zip(got, frames, strict=True):
        assert np.array_equal(a, np.asarray(b))


def test_a_play_once_animation_still_plays_once(tmp_path: Path) -> None:
    """A GIF without a NETSCAPE loop block plays once; a written loop count of 0 would make it
    loop forever.  Both writers (our packer for opaque frames, Pillow's for transparent ones)
    and every level keep the source's choice."""
    opaque = _ball_over_gradient(6)
    transparent = [f.convert("RGBA") for f in opaque]
    for frame in transparent:
        frame.putpixel((0, 0), (0, 0, 0, 0))
    for name, frames in (("opaque", opaque), ("transparent", transparent)):
        src = tmp_path / f"{name}.gif"
        frames[0].save(src, save_all=True, append_images=frames[1:], duration=80)
        assert "loop" not in Image.open(src).info  # the source plays once
        for level in ("lossless", "medium"):
            dst = tmp_path / f"{name}-{level}.gif"
            compress(src, dst, Options(level=level))
            with Image.open(dst) as out:
                assert out.n_frames == 6 and "loop" not in out.info, (name, level, out.info)
        looped = tmp_path / f"{name}-looped.gif"
        frames[0].save(looped, save_all=True, append_images=frames[1:], duration=80, loop=3)
        compress(looped, tmp_path / "out.gif", Options(level="medium"))
        assert Image.open(tmp_path / "out.gif").info.get("loop") == 3
