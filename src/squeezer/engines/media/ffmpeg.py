"""The one place ffmpeg is run: a separate program, fenced in, watched and killable.

ffmpeg comes from the ``imageio-ffmpeg`` wheel (a static GPL build with
libx264, libx265, libsvtav1, libvpx, libopus, libmp3lame and libvmaf).  It is
run as a separate program, never linked into our process: Squeezer's own
licence stays Apache-2.0 (we ship no ffmpeg code, we execute a program the
user's pip installed), a crash or a memory bomb in a demuxer kills ffmpeg, not
us, and a cancelled job stops it at once.  Every other module of the media
engines builds argument lists and calls :func:`run`; none starts a process.

The fence, for every run:

- inputs are opened with ``-protocol_whitelist file,pipe`` (no network, no
  ``concat:``/``subfile:``/``crypto:`` tricks) and ``-format_whitelist`` of the
  demuxers the engines accept (:data:`DEMUXERS`), and the demuxer is forced
  (``-f``) to the one the file's bytes were sniffed as: a playlist, concat
  list, HLS/DASH manifest or ``image2`` pattern can neither be the input nor be
  opened from inside it (the "HLS playlist inside an AVI" attack).  ffmpeg
  logs every such attempt as "not on whitelist", and :func:`run` turns it into
  :class:`~squeezer.engines.errors.MediaRefusedError` even when ffmpeg itself
  went on without the nested stream;
- paths are given as ``file:`` URLs, so no file name is read as a protocol;
- the process gets ``PR_SET_PDEATHSIG`` (it is killed when the thread that
  started it dies: a job child killed by its worker takes ffmpeg with it), a
  data-segment cap (``RLIMIT_DATA``, the configured memory limit), no standard
  input and a minimal environment;
- it has a deadline: past it ffmpeg is killed and
  :class:`~squeezer.engines.errors.TimeLimitError` raised;
- its ``-progress`` stream is read as it comes and handed on as a fraction of
  the media's duration (every half second while it works).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import re
import resource
import selectors
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from squeezer.engines.errors import (
    DamagedMediaError,
    EngineError,
    MediaRefusedError,
    MediaToolMissingError,
    MemoryLimitError,
    TimeLimitError,
)

#: Demuxers an input may be read with (ffmpeg's short names; ``mov`` is
#: MP4/MOV/M4V/M4A/3GP, ``matroska`` is MKV and WebM).  Nothing that opens other
#: files or URLs (hls, dash, concat, image2, lavfi, …) is on it.
DEMUXERS = ("mov", "matroska", "avi", "mpegts", "mp3", "aac", "wav", "flac", "ogg", "aiff")
#: Protocols any input may use: the file itself, and pipes for progress.
PROTOCOLS = "file,pipe"
#: How often ffmpeg writes its progress block (seconds).
PROGRESS_PERIOD = 0.5
#: A run says its last fraction again after this long without a progress block, so that a
#: job's progress never pauses for long (issue 16: at least every 2 s; a 10-minute input's
#: search went 2.19 s without one on a loaded machine, while ffmpeg opened and seeked)
HEARTBEAT = 1.0
#: Bytes of ffmpeg's log kept for error messages.
LOG_TAIL = 16_384

_PR_SET_PDEATHSIG = 1
#: what ffmpeg logs when the file tried to open another format, protocol or playlist
_REFUSED = re.compile(r"not on whitelist|Protocol '[^']*' not on|Not detecting m3u8/hls",
                      re.IGNORECASE)
#: (x264 says "malloc of size 26999616 failed" and exits with status 187)
_NO_MEMORY = re.compile(r"Cannot allocate memory|out of memory|std::bad_alloc|"
                        r"malloc of size \d+ failed", re.IGNORECASE)
_PATH = re.compile(r"(?:file:)?/[^\s'\"]+")


@functools.cache
def executable() -> str:
    """The ffmpeg program inside the ``imageio-ffmpeg`` wheel.

    Looked up in the package itself (not through ``IMAGEIO_FFMPEG_EXE`` or the
    system's ``PATH``): the program Squeezer runs is the one its installation
    pinned, whatever the environment says.
    """
    try:
        folder = resources.files("imageio_ffmpeg") / "binaries"
        found = sorted((p for p in folder.iterdir()
                        if p.name.startswith("ffmpeg") and not p.name.endswith(".md")),
                       key=lambda p: p.name)
    except (ModuleNotFoundError, OSError):
        found = []
    for candidate in found:
        path = Path(str(candidate))
        if path.is_file():
            if not os.access(path, os.X_OK):
                os.chmod(path, 0o755)
            return str(path)
    raise MediaToolMissingError(
        "ffmpeg is not installed: the imageio-ffmpeg wheel is needed for video and audio")


@functools.cache
def version() -> str:
    """``n9.0.2-…`` (for the report's ``engine_versions``)."""
    out = subprocess.run([executable(), "-hide_banner", "-version"], capture_output=True,
                         text=True, timeout=30, env=_environment(), check=False).stdout
    m = re.search(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else "unknown"


def _environment() -> dict[str, str]:
    """What ffmpeg sees of the environment: a locale and nothing else (no proxies, no
    ``FFREPORT``, no ``AV_LOG_FORCE_*``)."""
    return {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}


def input_args(path: str | Path, demuxer: str | None, *, max_pixels: int = 0,
               extra: Sequence[str] = ()) -> list[str]:
    """The arguments that open ``path`` as an input, inside the fence (module docstring).

    ``demuxer``: the sniffed format's demuxer (None lets ffmpeg probe among
    :data:`DEMUXERS` only: for the engines' own intermediate files).
    ``max_pixels``: the decoders refuse larger frames (absurd dimensions).
    ``extra``: input options placed before ``-i`` (``-ss``, ``-t``).
    """
    args = ["-protocol_whitelist", PROTOCOLS, "-format_whitelist", ",".join(DEMUXERS)]
    if demuxer:
        args += ["-f", demuxer]
    if max_pixels:
        args += ["-max_pixels", str(max_pixels)]
    return [*args, *extra, "-i", url(path)]


def url(path: str | Path) -> str:
    """``file:`` + the absolute path: a file name is never read as a protocol or option."""
    return "file:" + os.path.abspath(path)


@dataclass
class Progress:
    """The last ``-progress`` block ffmpeg wrote."""

    out_seconds: float = 0.0
    frame: int = 0
    total_size: int = 0
    speed: str = ""
    ended: bool = False
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    returncode: int
    log: str  #: the tail of ffmpeg's log (stderr)
    progress: Progress
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class _Limits:
    """The caps applied to the child between ``fork`` and ``exec`` (no Python objects
    are created there beyond these calls)."""

    def __init__(self, memory_bytes: int) -> None:
        self.memory_bytes = memory_bytes
        self.parent = os.getpid()
        libc_name = ctypes.util.find_library("c")
        self.prctl = ctypes.CDLL(libc_name, use_errno=True).prctl if libc_name else None

    def __call__(self) -> None:
        if self.prctl is not None:
            self.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != self.parent:  # the parent died before prctl took effect
                os._exit(137)
        if self.memory_bytes:
            resource.setrlimit(resource.RLIMIT_DATA, (self.memory_bytes, self.memory_bytes))
        os.setpgrp()  # its own group: a terminal's Ctrl-C goes to us, we stop it


def run(args: Sequence[str], *, deadline: float | None = None, memory_bytes: int = 0,
        duration: float | None = None, progress: Callable[[float], None] | None = None,
        loglevel: str = "warning", check: bool = True, what: str = "ffmpeg",
        keep_log: int = LOG_TAIL) -> Result:
    """Run ``ffmpeg <args>`` to the end, or kill it.

    ``deadline``: a ``time.monotonic()`` value (None: no limit).  ``duration``:
    the media seconds this run processes, so that ``progress(fraction)`` gets
    ``out_time / duration``.  ``check``: raise the named error for a failed
    run (else return the failed :class:`Result`).  ``what`` names the step in
    error messages.  A run whose log says it refused a protocol or a format
    raises :class:`MediaRefusedError` even when ffmpeg carried on.  ``keep_log``:
    bytes of the log kept (its end); the probe keeps all of a long input report.
    """
    argv = [executable(), "-hide_banner", "-nostdin", "-nostats", "-loglevel", loglevel,
            "-progress", "pipe:1", "-stats_period", str(PROGRESS_PERIOD), *args]
    started = time.monotonic()
    state = Progress()
    log = bytearray()
    pending = b""
    refused = False
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=_environment(), close_fds=True,
                            preexec_fn=_Limits(memory_bytes))  # noqa: PLW1509 - see _Limits
    timed_out = False
    reported = started  #: when ``progress`` was last called

    def report() -> None:
        nonlocal reported
        if progress and duration:
            progress(min(1.0, max(0.0, state.out_seconds / duration)))
            reported = time.monotonic()

    report()
    try:
        assert proc.stdout is not None and proc.stderr is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ, "out")
            sel.register(proc.stderr, selectors.EVENT_READ, "err")
            open_streams = 2
            while open_streams:
                wait = 0.25
                if deadline is not None:
                    wait = min(wait, max(0.0, deadline - time.monotonic()))
                    if time.monotonic() >= deadline:
                        timed_out = True
                        break
                for key, _ in sel.select(wait):
                    chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                    if not chunk:
                        sel.unregister(key.fileobj)
                        open_streams -= 1
                    elif key.data == "err":
                        # looked for in every chunk (with the line before it), not only in
                        # the tail kept for messages
                        seen = bytes(log[-256:]) + chunk
                        if _REFUSED.search(seen.decode("utf-8", "replace")):
                            refused = True
                        log += chunk
                        if len(log) > 4 * keep_log:
                            del log[:-keep_log]
                    else:
                        pending += chunk
                        *lines, pending = pending.split(b"\n")
                        if _progress_lines(lines, state):
                            report()
                if time.monotonic() - reported >= HEARTBEAT:
                    # no line yet (ffmpeg opening, seeking into a long input, loading the
                    # VMAF model) or late ones on a loaded machine: the last fraction again
                    report()
        if timed_out:
            proc.kill()
        peak = _reap(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.decode("utf-8", "replace")[-keep_log:]
    result = Result(proc.returncode, text, state, time.monotonic() - started)
    if memory_bytes and proc.returncode < 0 and peak >= memory_bytes // 2:
        # a library that meets a failed allocation under the cap often crashes instead of
        # reporting it: a death by signal near the cap is the cap
        raise MemoryLimitError(f"{what} needed more memory than the limit of "
                               f"{memory_bytes >> 20} MiB")
    if refused:
        raise MediaRefusedError(
            "the file asks to open another file, format or URL (a playlist, concat list or "
            "manifest inside it); such files are refused")
    if timed_out:
        raise TimeLimitError(f"{what} did not finish within the time limit")
    if check and not result.ok:
        raise failure(result, what)
    return result


def _reap(proc: subprocess.Popen[bytes]) -> int:
    """Wait for ``proc`` and return its peak resident memory in bytes (``wait4``'s rusage)."""
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:  # already reaped
        proc.wait()
        return 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return int(usage.ru_maxrss) * 1024


def _progress_lines(lines: list[bytes], state: Progress) -> bool:
    """Fold ``key=value`` lines into ``state``; True when a block ended."""
    ended = False
    for raw in lines:
        key, _, value = raw.decode("ascii", "replace").strip().partition("=")
        if not key:
            continue
        state.values[key] = value
        if key == "out_time_us":
            try:
                state.out_seconds = max(state.out_seconds, int(value) / 1e6)
            except ValueError:
                pass
        elif key == "frame":
            state.frame = int(value) if value.isdigit() else state.frame
        elif key == "total_size":
            state.total_size = int(value) if value.isdigit() else state.total_size
        elif key == "speed":
            state.speed = value
        elif key == "progress":
            ended = True
            state.ended = value == "end"
    return ended


def failure(result: Result, what: str) -> EngineError:
    """The named error for a failed run, with ffmpeg's own last words (paths removed)."""
    text = result.log
    if _NO_MEMORY.search(text) or result.returncode in (-signal.SIGKILL, -signal.SIGSEGV) \
            and "alloc" in text:
        return MemoryLimitError(f"{what} needed more memory than the limit allows")
    if result.returncode < 0:
        return DamagedMediaError(f"{what} crashed (signal {-result.returncode}) on this file")
    if "moov atom not found" in text:
        return DamagedMediaError("the MP4/MOV file is truncated: its index (moov box) is missing")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = _PATH.sub("<file>", lines[-1]) if lines else f"exit status {result.returncode}"
    return DamagedMediaError(f"{what} failed: {last[:300]}")
