"""Errors of the jobs layer that are about the worker, not about the file; job error codes."""

from __future__ import annotations


class WorkerShutdown(Exception):
    """A task stopped because its worker is shutting down; the queue runs it again at once."""


#: A failed job's error code (engine, fetch, export) -> the HTTP status an answer about it
#: carries: the API's synchronous answers (``squeezer.api.errors.CODE_STATUS`` is this table)
#: and vendor-format webhook bodies (:mod:`squeezer.jobs.formats`).  Unknown codes: 422.
ERROR_STATUS: dict[str, int] = {
    "not_a_pdf": 415,
    "unsupported_type": 415,
    "pdf_invalid": 422,
    "password_required": 422,
    "invalid_password": 422,
    "input_too_large": 413,
    "too_many_pages": 422,
    "image_too_large": 422,
    "decompression_limit": 422,
    "timeout": 422,
    "memory_limit": 422,
    "processing_crashed": 500,
    "internal_error": 500,
    "input_gone": 410,
    "url_not_allowed": 400,
    "source_too_large": 413,
    "source_timeout": 400,
    "source_unreachable": 400,
    "source_http_error": 400,
    "source_too_many_redirects": 400,
    "cancelled": 409,
    "export_failed": 502,
    "unsupported_format": 415,
    "image_invalid": 422,
    "too_many_frames": 422,
    "media_invalid": 422,
    "media_refused": 422,
    "media_too_long": 422,
    "video_too_large": 422,
    "too_many_streams": 422,
    "output_too_large": 422,
    "verification_failed": 500,
    "media_tool_missing": 500,
}
