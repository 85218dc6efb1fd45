"""What one audio compression did, as plain JSON-serialisable data."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from squeezer.engines.media.report import MediaSummary
from squeezer.engines.report import RunReport


class AudioReport(RunReport):
    """The outcome of one audio compression."""

    kind: Literal["audio"] = "audio"
    format_in: str = ""
    format_out: str = ""
    duration: float = 0.0  #: seconds, of the output
    codec_in: str = ""
    codec_out: str = ""
    channels: int = 0
    sample_rate: int = 0
    bitrate_in: int = 0  #: bits per second of the input's audio, when known
    bitrate_out: int = 0  #: bits per second of the output's audio (its size over its duration)
    #: "encode", "flac" (lossless re-encode), "remux", "original" (the input's bytes)
    method: str = ""
    cover_art: bool = False  #: a cover picture is in the output
    tags_kept: bool = True
    actions: list[str] = Field(default_factory=list)
    input: MediaSummary | None = None
    output: MediaSummary | None = None
