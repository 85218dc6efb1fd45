"""Compressor.app's API (``/1.0``, seed 001): upload, fetch, long polling, connectors.

A client written for ``https://api.compressor.app/1.0`` works against
``https://squeezer.example/1.0`` with a Squeezer key as the Basic user name.
Everything runs on the native jobs (:mod:`squeezer.api.jobflow`): a request
becomes one native job, its options native engine options, its ``webhook`` the
native webhook.  What Compressor.app answers and Squeezer does not store is
made here: the result JSON (``input``/``output`` with ``sha1``, computed once
from the stored blob and cached in ``compat_file_sha1``), the vendor error
bodies, and writing results to an external storage connector
(:mod:`squeezer.api.compat._connectors`).  docs/compat.md lists every option
and every difference.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from psycopg.types.json import Jsonb

from squeezer.api.auth import authenticate
from squeezer.api.compat import _connectors as connectors
from squeezer.api.compat._vendor import vendor_route
from squeezer.api.errors import CODE_STATUS, ApiError, request_id
from squeezer.api.jobflow import create_job, engine_options, owned_job, wait_for
from squeezer.api.routes.files import store_upload
from squeezer.api.state import ApiServices, services
from squeezer.db import jobs as rows
from squeezer.db.keys import ApiKey
from squeezer.jobs import download_urls
from squeezer.storage import StorageError

log = logging.getLogger(__name__)

#: Compressor.app's ``compression`` levels (its image levels medium/high/ultra, high the
#: default) and Squeezer's own preset names -> Squeezer presets
COMPRESSION = {"lossless": "lossless", "low": "low", "medium": "low", "high": "medium",
               "ultra": "high", "extreme": "extreme"}
#: option sections of Compressor.app for other media: accepted and ignored for PDFs
_OTHER_MEDIA = {"image", "video", "audio", "archive", "website", "document"}
_KNOWN = {"compression", "pdf", "webhook", "store"}
#: multipart fields that carry the options as one JSON object
_JSON_FIELDS = ("options", "data", "json", "params")
_INVALID_JSON = "Incoming request body does not contain a valid JSON data"
_VALIDATION = "Validation failed for one or more parameters"
_background: set[asyncio.Task[Any]] = set()


def _vendor_id(request: Request) -> str:
    """The request id as Compressor.app writes ids (a dashed UUID)."""
    rid = request_id(request)
    try:
        return str(uuid.UUID(rid))
    except ValueError:
        return rid


def _error(request: Request, err: ApiError) -> JSONResponse:
    status, message, errors = err.status, err.message, None
    if status == 429:
        retry = err.headers.get("Retry-After", "1")
        message = f"Rate limit exceeded. Retry in {retry} seconds."
    elif err.code == "invalid_json":
        status, message = 422, _INVALID_JSON
    elif status == 422 and err.errors:
        message, errors = _VALIDATION, err.errors
    elif status == 401:
        message = "Unauthorized: missing or invalid API key"
    body: dict[str, Any] = {"success": False, "status": status, "id": _vendor_id(request),
                            "message": message}
    if errors is not None:
        body["errors"] = [{"field": e.get("field", ""), "message": e.get("message", "")}
                          for e in errors]
    headers = {k: v for k, v in err.headers.items() if k.lower() != "www-authenticate"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="squeezer"'
    headers["X-Request-ID"] = request_id(request)
    return JSONResponse(body, status_code=status, headers=headers)


router = APIRouter(prefix="/1.0", tags=["compat: Compressor.app"],
                   route_class=vendor_route(_error))


async def _caller(request: Request, svc: ApiServices = Depends(services)) -> ApiKey:
    return await authenticate(request, svc)


# --- the request -------------------------------------------------------------------------


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, _VALIDATION, errors=[{"field": field, "message": message}])


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.replace("[", ".").replace("]", "").split(".") if p]
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = target[part] = {}
        target = nxt
    if parts:
        target[parts[-1]] = value


def _form_value(text: str) -> Any:
    stripped = text.strip()
    if stripped[:1] in ("{", "[") or stripped in ("true", "false", "null") or \
            stripped.lstrip("-").replace(".", "", 1).isdigit():
        try:
            return json.loads(stripped)
        except json.JSONDecodeError:
            pass
    return text


def form_request(fields: dict[str, str]) -> dict[str, Any]:
    """Multipart fields as the JSON request they stand for.

    Options may come as one JSON part (``options``, ``data``, ``json`` or
    ``params``), as fields named like ``pdf.dpi`` / ``pdf[dpi]`` / ``webhook.url``,
    or both (fields win); a field value that is JSON (``true``, ``150``, ``{…}``)
    is read as JSON.
    """
    raw: dict[str, Any] = {}
    for name in _JSON_FIELDS:
        if fields.get(name):
            try:
                value = json.loads(fields[name])
            except json.JSONDecodeError:
                raise ApiError(422, _INVALID_JSON, code="invalid_json") from None
            if not isinstance(value, dict):
                raise _invalid(name, "must be a JSON object")
            raw.update(value)
    for name, text in fields.items():
        if name not in _JSON_FIELDS:
            _set_path(raw, name, _form_value(text))
    return raw


def parse_options(raw: dict[str, Any]) -> tuple[dict[str, Any], str | None, dict[str, Any] | None]:
    """``(engine options, webhook URL, store spec)`` from a request; 422 with field errors."""
    errors: list[dict[str, str]] = []
    for name in raw:
        if name not in _KNOWN and name not in _OTHER_MEDIA and name != "url":
            errors.append({"field": name, "message": "unknown parameter"})
    options: dict[str, Any] = {}
    level = raw.get("compression")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in COMPRESSION:
            errors.append({"field": "compression",
                           "message": f"must be one of {', '.join(COMPRESSION)}"})
        else:
            options["preset"] = COMPRESSION[level.lower()]
    pdf = raw.get("pdf")
    if pdf is not None:
        if not isinstance(pdf, dict):
            errors.append({"field": "pdf", "message": "must be an object"})
        else:
            options.update(pdf)
    webhook_url = None
    webhook = raw.get("webhook")
    if isinstance(webhook, str) and webhook:
        webhook_url = webhook
    elif isinstance(webhook, dict) and isinstance(webhook.get("url"), str) and webhook["url"]:
        webhook_url = webhook["url"]
    elif webhook is not None:
        errors.append({"field": "webhook.url", "message": "a URL is required"})
    store = raw.get("store")
    if store is not None:
        if not isinstance(store, dict):
            errors.append({"field": "store", "message": "must be an object"})
        else:
            try:
                uuid.UUID(str(store.get("connector", "")))
            except ValueError:
                errors.append({"field": "store.connector", "message": "a connector id is required"})
            if not isinstance(store.get("bucket"), str) or not store["bucket"]:
                errors.append({"field": "store.bucket", "message": "required"})
            if store.get("path") is not None and not isinstance(store["path"], str):
                errors.append({"field": "store.path", "message": "must be a string"})
    if errors:
        raise ApiError(422, _VALIDATION, errors=errors)
    options = engine_options(options, field="pdf")
    return options, webhook_url, store


async def _check_store(svc: ApiServices, key: ApiKey, store: dict[str, Any] | None) -> None:
    if store is not None:  # fail before any work when the connector is not usable
        await connectors.opened(svc, key.id, uuid.UUID(str(store["connector"])))


# --- the result --------------------------------------------------------------------------


async def file_sha1(svc: ApiServices, row: rows.FileRow) -> str:
    """The file's SHA-1 (Compressor.app's hash), computed once from the blob and cached."""
    async with svc.connection() as conn:
        cur = await conn.execute("select sha1 from compat_file_sha1 where file_id = %s", (row.id,))
        found = await cur.fetchone()
    if found:
        return found[0]
    digest = hashlib.sha1(usedforsecurity=False)
    async for chunk in svc.store.stream(row.blob_key):
        digest.update(chunk)
    sha1 = digest.hexdigest()
    async with svc.connection() as conn:
        await conn.execute("insert into compat_file_sha1 (file_id, sha1) values (%s, %s) "
                           "on conflict (file_id) do nothing", (row.id, sha1))
    return sha1


def _stem(name: str) -> str:
    return name[:-4] if name.lower().endswith(".pdf") else name


async def _describe(svc: ApiServices, row: rows.FileRow, name: str) -> dict[str, Any]:
    return {"name": name, "type": "document", "format": "pdf", "mime": row.mime,
            "size": row.size, "sha1": await file_sha1(svc, row)}


async def _compat_row(svc: ApiServices, job_id: uuid.UUID) -> tuple[Any, ...] | None:
    async with svc.connection() as conn:
        cur = await conn.execute(
            "select store, stored_url from compat_compressor_jobs where job_id = %s", (job_id,))
        return await cur.fetchone()


async def export(svc: ApiServices, job: rows.JobRow, output: rows.FileRow, name: str,
                 store: dict[str, Any]) -> str:
    """Write the result into the connector's bucket; its URL (recorded for later answers)."""
    connector, settings = await connectors.opened(svc, job.key_id,
                                                  uuid.UUID(str(store["connector"])))
    bucket = store["bucket"]
    key = connectors.object_key(store.get("path"), name)
    target = connectors.target_store(connector.provider, settings, bucket)
    try:
        await target.put_stream(key, svc.store.stream(output.blob_key),
                                content_type=output.mime)
    except StorageError as exc:
        async with svc.connection() as conn:
            await conn.execute("update compat_compressor_jobs set store_error = %s "
                               "where job_id = %s", (str(exc)[:500], job.id))
        raise ApiError(502, f"the result could not be written to {connector.provider}://{bucket}:"
                       f" {exc.code}", code="store_failed") from None
    url = connectors.object_url(connector.provider, settings, bucket, key)
    async with svc.connection() as conn:
        await conn.execute("update compat_compressor_jobs set stored_url = %s, stored_at = now(),"
                           " store_error = null where job_id = %s", (url, job.id))
    return url


async def result_json(svc: ApiServices, request: Request, job: rows.JobRow) -> dict[str, Any]:
    """A succeeded job as Compressor.app's result JSON (exactly its fields)."""
    async with svc.connection() as conn:
        source = await rows.get_file(conn, job.input_file_id) if job.input_file_id else None
        output = await rows.get_file(conn, job.output_file_id) if job.output_file_id else None
    if source is None or output is None:
        raise ApiError(410, "this result has expired or was deleted", code="gone")
    in_name = source.name
    out_name = f"{_stem(in_name)}.pdf"
    compat = await _compat_row(svc, job.id)
    if compat and compat[0]:
        url = compat[1] or await export(svc, job, output, out_name, compat[0])
    else:
        url = download_urls.sign(svc.signing_key, svc.base_url(request), output.id,
                                 output.expires_at)
    return {"success": True, "id": str(job.id), "url": url,
            "input": await _describe(svc, source, in_name),
            "output": await _describe(svc, output, out_name)}


def _failed(request: Request, job: rows.JobRow) -> JSONResponse:
    code = job.error_code or job.state
    status = CODE_STATUS.get(code, 422)
    return JSONResponse({"success": False, "status": status, "id": str(job.id),
                         "message": job.error_message or f"the job {job.state}"},
                        status_code=status, headers={"X-Request-ID": request_id(request)})


def _pending(job: rows.JobRow) -> dict[str, Any]:
    return {"success": True, "id": str(job.id),
            "status": "enqueued" if job.state == "queued" else "processing"}


async def _answer(svc: ApiServices, request: Request, job: rows.JobRow) -> JSONResponse:
    if job.state == "succeeded":
        return JSONResponse(await result_json(svc, request, job))
    if job.ended:
        return _failed(request, job)
    return JSONResponse(_pending(job))


async def _export_when_done(svc: ApiServices, job_id: uuid.UUID) -> None:
    """Best effort, in this process: write an async job's result out once it ends.

    If this process stops first, the next ``GET /1.0/jobs/{id}`` writes it.
    """
    try:
        while True:
            async with svc.connection() as conn:
                job = await rows.get_job(conn, job_id)
            if job is None or job.ended:
                break
            await wait_for(svc, job, svc.config.max_wait_seconds or 30)
        if job is None or job.state != "succeeded":
            return
        compat = await _compat_row(svc, job_id)
        async with svc.connection() as conn:
            output = await rows.get_file(conn, job.output_file_id) if job.output_file_id else None
            source = await rows.get_file(conn, job.input_file_id) if job.input_file_id else None
        if compat and compat[0] and not compat[1] and output and source:
            await export(svc, job, output, f"{_stem(source.name)}.pdf", compat[0])
    except Exception:  # logged; the next GET retries
        log.warning("job %s: writing the result to external storage failed", job_id,
                    exc_info=True)


async def _submit(svc: ApiServices, request: Request, key: ApiKey, *,
                  file_id: uuid.UUID | None, url: str | None, size: int | None,
                  options: dict[str, Any], webhook_url: str | None,
                  store: dict[str, Any] | None) -> JSONResponse:
    job, _ = await create_job(svc, key, file_id=file_id, url=url, options=options,
                              webhook_url=webhook_url)
    async with svc.connection() as conn:
        await conn.execute("insert into compat_compressor_jobs (job_id, key_id, store) "
                           "values (%s, %s, %s)",
                           (job.id, key.id, Jsonb(store) if store is not None else None))
    asynchronous = bool(webhook_url) or (size is not None and size > svc.config.sync_max_bytes)
    if not asynchronous:
        job = await wait_for(svc, job, svc.config.sync_wait_seconds)
    if not job.ended:
        if store is not None:
            task = asyncio.create_task(_export_when_done(svc, job.id))
            _background.add(task)
            task.add_done_callback(_background.discard)
        return JSONResponse({"success": True, "id": str(job.id), "status": "enqueued"})
    return await _answer(svc, request, job)


# --- routes --------------------------------------------------------------------------------


@router.post("/upload", summary="Compress an uploaded file (multipart field 'file')")
async def upload(request: Request, svc: ApiServices = Depends(services),
                 key: ApiKey = Depends(_caller)) -> JSONResponse:
    row, received = await store_upload(request, svc, key)
    try:
        options, webhook_url, store = parse_options(form_request(received.fields))
        await _check_store(svc, key, store)
    except Exception:
        await svc.store.delete(row.blob_key)  # an invalid request keeps nothing
        async with svc.connection() as conn:
            await rows.mark_file_deleted(conn, row.id)
        raise
    return await _submit(svc, request, key, file_id=row.id, url=None, size=row.size,
                         options=options, webhook_url=webhook_url, store=store)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, _INVALID_JSON, code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(422, _INVALID_JSON, code="invalid_json")
    return body


@router.post("/fetch", summary="Compress a file fetched from a URL")
async def fetch(request: Request, svc: ApiServices = Depends(services),
                key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _json_body(request)
    url = body.get("url")
    if not isinstance(url, str) or not url.strip():
        raise _invalid("url", "required")
    if len(url) > 8192:
        raise _invalid("url", "at most 8192 characters")
    options, webhook_url, store = parse_options(body)
    await _check_store(svc, key, store)
    return await _submit(svc, request, key, file_id=None, url=url.strip(), size=None,
                         options=options, webhook_url=webhook_url, store=store)


@router.get("/jobs/{job_id}", summary="Long polling: the result once the job has ended")
async def get_job(job_id: str, request: Request, svc: ApiServices = Depends(services),
                  key: ApiKey = Depends(_caller)) -> JSONResponse:
    try:
        parsed = uuid.UUID(job_id)
    except ValueError:
        raise ApiError(404, "no such job") from None
    job = await owned_job(svc, key, parsed)
    wait = request.query_params.get("wait") or request.query_params.get("timeout")
    try:
        seconds = float(wait) if wait else svc.config.sync_wait_seconds
    except ValueError:
        raise _invalid("wait", "a number of seconds") from None
    return await _answer(svc, request, await wait_for(svc, job, seconds))


@router.post("/connectors", status_code=201, summary="Create an external storage connector")
async def create_connector(request: Request, svc: ApiServices = Depends(services),
                           key: ApiKey = Depends(_caller)) -> JSONResponse:
    kind, name, settings = connectors.normalize(await _json_body(request))
    await connectors.check_endpoint(svc, settings)
    connector = await connectors.create(svc, key.id, kind, name, settings)
    return JSONResponse({"success": True, **connector.public()}, status_code=201)


@router.get("/connectors", summary="This key's connectors (never their credentials)")
async def list_connectors(svc: ApiServices = Depends(services),
                          key: ApiKey = Depends(_caller)) -> dict[str, Any]:
    return {"success": True,
            "connectors": [c.public() for c in await connectors.listing(svc, key.id)]}


@router.delete("/connectors/{connector_id}", summary="Delete a connector and its credentials")
async def delete_connector(connector_id: str, svc: ApiServices = Depends(services),
                           key: ApiKey = Depends(_caller)) -> dict[str, Any]:
    try:
        parsed = uuid.UUID(connector_id)
    except ValueError:
        raise ApiError(404, "no such connector") from None
    if not await connectors.delete(svc, key.id, parsed):
        raise ApiError(404, "no such connector")
    return {"success": True, "id": str(parsed)}


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                  include_in_schema=False)
async def unknown(rest: str) -> None:
    raise ApiError(404, "no such endpoint")
