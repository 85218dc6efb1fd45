"""The video pipeline: sniff, probe under the limits, remux or search-and-encode, verify.

One call of :func:`compress` is one file.  Whatever happens, the destination
receives a complete, verified result that is smaller than the input, or the
input's own bytes (``original_kept``, ``method: original``; remuxed only when
the remux alone is smaller, ``method: remux``), or nothing and a named
:class:`~squeezer.engines.errors.EngineError`.  A requested change (resize,
crop, trim, frame-rate cap, another codec or container) is kept even when it
is not smaller.

``lossless`` remuxes: every stream copied into a clean, fast-start container.
The lossy levels search the CRF that keeps the level's VMAF floor on sampled
scenes (:mod:`~squeezer.engines.video.search`) and encode once.  Defaults
keep rotation (the display matrix is carried, pixels are not turned), HDR and
colour metadata (an HDR input left at the default codec is encoded as 10-bit
HEVC rather than tone-mapped), subtitles, chapters, every audio track and
timecodes.  A file with no moving picture goes to the audio engine.
"""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezer.engines.errors import (
    DamagedMediaError,
    InputError,
    MediaRefusedError,
    MemoryLimitError,
    OutputTooLargeError,
    UnsupportedFormatError,
    VerificationError,
)
from squeezer.engines.files import atomic_copy, input_size
from squeezer.engines.level import Level
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.media import ffmpeg, guard
from squeezer.engines.media.probe import MediaInfo, Stream, probe, require
from squeezer.engines.media.signatures import (
    AUDIO_FORMATS,
    VIDEO_FORMATS,
    avi_embeds_files,
    demuxer,
)
from squeezer.engines.media.summary import summarize
from squeezer.engines.media.verify import Promise, verify
from squeezer.engines.options import Options
from squeezer.engines.sniff import sniff_file
from squeezer.engines.threads import thread_count
from squeezer.engines.video import encoders
from squeezer.engines.video.options import (
    Container,
    ResizeMode,
    VideoCodec,
    VideoSettings,
    resolve,
)
from squeezer.engines.video.report import SearchAttempt, VideoReport
from squeezer.engines.video.search import (
    SATURATED_COST,
    Encoding,
    broken_seek,
    leaner,
    search,
)

Progress = Callable[[float, str], None]

#: the muxer of each output format
MUXER = {"mp4": "mp4", "mov": "mov", "m4v": "mp4", "3gp": "3gp", "mkv": "matroska",
         "webm": "webm"}
#: subtitle codecs an MP4 can carry (as ``mov_text``)
MP4_TEXT_SUBTITLES = {"mov_text", "subrip", "srt", "text", "webvtt", "ass", "ssa"}
#: audio codecs each output container can hold as they are
AUDIO_FITS = {
    "mp4": {"aac", "mp3", "ac3", "eac3", "opus", "flac", "alac"},
    "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s16be", "pcm_s24le",
            "pcm_s24be", "pcm_f32le", "opus", "flac"},
    "mkv": None,  # anything
    "webm": {"opus", "vorbis"},
}
#: a remux must save at least this share of the input to be returned instead of its bytes
MIN_REMUX_GAIN = 0.005
#: an encode whose leanest settings' estimated peak (encoders.memory_needed) is more than this
#: times the memory limit is refused before it starts; nearer, it is tried (the estimate is
#: rough, and ffmpeg running out is still reported as the limit)
MEMORY_SLACK = 1.25
#: the level's usual x264 CRF, where the search starts
START_CRF = {Level.low: 20.0, Level.medium: 23.0, Level.high: 26.0, Level.extreme: 29.0}


@dataclass
class Plan:
    """What the output will hold, decided once from the probe and the settings."""

    fmt: str  #: output format (``mp4``, ``mkv``, …)
    video: list[Stream]  #: moving-picture streams kept (all re-encoded, or all copied)
    covers: list[Stream]  #: cover pictures kept (copied)
    audio: list[Stream]
    subtitles: list[Stream]
    attachments: list[Stream]
    dropped: list[str] = field(default_factory=list)  #: what was left out, for the report


def engine_versions() -> dict[str, str]:
    import platform
    from importlib.metadata import version as dist_version

    versions = {"squeezer": __import__("squeezer").__version__,
                "python": platform.python_version(), "ffmpeg": ffmpeg.version()}
    with contextlib.suppress(Exception):  # not installed from a distribution
        versions["imageio-ffmpeg"] = dist_version("imageio-ffmpeg")
    return versions


def compress(src: str | Path, dst: str | Path, options: Options | None = None, *,
             limits: Limits | None = None, progress: Progress | None = None) -> Any:
    """Compress the video ``src`` into ``dst``; return its :class:`VideoReport` (or the
    audio engine's report for a file with no moving picture)."""
    started = time.monotonic()
    limits = limits or DEFAULT_LIMITS
    options = options or Options()
    src, dst = Path(src), Path(dst)
    size = input_size(src, limits.max_input_bytes)
    fmt = sniff_file(src).format
    if fmt not in VIDEO_FORMATS and fmt not in AUDIO_FORMATS:
        raise UnsupportedFormatError(f"not a video or audio file ({fmt})")
    say = progress or (lambda fraction, stage: None)
    say(0.0, "reading")
    refuse_embedded_files(src, fmt)
    probe_deadline = started + limits.max_seconds if limits.max_seconds else None
    info = probe(src, demuxer(fmt), deadline=probe_deadline, max_pixels=limits.max_video_pixels)
    require(info)
    guard.check(info, limits)
    if not info.video:
        from squeezer.engines.audio.pipeline import compress_probed

        return compress_probed(src, dst, options, info=info, fmt=fmt, size=size, limits=limits,
                               progress=progress, started=started)
    deadline = guard.deadline(started, info.duration, limits, progress)
    settings = resolve(options)
    run = _Run(src, dst, fmt, size, info, settings, limits, deadline, say, options)
    report = run.go()
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    return report


def refuse_embedded_files(src: Path, fmt: str) -> None:
    """Refuse an AVI with a subtitle file inside (GAB2): the HLS-in-AVI attack's vector."""
    if fmt == "avi" and avi_embeds_files(src):
        raise MediaRefusedError("the AVI embeds a file of its own (a GAB2 subtitle chunk, the "
                                "way playlists that read other files are smuggled in); refused")


class _Run:
    """One compression: the state the steps share."""

    def __init__(self, src: Path, dst: Path, fmt: str, size: int, info: MediaInfo,
                 settings: VideoSettings, limits: Limits, deadline: float | None,
                 say: Progress, options: Options) -> None:
        self.src, self.dst, self.fmt, self.size = src, dst, fmt, size
        self.options = options
        self.info, self.settings, self.limits = info, settings, limits
        self.deadline, self.say = deadline, say
        self.memory = limits.max_media_memory_bytes
        self.threads = thread_count(limits.max_threads) if limits.max_threads else 0
        self.source = ffmpeg.input_args(src, demuxer(fmt), max_pixels=limits.max_video_pixels)
        self.report = VideoReport(
            input_bytes=size, format_in=fmt, input=summarize(info, fmt),
            video_codec_in=info.video[0].codec,
            audio_codecs_in=[s.codec for s in info.audio],
            settings=settings.model_dump(mode="json", exclude_none=True),
            engine_versions=engine_versions())

    # --- the whole run ------------------------------------------------------------------------

    def go(self) -> VideoReport:
        s = self.settings
        duration, fps = self.info.duration, self.info.video[0].fps
        if s.trim_start and duration and s.trim_start > duration - (1 / fps if fps else 0):
            # else every step after the seek finds nothing and fails with ffmpeg's words
            raise InputError(f"video.trim_start {s.trim_start:g} s is at or past the end of "
                             f"the {duration:.2f} s video")
        with tempfile.TemporaryDirectory(prefix="squeezer-video-") as tmp:
            work = Path(tmp)
            if not s.reencode:
                return self._remux_or_keep(work, asked=False)
            codec = self._codec()
            plan = self._plan(codec)
            out = work / f"encoded.{plan.fmt}"
            encoded = self._encode(plan, codec, out, work)
            if encoded is None:  # the search predicts no gain
                return self._remux_or_keep(work, asked=True)
            return self._finish(plan, out, method="encode")

    def _remux_or_keep(self, work: Path, *, asked: bool) -> VideoReport:
        """``lossless``, or a re-encode that would not be smaller: remux when that alone is
        smaller, else the input's bytes."""
        plan = self._plan(None)
        out = work / f"remuxed.{plan.fmt}"
        self.say(0.4 if asked else 0.05, "remuxing")
        cap = self.size if not self._conversion() else self.limits.max_output_bytes
        self._mux(plan, None, out, crf=None, cap=cap, progress_span=(0.4 if asked else 0.05,
                                                                      0.85))
        if out.stat().st_size < self.size * (1 - MIN_REMUX_GAIN) or self._conversion():
            self.report.actions.append(f"remuxed into {plan.fmt.upper()}"
                                       + (" (fast start)" if MUXER[plan.fmt] in ("mp4", "mov")
                                          else ""))
            if asked:
                self.report.warnings.append("re-encoding would not make this video smaller; "
                                            "its streams were only remuxed")
            try:
                return self._finish(plan, out, method="remux")
            except VerificationError as exc:
                if self._conversion():
                    raise
                self.report.actions.pop()
                return self._keep_original(f"the remux did not keep the input as it is "
                                           f"({exc.message})")
        return self._keep_original("a remux alone is not smaller" if not asked else
                                   "neither a re-encode nor a remux is smaller")

    def _keep_original(self, why: str) -> VideoReport:
        atomic_copy(self.src, self.dst)
        r = self.report
        r.method = "original"
        r.original_kept = True
        r.format_out = self.fmt
        r.output = r.input
        r.duration = round(self.info.duration, 3)
        v = self.info.video[0]
        r.width, r.height = v.display_size
        r.fps = round(v.fps, 3)
        r.video_codec_out = v.codec
        r.audio_codecs_out = [a.codec for a in self.info.audio]
        r.actions.append(f"kept the input's bytes: {why}")
        r.finish(self.size)
        self.say(1.0, "done")
        return r

    def _conversion(self) -> bool:
        """Something was asked that must show in the output even when it is not smaller."""
        s = self.settings
        return s.transforms or s.container is not Container.auto or s.codec_given \
            or s.remove_audio or s.remove_subtitles

    # --- planning -----------------------------------------------------------------------------

    def _codec(self) -> VideoCodec:
        s, v = self.settings, self.info.video[0]
        if v.hdr and not s.codec_given and s.codec is VideoCodec.h264:
            self.report.actions.append("HDR input: encoded as 10-bit HEVC to keep HDR "
                                       "(video.codec=h264 forces 10-bit H.264)")
            return VideoCodec.h265
        if s.container is Container.webm and s.codec not in (VideoCodec.vp9, VideoCodec.av1):
            if s.codec_given:
                raise InputError(f"WebM cannot hold {s.codec.value} video; use vp9 or av1")
            return VideoCodec.vp9
        return s.codec

    def _plan(self, codec: VideoCodec | None) -> Plan:
        """Which streams go where; ``codec`` None: a remux."""
        s, info = self.settings, self.info
        fmt = self._container(codec)
        plan = Plan(fmt=fmt, video=list(info.video), covers=list(info.covers), audio=[],
                    subtitles=[], attachments=[])
        if s.remove_audio:
            if info.audio:
                plan.dropped.append(f"{len(info.audio)} audio track(s) (asked)")
        else:
            plan.audio = list(info.audio)
        subs = info.of("subtitle")
        if s.remove_subtitles:
            if subs:
                plan.dropped.append(f"{len(subs)} subtitle track(s) (asked)")
        else:
            for sub in subs:
                if self._subtitle_fits(sub, fmt):
                    plan.subtitles.append(sub)
                else:
                    plan.dropped.append(f"{sub.codec} subtitles ({fmt.upper()} cannot hold them)")
        if fmt == "mkv":
            plan.attachments = info.of("attachment")
        data = [d for d in info.of("data") if not _rewritten(d, info, fmt)]
        if data:
            plan.dropped.append(f"{len(data)} data track(s) ({', '.join(sorted({d.codec for d in data}))})")
        if fmt == "webm" and plan.covers:
            plan.dropped.append("cover picture (WebM cannot hold it)")
            plan.covers = []
        return plan

    def _container(self, codec: VideoCodec | None) -> str:
        s, fmt = self.settings, self.fmt
        if s.container is not Container.auto:
            return s.container.value
        if fmt == "mkv":
            return "mkv"
        if codec is None:  # remux: the same kind of container, cleaned
            if fmt in ("mp4", "mov", "m4v", "3gp", "webm"):
                return fmt
            return "mkv"  # AVI, MPEG-TS, Ogg: Matroska holds whatever they hold
        if fmt == "webm" and codec in (VideoCodec.vp9, VideoCodec.av1):
            return "webm"
        subs = [] if s.remove_subtitles else self.info.of("subtitle")
        if any(sub.codec not in MP4_TEXT_SUBTITLES for sub in subs):
            return "mkv"
        return "mp4"

    @staticmethod
    def _subtitle_fits(sub: Stream, fmt: str) -> bool:
        if fmt in ("mkv",):
            return True
        if fmt == "webm":
            return sub.codec == "webvtt"
        return sub.codec in MP4_TEXT_SUBTITLES

    # --- filters ------------------------------------------------------------------------------

    def _filters(self, stream: Stream) -> tuple[str, tuple[int, int]]:
        """The video filter chain for ``stream`` and the displayed size it produces."""
        s = self.settings
        chain: list[str] = []
        width, height = stream.width, stream.height
        turned = round(abs(stream.rotation)) % 180 == 90
        if s.crop is not None:
            c = s.crop
            if c.x + c.width > width or c.y + c.height > height:
                raise InputError(f"video.crop {c.width}x{c.height}+{c.x}+{c.y} is outside the "
                                 f"{width}x{height} picture")
            chain.append(f"crop={c.width}:{c.height}:{c.x}:{c.y}")
            width, height = c.width, c.height
        if s.resize is not None:
            # the caller speaks of the picture as displayed; the filters work on it as stored
            dw, dh = (height, width) if turned else (width, height)
            step, (dw, dh) = _resize(s.resize.mode, s.resize.width, s.resize.height, dw, dh)
            if step:
                chain.extend(_stored(step, turned))
                width, height = (dh, dw) if turned else (dw, dh)
        if s.max_fps is not None and stream.fps > s.max_fps + 0.01:
            chain.append(f"fps={s.max_fps:g}")
        if width % 2 or height % 2:  # 4:2:0 needs even dimensions
            width, height = width - width % 2, height - height % 2
            chain.append(f"crop={width}:{height}:0:0")
        if chain:
            chain.append("setsar=1" if s.resize is not None else "null")
        display = (height, width) if turned else (width, height)
        return ",".join(c for c in chain if c != "null"), display

    def _colour(self, stream: Stream) -> list[str]:
        args = []
        for option, value in (("-color_primaries", stream.color_primaries),
                              ("-color_trc", stream.color_transfer),
                              ("-colorspace", stream.color_space)):
            if value:
                args += [option, value]
        if stream.color_range:
            args += ["-color_range", stream.color_range]
        return args

    # --- encoding -----------------------------------------------------------------------------

    def _encode(self, plan: Plan, codec: VideoCodec, out: Path, work: Path) -> Path | None:
        s, r = self.settings, self.report
        v = self.info.video[0]
        filters, (width, height) = self._filters(v)
        pix_fmt = encoders.pixel_format(codec, v.bit_depth, v.hdr)
        memory = encoders.memory_step(codec, width * height, self.memory)
        needed = encoders.memory_needed(codec, width * height, memory)
        if self.memory and needed > MEMORY_SLACK * self.memory:
            # refused before the work: the leanest settings would still run out
            raise MemoryLimitError(
                f"encoding {width}x{height} frames as {codec.value} needs about "
                f"{needed / 2**30:.1f} GiB, more than the memory limit of "
                f"{self.memory / 2**30:.1f} GiB (limits.max_media_memory_bytes, "
                "SQUEEZER_MAX_MEDIA_MEMORY_BYTES); raise it or make the video smaller "
                "(video.resize)")
        if v.dolby_vision:
            r.warnings.append("Dolby Vision metadata is not re-encoded; the HDR base layer "
                              "is kept")
        crf: int | None = None
        searched = False  #: the CRF comes from the VMAF search (encoders.video_args)
        whole_decode = False  #: the search found that seeks into this video decode corrupt
        if s.crf is not None:
            crf = s.crf
            r.actions.append(f"fixed CRF {crf} (video.crf)")
        elif s.quality is not None:
            crf = encoders.quality_crf(codec, s.quality)
            r.actions.append(f"quality {s.quality} as CRF {crf}")
        elif s.bitrate is None and s.vmaf is not None:
            enc = Encoding(codec=codec, source=self.source, filters=filters,
                           pix_fmt=pix_fmt, colour=self._colour(v), max_bitrate=s.max_bitrate,
                           threads=self.threads, memory_bytes=self.memory, fps=v.fps,
                           memory=memory, trim_start=s.trim_start or 0.0,
                           trim_span=self._span() if s.trim_end is not None else None)
            self.say(0.02, "searching")
            outcome = search(
                enc, floor=s.vmaf, crf_min=s.crf_min, crf_max=s.crf_max,
                start=START_CRF.get(s.level, 23.0), duration=self._span(),
                input_video_bytes=self._video_bytes(), work=work, deadline=self.deadline,
                progress=lambda f: self.say(0.02 + 0.3 * f, "searching"))
            r.search = [SearchAttempt(**a.as_json()) for a in outcome.attempts]
            r.vmaf_floor = s.vmaf
            r.vmaf_scenes = len(outcome.scenes)
            r.vmaf_sampled_seconds = round(outcome.sampled_seconds or self._span(), 3)
            memory = enc.memory
            whole_decode = enc.decode_from_start
            if outcome.not_smaller and not self._conversion():
                last = outcome.best or outcome.attempts[-1]
                r.actions.append(f"CRF search: {len(outcome.attempts)} attempt(s) on "
                                 f"{len(outcome.scenes)} sampled scene(s); at CRF {last.crf} "
                                 f"(VMAF {last.vmaf:.2f}, floor {s.vmaf:g}) the samples "
                                 "predict no gain: the full encode was skipped")
                return None
            best = outcome.best
            if best is None and outcome.saturated:
                best = min(outcome.attempts, key=lambda a: a.crf)
                r.warnings.append(f"VMAF {s.vmaf:g} was not reached: on this video VMAF barely "
                                  "rises as the CRF falls (grain or noise), and the rest of "
                                  f"the way would cost more than {SATURATED_COST:g} x the "
                                  f"bytes; CRF {best.crf} (VMAF {best.vmaf:.2f} on the "
                                  "samples) was used")
            elif best is None:
                best = min(outcome.attempts, key=lambda a: a.crf)
                r.warnings.append(f"no CRF in the level's range keeps VMAF {s.vmaf:g} on the "
                                  f"samples; the best quality tried (CRF {best.crf}) was used")
            crf = best.crf
            searched = True
            r.crf = crf
            r.vmaf, r.vmaf_mean, r.vmaf_min = best.vmaf, best.vmaf_mean, best.vmaf_min
            r.vmaf_sampled_frames = best.frames
            r.actions.append(f"CRF search: {len(outcome.attempts)} attempt(s) on "
                             f"{len(outcome.scenes)} sampled scene(s); CRF {crf} keeps "
                             f"VMAF {best.vmaf:.2f} (floor {s.vmaf:g})")
        cap = self.limits.max_output_bytes if self._conversion() else self.size

        def full(step: int) -> None:
            self._mux(plan, codec, out, crf=crf, cap=cap, progress_span=(0.33, 0.92),
                      filters=filters, pix_fmt=pix_fmt, work=work, vmaf_tuned=searched,
                      memory=step, whole_decode=whole_decode)

        memory = leaner(codec, memory, full)
        if memory and encoders.lean_settings(codec):
            lean = encoders.MEMORY_STEPS[memory]
            r.actions.append(f"{encoders.ENCODER[codec]} with a lookahead of {lean.lookahead} "
                             f"frames and {lean.threads} frame thread(s): the default "
                             f"settings' frames of {width}x{height} would not fit the memory "
                             f"limit of {self.memory >> 20} MiB")
        r.crf = crf
        if out.stat().st_size >= self.size and not self._conversion():
            return None
        return out

    def _span(self) -> float:
        s, duration = self.settings, self.info.duration
        end = min(s.trim_end, duration) if s.trim_end is not None else duration
        return max(0.0, end - (s.trim_start or 0.0))

    def _trimmed(self, source: list[str], *, from_start: bool = False) -> list[str]:
        """``source`` read from ``video.trim_start`` (a seek) to ``video.trim_end``; with
        ``from_start``, read from the beginning up to the end of the trim (the caller cuts
        the start with an output ``-ss``)."""
        s = self.settings
        extra = []
        if s.trim_start and not from_start:
            extra += ["-ss", f"{s.trim_start:.3f}"]
        if s.trim_end is not None:
            end = self._span() + (s.trim_start or 0.0 if from_start else 0.0)
            extra += ["-t", f"{end:.3f}"]
        at = len(source) - 2
        return [*source[:at], *extra, *source[at:]]

    def _video_bytes(self) -> int:
        """The input's bytes that are video (the container's rate minus the other streams')."""
        other = sum(s.bitrate for s in self.info.streams if s.kind != "video")
        total = self.size
        if self.info.duration and other:
            total -= int(other / 8 * self.info.duration)
        return max(total, self.size // 4)

    def _mux(self, plan: Plan, codec: VideoCodec | None, out: Path, *, crf: int | None,
             cap: int, progress_span: tuple[float, float], filters: str = "",
             pix_fmt: str = "yuv420p", work: Path | None = None,
             vmaf_tuned: bool = False, memory: int = 0, whole_decode: bool = False) -> None:
        """Write ``out``: a remux (``codec`` None) or the full encode (``vmaf_tuned``: at a
        CRF the VMAF search chose, with the settings the samples had).  ``whole_decode``:
        a trim is cut from a decode that starts at the beginning, not seeked to (done when
        the seek's pictures decode corrupt: :func:`~squeezer.engines.video.search.broken_seek`)."""
        s = self.settings
        source = self._trimmed(self.source, from_start=whole_decode) if codec is not None \
            else self.source
        if whole_decode and codec is not None and s.trim_start:
            self.report.actions.append(
                f"video.trim_start {s.trim_start:g} s is not a point this video decodes from "
                "(a seek there gives corrupt pictures): it was read from the beginning")
        args = [*source[:-2], "-noautorotate", *source[-2:]] if codec is not None else \
            list(source)
        maps: list[str] = []
        codecs: list[str] = []
        for i, v in enumerate(plan.video):
            maps += ["-map", f"0:{v.index}"]
            if codec is None:
                codecs += [f"-c:v:{i}", "copy"]
            else:
                filt, _ = self._filters(v) if i else (filters, None)
                if s.trim_start:
                    # the first frame after a start between two frames keeps its offset
                    # (0.5 s at 25 fps: 0.52 s -> 0.04 s) and the output would outlast the
                    # span by a frame: the trimmed video starts at zero
                    filt = ",".join(f for f in (filt, "setpts=PTS-STARTPTS") if f)
                if filt:
                    codecs += [f"-filter:v:{i}", filt]
                vargs = encoders.video_args(
                    codec, crf=crf if s.bitrate is None else None, bitrate_kbps=s.bitrate,
                    max_bitrate_kbps=s.max_bitrate, pix_fmt=pix_fmt, threads=self.threads,
                    gop_seconds=5.0, fps=v.fps, vmaf_tuned=vmaf_tuned, memory=memory)
                codecs += _per_stream(vargs, f"v:{i}")
                codecs += _per_stream(self._colour(v), f"v:{i}")
        for j, cover in enumerate(plan.covers, start=len(plan.video)):
            maps += ["-map", f"0:{cover.index}"]
            codecs += [f"-c:v:{j}", "copy", f"-disposition:v:{j}", "attached_pic"]
        for k, a in enumerate(plan.audio):
            maps += ["-map", f"0:{a.index}"]
            codecs += self._audio(a, k, plan.fmt, copy=codec is None)
        for k, sub in enumerate(plan.subtitles):
            maps += ["-map", f"0:{sub.index}"]
            sub_codec = "copy"
            if plan.fmt in ("mp4", "m4v", "mov", "3gp") and sub.codec != "mov_text":
                sub_codec = "mov_text"
            codecs += [f"-c:s:{k}", sub_codec]
        for k, att in enumerate(plan.attachments):
            maps += ["-map", f"0:{att.index}"]
            codecs += [f"-c:t:{k}", "copy"]
        meta = ["-map_metadata", "-1"] if s.remove_metadata else ["-map_metadata", "0"]
        meta += ["-map_chapters", "0"]
        muxer = MUXER[plan.fmt]
        mux_opts: list[str] = []
        if muxer in ("mp4", "mov", "3gp"):
            mux_opts += ["-movflags", "+faststart"]
        elif muxer in ("matroska", "webm"):
            mux_opts += ["-cues_to_front", "1"]
        if cap:
            mux_opts += ["-fs", str(cap)]
        if codec is not None and s.trim_start:
            # packets from before the start (a subtitle event the seek lands inside) would
            # get negative times and the muxer would shift every stream to make room; read
            # from the beginning, everything before the trim's start is dropped here
            mux_opts += ["-ss", f"{s.trim_start:.3f}" if whole_decode else "0"]
        passes = [0]
        if codec is not None and s.bitrate is not None and s.two_pass:
            passes = [1, 2]
        lo, hi = progress_span
        span = self._span() if codec is not None else self.info.duration
        stage = "encoding" if codec is not None else "remuxing"
        for number in passes:
            extra = list(codecs)
            if number:
                log = str((work or out.parent) / "passlog")
                extra = [*extra, "-pass", str(number), "-passlogfile", log]
            target = ["-f", "null", "-"] if number == 1 else \
                ["-f", muxer, "-y", ffmpeg.url(out)]
            if number == 1:
                extra = [a for a in extra if a != "+faststart"]
            part = (lo, (lo + hi) / 2) if number == 1 else ((lo + hi) / 2, hi) if number == 2 \
                else (lo, hi)
            result = ffmpeg.run(
                [*args, *maps, *extra, *meta, "-max_muxing_queue_size", "4096",
                 *(mux_opts if number != 1 else []), *target],
                deadline=self.deadline, memory_bytes=self.memory, duration=span,
                progress=self._stage(stage, part),
                what="encoding" if codec is not None else "remuxing")
            if codec is not None and s.trim_start and not whole_decode \
                    and broken_seek(result.log):
                # the seek to the trim's start decoded corrupt pictures: read from the start
                self._mux(plan, codec, out, crf=crf, cap=cap, progress_span=progress_span,
                          filters=filters, pix_fmt=pix_fmt, work=work, vmaf_tuned=vmaf_tuned,
                          memory=memory, whole_decode=True)
                return
            if plan.video and result.progress.frame == 0 and codec is not None:
                raise DamagedMediaError("the video stream has no frames to encode")
        if cap and out.exists() and out.stat().st_size >= cap and self._conversion():
            raise OutputTooLargeError(f"the output reached the limit of {cap} bytes")

    def _stage(self, stage: str, span: tuple[float, float]) -> Callable[[float], None]:
        """A step's progress (0..1) as the run's, within ``span``."""
        def report(fraction: float) -> None:
            self.say(span[0] + (span[1] - span[0]) * fraction, stage)
        return report

    def _audio(self, a: Stream, k: int, fmt: str, *, copy: bool) -> list[str]:
        """Arguments for output audio stream ``k`` (from input stream ``a``)."""
        from squeezer.engines.audio.encoders import EFFICIENT, audio_args, has_lfe
        from squeezer.engines.audio.options import resolve as audio_resolve

        if copy:
            return [f"-c:a:{k}", "copy"]
        audio = audio_resolve(self.options)
        fits = AUDIO_FITS.get(MUXER[fmt] if fmt != "mkv" else "mkv", None)
        if fmt in ("mp4", "m4v", "3gp"):
            fits = AUDIO_FITS["mp4"]
        elif fmt == "mov":
            fits = AUDIO_FITS["mov"]
        elif fmt == "webm":
            fits = AUDIO_FITS["webm"]
        chosen = audio.codec.value
        lfe = has_lfe(a.channel_layout)
        if chosen == "auto":
            default = "opus" if fmt == "webm" else "aac"
            if not audio.lossy:
                return [f"-c:a:{k}", "copy"] if fits is None or a.codec in fits else \
                    audio_args(default, audio.kbps(default, a.channels, lfe), index=k,
                               rate=a.sample_rate, channels=a.channels)
            target = audio.kbps(default, a.channels, lfe)
            keep = a.codec in EFFICIENT and (fits is None or a.codec in fits) \
                and a.bitrate and a.bitrate <= 1.25 * target * 1000
            if keep:
                return [f"-c:a:{k}", "copy"]
            chosen = default
        if fits is not None and chosen not in fits and chosen != "aac":
            raise InputError(f"{fmt.upper()} cannot hold {chosen} audio")
        return audio_args(chosen, None if chosen == "flac" else
                          audio.kbps(chosen, a.channels, lfe), index=k, rate=a.sample_rate,
                          channels=a.channels)

    # --- the end ------------------------------------------------------------------------------

    def _finish(self, plan: Plan, out: Path, *, method: str) -> VideoReport:
        r, s = self.report, self.settings
        self.say(0.93, "verifying")
        sizes = []
        encoded = method == "encode"
        for v in plan.video:
            _, display = self._filters(v) if encoded else (None, v.display_size)
            sizes.append(display)
        v0 = self.info.video[0]
        fps = min(v0.fps, s.max_fps) if (encoded and s.max_fps) else v0.fps
        duration = self._span() if encoded else self.info.duration
        promise = Promise(duration=duration, tolerance=max(1.0 / fps if fps else 0.05, 0.05),
                          video=len(plan.video), audio=len(plan.audio),
                          subtitles=len(plan.subtitles), sizes=sizes)
        checked = verify(out, demuxer(plan.fmt), promise, deadline=self.deadline,
                         memory_bytes=self.memory, strict=encoded,
                         progress=self._stage("verifying", (0.93, 0.995)))
        r.warnings.extend(checked.warnings)
        atomic_copy(out, self.dst)
        r.method = method
        r.format_out = plan.fmt
        r.output = summarize(checked.info, plan.fmt)
        r.duration = round(checked.info.duration, 3)
        ov = checked.info.video[0]
        r.width, r.height = ov.display_size
        r.fps = round(ov.fps, 3)
        r.video_codec_out = ov.codec
        r.audio_codecs_out = [a.codec for a in checked.info.audio]
        if plan.dropped:
            r.actions.append("left out: " + "; ".join(plan.dropped))
        changes = []
        if s.transforms:
            changes.append("resize" if s.resize or s.crop else "convert")
        if s.remove_metadata:
            changes.append("metadata")
        # the automatic container (MP4 for an AVI) is our choice, not a requested change
        if (plan.fmt != self.fmt and s.container is not Container.auto) \
                or (encoded and s.codec_given):
            changes.append("convert")
        r.requested_changes = sorted(set(changes))
        r.finish(out.stat().st_size)
        if r.output_bytes >= self.size:
            r.warnings.append("the output is not smaller than the input; it is kept because a "
                              "change was asked (" + ", ".join(r.requested_changes) + ")")
        self.say(1.0, "done")
        return r


def _rewritten(data: Stream, info: MediaInfo, fmt: str) -> bool:
    """A data track the MP4/MOV muxer writes again from what is kept: the QuickTime timecode
    track (from the video's ``timecode`` tag) and the chapter text track (from the chapters).
    Not "left out", though ffmpeg cannot copy it."""
    if fmt not in ("mp4", "m4v", "mov", "3gp"):
        return False
    return "timecode" in data.tags or (data.codec == "bin_data" and info.chapters > 0)


def _per_stream(args: list[str], spec: str) -> list[str]:
    """``-c:v x -crf 23`` as ``-c:v:0 x -crf:v:0 23`` (options that take a stream specifier)."""
    out = []
    i = 0
    while i < len(args):
        key = args[i]
        if key.startswith("-") and i + 1 < len(args):
            base = key.split(":")[0]
            if base in ("-x265-params", "-svtav1-params", "-movflags"):
                out += [key, args[i + 1]]
            else:
                out += [f"{base}:{spec}", args[i + 1]]
            i += 2
        else:
            out.append(key)
            i += 1
    return out


def _resize(mode: ResizeMode, width: int | None, height: int | None, w: int,
            h: int) -> tuple[str, tuple[int, int]]:
    """The scale (and crop) step from ``w`` x ``h`` (displayed) and the size it gives."""

    def even(x: float) -> int:
        return max(2, round(x / 2) * 2)

    if mode is ResizeMode.auto or mode is ResizeMode.fit:
        bw = width or 10**9
        bh = height or 10**9
        factor = min(bw / w, bh / h)
        if mode is ResizeMode.auto:
            factor = min(factor, 1.0)
        if factor == 1.0:
            return "", (w, h)
        nw, nh = even(w * factor), even(h * factor)
        return f"scale={nw}:{nh}:flags=lanczos", (nw, nh)
    if mode is ResizeMode.scale:
        factor = (width / w) if width else (height or h) / h
        nw, nh = even(w * factor), even(h * factor)
        return f"scale={nw}:{nh}:flags=lanczos", (nw, nh)
    assert width is not None and height is not None
    tw, th = even(width), even(height)
    if mode is ResizeMode.exact:
        return f"scale={tw}:{th}:flags=lanczos", (tw, th)
    if mode is ResizeMode.crop:
        if tw > w or th > h:
            raise InputError(f"video.resize crop {tw}x{th} is larger than the {w}x{h} picture")
        return f"crop={tw}:{th}:{(w - tw) // 2}:{(h - th) // 2}", (tw, th)
    # fill: cover, then cut the overflow, centred
    factor = max(tw / w, th / h)
    sw, sh = max(tw, even(w * factor)), max(th, even(h * factor))
    return (f"scale={sw}:{sh}:flags=lanczos,crop={tw}:{th}:{(sw - tw) // 2}:{(sh - th) // 2}",
            (tw, th))


def _stored(step: str, turned: bool) -> list[str]:
    """A scale/crop step written for the displayed picture, for the stored one (a 90° turn
    swaps every width and height)."""
    if not turned:
        return [step]
    out = []
    for part in step.split(","):
        name, _, params = part.partition("=")
        values = params.split(":")
        if name == "scale":
            values[0], values[1] = values[1], values[0]
        elif name == "crop":
            values = [values[1], values[0], values[3], values[2]]
        out.append(f"{name}={':'.join(values)}")
    return out


