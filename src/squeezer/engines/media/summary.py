"""A :class:`~squeezer.engines.media.probe.MediaInfo` as the report's plain data."""

from __future__ import annotations

from squeezer.engines.media.probe import MediaInfo
from squeezer.engines.media.report import MediaSummary, StreamInfo


def summarize(info: MediaInfo, fmt: str) -> MediaSummary:
    streams = []
    for s in info.streams:
        width, height = s.display_size
        streams.append(StreamInfo(
            index=s.index, type=s.kind, codec=s.codec, language=s.language,
            width=width or None, height=height or None,
            fps=round(s.fps, 3) if s.kind == "video" and s.fps else None,
            bitrate=s.bitrate or None, sample_rate=s.sample_rate or None,
            channels=s.channels or None, hdr=s.hdr, rotation=s.rotation,
            attached_pic=s.attached_pic))
    return MediaSummary(format=fmt, container=info.container, duration=round(info.duration, 3),
                        bitrate=info.bitrate, chapters=info.chapters, streams=streams)
