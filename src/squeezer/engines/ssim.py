"""Structural similarity (SSIM) of two grayscale images, in numpy.

Used to check that a compressed result still looks like its input.  A 7x7
uniform window (separable sums, so the cost is linear in the pixel count) and
the standard constants of Wang et al. (2004).
"""

from __future__ import annotations

import numpy as np

WINDOW = 7
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two 8-bit grayscale images (cropped to the common size)."""
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    if np.array_equal(a[:h, :w], b[:h, :w]):
        return 1.0  # the common case for pages whose images were untouched
    return Similarity(a[:h, :w])(b[:h, :w])


def _box(a: np.ndarray) -> np.ndarray:
    """Sums over every WINDOW x WINDOW window of an int32 image, exact, as float32.

    Separable, by doubling: sums of 2, then 4, then 4 + 2 + 1 neighbours along
    each axis, 8 array additions in all.  Twice as fast as a summed-area table
    (``cumsum``) at the JPEG search's mosaic size, and numpy's binary additions
    release the GIL where its ``cumsum`` holds it, so the image step's threads
    compare images in parallel.
    """
    assert WINDOW == 7  # (the doubling below spells out 7 = 4 + 2 + 1)

    def along(x: np.ndarray, axis: int) -> np.ndarray:
        def cut(y: np.ndarray, start: int | None, stop: int | None) -> np.ndarray:
            return y[:, start:stop] if axis else y[start:stop]
        two = cut(x, None, -1) + cut(x, 1, None)
        four = cut(two, None, -2) + cut(two, 2, None)
        return cut(four, None, -3) + cut(two, 4, -1) + cut(x, 6, None)

    return along(along(a, 1), 0).astype(np.float32)


class Similarity:
    """SSIM against one reference plane (8-bit): the 7x7 window, constants and sample-variance
    correction of Wang et al.

    The reference's statistics are computed once for all the planes compared
    with it (a JPEG quality search tries several), and the arithmetic is
    integer window sums and float32: 4x faster than float64 throughout, and
    equal to the tests' independent float64 SSIM within 1e-6 (tested).
    """

    def __init__(self, plane: np.ndarray):
        n = WINDOW * WINDOW
        self.x = plane.astype(np.int32)
        self.sx = _box(self.x)
        self.mx = self.sx / n
        self.sxx = (_box(self.x * self.x) - self.sx * self.mx) / (n - 1)
        self.mx2 = self.mx * self.mx + C1
        self.sxx2 = self.sxx + C2

    def __call__(self, plane: np.ndarray) -> float:
        if plane.shape != self.x.shape:
            return 0.0
        if plane.shape[0] < WINDOW or plane.shape[1] < WINDOW:
            return 1.0 if np.array_equal(plane, self.x) else 0.0
        n = WINDOW * WINDOW
        y = plane.astype(np.int32)
        sy = _box(y)
        my = sy / n
        syy = (_box(y * y) - sy * my) / (n - 1)
        sxy = (_box(self.x * y) - self.sx * my) / (n - 1)
        num = (2 * self.mx * my + C1) * (2 * sxy + C2)
        den = (self.mx2 + my * my) * (self.sxx2 + syy)
        return float(np.mean(num / den, dtype=np.float64))
