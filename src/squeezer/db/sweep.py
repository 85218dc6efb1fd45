"""Queries of the periodic sweep and of the runner's end-of-job bookkeeping.

Kept apart from :mod:`squeezer.db.jobs` (the API's contract) because only
workers use them.
"""

from __future__ import annotations

import uuid

import psycopg

#: An advisory lock naming "a sweep is running" among Squeezer's locks.
SWEEP_LOCK_ID = 0x5151_EE40
FINAL_QUEUE_STATUSES = ["succeeded", "failed", "cancelled", "aborted"]


async def try_lock_sweep(conn: psycopg.AsyncConnection) -> bool:
    """Take the sweep lock for this session, or False when another process holds it."""
    cur = await conn.execute("select pg_try_advisory_lock(%s)", (SWEEP_LOCK_ID,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def unlock_sweep(conn: psycopg.AsyncConnection) -> None:
    await conn.execute("select pg_advisory_unlock(%s)", (SWEEP_LOCK_ID,))


async def prune_queue_rows(conn: psycopg.AsyncConnection, older_than_hours: float = 24) -> int:
    """Delete Procrastinate jobs that ended more than ``older_than_hours`` ago; how many.

    The same query as Procrastinate's ``delete_old_jobs`` (last event older than
    the cut-off), with a row count.  Our own ``jobs`` rows are untouched.
    """
    cur = await conn.execute(
        """delete from procrastinate_jobs where id in (
               select job.id from (
                   select distinct on (j.id) j.id, j.status, e.at as latest_at
                   from procrastinate_jobs j join procrastinate_events e on j.id = e.job_id
                   order by j.id, e.at desc) as job
               where job.status = any(%s::procrastinate_job_status[])
                 and job.latest_at < now() - make_interval(secs => %s))""",
        (FINAL_QUEUE_STATUSES, older_than_hours * 3600),
    )
    return cur.rowcount


async def lock_state(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> str | None:
    """The job's state, row-locked until the end of the caller's transaction.

    The runner takes it before writing a result so that a cancel cannot slip in
    between its check and its write (the cancel waits for the lock instead).
    """
    cur = await conn.execute("select state from jobs where id = %s for update", (job_id,))
    row = await cur.fetchone()
    return row[0] if row else None


async def requeue(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> bool:
    """Put a running job back to queued (its worker is shutting down; the queue retries it)."""
    cur = await conn.execute(
        "update jobs set state = 'queued', progress = 0 where id = %s and state = 'running'",
        (job_id,),
    )
    return cur.rowcount == 1


async def requeue_orphan(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> bool:
    """Put an orphaned job (:func:`orphaned_jobs`) back to queued; False if it ended meanwhile."""
    cur = await conn.execute(
        "update jobs set state = 'queued', progress = 0 where id = %s "
        "and state in ('queued', 'running')", (job_id,))
    return cur.rowcount == 1


async def orphaned_jobs(conn: psycopg.AsyncConnection, task_name: str, *,
                        older_than_seconds: float, limit: int = 100) -> list[tuple[uuid.UUID, int]]:
    """Jobs still queued or running whose queue entry has ended or is gone: (id, attempts).

    A job's row and its queue entry are written together, and a worker ends the row before
    Procrastinate ends the entry; so once no entry of the job is ``todo`` or ``doing``, its
    row should have ended too.  When it has not, the worker lost its database in between
    (PostgreSQL restarted, the network cut) and nothing else would ever move the job again.
    One statement sees both tables in one snapshot, so a row ended by a worker at that
    moment is never taken for an orphan.  ``older_than_seconds`` spares jobs younger than a
    sweep period (and keeps the scan to the few old open rows the partial index holds).
    """
    cur = await conn.execute(
        # NOT IN over a subquery is planned as one hashed pass over the live entries (a
        # correlated NOT EXISTS could become a scan of the queue per open job at 10,000 deep)
        """select j.id, j.attempts from jobs j
           where j.state in ('queued', 'running')
             and j.created_at < now() - make_interval(secs => %s)
             and j.id::text not in (select p.args ->> 'job_id' from procrastinate_jobs p
                                    where p.task_name = %s and p.status in ('todo', 'doing')
                                      and p.args ->> 'job_id' is not null)
           order by j.created_at
           limit %s""",
        (older_than_seconds, task_name, limit),
    )
    return [(row[0], row[1]) for row in await cur.fetchall()]
