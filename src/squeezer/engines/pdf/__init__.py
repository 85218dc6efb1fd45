"""The PDF engine: ``compress(src, dst, options) -> Report``.

``compress`` is imported on first use: the options model imports
:mod:`.options` without loading pikepdf, PDFium and numpy.
"""

from __future__ import annotations

from typing import Any

from squeezer.engines.pdf.options import ColorModel, PdfOptions, Settings

__all__ = ["ColorModel", "PdfOptions", "Settings", "compress"]


def __getattr__(name: str) -> Any:
    if name == "compress":
        from squeezer.engines.pdf.pipeline import compress

        return compress
    raise AttributeError(f"module 'squeezer.engines.pdf' has no attribute {name!r}")
