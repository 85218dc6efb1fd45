"""One error shape for every answer that is not a success.

``{"success": false, "status": 404, "id": "<request id>", "code": "not_found",
"message": "..."}`` (plus ``errors: [{field, message}]`` for validation), the
``id`` repeated in ``X-Request-ID``.  Whatever goes wrong inside (a bug, a
database outage) the client gets this shape and a status, never a traceback:
outages are 503, bugs are a 500 whose details stay in the server log under
the same request id.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from squeezer.db.errors import DatabaseError
from squeezer.engines.errors import EngineError
from squeezer.net.errors import NetError
from squeezer.storage import StorageError

log = logging.getLogger("squeezer.api")

_STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                 405: "method_not_allowed", 408: "request_timeout", 409: "conflict", 410: "gone", 411: "length_required",
                 413: "too_large", 415: "unsupported_media_type", 416: "range_not_satisfiable",
                 422: "invalid_request", 429: "rate_limited", 500: "internal_error",
                 503: "unavailable"}


class ApiError(Exception):
    """An answer with the uniform error body; raise it from any route or dependency."""

    def __init__(self, status: int, message: str, *, code: str | None = None,
                 errors: list[dict[str, str]] | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _STATUS_CODES.get(status, "error")
        self.errors = errors
        self.headers = headers or {}
        self.extra = extra or {}


def allow_header(request: Request) -> dict[str, str]:
    """``Allow`` for a 405: every method the API documents for the path (Starlette's own
    names only the methods of the first route that matched)."""
    from squeezer.api.openapi import allowed_methods

    methods = allowed_methods(request.app, request.url.path)
    return {"Allow": ", ".join(methods)} if methods else {}


def method_not_allowed(request: Request) -> ApiError | None:
    """A 405 with ``Allow`` when the path exists with other methods (vendor catch-alls)."""
    allow = allow_header(request)
    if not allow:
        return None
    return ApiError(405, f"{request.method} is not allowed here", headers=allow)


def not_found(what: str = "resource") -> ApiError:
    return ApiError(404, f"no such {what}")


def gone(what: str) -> ApiError:
    return ApiError(410, f"this {what} has expired or was deleted")


def request_id(request: Request) -> str:
    return request.scope.get("squeezer.request_id", "")


def error_body(request: Request, status: int, message: str, code: str,
               errors: list[dict[str, str]] | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"success": False, "status": status, "id": request_id(request),
                            "code": code, "message": message}
    if errors is not None:
        body["errors"] = errors
    if extra:
        body.update(extra)
    return body


def _respond(request: Request, status: int, message: str, code: str, *,
             errors: list[dict[str, str]] | None = None,
             headers: Mapping[str, str] | None = None,
             extra: dict[str, Any] | None = None) -> JSONResponse:
    headers = {**(headers or {}), "X-Request-ID": request_id(request)}
    return JSONResponse(error_body(request, status, message, code, errors, extra),
                        status_code=status, headers=headers)


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "form")]
    return ".".join(parts) or "body"


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """pydantic's error list as ``[{field, message}]``."""
    out = []
    for err in raw:
        message = err.get("msg", "invalid")
        message = message.removeprefix("Value error, ")
        out.append({"field": _field(tuple(err.get("loc", ()))), "message": message})
    return out


def install(app: FastAPI) -> None:
    """Register the handlers that turn every exception into the uniform body."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _respond(request, exc.status, exc.message, exc.code, errors=exc.errors,
                        headers=exc.headers, extra=exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        raw = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in raw):
            return _respond(request, 422, "the request body is not valid JSON", "invalid_json",
                            errors=[{"field": "body", "message": "invalid JSON"}])
        return _respond(request, 422, "the request is not valid", "invalid_request",
                        errors=validation_errors(raw))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "no such endpoint"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            message = f"{request.method} is not allowed here"
            headers.update(allow_header(request))
        return _respond(request, exc.status_code, message,
                        _STATUS_CODES.get(exc.status_code, "error"), headers=headers)

    @app.exception_handler(EngineError)
    async def _engine(request: Request, exc: EngineError) -> JSONResponse:
        return _respond(request, exc.http_status, exc.message, exc.code)

    @app.exception_handler(NetError)
    async def _net(request: Request, exc: NetError) -> JSONResponse:
        return _respond(request, exc.http_status, exc.message, exc.code)

    @app.exception_handler(StorageError)
    async def _storage(request: Request, exc: StorageError) -> JSONResponse:
        if exc.code == "blob_too_large":
            return _respond(request, 413, "the upload is larger than the limit", "too_large")
        log.warning("request %s: storage error %s: %s", request_id(request), exc.code, exc)
        return _respond(request, 503, "the file store is unavailable; try again later",
                        "storage_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(DatabaseError)
    @app.exception_handler(psycopg.OperationalError)
    async def _database(request: Request, exc: Exception) -> JSONResponse:
        log.warning("request %s: database unavailable: %s", request_id(request), exc)
        return _respond(request, 503, "the database is unavailable; try again later",
                        "database_unavailable", headers={"Retry-After": "5"})

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("request %s failed", request_id(request))
        return _respond(request, 500, "internal error; the server log has the details under "
                        "this request id", "internal_error")
