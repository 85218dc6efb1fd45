"""Webhooks: when a job ends, POST its JSON to the job's ``webhook_url``, signed, durably.

The body is the native job JSON, or for a job created through a vendor
protocol that vendor's result JSON (``jobs.webhook_format``, :data:`FORMATS`,
:mod:`squeezer.jobs.formats`); signatures and retries are the same for all.

The scheme is Standard Webhooks (https://www.standardwebhooks.com), as Svix
sends it: headers ``webhook-id`` (one per event, the same on every retry, so a
receiver can drop duplicates), ``webhook-timestamp`` and ``webhook-signature``
(:mod:`squeezer.jobs.webhook_signature`).  Each attempt is its own Procrastinate
job, so a delivery survives a worker restart; the first is deferred in the same
transaction that ends the job (:func:`defer_webhook`), so an ended job never
misses its event.  Every attempt is logged (:mod:`squeezer.db.webhooks`) and a
failed one defers the next with exponential backoff and full jitter.

What counts as failure follows Svix: anything but a 2xx within the timeouts,
3xx included (never followed, see docs/security.md), 4xx included (a receiver
mid-deploy often answers 404).  Not retried: a URL our SSRF policy refuses (it
will be refused again), and a ``410 Gone``, which Standard Webhooks defines as
the receiver's request to stop (the delivery log records ``endpoint_gone``).
See docs/webhooks.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
from procrastinate import RetryStrategy
from procrastinate.job_context import AbortReason

from squeezer.db import exports as export_rows
from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db import webhooks as delivery_rows
from squeezer.db.errors import DatabaseUnavailable
from squeezer.db.jobs import JobRow
from squeezer.jobs import payload, webhook_signature
from squeezer.jobs.errors import WorkerShutdown
from squeezer.jobs.formats import compressor
from squeezer.net import post_json
from squeezer.storage import BlobStore

if TYPE_CHECKING:
    from squeezer.jobs.runner import Services

log = logging.getLogger(__name__)

QUEUE = "webhooks"
TASK = "squeezer:webhook"
#: Longest wait between two attempts, whatever the backoff or a Retry-After says.
MAX_DELAY_SECONDS = 3600.0
#: The receiver's "stop sending" answer (Standard Webhooks), and how the delivery log says so.
GONE = 410
ENDPOINT_GONE = "endpoint_gone"
#: Delivery errors that no retry can fix (a refused URL), or after which none is wanted (410).
FINAL_ERRORS = frozenset({"url_not_allowed", ENDPOINT_GONE})
#: Webhook body formats (``jobs.webhook_format``): the native job JSON, or a vendor's shape.
FORMATS = frozenset({"native", compressor.NAME})
_EVENT_NAMESPACE = uuid.UUID("0b7a4a43-94a5-4d5e-9a49-3f8d2f6c1e52")


def webhook_id(job_id: uuid.UUID, state: str) -> str:
    """The event's id: derived from the job and its final state, so a duplicate defer keeps it."""
    return "msg_" + uuid.uuid5(_EVENT_NAMESPACE, f"{job_id}.{state}").hex


def retry_delay(failed_attempt: int, base: float, *, retry_after: float | None = None,
                cap: float = MAX_DELAY_SECONDS,
                rng: Callable[[], float] = random.random) -> float:
    """Seconds before the attempt after ``failed_attempt`` (1-based).

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter"): a
    uniform draw in ``[0, min(cap, base * 2**(n-1))]``, so receivers coming back
    from an outage are not hit by every sender at once.  A ``Retry-After`` the
    receiver sent is a floor (still capped).
    """
    ceiling = min(cap, base * 2 ** (failed_attempt - 1))
    delay = rng() * ceiling
    if retry_after is not None:
        delay = max(delay, min(cap, retry_after))
    return delay


async def native_body(conn: psycopg.AsyncConnection, job: JobRow, *, base_url: str,
                      signing_key: bytes) -> dict[str, Any]:
    """The job JSON (``GET /v1/jobs/{id}``) with its live files, export and delivery log."""
    input_file = await file_rows.get_file(conn, job.input_file_id) if job.input_file_id else None
    output_file = await file_rows.get_file(conn, job.output_file_id) if job.output_file_id else None
    log_rows = await delivery_rows.deliveries(conn, job.id) if job.webhook_url else None
    export = await export_rows.get(conn, job.id)
    position = await job_rows.queue_position(conn, job)
    return payload.job_json(job, input_file=input_file, output_file=output_file,
                            base_url=base_url, signing_key=signing_key, deliveries=log_rows,
                            export=export, queue_position=position)


async def job_body(conn: psycopg.AsyncConnection, job: JobRow, *, base_url: str,
                   signing_key: bytes, store: BlobStore | None = None) -> dict[str, Any]:
    """The body of the job's webhook, in its ``webhook_format``.

    ``native``: the job JSON (``GET /v1/jobs/{id}``) with its live files and its
    delivery log.  ``compressor``: Compressor.app's result JSON, exactly what
    ``GET /1.0/jobs/{id}`` answers (:mod:`squeezer.jobs.formats.compressor`;
    ``store`` computes the sha1 of files stored before it was recorded).
    """
    if job.webhook_format == compressor.NAME:
        _, body = await compressor.body(conn, job, base_url=base_url, signing_key=signing_key,
                                        store=store)
        return body
    return await native_body(conn, job, base_url=base_url, signing_key=signing_key)


def encode(body: dict[str, Any]) -> bytes:
    """The bytes a webhook sends: compact UTF-8 JSON (what gets signed)."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def defer_webhook(app: procrastinate.App, conn: psycopg.AsyncConnection,
                        job: JobRow) -> None:
    """Queue the job's end-of-job event; nothing when it has no ``webhook_url``.

    Call it inside the transaction that ends the job (or right after the
    cancel): the queue entry commits or rolls back with the state change.  The
    row is read again on ``conn``, so the event carries the state the
    transaction wrote.
    """
    if not job.webhook_url:
        return
    current = await job_rows.get_job(conn, job.id)
    if current is None or not current.ended:
        return
    await app.tasks[TASK].configure(
        connection=conn, lock=f"webhook:{job.id}",
    ).defer_async(job_id=str(job.id), webhook_id=webhook_id(job.id, current.state), attempt=1)


async def deliveries(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every attempt for ``job_id``: ``attempt``, ``status``, ``error``, ``attempted_at`` (ISO)."""
    return await delivery_rows.deliveries(conn, job_id)


async def deliver(services: Services, app: procrastinate.App, job_id: uuid.UUID,
                  msg_id: str, attempt: int, body: str | None = None) -> str:
    """One delivery attempt; record it and, on a retryable failure, defer the next.

    The body is made on the first attempt (the job as it was when it ended,
    with an empty delivery log) and carried to the retries unchanged, so every
    attempt of one event sends the same bytes.  Returns ``delivered``,
    ``retrying``, ``given_up`` or ``gone``.
    """
    conn = await services.database.aconnect(autocommit=True)
    try:
        job = await job_rows.get_job(conn, job_id)
        if job is None or not job.webhook_url:
            return "gone"
        secret = await delivery_rows.webhook_secret(conn, job.key_id)
        if secret is None:
            return "gone"
        if body is None:
            snapshot = await job_body(conn, job, base_url=services.base_url,
                                      signing_key=services.signing_key, store=services.store)
            body = encode(snapshot).decode("utf-8")
        raw = body.encode("utf-8")
        result = await post_json(job.webhook_url, raw,
                                 webhook_signature.headers(secret, msg_id, raw),
                                 services.webhook_policy)
        error = result.error
        if result.status == GONE:
            # Standard Webhooks: 410 Gone means "stop sending here"; for this job, we do
            error = ENDPOINT_GONE
        retry = (not result.ok and error not in FINAL_ERRORS
                 and attempt < services.config.webhooks.attempts)
        async with conn.transaction():
            await delivery_rows.record_delivery(conn, job_id=job_id, webhook_id=msg_id,
                                                attempt=attempt, status=result.status,
                                                error=error)
            if retry:
                delay = retry_delay(attempt, services.config.webhooks.backoff_seconds,
                                    retry_after=result.retry_after)
                await app.tasks[TASK].configure(
                    connection=conn, lock=f"webhook:{job_id}",
                    # (schedule_in's TypedDict takes whole seconds; the delay has a fraction)
                    schedule_at=datetime.now(UTC) + timedelta(seconds=delay),
                ).defer_async(job_id=str(job_id), webhook_id=msg_id, attempt=attempt + 1,
                              body=body)
        if result.ok:
            return "delivered"
        log.info("webhook %s of job %s, attempt %d: %s (%s)%s", msg_id, job_id, attempt,
                 error, result.message, "; will retry" if retry else "; giving up")
        return "retrying" if retry else "given_up"
    finally:
        await conn.close()


#: The queue job of one attempt is run again when a worker shutdown or a database outage
#: interrupted it (the attempt's own failures are retried by :func:`deliver`, as new jobs).
TASK_RETRY = RetryStrategy(max_attempts=5, exponential_wait=2,
                           retry_exceptions={WorkerShutdown, DatabaseUnavailable,
                                             psycopg.OperationalError})


async def webhook_task(context: procrastinate.JobContext, job_id: str, webhook_id: str,
                       attempt: int = 1, body: str | None = None) -> str:
    services: Services = context.additional_context["services"]
    assert context.app is not None
    try:
        return await deliver(services, context.app, uuid.UUID(job_id), webhook_id, attempt, body)
    except asyncio.CancelledError:
        if context.abort_reason() == AbortReason.USER_REQUEST:
            raise
        raise WorkerShutdown(f"webhook {webhook_id} interrupted by a worker shutdown") from None
