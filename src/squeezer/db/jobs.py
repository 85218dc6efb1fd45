"""Job and file rows: what a compression job is, as every process sees it.

The queue (Procrastinate) only carries a job id; the job's state, options,
input, result and error live here, so an API process answers from this table
and a worker that runs the job twice (at-least-once delivery) finds the
first run's result and does nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

TERMINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class JobRow:
    id: uuid.UUID
    key_id: uuid.UUID
    operation: str
    state: str
    progress: float
    input: dict[str, Any]
    options: dict[str, Any]
    input_file_id: uuid.UUID | None
    output_file_id: uuid.UUID | None
    report: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime


@dataclass(frozen=True)
class FileRow:
    id: uuid.UUID
    key_id: uuid.UUID
    kind: str
    name: str
    size: int
    mime: str
    sha256: str
    blob_key: str
    created_at: datetime
    expires_at: datetime


_JOB = ("id, key_id, operation, state, progress, input, options, input_file_id, output_file_id, "
        "report, error_code, error_message, attempts, created_at, started_at, finished_at, expires_at")
_FILE = "id, key_id, kind, name, size, mime, sha256, blob_key, created_at, expires_at"


async def insert_file(conn: psycopg.AsyncConnection, *, file_id: uuid.UUID, key_id: uuid.UUID,
                      kind: str, name: str, size: int, mime: str, sha256: str, blob_key: str,
                      ttl: timedelta) -> FileRow:
    """Record a stored blob; inserting the same id again (a re-run) returns the first row."""
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"""insert into files (id, key_id, kind, name, size, mime, sha256, blob_key, expires_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, now() + %s)
                on conflict (id) do update set id = excluded.id
                returning {_FILE}""",
            (file_id, key_id, kind, name, size, mime, sha256, blob_key, ttl),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def get_file(conn: psycopg.AsyncConnection, file_id: uuid.UUID) -> FileRow | None:
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(f"select {_FILE} from files where id = %s and deleted_at is null",
                          (file_id,))
        return await cur.fetchone()


async def insert_job(conn: psycopg.AsyncConnection, *, key_id: uuid.UUID, input_file_id: uuid.UUID,
                     options: dict[str, Any], ttl: timedelta, operation: str = "compress",
                     webhook_url: str | None = None,
                     idempotency_key: str | None = None) -> JobRow:
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"""insert into jobs (id, key_id, operation, input, options, input_file_id,
                                  webhook_url, idempotency_key, expires_at)
                values (%s, %s, %s, %s, %s, %s, %s, %s, now() + %s)
                returning {_JOB}""",
            (uuid.uuid4(), key_id, operation, Jsonb({"file_id": str(input_file_id)}),
             Jsonb(options), input_file_id, webhook_url, idempotency_key, ttl),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def get_job(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(f"select {_JOB} from jobs where id = %s", (job_id,))
        return await cur.fetchone()


async def start(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    """Mark a job running (again, after a crash) and count the attempt; None if it has ended."""
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"""update jobs set state = 'running', started_at = now(), attempts = attempts + 1,
                                progress = 0
                where id = %s and state not in ('succeeded', 'failed', 'cancelled')
                returning {_JOB}""",
            (job_id,),
        )
        return await cur.fetchone()


async def succeed(conn: psycopg.AsyncConnection, job_id: uuid.UUID, output_file_id: uuid.UUID,
                  report: dict[str, Any]) -> bool:
    cur = await conn.execute(
        """update jobs set state = 'succeeded', progress = 1, output_file_id = %s, report = %s,
                           finished_at = now()
           where id = %s and state = 'running'""",
        (output_file_id, Jsonb(report), job_id),
    )
    return cur.rowcount == 1


async def fail(conn: psycopg.AsyncConnection, job_id: uuid.UUID, code: str, message: str) -> bool:
    cur = await conn.execute(
        """update jobs set state = 'failed', error_code = %s, error_message = %s,
                           finished_at = now()
           where id = %s and state = 'running'""",
        (code, message[:2000], job_id),
    )
    return cur.rowcount == 1
