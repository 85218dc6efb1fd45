"""A bound on every request body, counted as it arrives.

Without it, a route that reads its body (``await request.body()``, FastAPI's
JSON parsing) holds whatever a client sends: a 300 MB JSON body grew the API
to 1.3 GB.  Every request gets the small JSON limit
(``SQUEEZER_MAX_JSON_BYTES``) unless the code that reads its body raises it
for itself, knowing what it streams: the multipart uploads (which stream
files into the blob store under their own per-file limit) and PassportPDF's
base64 ``DocumentLoad`` call :func:`allow_body`.  So a new route is bounded
by default.

The count is kept in ``receive``: the moment a chunk takes the body past the
limit (or a ``Content-Length`` says it will), reading raises a 413, which the
route's own error handling answers in its protocol's shape (the native body:
``413``, code ``too_large``), and the rest of the body is never read.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the scope key holding the current request's limit in bytes (0: none)
LIMIT_SCOPE = "squeezer.body_limit"


def allow_body(request: Request, max_bytes: int) -> None:
    """Let this request's body be up to ``max_bytes`` (0: no limit of this layer's own; the
    caller enforces one while it streams)."""
    request.scope[LIMIT_SCOPE] = max_bytes


def too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"the request body is larger than the limit of {limit} bytes")


class BodyLimit:
    """ASGI middleware: :data:`LIMIT_SCOPE` set to ``max_bytes`` and enforced in ``receive``."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[LIMIT_SCOPE] = self.max_bytes
        declared: int | None = None
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit():
                declared = int(value)
        received = 0

        async def limited() -> Message:
            nonlocal received
            limit = int(scope.get(LIMIT_SCOPE) or 0)
            if limit and declared is not None and declared > limit:
                raise too_large(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if limit and received > limit:
                    raise too_large(limit)
            return message

        await self.app(scope, limited, send)
