"""Sharing one step's independent pieces of work with forked copies of this process.

Why processes and not threads (:mod:`squeezer.engines.threads`): PDFium is not
thread-safe, so checking the output's pages (:mod:`squeezer.engines.pdf.verify`)
can use a second core only in a process of its own, and a forked child starts
with everything the check needs already in memory (the reference texts and
renders).

How the work is shared: every item is a ticket in a pipe.  This process and
each child take the next ticket when they are free, so one slow item does not
hold up the rest.  A child sends back each result (pickled) on its own pipe; a
thread here reads those into memory, so a child never waits for this process
to finish the item it is working on.  Results are yielded in the order of the
items, whatever order they finish in, and an exception is raised when its turn
comes, as in :func:`threads.ordered_map`.

Why it is safe:

- The child never returns into the caller's code: it runs the items and ends
  with :func:`os._exit`, whatever happens, so no ``finally`` or ``atexit`` of
  the caller runs twice.
- Other threads of this process do not exist in the child.  ``fork_guard``
  (e.g. PDFium's lock) is held across the fork, so no lock the child needs is
  held by a thread that is not there.
- Open files share their offset across a fork, so ``fn`` must open what it
  reads in the process it runs in (verify opens its own PDFium document).
- The child is killed when the thread that forked it ends
  (``PR_SET_PDEATHSIG``), and :func:`shared_map` kills and reaps it when it
  returns or raises: no child outlives the call.
- An item a child took but never answered (it crashed, or was killed) is done
  here once the child is gone: every item gets its result.

Only on Linux: macOS' system libraries are not fork-safe, and Windows has no
fork.  Elsewhere, and for ``processes <= 1``, :func:`shared_map` is a plain
map on the caller's thread.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pickle
import signal
import struct
import sys
import threading
import warnings
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: A ticket: the index of the first item of a batch.
_TICKET = struct.Struct("<I")
#: A child's message: item index, ok (1) or exception (0), payload length.
_HEADER = struct.Struct("<IBQ")
#: Tickets fit in a pipe's buffer (64 KiB on Linux) with room to spare, so writing
#: them all before the fork never blocks.
_MAX_TICKETS = 8192
_PR_SET_PDEATHSIG = 1


def available() -> bool:
    """Whether forking helpers is possible and safe on this platform."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


def shared_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    processes: int,
    *,
    fork_guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> Generator[R, None, None]:
    """``map(fn, items)`` shared by this process and ``processes - 1`` forked children.

    ``fn``'s results and exceptions must pickle.  Use it as
    ``with closing(shared_map(...))``: closing it early kills the children.
    """
    if processes <= 1 or len(items) < 2 or not available():
        yield from map(fn, items)
        return
    batch = -(-len(items) // _MAX_TICKETS)
    tickets_r, tickets_w = os.pipe()
    try:
        for first in range(0, len(items), batch):
            os.write(tickets_w, _TICKET.pack(first))
    finally:
        os.close(tickets_w)
    helpers: list[_Helper] = []
    # freed heap kept for reuse would be mapped, and counted, in every child too
    from squeezer.engines.malloc import release_freed_memory

    release_freed_memory()
    try:
        for _ in range(min(processes, len(items)) - 1):
            helpers.append(_Helper.start(fn, items, batch, tickets_r, fork_guard))
        yield from _collect(fn, items, batch, tickets_r, helpers)
    finally:
        for helper in helpers:
            helper.stop()
        os.close(tickets_r)


def _take(tickets_r: int) -> int | None:
    """The next ticket, or None when all are taken (reads of one ticket are atomic)."""
    data = os.read(tickets_r, _TICKET.size)
    return _TICKET.unpack(data)[0] if data else None


def _collect(fn: Callable[[T], R], items: Sequence[T], batch: int, tickets_r: int,
             helpers: list[_Helper]) -> Iterator[R]:
    """Work through tickets here, yielding every result in item order as soon as it is there."""
    own: dict[int, tuple[bool, Any]] = {}
    turn = 0

    def ready() -> tuple[bool, Any] | None:
        if turn in own:
            return own.pop(turn)
        for helper in helpers:
            got = helper.take(turn)
            if got is not None:
                return got
        return None

    def outcome(got: tuple[bool, Any]) -> R:
        ok, value = got
        if not ok:
            raise value
        return value

    while (first := _take(tickets_r)) is not None:
        for index in range(first, min(first + batch, len(items))):
            try:
                own[index] = (True, fn(items[index]))
            except Exception as exc:  # noqa: BLE001 - raised at its turn
                own[index] = (False, exc)
        while turn < len(items) and (got := ready()) is not None:
            turn += 1
            yield outcome(got)
    while turn < len(items):
        got = ready()
        if got is None:
            # all tickets are taken, so each child ends once its last item is sent
            if any(helper.wait_for(turn) for helper in helpers):
                continue  # it arrived
            # the child that took it ended without answering: it is done here
            try:
                got = (True, fn(items[turn]))
            except Exception as exc:  # noqa: BLE001
                got = (False, exc)
        turn += 1
        yield outcome(got)


class _Helper:
    """One forked child, and the thread here that reads its results."""

    def __init__(self, pid: int, results_r: int) -> None:
        self.pid = pid
        self.results_r = results_r
        self.results: dict[int, tuple[bool, Any]] = {}
        self.ended = False
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, name="squeezer-fork-reader",
                                       daemon=True)
        self.reader.start()

    @classmethod
    def start(cls, fn: Callable, items: Sequence, batch: int, tickets_r: int,
              fork_guard: Callable) -> _Helper:
        results_r, results_w = os.pipe()
        with fork_guard(), warnings.catch_warnings():
            # Python 3.12+ warns about forking a multi-threaded process; the rules in this
            # module's docstring are why this fork is safe (no lock held elsewhere, no return)
            warnings.filterwarnings("ignore", r".*multi-threaded, use of fork\(\)",
                                    DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(results_r)
                _child_setup()
                _serve(fn, items, batch, tickets_r, results_w)
                code = 0
            except BaseException:  # noqa: BLE001, S110 - the parent does what is left
                pass
            finally:
                os._exit(code)
        os.close(results_w)
        return cls(pid, results_r)

    def _read(self) -> None:
        try:
            while (header := _read_exactly(self.results_r, _HEADER.size)) is not None:
                index, ok, length = _HEADER.unpack(header)
                payload = _read_exactly(self.results_r, length)
                if payload is None:
                    break
                try:
                    value = pickle.loads(payload)
                except Exception as exc:  # noqa: BLE001 - e.g. an exception that does not unpickle
                    ok, value = 0, RuntimeError(f"a helper's result did not unpickle: {exc}")
                with self.changed:
                    self.results[index] = (bool(ok), value)
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()

    def take(self, index: int) -> tuple[bool, Any] | None:
        with self.changed:
            return self.results.pop(index, None)

    def wait_for(self, index: int) -> bool:
        """Wait until ``index`` arrives (True) or the child has ended (False)."""
        with self.changed:
            while index not in self.results and not self.ended:
                self.changed.wait()
            return index in self.results

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.reader.join()
        os.close(self.results_r)


def _child_setup() -> None:
    """Default signals, and death with the thread that forked us."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _serve(fn: Callable, items: Sequence, batch: int, tickets_r: int, results_w: int) -> None:
    """The child's loop: take tickets, send results, stop after the first exception."""
    while (first := _take(tickets_r)) is not None:
        for index in range(first, min(first + batch, len(items))):
            try:
                ok, payload = 1, pickle.dumps(fn(items[index]), pickle.HIGHEST_PROTOCOL)
            except Exception as exc:  # noqa: BLE001 - the parent raises it at its turn
                ok, payload = 0, _pickled_exception(exc)
            _write_all(results_w, _HEADER.pack(index, ok, len(payload)) + payload)
            if not ok:
                return


def _pickled_exception(exc: BaseException) -> bytes:
    try:
        payload = pickle.dumps(exc, pickle.HIGHEST_PROTOCOL)
        pickle.loads(payload)
        return payload
    except Exception:  # noqa: BLE001 - not every exception pickles
        return pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))


def _read_exactly(fd: int, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
