"""Direct-to-bucket transfers: large files go between the client and the bucket, not the API.

With a bucket (S3, GCS, Azure) as storage, ``POST /v1/uploads`` hands out a
presigned ``PUT`` URL (obstore's signing) and a token; the client uploads the
bytes straight to the bucket and then calls ``POST /v1/uploads/complete`` with
the token, which checks the blob (size limit, content type from its first
bytes) and records it as a file like any upload.  Downloads of large files
are redirected to presigned ``GET`` URLs (:func:`direct_download`).  With the
local default storage, uploads answer 409 and downloads stream as before.

The token carries what the second call needs (caller, file id, name, expiry)
under an HMAC of the deployment's secret key, so any API process can complete
an upload another one started, with no table of pending uploads.  A file
uploaded this way has no ``sha256`` until a worker reads it (its bytes never
passed through the API).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from squeezer.api.auth import caller
from squeezer.api.errors import ApiError
from squeezer.api.routes.files import upload_key
from squeezer.api.state import ApiServices, services
from squeezer.api.uploads import SNIFF_BYTES, sniff_mime
from squeezer.db import files as file_rows
from squeezer.db.keys import ApiKey
from squeezer.jobs.payload import file_json
from squeezer.net import sanitize_filename
from squeezer.storage import BlobNotFound

router = APIRouter(prefix="/v1/uploads", tags=["files"])
#: a presigned download is valid this long (or until the file expires, if sooner)
DOWNLOAD_SECONDS = 3600


class DirectUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(..., min_length=1, max_length=255, description="the file's name")
    size: int | None = Field(None, ge=0, description="its size in bytes, when known: refused "
                             "at once if above the upload limit")


class CompleteUpload(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: str = Field(..., max_length=2048, description="the token POST /v1/uploads gave")


def _mac(secret: bytes, payload: bytes) -> str:
    return hmac.new(secret, b"direct-upload:" + payload, hashlib.sha256).hexdigest()


def make_token(secret: bytes, key_id: uuid.UUID, file_id: uuid.UUID, name: str,
               expires: int) -> str:
    payload = json.dumps({"k": str(key_id), "f": str(file_id), "n": name, "e": expires},
                         separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + _mac(secret, payload)


def read_token(secret: bytes, token: str) -> dict[str, str | int]:
    """The token's fields, or 422 when it was not made here (or was altered)."""
    body, _, mac = token.partition(".")
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        fields = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        fields = None
    if not isinstance(fields, dict) or not hmac.compare_digest(_mac(secret, payload), mac):
        raise ApiError(422, "this upload token is not valid", code="invalid_token",
                       errors=[{"field": "token", "message": "not valid"}])
    return fields


def _unavailable() -> ApiError:
    return ApiError(409, "direct uploads need a bucket (S3, GCS or Azure) as storage; "
                    "upload with POST /v1/files", code="direct_upload_unavailable")


@router.post("", status_code=201, summary="Get a presigned URL to upload a large file to the "
             "bucket directly")
async def start_upload(body: DirectUpload, svc: ApiServices = Depends(services),
                       key: ApiKey = Depends(caller)) -> dict:
    if not svc.store.can_sign:
        raise _unavailable()
    limit = svc.config.service.max_upload_bytes
    if limit and body.size is not None and body.size > limit:
        raise ApiError(413, f"the upload is larger than the limit of {limit} bytes",
                       code="too_large")
    file_id = uuid.uuid4()
    seconds = svc.config.service.direct_upload_seconds
    url = await svc.store.signed_url(upload_key(file_id), seconds, method="PUT")
    if url is None:
        raise _unavailable()
    expires = int(time.time()) + seconds
    name = sanitize_filename(body.name) or "upload"
    return {"file_id": str(file_id), "method": "PUT", "url": url,
            "token": make_token(svc.signing_key, key.id, file_id, name, expires),
            "expires_at": datetime.fromtimestamp(expires, UTC).isoformat().replace("+00:00", "Z"),
            "max_bytes": limit or None}


@router.post("/complete", status_code=201, summary="Record a file uploaded to a presigned URL")
async def complete_upload(body: CompleteUpload, svc: ApiServices = Depends(services),
                          key: ApiKey = Depends(caller)) -> dict:
    fields = read_token(svc.signing_key, body.token)
    if fields.get("k") != str(key.id):
        raise ApiError(422, "this upload token is not valid", code="invalid_token",
                       errors=[{"field": "token", "message": "not valid"}])
    # the URL may have been used until its last second; the upload takes a while after that
    if int(fields["e"]) + 3600 < time.time():
        raise ApiError(410, "this upload token has expired", code="link_expired")
    file_id = uuid.UUID(str(fields["f"]))
    async with svc.connection() as conn:
        existing = await file_rows.find_file(conn, key.id, file_id)
    if existing is not None:  # completed already (a retried call): the same answer
        return file_json(existing)
    blob = upload_key(file_id)
    try:
        info = await svc.store.head(blob)
    except BlobNotFound:
        raise ApiError(409, "nothing was uploaded to this URL yet", code="upload_missing") from None
    limit = svc.config.service.max_upload_bytes
    if limit and info.size > limit:
        await svc.store.delete(blob)
        raise ApiError(413, f"the upload is larger than the limit of {limit} bytes",
                       code="too_large")
    head = b""
    if info.size:
        reader = await svc.store.open_range(blob, 0, min(info.size, SNIFF_BYTES))
        try:
            async for chunk in reader:
                head += chunk
        finally:
            await reader.aclose()
    mime = sniff_mime(head)
    if mime is None:
        await svc.store.delete(blob)
        raise ApiError(415, "unsupported file type: send a PDF or an image (JPEG, PNG, GIF, "
                       "WebP, AVIF, HEIC, TIFF, BMP, SVG)", code="unsupported_format")
    async with svc.connection() as conn:
        row = await file_rows.insert_file(
            conn, file_id=file_id, key_id=key.id, kind="upload", name=str(fields["n"]),
            size=info.size, mime=mime, sha256="", blob_key=blob,
            ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
    return file_json(row)


async def direct_download(request: Request, svc: ApiServices,
                          row: file_rows.FileRow) -> RedirectResponse | None:
    """A redirect to a presigned URL of the bucket for a large file; None to stream it here."""
    threshold = svc.config.service.direct_min_bytes
    if (not threshold or row.size < threshold or request.method != "GET"
            or not svc.store.can_sign):
        return None
    left = (row.expires_at - datetime.now(UTC)).total_seconds()
    seconds = int(min(DOWNLOAD_SECONDS, left))
    if seconds < 1:
        return None
    url = await svc.store.signed_url(row.blob_key, seconds)
    if url is None:
        return None
    return RedirectResponse(url, status_code=307, headers={"Cache-Control": "private, no-store"})
