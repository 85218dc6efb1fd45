"""The periodic sweep on a real PostgreSQL and blob store: expired files deleted and marked,
stalled jobs retried, old rate windows and queue rows dropped, a storage outage survived, and
the sweep running by itself in a real worker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import jobenv
import pytest

from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db import sweep as sweep_rows
from squeezer.jobs.queue import COMPRESS_TASK, QUEUE, make_app, sweep_cron
from squeezer.jobs.runner import result_key
from squeezer.jobs.sweep import sweep_once
from squeezer.jobs.worker import run_worker
from squeezer.storage import StorageSettings, open_store

TINY = timedelta(seconds=1)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    env = jobenv.start_env(tmp_path_factory.mktemp("sweep"))
    yield env
    env["db"].close()


async def _sweep(env, svc=None):
    app = make_app(env["db"].url)
    async with app.open_async():
        return await sweep_once(svc or jobenv.services(env), app)


async def _file(env, file_id):
    conn = await jobenv.connect(env)
    try:
        return await file_rows.find_file(conn, env["key"].id, file_id)
    finally:
        await conn.close()


def test_expired_files_lose_their_blobs_and_are_marked_deleted(env, fx):
    job_id = asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(jobenv.drain(env, jobenv.services(env, service={"file_ttl_seconds": 300})))
    job = asyncio.run(jobenv.job(env, job_id))
    assert job.state == "succeeded"
    result = asyncio.run(_file(env, job.output_file_id))
    assert abs((result.expires_at - result.created_at) - timedelta(minutes=5)) < timedelta(seconds=5)
    result_blob = env["data"] / "blobs" / result_key(job_id)
    upload_blob = env["data"] / "blobs" / f"uploads/{job.input_file_id}"
    assert result_blob.exists() and upload_blob.exists()
    asyncio.run(_expire_now(env, job.input_file_id, job.output_file_id))  # the TTLs ran out
    counts = asyncio.run(_sweep(env))
    assert counts["files_deleted"] >= 2 and counts["errors"] == 0
    assert not result_blob.exists() and not upload_blob.exists()
    for file_id in (job.input_file_id, job.output_file_id):
        row = asyncio.run(_file(env, file_id))
        assert row is not None and row.deleted_at is not None
    assert asyncio.run(_sweep(env))["files_deleted"] == 0  # nothing twice


async def _expire_now(env, *file_ids):
    conn = await jobenv.connect(env)
    try:
        await conn.execute("update files set expires_at = now() - interval '1 second'"
                           " where id = any(%s)", (list(file_ids),))
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _started_by_a_worker(env, job_id):
    """A worker of our own took the job's queue entry and started its row (as far as a real
    worker gets before it is lost): ``(app, conn, worker id, entry)``."""
    app = make_app(env["db"].url)
    conn = await jobenv.connect(env)
    try:
        async with app.open_async():
            worker_id = await app.job_manager.register_worker()
            taken = await app.job_manager.fetch_job(queues=[QUEUE], worker_id=worker_id)
            assert taken.task_name == COMPRESS_TASK
            await job_rows.start(conn, job_id)
            yield app, conn, worker_id, taken
    finally:
        await conn.close()


def test_a_stalled_job_is_retried_by_the_sweep(env, fx):
    """A worker took the job and went silent (its heartbeat is an hour old): the sweep hands the
    job back and the next worker runs it."""
    job_id = asyncio.run(jobenv.submit(env, path=fx.text()))

    async def orphan():
        async with _started_by_a_worker(env, job_id) as (_, conn, worker_id, _):
            await conn.execute(
                "update procrastinate_workers set last_heartbeat = now() - interval '1 hour'"
                " where id = %s", (worker_id,))

    asyncio.run(orphan())
    assert asyncio.run(jobenv.job(env, job_id)).state == "running"
    counts = asyncio.run(_sweep(env, jobenv.services(env, workers={"stalled_seconds": 30})))
    assert counts["stalled_retried"] == 1
    asyncio.run(jobenv.drain(env))
    job = asyncio.run(jobenv.job(env, job_id))
    assert (job.state, job.attempts) == ("succeeded", 2)


async def _orphan(env, job_id, attempts: int = 1):
    """What a worker that loses its database as it ends a job leaves behind: Procrastinate's
    entry failed (it could record that once the database was back), the row still running."""
    from procrastinate.jobs import Status

    async with _started_by_a_worker(env, job_id) as (app, conn, worker_id, taken):
        assert taken.task_kwargs["job_id"] == str(job_id)
        await app.job_manager.finish_job_by_id_async(taken.id, Status.FAILED, False)
        await app.job_manager.unregister_worker(worker_id)
        await conn.execute("update jobs set attempts = %s, created_at = now() - interval"
                           " '1 minute' where id = %s", (attempts, job_id))


def test_a_job_whose_queue_entry_ended_without_it_is_queued_again(env, fx):
    """The sweep finds jobs that no queue entry will ever run again and queues them once more;
    a job still waiting in the queue is left alone, however old."""
    asyncio.run(jobenv.drain(env))
    job_id = asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(_orphan(env, job_id))
    waiting = asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(_age(env, waiting))
    assert asyncio.run(jobenv.job(env, job_id)).state == "running"
    counts = asyncio.run(_sweep(env))
    assert counts["orphans_resumed"] == 1 and counts["errors"] == 0
    assert asyncio.run(jobenv.job(env, job_id)).state == "queued"
    assert asyncio.run(_sweep(env))["orphans_resumed"] == 0  # queued again: not twice
    asyncio.run(jobenv.drain(env))
    job, other = asyncio.run(jobenv.job(env, job_id)), asyncio.run(jobenv.job(env, waiting))
    assert (job.state, job.attempts, other.state) == ("succeeded", 2, "succeeded")


def test_an_orphan_that_keeps_coming_back_fails_with_a_named_code(env, fx):
    job_id = asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(_orphan(env, job_id, attempts=3))
    assert asyncio.run(_sweep(env))["orphans_resumed"] == 1
    job = asyncio.run(jobenv.job(env, job_id))
    assert (job.state, job.error_code) == ("failed", "internal_error")
    assert "lost its database 3 times" in job.error_message


async def _age(env, job_id):
    conn = await jobenv.connect(env)
    try:
        await conn.execute("update jobs set created_at = now() - interval '1 minute'"
                           " where id = %s", (job_id,))
    finally:
        await conn.close()


def test_a_blob_store_outage_fails_only_the_file_part(env, fx, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    down = open_store("s3://bucket", env["data"], StorageSettings(
        s3_endpoint="http://127.0.0.1:9", connect_timeout=0.2, timeout=2))
    file_id = asyncio.run(jobenv.store_upload(env, fx.text(), ttl=TINY))
    asyncio.run(_old_rate_window(env))
    time.sleep(1.2)
    counts = asyncio.run(_sweep(env, jobenv.services(env, store=down)))
    assert counts["errors"] == 1 and counts["files_deleted"] == 0
    assert counts["rate_windows_forgotten"] == 1  # the other parts still ran
    assert asyncio.run(_file(env, file_id)).deleted_at is None
    counts = asyncio.run(_sweep(env))  # the store is back
    assert counts["files_deleted"] == 1 and counts["errors"] == 0
    assert asyncio.run(_file(env, file_id)).deleted_at is not None


async def _old_rate_window(env):
    conn = await jobenv.connect(env)
    try:
        await conn.execute(
            "insert into rate_limit_windows (key_id, window_start, hits)"
            " values (%s, now() - interval '2 days', 3)", (env["key"].id,))
    finally:
        await conn.close()


def test_finished_queue_rows_are_pruned_and_waiting_ones_kept(env, fx):
    asyncio.run(jobenv.submit(env, path=fx.text()))
    asyncio.run(jobenv.drain(env))
    waiting = asyncio.run(jobenv.submit(env, path=fx.text()))

    async def prune():
        conn = await jobenv.connect(env)
        try:
            pruned = await sweep_rows.prune_queue_rows(conn, older_than_hours=0)
            cur = await conn.execute("select status::text, args from procrastinate_jobs")
            return pruned, await cur.fetchall()
        finally:
            await conn.close()

    pruned, left = asyncio.run(prune())
    assert pruned >= 1
    assert all(status in ("todo", "doing") for status, _ in left)
    assert any(args.get("job_id") == str(waiting) for _, args in left)
    assert asyncio.run(_sweep(env))["queue_rows_pruned"] == 0  # a day's grace in the sweep
    asyncio.run(jobenv.drain(env))


def test_one_sweep_at_a_time(env):
    async def while_locked():
        conn = await jobenv.connect(env)
        try:
            assert await sweep_rows.try_lock_sweep(conn)
            try:
                return await _sweep(env)
            finally:
                await sweep_rows.unlock_sweep(conn)
        finally:
            await conn.close()

    assert asyncio.run(while_locked())["skipped"] == 1
    assert asyncio.run(_sweep(env))["skipped"] == 0


def test_the_periodic_sweep_runs_in_a_real_worker(env, fx):
    file_id = asyncio.run(jobenv.store_upload(env, fx.text(), ttl=TINY))
    time.sleep(1.1)

    async def scenario():
        app = make_app(env["db"].url, sweep_seconds=1)
        worker = asyncio.create_task(run_worker(app, jobenv.services(env), wait=True,
                                                install_signal_handlers=False))
        try:
            async def swept():
                assert not worker.done(), worker.exception()
                row = await _file(env, file_id)
                return row.deleted_at is not None
            await jobenv.wait_for(swept, timeout=15, interval=0.2)
        finally:
            worker.cancel()
            with pytest.raises(asyncio.CancelledError):
                await worker
        conn = await jobenv.connect(env)
        try:
            cur = await conn.execute("select count(*) from procrastinate_jobs"
                                     " where task_name = 'squeezer:sweep' and status = 'succeeded'")
            return (await cur.fetchone())[0]
        finally:
            await conn.close()

    assert asyncio.run(scenario()) >= 1


def test_cron_lines_for_sweep_periods():
    assert sweep_cron(30) == "* * * * * */30"
    assert sweep_cron(1) == "* * * * * */1"
    assert sweep_cron(120) == "*/2 * * * *"
    assert sweep_cron(7200) == "0 */2 * * *"


def test_a_database_outage_mid_job_is_retried_like_a_storage_outage():
    """PostgreSQL restarting cuts the runner's connection: the queue runs the job again a little
    later (a few times), while a bug is not retried."""
    from types import SimpleNamespace

    import psycopg

    from squeezer.jobs.queue import STORAGE_ATTEMPTS, _CompressRetry

    retry = _CompressRetry()
    cut = psycopg.OperationalError("server closed the connection unexpectedly")
    first = retry.get_retry_decision(exception=cut, job=SimpleNamespace(attempts=0))
    assert first is not None and first.retry_at is not None
    assert retry.get_retry_decision(exception=cut,
                                    job=SimpleNamespace(attempts=STORAGE_ATTEMPTS - 1)) is None
    assert retry.get_retry_decision(exception=ValueError("a bug"),
                                    job=SimpleNamespace(attempts=0)) is None
