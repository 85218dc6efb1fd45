"""Long polling: wait for a job to change without asking the database in a loop.

One ``LISTEN squeezer_jobs`` connection per API process (the ``jobs_notify``
trigger of migration 0002 announces every change of a job's state or
progress, whichever process made it) wakes the requests waiting on that job.
Waiters still re-read the row every few seconds, so a dropped listener costs
latency, never a hung request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict

import psycopg

from squeezer.db.jobs import CHANNEL

log = logging.getLogger(__name__)
#: the longest a waiter sleeps without re-reading the job (listener lost, notice missed)
RECHECK_SECONDS = 2.0


class JobWaiter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._events: dict[uuid.UUID, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="squeezer-job-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self) -> None:
        while True:
            try:
                conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                async with conn:
                    await conn.execute(f"listen {CHANNEL}")
                    async for notice in conn.notifies():
                        try:
                            job_id = uuid.UUID(notice.payload)
                        except ValueError:
                            continue
                        for event in self._events.get(job_id, ()):
                            event.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect whatever happened
                log.warning("job listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: uuid.UUID):
        """An event set whenever ``job_id`` changes, for the body of the ``with``."""
        event = asyncio.Event()
        self._events[job_id].add(event)
        try:
            yield event
        finally:
            self._events[job_id].discard(event)
            if not self._events[job_id]:
                self._events.pop(job_id, None)

    @staticmethod
    async def sleep(event: asyncio.Event, seconds: float) -> None:
        """Until the job changes or ``seconds`` pass (at most RECHECK_SECONDS)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout=min(seconds, RECHECK_SECONDS))
        event.clear()
