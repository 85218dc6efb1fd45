"""Storage connector rows (migration 0004): a key's sealed provider credentials.

Only sealed bytes are stored (:mod:`squeezer.storage.connectors` seals and
opens them); every query filters on the owning ``key_id``, so one key never
sees or uses another's connector.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg


@dataclass(frozen=True)
class Connector:
    id: uuid.UUID
    key_id: uuid.UUID
    provider: str  # s3 | gcs | azure
    name: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What answers show: never a credential."""
        return {"id": str(self.id), "provider": self.provider, "name": self.name,
                "created_at": self.created_at.isoformat().replace("+00:00", "Z")}


_COLS = "id, key_id, provider, name, created_at"


async def insert(conn: psycopg.AsyncConnection, *, connector_id: uuid.UUID, key_id: uuid.UUID,
                 provider: str, name: str, sealed: bytes) -> Connector:
    cur = await conn.execute(
        f"""insert into storage_connectors (id, key_id, provider, name, sealed)
            values (%s, %s, %s, %s, %s) returning {_COLS}""",
        (connector_id, key_id, provider, name, sealed))
    row = await cur.fetchone()
    assert row is not None
    return Connector(*row)


async def listing(conn: psycopg.AsyncConnection, key_id: uuid.UUID) -> list[Connector]:
    cur = await conn.execute(
        f"select {_COLS} from storage_connectors where key_id = %s order by created_at desc",
        (key_id,))
    return [Connector(*row) for row in await cur.fetchall()]


async def delete(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                 connector_id: uuid.UUID) -> bool:
    cur = await conn.execute("delete from storage_connectors where id = %s and key_id = %s",
                             (connector_id, key_id))
    return cur.rowcount == 1


async def sealed(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                 connector_id: uuid.UUID) -> tuple[Connector, bytes] | None:
    """``key_id``'s connector and its sealed settings, or None."""
    cur = await conn.execute(
        f"select {_COLS}, sealed from storage_connectors where id = %s and key_id = %s",
        (connector_id, key_id))
    row = await cur.fetchone()
    if row is None:
        return None
    return Connector(*row[:5]), bytes(row[5])
