"""The FastAPI application: routes, the uniform error shape, request ids and rate headers.

``create_app(config)`` builds an app whose lifespan connects to the database
(embedded or ``SQUEEZER_DATABASE_URL``), the blob store and the queue; the
routes hold no state of their own, so any number of API processes can serve
one deployment.
"""

from __future__ import annotations

import uuid
from contextlib import asynccontextmanager

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from squeezer import __version__
from squeezer.api import errors, openapi
from squeezer.api.auth import rate_headers
from squeezer.api.bodylimit import BodyLimit
from squeezer.api.compat import routers as compat_routers
from squeezer.api.routes import (
    account,
    compress,
    direct,
    downloads,
    files,
    health,
    jobs,
    options,
    preview,
)
from squeezer.api.state import ApiServices
from squeezer.api.waiting import JobWaiter
from squeezer.config import Config
from squeezer.db import open_database
from squeezer.db.deadline import connection_kwargs, deadline_class
from squeezer.db.server import Database
from squeezer.jobs.queue import make_app
from squeezer.storage import open_store
from squeezer.web import routes as web

DESCRIPTION = """Self-hosted PDF compression.

Authenticate with `Authorization: Bearer KEY`, HTTP Basic (the key as user name) or
`x-api-key: KEY`. Every error is `{success: false, status, id, code, message}`; the `id`
is also in `X-Request-ID`. Every authenticated answer carries `X-RateLimit-Limit`,
`X-RateLimit-Remaining` and `X-RateLimit-Reset` (seconds left in the window).
"""


class RequestContext:
    """ASGI middleware: a request id for every request; id and rate headers on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["squeezer.request_id"] = uuid.uuid4().hex

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"x-request-id" not in present:
                    headers.append((b"x-request-id", scope["squeezer.request_id"].encode()))
                headers += [h for h in rate_headers(scope) if h[0] not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Config, database: Database | None = None) -> FastAPI:
    """The API for ``config``; ``database`` when the caller has already opened it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        db = database or open_database(config.database.url, config.data_dir)
        # a request waits at most the statement timeout for a connection and for each answer
        # of the database, then gets a 503 with Retry-After (db/deadline.py)
        timeouts = config.database
        pool = AsyncConnectionPool(
            db.url, min_size=1, max_size=20, open=False,
            timeout=timeouts.statement_timeout_seconds,
            connection_class=deadline_class(timeouts.statement_timeout_seconds),
            kwargs=connection_kwargs(timeouts.connect_timeout_seconds,
                                     timeouts.statement_timeout_seconds))
        await pool.open()
        queue = make_app(db.url)
        waiter = JobWaiter(db.url)
        await waiter.start()
        async with queue.open_async():
            app.state.services = ApiServices(
                config=config, database=db, pool=pool,
                store=open_store(config.storage.url, config.data_dir, config.storage), queue=queue,
                signing_key=config.signing_key(), waiter=waiter,
            )
            try:
                yield
            finally:
                await waiter.stop()
                await pool.close()
                if database is None:
                    db.close()

    app = FastAPI(title="Squeezer", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan)
    errors.install(app)
    openapi.install(app)  # every error status documented, with its schema
    for module in (files, direct, preview, jobs, compress, downloads, account, health, options):
        app.include_router(module.router)
    app.include_router(web.router)
    for router in compat_routers():
        app.include_router(router)
    # innermost first: the body limit sees the request id the context middleware sets
    app.add_middleware(BodyLimit, max_bytes=config.service.max_json_bytes)
    app.add_middleware(RequestContext)
    return app
