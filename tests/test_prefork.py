"""The warm pool of engine children (jobs/prefork.py): ready before the job, reused only for the
same owner's next jobs (never after a failure, never for long), nothing left behind."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pikepdf

from squeezer.jobs import isolation, prefork


def _whoami(send, tag: str) -> None:
    """A stand-in engine: answers with its pid and whether its scratch directory was empty."""
    import tempfile

    scratch = Path(tempfile.gettempdir())
    leftovers = sorted(p.name for p in scratch.iterdir())
    (scratch / f"left-by-{tag}").write_text("x")
    send.send(("ok", os.getpid(), leftovers))


def _prepared() -> None:
    import tempfile

    (Path(tempfile.gettempdir()) / "prepared").write_text("x")


def _ctx():
    return multiprocessing.get_context("fork")


def _fails(send, tag: str) -> None:
    """A stand-in engine that answers with an error (and its pid)."""
    send.send(("error", os.getpid(), tag))


def _run(pool: prefork.WarmPool, tag: str, owner: str | None = None) -> tuple[int, list[str]]:
    run = isolation.supervise(_ctx(), _whoami, (tag,), seconds=60, memory_bytes=0, pool=pool,
                              owner=owner)
    assert run.outcome is not None and run.outcome[0] == "ok", run
    return run.outcome[1], run.outcome[2]


def _wait_gone(pid: int) -> bool:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def test_each_job_gets_a_fresh_warm_child():
    pool = prefork.WarmPool(_ctx, _whoami, 1, prepare=_prepared)
    try:
        first, seen = _run(pool, "a")
        assert seen == ["prepared"]  # prepared before the job, in its own directory
        second, seen = _run(pool, "b")
        assert second != first and "left-by-a" not in seen
        assert _wait_gone(first)  # reaped in the background
    finally:
        pool.close()
    assert _wait_gone(second)


def test_a_reused_child_runs_its_jobs_then_is_replaced():
    pool = prefork.WarmPool(_ctx, _whoami, 1, child_jobs=2)
    try:
        pids = [_run(pool, tag) for tag in "abc"]
        assert pids[0][0] == pids[1][0] != pids[2][0]
        assert pids[1][1] == []  # the first job's files were removed before the second
    finally:
        pool.close()


def test_a_kept_child_runs_only_its_owners_jobs():
    pool = prefork.WarmPool(_ctx, _whoami, 2, child_jobs=3)
    try:
        a1, _ = _run(pool, "a1", owner="key-a")
        a2, seen = _run(pool, "a2", owner="key-a")
        assert a2 == a1 and seen == []  # kept for key-a, its scratch emptied
        b1, _ = _run(pool, "b1", owner="key-b")
        assert b1 != a1  # another key never gets key-a's child
        b2, _ = _run(pool, "b2", owner="key-b")
        assert b2 == b1
        a3, _ = _run(pool, "a3", owner="key-a")
        assert a3 == a1  # still kept while key-b used its own
        a4, _ = _run(pool, "a4", owner="key-a")
        assert a4 not in (a1, b1)  # a1 had its three jobs
        assert _wait_gone(a1)
    finally:
        pool.close()


def test_a_child_that_failed_is_not_reused():
    pool = prefork.WarmPool(_ctx, _fails, 1, child_jobs=5)
    try:
        first = isolation.supervise(_ctx(), _fails, ("x",), seconds=60, memory_bytes=0,
                                    pool=pool, owner="key-a")
        second = isolation.supervise(_ctx(), _fails, ("y",), seconds=60, memory_bytes=0,
                                     pool=pool, owner="key-a")
        assert first.outcome is not None and second.outcome is not None
        assert first.outcome[0] == second.outcome[0] == "error"
        assert first.outcome[1] != second.outcome[1]
        assert _wait_gone(first.outcome[1])
    finally:
        pool.close()


def test_an_idle_kept_child_is_discarded(monkeypatch):
    monkeypatch.setattr(prefork, "KEEP_SECONDS", 0.5)
    pool = prefork.WarmPool(_ctx, _whoami, 1, child_jobs=5)
    try:
        kept, _ = _run(pool, "a", owner="key-a")
        assert _wait_gone(kept)  # no job for half a second: gone, without a new job's nudge
        again, _ = _run(pool, "b", owner="key-a")
        assert again != kept
    finally:
        pool.close()


def test_closing_the_pool_ends_its_parked_children():
    pool = prefork.WarmPool(_ctx, _whoami, 2)
    deadline = time.monotonic() + 30
    while len(pool._ready) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    parked = [child.process.pid for child in pool._ready]
    scratch = [child.scratch for child in pool._ready]
    assert len(parked) == 2
    pool.close()
    assert all(_wait_gone(pid) for pid in parked)
    assert not any(Path(s).exists() for s in scratch)


def test_a_worker_pool_compresses_in_warm_children(tmp_path):
    import pdfgen

    src = tmp_path / "in.pdf"
    pdfgen.text_pdf(src, pages=2, lines=20)
    isolation.keep_warm(1)
    try:
        for i in range(3):
            report = isolation.compress_isolated(src, tmp_path / f"out{i}.pdf",
                                                 {"level": "lossless"})
            assert report.pages == 2
            with pikepdf.open(tmp_path / f"out{i}.pdf") as pdf:
                assert len(pdf.pages) == 2
        # a crashing job does not take the pool with it
        import pytest

        from squeezer.engines.errors import ProcessingCrashedError

        with pytest.raises(ProcessingCrashedError):
            isolation.compress_isolated(src, tmp_path / "x.pdf", _fault="abort")
        assert isolation.compress_isolated(src, tmp_path / "y.pdf").pages == 2
    finally:
        isolation.keep_warm(0)


def test_a_worker_pool_keeps_a_child_for_one_key(tmp_path):
    import pdfgen

    src = tmp_path / "in.pdf"
    pdfgen.text_pdf(src, pages=1, lines=5)
    isolation.keep_warm(1, child_jobs=10)
    try:
        def kept_pid() -> int:
            assert isolation._pool is not None
            (child,) = isolation._pool._kept
            return child.process.pid

        isolation.compress_isolated(src, tmp_path / "a1.pdf", owner="key-a")
        first = kept_pid()
        isolation.compress_isolated(src, tmp_path / "a2.pdf", owner="key-a")
        assert kept_pid() == first
        isolation.compress_isolated(src, tmp_path / "b1.pdf", owner="key-b")
        assert kept_pid() != first  # key-b's own child; key-a's was let go (one slot)
        assert _wait_gone(first)
        with pikepdf.open(tmp_path / "b1.pdf") as pdf:
            assert len(pdf.pages) == 1
    finally:
        isolation.keep_warm(0)
