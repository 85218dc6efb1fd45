"""``/v1/files``: upload, describe, download and delete stored files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request, Response

from squeezer.api.auth import caller
from squeezer.api.content import send_file
from squeezer.api.errors import gone, not_found
from squeezer.api.state import ApiServices, services
from squeezer.api.uploads import Upload, receive_upload
from squeezer.db import files as file_rows
from squeezer.db.keys import ApiKey
from squeezer.jobs import download_urls
from squeezer.jobs.payload import file_json

router = APIRouter(prefix="/v1/files", tags=["files"])

FILE_EXAMPLE = {"id": "0b5c…", "name": "report.pdf", "size": 1048576, "mime": "application/pdf",
                "sha256": "…", "created_at": "2026-12-02T10:00:00Z",
                "expires_at": "2026-12-02T12:00:00Z"}


def upload_key(file_id: uuid.UUID) -> str:
    return f"uploads/{file_id}"


async def store_upload(request: Request, svc: ApiServices, key: ApiKey
                       ) -> tuple[file_rows.FileRow, Upload]:
    """Stream a multipart upload to storage and record it; the row and the form's fields."""
    file_id = uuid.uuid4()
    limit = svc.config.service.max_upload_bytes
    upload = await receive_upload(request, svc.store, upload_key(file_id), max_bytes=limit)
    async with svc.connection() as conn:
        row = await file_rows.insert_file(
            conn, file_id=file_id, key_id=key.id, kind="upload", name=upload.name,
            size=upload.stored.size, mime=upload.mime, sha256=upload.stored.sha256,
            blob_key=upload.stored.key, ttl=timedelta(seconds=svc.config.service.file_ttl_seconds),
        )
    return row, upload


async def live_file(svc: ApiServices, key: ApiKey, file_id: uuid.UUID) -> file_rows.FileRow:
    """``key``'s file, or 404 (not theirs, never existed) / 410 (expired or deleted)."""
    async with svc.connection() as conn:
        row = await file_rows.find_file(conn, key.id, file_id)
    if row is None:
        raise not_found("file")
    if row.deleted_at is not None or row.expires_at <= datetime.now(UTC):
        raise gone("file")
    return row


@router.post("", status_code=201, summary="Upload a file (multipart, field 'file')",
             responses={201: {"content": {"application/json": {"example": FILE_EXAMPLE}}}})
async def upload_file(request: Request, svc: ApiServices = Depends(services),
                      key: ApiKey = Depends(caller)) -> dict:
    row, _ = await store_upload(request, svc, key)
    return file_json(row)


@router.get("/{file_id}", summary="Describe a stored file")
async def get_file(file_id: uuid.UUID, svc: ApiServices = Depends(services),
                   key: ApiKey = Depends(caller)) -> dict:
    return file_json(await live_file(svc, key, file_id))


@router.head("/{file_id}/content", include_in_schema=False)
@router.get("/{file_id}/content", summary="Download a stored file (Range requests supported)")
async def get_content(file_id: uuid.UUID, request: Request, svc: ApiServices = Depends(services),
                      key: ApiKey = Depends(caller)) -> Response:
    from squeezer.api.routes.direct import direct_download

    row = await live_file(svc, key, file_id)
    return await direct_download(request, svc, row) or await send_file(request, svc.store, row)


@router.get("/{file_id}/link", summary="A signed link to a stored file, valid while it is kept")
async def get_link(file_id: uuid.UUID, request: Request, svc: ApiServices = Depends(services),
                   key: ApiKey = Depends(caller)) -> dict:
    """The ``/v1/downloads`` link a result's job carries, for any of the key's live files: a
    browser's ``<video>`` and ``<audio>`` elements cannot send a key, and stream (with Range
    requests) from a link that needs none."""
    row = await live_file(svc, key, file_id)
    return {"url": download_urls.sign(svc.signing_key, svc.base_url(request), row.id,
                                      row.expires_at),
            "expires_at": file_json(row)["expires_at"]}


@router.delete("/{file_id}", status_code=204, summary="Delete a stored file now")
async def delete_file(file_id: uuid.UUID, svc: ApiServices = Depends(services),
                      key: ApiKey = Depends(caller)) -> Response:
    await forget_upload(svc, await live_file(svc, key, file_id))
    return Response(status_code=204)


async def forget_upload(svc: ApiServices, row: file_rows.FileRow) -> None:
    """Delete an upload whose request turned out to be invalid (nobody can refer to it)."""
    await svc.store.delete(row.blob_key)
    async with svc.connection() as conn:
        await file_rows.mark_file_deleted(conn, row.id)
