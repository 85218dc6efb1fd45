"""Job rows: what a compression job is, as every process sees it (files: :mod:`.files`).

The queue (Procrastinate) only carries a job id; the job's state, options,
input, result and error live here, so an API process answers from this table
and a worker that runs the job twice (at-least-once delivery) finds the
first run's result and does nothing more.  Every query that serves a client
filters on its ``key_id``: one key never sees another's rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from squeezer.db.files import _FILE, FileRow


class JobState(StrEnum):
    """Where a job is: ``queued`` → ``running`` → one of the three terminal states."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


TERMINAL = (JobState.succeeded, JobState.failed, JobState.cancelled)
STATES = tuple(JobState)
#: the channel the ``jobs_notify`` trigger announces job changes on (migration 0002)
CHANNEL = "squeezer_jobs"


@dataclass(frozen=True)
class JobRow:
    id: uuid.UUID
    key_id: uuid.UUID
    operation: str
    state: JobState
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
    webhook_url: str | None = None
    idempotency_key: str | None = None
    input_name: str | None = None
    #: what the webhook POSTs: ``native`` (the job JSON) or a vendor format (migration 0006)
    webhook_format: str = "native"

    def __post_init__(self) -> None:
        object.__setattr__(self, "state", JobState(self.state))

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL


_JOB = ("id, key_id, operation, state, progress, input, options, input_file_id, output_file_id, "
        "report, error_code, error_message, attempts, created_at, started_at, finished_at, "
        "expires_at, webhook_url, idempotency_key, input_name, webhook_format")
# --- files -------------------------------------------------------------------------------------


async def insert_job(conn: psycopg.AsyncConnection, *, key_id: uuid.UUID,
                     input_file_id: uuid.UUID | None = None, input_url: str | None = None,
                     input_name: str | None = None, options: dict[str, Any], ttl: timedelta,
                     operation: str = "compress", webhook_url: str | None = None,
                     idempotency_key: str | None = None,
                     webhook_format: str = "native") -> JobRow:
    """A new queued job on a stored file or a URL (exactly one of the two)."""
    if (input_file_id is None) == (input_url is None):
        raise ValueError("a job takes either a stored file or a URL")
    job_input = {"file_id": str(input_file_id)} if input_file_id else {"url": input_url}
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"""insert into jobs (id, key_id, operation, input, options, input_file_id,
                                  input_name, webhook_url, idempotency_key, expires_at,
                                  webhook_format)
                values (%s, %s, %s, %s, %s, %s, %s, %s, %s, now() + %s, %s)
                returning {_JOB}""",
            (uuid.uuid4(), key_id, operation, Jsonb(job_input), Jsonb(options), input_file_id,
             input_name, webhook_url, idempotency_key, ttl, webhook_format),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def get_job(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> JobRow | None:
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(f"select {_JOB} from jobs where id = %s", (job_id,))
        return await cur.fetchone()


async def find_job(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                   job_id: uuid.UUID) -> JobRow | None:
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(f"select {_JOB} from jobs where id = %s and key_id = %s",
                          (job_id, key_id))
        return await cur.fetchone()


async def find_by_idempotency_key(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                                  idempotency_key: str) -> JobRow | None:
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"select {_JOB} from jobs where key_id = %s and idempotency_key = %s",
            (key_id, idempotency_key),
        )
        return await cur.fetchone()


async def list_jobs(conn: psycopg.AsyncConnection, key_id: uuid.UUID, *, state: str | None = None,
                    limit: int = 50, before: tuple[datetime, uuid.UUID] | None = None
                    ) -> list[JobRow]:
    """``key_id``'s jobs, newest first; ``before`` is the (created_at, id) of the last one seen."""
    where: list[str] = ["key_id = %s"]
    params: list[object] = [key_id]
    if state:
        where.append("state = %s")
        params.append(state)
    if before:
        where.append("(created_at, id) < (%s, %s)")
        params.extend(before)
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"""select {_JOB} from jobs where {' and '.join(where)}
                order by created_at desc, id desc limit %s""",
            (*params, limit),
        )
        return await cur.fetchall()


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


@dataclass(frozen=True)
class Started:
    """What a worker needs to run a job, read with the state change that starts it."""

    job: JobRow
    #: the stored input's live row (None for a URL job, or an input deleted meanwhile)
    input_file: FileRow | None
    #: whether the job has an external storage target (:mod:`squeezer.db.exports`)
    has_export: bool


async def start_with_input(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> Started | None:
    """:func:`start`, the input's file row and whether it has an export, in one round trip
    (a small job's overhead is mostly round trips); None if the job has ended."""
    job_columns = len(_JOB.split(","))
    cur = await conn.execute(
        f"""with j as (
                update jobs set state = 'running', started_at = now(), attempts = attempts + 1,
                                progress = 0
                where id = %s and state not in ('succeeded', 'failed', 'cancelled')
                returning {_JOB})
            select j.*, {', '.join('f.' + c.strip() for c in _FILE.split(','))},
                   exists(select 1 from job_exports e where e.job_id = j.id)
            from j left join files f on f.id = j.input_file_id and f.deleted_at is null""",
        (job_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    job = JobRow(*row[:job_columns])
    file_values = row[job_columns:-1]
    return Started(job=job, input_file=FileRow(*file_values) if file_values[0] else None,
                   has_export=bool(row[-1]))


async def set_progress(conn: psycopg.AsyncConnection, job_id: uuid.UUID, fraction: float) -> bool:
    """Record progress of a running job; False once it is no longer running (cancelled)."""
    cur = await conn.execute(
        "update jobs set progress = %s where id = %s and state = 'running'",
        (min(1.0, max(0.0, fraction)), job_id),
    )
    return cur.rowcount == 1


async def set_input(conn: psycopg.AsyncConnection, job_id: uuid.UUID, file_id: uuid.UUID,
                    name: str) -> None:
    """Attach the stored copy of a fetched URL to its job."""
    await conn.execute(
        "update jobs set input_file_id = %s, input_name = %s where id = %s",
        (file_id, name, job_id),
    )


async def succeed(conn: psycopg.AsyncConnection, job_id: uuid.UUID, output_file_id: uuid.UUID,
                  report: dict[str, Any]) -> bool:
    cur = await conn.execute(
        """update jobs set state = 'succeeded', progress = 1, output_file_id = %s, report = %s,
                           finished_at = now()
           where id = %s and state = 'running'""",
        (output_file_id, Jsonb(report), job_id),
    )
    return cur.rowcount == 1


async def succeed_with_output(conn: psycopg.AsyncConnection, job_id: uuid.UUID, *,
                              output_file_id: uuid.UUID, report: dict[str, Any], name: str,
                              size: int, mime: str, sha256: str, blob_key: str, ttl: timedelta,
                              sha1: str | None = None) -> bool:
    """End a running job as succeeded and record its result file, in one statement (one round
    trip, atomic on its own); False, and nothing written, when the job is no longer running
    (a cancel won the row lock).  A re-run's result file keeps its first row."""
    cur = await conn.execute(
        """with j as (
               update jobs set state = 'succeeded', progress = 1, output_file_id = %(file)s,
                               report = %(report)s, finished_at = now()
               where id = %(job)s and state = 'running'
               returning key_id),
           f as (
               insert into files (id, key_id, kind, name, size, mime, sha256, blob_key,
                                  expires_at, sha1)
               select %(file)s, j.key_id, 'result', %(name)s, %(size)s, %(mime)s, %(sha256)s,
                      %(blob)s, now() + %(ttl)s, %(sha1)s
               from j
               on conflict (id) do update set sha1 = coalesce(files.sha1, excluded.sha1)
               returning id)
           select count(*) from f""",
        {"file": output_file_id, "report": Jsonb(report), "job": job_id, "name": name,
         "size": size, "mime": mime, "sha256": sha256, "blob": blob_key, "ttl": ttl,
         "sha1": sha1},
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def fail(conn: psycopg.AsyncConnection, job_id: uuid.UUID, code: str, message: str) -> bool:
    cur = await conn.execute(
        """update jobs set state = 'failed', error_code = %s, error_message = %s,
                           finished_at = now()
           where id = %s and state in ('queued', 'running')""",
        (code, message[:2000], job_id),
    )
    return cur.rowcount == 1


async def cancel(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                 job_id: uuid.UUID) -> JobRow | None:
    """Cancel ``key_id``'s queued or running job; the row as it is now, or None if not theirs.

    A running job's worker sees the state change and stops its engine process.
    """
    async with conn.cursor(row_factory=class_row(JobRow)) as cur:
        await cur.execute(
            f"""update jobs set state = 'cancelled', cancelled_at = now(), finished_at = now(),
                                error_code = 'cancelled', error_message = 'cancelled by the client'
                where id = %s and key_id = %s and state in ('queued', 'running')
                returning {_JOB}""",
            (job_id, key_id),
        )
        row = await cur.fetchone()
    return row if row is not None else await find_job(conn, key_id, job_id)


async def state_of(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> str | None:
    cur = await conn.execute("select state from jobs where id = %s", (job_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def queue_position(conn: psycopg.AsyncConnection, job: JobRow) -> int | None:
    """Where a queued job stands: 1 + the queued jobs (of every key) created before it; None
    once it is not queued.  Workers take jobs oldest first, so this is how many must start
    before it does (a count only: no other key's job is named)."""
    if job.state != JobState.queued:
        return None
    cur = await conn.execute(
        "select count(*) from jobs where state = 'queued' and (created_at, id) < (%s, %s)",
        (job.created_at, job.id),
    )
    row = await cur.fetchone()
    return 1 + int(row[0] if row else 0)


async def counts_by_state(conn: psycopg.AsyncConnection) -> dict[str, int]:
    cur = await conn.execute("select state, count(*) from jobs group by state")
    found = {state: int(n) for state, n in await cur.fetchall()}
    return {state: found.get(state, 0) for state in STATES}
