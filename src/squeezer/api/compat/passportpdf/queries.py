"""The SQL of PassportPDF's open documents (``compat_passportpdf_documents``, migration 0005).

A document is the file it was loaded as (``file_id``) and its current version
(``current_file_id``); ``versions`` lists every file it has had, so that
closing it deletes them all.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import psycopg


@dataclass(frozen=True)
class Document:
    file_id: uuid.UUID
    current_file_id: uuid.UUID
    name: str
    page_count: int | None
    versions: list[uuid.UUID]


async def find(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
               file_id: uuid.UUID) -> Document | None:
    cur = await conn.execute(
        "select file_id, current_file_id, name, page_count, versions "
        "from compat_passportpdf_documents where file_id = %s and key_id = %s",
        (file_id, key_id))
    row = await cur.fetchone()
    return Document(row[0], row[1], row[2], row[3], list(row[4])) if row else None


async def insert(conn: psycopg.AsyncConnection, *, key_id: uuid.UUID, file_id: uuid.UUID,
                 name: str, page_count: int | None, versions: list[uuid.UUID]) -> None:
    await conn.execute(
        "insert into compat_passportpdf_documents (file_id, key_id, current_file_id, name, "
        "page_count, versions) values (%s, %s, %s, %s, %s, %s)",
        (file_id, key_id, file_id, name, page_count, versions))


async def add_version(conn: psycopg.AsyncConnection, key_id: uuid.UUID, file_id: uuid.UUID,
                      version: uuid.UUID) -> None:
    """``version`` becomes the document's current file (and one of its versions)."""
    await conn.execute(
        "update compat_passportpdf_documents set current_file_id = %s, updated_at = now(), "
        "versions = array_append(versions, %s) where file_id = %s and key_id = %s",
        (version, version, file_id, key_id))


async def delete(conn: psycopg.AsyncConnection, key_id: uuid.UUID,
                 file_id: uuid.UUID) -> list[uuid.UUID]:
    """Forget the document; the files it had (to delete), or [] when it was not open."""
    cur = await conn.execute(
        "delete from compat_passportpdf_documents where file_id = %s and key_id = %s "
        "returning versions", (file_id, key_id))
    row = await cur.fetchone()
    return list(row[0]) if row else []
