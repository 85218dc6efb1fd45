"""Where running jobs keep their files, and clearing what a killed process left behind.

A job's input and output live in a temporary directory while it runs
(:mod:`squeezer.jobs.runner`), and the engine child's own files in another
(:mod:`squeezer.jobs.isolation`).  Both are removed when the job ends, killed
child or not, but not when the process that made them is killed itself
(``SIGKILL``, the kernel's out-of-memory killer, a power cut): then they stay,
sometimes gigabytes of them.  So their names carry the pid of the process that
made them, and a starting worker removes those whose process is gone
(:func:`remove_orphans`).

The name also says *which* process that pid was: the pid namespace it lives
in and the process's start time (``/proc/<pid>/stat``).  A directory made in
this namespace by a process that is gone (no such pid, or the pid now belongs
to a process started later) is removed at once, so a restarted worker clears
its killed predecessor's 77 MB input copy as it starts instead of an hour
later.  A directory from another pid namespace (containers sharing ``/tmp``),
whose pids mean nothing here, or with a name of the older form, is removed
only once it is also older than :data:`ORPHAN_AGE`.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

JOB_PREFIX = "squeezer-job-"
CHILD_PREFIX = "squeezer-child-"
#: Seconds since a directory last changed before it may be taken for an orphan.
ORPHAN_AGE = 3600.0


def _namespace() -> int:
    """This process's pid namespace (the inode of ``/proc/self/ns/pid``); 0 when unknown."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _started(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/<pid>/stat`` field
    22); None when there is no such process (or no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _identity() -> str:
    """``<pid>-<namespace>x<start>``: this process, told apart from a later one with its pid."""
    pid = os.getpid()
    return f"{pid}-{_namespace()}x{_started(pid) or 0}"


#: when a job of this process last found the temporary disk full (time.monotonic())
_disk_full_at = float("-inf")
#: a full disk has room again once this much is free (a job's smallest files fit)
DISK_ROOM_BYTES = 1 << 20


def note_disk_full() -> None:
    """A job could not put its files in the temporary directory: the disk is full."""
    global _disk_full_at
    _disk_full_at = time.monotonic()


def free_bytes() -> int:
    """Free space on the temporary directory's file system (0 when it cannot be read)."""
    try:
        return shutil.disk_usage(tempfile.gettempdir()).free
    except OSError:
        return 0


async def pause_while_full(since: float, *, max_seconds: float = 30.0,
                           room: int = DISK_ROOM_BYTES, poll: float = 0.5) -> float:
    """After a job that started at ``since`` found the temporary disk full, keep the worker's
    job slot for up to ``max_seconds`` while the disk has less than ``room`` free; seconds
    paused.

    A worker whose disk is full fails each job in a fraction of the time a healthy worker
    needs to run one, so it would fetch, and fail as ``disk_full``, most of the jobs that
    arrive meanwhile (measured: 149 of 410 jobs while one of three workers was full for
    45 s).  Holding the slot lets the other workers take them; the pause ends as soon as
    there is room again (a job's leftovers removed), so a single big input that did not fit
    costs nothing.
    """
    import asyncio

    if _disk_full_at < since or free_bytes() >= room:
        return 0.0
    started = time.monotonic()
    while time.monotonic() - started < max_seconds and free_bytes() < room:
        await asyncio.sleep(poll)
    paused = time.monotonic() - started
    if paused >= poll:
        log.warning("the temporary disk %s was full: took no job for %.0f s",
                    tempfile.gettempdir(), paused)
    return paused


def fallback_warning() -> str | None:
    """What to say when ``TMPDIR`` names a directory Python's :mod:`tempfile` did not take.

    ``tempfile`` tests each candidate by writing a small file and silently moves on to
    ``/tmp`` (or the working directory) when ``TMPDIR`` is full or not writable: the worker
    would then put jobs' files on a disk the operator did not choose.  None when all is well.
    """
    wanted = os.environ.get("TMPDIR")
    if not wanted:
        return None
    used = tempfile.gettempdir()
    if os.path.realpath(used) == os.path.realpath(wanted):
        return None
    return (f"TMPDIR={wanted} is full or not writable; jobs' temporary files go to {used} "
            "instead (free it or point TMPDIR at a writable disk, then restart the worker)")


def job_directory() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for one job's files, named after this process."""
    return tempfile.TemporaryDirectory(prefix=f"{JOB_PREFIX}{_identity()}-")


def child_directory() -> str:
    """A new directory for an engine child's temporary files, named after this process
    (the child's supervisor, which removes it)."""
    return tempfile.mkdtemp(prefix=f"{CHILD_PREFIX}{_identity()}-")


def remove_orphans(root: str | Path | None = None, min_age: float = ORPHAN_AGE) -> int:
    """Remove the job and child directories under ``root`` (the system's temporary directory)
    whose process is gone and that are older than ``min_age`` seconds; how many were removed."""
    root = Path(root if root is not None else tempfile.gettempdir())
    removed = 0
    try:
        entries = list(root.iterdir())
    except OSError:
        return 0
    now = time.time()
    namespace = _namespace()
    for entry in entries:
        owner = _owner(entry.name)
        if owner is None:
            continue
        pid, ident = owner
        if ident is not None and ident[0] == namespace and namespace:
            # made in this pid namespace: its pid and start time say whether it is gone
            if pid == os.getpid() or _started(pid) == ident[1]:
                continue
            age = 0.0
        else:
            if _alive(pid):
                continue
            age = min_age
        try:
            if not entry.is_dir() or entry.is_symlink() or now - entry.stat().st_mtime < age:
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed += 1
            log.info("removed %s, left behind by process %d", entry, pid)
    return removed


def _owner(name: str) -> tuple[int, tuple[int, int] | None] | None:
    """The pid in a job or child directory's name and, in names of the current form, the
    ``(namespace, start time)`` of its process; None for any other name."""
    for prefix in (JOB_PREFIX, CHILD_PREFIX):
        if name.startswith(prefix):
            pid, _, rest = name[len(prefix):].partition("-")
            if not (pid.isdigit() and rest):
                return None
            ident, _, random_part = rest.partition("-")
            namespace, x, start = ident.partition("x")
            if x and namespace.isdigit() and start.isdigit() and random_part:
                return int(pid), (int(namespace), int(start))
            return int(pid), None
    return None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except OverflowError:
        return False
    return True
