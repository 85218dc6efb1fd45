"""Schema migrations: numbered SQL files applied in order, once, under a lock.

Every process may call :func:`migrate` at start; a PostgreSQL advisory lock
makes concurrent starts (API and workers on several machines) apply each
migration exactly once.  Each file runs in its own transaction, so a failed
migration leaves the schema as it was.  A database migrated by newer code is
refused rather than silently misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import psycopg

from squeezer.db.errors import MigrationError

#: An arbitrary constant naming Squeezer's migration lock among advisory locks.
LOCK_ID = 0x5151_EE2E
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """The migrations shipped with this code, in order."""
    found = []
    for entry in resources.files("squeezer.db.migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise MigrationError(f"migration files are not numbered 1..n: {versions}")
    return found


def applied(conn: psycopg.Connection) -> list[int]:
    conn.execute(
        """create table if not exists squeezer_migrations (
               version integer primary key,
               name text not null,
               applied_at timestamptz not null default now())"""
    )
    return [row[0] for row in conn.execute("select version from squeezer_migrations order by 1")]


def migrate(conn: psycopg.Connection) -> list[str]:
    """Bring the schema up to date; return the names of the migrations applied now."""
    conn.autocommit = True
    conn.execute("select pg_advisory_lock(%s)", (LOCK_ID,))
    try:
        done = set(applied(conn))
        shipped = available()
        unknown = done - {m.version for m in shipped}
        if unknown:
            raise MigrationError(
                f"the database has migrations {sorted(unknown)} this version does not know; "
                "upgrade Squeezer"
            )
        ran = []
        for migration in shipped:
            if migration.version in done:
                continue
            try:
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "insert into squeezer_migrations (version, name) values (%s, %s)",
                        (migration.version, migration.name),
                    )
            except psycopg.Error as exc:
                raise MigrationError(
                    f"migration {migration.version:04d}_{migration.name} failed: {exc}"
                ) from None
            ran.append(f"{migration.version:04d}_{migration.name}")
        return ran
    finally:
        conn.execute("select pg_advisory_unlock(%s)", (LOCK_ID,))
