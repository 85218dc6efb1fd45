"""Durable compression jobs on a real PostgreSQL and Procrastinate: results, failures, and a
worker killed with SIGKILL in the middle of a job."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import pikepdf
import pytest

import pdfgen
from squeezer.db import jobs as job_rows
from squeezer.db import keys, migrate, open_database
from squeezer.jobs.queue import ensure_schema, make_app, retry_stalled, submit_compress
from squeezer.jobs.runner import Services, result_key
from squeezer.jobs.worker import run_worker
from squeezer.storage import open_store


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    data = tmp_path_factory.mktemp("service")
    db = open_database(os.environ.get("SQUEEZER_TEST_DATABASE_URL"), data)
    with db.connect() as conn:
        migrate(conn)

    async def prepare():
        app = make_app(db.url)
        conn = await db.aconnect(autocommit=True)
        async with app.open_async():
            await ensure_schema(app, conn)
        key, _ = await keys.create(conn, "jobs test")
        await conn.close()
        return key

    key = asyncio.run(prepare())
    yield {"db": db, "data": data, "key": key}
    db.close()


async def _upload_and_submit(env, path, options=None):
    db, key = env["db"], env["key"]
    store = open_store(None, env["data"])
    app = make_app(db.url)
    conn = await db.aconnect(autocommit=True)
    try:
        file_id = uuid.uuid4()
        stored = await store.put_file(f"uploads/{file_id}", path)
        await job_rows.insert_file(conn, file_id=file_id, key_id=key.id, kind="upload",
                                   name=path.name, size=stored.size, mime="application/pdf",
                                   sha256=stored.sha256, blob_key=stored.key,
                                   ttl=timedelta(hours=1))
        async with app.open_async():
            job = await submit_compress(app, conn, key_id=key.id, input_file_id=file_id,
                                        options=options or {}, ttl=timedelta(hours=1))
        return job.id
    finally:
        await conn.close()


async def _drain(env):
    db = env["db"]
    services = Services(database=db, store=open_store(None, env["data"]))
    await run_worker(make_app(db.url), services, wait=False, install_signal_handlers=False)


async def _job(env, job_id):
    conn = await env["db"].aconnect(autocommit=True)
    try:
        return await job_rows.get_job(conn, job_id)
    finally:
        await conn.close()


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
    assert (job.state, job.error_code) == ("failed", "not_a_pdf")
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
from squeezer.jobs.runner import Services
from squeezer.jobs.worker import run_worker
from squeezer.storage import open_store
from pathlib import Path
cfg = json.loads(sys.argv[1])
db = open_database(cfg["url"], Path(cfg["data"]))
services = Services(database=db, store=open_store(None, Path(cfg["data"])))
asyncio.run(run_worker(make_app(db.url), services, wait=True))
"""


def test_a_job_survives_a_worker_killed_mid_run(env, tmp_path):
    """SIGKILL the worker while the job runs; the stalled job is retried and succeeds once."""
    big = tmp_path / "big.pdf"
    pdfgen.photo_pdf(big, width=6000, height=4500)  # a few seconds of work
    job_id = asyncio.run(_upload_and_submit(env, big, {"preset": "medium"}))
    cfg = json.dumps({"url": env["db"].url, "data": str(env["data"])})
    worker = subprocess.Popen([sys.executable, "-c", WORKER, cfg], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while asyncio.run(_job(env, job_id)).state != "running":
            assert time.monotonic() < deadline, "the worker never started the job"
            assert worker.poll() is None, worker.stderr.read()
            time.sleep(0.1)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
    assert asyncio.run(_job(env, job_id)).state == "running"  # orphaned, not lost

    async def recover():
        app = make_app(env["db"].url)
        async with app.open_async():
            return await retry_stalled(app, seconds_since_heartbeat=0.5)

    time.sleep(1.0)
    assert asyncio.run(recover()) == 1
    asyncio.run(_drain(env))
    job = asyncio.run(_job(env, job_id))
    assert job.state == "succeeded" and job.attempts == 2
    assert job.report["output_bytes"] < job.report["input_bytes"]
