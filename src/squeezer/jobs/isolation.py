"""Running one engine call in a disposable child process with hard limits.

The engine bounds what it decodes (:mod:`squeezer.engines.budget`), but
native code cannot be interrupted from Python and can crash.  A worker that
runs untrusted files therefore hands each one to a child process with an
resident-memory watch (with an address-space cap, ``RLIMIT_AS``, as a
backstop) and a wall-clock deadline, and turns every way the child can end
into a named error: over time → ``timeout``, over memory → ``memory_limit``,
killed by a signal → ``processing_crashed``.  The
worker itself lives on.  Children come from a ``forkserver`` that has the
engine imported already, so the per-file cost is a fork, not an interpreter
start.

The child reports progress over its pipe, and the parent polls a
``should_stop`` callable while it waits: a cancelled job (or a worker shutting
down) kills the child at once and raises :class:`JobCancelled`, which is *not*
an engine error, so nobody records it as the file's failure.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from squeezer import forkserver
from squeezer.engines import runtime
from squeezer.engines.errors import (
    EngineError,
    MemoryLimitError,
    ProcessingCrashedError,
    TimeLimitError,
)
from squeezer.engines.families import FAMILIES, report_from_json
from squeezer.engines.limits import Limits
from squeezer.engines.report import RunReport
from squeezer.errors import InternalError, error_from_code
from squeezer.jobs import prefork
from squeezer.jobs.errors import JobCancelled

#: Seconds a child gets beyond its own time limit to notice it and report.
GRACE_SECONDS = 5.0
#: How often the parent checks the child's resident memory.
WATCH_INTERVAL = 0.05
#: The address-space cap is this multiple of the memory limit: a backstop for
#: allocations too fast for the watcher (virtual size runs well above resident size).
ADDRESS_SPACE_FACTOR = 4
#: The child sends a progress message at most this often (the parent throttles DB writes itself).
PROGRESS_INTERVAL = 0.1

#: What a client is told about a bug in the engine (the traceback is in the server log).
INTERNAL_MESSAGE = ("the engine failed on this file because of a bug in Squeezer; the server "
                    "log has the details")
#: ``progress(fraction, stage)``, called in the parent's thread as messages arrive.
ProgressCallback = Callable[[float, str], None]


def _resident_bytes(pid: int | None) -> int:
    """The child's resident set size (Linux ``/proc``), plus the pages only its own children
    hold (the engine's forked verification helpers, :mod:`squeezer.engines.forks`: what they
    share with the child is counted once); 0 when unknown."""
    total = _status_rss(pid)
    if total:
        total += sum(_private_bytes(helper) for helper in _children(pid))
    return total


def _status_rss(pid: int | None) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _children(pid: int | None) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as children:
                found += [int(child) for child in children.read().split()]
    except (OSError, ValueError):
        pass
    return found


def _private_bytes(pid: int) -> int:
    """Resident pages no other process maps (``smaps_rollup``'s Private_Clean + Private_Dirty)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            return sum(int(line.split()[1]) * 1024 for line in rollup
                       if line.startswith(("Private_Clean:", "Private_Dirty:")))
    except (OSError, ValueError, IndexError):
        return 0


@dataclass(frozen=True)
class ChildLimits:
    """Hard caps enforced by the operating system around one engine call."""

    seconds: float = 600.0
    memory_bytes: int = 4 << 30  # address space; 0 disables
    grace_seconds: float = GRACE_SECONDS


@dataclass(frozen=True)
class ChildRun:
    """How a supervised child ended: its last message, or why it was stopped."""

    outcome: tuple[Any, ...] | None  # the child's final message; None if it sent none
    ended: str  # "" (it answered), "stopped", "timeout" or "memory"
    exitcode: int | None

    @property
    def how(self) -> str:
        code = self.exitcode or 0
        return f"killed by signal {-code}" if code < 0 else f"exited with status {code}"


#: A start method's context (each has its own ``Process``; ``BaseContext`` declares none).
Context = (multiprocessing.context.ForkContext | multiprocessing.context.ForkServerContext
           | multiprocessing.context.SpawnContext)


def supervise(ctx: Context, target: Callable[..., None],
              args: tuple[Any, ...], *, seconds: float | None, memory_bytes: int,
              on_message: Callable[[tuple[Any, ...]], None] | None = None,
              should_stop: Callable[[], bool] | None = None,
              max_extension: float = 0.0,
              pool: prefork.WarmPool | None = None, owner: str | None = None) -> ChildRun:
    """Run ``target(send, *args)`` in a child of ``ctx`` and watch it until it answers.

    The child sends ``("progress", ...)`` messages (handed to ``on_message``)
    and one final message.  It is killed when ``seconds`` pass, when its
    resident memory exceeds ``memory_bytes`` (0: no watch), or when
    ``should_stop()`` turns true; the answer says which.  A ``("deadline", seconds)``
    message moves the deadline to that many seconds from now, at most ``max_extension``
    (an engine whose limits scale with its input's duration says so once it has read it).
    Shared by the
    engine's jobs and the web page's previews: every untrusted file that meets
    native code goes through here.

    The child's temporary files go to a directory of its own, which is removed
    here once the child has ended: a killed child cannot clean up after itself.
    With ``pool`` (a :class:`~squeezer.jobs.prefork.WarmPool` for ``target``) the
    child is a warm one, started ahead of time (or one kept from an earlier job of the
    same ``owner``), and a child that answered is kept for ``owner`` (when it answered
    ``"ok"``) or reaped in the background instead of being waited for here.
    """
    if pool is not None and pool.target is target:
        child = pool.take(owner)
        try:
            child.send_job(args)
        except BaseException:
            child.discard()
            raise
    else:
        child = prefork.start(ctx, target, args)
    process, receive = child.process, child.results
    outcome, ended = None, ""
    deadline = time.monotonic() + seconds if seconds is not None else None
    try:
        while True:
            if deadline is not None and time.monotonic() >= deadline:
                ended = "timeout"
                break
            if receive.poll(WATCH_INTERVAL):
                message = receive.recv()  # EOFError when the child died without answering
                if message[0] == "deadline":
                    # the engine's own limits allow a long input more time (a video's
                    # Limits.max_seconds_per_media_second), never more than max_extension
                    if deadline is not None:
                        more = min(float(message[1]), max_extension)
                        deadline = max(deadline, time.monotonic() + more)
                    continue
                if message[0] != "progress":
                    outcome = message
                    break
                if on_message is not None:
                    on_message(message)
            if should_stop is not None and should_stop():
                ended = "stopped"
                break
            if memory_bytes and _resident_bytes(process.pid) > memory_bytes:
                ended = "memory"
                break
    except EOFError:
        pass
    except BaseException:
        child.discard()
        raise
    if outcome is not None and not ended and pool is not None:
        # it has answered: parked for another job, or it exits (and is reaped, its directory
        # removed) in the background
        pool.release(child, _resident_bytes(process.pid) if child.left else 0,
                     reusable=outcome[0] == "ok")
        return ChildRun(outcome, ended, None)
    child.discard()
    return ChildRun(outcome, ended, process.exitcode)


#: Imported once by the forkserver, so that no child pays for it: the dispatcher and every
#: family's engine (importing the image engine alone costs ~50 ms), then a warm-up run.
PRELOAD = ["squeezer.engines.dispatch", *(family.engine for family in FAMILIES),
           "squeezer.jobs.warmup",
           # the children's own code (this module, jobs.prefork) comes from the forkserver's
           # memory, as the worker's does, not from files that an upgrade may have replaced
           "squeezer.jobs.isolation"]


def _context() -> multiprocessing.context.ForkServerContext:
    ctx: multiprocessing.context.ForkServerContext = forkserver.context()
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


#: The worker's warm engine children (:func:`keep_warm`); None: each job starts its own.
_pool: prefork.WarmPool | None = None


#: a child is kept for its owner's next job only while it holds less than this (and less
#: than a quarter of the job memory cap): reuse pays for small jobs, where a fork costs more
#: than the compression; after a big one, a fresh child gives its memory back
REUSE_BELOW_BYTES = 512 << 20


def keep_warm(children: int, child_jobs: int = 1, memory_bytes: int = 0) -> None:
    """Keep ``children`` engine children started ahead of need (a worker: one per job slot),
    so that a job's child is already forked and initialised when it arrives; 0 stops.

    ``child_jobs``: jobs one child runs, all for one owner (an API key), before it is
    replaced (1: each job in a fresh child; :mod:`squeezer.jobs.prefork`).
    """
    global _pool
    if _pool is not None:
        _pool.close()
        _pool = None
    if children > 0:
        _pool = prefork.WarmPool(_context, _child, children, prepare=_rewarm,
                                 child_jobs=child_jobs,
                                 reuse_below=min(memory_bytes // 4 or REUSE_BELOW_BYTES,
                                                 REUSE_BELOW_BYTES))


def _rewarm() -> None:
    """Runs in a parked child (imported there already by the forkserver's preload)."""
    from squeezer.jobs import warmup

    warmup.rewarm()


def _child(conn: Connection, src: str, dst: str, options: dict[str, Any], limits: dict[str, Any],
           memory_bytes: int, engine_runtime: dict[str, Any], fault: str | None = None) -> None:
    """Runs in the child: cap memory, compress, send back a report or a named error.

    ``fault`` lets tests stand in for a native crash (``"abort"``) or a hang (``"hang"``).
    """
    try:
        if fault == "abort":
            os.abort()
        if fault == "hang":  # as an engine stopped mid-work: its work directory exists
            work = tempfile.mkdtemp(prefix="squeezer-")
            conn.send(("progress", 0.0, work))
            time.sleep(3600)
        if memory_bytes:
            cap = memory_bytes * ADDRESS_SPACE_FACTOR
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        from squeezer.engines import runtime
        from squeezer.engines.dispatch import compress_any
        from squeezer.engines.malloc import keep_freed_memory

        runtime.configure(**engine_runtime)  # the worker's configuration (engines.runtime)
        keep_freed_memory()  # this child exists to compress (engines.malloc)
        last_time, last_stage = 0.0, ""

        def progress(fraction: float, stage: str) -> None:
            nonlocal last_time, last_stage
            now = time.monotonic()
            if stage != last_stage or now - last_time >= PROGRESS_INTERVAL:
                last_time, last_stage = now, stage
                conn.send(("progress", float(fraction), str(stage)))

        def extend_deadline(seconds: float) -> None:
            conn.send(("deadline", float(seconds) + GRACE_SECONDS))

        progress.extend_deadline = extend_deadline  # type: ignore[attr-defined]

        report = compress_any(src, dst, options, limits=Limits(**limits),
                          progress=progress)
        conn.send(("ok", report.model_dump(mode="json")))
    except EngineError as exc:
        conn.send(("error", exc.code, exc.message))
    except MemoryError:
        conn.send(("error", MemoryLimitError.code, "the file needs more memory than the cap allows"))
    except BaseException as exc:  # noqa: BLE001 - everything crosses the pipe as a named error
        text = f"{type(exc).__name__}: {exc}"
        if "bad_alloc" in text or "Cannot allocate memory" in text:
            conn.send(("error", MemoryLimitError.code, "the file needs more memory than the cap allows"))
        else:
            # a bug: the client gets a plain message, the traceback goes to the server log
            # (the parent logs it under the job's id; it never reaches job JSON or webhooks)
            conn.send(("error", InternalError.code, INTERNAL_MESSAGE, traceback.format_exc()))
    # (the pipe stays open: a reused child answers its next job on it; it closes on exit)


def compress_isolated(src: str | Path, dst: str | Path,
                      options: BaseModel | Mapping[str, Any] | None = None,
                      limits: Limits | None = None,
                      child: ChildLimits | None = None, *,
                      progress: ProgressCallback | None = None,
                      should_stop: Callable[[], bool] | None = None,
                      owner: str | None = None,
                      _fault: str | None = None) -> RunReport:
    """:func:`squeezer.engines.pdf.compress` in a child process under ``child``'s caps.

    ``progress(fraction, stage)`` receives the engine's progress (in this
    thread).  ``should_stop()`` is polled every :data:`WATCH_INTERVAL`; once it
    returns True the child is killed and :class:`JobCancelled` raised.  ``owner`` (the
    job's API key): a warm child that ran this owner's earlier jobs may run this one; no
    other owner's job ever runs in it.
    """
    if isinstance(options, BaseModel):  # what differs from the defaults, nested
        options = options.model_dump(mode="json", exclude_defaults=True)
    options = dict(options or {})
    limits = limits or Limits()
    child = child or ChildLimits(seconds=limits.max_seconds or 600.0)
    deadline = child.seconds + child.grace_seconds if child.seconds else None
    run = supervise(_context(), _child,
                    (str(src), str(dst), options, limits.model_dump(mode="json"),
                     child.memory_bytes, runtime.current.model_dump(), _fault),
                    seconds=deadline, memory_bytes=child.memory_bytes,
                    on_message=(lambda m: progress(m[1], m[2])) if progress else None,
                    should_stop=should_stop,
                    max_extension=limits.media_deadline_seconds(limits.max_media_seconds)
                    + child.grace_seconds, pool=_pool, owner=owner)
    outcome, ended = run.outcome, run.ended
    if ended == "stopped":
        raise JobCancelled("stopped before the engine finished")
    if ended == "timeout":
        raise TimeLimitError(f"processing took longer than the limit of {child.seconds:g} s")
    if ended == "memory":
        raise MemoryLimitError(
            f"processing needed more than the memory limit of {child.memory_bytes >> 20} MiB"
        )
    if outcome is None:
        raise ProcessingCrashedError(f"the engine process {run.how}")
    if outcome[0] == "ok":
        return report_from_json(outcome[1])
    error = error_from_code(outcome[1], outcome[2])
    if len(outcome) > 3:
        error.detail = outcome[3]  # for the server log only
    raise error
