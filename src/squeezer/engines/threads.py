"""Running one step's independent pieces of work on a few threads, results in input order.

Why threads and not processes: the heavy parts of recompressing an image
(Pillow's codecs and resampling, zlib, mozjpeg and jpegli, numpy, the compiled
JBIG2 coder) run native code that releases the GIL, while the objects they
read (pikepdf streams) cannot cross a process boundary.  qpdf itself is not
thread-safe, but pikepdf holds the GIL for the whole of each call into it, so
calls from several threads never overlap.  PDFium does release the GIL, so
every call into it holds :data:`squeezer.engines.pdf.pdfium_lock.LOCK`.

Results come back in the order of the inputs, whatever order the threads
finish in, so the output of a run does not depend on timing.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: Threads used when the limit says "one per core": more would only multiply the
#: memory of the images being worked on, for little gain.
AUTO_MAX = 4
#: Items submitted ahead of the one the caller waits for, per thread.  Only ``threads``
#: run at once (each holding its decoded pixels); the rest wait in the queue or are
#: finished results (encoded bytes).  A deep window keeps the other threads busy
#: while one works on a large image: with 2 per thread a second thread idled after
#: three small images behind a large one.
WINDOW_PER_THREAD = 8


def thread_count(limit: int) -> int:
    """The number of threads for a limit of ``limit`` (0: one per core, at most :data:`AUTO_MAX`)."""
    if limit > 0:
        return limit
    return max(1, min(AUTO_MAX, os.cpu_count() or 1))


def per_file(files_in_flight: int) -> int:
    """Threads each file gets when ``files_in_flight`` files share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // max(1, files_in_flight))


def ordered_map(fn: Callable[[T], R], items: Iterable[T],
                threads: int) -> Generator[R, None, None]:
    """``map(fn, items)`` on ``threads`` threads, yielding results in the order of ``items``.

    At most ``threads`` items are in progress and :data:`WINDOW_PER_THREAD` ``* threads``
    submitted or finished but not yet consumed (bounded memory).  An exception from
    ``fn`` is raised when its result's turn comes; the work not yet started is
    dropped, and the call returns only after the running work has finished, so no
    thread still touches shared objects once the caller sees the exception.
    """
    if threads <= 1:
        yield from map(fn, items)
        return
    window = WINDOW_PER_THREAD * threads
    pending: deque[Future[R]] = deque()
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="squeezer") as pool:
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
