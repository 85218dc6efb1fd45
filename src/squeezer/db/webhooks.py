"""Webhook delivery log: one row per attempt, read back into the job JSON.

Every attempt is written (with the receiver's status and our error code, never
the receiver's answer body, which must not be echoed to API users), so an
operator and the key's owner can see what happened to each event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import psycopg


def _time(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


async def record_delivery(conn: psycopg.AsyncConnection, *, job_id: uuid.UUID, webhook_id: str,
                          attempt: int, status: int | None, error: str | None) -> None:
    await conn.execute(
        """insert into webhook_deliveries (job_id, webhook_id, attempt, status, error)
           values (%s, %s, %s, %s, %s)""",
        (job_id, webhook_id, attempt, status, error),
    )


async def deliveries(conn: psycopg.AsyncConnection, job_id: uuid.UUID) -> list[dict[str, Any]]:
    """The job's delivery attempts, oldest first, as the job JSON shows them."""
    cur = await conn.execute(
        """select attempt, status, error, attempted_at from webhook_deliveries
           where job_id = %s order by attempted_at, id""",
        (job_id,),
    )
    return [
        {"attempt": attempt, "status": status, "error": error, "attempted_at": _time(at)}
        for attempt, status, error, at in await cur.fetchall()
    ]


async def webhook_secret(conn: psycopg.AsyncConnection, key_id: uuid.UUID) -> str | None:
    """The signing secret of the key owning a job (a revoked key still signs its jobs' events)."""
    cur = await conn.execute("select webhook_secret from api_keys where id = %s", (key_id,))
    row = await cur.fetchone()
    return row[0] if row else None
