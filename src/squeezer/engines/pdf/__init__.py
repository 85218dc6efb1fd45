"""The PDF engine: ``compress(src, dst, options) -> Report``."""

from squeezer.engines.pdf.options import ColorModel, PdfOptions, Preset, Settings
from squeezer.engines.pdf.pipeline import compress

__all__ = ["ColorModel", "PdfOptions", "Preset", "Settings", "compress"]
