"""``squeezer analyze`` for video and audio: streams, where the bytes are, what each level gives.

The byte split comes from ffmpeg copying every stream to nowhere (its closing
"video: … audio: … subtitle: … other streams: …" line; the rest is container
overhead).  The per-level estimate of a video is one CRF sweep on the sampled
scenes the compression search would use (four CRFs, each encoded and
measured once), interpolated to each level's VMAF floor: the CRF, the sampled
VMAF and the predicted size (video at the sampled rate, plus the audio as the
level would write it).  ``lossless`` is a real remux.  Audio levels are
predicted from their rates.  Everything is an estimate and says so.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from squeezer.engines.files import input_size
from squeezer.engines.level import Level
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.media import ffmpeg, guard
from squeezer.engines.media.probe import MediaInfo, probe, require
from squeezer.engines.media.report import MediaSummary
from squeezer.engines.media.signatures import demuxer
from squeezer.engines.media.summary import summarize
from squeezer.engines.sniff import sniff_file
from squeezer.engines.video.search import Attempt

#: the x264-scale CRFs of the sweep
SWEEP = (18.0, 23.0, 28.0, 34.0)
_BYTES = re.compile(r"video:\s*([\d.]+)\s*KiB\s+audio:\s*([\d.]+)\s*KiB\s+subtitle:\s*([\d.]+)"
                    r"\s*KiB\s+other streams:\s*([\d.]+)\s*KiB")


class ByteSplit(BaseModel):
    video: int = 0
    audio: int = 0
    subtitle: int = 0
    other: int = 0
    container: int = 0  #: headers, index, padding: the rest of the file


class LevelEstimate(BaseModel):
    level: str
    bytes: int | None = None
    ratio: float | None = None
    crf: int | None = None
    vmaf: float | None = None  #: sampled (harmonic mean), interpolated
    method: str = ""  #: remux, encode, original
    note: str = ""


class MediaAnalysis(BaseModel):
    kind: str  #: video or audio
    file_bytes: int
    media: MediaSummary
    bytes: ByteSplit
    estimates: list[LevelEstimate] = Field(default_factory=list)
    estimate_method: str = ""
    elapsed_seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


def analyze(path: str | Path, *, limits: Limits | None = None, estimate: bool = True,
            progress: Callable[[float, str], None] | None = None) -> MediaAnalysis:
    started = time.monotonic()
    limits = limits or DEFAULT_LIMITS
    path = Path(path)
    size = input_size(path, limits.max_input_bytes)
    fmt = sniff_file(path).format
    say = progress or (lambda f, s: None)
    say(0.0, "reading")
    info = probe(path, demuxer(fmt), max_pixels=limits.max_video_pixels,
                 deadline=started + limits.max_seconds if limits.max_seconds else None)
    require(info)
    guard.check(info, limits)
    deadline = guard.deadline(started, info.duration, limits, progress)
    split = _split(path, fmt, size, deadline)
    result = MediaAnalysis(kind="video" if info.video else "audio", file_bytes=size,
                           media=summarize(info, fmt), bytes=split)
    if estimate:
        say(0.1, "estimating")
        if info.video:
            _video_estimates(result, path, fmt, info, limits, deadline, say)
        else:
            _audio_estimates(result, info, size)
    result.elapsed_seconds = round(time.monotonic() - started, 2)
    return result


def _split(path: Path, fmt: str, size: int, deadline: float | None) -> ByteSplit:
    run = ffmpeg.run([*ffmpeg.input_args(path, demuxer(fmt)), "-map", "0", "-c", "copy",
                      "-f", "null", "-"], deadline=deadline, loglevel="info", check=False,
                     what="reading the streams")
    m = None
    for m in _BYTES.finditer(run.log):
        pass
    if m is None:
        return ByteSplit(container=size)
    parts = [int(float(x) * 1024) for x in m.groups()]
    return ByteSplit(video=parts[0], audio=parts[1], subtitle=parts[2], other=parts[3],
                     container=max(0, size - sum(parts)))


def _video_estimates(result: MediaAnalysis, path: Path, fmt: str, info: MediaInfo,
                     limits: Limits, deadline: float | None,
                     say: Callable[[float, str], None]) -> None:
    from squeezer.engines.video import encoders
    from squeezer.engines.video.options import LEVELS, VideoCodec
    from squeezer.engines.video.search import Encoding, plan, sample_attempt

    v = info.video[0]
    codec = VideoCodec.h265 if v.hdr else VideoCodec.h264
    enc = Encoding(codec=codec, source=ffmpeg.input_args(path, demuxer(fmt),
                                                         max_pixels=limits.max_video_pixels),
                   filters="", pix_fmt=encoders.pixel_format(codec, v.bit_depth, v.hdr),
                   colour=[], memory_bytes=limits.max_media_memory_bytes)
    scenes = plan(info.duration)
    points = []
    with tempfile.TemporaryDirectory(prefix="squeezer-analyze-") as tmp:
        for i, x264 in enumerate(SWEEP):
            crf = encoders.crf_for(codec, x264)

            def step(fraction: float, done: int = i) -> None:
                say(0.1 + 0.85 * (done + fraction) / len(SWEEP), "estimating")

            points.append(sample_attempt(enc, crf, scenes, Path(tmp), deadline, info.duration,
                                         step))
    audio = result.bytes.audio + result.bytes.subtitle
    size = result.file_bytes
    result.estimate_method = (f"a CRF sweep ({', '.join(str(p.crf) for p in points)}) on "
                              f"{len(scenes)} sampled scene(s), interpolated to each level's "
                              f"VMAF floor; audio and subtitles as they are")
    for level in Level:
        row = LEVELS[level]
        if not row.reencode:
            result.estimates.append(LevelEstimate(level=level.value, bytes=size, ratio=1.0,
                                                  method="remux", note="streams copied"))
            continue
        crf, vmaf, rate = _at_floor(points, row.vmaf)
        predicted = int(rate * info.duration) + audio + 4096
        if predicted >= size:
            result.estimates.append(LevelEstimate(
                level=level.value, bytes=size, ratio=1.0, crf=crf, vmaf=vmaf, method="original",
                note="a re-encode at this floor would not be smaller"))
        else:
            result.estimates.append(LevelEstimate(
                level=level.value, bytes=predicted, ratio=round(predicted / size, 3), crf=crf,
                vmaf=vmaf, method="encode"))


def _at_floor(points: list[Attempt], floor: float) -> tuple[int, float, float]:
    """The CRF, VMAF and bytes per second where the sweep crosses ``floor`` (interpolated)."""
    ordered = sorted(points, key=lambda p: p.crf)
    passing = [p for p in ordered if p.vmaf >= floor]
    if not passing:
        best = ordered[0]
        return best.crf, best.vmaf, best.bytes_per_second
    last = passing[-1]
    after = [p for p in ordered if p.crf > last.crf]
    if not after or after[0].vmaf >= last.vmaf:
        return last.crf, last.vmaf, last.bytes_per_second
    nxt = after[0]
    t = (last.vmaf - floor) / (last.vmaf - nxt.vmaf)
    crf = last.crf + t * (nxt.crf - last.crf)
    rate = last.bytes_per_second * (nxt.bytes_per_second / last.bytes_per_second) ** t
    return int(crf), round(floor, 2), rate


def _audio_estimates(result: MediaAnalysis, info: MediaInfo, size: int) -> None:
    from squeezer.engines.audio.encoders import has_lfe
    from squeezer.engines.audio.options import LEVELS, AudioCodec, AudioSettings

    first = info.audio[0]
    pcm = first.codec.startswith("pcm_") or first.codec == "flac"
    codec = "mp3" if first.codec == "mp3" else "opus" if first.codec in ("opus", "vorbis") \
        else "aac"
    result.estimate_method = "predicted from each level's bitrate and the duration"
    for level in Level:
        row = LEVELS[level]
        if not row.lossy:
            note = "FLAC (size depends on the sound: typically 50-60 % of PCM)" if pcm \
                else "remux"
            guess = int(size * 0.55) if pcm and first.codec != "flac" else size
            result.estimates.append(LevelEstimate(level=level.value, bytes=guess,
                                                  ratio=round(guess / size, 3),
                                                  method="flac" if pcm else "remux", note=note))
            continue
        settings = AudioSettings(level=level, codec=AudioCodec.auto, bitrate=None,
                                 **row.model_dump(exclude={"summary"}))
        kbps = settings.kbps(codec, first.channels, has_lfe(first.channel_layout))
        predicted = int(kbps * 1000 / 8 * info.duration * len(info.audio)) + 2048
        if predicted >= size:
            result.estimates.append(LevelEstimate(level=level.value, bytes=size, ratio=1.0,
                                                  method="original",
                                                  note=f"{codec} {kbps} kbit/s is not smaller"))
        else:
            result.estimates.append(LevelEstimate(level=level.value, bytes=predicted,
                                                  ratio=round(predicted / size, 3),
                                                  method="encode", note=f"{codec} {kbps} kbit/s"))
