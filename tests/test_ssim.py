"""The engine's SSIM agrees with the independent implementation the tests use."""

from __future__ import annotations

import io

import numpy as np
import pdfgen
from PIL import Image

from squeezer.engines.ssim import C1, C2, Similarity, ssim


def test_identical_images_score_one_and_noise_scores_less():
    rng = np.random.default_rng(3)
    a = rng.integers(0, 256, (120, 90), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, a.copy()) == 1.0
    score = ssim(a, noisy)
    assert 0.3 < score < 0.99
    assert abs(score - pdfgen.ssim(a, noisy)) < 1e-6


def test_tiny_or_mismatched_sizes_are_handled():
    a = np.zeros((5, 5), dtype=np.uint8)
    assert ssim(a, a) == 1.0 and ssim(a, a + 1) == 0.0
    big = np.full((40, 50), 128, dtype=np.uint8)
    assert ssim(big, big[:30, :45]) == 1.0  # cropped to the common size


def _ssim_2d(a: np.ndarray, b: np.ndarray) -> float:
    """The engine's SSIM as it was before it went flat: 2-D int32 window sums, then the same
    float32 formula (the flat one must give the same number, bit for bit: JPEG searches
    compare it with a floor, so a last-bit change could change a chosen quality)."""
    def box(x: np.ndarray) -> np.ndarray:
        x = np.lib.stride_tricks.sliding_window_view(x, (7, 7)).sum(axis=(2, 3))
        return x.astype(np.float32)

    x, y = a.astype(np.int32), b.astype(np.int32)
    sx, sy = box(x), box(y)
    mx, my = sx / 49, sy / 49
    sxx = (box(x * x) - sx * mx) / 48
    syy = (box(y * y) - sy * my) / 48
    sxy = (box(x * y) - sx * my) / 48
    num = (2 * mx * my + C1) * (2 * sxy + C2)
    den = (mx * mx + C1 + my * my) * (sxx + C2 + syy)
    return float(np.mean(num / den, dtype=np.float64))


def test_the_flat_ssim_is_the_2d_formula_bit_for_bit():
    rng = np.random.default_rng(7)
    planes = [rng.integers(0, 256, (h, w), dtype=np.uint8)
              for h, w in ((7, 7), (8, 31), (97, 7), (120, 91), (301, 299))]
    yy, xx = np.mgrid[0:157, 0:203]
    smooth = 128 + 60 * np.sin(xx / 17.0) * np.cos(yy / 23.0) + rng.normal(0, 4, xx.shape)
    planes.append(np.clip(smooth, 0, 255).astype(np.uint8))  # photo-like: JPEG keeps it well
    for a in planes:
        for quality in (10, 40, 90):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, "JPEG", quality=quality)
            b = np.asarray(Image.open(buf))
            reference = Similarity(a)
            assert reference(b) == _ssim_2d(a, b)
            assert abs(reference(b) - pdfgen.ssim(a, b)) < 1e-6
            assert reference(a) == 1.0 or abs(reference(a) - 1.0) < 1e-6


def test_windows_do_not_wrap_across_rows():
    # the left and right edges differ wildly: a window wrapping from one row's end to the
    # next row's start would see that, the 2-D windows never do
    a = np.zeros((40, 30), np.uint8)
    a[:, 25:] = 255
    b = a.copy()
    b[:, :5] = 255  # changed only where a wrapped window would straddle the edge
    b[:, 25:] = 0
    assert Similarity(a)(b) == _ssim_2d(a, b)
    assert abs(Similarity(a)(b) - pdfgen.ssim(a, b)) < 1e-6


def test_a_page_compared_band_by_band_gives_the_whole_comparison_bit_for_bit():
    rng = np.random.default_rng(9)
    yy, xx = np.mgrid[0:600, 0:500]
    page = np.clip(128 + 80 * np.sin(xx / 13) * np.cos(yy / 29) + rng.normal(0, 10, xx.shape),
                   0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(page).save(buf, "JPEG", quality=30)
    render = np.asarray(Image.open(buf))
    assert 600 - 6 > 2 * (65536 // 500)  # (several bands)
    banded = ssim(page, render)
    assert banded == Similarity(page)(render) == _ssim_2d(page, render)
    assert abs(banded - pdfgen.ssim(page, render)) < 1e-6
    # cropped to the common size, as before
    assert ssim(page, np.pad(render, ((0, 3), (0, 5)))) == banded
