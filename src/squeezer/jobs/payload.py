"""The JSON a client sees for a file or a job: one shape for API answers and webhooks.

Webhook bodies and ``GET /v1/jobs/{id}`` must agree to the byte, so both are
made here from database rows, never in a route.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from squeezer.db.exports import ExportRow
from squeezer.db.files import FileRow
from squeezer.db.jobs import JobRow, JobState
from squeezer.jobs import download_urls


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def file_json(row: FileRow) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "name": row.name,
        "size": row.size,
        "mime": row.mime,
        "sha256": row.sha256,
        "created_at": _time(row.created_at),
        "expires_at": _time(row.expires_at),
    }


def _brief(row: FileRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {"file_id": str(row.id), "name": row.name, "size": row.size, "mime": row.mime,
            "sha256": row.sha256}


def job_json(job: JobRow, *, input_file: FileRow | None, output_file: FileRow | None,
             base_url: str, signing_key: bytes,
             deliveries: Sequence[dict[str, Any]] | None = None,
             export: ExportRow | None = None,
             queue_position: int | None = None) -> dict[str, Any]:
    """A job as clients see it; ``result`` only once it succeeded, ``error`` once it failed.

    ``queue_position``: while the job is queued, 1 + the queued jobs ahead of it
    (:func:`squeezer.db.jobs.queue_position`), else None.

    ``result.stored_url`` is the permanent URL of the copy written to an
    external storage connector (``export``, :mod:`squeezer.jobs.exports`), else null.
    """
    source: dict[str, Any] = {}
    if "url" in job.input:
        source["url"] = job.input["url"]
    brief = _brief(input_file)
    if brief:
        source.update(brief)
    elif job.input_file_id:
        source["file_id"] = str(job.input_file_id)
    if job.input_name and "name" not in source:
        source["name"] = job.input_name

    result = None
    if job.state == JobState.succeeded and output_file is not None:
        report = job.report or {}
        in_bytes = report.get("input_bytes") or (input_file.size if input_file else None)
        result = {
            "input": _brief(input_file),
            "output": _brief(output_file),
            "ratio": report.get("ratio"),
            "saved_bytes": (in_bytes - output_file.size) if in_bytes is not None else None,
            "original_kept": report.get("original_kept"),
            "download_url": download_urls.sign(signing_key, base_url, output_file.id,
                                               output_file.expires_at),
            "expires_at": _time(output_file.expires_at),
            "stored_url": export.url if export is not None else None,
            "report": report,
        }
    error = None
    if job.state in (JobState.failed, JobState.cancelled):
        error = {"code": job.error_code or job.state, "message": job.error_message or job.state}
    body: dict[str, Any] = {
        "id": str(job.id),
        "operation": job.operation,
        "state": job.state,
        "progress": round(job.progress, 4),
        "queue_position": queue_position if job.state == JobState.queued else None,
        "input": source,
        "options": {k: ("********" if k == "password" else v) for k, v in job.options.items()},
        "result": result,
        "error": error,
        "attempts": job.attempts,
        "created_at": _time(job.created_at),
        "started_at": _time(job.started_at),
        "finished_at": _time(job.finished_at),
        "expires_at": _time(job.expires_at),
        "webhook": None,
    }
    if job.webhook_url:
        body["webhook"] = {"url": job.webhook_url, "deliveries": list(deliveries or [])}
    return body
