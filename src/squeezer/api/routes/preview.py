"""``/v1/files/{id}/preview``: one page of a stored PDF as a PNG, for the web page's comparison.

Rendering is engine work on an untrusted file, so it never happens in the
API's event loop or its process: the blob is copied to a private temporary
file, and :func:`squeezer.jobs.preview.render_isolated` renders one page in
a child process under a time and memory cap, from a thread.  At most
:data:`CONCURRENT_RENDERS` renders run at once per API process; the rest wait
their turn.  A file and its id never change, so the PNG may be cached by the
caller's browser.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from squeezer.api.auth import caller
from squeezer.api.errors import ApiError
from squeezer.api.routes.files import live_file
from squeezer.api.state import ApiServices, services
from squeezer.db.keys import ApiKey
from squeezer.engines.pdf.render import MAX_WIDTH
from squeezer.errors import SqueezerError
from squeezer.jobs.preview import render_isolated

router = APIRouter(prefix="/v1/files", tags=["files"])

#: Renders one API process runs at once (each is a child process using up to a CPU).
CONCURRENT_RENDERS = 2

#: a renderer that crashed says the file is broken, not the server: no 500 for a preview
_STATUS = {"processing_crashed": 422}


def _slots(request: Request) -> asyncio.Semaphore:
    """This app's render slots (made on first use, in the app's event loop)."""
    slots = getattr(request.app.state, "preview_slots", None)
    if slots is None:
        slots = request.app.state.preview_slots = asyncio.Semaphore(CONCURRENT_RENDERS)
    return slots


@router.get("/{file_id}/preview", summary="A page of a stored PDF as a PNG (for previews)",
            responses={200: {"content": {"image/png": {}}}})
async def preview(file_id: uuid.UUID, request: Request,
                  page: int = Query(1, ge=1, le=100_000, description="1-based page number"),
                  width: int = Query(600, ge=16, le=MAX_WIDTH, description="pixels"),
                  password: str | None = Header(None, alias="X-Squeezer-Password",
                                                max_length=1024,
                                                description="to open an encrypted PDF"),
                  svc: ApiServices = Depends(services),
                  key: ApiKey = Depends(caller)) -> Response:
    row = await live_file(svc, key, file_id)
    if row.mime != "application/pdf":
        raise ApiError(415, "previews are made of PDFs only", code="unsupported_format")
    async with _slots(request):
        with tempfile.TemporaryDirectory(prefix="squeezer-preview-") as scratch:
            src = Path(scratch) / "input.pdf"
            await svc.store.get_to_file(row.blob_key, src)
            try:
                png = await asyncio.to_thread(render_isolated, src, page, width, password)
            except SqueezerError as exc:
                raise ApiError(_STATUS.get(exc.code, exc.http_status), exc.message,
                               code=exc.code) from None
    return Response(png, media_type="image/png", headers={
        "Cache-Control": "private, max-age=3600",
        "ETag": f'"{row.sha256[:32]}-{page}-{width}"',
        "X-Content-Type-Options": "nosniff",
    })
