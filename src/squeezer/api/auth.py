"""API keys on every request, and the per-key rate limit.

A key is accepted as ``Authorization: Bearer KEY``, as HTTP Basic with the key
as user name (``curl -u KEY:``, the Compressor.app/Tinify style) or as
``x-api-key: KEY``.  Unknown, revoked and malformed keys get one identical
401, so a caller learns nothing about which keys exist.  Each authenticated
request counts against its key's window in PostgreSQL (shared by every API
process); the decision travels in the ASGI scope so that the middleware can
put ``X-RateLimit-*`` on whatever the route answers, errors included.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fastapi import Depends, Request

from squeezer.api.errors import ApiError
from squeezer.api.state import ApiServices, services
from squeezer.db import ratelimit
from squeezer.db.keys import ApiKey

RATE_SCOPE = "squeezer.ratelimit"
_UNAUTHORIZED = "missing or invalid API key"


def presented_key(request: Request) -> str | None:
    """The key the request carries, in any of the accepted forms (not yet checked)."""
    header = request.headers.get("authorization", "").strip()
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if scheme.lower() == "basic" and value.strip():
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return user or password or None
    api_key = request.headers.get("x-api-key", "").strip()
    return api_key or None


def unauthorized() -> ApiError:
    return ApiError(401, _UNAUTHORIZED, headers={"WWW-Authenticate": 'Bearer realm="squeezer"'})


async def authenticate(request: Request, svc: ApiServices, secret: str | None = None) -> ApiKey:
    """The caller's live key, counted against its rate limit; 401 or 429 otherwise.

    ``secret`` is for protocols that carry the key in a header of their own
    (e.g. ``X-PassportPDF-API-Key``); by default the accepted forms are read.
    """
    secret = secret if secret is not None else presented_key(request)
    limit = svc.config.service.rate_limit
    async with svc.connection() as conn:
        key, decision = await ratelimit.authenticate_and_hit(
            conn, secret, limit, svc.config.service.rate_window_seconds)
    if key is None:
        raise unauthorized()
    if decision is not None:
        request.scope[RATE_SCOPE] = decision
        if not decision.allowed:
            retry = decision.retry_after(datetime.now(UTC))
            raise ApiError(429, f"rate limit of {decision.limit} requests per "
                           f"{svc.config.service.rate_window_seconds} s exceeded; retry in {retry} s",
                           headers={"Retry-After": str(retry)})
    request.scope["squeezer.key"] = key
    return key


async def caller(request: Request, svc: ApiServices = Depends(services)) -> ApiKey:
    """FastAPI dependency: the authenticated key of this request."""
    return await authenticate(request, svc)


def rate_headers(scope: Mapping[str, Any]) -> list[tuple[bytes, bytes]]:
    decision = scope.get(RATE_SCOPE)
    if decision is None:
        return []
    return [
        (b"x-ratelimit-limit", str(decision.limit).encode()),
        (b"x-ratelimit-remaining", str(decision.remaining).encode()),
        # seconds left in the window (Compressor.app's meaning, seed 001)
        (b"x-ratelimit-reset", str(decision.retry_after(datetime.now(UTC))).encode()),
    ]
