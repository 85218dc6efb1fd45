"""Where running jobs keep their files, and clearing what a killed process left behind.

A job's input and output live in a temporary directory while it runs
(:mod:`squeezer.jobs.runner`), and the engine child's own files in another
(:mod:`squeezer.jobs.isolation`).  Both are removed when the job ends, killed
child or not, but not when the process that made them is killed itself
(``SIGKILL``, the kernel's out-of-memory killer, a power cut): then they stay,
sometimes gigabytes of them.  So their names carry the pid of the process that
made them, and a starting worker removes those whose process is gone
(:func:`remove_orphans`).

A directory is removed only when its pid is not a live process here *and* it
is older than :data:`ORPHAN_AGE`: a worker in another pid namespace sharing
this temporary directory (containers that share ``/tmp``) has pids that look
dead from here, and its jobs end long before that.
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


def job_directory() -> tempfile.TemporaryDirectory[str]:
    """A temporary directory for one job's files, named after this process."""
    return tempfile.TemporaryDirectory(prefix=f"{JOB_PREFIX}{os.getpid()}-")


def child_directory() -> str:
    """A new directory for an engine child's temporary files, named after this process
    (the child's supervisor, which removes it)."""
    return tempfile.mkdtemp(prefix=f"{CHILD_PREFIX}{os.getpid()}-")


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
    for entry in entries:
        pid = _owner(entry.name)
        if pid is None or _alive(pid):
            continue
        try:
            if not entry.is_dir() or entry.is_symlink() or now - entry.stat().st_mtime < min_age:
                continue
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
        if not entry.exists():
            removed += 1
            log.info("removed %s, left behind by process %d", entry, pid)
    return removed


def _owner(name: str) -> int | None:
    """The pid in a job or child directory's name, or None for any other name."""
    for prefix in (JOB_PREFIX, CHILD_PREFIX):
        if name.startswith(prefix):
            pid, _, rest = name[len(prefix):].partition("-")
            return int(pid) if pid.isdigit() and rest else None
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
