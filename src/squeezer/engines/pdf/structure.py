"""Lossless structural clean-up (placeholder: filled in by the structure step)."""

from __future__ import annotations

import pikepdf

from squeezer.engines.pdf.options import Settings
from squeezer.engines.report import Report


def clean(pdf: pikepdf.Pdf, settings: Settings, report: Report) -> None:
    return None


def deduplicate_streams(pdf: pikepdf.Pdf, report: Report) -> None:
    return None
