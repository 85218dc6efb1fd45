"""The routes and error shape of the passportpdf protocol (see the package's docstring)."""

from __future__ import annotations

import base64
import binascii
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from squeezer.api import jsonbody
from squeezer.api.auth import RATE_SCOPE, authenticate
from squeezer.api.bodylimit import allow_body
from squeezer.api.compat._vendor import lower_keys, vendor_route
from squeezer.api.compat.passportpdf import queries as documents
from squeezer.api.compat.passportpdf.options import (
    REMOVALS,
    invalid,
    reduce_options,
    warning,
)
from squeezer.api.errors import ApiError, method_not_allowed, request_id
from squeezer.api.jobflow import create_job, wait_for
from squeezer.api.routes.files import upload_key
from squeezer.api.state import ApiServices, services
from squeezer.api.uploads import check_declared_length, receive_upload, sniff_mime
from squeezer.db import files as file_rows
from squeezer.db import jobs as rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey
from squeezer.errors import status_of
from squeezer.net import sanitize_filename

#: Squeezer's error codes -> PassportPDF's status names
_CODES = {
    "invalid_password": "PdfCanNotBeDecrypted", "password_required": "PdfCanNotBeDecrypted",
    "not_a_pdf": "PdfCanNotOpenFile", "pdf_invalid": "PdfCanNotOpenFile",
    "unsupported_format": "PdfCanNotOpenFile",
    "timeout": "ActionTimedOut", "action_timed_out": "ActionTimedOut",
    "too_many_pages": "CanNotReducePDF", "image_too_large": "CanNotReducePDF",
    "decompression_limit": "CanNotReducePDF", "memory_limit": "CanNotReducePDF",
    "processing_crashed": "CanNotReducePDF", "input_too_large": "CanNotReducePDF",
    "empty_parameter": "EmptyParameter", "no_endpoint": "NotImplemented",
    "url_not_allowed": "InvalidParameter", "source_too_large": "ActionExecutionRejected",
    "source_timeout": "FileNotFound", "source_unreachable": "FileNotFound",
    "source_http_error": "FileNotFound", "source_too_many_redirects": "FileNotFound",
    "input_gone": "FileNotFound", "too_large": "ActionExecutionRejected",
}
_STATUS = {401: "InvalidAPIKey", 429: "NotEnoughTokens", 404: "FileNotFound",
           410: "FileNotFound", 400: "InvalidParameter", 415: "InvalidParameter",
           422: "InvalidParameter", 413: "ActionExecutionRejected"}
#: RemainingTokens when the server has no rate limit
UNLIMITED_TOKENS = 2**31 - 1
#: the longest a Reduce or a load holds its answer (PassportPDF answers when done)
MAX_HOLD_SECONDS = 900.0


def result_code(err: ApiError) -> str:
    return _CODES.get(err.code) or _STATUS.get(err.status) or "GenericError"


def _tokens(request: Request) -> int:
    """The key's remaining requests; an unknown key (InvalidAPIKey) has none when the server
    counts requests, and only a server without a rate limit is "unlimited"."""
    decision = request.scope.get(RATE_SCOPE)
    if decision is not None:
        return decision.remaining
    svc = getattr(request.app.state, "services", None)
    return 0 if svc is not None and svc.config.service.rate_limit else UNLIMITED_TOKENS


def _error(request: Request, err: ApiError) -> JSONResponse:
    message = err.message
    if err.errors:
        message += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in err.errors)
    body = {"Error": {"ResultCode": result_code(err), "ExtResultStatus": err.code,
                      "ExtResultMessage": message, "InternalErrorId": request_id(request)},
            "RemainingTokens": _tokens(request)}
    headers = {k: v for k, v in err.headers.items() if k.lower() != "www-authenticate"}
    headers["X-Request-ID"] = request_id(request)
    # a wrong method is an HTTP matter (405 with Allow), answered before PassportPDF's own layer
    return JSONResponse(body, status_code=405 if err.status == 405 else 200, headers=headers)


router = APIRouter(prefix="/api", tags=["compat: PassportPDF"], route_class=vendor_route(_error))


async def _caller(request: Request, svc: ApiServices = Depends(services)) -> ApiKey:
    return await authenticate(request, svc, secret=request.headers.get("x-passportpdf-api-key"))


def _ok(request: Request, **fields: Any) -> JSONResponse:
    return JSONResponse({"Error": None, "RemainingTokens": _tokens(request), **fields})




def _empty(field: str) -> ApiError:
    return ApiError(400, f"the parameter {field} is required", code="empty_parameter")


async def _body(request: Request) -> dict[str, Any]:
    """The JSON body with lower-cased keys (PassportPDF accepts any casing)."""
    try:
        body = jsonbody.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the request body must be a JSON object", code="invalid_json")
    return lower_keys(body)  # type: ignore[return-value]


# --- documents ---------------------------------------------------------------------------


async def _document(svc: ApiServices, key: ApiKey, body: dict[str, Any]
                    ) -> tuple[documents.Document, file_rows.FileRow]:
    """The caller's open document named by ``FileId``, and its current file."""
    raw = body.get("fileid")
    if raw in (None, ""):
        raise _empty("FileId")
    try:
        file_id = uuid.UUID(str(raw))
    except ValueError:
        raise ApiError(404, "no such document", code="not_found") from None
    async with svc.connection() as conn:
        doc = await documents.find(conn, key.id, file_id)
        current = await file_rows.find_file(conn, key.id, doc.current_file_id) if doc else None
    if doc is None or current is None:
        raise ApiError(404, "no such document (never loaded, closed, or expired)",
                       code="not_found")
    if current.deleted_at is not None or current.expires_at <= datetime.now(UTC):
        raise ApiError(410, "this document has expired", code="gone")
    return doc, current


async def _hold(svc: ApiServices, job: rows.JobRow) -> rows.JobRow:
    """Wait until the job ends (PassportPDF answers when the work is done), bounded."""
    deadline = time.monotonic() + MAX_HOLD_SECONDS
    while not job.ended and time.monotonic() < deadline:
        job = await wait_for(svc, job, min(60.0, deadline - time.monotonic()))
        if not job.ended and svc.config.service.max_wait_seconds <= 0:
            break
    if not job.ended:
        raise ApiError(504, "the action did not finish in time", code="action_timed_out")
    return job


def _job_error(job: rows.JobRow) -> ApiError:
    code = job.error_code or job.state
    return ApiError(status_of(code), job.error_message or f"the job {job.state}",
                    code=code)


async def _open(svc: ApiServices, request: Request, key: ApiKey, *,
                file_id: uuid.UUID | None = None, url: str | None = None,
                name: str | None = None) -> JSONResponse:
    """Load: a lossless job checks that the PDF opens and counts its pages; then the row."""
    job, _ = await create_job(svc, key, file_id=file_id, url=url, options={"level": "lossless"})
    job = await _hold(svc, job)
    if job.input_file_id is None:  # a URL that could not be fetched
        raise _job_error(job)
    if job.state != JobState.succeeded and job.error_code not in ("password_required",
                                                           "invalid_password"):
        await _delete_files(svc, [job.input_file_id, job.output_file_id])
        raise _job_error(job)
    pages = (job.report or {}).get("pages") if job.state == JobState.succeeded else None
    async with svc.connection() as conn:
        source = await file_rows.get_file(conn, job.input_file_id)
        assert source is not None
        doc_name = sanitize_filename(name) or source.name
        await documents.insert(conn, key_id=key.id, file_id=source.id, name=doc_name,
                               page_count=pages,
                               versions=[f for f in (source.id, job.output_file_id) if f])
    return _ok(request, FileId=str(source.id), DocumentFormat="PDF", PageCount=pages or 0)


async def _store_bytes(svc: ApiServices, key: ApiKey, data: bytes, name: str) -> uuid.UUID:
    if sniff_mime(data[:1024]) is None:
        raise ApiError(415, "the document is not a PDF", code="unsupported_format")
    file_id = uuid.uuid4()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 1 << 20):
            yield data[i:i + (1 << 20)]

    stored = await svc.store.put_stream(upload_key(file_id), chunks())
    async with svc.connection() as conn:
        await file_rows.insert_file(conn, file_id=file_id, key_id=key.id, kind="upload", name=name,
                               size=stored.size, mime="application/pdf", sha256=stored.sha256,
                               blob_key=stored.key,
                               ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
    return file_id


async def _delete_files(svc: ApiServices, file_ids: list[uuid.UUID | None]) -> None:
    for file_id in file_ids:
        if file_id is None:
            continue
        async with svc.connection() as conn:
            row = await file_rows.get_file(conn, file_id)
            if row is not None:
                await svc.store.delete(row.blob_key)
                await file_rows.mark_file_deleted(conn, file_id)


@router.post("/document/DocumentLoadFromURI", summary="Load a document from a URL")
async def load_from_uri(request: Request, svc: ApiServices = Depends(services),
                        key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _body(request)
    uri = body.get("uri")
    if uri in (None, ""):
        raise _empty("URI")
    if not isinstance(uri, str) or len(uri) > 8192:
        raise invalid("URI", "must be a URL")
    return await _open(svc, request, key, url=uri.strip(), name=body.get("filename"))


@router.post("/document/DocumentLoadMultipart", summary="Load an uploaded document (fileData)")
async def load_multipart(request: Request, svc: ApiServices = Depends(services),
                         key: ApiKey = Depends(_caller)) -> JSONResponse:
    file_id = uuid.uuid4()
    upload = await receive_upload(request, svc.store, upload_key(file_id),
                                  max_bytes=svc.config.service.max_upload_bytes, file_field="fileData")
    fields = {k.lower(): v for k, v in upload.fields.items()}
    name = sanitize_filename(fields.get("filename")) or upload.name
    async with svc.connection() as conn:
        await file_rows.insert_file(conn, file_id=file_id, key_id=key.id, kind="upload", name=name,
                               size=upload.stored.size, mime=upload.mime,
                               sha256=upload.stored.sha256, blob_key=upload.stored.key,
                               ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
    return await _open(svc, request, key, file_id=file_id, name=name)


@router.post("/document/DocumentLoad", summary="Load a document sent as base64 Content")
async def load_base64(request: Request, svc: ApiServices = Depends(services),
                      key: ApiKey = Depends(_caller)) -> JSONResponse:
    limit = svc.config.service.max_upload_bytes
    check_declared_length(request, limit * 4 // 3 + 4096)
    allow_body(request, limit * 4 // 3 + (64 << 10) if limit else 0)  # a file, in base64
    body = await _body(request)
    content = body.get("content")
    if content in (None, ""):
        raise _empty("Content")
    if not isinstance(content, str):
        raise invalid("Content", "must be a base64 string")
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Content", "not valid base64") from None
    if limit and len(data) > limit:
        raise ApiError(413, f"the document is larger than the limit of {limit} bytes",
                       code="too_large")
    name = sanitize_filename(body.get("filename")) or "document.pdf"
    file_id = await _store_bytes(svc, key, data, name)
    return await _open(svc, request, key, file_id=file_id, name=name)


async def _pdf_version(svc: ApiServices, row: file_rows.FileRow) -> bytes:
    reader = await svc.store.open_range(row.blob_key, 0, min(row.size, 1024) or 1)
    try:
        head = b"".join([chunk async for chunk in reader])
    finally:
        await reader.aclose()
    at = head.find(b"%PDF-")
    return head[at + 5:at + 8] if at >= 0 else b""


@router.post("/pdf/Reduce", summary="Reduce the document in place")
async def reduce(request: Request, svc: ApiServices = Depends(services),
                 key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _body(request)
    doc, current = await _document(svc, key, body)
    options, warnings = reduce_options(body)
    job, _ = await create_job(svc, key, file_id=current.id, options=options)
    job = await _hold(svc, job)
    if job.state != JobState.succeeded or job.output_file_id is None:
        raise _job_error(job)
    async with svc.connection() as conn:
        output = await file_rows.get_file(conn, job.output_file_id)
    if output is None:
        raise ApiError(410, "the result has expired", code="gone")
    async with svc.connection() as conn:
        await documents.add_version(conn, key.id, doc.file_id, output.id)
    report = job.report or {}
    if report.get("original_kept"):
        warnings.append(warning("FileSizeReductionFailure", "the document could not be made "
                                 "smaller: its content is unchanged"))
    removed = any(options.get(o) for o in REMOVALS.values())
    changed = await _pdf_version(svc, current) != await _pdf_version(svc, output)
    return _ok(request, ContentRemoved=bool(removed), VersionChanged=changed,
               NewFileSize=output.size, WarningsInfo=warnings)


@router.post("/pdf/SaveDocument", summary="The document's current content, base64")
async def save_document(request: Request, svc: ApiServices = Depends(services),
                        key: ApiKey = Depends(_caller)) -> JSONResponse:
    doc, current = await _document(svc, key, await _body(request))
    data = b"".join([chunk async for chunk in svc.store.stream(current.blob_key)])
    return _ok(request, Data=base64.b64encode(data).decode("ascii"), FileName=doc.name)


@router.post("/document/DocumentClose", summary="Delete the document and all its versions")
async def close_document(request: Request, svc: ApiServices = Depends(services),
                         key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _body(request)
    try:
        doc, _ = await _document(svc, key, body)
        file_id = doc.file_id
    except ApiError as exc:
        if exc.status != 410:
            raise
        file_id = uuid.UUID(str(body["fileid"]))
    async with svc.connection() as conn:
        versions = await documents.delete(conn, key.id, file_id)
    await _delete_files(svc, list(versions))
    return _ok(request)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                  include_in_schema=False)
async def unknown(rest: str, request: Request) -> None:
    raise method_not_allowed(request) or ApiError(
        404, "no such endpoint in this PassportPDF-compatible API", code="no_endpoint")
