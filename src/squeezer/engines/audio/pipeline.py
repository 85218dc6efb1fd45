"""The audio pipeline: sniff, probe under the limits, choose codec and rate, encode, verify.

One call of :func:`compress` is one file, with the same promises as the other
engines: a complete, verified result smaller than the input, or the input's
bytes (remuxed only when that alone is smaller), or a named error and nothing.

``lossless`` turns PCM (WAV, AIFF) and FLAC into FLAC at its highest
compression and remuxes the rest.  The lossy levels re-encode at the level's
rate per channel (:data:`~squeezer.engines.audio.options.LEVELS`); with
``audio.codec: auto`` an MP3 stays MP3, AAC stays AAC (M4A), Opus stays
Opus, Vorbis becomes Opus and PCM/FLAC/others become AAC.  A stream already at
or below the target rate of its own codec is not re-encoded (that would only
lose quality).  Tags and cover art are kept unless ``remove_metadata``
(formats that cannot hold a picture drop it, with a warning).  A file with a
moving picture goes to the video engine.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squeezer.engines.audio.encoders import audio_args, has_lfe
from squeezer.engines.audio.options import CODEC_FORMAT, AudioCodec, AudioSettings, resolve
from squeezer.engines.audio.report import AudioReport
from squeezer.engines.errors import UnsupportedFormatError, VerificationError
from squeezer.engines.files import atomic_copy, input_size
from squeezer.engines.level import Level
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.media import ffmpeg, guard
from squeezer.engines.media.probe import MediaInfo, Stream, probe, require
from squeezer.engines.media.signatures import AUDIO_FORMATS, VIDEO_FORMATS, demuxer
from squeezer.engines.media.summary import summarize
from squeezer.engines.media.verify import Promise, verify
from squeezer.engines.options import Options
from squeezer.engines.sniff import sniff_file
from squeezer.engines.video.pipeline import MIN_REMUX_GAIN

Progress = Callable[[float, str], None]

#: the muxer of each output format
MUXER = {"mp3": "mp3", "m4a": "ipod", "opus": "ogg", "ogg": "ogg", "flac": "flac",
         "mka": "matroska", "weba": "webm", "wav": "wav", "aiff": "aiff", "aac": "adts",
         "mp4": "mp4", "mov": "mov", "3gp": "3gp", "m4v": "mp4", "mkv": "matroska",
         "webm": "webm", "avi": "avi", "mpegts": "mpegts", "ogv": "ogg"}
#: lossless-only inputs: PCM and FLAC codecs
_PCM_PREFIX = ("pcm_",)
_LOSSLESS_CODECS = {"flac", "alac", "wavpack", "ape", "tta", "mlp", "truehd"}
#: output formats that carry a cover picture
_COVER_FORMATS = {"mp3", "m4a", "flac", "mka"}
#: a lossy input above this rate (bit/s) is re-encoded (above ``low``) at no more than
#: INPUT_SHARE of its own rate, and no less than LEVEL_SHARE of the level's: a 192 kbit/s
#: MP3 at medium becomes 106 kbit/s, not 112, a 160 kbit/s Vorbis 72 kbit/s Opus, not 96
#: (their LSD: docs/audio.md); what was lost in the first encode needs no bits again
HIGH_RATE = 128_000
INPUT_SHARE = 0.55
LEVEL_SHARE = 0.75
#: output formats that hold one audio stream only
_SINGLE = {"mp3", "m4a", "opus", "ogg", "flac", "aac", "wav", "aiff"}


#: PCM codecs whose samples FLAC (integers of at most 24 bits in ffmpeg's encoder) may not hold
_WIDE_PCM = {"pcm_f16le", "pcm_f24le", "pcm_f32le", "pcm_f32be", "pcm_f64le", "pcm_f64be",
             "pcm_s32le", "pcm_s32be", "pcm_s64le", "pcm_s64be"}
#: decoded sample formats that may be wider than 24-bit integers (an ALAC or WavPack track)
_WIDE_FORMATS = {"s32", "s32p", "s64", "s64p", "flt", "fltp", "dbl", "dblp"}


def _maybe_wider_than_flac(stream: Stream) -> bool:
    """Whether ``stream``'s samples may not fit FLAC exactly (a 32-bit float WAV: 627,000 of
    661,500 samples changed, by up to 1.2e-7, on the way through FLAC)."""
    if stream.codec in _WIDE_PCM:
        return True
    return stream.codec in _LOSSLESS_CODECS and stream.sample_fmt in _WIDE_FORMATS


def compress(src: str | Path, dst: str | Path, options: Options | None = None, *,
             limits: Limits | None = None, progress: Progress | None = None) -> Any:
    """Compress the audio file ``src`` into ``dst``; return its :class:`AudioReport` (or the
    video engine's report for a file that holds a moving picture)."""
    started = time.monotonic()
    limits = limits or DEFAULT_LIMITS
    src = Path(src)
    size = input_size(src, limits.max_input_bytes)
    fmt = sniff_file(src).format
    if fmt not in AUDIO_FORMATS and fmt not in VIDEO_FORMATS:
        raise UnsupportedFormatError(f"not an audio or video file ({fmt})")
    if progress:
        progress(0.0, "reading")
    probe_deadline = started + limits.max_seconds if limits.max_seconds else None
    info = probe(src, demuxer(fmt), deadline=probe_deadline, max_pixels=limits.max_video_pixels)
    require(info)
    guard.check(info, limits)
    if info.video:
        from squeezer.engines.video.pipeline import compress as compress_video

        return compress_video(src, dst, options, limits=limits, progress=progress)
    return compress_probed(src, dst, options, info=info, fmt=fmt, size=size, limits=limits,
                           progress=progress, started=started)


def compress_probed(src: Path, dst: str | Path, options: Options | None, *, info: MediaInfo,
                    fmt: str, size: int, limits: Limits, progress: Progress | None,
                    started: float) -> AudioReport:
    """:func:`compress` once the file is sniffed, probed and within the limits."""
    options = options or Options()
    say = progress or (lambda fraction, stage: None)
    if not info.audio:
        from squeezer.engines.errors import DamagedMediaError

        raise DamagedMediaError("the file has no audio stream")
    deadline = guard.deadline(started, info.duration, limits, progress)
    settings = resolve(options)
    run = _Run(Path(src), Path(dst), fmt, size, info, settings, limits, deadline, say)
    report = run.go()
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    return report


class _Run:
    def __init__(self, src: Path, dst: Path, fmt: str, size: int, info: MediaInfo,
                 settings: AudioSettings, limits: Limits, deadline: float | None,
                 say: Progress) -> None:
        from squeezer.engines.video.pipeline import engine_versions

        self.src, self.dst, self.fmt, self.size = src, dst, fmt, size
        self.info, self.settings, self.limits, self.deadline, self.say = \
            info, settings, limits, deadline, say
        self.memory = limits.max_media_memory_bytes
        first = info.audio[0]
        self.report = AudioReport(
            input_bytes=size, format_in=fmt, input=summarize(info, fmt), codec_in=first.codec,
            channels=first.channels, sample_rate=first.sample_rate,
            bitrate_in=first.bitrate or (int(size * 8 / info.duration) if info.duration else 0),
            settings=settings.model_dump(mode="json", exclude_none=True),
            engine_versions=engine_versions())

    def go(self) -> AudioReport:
        s, first = self.settings, self.info.audio[0]
        codec = self._codec(first)
        with tempfile.TemporaryDirectory(prefix="squeezer-audio-") as tmp:
            work = Path(tmp)
            if codec is None:
                return self._remux_or_keep(work, why="")
            out_fmt = self._format(codec)
            out = work / f"encoded.{out_fmt}"
            kbps = None if codec == "flac" else self._kbps(codec, first)
            if codec != "flac" and self._already_there(first, codec, kbps):
                return self._remux_or_keep(
                    work, why=f"the input is already {first.codec} at "
                    f"{first.bitrate // 1000} kbit/s, at or below the level's "
                    f"{kbps} kbit/s: re-encoding would only lose quality")
            self._write(out, out_fmt, codec=codec, kbps=kbps)
            if codec == "flac" and not s.lossy and not self._same_samples(out, out_fmt, work):
                return self._remux_or_keep(
                    work, why=f"FLAC cannot hold these {first.codec} samples exactly "
                    "(it stores integers of at most 24 bits): a lossless encode would change "
                    "them")
            asked = s.codec is not AudioCodec.auto
            if out.stat().st_size >= self.size and not asked:
                return self._remux_or_keep(work, why="re-encoding is not smaller")
            method = "flac" if codec == "flac" else "encode"
            self.report.actions.append(
                f"encoded {first.codec} -> {codec}" + (f" at {kbps} kbit/s" if kbps else
                                                       " (compression level 12)"))
            return self._finish(out, out_fmt, method=method, encoded=True)

    # --- choices ------------------------------------------------------------------------------

    def _codec(self, first: Stream) -> str | None:
        """The output codec; None: no re-encode (remux or keep)."""
        s = self.settings
        if s.codec is not AudioCodec.auto:
            return s.codec.value
        pcm = first.codec.startswith(_PCM_PREFIX) or first.codec in _LOSSLESS_CODECS
        if not s.lossy:
            return "flac" if pcm else None
        if first.codec == "mp3":
            return "mp3"
        if first.codec == "aac":
            return "aac"
        if first.codec in ("opus", "vorbis"):
            return "opus"
        return "aac"

    def _format(self, codec: str) -> str:
        several = len(self.info.audio) > 1
        if codec == "opus" and self.fmt in ("mka", "weba"):
            return self.fmt
        if several:
            return "weba" if self.fmt == "weba" and codec == "opus" else "mka"
        return CODEC_FORMAT[codec]

    def _kbps(self, codec: str, a: Stream) -> int:
        """The rate for stream ``a`` in ``codec``: the level's, or less for a lossy input above
        :data:`HIGH_RATE` (:data:`INPUT_SHARE`)."""
        s, info = self.settings, self.info
        rate = s.kbps(codec, a.channels, has_lfe(a.channel_layout))
        lossless = a.codec.startswith(_PCM_PREFIX) or a.codec in _LOSSLESS_CODECS
        if s.bitrate is not None or lossless or s.level is Level.low:
            return rate
        # "a 160 kbit/s Vorbis" is its declared rate; the share is of what it really spends
        # (a VBR stream's header may say more: 160 declared, 127 spent)
        declared = actual = a.bitrate
        if len(info.audio) == 1 and info.duration:
            whole = int(self.size * 8 / info.duration)
            declared = declared or whole
            actual = min(actual, whole) if actual else whole
        if declared > HIGH_RATE:
            rate = min(rate, max(round(INPUT_SHARE * actual / 1000), round(LEVEL_SHARE * rate)))
        return rate

    @staticmethod
    def _already_there(first: Stream, codec: str, kbps: int | None) -> bool:
        same = first.codec == codec or (codec == "opus" and first.codec == "opus")
        return bool(same and kbps and first.bitrate and first.bitrate <= kbps * 1000 * 1.05)

    def _same_samples(self, out: Path, out_fmt: str, work: Path) -> bool:
        """Whether ``out`` decodes to the input's samples, bit for bit, on every track: checked
        for the sample formats FLAC may not hold (float, and integers that may be wider than
        24 bits); 16- and 24-bit PCM and FLAC of those always fit.  Both sides are decoded to
        64-bit floats, which hold every sample of either exactly, and hashed by ffmpeg."""
        if not any(_maybe_wider_than_flac(a) for a in self.info.audio):
            return True
        for k in range(len(self.info.audio)):
            sums = []
            for n, (path, fmt) in enumerate(((self.src, demuxer(self.fmt)),
                                             (out, demuxer(out_fmt)))):
                digest = work / f"samples-{k}-{n}.md5"
                ffmpeg.run([*ffmpeg.input_args(path, fmt), "-map", f"0:a:{k}",
                            "-c:a", "pcm_f64le", "-f", "md5", "-y", ffmpeg.url(digest)],
                           deadline=self.deadline, memory_bytes=self.memory,
                           duration=self.info.duration, what="comparing the samples")
                sums.append(digest.read_text().strip())
            if sums[0] != sums[1]:
                return False
        return True

    # --- writing ------------------------------------------------------------------------------

    def _write(self, out: Path, out_fmt: str, *, codec: str | None, kbps: int | None,
               span: tuple[float, float] = (0.05, 0.85)) -> None:
        s, info = self.settings, self.info
        args = ffmpeg.input_args(self.src, demuxer(self.fmt))
        maps: list[str] = []
        codecs: list[str] = []
        for k, a in enumerate(info.audio):
            maps += ["-map", f"0:{a.index}"]
            if codec is None:
                codecs += [f"-c:a:{k}", "copy"]
            else:
                rate = None if codec == "flac" else self._kbps(codec, a)
                codecs += audio_args(codec, rate, index=k, rate=a.sample_rate,
                                     channels=a.channels)
        keep_meta = not s.remove_metadata
        cover = info.covers[0] if info.covers and keep_meta else None
        if cover is not None and out_fmt not in _COVER_FORMATS:
            self.report.warnings.append(f"the cover picture was dropped: "
                                        f"{out_fmt.upper()} files cannot hold one here")
            cover = None
        if cover is not None:
            maps += ["-map", f"0:{cover.index}"]
            codecs += ["-c:v", "copy", "-disposition:v:0", "attached_pic"]
        self.report.cover_art = cover is not None
        self.report.tags_kept = keep_meta
        meta = ["-map_metadata", "0"] if keep_meta else ["-map_metadata", "-1"]
        if keep_meta and out_fmt in ("opus", "ogg") and self.fmt not in ("ogg", "opus"):
            meta += ["-map_metadata:s:a", "0:g"]  # Ogg keeps tags on the stream
        if keep_meta and self.fmt in ("ogg", "opus") and out_fmt not in ("ogg", "opus"):
            meta = ["-map_metadata", "0:s:a:0"]
        meta += ["-map_chapters", "0" if keep_meta else "-1"]
        muxer = MUXER[out_fmt]
        opts: list[str] = []
        if muxer in ("ipod", "mp4", "mov"):
            opts += ["-movflags", "+faststart"]
        if muxer == "mp3" and keep_meta:
            opts += ["-id3v2_version", "3", "-write_id3v1", "0"]
        if muxer in ("matroska", "webm"):
            opts += ["-cues_to_front", "1"]
        asked = s.codec is not AudioCodec.auto
        cap = self.limits.max_output_bytes if asked else self.size
        if cap:
            opts += ["-fs", str(cap)]
        lo, hi = span
        ffmpeg.run([*args, *maps, *codecs, *meta, "-vn" if cover is None else "-sn", *opts,
                    "-f", muxer, "-y", ffmpeg.url(out)],
                   deadline=self.deadline, memory_bytes=self.memory, duration=info.duration,
                   progress=lambda f: self.say(lo + (hi - lo) * f,
                                               "encoding" if codec else "remuxing"),
                   what="encoding" if codec else "remuxing")

    def _remux_or_keep(self, work: Path, *, why: str) -> AudioReport:
        out_fmt = self.fmt
        if out_fmt in ("mp4", "mov", "3gp", "m4v"):
            out_fmt = "m4a"
        if out_fmt in ("mkv", "webm", "avi", "mpegts", "ogv"):
            out_fmt = "mka"
        out = work / f"remuxed.{out_fmt}"
        try:
            self._write(out, out_fmt, codec=None, kbps=None, span=(0.5, 0.85))
        except Exception:  # noqa: BLE001 - a remux that fails is no reason to fail the file
            out.unlink(missing_ok=True)
        if out.exists() and 0 < out.stat().st_size < self.size * (1 - MIN_REMUX_GAIN):
            if why:
                self.report.warnings.append(why)
            self.report.actions.append(f"remuxed into {out_fmt.upper()}")
            try:
                return self._finish(out, out_fmt, method="remux", encoded=False)
            except VerificationError as exc:
                self.report.actions.pop()
                return self._keep_original(f"the remux did not keep the input as it is "
                                           f"({exc.message})")
        return self._keep_original(why or "a remux alone is not smaller")

    def _keep_original(self, why: str) -> AudioReport:
        atomic_copy(self.src, self.dst)
        r = self.report
        first = self.info.audio[0]
        r.method, r.original_kept, r.format_out = "original", True, self.fmt
        r.output, r.codec_out = r.input, first.codec
        r.duration = round(self.info.duration, 3)
        r.bitrate_out = r.bitrate_in
        r.cover_art = bool(self.info.covers)
        r.actions.append(f"kept the input's bytes: {why}")
        r.finish(self.size)
        self.say(1.0, "done")
        return r

    def _finish(self, out: Path, out_fmt: str, *, method: str, encoded: bool) -> AudioReport:
        r, info = self.report, self.info
        self.say(0.9, "verifying")
        promise = Promise(duration=info.duration, tolerance=0.06, video=0,
                          audio=len(info.audio))
        checked = verify(out, demuxer(out_fmt), promise, deadline=self.deadline,
                         memory_bytes=self.memory, strict=encoded,
                         progress=lambda f: self.say(0.9 + 0.09 * f, "verifying"))
        r.warnings.extend(checked.warnings)
        atomic_copy(out, self.dst)
        first = checked.info.audio[0]
        r.method, r.format_out = method, out_fmt
        r.output = summarize(checked.info, out_fmt)
        r.codec_out = first.codec
        r.duration = round(checked.info.duration, 3)
        r.channels, r.sample_rate = first.channels, first.sample_rate
        size = out.stat().st_size
        r.bitrate_out = int(size * 8 / checked.info.duration) if checked.info.duration else 0
        changes = []
        if self.settings.remove_metadata:
            changes.append("metadata")
        if self.settings.codec is not AudioCodec.auto:
            changes.append("convert")
        r.requested_changes = changes
        r.finish(size)
        if size >= self.size:
            r.warnings.append("the output is not smaller than the input; it is kept because a "
                              "conversion was asked")
        self.say(1.0, "done")
        return r
