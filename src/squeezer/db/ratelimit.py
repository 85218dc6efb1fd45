"""Per-key rate limits shared by every API process, kept in PostgreSQL.

A rolling window (e.g. 100 000 requests in any 15 minutes), as Compressor.app
documents its limit, approximated the way large deployments do (a "sliding
window counter"): requests are counted per fixed window, and a request is
allowed when the current window's count plus the previous window's count,
weighted by how much of it still lies within the last ``window`` seconds, is
within the limit.  There is no burst at a window edge, as with fixed windows,
and it still costs one statement per request: the upsert's row lock serialises
concurrent requests of one key across processes and machines, and different
keys never contend.  Refused requests are taken back out of the count, so a
client that waits as told is let in again.
"""

from __future__ import annotations

import math
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
    #: allowed: when the current counting window ends; refused: when a request fits again
    reset_at: datetime

    def retry_after(self, now: datetime) -> int:
        """Whole seconds until :attr:`reset_at` (at least 1)."""
        return max(1, int((self.reset_at - now).total_seconds() + 0.999))


def weighted(previous: int, current: int, elapsed: float, window: float) -> float:
    """The rolling count: the previous window's requests still within the last ``window``
    seconds (assumed evenly spread) plus the current window's."""
    return previous * max(0.0, 1.0 - elapsed / window) + current


def wait_for_room(previous: int, current: int, elapsed: float, window: float,
                  limit: int) -> float:
    """Seconds from now until one more request fits under ``limit`` (``current`` counts the
    allowed requests of the current window, ``elapsed`` is how far into it we are)."""
    if current + 1 <= limit:
        if previous <= 0:
            return 0.0
        # previous * (1 - (elapsed + t) / window) + current + 1 <= limit
        t = window * (1.0 - (limit - current - 1) / previous) - elapsed
        return max(0.0, t)
    # the current window alone is full: wait for it to become the previous one, then decay
    rest = window - elapsed
    if limit < 1:
        return rest + window
    return rest + max(0.0, window * (1.0 - (limit - 1) / current))


async def hit(conn: psycopg.AsyncConnection, key_id: uuid.UUID, limit: int,
              window_seconds: int) -> Decision:
    """Count one request of ``key_id`` and decide whether it is within ``limit``."""
    cur = await conn.execute(
        """with hit as (
               insert into rate_limit_windows as w (key_id, window_start, hits)
               values (%(key)s,
                       to_timestamp(floor(extract(epoch from now()) / %(win)s) * %(win)s), 1)
               on conflict (key_id, window_start) do update set hits = w.hits + 1
               returning hits, window_start)
           select hit.hits, hit.window_start, extract(epoch from now() - hit.window_start),
                  coalesce((select p.hits from rate_limit_windows p
                            where p.key_id = %(key)s
                              and p.window_start = hit.window_start
                                                   - make_interval(secs => %(win)s)), 0),
                  now()
           from hit""",
        {"key": key_id, "win": window_seconds},
    )
    row = await cur.fetchone()
    assert row is not None
    hits, start, elapsed, previous, now = int(row[0]), row[1], float(row[2]), int(row[3]), row[4]
    window = float(window_seconds)
    estimate = weighted(previous, hits, elapsed, window)
    if estimate <= limit:
        return Decision(allowed=True, limit=limit, remaining=max(0, math.floor(limit - estimate)),
                        reset_at=start + timedelta(seconds=window_seconds))
    # refused: not counted, so that waiting as told is enough
    await conn.execute(
        "update rate_limit_windows set hits = hits - 1 where key_id = %s and window_start = %s",
        (key_id, start))
    wait = wait_for_room(previous, hits - 1, elapsed, window, limit)
    return Decision(allowed=False, limit=limit, remaining=0,
                    reset_at=now + timedelta(seconds=wait))


async def forget_old_windows(conn: psycopg.AsyncConnection, window_seconds: int) -> int:
    """Delete windows that can no longer count (run by the periodic sweep): the previous
    window still weighs in, so a row is kept for two window lengths."""
    cur = await conn.execute(
        "delete from rate_limit_windows "
        "where window_start < now() - make_interval(secs => %s)",
        (2 * window_seconds,),
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
