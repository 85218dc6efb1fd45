"""A worker process: takes compression jobs from the queue until told to stop."""

from __future__ import annotations

import procrastinate

from squeezer.jobs.queue import QUEUE
from squeezer.jobs.runner import Services

#: Seconds between a worker's heartbeats; a worker silent for STALLED_AFTER is presumed dead.
HEARTBEAT_SECONDS = 2.0
STALLED_AFTER = 10.0


async def run_worker(app: procrastinate.App, services: Services, *, concurrency: int = 1,
                     wait: bool = True, install_signal_handlers: bool = True) -> None:
    """Run jobs with ``services``; with ``wait=False``, return once the queue is empty."""
    async with app.open_async():
        await app.run_worker_async(
            queues=[QUEUE],
            concurrency=concurrency,
            wait=wait,
            additional_context={"services": services},
            install_signal_handlers=install_signal_handlers,
            update_heartbeat_interval=HEARTBEAT_SECONDS,
            stalled_worker_timeout=STALLED_AFTER,
            listen_notify=wait,
            shutdown_graceful_timeout=30,
        )
