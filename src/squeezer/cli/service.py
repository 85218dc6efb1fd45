"""``squeezer serve | api | worker``: the HTTP service, whole or in halves.

``serve`` is the one-machine deployment: it starts (or joins) the embedded
PostgreSQL, applies migrations, supervises N worker processes and runs the
API in this process.  ``api`` and ``worker`` are its two halves for
deployments across machines that share one PostgreSQL and one object store
(docs/deploy.md).  SIGINT/SIGTERM stop taking work, let workers finish or
release their jobs, and exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from squeezer.cli.base import EXIT_FAILED, EXIT_OK, _stderr_line, command, error_line, load_config

#: seconds beyond SQUEEZER_SHUTDOWN_GRACE_SECONDS a worker gets to requeue its jobs and exit
WORKER_EXIT_SECONDS = 10.0
log = logging.getLogger("squeezer.serve")


def _api_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--no-access-log", action="store_true", help="do not log every request")
    p.add_argument("--proxy-headers", metavar="IPS", default=None,
                   help="trust X-Forwarded-For/-Proto from these comma-separated proxy addresses "
                   "(behind a load balancer; or set SQUEEZER_PUBLIC_URL)")
    p.add_argument("--open", action="store_true",
                   help="trusted network only: the web page at / works without an API key "
                   "(it is handed a key made for this run; README, 'HTTP service')")


def _worker_count(value: str) -> int:
    n = int(value)
    if n < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return n


def _serve_arguments(p: argparse.ArgumentParser) -> None:
    _api_arguments(p)
    p.add_argument("--workers", type=_worker_count, default=os.cpu_count() or 1,
                   help="worker processes to start (default: one per CPU; 0 for none)")


def _worker_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--concurrency", type=_worker_count, default=1,
                   help="jobs this process runs at once (default 1: each job uses a CPU)")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"])


def _logging(level: str) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("psycopg", "obstore", "procrastinate"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def prepare_database(config: Any, *, first_key: bool) -> Any:
    """Open the database, bring both schemas up to date, and on an empty one make a key.

    The first key is printed on stdout once; the database keeps only its hash.
    """
    from squeezer.db import keys, migrate, open_database
    from squeezer.jobs.queue import ensure_schema, make_app

    db = open_database(config.database.url, config.data_dir)
    try:
        with db.connect() as conn:
            migrate(conn)

        async def finish() -> tuple[Any, str] | None:
            app = make_app(db.url)
            conn = await db.aconnect(autocommit=True)
            try:
                async with app.open_async():
                    await ensure_schema(app, conn)
                if not first_key:
                    return None
                async with conn.transaction():
                    await conn.execute("select pg_advisory_xact_lock(%s)", (0x5151_EE30,))
                    if await keys.count_live(conn):
                        return None
                    return await keys.create(conn, "admin (first start)", admin=True)
            finally:
                await conn.close()

        created = asyncio.run(finish())
    except BaseException:
        db.close()
        raise
    if created is not None:
        key, secret = created
        print("No API key existed, so this admin key was created. It is shown only this once:")
        print(f"  {secret}")
        print(f"  (id {key.id}; manage keys with `squeezer keys`)", flush=True)
    return db


def _note_stop(signum: int, frame: object) -> None:
    log.info("stop requested (%s)", signal.Signals(signum).name)


def _uvicorn(app: Any, args: argparse.Namespace) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level,
        access_log=not args.no_access_log, lifespan="on", timeout_graceful_shutdown=10,
        proxy_headers=bool(args.proxy_headers), forwarded_allow_ips=args.proxy_headers or None,
        server_header=False,
    ))
    # uvicorn turns SIGINT/SIGTERM into a graceful shutdown, then re-raises the signal for the
    # handler that was there before; ours only notes it, so that the workers are stopped in
    # order and the exit is clean (0) instead of an "interrupted" unwinding.
    previous = {sig: signal.signal(sig, _note_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if not server.started:
        raise OSError(f"the API did not start on {args.host}:{args.port} (see the log above)")


class WorkerPool:
    """Worker processes kept alive: one that dies is started again (after a pause)."""

    def __init__(self, count: int, env: dict[str, str], log_level: str,
                 grace_seconds: float) -> None:
        self.count, self.env, self.log_level = count, env, log_level
        self.grace_seconds = grace_seconds + WORKER_EXIT_SECONDS
        self.procs: list[subprocess.Popen[bytes]] = []
        self.stopping = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="worker-supervisor", daemon=True)

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "squeezer", "worker", "--log-level", self.log_level],
            env=self.env, start_new_session=True,  # Ctrl-C reaches them through us, in order
        )

    def start(self) -> None:
        self.procs = [self._spawn() for _ in range(self.count)]
        self._thread.start()

    def _watch(self) -> None:
        while not self.stopping.wait(1.0):
            for i, proc in enumerate(self.procs):
                if proc.poll() is not None and not self.stopping.is_set():
                    log.warning("worker %d exited with %s; starting another", proc.pid,
                                proc.returncode)
                    time.sleep(1.0)
                    self.procs[i] = self._spawn()

    def stop(self) -> None:
        self.stopping.set()
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        for proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _start(args: argparse.Namespace, parser: argparse.ArgumentParser, *,
           first_key: bool) -> tuple[Any, Any] | None:
    """Configuration, logging and a migrated database; None (after one error line) without one."""
    from squeezer.db.errors import DatabaseError

    config = load_config(parser)
    _logging(args.log_level)
    try:
        return config, prepare_database(config, first_key=first_key)
    except DatabaseError as exc:
        _stderr_line(error_line("database", exc.code, exc.message))
        return None


def _service(args: argparse.Namespace, parser: argparse.ArgumentParser, *, workers: int) -> int:
    from squeezer.api import create_app

    opened = _start(args, parser, first_key=True)
    if opened is None:
        return EXIT_FAILED
    config, db = opened
    public = config.service.public_url or f"http://{args.host}:{args.port}"
    pool = None
    try:
        if workers:
            env = {**os.environ, "SQUEEZER_DATABASE_URL": db.url, "SQUEEZER_PUBLIC_URL": public,
                   "SQUEEZER_DATA_DIR": str(config.data_dir)}
            pool = WorkerPool(workers, env, args.log_level, config.workers.shutdown_grace_seconds)
            pool.start()
        _stderr_line(f"squeezer: API on {public} ({workers} worker processes; "
                     f"data in {config.data_dir}); docs at {public}/docs")
        app = create_app(config, database=db)
        if args.open:
            from squeezer.web import open_mode
            open_mode.enable(app, config, db, host=args.host, port=args.port)
        _uvicorn(app, args)
    except OSError as exc:
        _stderr_line(error_line("serve", "api_not_started", str(exc)))
        return EXIT_FAILED
    finally:
        if pool is not None:
            _stderr_line("squeezer: stopping workers (they finish or release their jobs)")
            pool.stop()
        db.close()
    _stderr_line("squeezer: stopped")
    return EXIT_OK


@command("serve",
         arguments=_serve_arguments,
         description="Start everything on one machine: the embedded PostgreSQL (unless "
         "SQUEEZER_DATABASE_URL is set), migrations, N worker processes and the API.")
def run_serve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return _service(args, parser, workers=args.workers)


@command("api", arguments=_api_arguments,
         description="The API half of a multi-machine deployment: set SQUEEZER_DATABASE_URL, "
         "SQUEEZER_STORAGE_URL and SQUEEZER_SECRET_KEY to the values every machine shares.")
def run_api(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    return _service(args, parser, workers=0)


@command("worker",
         arguments=_worker_arguments,
         description="The worker half of a deployment: takes jobs from the shared PostgreSQL "
         "queue, reads and writes blobs in the shared store. Stop it with SIGTERM.")
def run_worker_command(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.jobs.queue import make_app
    from squeezer.jobs.runner import Services
    from squeezer.jobs.worker import run_worker
    from squeezer.storage import open_store

    opened = _start(args, parser, first_key=False)
    if opened is None:
        return EXIT_FAILED
    config, db = opened
    try:
        store = open_store(config.storage.url, config.data_dir, config.storage)
        services = Services(config, db, store)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # run_worker installs its own
        asyncio.run(run_worker(make_app(db.url, sweep_seconds=config.workers.sweep_seconds), services,
                               concurrency=args.concurrency or 1))
    finally:
        db.close()
    return EXIT_OK
