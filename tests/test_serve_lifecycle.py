"""``squeezer serve`` as a user meets it: what it prints, where PostgreSQL's log goes, and the
embedded PostgreSQL across a ``kill -9`` (adopted by the next start, stopped by a clean stop,
no worker left behind).  Plus ``squeezer demo``, the README's first command."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pikepdf
import psutil
from servicefx import Process, first_key, free_port


def _postmaster(data: Path) -> int:
    return int((data / "postgres" / "postmaster.pid").read_text().splitlines()[0])


def _gone(pid: int, timeout: float) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


def test_serve_prints_what_a_user_needs_and_survives_kill_9(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "SQUEEZER_DATA_DIR": str(data)}
    env.pop("SQUEEZER_DATABASE_URL", None)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    first = Process(["serve", "--port", str(port), "--workers", "1"], env, tmp_path / "one.log")
    try:
        first.wait_ready(url)
        key = first_key(first)
        out = first.stdout.read_text()
        assert f"Squeezer is ready: {url}/" in out
        assert re.search(rf"Admin API key .*shown only this once.*{key}", out)
        err = first.log.read_text()
        assert "starting the embedded PostgreSQL" in err and "first start" in err
        log = data / "postgres.log"
        assert err.count(str(log)) == 1  # the log's path, printed once
        # PostgreSQL and pgserver talk to the log file, not to the terminal
        assert "initdb" not in err and "pg_ctl" not in err and "pgserver" not in err
        assert "database system is ready to accept connections" in log.read_text()
        assert "initdb" in log.read_text()
        assert httpx.get(url + "/v1/me", headers={"Authorization": f"Bearer {key}"}
                         ).status_code == 200

        postmaster = _postmaster(data)
        workers = [p.pid for p in psutil.Process(first.proc.pid).children()
                   if "worker" in " ".join(p.cmdline())]
        assert len(workers) == 1
        os.kill(first.proc.pid, signal.SIGKILL)  # no clean-up of any kind
        first.proc.wait()
        # the workers notice their serve is gone and stop; PostgreSQL runs on, orphaned
        assert all(_gone(pid, 30) for pid in workers), "a worker outlived its serve"
        assert psutil.pid_exists(postmaster)
    finally:
        first.stop()

    second = Process(["serve", "--port", str(port), "--workers", "1"], env, tmp_path / "two.log")
    try:
        second.wait_ready(url)
        assert _postmaster(data) == postmaster  # adopted, not a second server
        assert "Admin API key" not in second.stdout.read_text()  # keys exist: none made
        assert httpx.get(url + "/v1/me", headers={"Authorization": f"Bearer {key}"}
                         ).status_code == 200
    finally:
        assert second.stop() == 0
    # a clean stop stops the server, although a killed process once held it too
    assert _gone(postmaster, 30), "the embedded PostgreSQL outlived a clean stop"
    assert not (data / "postgres" / "postmaster.pid").exists()


def test_demo_compresses_the_bundled_sample(tmp_path):
    """``make run``: the sample is made here (no ../shared), compressed, and its path printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUEEZER_")}
    done = subprocess.run([sys.executable, "-m", "squeezer", "demo", "--out-dir",
                           str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True,
                          check=False,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = re.search(r"^Result: (\S+)", done.stdout, re.MULTILINE)
    assert result, done.stdout
    out, src = Path(result.group(1)), tmp_path / "out" / "sample.pdf"
    assert out == (tmp_path / "out" / "sample.compressed.pdf").resolve()
    assert out.stat().st_size < src.stat().st_size / 3
    with pikepdf.open(out) as pdf, pikepdf.open(src) as original:
        assert len(pdf.pages) == len(original.pages) == 2
    import pypdfium2 as pdfium

    doc = pdfium.PdfDocument(out)
    try:
        assert "smaller files, same look" in doc[0].get_textpage().get_text_range()
    finally:
        doc.close()


def test_a_crash_leaves_no_stale_handles_or_pid_file(tmp_path):
    """What a crash leaves in PGDATA (a power cut, ``kill -9`` of serve and of PostgreSQL):
    handles of dead processes and a ``postmaster.pid`` naming a process that is gone, or whose
    id another program now has.  The next start forgets them (else a clean stop would never
    stop the server, or the start would wait on a server that is not there); the handles of
    live squeezer processes stay."""
    from squeezer.db.server import HANDLES, _forget_the_dead

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a process id that was ours and is gone
    other = subprocess.Popen(["sleep", "60"])  # a live process that is not PostgreSQL
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    # a live process by PostgreSQL's name (its command line says so, as the postmaster's does)
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "postgres"])
    # (Popen returns once exec began; the kernel fills in /proc/PID/cmdline a moment later,
    # which a loaded machine makes visible)
    deadline = time.monotonic() + 10
    while "postgres" not in psutil.Process(server.pid).cmdline() and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        pgdata = tmp_path / "postgres"
        pgdata.mkdir()
        (pgdata / HANDLES).write_text(f"[{dead.pid}, {holder.pid}, {other.pid}]")
        for stale in (dead.pid, other.pid):
            (pgdata / "postmaster.pid").write_text(f"{stale}\n{pgdata}\n1700000000\n5432\n")
            (pgdata / ".s.PGSQL.5432.lock").write_text(f"{stale}\n")
            _forget_the_dead(pgdata)
            assert not (pgdata / "postmaster.pid").exists()
            assert not (pgdata / ".s.PGSQL.5432.lock").exists()
            assert json.loads((pgdata / HANDLES).read_text()) == [holder.pid]
        # a live server's pid file is left alone (the start adopts that server)
        (pgdata / "postmaster.pid").write_text(f"{server.pid}\n{pgdata}\n")
        _forget_the_dead(pgdata)
        assert (pgdata / "postmaster.pid").exists()
    finally:
        for proc in (other, holder, server):
            proc.kill()
            proc.wait()


def test_make_serve_takes_a_port_and_make_run_the_demo():
    """The README's commands, as make would run them (``make -n``: nothing is started)."""
    root = Path(__file__).resolve().parents[1]
    serve = subprocess.run(["make", "-n", "serve", "PORT=9123"], cwd=root, capture_output=True,
                           text=True, check=True, timeout=60).stdout
    assert re.search(r"squeezer serve --port 9123$", serve, re.MULTILINE), serve
    run = subprocess.run(["make", "-n", "run"], cwd=root, capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert re.search(r"squeezer demo --out-dir out$", run, re.MULTILINE), run
