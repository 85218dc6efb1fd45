"""The routes and error shape of the compressor protocol (see the package's docstring)."""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from squeezer.api import jsonbody
from squeezer.api.auth import RATE_SCOPE, authenticate
from squeezer.api.compat._vendor import vendor_route
from squeezer.api.compat.compressor import connectors
from squeezer.api.compat.compressor.options import (
    INVALID_JSON,
    VALIDATION_FAILED,
    form_request,
    invalid,
    parse_options,
)
from squeezer.api.errors import ApiError, method_not_allowed, request_id
from squeezer.api.jobflow import create_job, owned_job, wait_for
from squeezer.api.routes.files import store_upload
from squeezer.api.state import ApiServices, services
from squeezer.db import files as file_rows
from squeezer.db import jobs as rows
from squeezer.db.keys import ApiKey
from squeezer.jobs.formats import compressor as result_format


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
        status, message = 422, INVALID_JSON
    elif status == 422 and err.errors:
        message, errors = VALIDATION_FAILED, err.errors
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
        headers.update(_uncounted_rate_headers(request))
    headers["X-Request-ID"] = request_id(request)
    return JSONResponse(body, status_code=status, headers=headers)


def _uncounted_rate_headers(request: Request) -> dict[str, str]:
    """``X-RateLimit-*`` for an answer no key was counted for (a 401): the seed says every
    answer carries them; the limit, all of it remaining, the window's length."""
    if request.scope.get(RATE_SCOPE) is not None:
        return {}  # the middleware adds the key's own
    svc = getattr(request.app.state, "services", None)
    if svc is None or not svc.config.service.rate_limit:
        return {}
    limit = str(svc.config.service.rate_limit)
    return {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": limit,
            "X-RateLimit-Reset": str(svc.config.service.rate_window_seconds)}


router = APIRouter(prefix="/1.0", tags=["compat: Compressor.app"],
                   route_class=vendor_route(_error))


async def _caller(request: Request, svc: ApiServices = Depends(services)) -> ApiKey:
    return await authenticate(request, svc)


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
            await file_rows.mark_file_deleted(conn, row.id)
        raise
    return await _submit(svc, request, key, file_id=row.id, url=None, size=row.size,
                         options=options, webhook_url=webhook_url, store=store)


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = jsonbody.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, INVALID_JSON, code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(422, INVALID_JSON, code="invalid_json")
    return body


def _json_type(value: object) -> str:
    """The JSON name of a value's type, for "must be a string, not a number"."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    return "an array" if isinstance(value, list) else "null"


@router.post("/fetch", summary="Compress a file fetched from a URL")
async def fetch(request: Request, svc: ApiServices = Depends(services),
                key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _json_body(request)
    url = body.get("url")
    if url is None or (isinstance(url, str) and not url.strip()):
        raise invalid("url", "required")
    if not isinstance(url, str):
        raise invalid("url", f"must be a string, not {_json_type(url)}")
    if len(url) > 8192:
        raise invalid("url", "at most 8192 characters")
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
        raise invalid("wait", "a number of seconds") from None
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
async def unknown(rest: str, request: Request) -> None:
    raise method_not_allowed(request) or ApiError(404, "no such endpoint")
