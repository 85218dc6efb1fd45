"""What the video and audio reports share: the streams of a file, before and after."""

from __future__ import annotations

from pydantic import BaseModel, Field


class StreamInfo(BaseModel):
    """One stream of an input or an output."""

    index: int
    type: str  #: video, audio, subtitle, data, attachment
    codec: str
    language: str = ""
    width: int | None = None  #: as displayed (rotation applied)
    height: int | None = None
    fps: float | None = None
    bitrate: int | None = None  #: bits per second, when known
    sample_rate: int | None = None
    channels: int | None = None
    hdr: bool = False
    rotation: float = 0.0
    attached_pic: bool = False


class MediaSummary(BaseModel):
    """A file's container, duration and streams (what a card on the web page shows)."""

    format: str  #: squeezer's format name (mp4, mkv, mp3, …)
    container: str  #: ffmpeg's demuxer name
    duration: float  #: seconds
    bitrate: int = 0  #: overall bits per second
    chapters: int = 0
    streams: list[StreamInfo] = Field(default_factory=list)
