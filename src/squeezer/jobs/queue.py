"""The job queue: Procrastinate on the service's own PostgreSQL.

A job's row (:mod:`squeezer.db.jobs`) and its queue entry are written in one
transaction (:func:`submit_compress`), so a job is never queued without a
row nor recorded without being queued.  Workers heartbeat; a job whose worker
stopped heartbeating is put back in the queue by :func:`retry_stalled`, and
the runner is written to be run twice harmlessly.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import RetryStrategy

from squeezer.db import jobs as job_rows
from squeezer.jobs.runner import Services, run_compress_job
from squeezer.storage import StorageUnavailable

QUEUE = "compress"
COMPRESS_TASK = "squeezer:compress"


async def compress_task(context: procrastinate.JobContext, job_id: str) -> str:
    services: Services = context.additional_context["services"]
    return await run_compress_job(services, uuid.UUID(job_id))


def make_app(database_url: str) -> procrastinate.App:
    """A Procrastinate app on ``database_url`` with Squeezer's tasks registered.

    (Tasks are registered per app: a blueprint hands its tasks to the first app only.)
    """
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    app.task(
        name=COMPRESS_TASK,
        queue=QUEUE,
        pass_context=True,
        # only outages are worth retrying; engine errors end the job as failed
        retry=RetryStrategy(max_attempts=5, exponential_wait=2,
                            retry_exceptions={StorageUnavailable}),
    )(compress_task)
    return app


async def ensure_schema(app: procrastinate.App, conn: psycopg.AsyncConnection) -> None:
    """Install Procrastinate's tables once (its own schema, beside ours)."""
    cur = await conn.execute("select to_regclass('procrastinate_jobs') is not null")
    row = await cur.fetchone()
    if not (row and row[0]):
        await conn.execute("select pg_advisory_lock(%s)", (0x5151_EE2F,))
        try:
            cur = await conn.execute("select to_regclass('procrastinate_jobs') is not null")
            row = await cur.fetchone()
            if not (row and row[0]):
                await app.schema_manager.apply_schema_async()
        finally:
            await conn.execute("select pg_advisory_unlock(%s)", (0x5151_EE2F,))


async def submit_compress(app: procrastinate.App, conn: psycopg.AsyncConnection, *,
                          key_id: uuid.UUID, options: dict[str, Any], ttl: timedelta,
                          input_file_id: uuid.UUID | None = None, input_url: str | None = None,
                          input_name: str | None = None, webhook_url: str | None = None,
                          idempotency_key: str | None = None) -> job_rows.JobRow:
    """Create the job row and its queue entry atomically (a stored file or a URL as input)."""
    async with conn.transaction():
        job = await job_rows.insert_job(conn, key_id=key_id, input_file_id=input_file_id,
                                        input_url=input_url, input_name=input_name,
                                        options=options, ttl=ttl, webhook_url=webhook_url,
                                        idempotency_key=idempotency_key)
        task = app.tasks[COMPRESS_TASK]
        await task.configure(connection=conn).defer_async(job_id=str(job.id))
    return job


async def retry_stalled(app: procrastinate.App, seconds_since_heartbeat: float = 30) -> int:
    """Put back in the queue every job whose worker stopped heartbeating; return how many."""
    stalled = await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    for job in stalled:
        await app.job_manager.retry_job(job)
    return len(stalled)
