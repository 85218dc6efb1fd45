"""The audio engine's options: its group of the options model and what each level means.

A level is a bitrate per channel for each codec (:data:`LEVELS`), chosen from
measurements (docs/audio.md): ``lossless`` keeps every sample (FLAC at its
highest compression for PCM and FLAC input, a clean remux for the rest).
The ``audio`` group also governs the audio tracks of a video.
:func:`resolve` merges the level's row, the group and the common options into
:class:`AudioSettings`.
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from squeezer.engines.level import Level
from squeezer.engines.optiontypes import OptionGroup

if TYPE_CHECKING:
    from squeezer.engines.options import Options


class AudioCodec(str, Enum):
    #: keep MP3, AAC and Opus as they are; Vorbis becomes Opus; PCM and the rest become AAC
    #: (M4A) at the lossy levels and FLAC at lossless
    auto = "auto"
    opus = "opus"
    aac = "aac"
    mp3 = "mp3"
    flac = "flac"


#: what each channel beyond the front pair costs, as a share of the per-channel rate (5.1 at
#: 48 kbit/s per channel: 48 x (2 + 0.75 x 3) = 204 kbit/s; the LFE channel costs nothing)
SURROUND_SHARE = 0.75


class AudioLevel(BaseModel):
    """What one level means for audio: a row of :data:`LEVELS`."""

    model_config = ConfigDict(frozen=True)

    summary: str
    lossy: bool
    #: kbit/s per channel for each lossy codec (an LFE channel counts for nothing)
    opus: int
    aac: int
    mp3: int


#: What each level means for audio (docs/audio.md has the measurements behind the rates).
LEVELS: dict[Level, AudioLevel] = {
    Level.lossless: AudioLevel(
        summary="Every sample kept: PCM and FLAC become FLAC at its highest compression; "
                "other codecs are remuxed, never re-encoded.",
        lossy=False, opus=0, aac=0, mp3=0),
    Level.low: AudioLevel(
        summary="Transparent: Opus 64, AAC 96, MP3 112 kbit/s per channel.",
        lossy=True, opus=64, aac=96, mp3=112),
    Level.medium: AudioLevel(
        summary="Near-transparent: Opus 48, AAC 64, MP3 56 kbit/s per channel.",
        lossy=True, opus=48, aac=64, mp3=56),
    Level.high: AudioLevel(
        summary="Good for speech and casual listening: Opus 32, AAC 48, MP3 48 kbit/s per "
                "channel.",
        lossy=True, opus=32, aac=48, mp3=48),
    Level.extreme: AudioLevel(
        summary="Smallest; speech stays clear, music loses detail: Opus 20, AAC 32, MP3 32 "
                "kbit/s per channel.",
        lossy=True, opus=20, aac=32, mp3=32),
}


class AudioOptions(OptionGroup):
    """Audio options (MP3, AAC/M4A, WAV, FLAC, OGG/Opus, AIFF; and a video's audio tracks)."""

    title: ClassVar[str] = "Audio"

    codec: AudioCodec = Field(
        AudioCodec.auto, description="opus, aac, mp3 or flac; auto keeps MP3, AAC and Opus, "
        "turns Vorbis into Opus and PCM into AAC (FLAC at lossless).")
    bitrate: int | None = Field(
        None, ge=6, le=1024, description="Total bitrate in kbit/s instead of the level's rate "
        "per channel.")


class AudioSettings(BaseModel):
    """Concrete values after a level, the ``audio`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level
    lossy: bool
    opus: int
    aac: int
    mp3: int
    codec: AudioCodec
    bitrate: int | None
    remove_metadata: bool = False
    target_size: int | None = None

    def kbps(self, codec: str, channels: int, lfe: bool = False) -> int:
        """The total bitrate for ``codec`` with ``channels`` channels at this level."""
        if self.bitrate is not None:
            return self.bitrate
        per_channel = {"opus": self.opus, "aac": self.aac, "mp3": self.mp3}[codec]
        counted = float(max(1, channels - (1 if lfe else 0)))
        if counted > 2:  # surround channels share more with each other than a stereo pair
            counted = 2 + SURROUND_SHARE * (counted - 2)
        total = round(per_channel * counted)
        if codec == "mp3":
            total = min(total, 320)  # MP3's highest rate; MP3 has at most two channels
        return total


def resolve(options: Options) -> AudioSettings:
    """The engine's :class:`AudioSettings` for ``options``."""
    group = options.audio
    level = LEVELS[options.level]
    values: dict[str, Any] = level.model_dump(exclude={"summary"})
    values.update(group.model_dump())
    values.update(level=options.level, remove_metadata=options.remove_metadata,
                  target_size=options.target_size)
    if group.bitrate is not None and not level.lossy:
        values["lossy"] = True  # a bitrate is a lossy request
        values.update({k: v for k, v in LEVELS[Level.low].model_dump().items()
                       if k in ("opus", "aac", "mp3")})
    if group.codec in (AudioCodec.opus, AudioCodec.aac, AudioCodec.mp3) and not level.lossy:
        values["lossy"] = True
        values.update({k: v for k, v in LEVELS[Level.low].model_dump().items()
                       if k in ("opus", "aac", "mp3")})
    return AudioSettings(**values)


#: the output format (``squeezer.engines.sniff`` names) of each codec, alone
CODEC_FORMAT = {"opus": "opus", "aac": "m4a", "mp3": "mp3", "flac": "flac"}


def output_extension(kind: Any, options: Options) -> str | None:
    """The output's extension when the options decide it (None: the input's codec decides)."""
    codec = options.audio.codec
    if codec is not AudioCodec.auto:
        return CODEC_FORMAT[codec.value]
    return None
