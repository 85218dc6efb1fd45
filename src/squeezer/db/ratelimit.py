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

from squeezer.db.keys import _COLUMNS, _SHAPE, ApiKey, digest


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


#: ``last_used_at`` is written at most this often per key: a write per request would
#: make every request of a key queue on that key's row in every API process
LAST_USED_RESOLUTION_SECONDS = 60


async def authenticate_and_hit(conn: psycopg.AsyncConnection, secret: str | None, limit: int,
                               window_seconds: int) -> tuple[ApiKey | None, Decision | None]:
    """The live key for ``secret`` and, when ``limit`` is set, its request counted: one
    statement, one round trip (each authenticated request pays for it).  ``(None, None)`` for
    an unknown, revoked or malformed key (nothing is counted)."""
    if not secret or not _SHAPE.match(secret):
        return None, None
    counted = limit > 0
    count_part = """,
           r as (insert into rate_limit_windows as w (key_id, window_start, hits)
                 select k.id, to_timestamp(floor(extract(epoch from now()) / %(win)s) * %(win)s), 1
                 from k
                 on conflict (key_id, window_start) do update set hits = w.hits + 1
                 returning hits, window_start)""" if counted else ""
    columns = len(_COLUMNS.split(","))
    cur = await conn.execute(
        f"""with k as (select {_COLUMNS} from api_keys
                       where secret_hash = %(hash)s and revoked_at is null),
           u as (update api_keys set last_used_at = now() from k
                 where api_keys.id = k.id and (api_keys.last_used_at is null
                       or api_keys.last_used_at < now() - make_interval(secs => %(every)s))){count_part}
           select k.*{", r.hits, r.window_start" if counted else ""}
           from k{" left join r on true" if counted else ""}""",
        {"hash": digest(secret), "win": window_seconds, "every": LAST_USED_RESOLUTION_SECONDS},
    )
    row = await cur.fetchone()
    if row is None:
        return None, None
    key = ApiKey(*row[:columns])
    if not counted:
        return key, None
    hits, start = int(row[columns]), row[columns + 1]
    return key, Decision(allowed=hits <= limit, limit=limit, remaining=max(0, limit - hits),
                         reset_at=start + timedelta(seconds=window_seconds))
