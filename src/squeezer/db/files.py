"""File rows: uploads and results, each a blob in the store with its metadata and expiry.

Every query that serves a client filters on its ``key_id``: one key never
sees another's files.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import class_row


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
    deleted_at: datetime | None = None
    sha1: str | None = None  # migration 0006; None for files stored before it


_FILE = ("id, key_id, kind, name, size, mime, sha256, blob_key, created_at, expires_at, deleted_at, "
         "sha1")


async def insert_file(conn: psycopg.AsyncConnection, *, file_id: uuid.UUID, key_id: uuid.UUID,
                      kind: str, name: str, size: int, mime: str, sha256: str, blob_key: str,
                      ttl: timedelta, sha1: str | None = None) -> FileRow:
    """Record a stored blob; inserting the same id again (a re-run) returns the first row."""
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"""insert into files (id, key_id, kind, name, size, mime, sha256, blob_key, expires_at,
                                   sha1)
                values (%s, %s, %s, %s, %s, %s, %s, %s, now() + %s, %s)
                on conflict (id) do update set sha1 = coalesce(files.sha1, excluded.sha1)
                returning {_FILE}""",
            (file_id, key_id, kind, name, size, mime, sha256, blob_key, ttl, sha1),
        )
        row = await cur.fetchone()
    assert row is not None
    return row


async def get_file(conn: psycopg.AsyncConnection, file_id: uuid.UUID) -> FileRow | None:
    """A live (not deleted) file, whoever owns it (workers and signed downloads)."""
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(f"select {_FILE} from files where id = %s and deleted_at is null",
                          (file_id,))
        return await cur.fetchone()


async def find_file(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                    file_id: uuid.UUID) -> FileRow | None:
    """``key_id``'s file, deleted or not (a deleted one answers 410, a missing one 404)."""
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(f"select {_FILE} from files where id = %s and key_id = %s",
                          (file_id, key_id))
        return await cur.fetchone()


async def set_sha1(conn: psycopg.AsyncConnection, file_id: uuid.UUID, sha1: str) -> None:
    """Record a file's SHA-1 once (computed by the worker, or later for older files)."""
    await conn.execute("update files set sha1 = %s where id = %s and sha1 is null",
                       (sha1, file_id))


async def set_sha256(conn: psycopg.AsyncConnection, file_id: uuid.UUID, sha256: str) -> None:
    """Record the SHA-256 of a file uploaded straight to the bucket (routes.direct), once a
    worker has read its bytes."""
    await conn.execute("update files set sha256 = %s where id = %s and sha256 = ''",
                       (sha256, file_id))


async def mark_file_deleted(conn: psycopg.AsyncConnection, file_id: uuid.UUID) -> bool:
    cur = await conn.execute(
        "update files set deleted_at = now() where id = %s and deleted_at is null", (file_id,)
    )
    return cur.rowcount == 1


async def expired_files(conn: psycopg.AsyncConnection, limit: int = 500) -> list[FileRow]:
    """Live files past their ``expires_at``, oldest first (the sweep deletes their blobs)."""
    async with conn.cursor(row_factory=class_row(FileRow)) as cur:
        await cur.execute(
            f"""select {_FILE} from files where deleted_at is null and expires_at <= now()
                order by expires_at limit %s""",
            (limit,),
        )
        return await cur.fetchall()


# --- jobs --------------------------------------------------------------------------------------
