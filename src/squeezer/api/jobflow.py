"""Creating, showing and waiting for jobs: what the native routes and the compat layers share.

Every front door (``/v1/jobs``, ``/v1/compress``, the vendor protocols) goes
through :func:`create_job`, so validation, the SSRF check, idempotency and
the sync/async rule are written once.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pydantic import SkipValidation, ValidationError

from squeezer.api.errors import ApiError, gone, not_found, validation_errors
from squeezer.api.state import ApiServices
from squeezer.db import files as file_rows
from squeezer.db import jobs as rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey
from squeezer.engines.options import Options
from squeezer.jobs import webhooks
from squeezer.jobs.queue import submit_compress
from squeezer.net import UrlNotAllowed, acheck_url
from squeezer.net.errors import NetError

#: A request's ``options``: validated by :func:`engine_options` (which keeps the request's own
#: shape for the job), documented in OpenAPI as the options model
if TYPE_CHECKING:  # what the field holds: the request's JSON value as sent (not an Options)
    OptionsField = Any
else:
    OptionsField = SkipValidation[Options]


def engine_options(raw: Any, field: str | None = "options") -> dict[str, Any]:
    """Validate options against the model (:class:`~squeezer.engines.options.Options`; the
    engine is chosen later, from the input's bytes): the request's options as validated
    (:meth:`Options.echo`), or 422 naming each bad field under ``field`` (``options.pdf.dpi``).
    """
    if not isinstance(raw, dict):
        raise ApiError(422, "invalid options", errors=[
            {"field": field or "options", "message": "must be an object"}])
    try:
        options = Options.model_validate(raw)
    except ValidationError as exc:
        errors = validation_errors(exc.errors())
        for err in errors:
            if field:
                err["field"] = f"{field}.{err['field']}" if err["field"] != "body" else field
        raise ApiError(422, "invalid options", errors=errors) from None
    return options.echo(raw)


async def check_source_url(svc: ApiServices, url: str) -> None:
    """Refuse a URL that may not be fetched: 400 before any connection is made."""
    try:
        await acheck_url(url, svc.config.url_policy())
    except UrlNotAllowed as exc:
        raise ApiError(400, str(exc), code="url_not_allowed") from None
    except NetError as exc:
        raise ApiError(400, str(exc), code=exc.code) from None


async def check_webhook_url(svc: ApiServices, url: str) -> None:
    try:
        await acheck_url(url, svc.config.webhook_policy())
    except NetError as exc:
        raise ApiError(400, f"webhook URL refused: {exc}", code=exc.code,
                       errors=[{"field": "webhook.url", "message": str(exc)}]) from None


def _same_request(job: rows.JobRow, job_input: dict[str, Any] | None, options: dict[str, Any],
                  webhook_url: str | None) -> bool:
    same_input = job_input is None or job.input == job_input
    return same_input and job.options == options and job.webhook_url == webhook_url


async def create_job(svc: ApiServices, key: ApiKey, *, file_id: uuid.UUID | None = None,
                     url: str | None = None, options: dict[str, Any],
                     webhook_url: str | None = None, idempotency_key: str | None = None,
                     compare_input: bool = True, webhook_format: str = "native",
                     export: dict[str, Any] | None = None,
                     fresh_upload: file_rows.FileRow | None = None) -> tuple[rows.JobRow, bool]:
    """A new queued job, or with a known ``idempotency_key`` the first one (``True``).

    ``compare_input=False`` is for keys that already name the input's content
    (a re-sent upload is a new file with the same bytes).  ``webhook_format``
    and ``export`` go to :func:`squeezer.jobs.queue.submit_compress`.  ``fresh_upload`` is
    the row of ``file_id`` when this request has just stored it (no need to look it up).
    """
    job_input = {"file_id": str(file_id)} if file_id else {"url": url}
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 255:
            raise ApiError(422, "Idempotency-Key must be 1 to 255 characters",
                           errors=[{"field": "Idempotency-Key", "message": "1 to 255 characters"}])
        async with svc.connection() as conn:
            earlier = await rows.find_by_idempotency_key(conn, key.id, idempotency_key)
        if earlier is not None:
            if not _same_request(earlier, job_input if compare_input else None, options,
                                 webhook_url):
                raise ApiError(409, "this Idempotency-Key was used for a different request",
                               code="idempotency_conflict")
            return earlier, True
    input_name = None
    if file_id is not None:
        source = fresh_upload if fresh_upload is not None and fresh_upload.id == file_id \
            else await _live_input(svc, key, file_id)
        input_name = source.name
    else:
        assert url is not None
        await check_source_url(svc, url)
    if webhook_url:
        await check_webhook_url(svc, webhook_url)
    ttl = timedelta(seconds=svc.config.service.file_ttl_seconds)
    async with svc.connection() as conn:
        try:
            job = await submit_compress(svc.queue, conn, key_id=key.id, input_file_id=file_id,
                                        input_url=url, input_name=input_name, options=options,
                                        ttl=ttl, webhook_url=webhook_url,
                                        idempotency_key=idempotency_key,
                                        webhook_format=webhook_format, export=export)
        except Exception as exc:
            if idempotency_key and "idempotency_key" in str(exc):  # a concurrent twin won
                earlier = await rows.find_by_idempotency_key(conn, key.id, idempotency_key)
                if earlier is not None:
                    return earlier, True
            raise
    return job, False


async def _live_input(svc: ApiServices, key: ApiKey, file_id: uuid.UUID) -> file_rows.FileRow:
    async with svc.connection() as conn:
        row = await file_rows.find_file(conn, key.id, file_id)
    if row is None:
        raise ApiError(404, "no such file", errors=[{"field": "input.file_id",
                                                     "message": "no such file"}])
    if row.deleted_at is not None or row.expires_at <= datetime.now(UTC):
        raise gone("file")
    return row


async def input_size(svc: ApiServices, job: rows.JobRow) -> int | None:
    if job.input_file_id is None:
        return None
    async with svc.connection() as conn:
        row = await file_rows.get_file(conn, job.input_file_id)
    return row.size if row else None


async def owned_job(svc: ApiServices, key: ApiKey, job_id: uuid.UUID) -> rows.JobRow:
    """``key``'s job, or 404 (not theirs or never existed) / 410 (expired)."""
    async with svc.connection() as conn:
        job = await rows.find_job(conn, key.id, job_id)
    if job is None:
        raise not_found("job")
    if job.expires_at <= datetime.now(UTC):
        raise gone("job")
    return job


async def wait_for(svc: ApiServices, job: rows.JobRow, seconds: float, *,
                   fresh: bool = False) -> rows.JobRow:
    """The job once it has ended, or as it is after ``seconds`` (capped by the config).

    The row is read again only when a notice says the job ended (or says nothing of its
    state), at the deadline, and every RECHECK_SECONDS in case a notice was lost.  ``fresh``:
    ``job`` was created by this request just now, so it is as read (queued) until a notice
    says otherwise, and the first read is saved.
    """
    seconds = min(max(0.0, seconds), svc.config.service.max_wait_seconds)
    if job.ended or seconds <= 0:
        return job
    deadline = time.monotonic() + seconds
    async with svc.waiter.watch(job.id) as watch:
        stale = not fresh
        current = job
        while True:
            if stale:
                async with svc.connection() as conn:
                    got = await rows.get_job(conn, job.id)
                if got is None:  # expired and swept meanwhile
                    return current
                current = got
                if current.ended:
                    return current
            left = deadline - time.monotonic()
            if left <= 0:
                return current
            noticed = await svc.waiter.sleep(watch, left)
            # progress ticks of a running job need no read; an end, an unknown state or a
            # quiet RECHECK_SECONDS (a lost notice) do, and so does the deadline
            stale = (not noticed or watch.state not in (JobState.queued, JobState.running)
                     or time.monotonic() >= deadline)


async def render(svc: ApiServices, request: Request, job: rows.JobRow) -> dict[str, Any]:
    """The job JSON (the same body its webhook carries)."""
    async with svc.connection() as conn:
        return await webhooks.native_body(conn, job, base_url=svc.base_url(request),
                                          signing_key=svc.signing_key)


async def cancel_job(svc: ApiServices, key: ApiKey, job_id: uuid.UUID) -> rows.JobRow:
    """Cancel a queued or running job (409 once it has ended); its webhook says so."""
    await owned_job(svc, key, job_id)
    async with svc.connection() as conn, conn.transaction():
        before = await rows.find_job(conn, key.id, job_id)
        job = await rows.cancel(conn, key.id, job_id)
        if job is None:
            raise not_found("job")
        if before is not None and before.ended:
            raise ApiError(409, f"the job has already {before.state}", code="job_ended")
        await webhooks.defer_webhook(svc.queue, conn, job)
    return job
