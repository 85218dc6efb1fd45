"""Image recompression (placeholder until the image pipeline lands)."""

from __future__ import annotations

import pikepdf

from squeezer.engines.budget import Budget
from squeezer.engines.pdf.options import Settings
from squeezer.engines.report import Report


def optimize_images(pdf: pikepdf.Pdf, settings: Settings, budget: Budget, report: Report) -> None:
    """Recompress every image XObject of ``pdf`` in place according to ``settings``."""
    return None
