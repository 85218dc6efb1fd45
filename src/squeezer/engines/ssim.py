"""Structural similarity (SSIM) of two grayscale images, in numpy.

Used to check that a compressed result still looks like its input.  A 7x7
uniform window (computed with summed-area tables, so the cost is linear in
the pixel count) and the standard constants of Wang et al. (2004).
"""

from __future__ import annotations

import numpy as np

WINDOW = 7
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def _box_mean(a: np.ndarray, w: int) -> np.ndarray:
    s = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), axis=0), axis=1)
    return (s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]) / (w * w)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two equally sized 8-bit grayscale images (cropped to the common size)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    if np.array_equal(a[:h, :w], b[:h, :w]):
        return 1.0  # the common case for pages whose images were untouched
    if h < WINDOW or w < WINDOW:
        return 0.0
    x = a[:h, :w].astype(np.float64)
    y = b[:h, :w].astype(np.float64)
    mx, my = _box_mean(x, WINDOW), _box_mean(y, WINDOW)
    sxx = _box_mean(x * x, WINDOW) - mx * mx
    syy = _box_mean(y * y, WINDOW) - my * my
    sxy = _box_mean(x * y, WINDOW) - mx * my
    n = WINDOW * WINDOW
    sxx, syy, sxy = sxx * n / (n - 1), syy * n / (n - 1), sxy * n / (n - 1)
    num = (2 * mx * my + C1) * (2 * sxy + C2)
    den = (mx * mx + my * my + C1) * (sxx + syy + C2)
    return float(np.mean(num / den))
