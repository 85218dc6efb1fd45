"""Gray to 1-bit: adaptive (Sauvola) thresholding and light repair of bitonal images.

A global cut fails on real scans: paper darkens towards the spine, pencil
notes are lighter than print, a stamp sits on a tinted band.  Sauvola's
threshold ``T = m * (1 + k * (s / R - 1))`` follows the local mean ``m`` and
standard deviation ``s``: on flat paper (small ``s``) it sits well below the
paper, so noise stays white; across a stroke (large ``s``) it rises towards
the mean, so faint strokes become ink.  ``m`` and ``s`` change slowly, so
they are computed on a 4x smaller image and interpolated back, which costs a
fraction of a full-resolution window sum and gives the same masks to within a
few edge pixels.

:func:`repair` is PassportPDF's "character repair": isolated specks (scanner
dust) are removed and pinholes inside strokes filled, so G4 codes fewer runs
and text reads cleaner.
"""

from __future__ import annotations

from typing import cast

import numpy as np
from PIL import Image

#: Sauvola's sensitivity: 0.2 to 0.5 in the literature; lower keeps fainter strokes.
SAUVOLA_K = 0.2
#: The dynamic range of the standard deviation for 8-bit samples.
SAUVOLA_R = 128.0
#: Window side, in inches (about 37 pixels at 300 dpi: a few strokes wide).
WINDOW_INCHES = 0.125
#: Factor of the reduced image on which the local statistics are computed.
STATS_REDUCTION = 4
#: Pixels at least this bright are paper whatever the local statistics say (no noise specks
#: from a locally dark background).
PAPER_FLOOR = 0.92


def _box_mean(a: np.ndarray, w: int) -> np.ndarray:
    """Mean over a w x w window centred on each sample (edges replicated), same shape as ``a``."""
    r = w // 2
    p = np.pad(a, ((r + 1, r), (r + 1, r)), mode="edge")
    s = p.cumsum(axis=0).cumsum(axis=1)
    return (s[w:, w:] - s[:-w, w:] - s[w:, :-w] + s[:-w, :-w]) / (w * w)


def sauvola(gray: np.ndarray, dpi: float, k: float = SAUVOLA_K) -> np.ndarray:
    """Ink (True) where ``gray`` (H x W uint8) is darker than its local Sauvola threshold."""
    height, width = gray.shape
    f = STATS_REDUCTION if min(height, width) >= 16 * STATS_REDUCTION else 1
    small = Image.fromarray(gray).reduce(f) if f > 1 else Image.fromarray(gray)
    g = np.asarray(small, dtype=np.float64)
    w = max(3, round(dpi * WINDOW_INCHES / f) | 1)
    mean = _box_mean(g, w)
    var = np.maximum(_box_mean(g * g, w) - mean * mean, 0.0)
    threshold = mean * (1.0 + k * (np.sqrt(var) / SAUVOLA_R - 1.0))
    paper = float(np.percentile(g, 90)) * PAPER_FLOOR
    threshold = np.minimum(threshold, paper)
    # nearest-neighbour upsampling: the threshold changes slowly, a 4x4 step is invisible
    cut = np.clip(np.ceil(threshold), 0, 255).astype(np.uint8)
    if f > 1:
        cut = np.repeat(np.repeat(cut, f, axis=0), f, axis=1)[:height, :width]
    return gray < cut


def binarize(gray: np.ndarray, dpi: float, threshold: int | None = None) -> np.ndarray:
    """Ink mask of ``gray``: a fixed cut when ``threshold`` is given, else :func:`sauvola`."""
    if threshold is not None:
        return gray < threshold
    return sauvola(gray, dpi)


def _neighbours(ink: np.ndarray, radius: int) -> np.ndarray:
    """How many ink pixels lie in the (2r+1)^2 square around each pixel (itself included)."""
    a = ink.astype(np.uint8)
    w = 2 * radius + 1
    p = np.pad(a, radius).astype(np.uint16)
    # (w >= 1 arrays are summed, so neither sum is ever its start value 0)
    rows = cast(np.ndarray, sum(p[i:i + a.shape[0], :] for i in range(w)))
    return cast(np.ndarray, sum(rows[:, j:j + a.shape[1]] for j in range(w)))


def _spread(ink: np.ndarray, op: np.ufunc) -> np.ndarray:
    """``op`` of each pixel with its 8 neighbours, in two separable boolean passes (outside the
    image does not take part)."""
    rows = ink.copy()
    op(rows[:, 1:], ink[:, :-1], out=rows[:, 1:])
    op(rows[:, :-1], ink[:, 1:], out=rows[:, :-1])
    out = rows.copy()
    op(out[1:], rows[:-1], out=out[1:])
    op(out[:-1], rows[1:], out=out[:-1])
    return out


def dilate(ink: np.ndarray) -> np.ndarray:
    """The ink and its 8 neighbours (a one-pixel dilation)."""
    return _spread(ink, np.logical_or)


def repair(ink: np.ndarray) -> np.ndarray:
    """Remove specks (ink with at most 3 ink pixels in its 5x5 square) and fill pinholes
    (paper with at least 7 of its 8 neighbours ink)."""
    if ink.size == 0:
        return ink
    cleaned = ink & (_neighbours(ink, 2) > 3)
    around = _neighbours(cleaned, 1) - cleaned
    return cleaned | (around >= 7)
