"""Durable compression jobs on a real PostgreSQL and Procrastinate: results, failures, inputs
fetched by URL from a local server, progress, cancellation, and workers stopped by SIGTERM or
killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta

import jobenv
import pdfgen
import pikepdf
import pytest

from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.jobs import scratch
from squeezer.jobs.queue import make_app, retry_stalled, submit_compress
from squeezer.jobs.runner import input_file_id, input_key, result_file_id, result_key


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = jobenv.start_env(tmp_path_factory.mktemp("service"))
    yield env
    env["db"].close()


async def _upload_and_submit(env, path, options=None):
    return await jobenv.submit(env, path=path, options=options)


async def _drain(env, svc=None):
    await jobenv.drain(env, svc)


async def _job(env, job_id):
    return await jobenv.job(env, job_id)


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """A 7.7 Mpx Flate photo: about 2 s of work under "lossless" (most of it at progress 0.2)."""
    path = tmp_path_factory.mktemp("big") / "big.pdf"
    pdfgen.photo_pdf(path, width=3200, height=2400, encoding="flate")
    return path


def test_a_job_runs_to_a_stored_result(env, fx):
    job_id = asyncio.run(_upload_and_submit(env, fx.uncompressed(), {"preset": "lossless"}))
    assert asyncio.run(_job(env, job_id)).state == "queued"
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded" and job.progress == 1 and job.attempts == 1
    assert job.report["output_bytes"] < job.report["input_bytes"]
    blob = env["data"] / "blobs" / result_key(job_id)
    assert blob.stat().st_size == job.report["output_bytes"]
    with pikepdf.open(blob) as pdf:
        assert len(pdf.pages) == job.report["pages"]


def test_bad_input_fails_the_job_with_the_engine_code(env, tmp_path):
    bad = tmp_path / "not.pdf"
    bad.write_bytes(b"this is not a pdf")
    job_id = asyncio.run(_upload_and_submit(env, bad))
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.error_code) == ("failed", "unsupported_format")
    assert job.output_file_id is None


def test_a_job_is_in_the_queue_only_if_its_row_exists(env, fx):
    """The row and the queue entry commit together: a rolled-back submit leaves neither."""

    async def scenario():
        db, key = env["db"], env["key"]
        app = make_app(db.url)
        conn = await db.aconnect(autocommit=True)
        try:
            before = await (await conn.execute("select count(*) from procrastinate_jobs")).fetchone()
            with pytest.raises(Exception):
                async with app.open_async():
                    # an input file id that does not exist violates the foreign key
                    await submit_compress(app, conn, key_id=key.id, input_file_id=uuid.uuid4(),
                                          options={}, ttl=timedelta(hours=1))
            after = await (await conn.execute("select count(*) from procrastinate_jobs")).fetchone()
            return before[0], after[0]
        finally:
            await conn.close()

    before, after = asyncio.run(scenario())
    assert before == after


WORKER = """
import asyncio, json, sys
from squeezer.db import open_database
from squeezer.jobs.queue import make_app
from squeezer.config import Config
from squeezer.jobs.runner import Services
from squeezer.jobs.worker import run_worker
from squeezer.storage import open_store
from pathlib import Path
cfg = json.loads(sys.argv[1])
db = open_database(cfg["url"], Path(cfg["data"]))
config = Config(data_dir=Path(cfg["data"]),
                workers={"shutdown_grace_seconds": cfg.get("grace", 30)})
services = Services(config, db, open_store(None, Path(cfg["data"])))
asyncio.run(run_worker(make_app(db.url), services, wait=True))
"""


def test_a_job_survives_a_worker_killed_mid_run(env, big, tmp_path, monkeypatch):
    """SIGKILL the worker while the job runs; the stalled job is retried and succeeds once,
    and the next worker removes the files the killed one left behind."""
    job_id = asyncio.run(_upload_and_submit(env, big, {"preset": "lossless"}))
    cfg = json.dumps({"url": env["db"].url, "data": str(env["data"])})
    scratch_root = tmp_path / "tmp"
    scratch_root.mkdir()
    worker = subprocess.Popen([sys.executable, "-c", WORKER, cfg], start_new_session=True,
                              env={**os.environ, "TMPDIR": str(scratch_root)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        # running in the database, and its files on disk (the worker makes the job's directory
        # once it has read the answer to its start, which a loaded machine can delay)
        while (asyncio.run(_job(env, job_id)).state != "running"
               or not list(scratch_root.glob(f"squeezer-job-{worker.pid}-*"))):
            assert time.monotonic() < deadline, "the worker never started the job"
            assert worker.poll() is None, worker.stderr.read()
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert asyncio.run(_job(env, job_id)).state == "running"  # orphaned, not lost
    left = sorted(p.name.split("-")[1] for p in scratch_root.glob(f"squeezer-*-{worker.pid}-*"))
    assert "job" in left, list(scratch_root.iterdir())
    # no waiting: the directory's name says its process is gone (pid, namespace, start time)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch_root))

    async def recover():
        app = make_app(env["db"].url)
        async with app.open_async():
            return await retry_stalled(app, seconds_since_heartbeat=0.5)

    time.sleep(1.0)
    assert asyncio.run(recover()) >= 1  # the compression (a sweep may have been running too)
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded" and job.attempts == 2
    assert job.report["output_bytes"] < job.report["input_bytes"]
    assert list(scratch_root.glob(f"squeezer-*-{worker.pid}-*")) == []


# --- inputs fetched by URL -----------------------------------------------------------------


def test_a_url_job_is_fetched_stored_and_compressed(env, fx):
    pdf = fx.uncompressed().read_bytes()
    routes = {"/doc.pdf": jobenv.Answer(200, pdf, {
        "Content-Type": "application/pdf",
        "Content-Disposition": 'attachment; filename="../../Quarterly report.pdf"'})}
    with jobenv.Server(routes) as server:
        job_id = asyncio.run(jobenv.submit(env, url=server.url("/doc.pdf"),
                                           options={"preset": "lossless"}))
        asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded", (job.error_code, job.error_message)
    assert job.input == {"url": server.url("/doc.pdf")}
    assert job.input_file_id == input_file_id(job_id)
    assert job.input_name == "Quarterly report.pdf"  # the hint, without its directories

    async def rows():
        conn = await jobenv.connect(env)
        try:
            return (await file_rows.get_file(conn, job.input_file_id),
                    await file_rows.get_file(conn, job.output_file_id))
        finally:
            await conn.close()

    source, output = asyncio.run(rows())
    assert (source.kind, source.size, source.blob_key) == ("upload", len(pdf), input_key(job_id))
    assert (env["data"] / "blobs" / input_key(job_id)).read_bytes() == pdf
    assert output.name == "Quarterly report.compressed.pdf"
    assert job.report["input_bytes"] == len(pdf) > job.report["output_bytes"] == output.size


def test_a_redirect_into_a_refused_address_fails_the_job(env):
    """The server is allowed (127.0.0.1/32), the hop to the metadata address is not."""
    routes = {"/start": jobenv.Answer(302, b"", {"Location": "http://169.254.169.254/latest/"})}
    with jobenv.Server(routes) as server:
        job_id = asyncio.run(jobenv.submit(env, url=server.url("/start")))
        asyncio.run(_drain(env, jobenv.services(env, fetch={"allow_networks": "127.0.0.1/32"})))
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.error_code) == ("failed", "url_not_allowed")
    assert "169.254.169.254" in job.error_message
    assert len(server.hits("/start")) == 1
    assert job.input_file_id is None


def test_a_source_error_fails_the_job_with_its_code(env):
    routes = {"/gone.pdf": jobenv.Answer(404, b"no")}
    with jobenv.Server(routes) as server:
        job_id = asyncio.run(jobenv.submit(env, url=server.url("/gone.pdf")))
        asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.error_code) == ("failed", "source_http_error")
    assert "404" in job.error_message


# --- progress and cancellation ----------------------------------------------------------------


async def _run_while(env, job_id, during):
    """Drain the queue while ``during(conn)`` runs; return what it returned."""
    worker = asyncio.create_task(_drain(env))
    conn = await jobenv.connect(env)
    try:
        return await during(conn, worker)
    finally:
        await asyncio.wait_for(worker, 120)
        await conn.close()


def test_progress_reaches_the_database(env, big):
    job_id = asyncio.run(_upload_and_submit(env, big, {"preset": "lossless"}))
    seen: list[float] = []

    async def watch(conn, worker):
        while not worker.done():
            row = await job_rows.get_job(conn, job_id)
            if row.state == "running":
                seen.append(row.progress)
            await asyncio.sleep(0.1)

    asyncio.run(_run_while(env, job_id, watch))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded" and job.progress == 1
    between = sorted({p for p in seen if 0 < p < 1})
    assert between, seen  # progress was written while it ran
    assert seen == sorted(seen)  # never backwards


def test_cancelling_a_running_job_stops_it_without_a_result(env, big):
    job_id = asyncio.run(_upload_and_submit(env, big, {"preset": "lossless"}))

    async def cancel_once_running(conn, worker):
        await jobenv.wait_for(
            lambda: _progressing(conn, job_id), timeout=60, interval=0.05)
        row = await job_rows.cancel(conn, env["key"].id, job_id)
        assert row.state == "cancelled"
        cancelled_at = time.monotonic()
        await asyncio.wait_for(asyncio.shield(worker), 10)
        return time.monotonic() - cancelled_at

    stopped_after = asyncio.run(_run_while(env, job_id, cancel_once_running))
    assert stopped_after < 5
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.error_code, job.output_file_id) == ("cancelled", "cancelled", None)
    assert job.progress < 1
    assert not (env["data"] / "blobs" / "results" / str(job_id)).exists()

    async def result_row():
        conn = await jobenv.connect(env)
        try:
            return await file_rows.find_file(conn, env["key"].id, result_file_id(job_id))
        finally:
            await conn.close()

    assert asyncio.run(result_row()) is None


async def _progressing(conn, job_id):
    row = await job_rows.get_job(conn, job_id)
    return row.state == "running" and row.progress > 0


def test_a_job_cancelled_while_queued_is_skipped(env, fx):
    job_id = asyncio.run(_upload_and_submit(env, fx.text()))

    async def cancel():
        conn = await jobenv.connect(env)
        try:
            return await job_rows.cancel(conn, env["key"].id, job_id)
        finally:
            await conn.close()

    assert asyncio.run(cancel()).state == "cancelled"
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.attempts, job.started_at) == ("cancelled", 0, None)


def _group_alive(pgid: int) -> list[int]:
    alive = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                alive.append(int(entry))
    return alive


def test_sigterm_past_the_grace_period_requeues_the_job_and_exits_0(env, big):
    """SIGTERM while the engine runs, with 0.5 s of grace: the child is killed, the worker exits 0,
    the job goes back to the queue and the next worker finishes it."""
    job_id = asyncio.run(_upload_and_submit(env, big, {"preset": "lossless"}))
    cfg = json.dumps({"url": env["db"].url, "data": str(env["data"]), "grace": 0.5})
    worker = subprocess.Popen([sys.executable, "-c", WORKER, cfg], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (asyncio.run(_job(env, job_id)).progress > 0):
            assert time.monotonic() < deadline, "the worker never started the job"
            assert worker.poll() is None, worker.stderr.read()
            time.sleep(0.1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0, worker.stderr.read().decode()[-3000:]
        deadline = time.monotonic() + 5
        while _group_alive(worker.pid):  # the forkserver and the engine child go too
            assert time.monotonic() < deadline, _group_alive(worker.pid)
            time.sleep(0.1)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    job = asyncio.run(_job(env, job_id))
    assert (job.state, job.progress) == ("queued", 0)
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded" and job.attempts == 2


def test_services_from_config(env, tmp_path):
    from squeezer.config import Config
    from squeezer.jobs.runner import Services

    config = Config(data_dir=tmp_path,
                    service={"public_url": "https://squeezer.example/", "secret_key": "k",
                             "file_ttl_seconds": 60},
                    fetch={"allow_networks": "10.0.0.0/8"},
                    webhooks={"allow_hosts": "hooks.intranet", "attempts": 3,
                              "backoff_seconds": 1.5},
                    workers={"stalled_seconds": 12, "job_memory_bytes": 1 << 30,
                             "sweep_seconds": 5},
                    limits={"max_seconds": 90})
    svc = Services(config, env["db"], jobenv.open_store(None, tmp_path))
    assert svc.base_url == "https://squeezer.example"
    assert svc.signing_key == b"k"
    # separate allow-lists: an internal file server to fetch from is not a webhook target
    assert svc.fetch_policy.allow_networks == ("10.0.0.0/8",)
    assert svc.webhook_policy.allow_networks == () and svc.webhook_policy.allow_hosts == (
        "hooks.intranet",)
    assert svc.webhook_policy.max_redirects == 0 and svc.webhook_policy.total_timeout == 15
    assert svc.fetch_policy.max_redirects == 5
    assert (svc.result_ttl, svc.config.webhooks.attempts, svc.config.webhooks.backoff_seconds) == (
        timedelta(seconds=60), 3, 1.5)
    assert (svc.config.workers.stalled_seconds, svc.config.workers.sweep_seconds) == (12, 5)
    assert (svc.child.seconds, svc.child.memory_bytes) == (90, 1 << 30)
    assert Services(Config(data_dir=tmp_path), env["db"],
                                svc.store).base_url == "http://127.0.0.1:8000"


def test_a_warm_engine_child_serves_only_the_key_whose_job_it_ran(env, fx, tmp_path):
    """The runner hands each job's API key to the worker's warm pool: a child kept after a
    job of one key never runs another key's job (docs/security.md)."""
    from squeezer.db import keys
    from squeezer.jobs import isolation

    async def other_key():
        conn = await jobenv.connect(env)
        try:
            return (await keys.create(conn, "another client"))[0]
        finally:
            await conn.close()

    other = {**env, "key": asyncio.run(other_key())}
    isolation.keep_warm(1, child_jobs=10)
    try:
        def kept() -> list[tuple[str | None, int]]:
            assert isolation._pool is not None
            return [(c.owner, c.process.pid) for c in isolation._pool._kept]

        first = asyncio.run(_upload_and_submit(env, fx.uncompressed(), {"preset": "lossless"}))
        asyncio.run(_drain(env))
        ((owner, pid),) = kept()
        assert owner == str(env["key"].id)
        asyncio.run(_upload_and_submit(env, fx.uncompressed(), {"preset": "lossless"}))
        asyncio.run(_drain(env))
        assert kept() == [(owner, pid)]  # the same key's next job: the same child
        theirs = asyncio.run(_upload_and_submit(other, fx.uncompressed(), {"preset": "lossless"}))
        asyncio.run(_drain(other))
        ((owner_b, pid_b),) = kept()
        assert owner_b == str(other["key"].id) and pid_b != pid
        for job_id in (first, theirs):
            assert asyncio.run(_job(env, job_id)).state == "succeeded"
    finally:
        isolation.keep_warm(0)
