"""The CRF search: the highest CRF whose VMAF on a few sampled scenes keeps the level's floor.

The method of ab-av1's ``crf-search``: encode short samples spread over the
video at one CRF, measure their VMAF against the same frames of the input,
and move the CRF by interpolating between the attempts that passed and
failed, accepting a result that passes within a tolerance that widens with
each attempt (0.5, 1, 2, 4 VMAF points above the floor).  Then one full
encode at the chosen CRF (:mod:`~squeezer.engines.video.pipeline`).

Sized for two cores: about a tenth of the video is sampled (at least 1.5 s,
at most 40 s, in up to 8 scenes of ~4 s), the first attempt starts from the
level's usual CRF and the next from a slope prior (VMAF falls ~1.2 points per
x264 CRF step near the floors), so two or three attempts usually decide.  When
even the lowest-quality CRF that keeps the floor predicts a file larger than
the input, the search says so and the full encode is skipped; so it does as soon as a CRF that
fails the floor already predicts more bytes than the input's video (every CRF that
passes would need more).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from squeezer.engines.media import ffmpeg
from squeezer.engines.media.vmaf import Score, measure
from squeezer.engines.video.encoders import crf_for, video_args, x264_scale
from squeezer.engines.video.options import VideoCodec

#: share of the video sampled, and the bounds of the sampled seconds
SAMPLE_SHARE = 0.10
MIN_SAMPLE_SECONDS = 1.5
MAX_SAMPLE_SECONDS = 40.0
SCENE_SECONDS = 4.0
MAX_SCENES = 8
#: VMAF points lost per x264 CRF step near the floors (the prior of the second attempt)
SLOPE = 1.2
MAX_ATTEMPTS = 6
#: VMAF scores every sampled frame up to this many, and every n-th frame beyond (libvmaf's
#: ``n_subsample``, at most every 4th): scoring costs about twice the sample's encode, and
#: neighbouring frames score alike, so a long video's 40 s of samples need not all be scored
VMAF_FRAMES = 240
MAX_SUBSAMPLE = 4


@dataclass(frozen=True)
class Scene:
    start: float
    length: float


@dataclass
class Attempt:
    crf: int  #: the codec's own CRF
    vmaf: float  #: harmonic mean over the sampled frames
    vmaf_mean: float
    vmaf_min: float
    frames: int
    bytes_per_second: float

    def as_json(self) -> dict[str, float | int]:
        return {"crf": self.crf, "vmaf": self.vmaf, "vmaf_mean": self.vmaf_mean,
                "vmaf_min": self.vmaf_min, "frames": self.frames,
                "kbit_per_second": round(self.bytes_per_second * 8 / 1000, 1)}


@dataclass
class Outcome:
    best: Attempt | None  #: the attempt chosen (None: no CRF keeps the floor)
    attempts: list[Attempt] = field(default_factory=list)
    scenes: list[Scene] = field(default_factory=list)
    #: even the chosen CRF predicts an output at least as large as the input's video
    not_smaller: bool = False

    @property
    def sampled_seconds(self) -> float:
        return sum(s.length for s in self.scenes)


def plan(duration: float) -> list[Scene]:
    """Where to sample a ``duration``-second video (the whole video when it is short)."""
    if duration <= 0:
        return [Scene(0.0, 0.0)]
    total = min(MAX_SAMPLE_SECONDS, max(MIN_SAMPLE_SECONDS, SAMPLE_SHARE * duration))
    if total >= 0.8 * duration:
        return [Scene(0.0, 0.0)]  # 0: to the end
    count = max(1, min(MAX_SCENES, round(total / SCENE_SECONDS)))
    length = total / count
    segment = duration / count
    return [Scene(round(max(0.0, (i + 0.5) * segment - length / 2), 3), round(length, 3))
            for i in range(count)]


@dataclass
class Encoding:
    """Everything about the encode except the CRF: what the samples and the full run share."""

    codec: VideoCodec
    source: list[str]  #: ``ffmpeg.input_args`` of the input, without seeking
    filters: str  #: the video filter chain ("" for none)
    pix_fmt: str
    colour: list[str]  #: ``-color_primaries`` … output arguments
    max_bitrate: int | None = None
    threads: int = 0
    memory_bytes: int = 0
    fps: float = 0.0


def _seek(source: Sequence[str], scene: Scene) -> list[str]:
    """``source`` with ``-ss``/``-t`` before its ``-i`` (accurate seek, decoded from the
    keyframe before)."""
    at = len(source) - 2
    extra = []
    if scene.start:
        extra += ["-ss", f"{scene.start:.3f}"]
    if scene.length:
        extra += ["-t", f"{scene.length:.3f}"]
    return [*source[:at], *extra, *source[at:]]


def _unturned(source: Sequence[str]) -> list[str]:
    """``source`` decoded as stored (no rotation applied from the display matrix)."""
    at = len(source) - 2
    return [*source[:at], "-noautorotate", *source[at:]]


def search(enc: Encoding, *, floor: float, crf_min: float, crf_max: float, start: float,
           duration: float, input_video_bytes: int, work: Path, deadline: float | None,
           progress: Callable[[float], None] | None = None) -> Outcome:
    """The search (module docstring).  CRFs are on the x264 scale here; attempts carry the
    codec's own."""
    scenes = plan(duration)
    outcome = Outcome(best=None, scenes=scenes)
    tried: dict[int, Attempt] = {}
    low, high = crf_for(enc.codec, crf_min), crf_for(enc.codec, crf_max)
    crf = max(low, min(high, crf_for(enc.codec, start)))
    sampled = sum(s.length for s in scenes) or duration
    for run in range(1, MAX_ATTEMPTS + 1):
        def step(fraction: float, run: int = run) -> None:
            if progress:
                progress(min(1.0, (run - 1 + fraction) / 3.0))

        attempt = sample_attempt(enc, crf, scenes, work, deadline, duration, step)
        tried[crf] = attempt
        outcome.attempts.append(attempt)
        tolerance = 0.5 * 2 ** (run - 1)
        if attempt.vmaf >= floor:
            passing_above = [c for c in tried if c > crf and tried[c].vmaf >= floor]
            if not passing_above:
                outcome.best = attempt
            if attempt.vmaf < floor + tolerance:
                break
            failed_above = sorted(c for c in tried if c > crf and tried[c].vmaf < floor)
            if failed_above and failed_above[0] == crf + 1:
                break
            if failed_above:
                nxt = _lerp(floor, tried[failed_above[0]], attempt)
            elif crf >= high:
                break
            else:
                jump = max(1, min(8, round((attempt.vmaf - floor) / _slope(enc.codec))))
                nxt = min(high, crf + jump)
        else:
            passed_below = sorted((c for c in tried if c < crf and tried[c].vmaf >= floor),
                                  reverse=True)
            if passed_below and passed_below[0] == crf - 1:
                break
            if crf <= low:
                break
            if input_video_bytes and attempt.bytes_per_second * duration >= input_video_bytes:
                # a failing CRF already predicts more bytes than the input's video: every CRF
                # that passes needs more still
                outcome.not_smaller = True
                break
            if passed_below:
                nxt = _lerp(floor, attempt, tried[passed_below[0]])
            else:
                slope = _slope(enc.codec)
                above = [c for c in tried if c > crf]
                if above:  # the slope measured between this attempt and the one above it
                    other = tried[min(above)]
                    measured = (attempt.vmaf - other.vmaf) / (other.crf - crf)
                    if measured > 0.2:
                        slope = measured
                jump = max(1, min(8, math.ceil((floor + 0.25 - attempt.vmaf) / slope)))
                nxt = max(low, crf - jump)
        if nxt in tried:
            break
        crf = nxt
        if outcome.best is not None:
            predicted = outcome.best.bytes_per_second * duration
            if predicted >= 1.1 * input_video_bytes and crf < outcome.best.crf:
                break
    if outcome.best is not None and input_video_bytes:
        predicted = outcome.best.bytes_per_second * (duration or sampled)
        outcome.not_smaller = outcome.not_smaller or predicted >= input_video_bytes
    return outcome


def _slope(codec: VideoCodec) -> float:
    """VMAF points per step of ``codec``'s own CRF."""
    return SLOPE / max(0.5, (crf_for(codec, 30) - crf_for(codec, 20)) / 10)


def _lerp(floor: float, worse: Attempt, better: Attempt) -> int:
    """A CRF between ``better`` (passes, lower CRF) and ``worse`` (fails, higher CRF) by
    interpolating their VMAF to the floor."""
    span = better.vmaf - worse.vmaf
    factor = (floor - worse.vmaf) / span if span > 0 else 0.5
    value = round(worse.crf - (worse.crf - better.crf) * factor)
    return max(better.crf + 1, min(worse.crf - 1, value))


def subsample(frames: float) -> int:
    """Score every n-th frame of ``frames`` sampled frames (:data:`VMAF_FRAMES`)."""
    return max(1, min(MAX_SUBSAMPLE, int(frames // VMAF_FRAMES)))


def sample_attempt(enc: Encoding, crf: int, scenes: list[Scene], work: Path, deadline: float | None,
             duration: float, progress: Callable[[float], None]) -> Attempt:
    every = subsample(sum(s.length or duration for s in scenes) * (enc.fps or 25.0))
    total_bytes = 0
    total_seconds = 0.0
    weighted: list[tuple[Score, int]] = []
    count = len(scenes)
    for i, scene in enumerate(scenes):
        length = scene.length or duration
        sample = work / f"sample-{crf}-{i}.mkv"
        # the stored picture, as the full encode sees it (``-noautorotate`` there too): the
        # crop and scale steps are written for it, and a turned picture would not fit them
        source = _unturned(_seek(enc.source, scene))
        vf = ["-vf", enc.filters] if enc.filters else []

        def encoding(f: float, i: int = i) -> None:
            progress((i + 0.6 * f) / count)

        def scoring(f: float, i: int = i) -> None:
            progress((i + 0.6 + 0.4 * f) / count)

        ffmpeg.run([*source, "-map", "0:v:0", *vf, "-an", "-sn", "-dn",
                    *video_args(enc.codec, crf=crf, pix_fmt=enc.pix_fmt, threads=enc.threads,
                                max_bitrate_kbps=enc.max_bitrate, fps=enc.fps,
                                gop_seconds=5.0),
                    *enc.colour, "-f", "matroska", "-y", ffmpeg.url(sample)],
                   deadline=deadline, memory_bytes=enc.memory_bytes, duration=length,
                   progress=encoding, what="encoding a sample")
        total_bytes += sample.stat().st_size
        total_seconds += length
        score = measure(_unturned(ffmpeg.input_args(sample, "matroska")), source,
                        reference_filter=enc.filters, deadline=deadline,
                        memory_bytes=enc.memory_bytes, duration=length, progress=scoring,
                        subsample=every)
        weighted.append((score, score.frames))
        sample.unlink(missing_ok=True)
    frames = sum(n for _, n in weighted)
    harmonic = frames / sum(n / (s.harmonic_mean + 1.0) for s, n in weighted) - 1.0
    mean = sum(s.mean * n for s, n in weighted) / frames
    return Attempt(crf=crf, vmaf=round(harmonic, 3), vmaf_mean=round(mean, 3),
                   vmaf_min=min(s.minimum for s, _ in weighted), frames=frames,
                   bytes_per_second=total_bytes / max(total_seconds, 1e-3))


def work_directory() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="squeezer-video-")


__all__ = ["Attempt", "Encoding", "Outcome", "Scene", "plan", "search", "x264_scale"]
