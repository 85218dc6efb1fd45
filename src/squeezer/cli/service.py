"""``squeezer serve | api | worker``: the HTTP service, whole or in halves.

``serve`` is the one-machine deployment: it starts (or joins) the embedded
PostgreSQL, applies migrations, supervises N worker processes and runs the
API in this process.  ``api`` and ``worker`` are its two halves for
deployments across machines that share one PostgreSQL and one object store
(docs/deploy.md).  SIGINT/SIGTERM stop taking work, let workers finish or
release their jobs, and exit 0.

What a user sees: one line saying it is starting (the embedded PostgreSQL's
first start takes seconds), where the database's log goes (PostgreSQL and
pgserver never write to the terminal), then, once the API listens, the
address to open and, on a first start, the admin key, set apart from the
request log.  Worker processes watch the ``serve`` that started them and stop
when it is gone (a ``kill -9`` of it leaves no worker behind).
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
    p.add_argument("--supervisor", type=int, default=None, metavar="PID",
                   help=argparse.SUPPRESS)  # set by `serve`: stop when that process is gone


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


def prepare_database(config: Any, *, first_key: bool) -> tuple[Any, str | None]:
    """Open the database, bring both schemas up to date, and on an empty one make a key.

    Returns the database and the new admin key's secret (None when keys
    existed): the caller prints it once; the database keeps only its hash.
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
    return db, (created[1] if created is not None else None)


def _note_stop(signum: int, frame: object) -> None:
    log.info("stop requested (%s)", signal.Signals(signum).name)


def _uvicorn(app: Any, args: argparse.Namespace, config: Any, on_started: Any = None) -> None:
    import uvicorn

    from squeezer.api.deadlines import guarded_protocol

    service = config.service
    server = uvicorn.Server(uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level,
        access_log=not args.no_access_log, lifespan="on", timeout_graceful_shutdown=10,
        proxy_headers=bool(args.proxy_headers), forwarded_allow_ips=args.proxy_headers or None,
        server_header=False,
        # header and body deadlines and a minimum upload rate (api/deadlines.py)
        http=guarded_protocol(service.header_timeout_seconds, service.body_timeout_seconds,
                              service.min_upload_bytes_per_second),
    ))
    if args.log_level == "info":  # uvicorn's start-up lines repeat what our banner says
        logging.getLogger("uvicorn.error").setLevel(logging.WARNING)
    if on_started is not None:
        threading.Thread(target=_when_started, args=(server, on_started), daemon=True,
                         name="banner").start()
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


def _when_started(server: Any, then: Any) -> None:
    """Call ``then()`` once uvicorn listens (nothing if it stops first)."""
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    then()


def _banner(url: str, secret: str | None, *, open_mode: bool) -> None:
    """What the user needs, on stdout, set apart from the log lines around it."""
    lines = ["", f"  Squeezer is ready: {url}/"]
    if secret:
        lines.append(f"  Admin API key (new; shown only this once, paste it into the page): "
                     f"{secret}")
        lines.append("  (manage keys with `squeezer keys`)")
    if open_mode:
        lines.append("  Open mode: the page works without a key for anyone who can reach it.")
    lines += [f"  Stop with Ctrl-C. API documentation: {url}/docs", ""]
    print("\n".join(lines), flush=True)


def _key_only(secret: str) -> None:
    """The new admin key when the API did not start: it exists, so it must still be shown."""
    print(f"An admin API key was created (shown only this once): {secret}", flush=True)


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
            [sys.executable, "-m", "squeezer", "worker", "--log-level", self.log_level,
             "--supervisor", str(os.getpid())],
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
           first_key: bool, quiet: bool = False) -> tuple[Any, Any, str | None] | None:
    """Configuration, logging, a migrated database and the new admin key's secret (if one was
    made); None (after one error line) without a database."""
    from squeezer.db.errors import DatabaseError

    config = load_config(parser)
    _logging(args.log_level)
    embedded = not config.database.url
    started = time.monotonic()
    if embedded and not quiet:
        first = not (config.data_dir / "postgres" / "PG_VERSION").exists()
        _stderr_line(f"squeezer: starting the embedded PostgreSQL in {config.data_dir}"
                     + (" (first start: about 10 s)…" if first else "…"))
    try:
        db, secret = prepare_database(config, first_key=first_key)
    except DatabaseError as exc:
        _stderr_line(error_line("database", exc.code, exc.message))
        return None
    if embedded and not quiet:
        _stderr_line(f"squeezer: database ready in {time.monotonic() - started:.1f} s; "
                     f"its log: {db.log_path}")
    return config, db, secret


def _service(args: argparse.Namespace, parser: argparse.ArgumentParser, *, workers: int) -> int:
    from squeezer.api import create_app

    opened = _start(args, parser, first_key=True)
    if opened is None:
        return EXIT_FAILED
    config, db, secret = opened
    public = (config.service.public_url or f"http://{args.host}:{args.port}").rstrip("/")
    pool = None
    shown = threading.Event()

    def banner() -> None:
        _banner(public, secret, open_mode=args.open)
        shown.set()

    try:
        if workers:
            env = {**os.environ, "SQUEEZER_DATABASE_URL": db.url, "SQUEEZER_PUBLIC_URL": public,
                   "SQUEEZER_DATA_DIR": str(config.data_dir)}
            pool = WorkerPool(workers, env, args.log_level, config.workers.shutdown_grace_seconds)
            pool.start()
        _stderr_line(f"squeezer: starting the API on {args.host}:{args.port}"
                     + (f" and {workers} worker process{'es' if workers != 1 else ''}"
                        if workers else "") + "…")
        app = create_app(config, database=db)
        if args.open:
            from squeezer.web import open_mode
            open_mode.enable(app, config, db, host=args.host, port=args.port)
        _uvicorn(app, args, config, on_started=banner)
    except OSError as exc:
        if secret and not shown.is_set():
            _key_only(secret)
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

    opened = _start(args, parser, first_key=False, quiet=True)
    if opened is None:
        return EXIT_FAILED
    config, db, _ = opened
    if args.supervisor:
        _watch_supervisor(args.supervisor)
    try:
        store = open_store(config.storage.url, config.data_dir, config.storage)
        services = Services(config, db, store)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # run_worker installs its own
        asyncio.run(run_worker(make_app(db.url, sweep_seconds=config.workers.sweep_seconds), services,
                               concurrency=args.concurrency or 1))
    finally:
        db.close()
    return EXIT_OK


def _watch_supervisor(pid: int) -> None:
    """Stop this worker (as SIGTERM does: jobs in flight finish or are released) once the
    ``serve`` process ``pid`` that started it is gone, e.g. killed with ``kill -9``: the next
    ``serve`` starts workers of its own, and an orphan would keep using a database that a
    clean stop of that one shuts down."""

    def watch() -> None:
        while os.getppid() == pid:
            time.sleep(1.0)
        log.warning("the serve process %d that started this worker is gone; stopping", pid)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()
