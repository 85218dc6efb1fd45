"""``POST /v1/compress``: upload (or URL) and options in, the result out, in one call.

Small inputs are answered with the finished job (or, with ``Accept:
application/pdf``, the compressed bytes themselves); inputs above
``SQUEEZER_SYNC_MAX_BYTES``, requests with a webhook, and jobs still running
after ``SQUEEZER_SYNC_WAIT_SECONDS`` get ``202`` and the job to poll.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from squeezer.api import jsonbody
from squeezer.api.auth import caller
from squeezer.api.content import send_file
from squeezer.api.errors import ApiError, validation_errors
from squeezer.api.jobflow import OptionsField, create_job, engine_options, render, wait_for
from squeezer.api.routes.files import forget_upload, store_upload
from squeezer.api.state import ApiServices, services
from squeezer.db import files as file_rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey
from squeezer.errors import status_of

router = APIRouter(tags=["compress"])

#: multipart fields that are not engine options
_RESERVED = {"file", "options", "webhook_url", "wait"}


class CompressJson(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str | None = Field(None, max_length=8192)
    file_id: uuid.UUID | None = None
    options: OptionsField = Field(default_factory=dict,
                                  description="compression options (GET /v1/options lists them)")
    webhook: dict[str, str] | None = None
    wait: float | None = Field(None, ge=0)


def _wants_bytes(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "application/pdf" in accept or "application/octet-stream" in accept


def _form_options(fields: dict[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if fields.get("options"):
        try:
            options = jsonbody.loads(fields["options"])
        except json.JSONDecodeError:
            raise ApiError(422, "the 'options' field is not valid JSON", code="invalid_json",
                           errors=[{"field": "options", "message": "invalid JSON"}]) from None
        if not isinstance(options, dict):
            raise ApiError(422, "the 'options' field must be a JSON object",
                           errors=[{"field": "options", "message": "must be an object"}])
    for name, value in fields.items():
        if name in _RESERVED:
            continue
        # ``pdf.dpi`` or ``pdf[dpi]``: a field of a group
        *parents, leaf = [p for p in name.replace("[", ".").replace("]", "").split(".") if p]
        target = options
        for part in parents:
            nested = target.get(part)
            if not isinstance(nested, dict):
                nested = target[part] = {}
            target = nested
        target[leaf] = value
    return options


def _upload_idempotency(given: str | None, upload: file_rows.FileRow) -> str | None:
    """A retried upload is a new file, so the key is tied to the upload's content instead:
    the same key with the same bytes and options finds the first job."""
    return f"{given}:{upload.sha256}" if given else None


def _wait_seconds(svc: ApiServices, given: Any) -> float:
    if given in (None, ""):
        return svc.config.service.sync_wait_seconds
    try:
        value = float(given)
    except (TypeError, ValueError):
        raise ApiError(422, "wait must be a number of seconds",
                       errors=[{"field": "wait", "message": "not a number"}]) from None
    if value < 0:
        raise ApiError(422, "wait must be >= 0", errors=[{"field": "wait", "message": ">= 0"}])
    return value


@router.post("/v1/compress", summary="Compress one file and answer with the result",
             responses={200: {"description": "the finished job, or the PDF with Accept: "
                              "application/pdf"},
                        202: {"description": "still running: poll the job"}})
async def compress(request: Request, svc: ApiServices = Depends(services),
                   key: ApiKey = Depends(caller),
                   idempotency_key: str | None = Header(None, alias="Idempotency-Key")
                   ) -> Response:
    content_type = request.headers.get("content-type", "")
    size: int | None = None
    if content_type.startswith("multipart/"):
        # validate what we can before the upload is stored
        upload_row, upload = await store_upload(request, svc, key)
        fields = upload.fields
        try:  # the fields may come after the file: they are known only now
            options = engine_options(_form_options(fields))
            wait = _wait_seconds(svc, fields.get("wait"))
            webhook_url = fields.get("webhook_url") or None
            job, replayed = await create_job(
                svc, key, file_id=upload_row.id, options=options, webhook_url=webhook_url,
                idempotency_key=_upload_idempotency(idempotency_key, upload_row),
                compare_input=False, fresh_upload=upload_row)
        except ApiError:
            await forget_upload(svc, upload_row)
            raise
        if replayed:  # the first request's upload is the job's input; this copy is not needed
            await forget_upload(svc, upload_row)
        created = not replayed
        size = upload_row.size
    elif content_type.startswith("application/json") or not content_type:
        try:
            body = CompressJson.model_validate_json(await request.body() or b"{}")
        except ValidationError as exc:
            raw = exc.errors()
            if any(e.get("type") == "json_invalid" for e in raw):
                raise ApiError(422, "the request body is not valid JSON", code="invalid_json",
                               errors=[{"field": "body", "message": "invalid JSON"}]) from None
            raise ApiError(422, "the request is not valid",
                           errors=validation_errors(raw)) from None
        if (body.url is None) == (body.file_id is None):
            raise ApiError(422, "give either a file (multipart) or 'url' or 'file_id'",
                           errors=[{"field": "url", "message": "url or file_id is required"}])
        options = engine_options(body.options)
        wait = _wait_seconds(svc, body.wait)
        webhook_url = (body.webhook or {}).get("url")
        job, replayed = await create_job(svc, key, file_id=body.file_id, url=body.url,
                                         options=options, webhook_url=webhook_url,
                                         idempotency_key=idempotency_key)
        created = not replayed
        if body.file_id:
            async with svc.connection() as conn:
                source = await file_rows.get_file(conn, body.file_id)
            size = source.size if source else None
    else:
        raise ApiError(415, "send multipart/form-data (a file) or application/json (a URL)",
                       code="unsupported_media_type")

    asynchronous = bool(webhook_url) or (size is not None and size > svc.config.service.sync_max_bytes)
    if not asynchronous:
        job = await wait_for(svc, job, wait, fresh=created)
    if job.state == JobState.failed:
        code = job.error_code or "failed"
        raise ApiError(status_of(code), job.error_message or "the job failed",
                       code=code, extra={"job_id": str(job.id)})
    if job.state != JobState.succeeded:
        return JSONResponse(await render(svc, request, job), status_code=202,
                            headers={"Location": f"/v1/jobs/{job.id}"})
    if _wants_bytes(request):
        async with svc.connection() as conn:
            output = await file_rows.get_file(conn, job.output_file_id) if job.output_file_id else None
        if output is None:
            raise ApiError(410, "the result has expired", code="gone")
        response = await send_file(request, svc.store, output)
        report = job.report or {}
        response.headers["X-Squeezer-Job-Id"] = str(job.id)
        response.headers["X-Squeezer-Input-Size"] = str(report.get("input_bytes", ""))
        response.headers["X-Squeezer-Output-Size"] = str(output.size)
        response.headers["X-Squeezer-Original-Kept"] = str(bool(report.get("original_kept"))).lower()
        return response
    return JSONResponse(await render(svc, request, job), status_code=200)
