"""Structural similarity (SSIM) of two grayscale images, in numpy.

Used to check that a compressed result still looks like its input.  A 7x7
uniform window (separable sums, so the cost is linear in the pixel count) and
the standard constants of Wang et al. (2004).

Images are handled flat (one row after another in a 1-D array): every window
sum and every per-pixel formula is then an operation on contiguous 1-D arrays,
which numpy runs in one vectorised loop, where the same operation on 2-D views
that drop a few columns runs a short loop per row (column sums of a 300 x 300
mosaic took twice as long as row sums).  A window that would cross the right
edge wraps into the next row there; those positions are computed and ignored.
"""

from __future__ import annotations

import numpy as np

WINDOW = 7
C1 = (0.01 * 255) ** 2
C2 = (0.03 * 255) ** 2


#: :func:`ssim` compares large images a band of about this many pixels at a time.
BAND_PIXELS = 1 << 16


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two 8-bit grayscale images (cropped to the common size).

    A large image (a rendered page) is compared a band of rows at a time, each band with
    the rows its windows reach below it: the dozen temporaries of a band stay in the
    processor's cache where a whole page's went out to memory (a quarter less time on a
    page at 100 dpi).  Each window's value is computed as for the whole image, and the
    mean is taken over all of them at once, so the result is the same to the last bit.
    """
    h, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:h, :w], b[:h, :w]
    if np.array_equal(a, b):
        return 1.0  # the common case for pages whose images were untouched
    rows = max(1, BAND_PIXELS // max(1, w))
    if h < WINDOW or w < WINDOW or h - WINDOW + 1 <= 2 * rows:
        return Similarity(a)(b)
    values = np.empty((h - WINDOW + 1, w - WINDOW + 1), np.float32)
    for top in range(0, h - WINDOW + 1, rows):
        band = slice(top, min(top + rows, h - WINDOW + 1) + WINDOW - 1)
        values[top:top + rows] = Similarity(a[band]).values(b[band])
    return float(np.mean(values, dtype=np.float64))


def _box(flat: np.ndarray, width: int) -> np.ndarray:
    """Sums over every WINDOW x WINDOW window of a flat float32 image of integers (rows of
    ``width``), exact: position ``i * width + j`` holds the window whose top left is
    (i, j); positions whose window crosses the right or bottom edge hold wrapped sums or
    are cut off (the result is ``(WINDOW - 1) * (width + 1)`` shorter).

    Exact in float32: the samples are 8-bit, so a product of two is at most 255² and a
    window's sum of them at most 49 x 255² < 2**24; every partial sum is an integer that
    float32 holds exactly, whatever the order of the additions.  Separable, by doubling:
    sums of 2, then 4, then 4 + 2 + 1 neighbours along each axis, 8 array additions in
    all.  Twice as fast as a summed-area table (``cumsum``), and numpy's binary additions
    release the GIL where its ``cumsum`` holds it, so the image step's threads compare
    images in parallel.
    """
    assert WINDOW == 7  # (the doubling below spells out 7 = 4 + 2 + 1)
    two = flat[:-1] + flat[1:]
    four = two[:-2] + two[2:]
    cols = four[:-3] + two[4:-1]
    cols += flat[6:]
    w = width
    two = cols[:-w] + cols[w:]
    four = two[:-2 * w] + two[2 * w:]
    out = four[:-3 * w] + two[4 * w:-w]
    out += cols[6 * w:]
    return out


def _flat(plane: np.ndarray) -> np.ndarray:
    """An 8-bit plane's samples as a new flat float32 array (other dtypes: their integer
    parts, as the window sums need)."""
    if plane.dtype != np.uint8:
        plane = plane.astype(np.int32)
    return plane.astype(np.float32).reshape(-1)


class Similarity:
    """SSIM against one reference plane (8-bit): the 7x7 window, constants and sample-variance
    correction of Wang et al.

    The reference's statistics are computed once for all the planes compared
    with it (a JPEG quality search tries several), and the arithmetic is exact
    window sums and float32: 4x faster than float64 throughout, and equal to the
    tests' independent float64 SSIM within 1e-6 (tested).  The compared plane's
    side runs in place on its own temporaries: the same float32 operations in the
    same order (so the same result, bit for bit), on fewer fresh arrays.
    """

    def __init__(self, plane: np.ndarray):
        n = WINDOW * WINDOW
        self.shape = plane.shape
        self.x = _flat(plane)
        width = plane.shape[1]
        self.sx = _box(self.x, width)
        self.mx = self.sx / n
        self.sxx = (_box(self.x * self.x, width) - self.sx * self.mx) / (n - 1)
        self.mx2 = self.mx * self.mx + C1
        self.sxx2 = self.sxx + C2
        self.twice_mx = 2 * self.mx  # (exact; the formula's 2 * mx * my is (2 * mx) * my)

    def __call__(self, plane: np.ndarray) -> float:
        """Mean SSIM of ``plane`` against the reference (0.0 when their shapes differ)."""
        if plane.shape != self.shape:
            return 0.0
        height, width = plane.shape
        if height < WINDOW or width < WINDOW:
            return 1.0 if np.array_equal(plane, self.x.reshape(self.shape)) else 0.0
        return float(np.mean(self.values(plane), dtype=np.float64))

    def values(self, plane: np.ndarray) -> np.ndarray:
        """The SSIM of each window inside ``plane`` (of the reference's shape, at least
        WINDOW x WINDOW) against the reference, as one contiguous float32 array."""
        height, width = plane.shape
        n = WINDOW * WINDOW
        y = _flat(plane)
        sy = _box(y, width)
        my = sy / n
        sy *= my
        syy = _box(y * y, width)
        syy -= sy
        syy /= n - 1                       # (box(y²) - sy * my) / (n - 1)
        y *= self.x
        sxy = _box(y, width)
        sxy -= self.sx * my
        sxy /= n - 1                       # (box(xy) - sx * my) / (n - 1)
        sxy *= 2
        sxy += C2
        num = self.twice_mx * my
        num += C1
        num *= sxy                         # (2 mx my + C1) (2 sxy + C2)
        den = my * my
        den += self.mx2
        syy += self.sxx2
        den *= syy                         # (mx² + my² + C1) (sxx + syy + C2)
        num /= den
        # the windows inside the image, as one contiguous array: a mean sums it in the
        # same order as it would the 2-D map of SSIM values
        inside = np.lib.stride_tricks.as_strided(
            num, shape=(height - WINDOW + 1, width - WINDOW + 1),
            strides=(width * num.itemsize, num.itemsize), writeable=False)
        return np.ascontiguousarray(inside)
