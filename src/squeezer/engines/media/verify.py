"""Every output is checked before it is returned: it opens, decodes to the end without an
error, lasts as long as promised (within one frame), and has the streams and dimensions
promised.  A failed check is a named error and the output is thrown away.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from squeezer.engines.errors import DamagedMediaError, VerificationError
from squeezer.engines.media import ffmpeg
from squeezer.engines.media.probe import MediaInfo, probe

_DECODE_ERROR = re.compile(r"error|invalid|corrupt|missing", re.IGNORECASE)


@dataclass
class Promise:
    """What an output must be."""

    duration: float  #: seconds
    tolerance: float  #: seconds: one frame
    video: int = 0  #: moving-picture streams
    audio: int = 0
    subtitles: int | None = None  #: None: not checked
    #: (width, height) as displayed, per video stream in order; empty: not checked
    sizes: list[tuple[int, int]] = field(default_factory=list)
    frames: int | None = None  #: video frames of the first video stream, when known


@dataclass
class Checked:
    info: MediaInfo
    frames: int
    warnings: list[str]


def verify(path: Path, demuxer: str, promise: Promise, *, deadline: float | None,
           memory_bytes: int = 0, strict: bool = True,
           progress: Callable[[float], None] | None = None) -> Checked:
    """Check ``path`` against ``promise``; raise :class:`VerificationError` when it fails.

    ``strict``: any decoder error fails (our own encodes); otherwise (a remux, which keeps
    the input's packets as they were) decoder complaints are returned as warnings.
    """
    try:
        info = probe(path, demuxer, deadline=deadline)
    except DamagedMediaError as exc:
        raise VerificationError(f"the output does not open: {exc.message}") from None
    problems = []
    if len(info.video) != promise.video:
        problems.append(f"{len(info.video)} video streams instead of {promise.video}")
    if len(info.audio) != promise.audio:
        problems.append(f"{len(info.audio)} audio streams instead of {promise.audio}")
    subtitles = len(info.of("subtitle"))
    if promise.subtitles is not None and subtitles != promise.subtitles:
        problems.append(f"{subtitles} subtitle streams instead of {promise.subtitles}")
    for stream, size in zip(info.video, promise.sizes, strict=False):
        if stream.display_size != size:
            problems.append(f"video is {stream.display_size[0]}x{stream.display_size[1]}, "
                            f"not {size[0]}x{size[1]}")
    if abs(info.duration - promise.duration) > promise.tolerance + 0.002:
        problems.append(f"lasts {info.duration:.3f} s instead of {promise.duration:.3f} s")
    if problems:
        raise VerificationError("the output failed its check: " + "; ".join(problems))
    maps = (["-map", "0:v?"] if promise.video else []) + (["-map", "0:a?"] if promise.audio
                                                        else [])
    args = [*(["-xerror"] if strict else []), *ffmpeg.input_args(path, demuxer), *maps,
            "-f", "null", "-"]
    result = ffmpeg.run(args, deadline=deadline, memory_bytes=memory_bytes, check=False,
                        duration=promise.duration, progress=progress,
                        what="decoding the output")
    complaints = [line.strip() for line in result.log.splitlines()
                  if _DECODE_ERROR.search(line)]
    if not result.ok or (strict and complaints):
        detail = complaints[-1] if complaints else f"exit status {result.returncode}"
        raise VerificationError(f"the output does not decode cleanly: {detail[:200]}")
    frames = result.progress.frame
    if promise.video and promise.frames is not None and frames != promise.frames:
        raise VerificationError(f"the output decodes to {frames} frames instead of "
                                f"{promise.frames}")
    if promise.video and frames == 0:
        raise VerificationError("the output's video decodes to no frames")
    warnings = [f"decoder: {c[:160]}" for c in complaints[:3]] if complaints else []
    return Checked(info=info, frames=frames, warnings=warnings)
