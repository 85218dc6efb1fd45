"""PassportPDF's API (``/api``, seed 004): load a document, Reduce it in place, save, close.

A client written for ``https://passportpdfapi.com/api`` works against
``https://squeezer.example/api`` with a Squeezer key in ``X-PassportPDF-API-Key``.
PassportPDF keeps a loaded document on the server and changes it in place; here
a document is a row of ``compat_passportpdf_documents`` (migration 0005): its
``FileId`` is the Squeezer file id of the loaded upload, and ``current_file_id``
the file that is its content now.  Loading runs a lossless native job on the
upload (the engine, in its sandboxed child, checks that the PDF opens and counts
its pages; the API process never parses a PDF).  ``Reduce`` is one native job on
the current version, whose result becomes the current version; ``SaveDocument``
answers it in base64; ``DocumentClose`` deletes every version.

Every answer is HTTP 200 with ``Error`` null or ``{ResultCode, ExtResultStatus,
ExtResultMessage, InternalErrorId}`` in PassportPDF's status names; field names
are PascalCase on the wire and any casing is accepted on input.
"""

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

from squeezer.api.auth import RATE_SCOPE, authenticate
from squeezer.api.compat._vendor import lower_keys, vendor_route
from squeezer.api.errors import ApiError, request_id
from squeezer.errors import status_of
from squeezer.api.jobflow import create_job, engine_options, wait_for
from squeezer.api.routes.files import upload_key
from squeezer.api.state import ApiServices, services
from squeezer.api.uploads import check_declared_length, receive_upload, sniff_mime
from squeezer.db import jobs as rows
from squeezer.db.keys import ApiKey
from squeezer.engines.level import Level
from squeezer.engines.pdf.options import LEVELS, PdfOptions
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
    decision = request.scope.get(RATE_SCOPE)
    return decision.remaining if decision is not None else UNLIMITED_TOKENS


def _error(request: Request, err: ApiError) -> JSONResponse:
    message = err.message
    if err.errors:
        message += ": " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in err.errors)
    body = {"Error": {"ResultCode": result_code(err), "ExtResultStatus": err.code,
                      "ExtResultMessage": message, "InternalErrorId": request_id(request)},
            "RemainingTokens": _tokens(request)}
    headers = {k: v for k, v in err.headers.items() if k.lower() != "www-authenticate"}
    headers["X-Request-ID"] = request_id(request)
    return JSONResponse(body, status_code=200, headers=headers)


router = APIRouter(prefix="/api", tags=["compat: PassportPDF"], route_class=vendor_route(_error))


async def _caller(request: Request, svc: ApiServices = Depends(services)) -> ApiKey:
    return await authenticate(request, svc, secret=request.headers.get("x-passportpdf-api-key"))


def _ok(request: Request, **fields: Any) -> JSONResponse:
    return JSONResponse({"Error": None, "RemainingTokens": _tokens(request), **fields})


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"invalid parameter {field}", code="invalid_parameter",
                    errors=[{"field": field, "message": message}])


def _empty(field: str) -> ApiError:
    return ApiError(400, f"the parameter {field} is required", code="empty_parameter")


async def _body(request: Request) -> dict[str, Any]:
    """The JSON body with lower-cased keys (PassportPDF accepts any casing)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(422, "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(422, "the request body must be a JSON object", code="invalid_json")
    return lower_keys(body)  # type: ignore[return-value]


# --- documents ---------------------------------------------------------------------------


async def _document(svc: ApiServices, key: ApiKey, body: dict[str, Any]
                    ) -> tuple[dict[str, Any], rows.FileRow]:
    """The caller's open document named by ``FileId``, and its current file."""
    raw = body.get("fileid")
    if raw in (None, ""):
        raise _empty("FileId")
    try:
        file_id = uuid.UUID(str(raw))
    except ValueError:
        raise ApiError(404, "no such document", code="not_found") from None
    async with svc.connection() as conn:
        cur = await conn.execute(
            "select file_id, current_file_id, name, page_count, versions "
            "from compat_passportpdf_documents where file_id = %s and key_id = %s",
            (file_id, key.id))
        row = await cur.fetchone()
        current = await rows.find_file(conn, key.id, row[1]) if row else None
    if row is None or current is None:
        raise ApiError(404, "no such document (never loaded, closed, or expired)",
                       code="not_found")
    if current.deleted_at is not None or current.expires_at <= datetime.now(UTC):
        raise ApiError(410, "this document has expired", code="gone")
    doc = {"file_id": row[0], "current_file_id": row[1], "name": row[2], "page_count": row[3],
           "versions": list(row[4])}
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
    if job.state != "succeeded" and job.error_code not in ("password_required",
                                                           "invalid_password"):
        await _delete_files(svc, [job.input_file_id, job.output_file_id])
        raise _job_error(job)
    pages = (job.report or {}).get("pages") if job.state == "succeeded" else None
    async with svc.connection() as conn:
        source = await rows.get_file(conn, job.input_file_id)
        assert source is not None
        doc_name = sanitize_filename(name) or source.name
        await conn.execute(
            "insert into compat_passportpdf_documents (file_id, key_id, current_file_id, name, "
            "page_count, versions) values (%s, %s, %s, %s, %s, %s)",
            (source.id, key.id, source.id, doc_name, pages,
             [f for f in (source.id, job.output_file_id) if f]))
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
        await rows.insert_file(conn, file_id=file_id, key_id=key.id, kind="upload", name=name,
                               size=stored.size, mime="application/pdf", sha256=stored.sha256,
                               blob_key=stored.key,
                               ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
    return file_id


async def _delete_files(svc: ApiServices, file_ids: list[uuid.UUID | None]) -> None:
    for file_id in file_ids:
        if file_id is None:
            continue
        async with svc.connection() as conn:
            row = await rows.get_file(conn, file_id)
            if row is not None:
                await svc.store.delete(row.blob_key)
                await rows.mark_file_deleted(conn, file_id)


@router.post("/document/DocumentLoadFromURI", summary="Load a document from a URL")
async def load_from_uri(request: Request, svc: ApiServices = Depends(services),
                        key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _body(request)
    uri = body.get("uri")
    if uri in (None, ""):
        raise _empty("URI")
    if not isinstance(uri, str) or len(uri) > 8192:
        raise _invalid("URI", "must be a URL")
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
        await rows.insert_file(conn, file_id=file_id, key_id=key.id, kind="upload", name=name,
                               size=upload.stored.size, mime=upload.mime,
                               sha256=upload.stored.sha256, blob_key=upload.stored.key,
                               ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
    return await _open(svc, request, key, file_id=file_id, name=name)


@router.post("/document/DocumentLoad", summary="Load a document sent as base64 Content")
async def load_base64(request: Request, svc: ApiServices = Depends(services),
                      key: ApiKey = Depends(_caller)) -> JSONResponse:
    check_declared_length(request, svc.config.service.max_upload_bytes * 4 // 3 + 4096)
    body = await _body(request)
    content = body.get("content")
    if content in (None, ""):
        raise _empty("Content")
    if not isinstance(content, str):
        raise _invalid("Content", "must be a base64 string")
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid("Content", "not valid base64") from None
    limit = svc.config.service.max_upload_bytes
    if limit and len(data) > limit:
        raise ApiError(413, f"the document is larger than the limit of {limit} bytes",
                       code="too_large")
    name = sanitize_filename(body.get("filename")) or "document.pdf"
    file_id = await _store_bytes(svc, key, data, name)
    return await _open(svc, request, key, file_id=file_id, name=name)


# --- Reduce --------------------------------------------------------------------------------

#: PassportPDF ImageQuality -> (Squeezer level, fixed JPEG quality or None)
IMAGE_QUALITY = {"imagequalitylow": ("high", None), "imagequalitymedium": ("medium", None),
                 "imagequalityhigh": ("low", None), "imagequalityveryhigh": ("low", 90)}
#: PassportPDF Remove* flags that are Squeezer engine options of their own
REMOVALS = {"removeformfields": "remove_form_fields", "removeannotations": "remove_annotations",
            "removebookmarks": "remove_bookmarks", "removeembeddedfiles": "remove_embedded_files",
            "removejavascript": "remove_javascript", "removemetadata": "remove_metadata"}
#: PassportPDF's DownscaleResolutionMRC default (SDK ``PdfReduceParameters``)
MRC_RESOLUTION = 100
#: the MRC background resolutions the engine takes (``PdfOptions.mrc_background_dpi``)
_MRC_BOUNDS = {k: getattr(m, k) for m in PdfOptions.model_fields["mrc_background_dpi"].metadata
               for k in ("ge", "le") if getattr(m, k, None) is not None}
MIN_MRC_BACKGROUND_DPI, MAX_MRC_BACKGROUND_DPI = _MRC_BOUNDS["ge"], _MRC_BOUNDS["le"]
OUTPUT_VERSIONS = {"pdfversionretainexisting", "pdfversion14", "pdfversion15", "pdfversion16",
                   "pdfversion17", "pdfversion20"}
_NAMES = {n.lower(): n for n in (
    "FileId", "OutputVersion", "ImageQuality", "RecompressImages", "EnableColorDetection",
    "PackDocument", "PackFonts", "DownscaleImages", "DownscaleResolution", "FastWebView",
    "RemoveFormFields", "RemoveAnnotations", "RemoveBookmarks", "RemoveHyperlinks",
    "RemoveEmbeddedFiles", "RemoveBlankPages", "RemoveJavaScript", "EnableJPEG2000",
    "EnableJBIG2", "EnableCharRepair", "EnableMRC", "PreserveSmoothing",
    "DownscaleResolutionMRC", "RemoveMetadata", "RemovePageThumbnails", "RemovePagePieceInfo",
    "JBIG2PMSThreshold", "Password")}


def _warning(code: str, message: str) -> dict[str, Any]:
    return {"WarningCode": code, "PageNumber": 0, "PageImageNumber": 0,
            "ExtWarningMessage": message}


def reduce_options(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """PassportPDF's Reduce parameters (lower-cased keys) as engine options, plus warnings.

    Every parameter is either honoured or accepted and reported in ``WarningsInfo``;
    docs/compat.md has the table.  Defaults are PassportPDF's (SDK
    ``PdfReduceParameters``): images recompressed and downscaled to 150 dpi.
    """
    warnings: list[dict[str, Any]] = []

    def flag(name: str, default: bool) -> bool:
        value = body.get(name.lower(), default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value in (0, 1):
            return bool(value)
        raise _invalid(name, "must be true or false")

    def number(name: str, default: float, low: float, high: float) -> float:
        value = body.get(name.lower(), default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise _invalid(name, f"must be a number from {low:g} to {high:g}")
        return value

    def given(name: str) -> bool:
        return name.lower() in body

    options: dict[str, Any] = {}
    quality = str(body.get("imagequality") or "ImageQualityMedium").lower()
    if quality not in IMAGE_QUALITY:
        raise _invalid("ImageQuality", "one of ImageQualityLow, ImageQualityMedium, "
                       "ImageQualityHigh, ImageQualityVeryHigh")
    resolution = number("DownscaleResolution", 150, 1, 2400)
    mrc_resolution = number("DownscaleResolutionMRC", MRC_RESOLUTION, 1, 2400)
    number("JBIG2PMSThreshold", 0.85, 0, 1)
    if flag("RecompressImages", True):
        level, fixed = IMAGE_QUALITY[quality]
        options["level"] = level
        if fixed is not None:
            options["image_quality"] = fixed
        if flag("DownscaleImages", True):
            options["dpi"] = max(72, int(resolution))
            if resolution < 72:
                warnings.append(_warning("ImageResizeFailure", f"DownscaleResolution "
                                         f"{resolution:g} is below Squeezer's floor: 72 dpi used"))
        else:
            options["dpi"] = 2400  # i.e. keep every image's resolution
    else:
        options["level"] = "lossless"
        if given("DownscaleImages") and flag("DownscaleImages", True):
            warnings.append(_warning("ImageResizeFailure", "DownscaleImages needs "
                                     "RecompressImages: images were kept as they are"))
    for name, option in REMOVALS.items():
        if flag(name, False):
            options[option] = True
    if flag("FastWebView", False):
        options["linearize"] = True
    version = str(body.get("outputversion") or "PdfVersionRetainExisting").lower()
    if version not in OUTPUT_VERSIONS:
        raise _invalid("OutputVersion", "one of PdfVersionRetainExisting, PdfVersion14…17, "
                       "PdfVersion20")
    if version != "pdfversionretainexisting":
        warnings.append(_warning("OK", "OutputVersion is not honoured: the PDF version is the "
                                 "one the engine needs (usually the input's)"))
    if not flag("EnableColorDetection", True):
        options["color_detection"] = False
    if not flag("PackDocument", True):
        warnings.append(_warning("OK", "PackDocument cannot be turned off: the document is "
                                 "always written with compressed object streams"))
    if not flag("PackFonts", True):
        warnings.append(_warning("OK", "PackFonts cannot be turned off: embedded fonts are "
                                 "always deduplicated and subset"))
    if flag("RemoveHyperlinks", False) and not options.get("remove_annotations"):
        warnings.append(_warning("OK", "RemoveHyperlinks is not supported on its own: links were"
                                 " kept (RemoveAnnotations removes them with every annotation)"))
    if flag("RemoveBlankPages", False):
        warnings.append(_warning("BlankPageRemovalFailure", "RemoveBlankPages is not supported:"
                                 " Squeezer never removes pages"))
    for name in ("RemovePageThumbnails", "RemovePagePieceInfo"):
        if not flag(name, True):
            warnings.append(_warning("OK", f"{name} cannot be turned off: page thumbnails and "
                                     "PieceInfo are always removed (they are never shown)"))
    if flag("EnableJPEG2000", False):
        warnings.append(_warning("OK", "EnableJPEG2000 is not supported: photographic images "
                                 "are encoded as JPEG"))
    # EnableJBIG2 (PassportPDF's default: false) -> jbig2, set when the engine's default differs
    jbig2 = flag("EnableJBIG2", False)
    if jbig2 != PdfOptions.model_fields["jbig2"].default:
        options["jbig2"] = jbig2
    if jbig2 and given("JBIG2PMSThreshold"):
        warnings.append(_warning("OK", "JBIG2PMSThreshold is ignored: 1-bit images are coded "
                                 "losslessly, never with JBIG2 pattern matching and "
                                 "substitution"))
    if flag("EnableCharRepair", False):
        options["char_repair"] = True
    # PassportPDF's EnableMRC defaults to false: MRC layers only when asked for, so a level
    # whose own default is MRC (high, for ImageQualityLow) gets mrc: false; PreserveSmoothing
    # and DownscaleResolutionMRC are MRC's knobs, validated either way
    smoothing = flag("PreserveSmoothing", False)
    mrc = flag("EnableMRC", False)
    if mrc or LEVELS[Level(options["level"])].mrc:
        options["mrc"] = mrc
    if mrc:
        background = min(max(int(mrc_resolution), MIN_MRC_BACKGROUND_DPI), MAX_MRC_BACKGROUND_DPI)
        options["mrc_background_dpi"] = background
        if not MIN_MRC_BACKGROUND_DPI <= mrc_resolution <= MAX_MRC_BACKGROUND_DPI:
            warnings.append(_warning("ImageResizeFailure", f"DownscaleResolutionMRC "
                                     f"{mrc_resolution:g} is outside Squeezer's "
                                     f"{MIN_MRC_BACKGROUND_DPI}-{MAX_MRC_BACKGROUND_DPI} dpi: "
                                     f"{background} dpi used"))
        if smoothing:
            options["mrc_preserve_smoothing"] = True
    password = body.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise _invalid("Password", "must be a string")
        options["password"] = password
    for name in body:
        if name not in _NAMES:
            warnings.append(_warning("OK", f"unknown parameter {name!r} was ignored"))
    return engine_options(options), warnings


async def _pdf_version(svc: ApiServices, row: rows.FileRow) -> bytes:
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
    if job.state != "succeeded" or job.output_file_id is None:
        raise _job_error(job)
    async with svc.connection() as conn:
        output = await rows.get_file(conn, job.output_file_id)
    if output is None:
        raise ApiError(410, "the result has expired", code="gone")
    async with svc.connection() as conn:
        await conn.execute(
            "update compat_passportpdf_documents set current_file_id = %s, updated_at = now(), "
            "versions = array_append(versions, %s) where file_id = %s and key_id = %s",
            (output.id, output.id, doc["file_id"], key.id))
    report = job.report or {}
    if report.get("original_kept"):
        warnings.append(_warning("FileSizeReductionFailure", "the document could not be made "
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
    return _ok(request, Data=base64.b64encode(data).decode("ascii"), FileName=doc["name"])


@router.post("/document/DocumentClose", summary="Delete the document and all its versions")
async def close_document(request: Request, svc: ApiServices = Depends(services),
                         key: ApiKey = Depends(_caller)) -> JSONResponse:
    body = await _body(request)
    try:
        doc, _ = await _document(svc, key, body)
    except ApiError as exc:
        if exc.status != 410:
            raise
        doc = {"file_id": uuid.UUID(str(body["fileid"])), "versions": []}
    async with svc.connection() as conn:
        cur = await conn.execute(
            "delete from compat_passportpdf_documents where file_id = %s and key_id = %s "
            "returning versions", (doc["file_id"], key.id))
        row = await cur.fetchone()
    await _delete_files(svc, list(row[0]) if row else [])
    return _ok(request)


@router.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"],
                  include_in_schema=False)
async def unknown(rest: str) -> None:
    raise ApiError(404, "no such endpoint in this PassportPDF-compatible API", code="no_endpoint")
