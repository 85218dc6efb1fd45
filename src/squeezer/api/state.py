"""What every request handler shares: configuration, database pool, blob store, queue.

Built once per API process in the app's lifespan; routes get it with
``Depends(services)``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import procrastinate
import psycopg
from fastapi import Request
from psycopg_pool import AsyncConnectionPool

from squeezer.config import Config
from squeezer.db.server import Database
from squeezer.storage import BlobStore

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from squeezer.api.waiting import JobWaiter


@dataclass
class ApiServices:
    config: Config
    database: Database
    pool: AsyncConnectionPool[Any]
    store: BlobStore
    queue: procrastinate.App
    signing_key: bytes
    waiter: JobWaiter

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        async with self.pool.connection() as conn:
            yield conn

    def base_url(self, request: Request) -> str:
        """Where clients reach us: ``SQUEEZER_PUBLIC_URL``, else the request's own origin."""
        if self.config.service.public_url:
            return self.config.service.public_url.rstrip("/")
        return str(request.base_url).rstrip("/")


def services(request: Request) -> ApiServices:
    return request.app.state.services
