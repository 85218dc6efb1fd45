"""The routes and error shape of the pdfco protocol (see the package's docstring)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from squeezer.api import jsonbody
from squeezer.api.auth import RATE_SCOPE, authenticate, presented_key
from squeezer.api.compat._vendor import vendor_route
from squeezer.api.compat.pdfco.options import (
    bad,
    boolean_param,
    engine_options_of,
)
from squeezer.api.content import send_file
from squeezer.api.errors import ApiError, request_id
from squeezer.api.jobflow import cancel_job, create_job, owned_job, wait_for
from squeezer.api.state import ApiServices, services
from squeezer.db import files as file_rows
from squeezer.db import jobs as rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey
from squeezer.errors import status_of
from squeezer.jobs import download_urls
from squeezer.net import sanitize_filename

DEFAULT_EXPIRATION = 60  # minutes, PDF.co's default
MAX_EXPIRATION = 60 * 24 * 365
UNLIMITED_CREDITS = 2_147_483_647
TIMEOUT_MESSAGE = ("Timeout error. To process large documents or files please use asynchronous "
                   "mode (set the async parameter to true) and then check status using the "
                   "/job/check endpoint.")

def explain(exc: ApiError) -> str:
    """The message, with the field errors PDF.co's shape has no place for folded in."""
    if not exc.errors or exc.status != 422:
        return exc.message
    details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
    return exc.message if details in exc.message else f"{exc.message} ({details})"


def _status_for(status: int) -> int:
    """PDF.co's codes: 400 bad input, 401, 403, 405 timeout, 429, 5xx as they are."""
    if status in (401, 403, 405, 429) or status >= 500:
        return status
    return 400


def _render_error(request: Request, exc: ApiError) -> Response:
    # the output link answers like a file host (404 until the result exists); the calls
    # answer like PDF.co (every bad input a 400)
    is_link = request.url.path.startswith("/pdfco/output/")
    status = exc.status if is_link else _status_for(exc.status)
    return JSONResponse({"error": True, "status": status, "message": explain(exc)},
                        status_code=status,
                        headers={**exc.headers, "X-Request-ID": request_id(request)})


router = APIRouter(tags=["compat: PDF.co"], route_class=vendor_route(_render_error))


def _expiration(params: dict[str, Any]) -> int:
    value = params.get("expiration")
    if value in (None, ""):
        return DEFAULT_EXPIRATION
    try:
        minutes = int(str(value).strip())
    except ValueError:
        raise bad("expiration", f"must be a number of minutes, not {value!r}") from None
    if not 1 <= minutes <= MAX_EXPIRATION:
        raise bad("expiration", f"must be 1 to {MAX_EXPIRATION} minutes")
    return minutes


def _check_pages(params: dict[str, Any]) -> None:
    pages = str(params.get("pages") or "").replace(" ", "")
    if pages not in ("", "0-", "1-", "*", "all"):
        raise bad("pages", "page ranges are not supported: Squeezer optimizes the whole "
                   "document (omit pages, or give \"0-\")")


def _output_name(params: dict[str, Any], url: str) -> str:
    name = sanitize_filename(str(params.get("name") or "")) or None
    if name is None:
        try:
            path = urllib.parse.urlsplit(url).path
        except ValueError:  # "http://[::1": the URL check refuses it with PDF.co's 400
            path = ""
        name = sanitize_filename(urllib.parse.unquote(path)) or "result"
    return name if name.lower().endswith(".pdf") else f"{name}.pdf"


async def _params(request: Request) -> dict[str, Any]:
    """The request's parameters: JSON body, or form body, over the query string.

    A body that is a JSON object is read as JSON whatever its Content-Type:
    the seed's own ``curl -d '{"jobid": ...}'`` example sends it as
    ``application/x-www-form-urlencoded`` (curl's default for ``-d``), and the
    vendor evidently accepts it (a form body never starts with ``{``).
    """
    params: dict[str, Any] = dict(request.query_params)
    content_type = request.headers.get("content-type", "").lower()
    raw_json = False
    if not content_type.startswith("multipart/form-data"):
        raw = await request.body()
        raw_json = raw.lstrip()[:1] == b"{"
    if "json" in content_type or raw_json:
        raw = await request.body()
        if raw.strip():
            try:
                body = jsonbody.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise ApiError(400, "the request body is not valid JSON",
                               code="invalid_json") from None
            if not isinstance(body, dict):
                raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
            params.update(body)
    elif content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form(max_files=0, max_fields=64)
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def _param(params: dict[str, Any], name: str) -> Any:
    """A parameter by name, in any casing (``jobid`` and ``jobId`` both occur in PDF.co docs)."""
    if name in params:
        return params[name]
    lowered = name.lower()
    return next((v for k, v in params.items() if k.lower() == lowered), None)


async def _key(request: Request, svc: ApiServices) -> ApiKey:
    secret = request.headers.get("x-api-key", "").strip() or presented_key(request) or ""
    return await authenticate(request, svc, secret)


def _remaining(request: Request) -> int:
    decision = request.scope.get(RATE_SCOPE)
    return decision.remaining if decision is not None else UNLIMITED_CREDITS


# --- job ids and the stable output link ------------------------------------------------------


def pdfco_job_id(job: rows.JobRow, minutes: int) -> str:
    return f"{job.id.hex.upper()}--{minutes}"


def parse_job_id(value: Any) -> tuple[uuid.UUID, int] | None:
    text = str(value or "").strip()
    head, _, minutes = text.partition("--")
    try:
        job_id = uuid.UUID(head)
    except ValueError:
        return None
    if minutes and not (minutes.isdigit() and 1 <= int(minutes) <= MAX_EXPIRATION):
        return None
    return job_id, int(minutes) if minutes else DEFAULT_EXPIRATION


def _link_expiry(job: rows.JobRow, minutes: int) -> datetime:
    return min(job.created_at + timedelta(minutes=minutes), job.expires_at)


def _mac(key: bytes, job_id: uuid.UUID, expires: int) -> str:
    message = f"pdfco-output:{job_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def output_url(svc: ApiServices, request: Request, job: rows.JobRow, minutes: int) -> str:
    """Where the job's result will be, without a key, until ``minutes`` after its creation.

    The same URL from the optimize answer and from every job/check, since both are made
    from the job id and the expiration the job id carries.
    """
    expires = int(_link_expiry(job, minutes).timestamp())
    return (f"{svc.base_url(request)}/pdfco/output/{job.id.hex}?expires={expires}"
            f"&signature={_mac(svc.signing_key, job.id, expires)}")


def _valid_till(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def _duration_ms(job: rows.JobRow) -> int:
    end = job.finished_at or datetime.now(UTC)
    return max(0, int((end - job.created_at).total_seconds() * 1000))


# --- routes ----------------------------------------------------------------------------------


def _failure_message(job: rows.JobRow) -> str:
    return job.error_message or job.error_code or job.state


@router.post("/v1/pdf/optimize", summary="PDF.co: optimize a PDF from a URL (sync or async)")
async def optimize(request: Request, svc: ApiServices = Depends(services)) -> Response:
    started = time.monotonic()
    key = await _key(request, svc)
    params = await _params(request)
    url = _param(params, "url")
    if not isinstance(url, str) or not url.strip():
        raise ApiError(400, "url is required: the direct link to the source PDF",
                       code="missing_file")
    url = url.strip()
    if url.lower().startswith("cache:"):  # PDF.co's URL-caching hint; Squeezer fetches once
        url = url[len("cache:"):]
    asynchronous = boolean_param(params, "async")
    minutes = _expiration(params)
    _check_pages(params)
    options = engine_options_of(params)
    name = _output_name(params, url)
    job, _ = await create_job(svc, key, url=url, options=options)
    answer: dict[str, Any] = {"jobId": pdfco_job_id(job, minutes), "error": False,
                              "status": 200, "name": name, "credits": 0,
                              "remainingCredits": _remaining(request)}
    if asynchronous:
        answer.update(url=output_url(svc, request, job, minutes), pageCount=0,
                      outputLinkValidTill=_valid_till(_link_expiry(job, minutes)),
                      duration=int((time.monotonic() - started) * 1000))
        return JSONResponse(answer)
    job = await wait_for(svc, job, svc.config.service.sync_wait_seconds)
    if not job.ended:
        try:
            await cancel_job(svc, key, job.id)
        except ApiError:
            pass  # it ended meanwhile; still a timeout for this request
        raise ApiError(405, TIMEOUT_MESSAGE, code="timeout")
    if job.state != JobState.succeeded:
        code = job.error_code or job.state
        raise ApiError(status_of(code), _failure_message(job), code=code)
    async with svc.connection() as conn:
        output = await file_rows.get_file(conn, job.output_file_id) if job.output_file_id else None
    if output is None:
        raise ApiError(410, "the result has expired", code="gone")
    expires_at = min(_link_expiry(job, minutes), output.expires_at)
    answer.update(url=download_urls.sign(svc.signing_key, svc.base_url(request), output.id,
                                         expires_at),
                  pageCount=int((job.report or {}).get("pages") or 0),
                  outputLinkValidTill=_valid_till(expires_at),
                  duration=int((time.monotonic() - started) * 1000))
    return JSONResponse(answer)


@router.post("/v1/job/check", summary="PDF.co: the status of a background job")
@router.get("/v1/job/check", summary="PDF.co: the status of a background job (by query)")
async def job_check(request: Request, svc: ApiServices = Depends(services)) -> Response:
    key = await _key(request, svc)
    params = await _params(request)
    given = _param(params, "jobid")
    if given in (None, ""):
        raise ApiError(400, "jobid is required", code="invalid_parameter")
    force = boolean_param(params, "force")
    answer: dict[str, Any] = {"jobId": str(given), "credits": 0,
                              "remainingCredits": _remaining(request)}
    parsed = parse_job_id(given)
    job = None
    if parsed is not None:
        try:
            job = await owned_job(svc, key, parsed[0])
        except ApiError as exc:
            if exc.status == 410:
                answer.update(status="failed", message="the job has expired", duration=0)
                return JSONResponse(answer)
    if job is None or parsed is None:  # (a job is only looked up for a parsed id)
        answer.update(status="unknown" if force else "working",
                      message="Unknown job" if force else "Working", duration=0)
        return JSONResponse(answer)
    answer["duration"] = _duration_ms(job)
    if job.state == JobState.succeeded:
        answer.update(status="success", message="Success",
                      url=output_url(svc, request, job, parsed[1]),
                      pageCount=int((job.report or {}).get("pages") or 0))
    elif job.state == JobState.failed:
        answer.update(status="failed", message=_failure_message(job))
    elif job.state == JobState.cancelled:
        answer.update(status="aborted", message="Aborted")
    else:
        answer.update(status="working", message="Working")
    return JSONResponse(answer)


@router.head("/pdfco/output/{job_hex}", include_in_schema=False)
@router.get("/pdfco/output/{job_hex}",
            summary="PDF.co: an async job's output link (404 until the result exists)")
async def output(job_hex: str, request: Request,
                 expires: int = Query(...), signature: str = Query(..., max_length=128),
                 svc: ApiServices = Depends(services)) -> Response:
    try:
        job_id = uuid.UUID(job_hex)
    except ValueError:
        raise ApiError(404, "no such output", code="not_found") from None
    if not hmac.compare_digest(_mac(svc.signing_key, job_id, expires).encode(),
                               signature.encode("utf-8", "surrogatepass")):
        raise ApiError(403, "this link is not valid", code="invalid_signature")
    if time.time() >= expires:
        raise ApiError(403, "this link has expired", code="link_expired")
    async with svc.connection() as conn:
        job = await rows.get_job(conn, job_id)
        result = await file_rows.get_file(conn, job.output_file_id) \
            if job is not None and job.state == JobState.succeeded and job.output_file_id else None
    if result is None or result.deleted_at is not None \
            or result.expires_at <= datetime.now(UTC):
        state = job.state if job is not None else "gone"
        raise ApiError(404, f"the result does not exist (the job is {state})", code="not_found")
    return await send_file(request, svc.store, result)
