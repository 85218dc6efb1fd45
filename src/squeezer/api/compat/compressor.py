"""Compressor.app's API (``/1.0``, seed 001): upload, fetch, long polling, connectors.

A client written for ``https://api.compressor.app/1.0`` works against
``https://squeezer.example/1.0`` with a Squeezer key as the Basic user name.
Everything runs on the native jobs (:mod:`squeezer.api.jobflow`): a request
becomes one native job, its options native engine options, its ``webhook`` the
native webhook in Compressor.app's format (``webhook_format='compressor'``),
its ``store`` the job's export target.  The result JSON is made in the jobs
layer (:mod:`squeezer.jobs.formats.compressor`), so the webhook POSTs exactly
what ``GET /1.0/jobs/{id}`` answers; the copy in the client's bucket is
written by the worker as part of the job (:mod:`squeezer.jobs.exports`).
Here: parsing requests, the vendor error bodies, and the connector routes
(:mod:`squeezer.api.compat._connectors`).  docs/compat.md lists every option
and every difference.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from squeezer.api.auth import authenticate
from squeezer.api.compat import _connectors as connectors
from squeezer.api.compat._vendor import vendor_route
from squeezer.api.errors import ApiError, request_id
from squeezer.api.jobflow import create_job, engine_options, owned_job, wait_for
from squeezer.api.routes.files import store_upload
from squeezer.api.state import ApiServices, services
from squeezer.db import jobs as rows
from squeezer.db.keys import ApiKey
from squeezer.engines.options import group_names
from squeezer.jobs.formats import compressor as result_format

#: Compressor.app's ``compression`` levels (lossless, medium, high, ultra; high the default)
#: and Squeezer's own level names -> Squeezer levels
COMPRESSION = {"lossless": "lossless", "low": "low", "medium": "low", "high": "medium",
               "ultra": "high", "extreme": "extreme"}
#: option sections of Compressor.app that are no Squeezer option group: accepted, ignored
_OTHER_MEDIA = {"video", "audio", "archive", "website", "document"}
#: request keys besides the option groups (``pdf``, ``image``, …: the model's own groups,
#: so ``image.resize`` is ``Options.image.resize``)
_KNOWN = {"compression", "webhook", "store"}
#: sections that carry the native options flat, as they always have (``pdf: {"dpi": 150,
#: "preset": "high", "password": "…"}``); the other groups are nested (``video.resize``)
FLAT_SECTIONS = {"pdf", "image"}
#: multipart fields that carry the options as one JSON object
_JSON_FIELDS = ("options", "data", "json", "params")
_INVALID_JSON = "Incoming request body does not contain a valid JSON data"
_VALIDATION = "Validation failed for one or more parameters"


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
    groups = set(group_names())
    for name in raw:
        if name not in _KNOWN and name not in groups and name not in _OTHER_MEDIA \
                and name != "url":
            errors.append({"field": name, "message": "unknown parameter"})
    options: dict[str, Any] = {}
    for section in sorted(groups):
        given = raw.get(section)
        if given is None:
            continue
        if not isinstance(given, dict):
            errors.append({"field": section, "message": "must be an object"})
        elif section in FLAT_SECTIONS:
            options.update(given)  # native options as they are: errors name ``pdf.dpi``
        else:
            options[section] = given
    level = raw.get("compression")
    if level is not None:
        if not isinstance(level, str) or level.lower() not in COMPRESSION:
            errors.append({"field": "compression",
                           "message": f"must be one of {', '.join(COMPRESSION)}"})
        elif "level" not in options and "preset" not in options:  # pdf.preset wins
            options["level"] = COMPRESSION[level.lower()]
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
    return engine_options(options, field=None), webhook_url, store


def _export(store: dict[str, Any] | None) -> dict[str, Any] | None:
    """The job's export target (``squeezer.jobs.exports``) from a validated ``store``."""
    if store is None:
        return None
    return {"connector_id": uuid.UUID(str(store["connector"])), "bucket": store["bucket"],
            "path": store.get("path")}


async def _check_store(svc: ApiServices, key: ApiKey, store: dict[str, Any] | None) -> None:
    if store is not None:  # fail before any work when the target is not usable
        target = _export(store)
        assert target is not None
        await connectors.check_target(svc, key.id, target["connector_id"], target["bucket"],
                                      target["path"])


# --- the result --------------------------------------------------------------------------


async def result_json(svc: ApiServices, request: Request,
                      job: rows.JobRow) -> tuple[int, dict[str, Any]]:
    """``(status, body)``: the job in Compressor.app's shape, what its webhook also POSTs."""
    async with svc.connection() as conn:
        return await result_format.body(conn, job, base_url=svc.base_url(request),
                                        signing_key=svc.signing_key, store=svc.store)


async def _answer(svc: ApiServices, request: Request, job: rows.JobRow) -> JSONResponse:
    status, body = await result_json(svc, request, job)
    headers = {} if body["success"] else {"X-Request-ID": request_id(request)}
    return JSONResponse(body, status_code=status, headers=headers)


async def _submit(svc: ApiServices, request: Request, key: ApiKey, *,
                  file_id: uuid.UUID | None, url: str | None, size: int | None,
                  options: dict[str, Any], webhook_url: str | None,
                  store: dict[str, Any] | None) -> JSONResponse:
    job, _ = await create_job(svc, key, file_id=file_id, url=url, options=options,
                              webhook_url=webhook_url, webhook_format=result_format.NAME,
                              export=_export(store))
    asynchronous = bool(webhook_url) or (size is not None and size > svc.config.service.sync_max_bytes)
    if not asynchronous:
        job = await wait_for(svc, job, svc.config.service.sync_wait_seconds)
    if not job.ended:
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
        seconds = float(wait) if wait else svc.config.service.sync_wait_seconds
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
