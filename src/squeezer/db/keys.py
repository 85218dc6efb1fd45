"""API keys: created once, shown once, stored only as a hash.

A key looks like ``sqz_<43 url-safe characters>`` (256 random bits).  The
database keeps its SHA-256 and a short prefix for listings, so a leaked
database does not leak usable keys; a fast hash is right here because the
secret is random, not a password.  Unknown, revoked and malformed keys are
indistinguishable to :func:`authenticate` (all give ``None``), so the API can
answer them with one identical 401.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg.rows import class_row

PREFIX = "sqz_"
_SHAPE = re.compile(r"^sqz_[A-Za-z0-9_-]{43}$")
SHOWN_PREFIX = 12
WEBHOOK_SECRET_PREFIX = "whsec_"


@dataclass(frozen=True)
class ApiKey:
    id: uuid.UUID
    name: str
    prefix: str
    webhook_secret: str
    is_admin: bool
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


_COLUMNS = "id, name, prefix, webhook_secret, is_admin, created_at, last_used_at, revoked_at"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def new_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + standard base64 of 32 random bytes.

    Receivers' libraries (standardwebhooks, svix) base64-decode what follows the
    prefix and use the bytes as the HMAC key; see docs/webhooks.md.
    """
    return WEBHOOK_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("utf-8")).digest()


async def create(conn: psycopg.AsyncConnection, name: str, *, admin: bool = False) -> tuple[ApiKey, str]:
    """Create a key; return its record and the secret, which is never retrievable again."""
    secret = new_secret()
    webhook_secret = new_webhook_secret()
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            f"""insert into api_keys (id, name, prefix, secret_hash, webhook_secret, is_admin)
                values (%s, %s, %s, %s, %s, %s) returning {_COLUMNS}""",
            (uuid.uuid4(), name, secret[:SHOWN_PREFIX], digest(secret), webhook_secret, admin),
        )
        record = await cur.fetchone()
    assert record is not None
    return record, secret


async def authenticate(conn: psycopg.AsyncConnection, secret: str | None) -> ApiKey | None:
    """The live key for ``secret``, or None for anything else."""
    if not secret or not _SHAPE.match(secret):
        return None
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            f"""update api_keys set last_used_at = now()
                where secret_hash = %s and revoked_at is null returning {_COLUMNS}""",
            (digest(secret),),
        )
        return await cur.fetchone()


async def list_keys(conn: psycopg.AsyncConnection, *, include_revoked: bool = False) -> list[ApiKey]:
    where = "" if include_revoked else "where revoked_at is null"
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(f"select {_COLUMNS} from api_keys {where} order by created_at, id")
        return await cur.fetchall()


async def find(conn: psycopg.AsyncConnection, id_or_prefix: str) -> list[ApiKey]:
    """Keys whose id or shown prefix starts with ``id_or_prefix`` (for the CLI)."""
    async with conn.cursor(row_factory=class_row(ApiKey)) as cur:
        await cur.execute(
            f"""select {_COLUMNS} from api_keys
                where id::text like %s or prefix like %s order by created_at""",
            (id_or_prefix.lower() + "%", id_or_prefix + "%"),
        )
        return await cur.fetchall()


async def revoke(conn: psycopg.AsyncConnection, key_id: uuid.UUID) -> bool:
    """Revoke a key; True when it was live.  Revocation is immediate for every process."""
    cur = await conn.execute(
        "update api_keys set revoked_at = now() where id = %s and revoked_at is null", (key_id,)
    )
    return cur.rowcount == 1


async def count_live(conn: psycopg.AsyncConnection) -> int:
    cur = await conn.execute("select count(*) from api_keys where revoked_at is null")
    row = await cur.fetchone()
    return int(row[0]) if row else 0
