"""The image engine: ``compress(src, dst, options) -> ImageReport``.

JPEG, PNG (APNG), GIF, WebP, AVIF, HEIC/HEIF, TIFF, BMP and SVG in; the same
format, or JPEG/PNG/WebP/AVIF (``image.format``), out.  Formats are sniffed
from the bytes (:mod:`squeezer.engines.sniff`); one module per concern:
options, decode (limits), metadata, resize, quality (SSIM floor), and one per
output family (jpeg, png, gif, webp_avif, legacy, svg), tied together by
:mod:`.pipeline`, which is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from squeezer.engines.image.options import (
    ImageOptions,
    ImageSettings,
    Keep,
    OutputFormat,
    Resize,
    ResizeMode,
)

if TYPE_CHECKING:
    from squeezer.engines.image.report import ImageInfo, ImageReport

__all__ = ["ImageInfo", "ImageOptions", "ImageReport", "ImageSettings", "Keep",
           "OutputFormat", "Resize", "ResizeMode", "compress"]


def __getattr__(name: str) -> Any:
    if name == "compress":
        from squeezer.engines.image.pipeline import compress

        return compress
    if name in ("ImageInfo", "ImageReport"):
        # (the report's models are built on first use: a PDF's cold run never needs them,
        # issue 18)
        from squeezer.engines.image import report

        return getattr(report, name)
    raise AttributeError(f"module 'squeezer.engines.image' has no attribute {name!r}")
