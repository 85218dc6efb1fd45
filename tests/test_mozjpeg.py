"""mozjpeg's lossless re-pack: same pixels, and a JPEG that makes the library call exit(1)
ends only its helper process, never ours."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from squeezer.engines import mozjpeg

sys.path.insert(0, str(Path(__file__).parent / "hostile"))
import generate  # noqa: E402


def _photo() -> bytes:
    noise = np.random.default_rng(7).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).resize((512, 384)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_an_outside_jpeg_is_repacked_smaller_with_the_same_pixels():
    data = _photo()
    out = mozjpeg.repack(data)
    assert out is not None and len(out) < len(data)
    assert np.array_equal(_pixels(out), _pixels(data))
    assert mozjpeg.repack(data, trusted=True) == out  # the helper and in-process agree


def test_a_jpeg_that_ends_the_library_is_kept_and_the_next_one_is_repacked():
    bad = generate.coefficient_overflow_jpeg()
    Image.open(io.BytesIO(bad)).load()  # a decoder reads it: the damage is in its numbers
    assert mozjpeg.repack(bad) is None
    assert mozjpeg.repack(b"not a jpeg at all") is None
    data = _photo()
    out = mozjpeg.repack(data)  # a new helper took over from the one that ended
    assert out is not None and np.array_equal(_pixels(out), _pixels(data))
