"""Job and child directories carry their process's pid; a starting worker removes the orphans."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from squeezer.jobs import scratch


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _made(root: Path, name: str, age: float) -> Path:
    path = root / name
    path.mkdir()
    (path / "in.pdf").write_bytes(b"%PDF-1.7 left behind")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


def test_only_old_directories_of_processes_that_are_gone_are_removed(tmp_path):
    dead, alive = _dead_pid(), os.getppid()
    old = scratch.ORPHAN_AGE + 60
    orphans = [_made(tmp_path, f"squeezer-job-{dead}-abc", old),
               _made(tmp_path, f"squeezer-child-{dead}-def", old)]
    kept = [
        _made(tmp_path, f"squeezer-job-{dead}-fresh", 10),  # too recent: another namespace's?
        _made(tmp_path, f"squeezer-job-{alive}-ghi", old),  # its process runs
        _made(tmp_path, f"squeezer-job-{os.getpid()}-own", old),
        _made(tmp_path, "squeezer-job-notapid-x", old),
        _made(tmp_path, "someone-elses-dir", old),
    ]
    (tmp_path / f"squeezer-job-{dead}-file").write_text("not a directory")
    assert scratch.remove_orphans(tmp_path) == 2
    assert not any(path.exists() for path in orphans)
    assert all(path.exists() for path in kept)
    assert (tmp_path / f"squeezer-job-{dead}-file").exists()


def test_the_directories_are_named_after_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr(scratch.tempfile, "tempdir", str(tmp_path))
    with scratch.job_directory() as job:
        assert Path(job).name.startswith(f"squeezer-job-{os.getpid()}-")
        child = Path(scratch.child_directory())
        assert child.name.startswith(f"squeezer-child-{os.getpid()}-")
        assert scratch.remove_orphans(tmp_path, min_age=0) == 0  # ours: this process lives
    child.rmdir()


def _identity(pid: int, start: int | None = None) -> str:
    start = scratch._started(pid) if start is None else start
    return f"{pid}-{scratch._namespace()}x{start}"


def test_a_dead_predecessors_directories_go_at_once(tmp_path):
    """Names of the current form say which process made them: one that is gone from this pid
    namespace (or whose pid now belongs to a later process) is removed however fresh."""
    dead, alive = _dead_pid(), os.getppid()
    orphans = [_made(tmp_path, f"squeezer-job-{_identity(dead, 12345)}-abc", 1),
               _made(tmp_path, f"squeezer-child-{_identity(dead, 12345)}-def", 1),
               # the pid lives, but as a process started later: a reused pid
               _made(tmp_path, f"squeezer-job-{alive}-{scratch._namespace()}x1-old", 1)]
    kept = [_made(tmp_path, f"squeezer-job-{_identity(alive)}-ghi", 1),  # its process runs
            _made(tmp_path, f"squeezer-job-{_identity(os.getpid())}-own", 1),
            # another pid namespace's: its pids mean nothing here; only old ones go
            _made(tmp_path, f"squeezer-job-{dead}-1x5-other", 1)]
    assert scratch.remove_orphans(tmp_path) == 3
    assert not any(path.exists() for path in orphans)
    assert all(path.exists() for path in kept)


def test_a_tmpdir_python_passes_over_is_reported(tmp_path, monkeypatch):
    """Python's tempfile silently moves on to /tmp when TMPDIR cannot be written (a full disk,
    or, as here, not a directory): the worker says so at start instead of using another disk."""
    import tempfile

    from squeezer.jobs.scratch import fallback_warning

    blocked = tmp_path / "not-a-directory"
    blocked.write_text("x")
    monkeypatch.setenv("TMPDIR", str(blocked))
    monkeypatch.setattr(tempfile, "tempdir", None)  # chosen again from the environment
    warning = fallback_warning()
    assert warning is not None and str(blocked) in warning
    assert tempfile.gettempdir() in warning and tempfile.gettempdir() != str(blocked)
    usable = tmp_path / "tmp"
    usable.mkdir()
    monkeypatch.setenv("TMPDIR", str(usable))
    monkeypatch.setattr(tempfile, "tempdir", None)
    assert fallback_warning() is None


def test_a_worker_whose_disk_is_full_holds_its_slot_until_there_is_room():
    """After a job found the temporary disk full the worker takes no next job while the disk
    stays full (bounded), and not at all when the disk has room again or nothing was full."""
    import asyncio
    import time as clock

    started = clock.monotonic()
    assert asyncio.run(scratch.pause_while_full(started, max_seconds=5)) == 0.0  # nothing full
    scratch.note_disk_full()
    # the job's leftovers are gone and the disk has room: no pause
    assert asyncio.run(scratch.pause_while_full(started, max_seconds=5, poll=0.05)) == 0.0
    # still full (no disk has this much free): the slot is held, for at most max_seconds
    paused = asyncio.run(scratch.pause_while_full(started, max_seconds=0.3, room=1 << 62,
                                                  poll=0.05))
    assert 0.3 <= paused < 5
    # a job that started after the last full disk does not pause
    assert asyncio.run(scratch.pause_while_full(clock.monotonic(), room=1 << 62)) == 0.0
