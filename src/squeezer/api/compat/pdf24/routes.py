"""The routes and error shape of the pdf24 protocol (see the package's docstring)."""

from __future__ import annotations

import json
import re
import struct
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from squeezer.api import jsonbody
from squeezer.api.auth import authenticate
from squeezer.api.compat._vendor import vendor_route
from squeezer.api.compat.pdf24.options import (
    bad,
    params_of,
    pdf24_options,
)
from squeezer.api.content import content_disposition, send_file
from squeezer.api.errors import ApiError, request_id
from squeezer.api.jobflow import create_job, owned_job
from squeezer.api.routes.files import upload_key
from squeezer.api.state import ApiServices, services
from squeezer.api.uploads import receive_uploads
from squeezer.db import files as file_rows
from squeezer.db import jobs as rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey

MAX_FILES = 20
COMMAND = "compressPdf"
ZIP_NAME = "compressed.zip"

#: Job state → PDF24 ``status`` and the numeric ``state`` of the ``job`` map.
STATUS = {JobState.queued: ("waiting", "1"), JobState.running: ("working", "2"),
          JobState.succeeded: ("done", "3"), JobState.failed: ("failed", "4"),
          JobState.cancelled: ("failed", "4")}

_UPLOAD_NAME = re.compile(r"^upload_([0-9a-f]{32})(?:\.pdf)?$")
_JOB_ID = re.compile(rf"^compresspdf_((?:[0-9a-f]{{32}}){{1,{MAX_FILES}}})$")


def explain(exc: ApiError) -> str:
    """The message, with the field errors a vendor shape has no place for folded in."""
    if not exc.errors or exc.status != 422:
        return exc.message
    details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
    return exc.message if details in exc.message else f"{exc.message} ({details})"


def _render_error(request: Request, exc: ApiError) -> Response:
    return JSONResponse({"error": explain(exc), "code": exc.code}, status_code=exc.status,
                        headers={**exc.headers, "X-Request-ID": request_id(request)})


router = APIRouter(prefix="/pdf24", tags=["compat: PDF24"], route_class=vendor_route(_render_error))


def _gmt(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S GMT") if value else ""


def upload_name(file_id: uuid.UUID) -> str:
    return f"upload_{file_id.hex}.pdf"


def job_id_of(jobs: list[rows.JobRow]) -> str:
    return COMMAND + "_" + "".join(job.id.hex for job in jobs)


def parse_job_id(value: str | None) -> list[uuid.UUID]:
    match = _JOB_ID.match((value or "").strip().lower())
    if not match:
        raise ApiError(404, "no such job", code="unknown_job")
    hexes = match.group(1)
    return [uuid.UUID(hexes[i:i + 32]) for i in range(0, len(hexes), 32)]


# --- the ZIP of several results --------------------------------------------------------------


def _dos_time(value: datetime | None) -> tuple[int, int]:
    t = (value or datetime.now(UTC)).astimezone(UTC)
    year = min(max(t.year, 1980), 2107)
    return (t.hour << 11) | (t.minute << 5) | (t.second // 2), \
        ((year - 1980) << 9) | (t.month << 5) | t.day


def zip_names(names: list[str]) -> list[str]:
    """Entry names, made unique: "a.pdf", "a (2).pdf", …"""
    seen: set[str] = set()
    out = []
    for name in names:
        candidate, n = name, 1
        stem, dot, ext = name.rpartition(".")
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem} ({n}).{ext}" if dot else f"{name} ({n})"
        seen.add(candidate.lower())
        out.append(candidate)
    return out


def zip_size(entries: list[tuple[str, int]]) -> int:
    """The exact size of the stored ZIP of ``(name, size)`` entries (no data needed)."""
    return sum(76 + 2 * len(name.encode()) + size for name, size in entries) + 22


def _zip_limit(entries: list[tuple[str, int]]) -> None:
    if zip_size(entries) >= 0xFFFFFFFF or len(entries) >= 0xFFFF:
        raise ApiError(413, "the results are too large together for one ZIP (4 GB); "
                       "compress the files in separate jobs", code="too_large")


async def _crc32(svc: ApiServices, row: file_rows.FileRow) -> int:
    crc = 0
    reader = await svc.store.open_range(row.blob_key)
    try:
        async for chunk in reader:
            crc = zlib.crc32(chunk, crc)
    finally:
        await reader.aclose()
    return crc


async def _zip_stream(svc: ApiServices, parts: list[tuple[str, file_rows.FileRow, datetime | None]],
                      crcs: list[int]) -> AsyncIterator[bytes]:
    central = bytearray()
    offset = 0
    for (name, row, when), crc in zip(parts, crcs, strict=True):
        encoded = name.encode()
        mtime, mdate = _dos_time(when)
        header = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0x0800, 0, mtime, mdate, crc,
                             row.size, row.size, len(encoded), 0) + encoded
        central += struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 20, 20, 0x0800, 0, mtime, mdate,
                               crc, row.size, row.size, len(encoded), 0, 0, 0, 0, 0,
                               offset) + encoded
        yield header
        reader = await svc.store.open_range(row.blob_key)
        try:
            async for chunk in reader:
                yield chunk
        finally:
            await reader.aclose()
        offset += len(header) + row.size
    yield bytes(central) + struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(parts), len(parts),
                                       len(central), offset, 0)


# --- the status map --------------------------------------------------------------------------


async def _load(svc: ApiServices, key: ApiKey, job_ids: list[uuid.UUID]
                ) -> list[tuple[rows.JobRow, file_rows.FileRow | None, file_rows.FileRow | None]]:
    jobs = [await owned_job(svc, key, job_id) for job_id in job_ids]
    out = []
    async with svc.connection() as conn:
        for job in jobs:
            source = await file_rows.get_file(conn, job.input_file_id) if job.input_file_id else None
            result = None
            if job.state == JobState.succeeded and job.output_file_id:
                result = await file_rows.get_file(conn, job.output_file_id)
            out.append((job, source, result))
    return out


def overall_status(jobs: list[rows.JobRow]) -> str:
    states = [job.state for job in jobs]
    if any(s in (JobState.failed, JobState.cancelled) for s in states):
        return "failed"
    if all(s == JobState.succeeded for s in states):
        return "done"
    if any(s in (JobState.running, JobState.succeeded) for s in states):
        return "working"
    return "waiting"


def client_fields(request: Request) -> dict[str, str]:
    """The job map's request fields the seed shows (``client.ip``, ``referrer``, ``lang``).

    PDF24 records them when the job is created; Squeezer does not keep a
    client's address with its jobs, so they describe the request asking for the
    status (the same client in every flow the seed shows).
    """
    language = request.headers.get("accept-language", "").split(",")[0].split(";")[0].strip()
    return {"client.ip": request.client.host if request.client else "",
            "referrer": request.headers.get("referer", "")[:2000],
            "lang": (language.split("-")[0].lower() or "en")[:8]}


def status_map(parts: list[tuple[rows.JobRow, file_rows.FileRow | None, file_rows.FileRow | None]],
               client: dict[str, str] | None = None) -> dict[str, str]:
    """The flat all-strings ``job`` object of getStatus (``client``: :func:`client_fields`)."""
    jobs = [job for job, _, _ in parts]
    status = overall_status(jobs)
    state = {"waiting": "1", "working": "2", "done": "3", "failed": "4"}[status]
    started = [job.started_at for job in jobs if job.started_at]
    finished = [job.finished_at for job in jobs if job.finished_at]
    heartbeat = max(finished) if status in ("done", "failed") and finished \
        else (datetime.now(UTC) if started else None)
    out: dict[str, str] = {
        "state": state, "command": COMMAND, "count": str(len(parts)), "charset": "UTF-8",
        "service": "client", "creationTime": _gmt(min(job.created_at for job in jobs)),
        "processing.startTime": _gmt(min(started) if started else None),
        "processing.heartbeat": _gmt(heartbeat),
        # "2": a file to download (the only result type a compression has)
        "resultType": "2",
        **(client or {"client.ip": "", "referrer": "", "lang": "en"}),
        **params_of(jobs[0].options),
    }
    names = zip_names([(source.name if source else job.input_name) or "document.pdf"
                       for job, source, _ in parts])
    for i, ((job, source, result), name) in enumerate(zip(parts, names, strict=True)):
        out[f"{i}.state"] = STATUS[job.state][1]
        out[f"{i}.in.name"] = (source.name if source else job.input_name) or ""
        out[f"{i}.in.size"] = str(source.size) if source else ""
        out[f"{i}.in.file"] = upload_name(job.input_file_id) if job.input_file_id else ""
        if result is not None:
            out[f"{i}.out.file"] = f"{COMMAND}_{job.id.hex}.pdf"
            out[f"{i}.out.name"] = name
            out[f"{i}.out.size"] = str(result.size)
        if job.state in (JobState.failed, JobState.cancelled):
            out[f"{i}.error"] = job.error_message or job.state
            out[f"{i}.errorCode"] = job.error_code or job.state
    if status == "done":
        results = [result for _, _, result in parts if result is not None]
        if len(results) == len(parts):
            if len(parts) == 1:
                out["out.file"] = out["0.out.file"]
                out["out.name"] = out["0.out.name"]
                out["out.size"] = out["0.out.size"]
            else:
                out["out.file"] = f"{job_id_of(jobs)}.zip"
                out["out.name"] = ZIP_NAME
                out["out.size"] = str(zip_size([(n, r.size) for n, r in zip(names, results,
                                                                            strict=True)]))
    if status == "failed":
        failed = next(job for job in jobs if job.state in (JobState.failed, JobState.cancelled))
        out["error"] = failed.error_message or failed.state
    return out


# --- the actions -----------------------------------------------------------------------------


async def _upload(request: Request, svc: ApiServices, key: ApiKey) -> Response:
    file_ids = [uuid.uuid4() for _ in range(MAX_FILES)]
    uploads = await receive_uploads(request, svc.store, lambda i: upload_key(file_ids[i]),
                                    max_bytes=svc.config.service.max_upload_bytes, max_files=MAX_FILES)
    host = urlsplit(svc.base_url(request)).netloc
    answer = []
    async with svc.connection() as conn:
        for file_id, upload in zip(file_ids, uploads, strict=False):
            row = await file_rows.insert_file(
                conn, file_id=file_id, key_id=key.id, kind="upload", name=upload.name,
                size=upload.stored.size, mime=upload.mime, sha256=upload.stored.sha256,
                blob_key=upload.stored.key, ttl=timedelta(seconds=svc.config.service.file_ttl_seconds))
            answer.append({"file": upload_name(row.id), "size": row.size, "name": row.name,
                           "ctime": row.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                           "host": host})
    return JSONResponse(answer)


def _file_ids(body: dict[str, Any]) -> list[uuid.UUID]:
    files = body.get("files")
    if not isinstance(files, list) or not files:
        raise ApiError(422, "files is required: the objects the upload answered with",
                       code="missing_file", errors=[{"field": "files", "message": "required"}])
    if len(files) > MAX_FILES:
        raise bad("files", f"may hold at most {MAX_FILES} files")
    ids = []
    for i, entry in enumerate(files):
        name = entry.get("file") if isinstance(entry, dict) else entry
        match = _UPLOAD_NAME.match(str(name or "").strip().lower())
        if not match:
            raise ApiError(404, f"no such file: {name!r}", code="missing_file",
                           errors=[{"field": f"files.{i}.file", "message": "no such file"}])
        ids.append(uuid.UUID(match.group(1)))
    return ids


async def _compress(request: Request, svc: ApiServices, key: ApiKey) -> Response:
    try:
        body = jsonbody.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object", code="invalid_json")
    options = pdf24_options(body)
    file_ids = _file_ids(body)
    async with svc.connection() as conn:  # every file first: all of the job starts, or none
        for i, file_id in enumerate(file_ids):
            row = await file_rows.find_file(conn, key.id, file_id)
            if row is None or row.deleted_at is not None or row.expires_at <= datetime.now(UTC):
                raise ApiError(404, f"no such file: {upload_name(file_id)}", code="missing_file",
                               errors=[{"field": f"files.{i}.file", "message": "no such file"}])
    jobs = [(await create_job(svc, key, file_id=file_id, options=options))[0]
            for file_id in file_ids]
    return JSONResponse({"jobId": job_id_of(jobs)})


async def _status(request: Request, svc: ApiServices, key: ApiKey) -> Response:
    pdf24_id = request.query_params.get("jobId", "")
    parts = await _load(svc, key, parse_job_id(pdf24_id))
    return JSONResponse({"jobId": pdf24_id.strip(), "status": overall_status([p[0] for p in parts]),
                         "job": status_map(parts, client_fields(request))})


async def _download(request: Request, svc: ApiServices, key: ApiKey) -> Response:
    parts = await _load(svc, key, parse_job_id(request.query_params.get("jobId")))
    jobs = [job for job, _, _ in parts]
    status = overall_status(jobs)
    if status != "done":
        raise ApiError(409, f"the job is {status}; download once getStatus says done",
                       code="not_done")
    results = [result for _, _, result in parts if result is not None]
    if len(results) != len(parts):
        raise ApiError(410, "the result has expired or was deleted", code="gone")
    names = zip_names([(source.name if source else job.input_name) or "document.pdf"
                       for job, source, _ in parts])
    if len(parts) == 1:
        response = await send_file(request, svc.store, results[0])
        response.headers["Content-Disposition"] = content_disposition(names[0])
        return response
    entries = [(name, result.size) for name, result in zip(names, results, strict=True)]
    _zip_limit(entries)
    headers = {"Content-Length": str(zip_size(entries)),
               "Content-Disposition": content_disposition(ZIP_NAME),
               "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"}
    if request.method == "HEAD":
        return Response(status_code=200, headers=headers, media_type="application/zip")
    crcs = [await _crc32(svc, result) for result in results]  # the local headers carry them
    zipped = [(name, result, job.finished_at)
              for name, result, job in zip(names, results, jobs, strict=True)]
    return StreamingResponse(_zip_stream(svc, zipped, crcs), headers=headers,
                             media_type="application/zip")


ACTIONS = {"upload": ("POST", _upload), "compressPdf": ("POST", _compress),
           "getStatus": ("GET", _status), "downloadJobResult": ("GET", _download)}


@router.head("/client.php", include_in_schema=False)
@router.post("/client.php", summary="PDF24 backend: action=upload | compressPdf")
@router.get("/client.php", summary="PDF24 backend: action=getStatus | downloadJobResult")
async def client_php(request: Request, svc: ApiServices = Depends(services)) -> Response:
    action = request.query_params.get("action", "")
    if action not in ACTIONS:
        raise ApiError(400, f"unknown action {action!r}; one of {', '.join(ACTIONS)}",
                       code="unknown_action")
    method, handler = ACTIONS[action]
    allowed = {method, "HEAD"} if method == "GET" else {method}
    if request.method not in allowed:
        raise ApiError(405, f"action {action} takes {method}", code="method_not_allowed",
                       headers={"Allow": ", ".join(sorted(allowed))})
    key = await authenticate(request, svc)
    return await handler(request, svc, key)
