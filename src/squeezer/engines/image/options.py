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
    #: SSIMULACRA2 score every lossy result must keep (alpha: over a dark and a light
    #: background); calibrated on real images, see docs/images.md
    score: float
    #: the most banding a lossy result may add (:func:`~squeezer.engines.image.quality.banding`:
    #: the fraction of the smooth-gradient area with new band edges)
    banding: float
    #: the highest quality the search may use (JPEG/WebP/AVIF/HEIC scale)
    quality_cap: int
    #: the lowest quality the search may use
    quality_floor: int
    #: the JPEG quality that usually lands on the floor: the search starts there (2-4 encodes
    #: instead of a walk up from the lowest)
    quality_start: int
    #: libimagequant's target quality for PNG/GIF palettes
    palette_quality: int
    #: decimal places SVG coordinates keep (scour's precision)
    svg_precision: int


#: What each level means for an image (docs/options.md and ``GET /v1/options`` show the
#: summaries).  ``medium`` is what the image engine's default (then called ``high``) was.
#:
#: SSIMULACRA2 floors, judged on 2x crops of real photographs, screenshots and gradients
#: (bench/results/image-crops/): 90 is indistinguishable side by side; at 85 a careful viewer
#: finds no difference at 2x (text, fur, skies), while a JPEG of a smooth gradient at 81 shows
#: its 8x8 blocks, which the banding limit catches below 85 as well; 78 shows softening and
#: faint blocking only when compared; 68 is clearly lossy but free of gross artefacts.
LEVELS: dict[Level, ImageLevel] = {
    Level.lossless: ImageLevel(
        summary="Pixels untouched: metadata (but the copyright) stripped and the file re-packed "
                "losslessly.",
        lossy=False, score=100.0, banding=0.0, quality_cap=100, quality_floor=100,
        quality_start=100, palette_quality=100, svg_precision=10),
    Level.low: ImageLevel(
        summary="Looks identical side by side: the lowest quality that keeps SSIMULACRA2 at "
                "least 90.",
        lossy=True, score=90.0, banding=0.01, quality_cap=95, quality_floor=60,
        quality_start=92, palette_quality=95, svg_precision=8),
    Level.medium: ImageLevel(
        summary="No visible damage to a careful viewer: the lowest quality that keeps "
                "SSIMULACRA2 at least 85 and adds no banding.",
        lossy=True, score=85.0, banding=0.015, quality_cap=90, quality_floor=45,
        quality_start=86, palette_quality=90, svg_precision=6),
    Level.high: ImageLevel(
        summary="Smaller, slight loss when compared closely: SSIMULACRA2 at least 78.",
        lossy=True, score=78.0, banding=0.025, quality_cap=85, quality_floor=35,
        quality_start=78, palette_quality=75, svg_precision=5),
    Level.extreme: ImageLevel(
        summary="Smallest, with visible loss: SSIMULACRA2 at least 68.",
        lossy=True, score=68.0, banding=0.05, quality_cap=80, quality_floor=25,
        quality_start=66, palette_quality=60, svg_precision=4),
}


class ImageSettings(BaseModel):
    """Concrete values after a level, the ``image`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level
    lossy: bool
    #: the SSIMULACRA2 floor; None: a fixed ``quality`` or a size target, no search
    score: float | None
    banding: float
    quality_cap: int
    quality_floor: int
    quality_start: int
    palette_quality: int
    svg_precision: int
    format: OutputFormat
    resize: Resize | None
    background: tuple[int, int, int]
    #: the metadata groups written (copyright unless ``remove_metadata``, plus ``preserve``)
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
                                 description="Metadata kept besides the copyright and author "
                                 "(kept unless remove_metadata): location, creation, icc.",
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
    # one metadata behaviour (metadata.py): copyright and author stay unless removal is asked
    preserve = list(group.preserve) + ([] if options.remove_metadata else [Keep.copyright])
    values.update(level=options.level, score=level.score if level.lossy else None,
                  format=group.format, resize=group.resize,
                  background=parse_color(group.background),
                  preserve=tuple(dict.fromkeys(preserve)),
                  remove_metadata=options.remove_metadata, target_size=options.target_size)
    if group.quality is not None:
        values.update(lossy=True, score=None, quality_cap=group.quality,
                      quality_floor=group.quality, palette_quality=group.quality)
    if options.target_size is not None and not values["lossy"]:
        # a size target allows the lossy ladder
        values.update(lossy=True, score=None, quality_cap=LEVELS[Level.low].quality_cap,
                      quality_floor=20)
    values["quality_start"] = min(values["quality_cap"],
                                  max(values["quality_floor"], values["quality_start"]))
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
