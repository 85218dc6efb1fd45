"""Engine children started before they are needed: a warm pool, reused only within one client.

Why: a job's engine runs in a child of the forkserver (:mod:`squeezer.jobs.isolation`),
and starting one costs far more than a small file's compression — the fork of a
large process, the copy-on-write faults that follow, the child's exit.  Measured on
a tiny PDF, a fresh child per job cost ~28 ms of CPU against the engine's ~5 ms
(``bench/results/api.md``).  A :class:`WarmPool` starts children ahead of time,
each parked on a pipe; a job sends its arguments to a ready one and a replacement
is started in the background while the job runs.

A child that answered a job successfully may be parked again, with ``child_jobs``
above 1 (``SQUEEZER_CHILD_JOBS``), but only for the next job of the same *owner*
(the worker passes the job's API key): what one file does to a process — a leak,
a corrupted heap, a hostile file that took control of native code — can reach only
later files of the client who sent it, never another client's.  A child that
failed, crashed, was stopped, or grew past ``reuse_below`` is never reused, a kept
child is discarded after :data:`KEEP_SECONDS` without a job, and at most ``size``
children are kept (the least recently used goes first).  With ``child_jobs=1``
every job gets a fresh child.

A parked child that loses its parent (the worker was killed) reads end-of-file
on its pipe and exits; so does one whose pool is closed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from squeezer.jobs import scratch as scratch_dirs

log = logging.getLogger(__name__)
#: a kept child (one that has served an owner) is discarded after this long without a job
KEEP_SECONDS = 60.0


@dataclass
class Started:
    """A started child: its process, the pipes to it, and its scratch directory."""

    process: Any  # a multiprocessing Process of some context
    results: Connection  # the child's messages (progress, then its answer)
    jobs: Connection | None  # a parked child's arguments pipe; None once it has all its jobs
    scratch: str
    #: jobs this child may still be given (a parked child takes ``child_jobs`` in turn)
    left: int = 1
    #: whose jobs this child has run (it runs no one else's); None while it is fresh
    owner: str | None = None
    #: when it was last parked (``time.monotonic()``), for :data:`KEEP_SECONDS`
    parked_at: float = 0.0

    def send_job(self, args: tuple[Any, ...]) -> None:
        """Hand a parked child the arguments of its next job."""
        assert self.jobs is not None and self.left > 0, "this child has had its jobs"
        self.left -= 1
        try:
            self.jobs.send(args)
        finally:
            if self.left <= 0:
                self.jobs.close()
                self.jobs = None

    def discard(self, *, wait: float = 0.0) -> None:
        """Make sure the child is gone and its scratch directory removed.

        ``wait`` gives a child that has answered the time to exit on its own first.
        """
        if self.jobs is not None:
            with contextlib.suppress(OSError):
                self.jobs.close()
            self.jobs = None
        if wait and self.process.is_alive():
            self.process.join(wait)
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        with contextlib.suppress(OSError):
            self.results.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


def _empty(directory: str) -> None:
    """Remove what a finished job left in a reused child's scratch directory."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)


def in_scratch(scratch: str, target: Callable[..., None], *args: Any) -> None:
    """Runs in the child: every ``tempfile`` user (the engines' work directories) writes
    under ``scratch``, which the parent removes however the child ends."""
    import tempfile

    tempfile.tempdir = scratch
    target(*args)


def _parked(target: Callable[..., None], prepare: Callable[[], None] | None, count: int,
            send: Connection, jobs: Connection) -> None:
    """Runs in a pooled child: ``prepare()``, then up to ``count`` times wait for a job's
    arguments and run ``target`` (which answers each on ``send``)."""
    if prepare is not None:
        with contextlib.suppress(Exception):  # a cold child still works
            prepare()
    try:
        for _ in range(count):
            try:
                args = jobs.recv()
            except (EOFError, OSError):  # the pool was closed, or the worker died
                return
            target(send, *args)
    finally:
        jobs.close()
        send.close()


def start(ctx: Any, target: Callable[..., None], args: tuple[Any, ...] | None,
          prepare: Callable[[], None] | None = None, jobs: int = 1) -> Started:
    """Start a child of ``ctx`` running ``target(send, *args)``; with ``args=None`` the child
    runs ``prepare()`` and is parked until :meth:`Started.send_job` hands it the arguments of
    each of its ``jobs`` jobs."""
    scratch = scratch_dirs.child_directory()
    receive, send = ctx.Pipe(duplex=False)
    jobs_r = jobs_w = None
    if args is None:
        jobs_r, jobs_w = ctx.Pipe(duplex=False)
        process = ctx.Process(target=in_scratch, args=(scratch, _parked, target, prepare, jobs, send, jobs_r),
                              daemon=True)
    else:
        process = ctx.Process(target=in_scratch, args=(scratch, target, send, *args), daemon=True)
    try:
        process.start()
    except BaseException:
        for conn in (receive, send, jobs_r, jobs_w):
            if conn is not None:
                conn.close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    send.close()
    if jobs_r is not None:
        jobs_r.close()
    return Started(process, receive, jobs_w, scratch, left=jobs if args is None else 0)


class WarmPool:
    """``size`` parked children of ``ctx`` for ``target``, refilled in the background.

    ``prepare`` runs in each child before it parks: work every job would do first
    (touching the engine's memory, which a fresh fork must copy on write) is then
    done while the child waits, not while a client does.

    :meth:`take` returns a child kept for the same owner, else a fresh ready one (or
    starts one, if none is ready: the pool never makes a job wait for a refill).
    Finished children are reaped by the same background thread, so a job's answer
    never waits for its child's exit.
    """

    def __init__(self, ctx_factory: Callable[[], Any], target: Callable[..., None],
                 size: int, prepare: Callable[[], None] | None = None, child_jobs: int = 1,
                 reuse_below: int = 0) -> None:
        self._ctx_factory = ctx_factory
        self.target = target
        self.prepare = prepare
        self.child_jobs = max(1, child_jobs)
        #: a child that answered is given another job only while its resident memory is
        #: below this (0: no bound): what one job left allocated must not starve the next
        self.reuse_below = reuse_below
        self.size = max(1, size)
        self._ready: deque[Started] = deque()  # fresh: no owner yet
        self._kept: deque[Started] = deque()  # served an owner, parked for its next job
        self._reap: deque[Started] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="squeezer-warm-pool", daemon=True)
        self._thread.start()

    def take(self, owner: str | None = None) -> Started:
        with self._wake:
            for child in list(self._kept):
                if child.owner == owner:
                    self._kept.remove(child)
                    if child.process.is_alive():
                        return child
                    self._reap.append(child)
            while self._ready:
                child = self._ready.popleft()
                if child.process.is_alive():
                    self._wake.notify()
                    child.owner = owner
                    return child
                self._reap.append(child)  # died while parked (killed by someone): replace it
            self._wake.notify()
        child = start(self._ctx_factory(), self.target, None, self.prepare, self.child_jobs)
        child.owner = owner
        return child

    def release(self, child: Started, resident: int = 0, *, reusable: bool = True) -> None:
        """A child that has answered (``resident`` bytes now): kept for its owner's next job
        if it answered well and has one left, else left to exit and be cleaned up in the
        background."""
        with self._wake:
            if self._closed:
                child.discard()
                return
            if (reusable and child.left > 0 and child.process.is_alive()
                    and (not self.reuse_below or resident < self.reuse_below)):
                _empty(child.scratch)
                child.parked_at = time.monotonic()
                self._kept.appendleft(child)
                while len(self._kept) > self.size:  # the least recently used goes
                    self._reap.append(self._kept.pop())
            else:
                self._reap.append(child)
            self._wake.notify()

    def close(self) -> None:
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(30)
        for child in (*self._ready, *self._kept, *self._reap):
            child.discard()
        self._ready.clear()
        self._kept.clear()
        self._reap.clear()

    def _expire_kept(self) -> float | None:
        """Move kept children idle for KEEP_SECONDS to the reaper (holding the lock); the
        seconds until the next one would expire, or None when none is kept."""
        now = time.monotonic()
        while self._kept and now - self._kept[-1].parked_at >= KEEP_SECONDS:
            self._reap.append(self._kept.pop())
        return KEEP_SECONDS - (now - self._kept[-1].parked_at) if self._kept else None

    def _run(self) -> None:
        while True:
            with self._wake:
                while True:
                    if self._closed:
                        return
                    next_expiry = self._expire_kept()
                    if self._reap or len(self._ready) < self.size:
                        break
                    self._wake.wait(next_expiry)
                finished = list(self._reap)
                self._reap.clear()
                wanted = self.size - len(self._ready)
            for child in finished:
                child.discard(wait=1.0)
            for _ in range(max(0, wanted)):
                try:
                    child = start(self._ctx_factory(), self.target, None, self.prepare, self.child_jobs)
                except Exception:  # a job then starts its own child
                    log.warning("could not start a warm engine child", exc_info=True)
                    with self._wake:
                        self._wake.wait(1.0)
                    break
                with self._wake:
                    if self._closed:
                        child.discard()
                        return
                    self._ready.append(child)
