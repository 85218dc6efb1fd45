"""The image engine's options: its group of the options model and what each level means for it.

A request names a level (:class:`~squeezer.engines.level.Level`) and may
override single knobs in its ``image`` group; :func:`resolve` merges the
level's row of :data:`LEVELS`, the group and the common options into the
concrete :class:`ImageSettings` the engine runs with (the same pattern as
:mod:`squeezer.engines.pdf.options`).
"""

from __future__ import annotations

import re
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from squeezer.engines.level import Level
from squeezer.engines.optiontypes import OptionGroup

if TYPE_CHECKING:
    from squeezer.engines.options import Options


class OutputFormat(str, Enum):
    keep = "keep"  #: the input's format (HEIC, TIFF and BMP included)
    jpeg = "jpeg"
    png = "png"
    webp = "webp"
    avif = "avif"
    #: the smallest of the formats that keep the image's transparency and animation
    auto = "auto"


class ResizeMode(str, Enum):
    fit = "fit"      #: scale down proportionally to fit inside width x height
    cover = "cover"  #: scale proportionally to cover width x height, then crop the rest
    crop = "crop"    #: cut a width x height window out of the image, no scaling
    scale = "scale"  #: scale proportionally to the one given dimension
    thumb = "thumb"  #: cover, but a subject on a plain background is padded rather than cut
    exact = "exact"  #: exactly width x height, aspect ratio ignored (may enlarge)


class CropAnchor(str, Enum):
    center = "center"  # type: ignore[assignment]  # the member shadows str.center, by design
    entropy = "entropy"  #: the window with the most detail (Shannon entropy of luma)


class Keep(str, Enum):
    copyright = "copyright"  #: EXIF Artist/Copyright (and XMP rights when XMP is kept)
    location = "location"    #: EXIF GPS
    creation = "creation"    #: EXIF DateTimeOriginal/DateTimeDigitized/DateTime
    icc = "icc"              #: the ICC colour profile as it is (else converted to sRGB)


class Resize(BaseModel):
    """Tinify/Kraken-style resizing. Never enlarges unless ``upscale`` (``exact`` always obeys)."""

    model_config = ConfigDict(extra="forbid")

    mode: ResizeMode = ResizeMode.fit
    width: int | None = Field(None, ge=1, le=65_535)
    height: int | None = Field(None, ge=1, le=65_535)
    crop: CropAnchor | None = Field(
        None, description="Where cover/thumb/crop cut: center or entropy (default: "
        "entropy for cover and thumb, center for crop)."
    )
    upscale: bool = False

    @model_validator(mode="after")
    def _dimensions(self) -> Resize:
        if self.mode is ResizeMode.scale:
            if (self.width is None) == (self.height is None):
                raise ValueError("resize mode scale takes exactly one of width and height")
        elif self.mode is ResizeMode.fit:
            if self.width is None and self.height is None:
                raise ValueError("resize mode fit needs width, height or both")
        elif self.width is None or self.height is None:
            raise ValueError(f"resize mode {self.mode.value} needs both width and height")
        return self

    @classmethod
    def parse(cls, text: str) -> Resize:
        """``fit:800x600``, ``scale:800x``, ``scale:x600``, ``cover:300x300:entropy``."""
        m = re.fullmatch(r"\s*(\w+)\s*:\s*(\d*)\s*[x×]\s*(\d*)\s*(?::\s*(\w+))?\s*", text)
        if not m:
            raise ValueError(f"not a resize: {text!r} (use MODE:WxH, e.g. fit:800x600, scale:800x)")
        mode, w, h, anchor = m.groups()
        return cls(mode=mode, width=int(w) if w else None, height=int(h) if h else None,
                   crop=anchor)


_HEX = re.compile(r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


def parse_color(value: str) -> tuple[int, int, int]:
    """``#fff``, ``ffffff``, ``white``, ``black`` → an RGB triple."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0)}
    text = value.strip().lower()
    if text in named:
        return named[text]
    m = _HEX.match(text)
    if not m:
        raise ValueError(f"not a colour: {value!r} (use #rrggbb, #rgb, white or black)")
    digits = m.group(1)
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    return (int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))


class ImageLevel(BaseModel):
    """What one level means for an image: a row of :data:`LEVELS`."""

    model_config = ConfigDict(frozen=True)

    summary: str  #: one plain sentence for people choosing a level
    lossy: bool
    #: SSIM floor (luma, and alpha where present) every lossy result must keep
    ssim: float
    #: the highest quality the search may use (JPEG/WebP/AVIF/HEIC scale)
    quality_cap: int
    #: the lowest quality the search may use
    quality_floor: int
    #: libimagequant's target quality for PNG/GIF palettes
    palette_quality: int
    #: decimal places SVG coordinates keep (scour's precision)
    svg_precision: int


#: What each level means for an image (docs/options.md and ``GET /v1/options`` show the
#: summaries).  ``medium`` is what the image engine's default (then called ``high``) was.
LEVELS: dict[Level, ImageLevel] = {
    Level.lossless: ImageLevel(
        summary="Pixels untouched: metadata stripped and the file re-packed losslessly.",
        lossy=False, ssim=1.0, quality_cap=100, quality_floor=100, palette_quality=100,
        svg_precision=10),
    Level.low: ImageLevel(
        summary="Looks identical: the lowest quality that keeps SSIM at least 0.97.",
        lossy=True, ssim=0.97, quality_cap=90, quality_floor=50, palette_quality=90,
        svg_precision=8),
    Level.medium: ImageLevel(
        summary="No visible damage at normal viewing: the lowest quality that keeps SSIM at "
                "least 0.95.",
        lossy=True, ssim=0.95, quality_cap=85, quality_floor=35, palette_quality=80,
        svg_precision=6),
    Level.high: ImageLevel(
        summary="Smaller, slight loss on close inspection: SSIM at least 0.935.",
        lossy=True, ssim=0.935, quality_cap=80, quality_floor=30, palette_quality=72,
        svg_precision=5),
    Level.extreme: ImageLevel(
        summary="Smallest, with visible loss: SSIM at least 0.92.",
        lossy=True, ssim=0.92, quality_cap=75, quality_floor=25, palette_quality=65,
        svg_precision=4),
}


class ImageSettings(BaseModel):
    """Concrete values after a level, the ``image`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level
    lossy: bool
    ssim: float | None  #: None: a fixed ``quality``, no search
    quality_cap: int
    quality_floor: int
    palette_quality: int
    svg_precision: int
    format: OutputFormat
    resize: Resize | None
    background: tuple[int, int, int]
    preserve: tuple[Keep, ...]
    remove_metadata: bool = False
    target_size: int | None


class ImageOptions(OptionGroup):
    """Image options (JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP, SVG)."""

    title: ClassVar[str] = "Images"
    flat: ClassVar[bool] = True

    quality: int | None = Field(
        None, ge=1, le=100, description="A fixed quality (1-100) instead of the level's search."
    )
    format: OutputFormat = Field(
        OutputFormat.keep, description="Convert to jpeg, png, webp or avif; auto picks the "
        "smallest that keeps transparency and animation; keep leaves the format.")
    resize: Resize | None = Field(
        None, description="fit:800x600, scale:800x, cover:300x300, thumb:150x150, crop:WxH, "
        "exact:WxH (append :entropy or :center to choose the crop); never enlarges except exact.",
        json_schema_extra={"x-syntax": "MODE:WxH"})
    background: str = Field(
        "#ffffff", description="Colour transparent pixels are flattened onto for JPEG output."
    )
    preserve: list[Keep] = Field(default_factory=list,
                                 description="Metadata kept: copyright, location, creation, icc.",
                                 json_schema_extra={"x-syntax": "LIST"})

    @field_validator("resize", mode="before")
    @classmethod
    def _resize_text(cls, value: Any) -> Any:
        return Resize.parse(value) if isinstance(value, str) else value

    @field_validator("preserve", mode="before")
    @classmethod
    def _preserve_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("background")
    @classmethod
    def _background(cls, value: str) -> str:
        parse_color(value)
        return value

    @field_validator("format", mode="before")
    @classmethod
    def _format_alias(cls, value: Any) -> Any:
        return "jpeg" if isinstance(value, str) and value.lower() == "jpg" else value


def resolve(options: Options) -> ImageSettings:
    """The engine's :class:`ImageSettings` for ``options``."""
    group = options.image
    level = LEVELS[options.level]
    values: dict[str, Any] = level.model_dump(exclude={"summary"})
    values.update(level=options.level, ssim=level.ssim if level.lossy else None,
                  format=group.format, resize=group.resize,
                  background=parse_color(group.background),
                  preserve=tuple(dict.fromkeys(group.preserve)),
                  remove_metadata=options.remove_metadata, target_size=options.target_size)
    if group.quality is not None:
        values.update(lossy=True, ssim=None, quality_cap=group.quality,
                      quality_floor=group.quality, palette_quality=group.quality)
    if options.target_size is not None and not values["lossy"]:
        # a size target allows the lossy ladder
        values.update(lossy=True, ssim=None, quality_cap=LEVELS[Level.low].quality_cap,
                      quality_floor=20)
    return ImageSettings(**values)


def output_extension(kind: Any, options: Options) -> str | None:
    """The extension of an image's output (None for ``format: auto``: the run decides)."""
    from squeezer.engines.sniff import EXTENSIONS

    fmt = options.image.format.value
    if fmt == "keep" or kind.format == "svg":
        extension: str = kind.extension
        return extension
    if fmt == "auto":
        return None
    return EXTENSIONS[fmt]
