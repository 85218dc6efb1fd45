"""``/v1/downloads/{file_id}``: a result through its signed, expiring link (no API key)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from fastapi import APIRouter, Depends, Query, Request, Response

from squeezer.api.content import send_file
from squeezer.api.errors import ApiError, gone
from squeezer.api.routes.direct import direct_download
from squeezer.api.state import ApiServices, services
from squeezer.db import files as file_rows
from squeezer.jobs import download_urls

router = APIRouter(tags=["files"])


@router.head("/v1/downloads/{file_id}", include_in_schema=False)
@router.get("/v1/downloads/{file_id}", summary="Download a result through its signed link")
async def download(file_id: uuid.UUID, request: Request, expires: int = Query(...),
                   signature: str = Query(..., max_length=128),
                   svc: ApiServices = Depends(services)) -> Response:
    problem = download_urls.verify(svc.signing_key, file_id, expires, signature)
    if problem == "invalid":
        raise ApiError(403, "this download link is not valid", code="invalid_signature")
    if problem == "expired":
        raise ApiError(410, "this download link has expired", code="link_expired")
    async with svc.connection() as conn:
        row = await file_rows.get_file(conn, file_id)
    if row is None or row.expires_at <= datetime.now(UTC):
        raise gone("file")
    return await direct_download(request, svc, row) or await send_file(request, svc.store, row)
