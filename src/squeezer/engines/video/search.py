"""The CRF search: the highest CRF whose VMAF on a few sampled scenes keeps the level's floor.

The method of ab-av1's ``crf-search``: encode short samples spread over the
video at one CRF, measure their VMAF against the same frames of the input,
and move the CRF by interpolating between the attempts that passed and
failed, accepting a result that passes within a tolerance that widens with
each attempt (1, 1.5, 3 VMAF points above the floor).  Then one full encode
at the chosen CRF (:mod:`~squeezer.engines.video.pipeline`).

Sized so that the search costs less than half of the full encode on two
cores (docs/video.md has the measured split): about 8 % of the video is
sampled (at least 1.5 s, at most 24 s, in up to 8 scenes of ~3 s), VMAF scores
every 2nd to 5th sampled frame (neighbouring frames score alike; scoring, not
encoding, was most of an attempt's CPU time on 1080p), the first attempt
starts from the level's usual CRF and the next aims a little above the floor
along the measured curve (the VMAF deficit 100 - VMAF grows ~1.2 x per x264
CRF step: the prior), so one to three attempts decide.  When even the lowest-quality CRF that keeps
the floor predicts a file larger than the input, the search says so and the
full encode is skipped; so it does as soon as a CRF that fails the floor
already predicts more bytes than the input's video (every CRF that passes
would need more).

Saturation: on grainy or noisy content VMAF barely rises as the CRF falls
(0.3-0.4 points a step where 1.2 is usual) while the bytes grow 20 % a step,
and chasing a floor a point away more than doubles the bytes (the
surveillance clip of the corpus needed CRF 17 and 3.3 x x264 crf 23's bytes
for 95).  When two failing attempts, the nearer one within
:data:`SATURATED_REACH` of the floor, predict that the rest of the way costs
more than :data:`SATURATED_COST` x the bytes, the search stops there and says
so: the report carries the measured VMAF below the floor and a warning.
"""

from __future__ import annotations

import math
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from squeezer.engines.errors import MemoryLimitError
from squeezer.engines.media import ffmpeg
from squeezer.engines.media.vmaf import Score, measure
from squeezer.engines.video.encoders import (
    MEMORY_STEPS,
    crf_for,
    lean_settings,
    video_args,
    x264_scale,
)
from squeezer.engines.video.options import VideoCodec

#: share of the video sampled, and the bounds of the sampled seconds
SAMPLE_SHARE = 0.08
#: a shorter sample misjudges short clips: on five 2.5 s clips the VMAF of the middle 1 s was
#: -0.7..+1.6 from the whole clip's at the same CRF (+1.6 put a broadcast clip 0.9 under the
#: floor), of the middle 1.5 s -0.5..+0.6; two or three scenes of 0.4-0.6 s were 0.2-2.8 low
#: (each short encode starts cold), which costs bytes
MIN_SAMPLE_SECONDS = 1.5
MAX_SAMPLE_SECONDS = 24.0
SCENE_SECONDS = 3.0
MAX_SCENES = 8
#: the VMAF deficit (100 - VMAF) grows about geometrically with the CRF: by this factor per
#: x264 CRF step near the floors (1.17-1.24 measured on film, a test pattern and a broadcast
#: clip; the prior of the second attempt).  A straight slope overshoots above VMAF 96, where
#: the curve flattens, and undershoots below 93
DEFICIT_RATIO = 1.2
MAX_ATTEMPTS = 4
#: a passing attempt within this many VMAF points of the floor ends the search, by attempt
TOLERANCE = (1.0, 1.5, 3.0, 6.0)
#: the next attempt aims this far above the floor (a miss below it costs one more attempt)
MARGIN = 0.4
#: CRF steps a passing attempt may move up at most (far above the floor the curve is flat and
#: its extrapolation unreliable: 99.1 at CRF 23 predicted CRF 31, which scored 88.5)
MAX_JUMP_UP = 5
#: the samples' bytes over the input's video bytes from which the full encode is skipped: a
#: short sample starts on a keyframe and overstates the rate (a 0.8 s sample of a 2.6 s film
#: predicted 1.0 x the input at a CRF whose full encode was 0.91 x); an encode that cannot win
#: still stops at the input's size (``-fs``)
NO_GAIN = 1.1
#: VMAF scores every n-th sampled frame (libvmaf's ``n_subsample``): n = frames // this, from 2
#: at 16 frames to :data:`MAX_SUBSAMPLE`.  Scoring decodes both sides and computes VIF/ADM on
#: each scored frame: on 12 s of 1080p every 3rd frame took 4.2 CPU s instead of 9.5 and moved
#: the harmonic mean by 0.02
VMAF_FRAMES_PER_STEP = 16
MAX_SUBSAMPLE = 5
#: saturation (module docstring): the bytes factor the rest of the way to the floor may cost
#: at most, and how far below the floor the search may stop for it (VMAF points)
SATURATED_COST = 1.5
SATURATED_REACH = 1.5


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
    #: the search stopped below the floor because VMAF barely rises as the CRF falls
    saturated: bool = False

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
    #: the :data:`~squeezer.engines.video.encoders.MEMORY_STEPS` index the encodes use: moved
    #: down when a sample runs out of memory, so that the full encode starts from there
    memory: int = 0
    #: samples are cut from a decode that starts at the beginning (:func:`broken_seek`)
    decode_from_start: bool = False
    #: the trim (``video.trim_start``, and the span when ``video.trim_end`` is given): the
    #: scenes' times are within it.  Kept apart from ``source``: a scene's ``-ss`` after a
    #: trim's would not add to it (ffmpeg keeps the last value given), and a trimmed video's
    #: samples were taken from before the trim
    trim_start: float = 0.0
    trim_span: float | None = None


def _seek(enc: Encoding, scene: Scene) -> list[str]:
    """``enc.source`` with ``-ss``/``-t`` before its ``-i`` for ``scene`` (accurate seek,
    decoded from the keyframe before), within the trim."""
    at = len(enc.source) - 2
    extra = []
    if enc.trim_start + scene.start:
        extra += ["-ss", f"{enc.trim_start + scene.start:.3f}"]
    if scene.length:
        extra += ["-t", f"{scene.length:.3f}"]
    elif enc.trim_span is not None:
        extra += ["-t", f"{max(0.0, enc.trim_span - scene.start):.3f}"]
    return [*enc.source[:at], *extra, *enc.source[at:]]


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
        tolerance = TOLERANCE[min(run, len(TOLERANCE)) - 1]
        # how fast the VMAF deficit grows a CRF step: measured when there are two attempts,
        # never so flat that one noisy pair sends the next attempt to the end of the range
        ratio = max(_measured_ratio(tried, crf) or _ratio(enc.codec), 1.08)
        if attempt.vmaf >= floor:
            passing_above = [c for c in tried if c > crf and tried[c].vmaf >= floor]
            if not passing_above:
                outcome.best = attempt
            if attempt.vmaf < floor + tolerance:
                break
            failed_above = sorted(c for c in tried if c > crf and tried[c].vmaf < floor)
            if failed_above and failed_above[0] <= crf + 1:
                break
            if failed_above:
                nxt = _lerp(floor + MARGIN / 2, tried[failed_above[0]], attempt)
            elif crf >= high:
                break
            else:
                steps = _steps(attempt.vmaf, floor + MARGIN, ratio)
                nxt = min(high, crf + max(1, min(MAX_JUMP_UP, math.floor(steps))))
        else:
            passed_below = sorted((c for c in tried if c < crf and tried[c].vmaf >= floor),
                                  reverse=True)
            if passed_below and passed_below[0] == crf - 1:
                break
            if crf <= low:
                break
            if input_video_bytes and \
                    attempt.bytes_per_second * duration >= NO_GAIN * input_video_bytes:
                # a failing CRF already predicts more bytes than the input's video: every CRF
                # that passes needs more still
                outcome.not_smaller = True
                break
            if not passed_below and attempt.vmaf >= floor - SATURATED_REACH \
                    and _cost_to_floor(tried, crf, floor + MARGIN) > SATURATED_COST:
                outcome.saturated = True
                break
            if passed_below:
                nxt = _lerp(floor + MARGIN / 2, attempt, tried[passed_below[0]])
            else:
                steps = _steps(floor + MARGIN, attempt.vmaf, ratio)
                nxt = max(low, crf - max(1, min(8, math.ceil(steps))))
        if nxt in tried:
            break
        crf = nxt
        if outcome.best is not None:
            predicted = outcome.best.bytes_per_second * duration
            if predicted >= 1.1 * input_video_bytes and crf < outcome.best.crf:
                break
    if outcome.best is not None and input_video_bytes and _representative(scenes, duration):
        predicted = outcome.best.bytes_per_second * (duration or sampled)
        outcome.not_smaller = outcome.not_smaller or predicted >= NO_GAIN * input_video_bytes
    return outcome


def _representative(scenes: list[Scene], duration: float) -> bool:
    """Whether the samples' rate may stand for the whole video's when it decides to skip the
    full encode: three scenes or more, or half the video.  One 1.5 s scene of a 10 s film
    predicted 1.2 x the input's video bytes at the CRF that keeps the floor, where the whole
    film at a CRF two steps higher came to 0.95 x the input; the full encode stops at the
    input's size (``-fs``) when it cannot win, so a wrong "go" costs less than a wrong
    "skip"."""
    sampled = sum(s.length for s in scenes)
    return len(scenes) >= 3 or not sampled or sampled >= 0.5 * duration


def _cost_to_floor(tried: dict[int, Attempt], crf: int, target: float) -> float:
    """The bytes factor that going from the failing attempt at ``crf`` to VMAF ``target``
    would cost, extrapolated from it and its nearest neighbour (1.0: unknown)."""
    slope = _measured_slope(tried, crf)
    others = [c for c in tried if c != crf]
    if slope is None or not others:
        return 1.0
    other = min(others, key=lambda c: (abs(c - crf), c))
    lo, hi = sorted((crf, other))
    if tried[hi].bytes_per_second <= 0 or tried[lo].bytes_per_second <= tried[hi].bytes_per_second:
        return 1.0
    per_step = (tried[lo].bytes_per_second / tried[hi].bytes_per_second) ** (1 / (hi - lo))
    steps = max(0.0, target - tried[crf].vmaf) / slope
    return float(per_step ** steps)


def _measured_slope(tried: dict[int, Attempt], crf: int) -> float | None:
    """VMAF points per CRF step between the attempt at ``crf`` and its nearest neighbour
    (None: no neighbour, or VMAF did not fall as the CRF rose: noise, not a slope)."""
    others = [c for c in tried if c != crf]
    if not others:
        return None
    other = min(others, key=lambda c: (abs(c - crf), c))
    lo, hi = sorted((crf, other))
    value = (tried[lo].vmaf - tried[hi].vmaf) / (hi - lo)
    return value if value > 0.05 else None


def _ratio(codec: VideoCodec) -> float:
    """The prior factor of the VMAF deficit (100 - VMAF) per step of ``codec``'s own CRF."""
    return float(DEFICIT_RATIO ** (1 / max(0.5, (crf_for(codec, 30) - crf_for(codec, 20)) / 10)))


def _deficit(vmaf: float) -> float:
    return max(0.05, 100.0 - vmaf)


def _steps(better: float, worse: float, ratio: float) -> float:
    """CRF steps from VMAF ``better`` down to ``worse`` when the deficit grows by ``ratio`` a
    step (negative when ``worse`` is the higher)."""
    return math.log(_deficit(worse) / _deficit(better)) / math.log(ratio)


def _measured_ratio(tried: dict[int, Attempt], crf: int) -> float | None:
    """The deficit factor per CRF step between the attempt at ``crf`` and its nearest
    neighbour (None: no neighbour, or the deficit did not grow with the CRF)."""
    others = [c for c in tried if c != crf]
    if not others:
        return None
    other = min(others, key=lambda c: (abs(c - crf), c))
    lo, hi = sorted((crf, other))
    value = (_deficit(tried[hi].vmaf) / _deficit(tried[lo].vmaf)) ** (1 / (hi - lo))
    return float(value) if value > 1.01 else None


def _lerp(floor: float, worse: Attempt, better: Attempt) -> int:
    """A CRF between ``better`` (passes, lower CRF) and ``worse`` (fails, higher CRF) by
    interpolating their VMAF to the floor."""
    span = better.vmaf - worse.vmaf
    factor = (floor - worse.vmaf) / span if span > 0 else 0.5
    value = round(worse.crf - (worse.crf - better.crf) * factor)
    return max(better.crf + 1, min(worse.crf - 1, value))


def subsample(frames: float) -> int:
    """Score every n-th frame of ``frames`` sampled frames (:data:`VMAF_FRAMES_PER_STEP`)."""
    if frames < VMAF_FRAMES_PER_STEP:
        return 1
    return max(2, min(MAX_SUBSAMPLE, int(frames // VMAF_FRAMES_PER_STEP)))


def sample_attempt(enc: Encoding, crf: int, scenes: list[Scene], work: Path, deadline: float | None,
             duration: float, progress: Callable[[float], None]) -> Attempt:
    every = subsample(sum(s.length or duration for s in scenes) * (enc.fps or 25.0))
    total_bytes = 0
    total_seconds = 0.0
    weighted: list[tuple[Score, int]] = []
    count = len(scenes)
    for i, scene in enumerate(scenes):
        length = scene.length or duration

        def step(f: float, i: int = i) -> None:
            progress((i + f) / count)

        size, score = _sample_scene(enc, crf, scene, work / f"sample-{crf}-{i}.mkv",
                                    deadline, length, every, step)
        total_bytes += size
        total_seconds += length
        weighted.append((score, score.frames))
    frames = sum(n for _, n in weighted)
    harmonic = frames / sum(n / (s.harmonic_mean + 1.0) for s, n in weighted) - 1.0
    mean = sum(s.mean * n for s, n in weighted) / frames
    return Attempt(crf=crf, vmaf=round(harmonic, 3), vmaf_mean=round(mean, 3),
                   vmaf_min=min(s.minimum for s, _ in weighted), frames=frames,
                   bytes_per_second=total_bytes / max(total_seconds, 1e-3))


def _sample_scene(enc: Encoding, crf: int, scene: Scene, sample: Path, deadline: float | None,
                  length: float, every: int, progress: Callable[[float], None]
                  ) -> tuple[int, Score]:
    """Encode one scene at ``crf`` and score it against the same frames of the input: its
    bytes and VMAF.  A seek whose pictures decode corrupt (:func:`broken_seek`) is done
    again, and every later one too, by decoding from the start."""
    logs: list[str] = []  #: the sample encode's log (the run that did not run out of memory)

    def encoding(f: float) -> None:
        progress(0.6 * f)

    def scoring(f: float) -> None:
        progress(0.6 + 0.4 * f)

    start = enc.trim_start + scene.start  #: where the scene starts in the input
    while True:
        if enc.decode_from_start and start:
            # read up to the scene's end and cut it out by time: the filter sees the frames
            # the whole decode produces (the encode's own filters come after the cut)
            at = len(enc.source) - 2
            source = _unturned([*enc.source[:at], "-t", f"{start + length:.3f}",
                                *enc.source[at:]])
            cut = f"trim=start={start:.3f}:duration={length:.3f},setpts=PTS-STARTPTS"
        else:
            # the stored picture, as the full encode sees it (``-noautorotate`` there too):
            # the crop and scale steps are written for it, and a turned picture would not fit
            source = _unturned(_seek(enc, scene))
            cut = ""
        chain = ",".join(f for f in (cut, enc.filters) if f)
        vf = ["-vf", chain] if chain else []

        def encode(memory: int, source: list[str] = source, vf: list[str] = vf) -> None:
            result = ffmpeg.run(
                [*source, "-map", "0:v:0", *vf, "-an", "-sn", "-dn",
                 *video_args(enc.codec, crf=crf, pix_fmt=enc.pix_fmt, threads=enc.threads,
                             max_bitrate_kbps=enc.max_bitrate, fps=enc.fps, gop_seconds=5.0,
                             vmaf_tuned=True, memory=memory),
                 *enc.colour, "-f", "matroska", "-y", ffmpeg.url(sample)],
                deadline=deadline, memory_bytes=enc.memory_bytes, duration=length,
                progress=encoding, what="encoding a sample")
            logs.append(result.log)

        enc.memory = leaner(enc.codec, enc.memory, encode)
        if not enc.decode_from_start and start and broken_seek(logs[-1]):
            enc.decode_from_start = True
            sample.unlink(missing_ok=True)
            continue
        try:
            size = sample.stat().st_size
            score = measure(_unturned(ffmpeg.input_args(sample, "matroska")), source,
                            reference_filter=chain, deadline=deadline,
                            memory_bytes=enc.memory_bytes, duration=length,
                            progress=scoring, subsample=every)
        finally:
            sample.unlink(missing_ok=True)
        return size, score


#: what ffmpeg logs for a picture its decoder marks corrupt (decoded without its references)
_CORRUPT = re.compile(r"corrupt decoded frame")
#: corrupt pictures after a seek that make it broken: an open GOP's leading pictures (two or
#: three, before the seek point and dropped) are no sign of it
BROKEN_SEEK_FRAMES = 5


def broken_seek(log: str) -> bool:
    """Whether a run's log says its seek landed on a picture the stream cannot be decoded
    from.  A 4:4:4 H.264 clip's later IDR pictures still referenced earlier ones: every
    picture after a seek decoded corrupt and every sample scored VMAF 46-54, so the clip was
    kept whole; decoded from the start it is clean."""
    return len(_CORRUPT.findall(log)) >= BROKEN_SEEK_FRAMES


def leaner(codec: VideoCodec, memory: int, run: Callable[[int], None]) -> int:
    """``run(memory)``, again with the next leaner
    :data:`~squeezer.engines.video.encoders.MEMORY_STEPS` settings while it runs out of
    memory and leaner ones are left (the frame-size estimate is a guess: the decoder's and
    the filters' share varies); the step that ran."""
    while True:
        try:
            run(memory)
            return memory
        except MemoryLimitError:
            if memory + 1 >= len(MEMORY_STEPS) or not lean_settings(codec):
                raise
            memory += 1


def work_directory() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="squeezer-video-")


__all__ = ["Attempt", "Encoding", "Outcome", "Scene", "plan", "search", "x264_scale"]
