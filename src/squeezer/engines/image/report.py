"""What one image compression did, as plain JSON-serialisable data.

The sibling of :class:`squeezer.engines.report.Report` (same ``input_bytes``,
``output_bytes``, ``ratio``, ``original_kept``, ``target_*``, ``settings``,
``warnings``, ``elapsed_seconds``, ``engine_versions``), with the facts an
image has instead of pages and streams.  ``kind`` tells the two apart.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from squeezer.engines.report import RunReport


class ImageInfo(BaseModel):
    """The metadata extraction report of one image (input or output)."""

    format: str
    width: int = 0
    height: int = 0
    frames: int = 1
    animated: bool = False
    mode: str = ""  #: Pillow's mode (RGB, RGBA, L, P, CMYK, I;16 ...)
    color_space: str = ""  #: rgb, gray, cmyk, palette, ycbcr...
    has_alpha: bool = False
    bit_depth: int = 8
    icc_profile: str | None = None  #: the profile's description, when there is one
    #: a short EXIF summary: make, model, datetime, orientation, gps (yes/no), copyright, artist
    exif: dict[str, str] = Field(default_factory=dict)
    xmp: bool = False
    jpeg_quality: int | None = None  #: estimated from the quantisation tables


class ImageReport(RunReport):
    """The outcome of one image compression."""

    kind: Literal["image"] = "image"
    format_in: str = ""
    format_out: str = ""
    width: int = 0  #: of the output
    height: int = 0
    frames: int = 1
    input: ImageInfo | None = None  #: the metadata report of the input
    #: what was done, in order ("exif orientation applied", "resized fit 1200x800 -> 800x533",
    #: "jpeg: jpegli q62 + mozjpeg", "metadata stripped: exif, xmp" ...)
    actions: list[str] = Field(default_factory=list)
    quality: int | None = None  #: the quality the lossy encoder used
    #: SSIMULACRA2 of the output against the (oriented, resized, flattened) pixels: 100 is
    #: identical, 90 indistinguishable side by side, 85 the default level's floor
    score: float | None = None
    #: the fraction of the input's smooth gradients where the output has new band edges
    banding: float | None = None
    metadata_kept: list[str] = Field(default_factory=list)
    metadata_removed: list[str] = Field(default_factory=list)
    #: candidates tried (format/method -> bytes) when more than one was
    candidates: dict[str, int] = Field(default_factory=dict)
