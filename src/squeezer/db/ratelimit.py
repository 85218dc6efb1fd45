"""Per-key rate limits shared by every API process, kept in PostgreSQL.

A fixed window (e.g. 100 000 requests per 15 minutes) counted with one
upsert per request: the row lock serialises concurrent requests of one key
across processes and machines, and different keys never contend.  Fixed
windows allow a burst at a window edge; the limits are generous quotas, not
traffic shaping, and the single-statement cost matters more here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime  # when the current window ends

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until the window resets (at least 1)."""
        return max(1, int((self.reset_at - now).total_seconds() + 0.999))


async def hit(conn: psycopg.AsyncConnection, key_id: uuid.UUID, limit: int,
              window_seconds: int) -> Decision:
    """Count one request of ``key_id`` and decide whether it is within ``limit``."""
    cur = await conn.execute(
        """insert into rate_limit_windows as w (key_id, window_start, hits)
           values (%(key)s,
                   to_timestamp(floor(extract(epoch from now()) / %(win)s) * %(win)s), 1)
           on conflict (key_id, window_start) do update set hits = w.hits + 1
           returning hits, window_start""",
        {"key": key_id, "win": window_seconds},
    )
    row = await cur.fetchone()
    assert row is not None
    hits, start = int(row[0]), row[1]
    return Decision(
        allowed=hits <= limit,
        limit=limit,
        remaining=max(0, limit - hits),
        reset_at=start + timedelta(seconds=window_seconds),
    )


async def forget_old_windows(conn: psycopg.AsyncConnection, window_seconds: int) -> int:
    """Delete finished windows (run by the periodic sweep)."""
    cur = await conn.execute(
        "delete from rate_limit_windows where window_start < now() - make_interval(secs => %s)",
        (window_seconds,),
    )
    return cur.rowcount
