"""The image engine: ``compress(src, dst, options) -> ImageReport``.

JPEG, PNG (APNG), GIF, WebP, AVIF, HEIC/HEIF, TIFF, BMP and SVG in; the same
format, or JPEG/PNG/WebP/AVIF (``image.format``), out.  Formats are sniffed
from the bytes (:mod:`squeezer.engines.sniff`); one module per concern:
options, decode (limits), metadata, resize, quality (SSIM floor), and one per
output family (jpeg, png, gif, webp_avif, legacy, svg), tied together by
:mod:`.pipeline`, which is imported on first use.
"""

from __future__ import annotations

from typing import Any

from squeezer.engines.image.options import (
    ImageOptions,
    ImageSettings,
    Keep,
    OutputFormat,
    Resize,
    ResizeMode,
)
from squeezer.engines.image.report import ImageInfo, ImageReport

__all__ = ["ImageInfo", "ImageOptions", "ImageReport", "ImageSettings", "Keep",
           "OutputFormat", "Resize", "ResizeMode", "compress"]


def __getattr__(name: str) -> Any:
    if name == "compress":
        from squeezer.engines.image.pipeline import compress

        return compress
    raise AttributeError(f"module 'squeezer.engines.image' has no attribute {name!r}")
