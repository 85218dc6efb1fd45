"""What the vendor protocol modules share: every failure answered in the vendor's own shape.

A vendor router sets ``route_class=vendor_route(translate)``: whatever its
handlers raise (Squeezer's :class:`ApiError`, FastAPI's
:class:`RequestValidationError`, an engine, fetch, storage or database error, a
bug) is first turned into the native :class:`ApiError` (status, code,
message, field errors, headers), exactly as the native handlers in
:mod:`squeezer.api.errors` would classify it, and then handed to the
vendor's ``translate``.  The native body never leaves a vendor prefix.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import psycopg
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from squeezer.api.errors import ApiError, request_id, validation_errors
from squeezer.db.errors import DatabaseError
from squeezer.engines.errors import EngineError
from squeezer.net.errors import NetError
from squeezer.storage import StorageError

log = logging.getLogger("squeezer.api.compat")

Translator = Callable[[Request, ApiError], Awaitable[Response] | Response]


def as_api_error(request: Request, exc: BaseException) -> ApiError:
    """``exc`` classified as the native handlers do (status, code, message, errors)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RequestValidationError):
        raw = list(exc.errors())
        if any(err.get("type") == "json_invalid" for err in raw):
            return ApiError(422, "the request body is not valid JSON", code="invalid_json",
                            errors=[{"field": "body", "message": "invalid JSON"}])
        return ApiError(422, "the request is not valid", errors=validation_errors(raw))
    if isinstance(exc, EngineError):
        return ApiError(exc.http_status, exc.message, code=exc.code)
    if isinstance(exc, NetError):
        return ApiError(exc.http_status, exc.message, code=exc.code)
    if isinstance(exc, StorageError):
        if exc.code == "blob_too_large":
            return ApiError(413, "the upload is larger than the limit", code="too_large")
        log.warning("request %s: storage error %s: %s", request_id(request), exc.code, exc)
        return ApiError(503, "the file store is unavailable; try again later",
                        code="storage_unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, (DatabaseError, psycopg.OperationalError)):
        log.warning("request %s: database unavailable: %s", request_id(request), exc)
        return ApiError(503, "the database is unavailable; try again later",
                        code="database_unavailable", headers={"Retry-After": "5"})
    if isinstance(exc, StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        return ApiError(exc.status_code, message, headers=dict(exc.headers or {}))
    log.error("request %s failed", request_id(request), exc_info=exc)
    return ApiError(500, "internal error; the server log has the details under this request id",
                    code="internal_error")


def vendor_route(translate: Translator) -> type[APIRoute]:
    """An ``APIRoute`` class whose handler answers every exception through ``translate``."""

    class VendorRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handler = super().get_route_handler()

            async def guarded(request: Request) -> Response:
                try:
                    return await handler(request)
                except Exception as exc:  # noqa: BLE001 - every failure gets the vendor shape
                    answer = translate(request, as_api_error(request, exc))
                    if isinstance(answer, Awaitable):
                        answer = await answer
                    return answer

            return guarded

    return VendorRoute


def lower_keys(value: object) -> object:
    """A JSON value with every object key lower-cased (for protocols that accept any casing)."""
    if isinstance(value, dict):
        return {str(k).lower(): lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [lower_keys(v) for v in value]
    return value
