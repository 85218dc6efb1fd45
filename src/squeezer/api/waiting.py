"""Long polling: wait for a job to change without asking the database in a loop.

One ``LISTEN squeezer_jobs`` connection per API process (the ``jobs_notify``
trigger of migration 0002 announces every change of a job's state or
progress, whichever process made it; since migration 0007 the notice carries
the new state) wakes the requests waiting on that job.  Waiters still re-read
the row every few seconds, so a dropped listener costs latency, never a hung
request.

The states of recently announced jobs are kept for a while: a request that
starts watching a job it has just created cannot miss a notice that arrived
before it started watching, so it need not read the row first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field

import psycopg

from squeezer.db.jobs import CHANNEL

log = logging.getLogger(__name__)
#: the longest a waiter sleeps without re-reading the job (listener lost, notice missed)
RECHECK_SECONDS = 2.0
#: how long (and how many) announced states are remembered for watchers that start late
RECENT_SECONDS = 60.0
RECENT_MAX = 20_000


@dataclass(eq=False)
class Watch:
    """One waiting request: set when its job changes; ``state`` is the last announced one
    (empty when the notice did not say, e.g. from a server before migration 0007)."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    state: str = ""

    def notice(self, state: str) -> None:
        self.state = state
        self.event.set()


class JobWaiter:
    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._events: dict[uuid.UUID, set[Watch]] = defaultdict(set)
        self._recent: OrderedDict[uuid.UUID, tuple[float, str]] = OrderedDict()
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
                        ident, _, state = notice.payload.partition(" ")
                        try:
                            job_id = uuid.UUID(ident)
                        except ValueError:
                            continue
                        self._remember(job_id, state)
                        for watch in self._events.get(job_id, ()):
                            watch.notice(state)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - reconnect whatever happened
                log.warning("job listener lost its connection (%s); reconnecting", exc)
                await asyncio.sleep(1.0)

    def _remember(self, job_id: uuid.UUID, state: str) -> None:
        now = time.monotonic()
        self._recent[job_id] = (now, state)
        self._recent.move_to_end(job_id)
        while self._recent and (len(self._recent) > RECENT_MAX
                                or next(iter(self._recent.values()))[0] < now - RECENT_SECONDS):
            self._recent.popitem(last=False)

    @contextlib.asynccontextmanager
    async def watch(self, job_id: uuid.UUID):
        """A :class:`Watch` noticed whenever ``job_id`` changes, for the body of the ``with``
        (already noticed if a change was announced in the last RECENT_SECONDS)."""
        watch = Watch()
        recent = self._recent.get(job_id)
        if recent is not None:
            watch.notice(recent[1])
        self._events[job_id].add(watch)
        try:
            yield watch
        finally:
            self._events[job_id].discard(watch)
            if not self._events[job_id]:
                self._events.pop(job_id, None)

    @staticmethod
    async def sleep(watch: Watch, seconds: float) -> bool:
        """Until the job changes or ``seconds`` pass (at most RECHECK_SECONDS); whether a
        notice came."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(watch.event.wait(), timeout=min(seconds, RECHECK_SECONDS))
        noticed = watch.event.is_set()
        watch.event.clear()
        return noticed
