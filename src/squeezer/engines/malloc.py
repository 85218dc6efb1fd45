"""glibc's allocator set up for a process that compresses: freed memory is kept for the next image.

Why: decoding, resampling and re-encoding allocate and free buffers of
megabytes to hundreds of megabytes for every image.  By default glibc gives
memory at the top of its heap back to the kernel as soon as 128 KiB of it are
free, and serves blocks above a threshold (which only grows, up to 32 MiB, as
it sees them freed) with mappings of their own, unmapped again on free.  So
each image's buffers are fresh pages, each zero-filled by the kernel on first
touch: 100,000 to 270,000 page faults for one of the corpus' large files, a
tenth to a quarter of its CPU time on the benchmark's VM.  Keeping the heap
(``M_TRIM_THRESHOLD`` of 2 GiB) and serving blocks up to 32 MiB from it
(``M_MMAP_THRESHOLD``, glibc's ceiling) made the corpus' seven largest files
4 to 6 % faster (10.52 s against 10.97 s, and 10.57 against 11.22, means of
three interleaved runs each).

The price: memory freed in the heap stays mapped until the process ends.  So
this is for processes that exist to compress, and is called by them (the CLI's
``compress``, the service's per-job children, the benchmark), not by the
engines themselves: a long-running process that only sometimes compresses
keeps its peak.  Only on glibc; elsewhere (musl, macOS) it does nothing.

One arena (``M_ARENA_MAX`` 1) for all threads: by default each thread that
allocates gets an arena of its own, and with the heap kept, each of the image
step's, scan step's and reference reader's threads kept its own high-water mark
of image buffers (three 60 MB arenas after a photo PDF), which ``malloc_trim``
cannot give back (it trims only the main arena's top).  Sharing one arena, a
buffer freed by one thread serves the next image of another (a 3-page photo PDF
peaked at 224 MB instead of 285, same CPU time), and :func:`release_freed_memory`
hands it all back before the verification forks its helpers.
"""

from __future__ import annotations

import ctypes
import sys

#: ``mallopt`` parameters (glibc's malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: Free memory at the heap's top is returned to the kernel beyond this (an int: 2 GiB - 1).
TRIM_THRESHOLD = (1 << 31) - 1
#: Blocks from this size on get mappings of their own (glibc refuses more than 32 MiB).
MMAP_THRESHOLD = 32 << 20

_applied: list[bool] = []
_trim: list[object] = []


def keep_freed_memory() -> bool:
    """Set glibc's allocator up for this process (once); whether it took effect."""
    if not _applied:
        _applied.append(_apply())
    return _applied[0]


def _apply() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # glibc returns 1 on success; musl's mallopt is a stub returning 0
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) \
        and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)) \
        and bool(mallopt(M_ARENA_MAX, 1))


def release_freed_memory() -> None:
    """Hand the memory the heap keeps (:func:`keep_freed_memory`) back to the kernel, now.

    Called before this process forks helpers (:mod:`squeezer.engines.forks`): a child
    maps every page its parent has, so freed buffers kept for reuse would be counted
    again in each child, and the work after the fork (checking pages) needs little of
    them.  glibc's ``malloc_trim(0)``; elsewhere nothing.
    """
    if not sys.platform.startswith("linux"):
        return
    if not _trim:
        try:
            trim = ctypes.CDLL(None).malloc_trim
            trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
        except (OSError, AttributeError):
            trim = None
        _trim.append(trim)
    if _trim[0] is not None:
        _trim[0](0)  # type: ignore[operator]
