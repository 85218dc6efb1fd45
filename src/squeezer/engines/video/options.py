"""The video engine's options: its group of the options model and what each level means.

A level is a VMAF floor (:data:`LEVELS`): the engine searches the constant
rate factor (CRF) that keeps the sampled VMAF at or above it, then encodes
once (:mod:`squeezer.engines.video.search`).  ``lossless`` never re-encodes:
it remuxes.  ``video.quality``, ``video.crf`` and ``video.bitrate`` override
the search; the ``audio`` group governs the audio tracks of a video too (the
video family reads both groups).  :func:`resolve` merges the level's row, the
``video`` group and the common options into :class:`VideoSettings`.

``video.resize`` follows Compressor.app's validation (seed 001): mode
``auto`` needs at least one of ``width`` and ``height``, and an invalid
resize is a 422 whose ``errors[].field`` is ``video.resize``.
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


class VideoCodec(str, Enum):
    h264 = "h264"  #: libx264: plays everywhere (the default)
    h265 = "h265"  #: libx265: about a third smaller at the same VMAF, slower; Apple, TVs
    av1 = "av1"    #: SVT-AV1: smallest; modern browsers and devices
    vp9 = "vp9"    #: libvpx-vp9: WebM for browsers


class Container(str, Enum):
    auto = "auto"  #: MP4, or Matroska when the input is MKV or holds what MP4 cannot
    mp4 = "mp4"
    webm = "webm"
    mkv = "mkv"


class ResizeMode(str, Enum):
    auto = "auto"    #: fit inside the given width and/or height, keep the aspect, never enlarge
    fit = "fit"      #: fit inside width x height, keep the aspect (may enlarge)
    fill = "fill"    #: cover width x height, keep the aspect, cut the overflow (centred)
    crop = "crop"    #: cut a centred width x height window, no scaling
    exact = "exact"  #: exactly width x height, aspect ignored
    scale = "scale"  #: scale to the one given dimension, keep the aspect (may enlarge)


class VideoResize(BaseModel):
    """Compressor.app's ``video.resize``: ``{mode, width, height}``."""

    model_config = ConfigDict(extra="forbid")

    mode: ResizeMode = ResizeMode.auto
    width: int | None = Field(None, ge=2, le=16_384)
    height: int | None = Field(None, ge=2, le=16_384)

    @model_validator(mode="after")
    def _dimensions(self) -> VideoResize:
        mode = self.mode.value
        if self.mode is ResizeMode.auto:
            if self.width is None and self.height is None:
                raise ValueError(
                    "When mode='auto', at least one of 'width' or 'height' must be specified.")
        elif self.mode is ResizeMode.scale:
            if (self.width is None) == (self.height is None):
                raise ValueError(
                    "When mode='scale', exactly one of 'width' or 'height' must be specified.")
        elif self.width is None or self.height is None:
            raise ValueError(f"When mode='{mode}', both 'width' and 'height' must be specified.")
        return self

    @classmethod
    def parse(cls, text: str) -> VideoResize:
        """``auto:1280x``, ``fit:1280x720``, ``scale:x720``, ``fill:640x640``."""
        m = re.fullmatch(r"\s*(?:(\w+)\s*:)?\s*(\d*)\s*[x×]\s*(\d*)\s*", text)
        if not m:
            raise ValueError(f"not a resize: {text!r} (use MODE:WxH, e.g. auto:1280x, "
                             "fit:1280x720, scale:x720)")
        mode, w, h = m.groups()
        return cls(mode=mode or "auto", width=int(w) if w else None,
                   height=int(h) if h else None)


class Crop(BaseModel):
    """A window of the picture to keep: ``width`` x ``height`` at ``x``, ``y`` (pixels of the
    stored frame, before rotation)."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(ge=2, le=16_384)
    height: int = Field(ge=2, le=16_384)
    x: int = Field(0, ge=0, le=16_384)
    y: int = Field(0, ge=0, le=16_384)

    @classmethod
    def parse(cls, text: str) -> Crop:
        """``640x360+100+50`` (ImageMagick geometry) or ``640x360``."""
        m = re.fullmatch(r"\s*(\d+)\s*[x×]\s*(\d+)\s*(?:\+\s*(\d+)\s*\+\s*(\d+))?\s*", text)
        if not m:
            raise ValueError(f"not a crop box: {text!r} (use WxH+X+Y, e.g. 1280x720+0+180)")
        w, h, x, y = m.groups()
        return cls(width=int(w), height=int(h), x=int(x or 0), y=int(y or 0))


class VideoLevel(BaseModel):
    """What one level means for a video: a row of :data:`LEVELS`."""

    model_config = ConfigDict(frozen=True)

    summary: str  #: one plain sentence for people choosing a level
    reencode: bool  #: False: remux only
    #: the VMAF (on sampled scenes, mean over frames) the CRF search must keep
    vmaf: float
    #: the CRF range the search may use (x264/x265 scale; AV1/VP9 map it, ``encoders.crf_for``)
    crf_min: int
    crf_max: int


#: What each level means for a video (docs/video.md has the measurements behind the floors).
LEVELS: dict[Level, VideoLevel] = {
    Level.lossless: VideoLevel(
        summary="No re-encoding: streams copied into a clean, fast-start container; junk "
                "(empty data tracks, padding) dropped.",
        reencode=False, vmaf=100.0, crf_min=0, crf_max=0),
    Level.low: VideoLevel(
        summary="Re-encoded at the highest CRF whose sampled VMAF stays at least 97 "
                "(indistinguishable from the input).",
        reencode=True, vmaf=97.0, crf_min=14, crf_max=30),
    Level.medium: VideoLevel(
        summary="Re-encoded at the highest CRF whose sampled VMAF stays at least 95 "
                "(no visible loss at normal viewing).",
        reencode=True, vmaf=95.0, crf_min=16, crf_max=34),
    Level.high: VideoLevel(
        summary="Re-encoded at the highest CRF whose sampled VMAF stays at least 93 "
                "(slight loss on close inspection).",
        reencode=True, vmaf=93.0, crf_min=18, crf_max=38),
    Level.extreme: VideoLevel(
        summary="Re-encoded at the highest CRF whose sampled VMAF stays at least 90 "
                "(visible loss, smallest).",
        reencode=True, vmaf=90.0, crf_min=20, crf_max=42),
}


class VideoOptions(OptionGroup):
    """Video options (MP4, MOV, M4V, 3GP, MKV, WebM, AVI, MPEG-TS)."""

    title: ClassVar[str] = "Video"

    codec: VideoCodec = Field(
        VideoCodec.h264, description="Video codec of a re-encoded output: h264 (plays "
        "everywhere), h265, av1 or vp9. HDR input left at h264 becomes h265 (10-bit) so HDR "
        "is kept.")
    container: Container = Field(
        Container.auto, description="Output container: mp4, webm, mkv; auto keeps MKV as "
        "MKV (and uses MKV when MP4 cannot hold the subtitles), else MP4 (WebM for vp9/av1 "
        "from WebM).")
    quality: int | None = Field(
        None, ge=1, le=100, description="A fixed quality (1-100, mapped onto the codec's CRF) "
        "instead of the level's VMAF search.")
    crf: int | None = Field(
        None, ge=0, le=63, description="A fixed constant rate factor (codec's own scale: x264/"
        "x265 0-51, AV1/VP9 0-63) instead of the search.")
    bitrate: int | None = Field(
        None, ge=32, le=400_000, description="A fixed video bitrate in kbit/s instead of the "
        "search (with two_pass for an exact average).")
    vmaf: float | None = Field(
        None, ge=50, le=99.5, description="The VMAF floor of the CRF search instead of the "
        "level's (97 low, 95 medium, 93 high, 90 extreme).")
    resize: VideoResize | None = Field(
        None, description="{mode, width, height}: auto (fit inside, never enlarge; one "
        "dimension is enough), fit, fill, crop, exact, scale; CLI: MODE:WxH (auto:1280x).",
        json_schema_extra={"x-syntax": "MODE:WxH"})
    crop: Crop | None = Field(
        None, description="Keep only this window of the picture: WxH+X+Y (or {width, height, "
        "x, y}).", json_schema_extra={"x-syntax": "WxH+X+Y"})
    trim_start: float | None = Field(
        None, ge=0, le=1_000_000, description="Start the output this many seconds in.")
    trim_end: float | None = Field(
        None, gt=0, le=1_000_000, description="End the output at this second of the input.")
    max_fps: float | None = Field(
        None, ge=1, le=240, description="Frame-rate cap: faster video is brought down to it.")
    max_bitrate: int | None = Field(
        None, ge=32, le=400_000, description="Peak video bitrate in kbit/s (VBV cap for "
        "streaming).")
    two_pass: bool = Field(
        False, description="Two-pass encoding (with bitrate: an exact average bitrate).")
    remove_audio: bool = Field(False, description="Drop every audio track.")
    remove_subtitles: bool = Field(False, description="Drop every subtitle track.")

    @field_validator("resize", mode="before")
    @classmethod
    def _resize_text(cls, value: Any) -> Any:
        return VideoResize.parse(value) if isinstance(value, str) else value

    @field_validator("crop", mode="before")
    @classmethod
    def _crop_text(cls, value: Any) -> Any:
        return Crop.parse(value) if isinstance(value, str) else value

    @field_validator("trim_start", "trim_end", mode="before")
    @classmethod
    def _clock_text(cls, value: Any) -> Any:
        """``90``, ``"1:30"``, ``"00:01:30.5"`` → seconds."""
        if isinstance(value, str) and ":" in value:
            seconds = 0.0
            try:
                for part in value.strip().split(":"):
                    seconds = seconds * 60 + float(part)
            except ValueError:
                raise ValueError(f"not a time: {value!r} (seconds, or H:MM:SS)") from None
            return seconds
        return value

    @model_validator(mode="after")
    def _trim(self) -> VideoOptions:
        if self.trim_start is not None and self.trim_end is not None \
                and self.trim_end <= self.trim_start:
            raise ValueError("trim_end must be after trim_start")
        return self


class VideoSettings(BaseModel):
    """Concrete values after a level, the ``video`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level
    reencode: bool
    vmaf: float | None  #: None: a fixed CRF or bitrate, no search
    crf_min: int
    crf_max: int
    codec: VideoCodec
    codec_given: bool  #: the caller named the codec (an HDR input then keeps it)
    container: Container
    quality: int | None
    crf: int | None
    bitrate: int | None
    resize: VideoResize | None
    crop: Crop | None
    trim_start: float | None
    trim_end: float | None
    max_fps: float | None
    max_bitrate: int | None
    two_pass: bool
    remove_audio: bool
    remove_subtitles: bool
    remove_metadata: bool = False
    target_size: int | None = None

    @property
    def transforms(self) -> bool:
        """A change to the picture or timeline was asked (it forces a re-encode and keeps the
        result even when it is not smaller)."""
        return bool(self.resize or self.crop or self.max_fps or self.trim_start is not None
                    or self.trim_end is not None)


#: fields of the group that are not carried over by name
_GROUP_ONLY = {"vmaf"}


def resolve(options: Options) -> VideoSettings:
    """The engine's :class:`VideoSettings` for ``options``."""
    group = options.video
    level = LEVELS[options.level]
    values: dict[str, Any] = level.model_dump(exclude={"summary"})
    values.update(group.model_dump(exclude=_GROUP_ONLY))
    values.update(level=options.level, codec_given="codec" in group.model_fields_set,
                  remove_metadata=options.remove_metadata, target_size=options.target_size)
    values["vmaf"] = group.vmaf if group.vmaf is not None else level.vmaf
    fixed = group.quality is not None or group.crf is not None or group.bitrate is not None
    if fixed:
        values["vmaf"] = None
    if not level.reencode:
        # lossless re-encodes only when something is asked that a remux cannot do
        asked = fixed or group.vmaf is not None or "codec" in group.model_fields_set
        values["reencode"] = bool(asked or group.resize or group.crop or group.max_fps
                                  or group.max_bitrate or options.target_size)
        if values["reencode"] and values["vmaf"] is not None:
            medium = LEVELS[Level.low]
            values.update(vmaf=group.vmaf or medium.vmaf, crf_min=medium.crf_min,
                          crf_max=medium.crf_max)
    return VideoSettings(**values)


def output_extension(kind: Any, options: Options) -> str | None:
    """The output's extension when the options decide it (None: the streams decide)."""
    container = options.video.container
    if container is not Container.auto:
        return {"mp4": "mp4", "webm": "webm", "mkv": "mkv"}[container.value]
    return None
