"""The engine's SSIM agrees with the independent implementation the tests use."""

from __future__ import annotations

import numpy as np
import pdfgen

from squeezer.engines.ssim import ssim


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
