"""Compressor.app's result JSON (seed 001): what ``GET /1.0/jobs/{id}`` answers and its webhook POSTs.

``{success, id, url, input: {name, type, format, mime, size, sha1}, output: {…}}``
for a succeeded job, ``{success: false, status, id, message}`` for an ended
one, ``{success: true, id, status: enqueued | processing}`` before.  ``url``
is the copy in the client's bucket when the job had an external storage
target (:mod:`squeezer.jobs.exports`), else the signed temporary download link.

``sha1`` is Compressor.app's hash: the worker computes it while storing a
job's files (``files.sha1``); for files stored before migration 0006 it is
computed once here, by streaming the blob, and recorded.
"""

from __future__ import annotations

import hashlib
from typing import Any

import psycopg

from squeezer.db import exports as export_rows
from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db.jobs import JobState
from squeezer.engines.sniff import MIME
from squeezer.errors import status_of
from squeezer.jobs import download_urls, exports
from squeezer.storage import BlobStore

NAME = "compressor"
GONE = "this result has expired or was deleted"


def output_name(input_name: str, mime: str = "application/pdf") -> str:
    """The result's name as Compressor.app shows it: the input's, with the result's extension
    (also the name of the exported object when the store path is a directory)."""
    return exports.object_name(input_name, mime)


async def file_sha1(conn: psycopg.AsyncConnection, store: BlobStore | None,
                    row: file_rows.FileRow) -> str:
    """The file's SHA-1: recorded by the worker, or computed once from the blob and recorded."""
    if row.sha1:
        return row.sha1
    if store is None:
        raise ValueError(f"file {row.id} has no recorded sha1 and no blob store was given")
    digest = hashlib.sha1(usedforsecurity=False)
    async for chunk in store.stream(row.blob_key):
        digest.update(chunk)
    sha1 = digest.hexdigest()
    await file_rows.set_sha1(conn, row.id, sha1)
    return sha1


async def _describe(conn: psycopg.AsyncConnection, store: BlobStore | None,
                    row: file_rows.FileRow, name: str) -> dict[str, Any]:
    fmt = next((f for f, m in MIME.items() if m == row.mime), "pdf")
    kind = {"image": "image", "video": "video", "audio": "audio"}.get(
        row.mime.split("/", 1)[0], "document")
    return {"name": name, "type": kind, "format": fmt, "mime": row.mime,
            "size": row.size, "sha1": await file_sha1(conn, store, row)}


def failure(job: job_rows.JobRow, status: int, message: str) -> dict[str, Any]:
    return {"success": False, "status": status, "id": str(job.id), "message": message}


async def body(conn: psycopg.AsyncConnection, job: job_rows.JobRow, *, base_url: str,
               signing_key: bytes, store: BlobStore | None) -> tuple[int, dict[str, Any]]:
    """``(HTTP status, body)`` of the job in Compressor.app's shape, whatever its state."""
    if not job.ended:
        return 200, {"success": True, "id": str(job.id),
                     "status": "enqueued" if job.state == JobState.queued else "processing"}
    if job.state != JobState.succeeded:
        code = job.error_code or job.state
        status = status_of(code)
        return status, failure(job, status, job.error_message or f"the job {job.state}")
    source = await file_rows.get_file(conn, job.input_file_id) if job.input_file_id else None
    output = await file_rows.get_file(conn, job.output_file_id) if job.output_file_id else None
    if source is None or output is None:
        return 410, failure(job, 410, GONE)
    export = await export_rows.get(conn, job.id)
    if export is not None and export.url:
        url = export.url
    else:  # no target (or a job exported by the API before migration 0006 that never was)
        url = download_urls.sign(signing_key, base_url, output.id, output.expires_at)
    out_name = output_name(source.name, output.mime)
    return 200, {"success": True, "id": str(job.id), "url": url,
                 "input": await _describe(conn, store, source, source.name),
                 "output": await _describe(conn, store, output, out_name)}
