"""The job queue: Procrastinate on the service's own PostgreSQL.

A job's row (:mod:`squeezer.db.jobs`) and its queue entry are written in one
transaction (:func:`submit_compress`), so a job is never queued without a
row nor recorded without being queued.  Workers heartbeat; a job whose worker
stopped heartbeating is put back in the queue by :func:`retry_stalled`, and
the runner is written to be run twice harmlessly.

Three tasks: ``squeezer:compress`` (queue ``compress``), ``squeezer:webhook``
(queue ``webhooks``, one Procrastinate job per delivery attempt) and the
periodic ``squeezer:sweep`` (queue ``maintenance``; Procrastinate defers one
job per tick for the whole cluster, so one worker sweeps at a time).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import procrastinate
import psycopg
from procrastinate import BaseRetryStrategy, RetryDecision
from procrastinate.job_context import AbortReason

from squeezer.db import exports as export_rows
from squeezer.db import jobs as job_rows
from squeezer.db import sweep as sweep_rows
from squeezer.jobs import scratch, sweep, webhooks
from squeezer.jobs.errors import WorkerShutdown
from squeezer.jobs.runner import Services, run_compress_job
from squeezer.storage import StorageUnavailable

log = logging.getLogger(__name__)

QUEUE = "compress"
COMPRESS_TASK = "squeezer:compress"
WEBHOOK_QUEUE = webhooks.QUEUE
WEBHOOK_TASK = webhooks.TASK
MAINTENANCE_QUEUE = "maintenance"
SWEEP_TASK = "squeezer:sweep"
STORAGE_ATTEMPTS = 5


class _CompressRetry(BaseRetryStrategy):
    """Storage and database outages: exponential backoff, a few times.  A worker shutdown:
    again at once."""

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if isinstance(exception, WorkerShutdown):
            return RetryDecision(retry_in={"seconds": 0})
        # the store or the database went away for a moment (PostgreSQL restarting cuts every
        # connection): the runner can be run again harmlessly, so try again a little later
        if (isinstance(exception, (StorageUnavailable, psycopg.OperationalError))
                and job.attempts + 1 < STORAGE_ATTEMPTS):
            return RetryDecision(retry_in={"seconds": 2 ** (job.attempts + 1)})
        return None


async def compress_task(context: procrastinate.JobContext, job_id: str) -> str:
    started = time.monotonic()
    state = await _compress(context, job_id)
    # a full temporary disk: take no next job until it has room (the other workers will)
    await scratch.pause_while_full(started)
    return state


async def _compress(context: procrastinate.JobContext, job_id: str) -> str:
    services: Services = context.additional_context["services"]
    job = uuid.UUID(job_id)
    try:
        return await run_compress_job(services, job, context.app)
    except asyncio.CancelledError:
        if context.abort_reason() == AbortReason.USER_REQUEST:
            raise
        # the worker's grace period ran out: the engine child is dead; hand the job back
        conn = await services.database.aconnect(autocommit=True)
        try:
            await sweep_rows.requeue(conn, job)
        finally:
            await conn.close()
        log.warning("job %s stopped by the worker's shutdown; requeued", job)
        raise WorkerShutdown(f"job {job} interrupted by a worker shutdown") from None
    except StorageUnavailable as exc:
        if context.job.attempts + 1 >= STORAGE_ATTEMPTS:
            conn = await services.database.aconnect(autocommit=True)
            try:
                async with conn.transaction():
                    row = await job_rows.get_job(conn, job)
                    if row and await job_rows.fail(conn, job, "storage_unavailable",
                                                   f"storage stayed unavailable: {exc}"):
                        await webhooks.defer_webhook(context.app, conn, row)
            finally:
                await conn.close()
        raise


async def sweep_task(context: procrastinate.JobContext, timestamp: int) -> dict[str, int]:
    services: Services = context.additional_context["services"]
    return await sweep.sweep_once(services, context.app)


def sweep_cron(seconds: int) -> str:
    """A cron line for "every ``seconds``" (Procrastinate takes a 6th column for seconds).

    Cron steps restart at each minute (hour), so periods that do not divide 60 s
    (60 min) run a little more often at the boundary.
    """
    seconds = max(1, int(seconds))
    if seconds < 60:
        return f"* * * * * */{seconds}"
    minutes = seconds // 60
    if minutes < 60:
        return f"*/{minutes} * * * *"
    return f"0 */{min(23, minutes // 60)} * * *"


def make_app(database_url: str, *, sweep_seconds: int = 30) -> procrastinate.App:
    """A Procrastinate app on ``database_url`` with Squeezer's tasks registered.

    ``sweep_seconds`` is ``SQUEEZER_SWEEP_SECONDS``: how often the periodic sweep is deferred.
    (Tasks are registered per app: a blueprint hands its tasks to the first app only.)
    """
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=database_url))
    app.task(
        name=COMPRESS_TASK,
        queue=QUEUE,
        pass_context=True,
        # only outages and shutdowns are worth retrying; engine errors end the job as failed
        retry=_CompressRetry(),
    )(compress_task)
    app.task(name=WEBHOOK_TASK, queue=WEBHOOK_QUEUE, pass_context=True,
             retry=webhooks.TASK_RETRY)(webhooks.webhook_task)
    sweeper = app.task(name=SWEEP_TASK, queue=MAINTENANCE_QUEUE, pass_context=True,
                       queueing_lock=SWEEP_TASK)(sweep_task)
    app.periodic(cron=sweep_cron(sweep_seconds), periodic_id="sweep")(sweeper)
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
                          idempotency_key: str | None = None, webhook_format: str = "native",
                          export: dict[str, Any] | None = None) -> job_rows.JobRow:
    """Create the job row and its queue entry atomically (a stored file or a URL as input).

    ``export`` (``connector_id``, ``bucket``, optional ``path``) is an external
    storage target the worker writes the result to (:mod:`squeezer.jobs.exports`),
    recorded in the same transaction; ``webhook_format`` picks the webhook body
    (:data:`squeezer.jobs.webhooks.FORMATS`).
    """
    if webhook_format not in webhooks.FORMATS:
        raise ValueError(f"unknown webhook format {webhook_format!r}")
    async with conn.transaction():
        job = await job_rows.insert_job(conn, key_id=key_id, input_file_id=input_file_id,
                                        input_url=input_url, input_name=input_name,
                                        options=options, ttl=ttl, webhook_url=webhook_url,
                                        idempotency_key=idempotency_key,
                                        webhook_format=webhook_format)
        if export is not None:
            await export_rows.insert(conn, job.id, connector_id=export["connector_id"],
                                     bucket=export["bucket"], path=export.get("path"))
        task = app.tasks[COMPRESS_TASK]
        await task.configure(connection=conn).defer_async(job_id=str(job.id))
    return job


#: times a job is put back in the queue after its worker lost the database mid-job
ORPHAN_ATTEMPTS = 3


async def resume_orphans(app: procrastinate.App, conn: psycopg.AsyncConnection,
                         older_than_seconds: float) -> int:
    """Queue again every job whose queue entry ended without ending the job; how many.

    The queue's own retries cover a worker that dies (heartbeats) and a short outage
    (:class:`_CompressRetry`); this covers what falls between, e.g. a worker whose database
    vanished as it ended a job, so Procrastinate recorded the entry as failed but the job
    row stayed ``running``.  After :data:`ORPHAN_ATTEMPTS` runs the job fails with
    ``internal_error`` (and its webhook is sent) instead of being tried for ever.
    """
    moved = 0
    for job_id, attempts in await sweep_rows.orphaned_jobs(
            conn, COMPRESS_TASK, older_than_seconds=older_than_seconds):
        async with conn.transaction():
            if attempts >= ORPHAN_ATTEMPTS:
                row = await job_rows.get_job(conn, job_id)
                if row and await job_rows.fail(
                        conn, job_id, "internal_error",
                        f"the job's worker lost its database {attempts} times; "
                        "submit it again"):
                    await webhooks.defer_webhook(app, conn, row)
            elif await sweep_rows.requeue_orphan(conn, job_id):
                task = app.tasks[COMPRESS_TASK]
                await task.configure(connection=conn).defer_async(job_id=str(job_id))
        moved += 1
        log.warning("job %s: its queue entry ended but the job did not (attempts %d); %s",
                    job_id, attempts, "failed" if attempts >= ORPHAN_ATTEMPTS else "requeued")
    return moved


async def retry_stalled(app: procrastinate.App, seconds_since_heartbeat: float = 30) -> int:
    """Put back in the queue every job whose worker stopped heartbeating; return how many."""
    stalled = list(await app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=seconds_since_heartbeat))
    for job in stalled:
        await app.job_manager.retry_job(job)
    return len(stalled)
