"""The media limits of :class:`~squeezer.engines.limits.Limits`, checked on what the probe read.

Checked before any decoding: duration, pixels per frame, frames (duration x
frame rate), stream count.  The decoders are also told the pixel limit
(``-max_pixels``: a frame larger than its header claimed is refused) and
ffmpeg's memory is capped (:mod:`~squeezer.engines.media.ffmpeg`); time is
bounded by a deadline that grows with the duration
(:meth:`Limits.media_deadline_seconds`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from squeezer.engines.errors import (
    DamagedMediaError,
    MediaTooLongError,
    TooManyFramesError,
    TooManyStreamsError,
    VideoTooLargeError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.media.probe import MediaInfo


def check(info: MediaInfo, limits: Limits) -> None:
    """Raise the named limit error the file breaks, if any."""
    if limits.max_media_streams and len(info.streams) > limits.max_media_streams:
        raise TooManyStreamsError(f"the file has {len(info.streams)} streams; the limit is "
                                  f"{limits.max_media_streams}")
    if limits.max_media_seconds and info.duration > limits.max_media_seconds:
        raise MediaTooLongError(f"the file lasts {info.duration:.0f} s; the limit is "
                                f"{limits.max_media_seconds:.0f} s")
    for stream in info.streams:
        if stream.kind != "video":
            continue
        if stream.is_video and not (stream.width and stream.height):
            raise DamagedMediaError("the video's dimensions are missing or impossible")
        pixels = stream.width * stream.height
        if limits.max_video_pixels and pixels > limits.max_video_pixels:
            raise VideoTooLargeError(f"the video is {stream.width}x{stream.height} "
                                     f"({pixels} pixels a frame); the limit is "
                                     f"{limits.max_video_pixels}")
        frames = info.duration * stream.fps
        if stream.is_video and limits.max_video_frames and frames > limits.max_video_frames:
            raise TooManyFramesError(f"the video has about {frames:.0f} frames; the limit is "
                                     f"{limits.max_video_frames}")


def deadline(started: float, duration: float, limits: Limits,
             progress: Callable[..., Any] | None) -> float | None:
    """The ``time.monotonic()`` by which the run must end, and tell a supervising job child
    about it (its watchdog otherwise stops the run at ``max_seconds``)."""
    budget = limits.media_deadline_seconds(duration)
    if not budget:
        return None
    extend = getattr(progress, "extend_deadline", None)
    if extend is not None and budget > limits.max_seconds:
        extend(budget - (time.monotonic() - started))
    return started + budget
