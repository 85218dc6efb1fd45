"""Shared pieces of the service tests (jobs, webhooks, sweep): a real PostgreSQL with
Procrastinate's schema, a key, job submission, a draining worker, and scripted HTTP servers
on 127.0.0.1."""

from __future__ import annotations

import asyncio
import dataclasses
import http.server
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from squeezer.config import Config
from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db import keys, migrate, open_database
from squeezer.jobs.queue import ensure_schema, make_app, submit_compress
from squeezer.jobs.runner import Services
from squeezer.jobs.worker import run_worker
from squeezer.storage import open_store

LOOPBACK = ("127.0.0.0/8",)


def start_env(data: Path) -> dict[str, Any]:
    """A migrated database in ``data`` (or SQUEEZER_TEST_DATABASE_URL) and one API key."""
    db = open_database(os.environ.get("SQUEEZER_TEST_DATABASE_URL"), data)
    with db.connect() as conn:
        migrate(conn)

    async def prepare():
        app = make_app(db.url)
        conn = await db.aconnect(autocommit=True)
        async with app.open_async():
            await ensure_schema(app, conn)
        key, _ = await keys.create(conn, "service test")
        await conn.close()
        return key

    key = asyncio.run(prepare())
    return {"db": db, "data": data, "key": key}


def services(env: dict[str, Any], store: Any = None, **sections: dict[str, Any]) -> Services:
    """Services whose fetches and webhooks may reach 127.0.0.0/8 (the tests' servers).

    ``sections`` override parts of the configuration: ``webhooks={"attempts": 2}``.
    """
    settings: dict[str, dict[str, Any]] = {
        "fetch": {"allow_networks": ",".join(LOOPBACK)},
        "webhooks": {"allow_networks": ",".join(LOOPBACK)},
        "service": {"secret_key": "test signing key", "public_url": "http://squeezer.test"},
    }
    for name, values in sections.items():
        settings[name] = {**settings.get(name, {}), **values}
    config = Config(data_dir=env["data"], **settings)
    return Services(config, env["db"], store or open_store(None, env["data"]))


async def connect(env):
    return await env["db"].aconnect(autocommit=True)


async def store_upload(env, path: Path, ttl: timedelta = timedelta(hours=1)) -> uuid.UUID:
    store = open_store(None, env["data"])
    conn = await connect(env)
    try:
        file_id = uuid.uuid4()
        stored = await store.put_file(f"uploads/{file_id}", path)
        await file_rows.insert_file(conn, file_id=file_id, key_id=env["key"].id, kind="upload",
                                   name=path.name, size=stored.size, mime="application/pdf",
                                   sha256=stored.sha256, blob_key=stored.key, ttl=ttl)
        return file_id
    finally:
        await conn.close()


async def submit(env, *, path: Path | None = None, url: str | None = None,
                 options: dict | None = None, webhook_url: str | None = None,
                 ttl: timedelta = timedelta(hours=1)) -> uuid.UUID:
    file_id = await store_upload(env, path, ttl) if path is not None else None
    app = make_app(env["db"].url)
    conn = await connect(env)
    try:
        async with app.open_async():
            job = await submit_compress(app, conn, key_id=env["key"].id, input_file_id=file_id,
                                        input_url=url, options=options or {}, ttl=ttl,
                                        webhook_url=webhook_url)
        return job.id
    finally:
        await conn.close()


async def drain(env, svc: Services | None = None) -> None:
    svc = svc or services(env)
    await run_worker(make_app(env["db"].url), svc, wait=False, install_signal_handlers=False)


async def job(env, job_id):
    conn = await connect(env)
    try:
        return await job_rows.get_job(conn, job_id)
    finally:
        await conn.close()


async def wait_for(check: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1):
    """Await ``check()`` (a coroutine function) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(interval)


# --- HTTP servers on 127.0.0.1 ---------------------------------------------------------------


@dataclasses.dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Server:
    """A threaded HTTP server; ``routes[path]`` is an Answer, a list of Answers (one per
    request, the last repeated) or a callable(Request) -> Answer. Every request is recorded."""

    def __init__(self, routes: dict[str, Any], host: str = "127.0.0.1") -> None:
        self.routes = routes
        self.requests: list[Request] = []
        self._counts: dict[str, int] = {}
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                outer.requests.append(request)
                answer = outer._answer(request)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(answer.body)

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = http.server.ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def _answer(self, request: Request) -> Answer:
        path = request.path.split("?")[0]
        route = self.routes.get(path)
        if route is None:
            return Answer(404, b"not here")
        if callable(route):
            return route(request)
        if isinstance(route, list):
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
            return route[min(n, len(route) - 1)]
        return route

    def url(self, path: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path.split("?")[0] == path]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
