"""Job export rows (migration 0006): where a job's result is also written, and how it went.

The row is inserted in the transaction that creates the job
(:func:`squeezer.jobs.queue.submit_compress`), so a job never runs without
its target; the worker records the URL in the transaction that marks the job
succeeded, or the reason in ``error`` when the write failed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row


@dataclass(frozen=True)
class ExportRow:
    job_id: uuid.UUID
    connector_id: uuid.UUID | None  # None once the connector was deleted
    bucket: str
    path: str | None
    url: str | None
    error: str | None
    exported_at: datetime | None


_COLS = "job_id, connector_id, bucket, path, url, error, exported_at"


async def insert(conn: psycopg.AsyncConnection, job_id: uuid.UUID, *,
                 connector_id: uuid.UUID, bucket: str, path: str | None = None) -> None:
    await conn.execute(
        "insert into job_exports (job_id, connector_id, bucket, path) values (%s, %s, %s, %s)",
        (job_id, connector_id, bucket, path))


async def get(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> ExportRow | None:
    async with conn.cursor(row_factory=class_row(ExportRow)) as cur:
        await cur.execute(f"select {_COLS} from job_exports where job_id = %s", (job_id,))
        return await cur.fetchone()


async def record_url(conn: psycopg.AsyncConnection, job_id: uuid.UUID, url: str) -> None:
    await conn.execute("update job_exports set url = %s, exported_at = now(), error = null "
                       "where job_id = %s", (url, job_id))


async def record_error(conn: psycopg.AsyncConnection, job_id: uuid.UUID, error: str) -> None:
    await conn.execute("update job_exports set error = %s where job_id = %s",
                       (error[:2000], job_id))
