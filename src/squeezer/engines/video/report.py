"""What one video compression did, as plain JSON-serialisable data.

Everything a result card needs without opening the file: durations,
dimensions, codecs in and out, the chosen CRF and the VMAF measured on the
sampled scenes (stated as such), and each search attempt.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from squeezer.engines.media.report import MediaSummary
from squeezer.engines.report import RunReport


class SearchAttempt(BaseModel):
    crf: int
    vmaf: float  #: harmonic mean over the sampled frames
    vmaf_mean: float
    vmaf_min: float
    frames: int
    kbit_per_second: float  #: of the encoded samples


class VideoReport(RunReport):
    """The outcome of one video compression."""

    kind: Literal["video"] = "video"
    format_in: str = ""
    format_out: str = ""
    duration: float = 0.0  #: seconds, of the output
    width: int = 0  #: of the output's first video stream, as displayed
    height: int = 0
    fps: float = 0.0
    video_codec_in: str = ""
    video_codec_out: str = ""
    audio_codecs_in: list[str] = Field(default_factory=list)
    audio_codecs_out: list[str] = Field(default_factory=list)
    #: "remux" (streams copied), "encode" (video re-encoded), "original" (the input's bytes)
    method: str = ""
    crf: int | None = None  #: the codec's own CRF of the encode
    vmaf_floor: float | None = None  #: the level's (or video.vmaf's) floor, when searched
    #: VMAF of the chosen CRF on the sampled scenes (harmonic mean over their frames), and how
    #: much was sampled: it is a measurement of samples, not of the whole output
    vmaf: float | None = None
    vmaf_mean: float | None = None
    vmaf_min: float | None = None
    vmaf_sampled_frames: int = 0
    vmaf_sampled_seconds: float = 0.0
    vmaf_scenes: int = 0
    search: list[SearchAttempt] = Field(default_factory=list)
    #: what was done, in order ("remuxed to mp4 (fast start)", "crf search: …", …)
    actions: list[str] = Field(default_factory=list)
    input: MediaSummary | None = None
    output: MediaSummary | None = None
