"""``/v1/jobs``: create, long-poll, list and cancel compression jobs."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from squeezer.api.auth import caller
from squeezer.api.errors import ApiError
from squeezer.api.jobflow import (
    OptionsField,
    cancel_job,
    create_job,
    engine_options,
    input_size,
    owned_job,
    render,
    wait_for,
)
from squeezer.api.state import ApiServices, services
from squeezer.db import jobs as rows
from squeezer.db.jobs import JobState
from squeezer.db.keys import ApiKey

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


class FileInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_id: uuid.UUID


class UrlInput(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=8192)


class WebhookSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=8192)


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: FileInput | UrlInput
    operation: Literal["compress"] = "compress"
    options: OptionsField = Field(default_factory=dict,
                                  description="compression options (GET /v1/options lists them)")
    webhook: WebhookSpec | None = None
    wait: float = Field(0, ge=0, description="seconds to hold the answer until the job ends")


def _cursor(job: rows.JobRow) -> str:
    raw = f"{job.created_at.isoformat()}|{job.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, job_id = raw.partition("|")
        return datetime.fromisoformat(created), uuid.UUID(job_id)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(422, "invalid cursor",
                       errors=[{"field": "cursor", "message": "not a cursor from this API"}]
                       ) from None


@router.post("", status_code=201, summary="Create a job (optionally waiting for it)")
async def post_job(body: JobRequest, request: Request, svc: ApiServices = Depends(services),
                   key: ApiKey = Depends(caller),
                   idempotency_key: str | None = Header(None, alias="Idempotency-Key")
                   ) -> JSONResponse:
    options = engine_options(body.options)
    file_id = body.input.file_id if isinstance(body.input, FileInput) else None
    url = body.input.url if isinstance(body.input, UrlInput) else None
    job, replayed = await create_job(svc, key, file_id=file_id, url=url, options=options,
                                     webhook_url=body.webhook.url if body.webhook else None,
                                     idempotency_key=idempotency_key)
    if body.wait and not replayed:
        size = await input_size(svc, job)
        if size is None or size <= svc.config.service.sync_max_bytes:
            job = await wait_for(svc, job, body.wait)
    headers = {"Location": f"/v1/jobs/{job.id}"}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return JSONResponse(await render(svc, request, job), status_code=200 if replayed else 201,
                        headers=headers)


@router.get("/{job_id}", summary="A job; with wait=N, held until it ends or N seconds pass")
async def get_job(job_id: uuid.UUID, request: Request,
                  wait: float = Query(0, ge=0, description="long-poll for up to N seconds"),
                  svc: ApiServices = Depends(services), key: ApiKey = Depends(caller)) -> dict:
    job = await owned_job(svc, key, job_id)
    return await render(svc, request, await wait_for(svc, job, wait))


@router.get("", summary="The caller's jobs, newest first")
async def list_jobs(request: Request,
                    state: JobState | None = Query(None),
                    limit: int = Query(20, ge=1, le=100),
                    cursor: str | None = Query(None, description="next_cursor of the last page"),
                    svc: ApiServices = Depends(services), key: ApiKey = Depends(caller)) -> dict:
    before = _parse_cursor(cursor) if cursor else None
    async with svc.connection() as conn:
        found = await rows.list_jobs(conn, key.id, state=state, limit=limit + 1, before=before)
    page = found[:limit]
    return {
        "data": [await render(svc, request, job) for job in page],
        "next_cursor": _cursor(page[-1]) if len(found) > limit else None,
    }


@router.delete("/{job_id}", summary="Cancel a queued or running job")
async def delete_job(job_id: uuid.UUID, request: Request, svc: ApiServices = Depends(services),
                     key: ApiKey = Depends(caller)) -> dict:
    return await render(svc, request, await cancel_job(svc, key, job_id))
