"""A worker process: compression jobs, webhook deliveries and the periodic sweep.

Two Procrastinate workers share the process: one takes compression jobs
(``concurrency`` at a time, each in its own engine child), the other takes
webhook attempts and sweeps, so a slow receiver or a sweep never waits behind
a long compression (and the sweep still runs when every slot is busy).

SIGTERM or SIGINT: both stop taking jobs; jobs in flight get
``services.config.workers.shutdown_grace_seconds`` to finish.  A compression still running
then has its engine child killed and is put back in the queue at once
(:class:`squeezer.jobs.queue.WorkerShutdown`), and the function returns, so
the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal

import procrastinate
from procrastinate.worker import Worker

from squeezer.jobs import isolation, scratch
from squeezer.jobs.queue import MAINTENANCE_QUEUE, QUEUE, WEBHOOK_QUEUE
from squeezer.jobs.runner import Services

log = logging.getLogger(__name__)

#: Seconds between a worker's heartbeats; a worker silent for STALLED_AFTER is presumed dead.
HEARTBEAT_SECONDS = 2.0
STALLED_AFTER = 10.0
#: webhook attempts and sweeps run side by side, apart from compressions
SIDE_CONCURRENCY = 4
#: seconds before the queue's workers start again after they stopped on their own
RESTART_SECONDS = 2.0
#: Procrastinate workers one worker process runs (compressions; webhooks and sweeps): each
#: heartbeats as a worker of its own, so ``/metrics`` divides by this to count processes
QUEUE_WORKERS_PER_PROCESS = 2


async def _remove_orphans_every(seconds: float) -> None:
    while True:
        try:
            await asyncio.to_thread(scratch.remove_orphans)
        except Exception:
            log.warning("removing orphaned job directories failed", exc_info=True)
        await asyncio.sleep(seconds)


async def run_worker(app: procrastinate.App, services: Services, *, concurrency: int = 1,
                     wait: bool = True, install_signal_handlers: bool = True) -> None:
    """Run jobs with ``services``; with ``wait=False``, return once the queues are empty."""
    common = {
        "wait": wait,
        "additional_context": {"services": services},
        "install_signal_handlers": False,
        "update_heartbeat_interval": HEARTBEAT_SECONDS,
        "stalled_worker_timeout": STALLED_AFTER,
        "listen_notify": wait,
        "shutdown_graceful_timeout": services.config.workers.shutdown_grace_seconds,
        "fetch_job_polling_interval": 1.0 if wait else 5.0,
    }
    # what a killed worker on this machine left in the temporary directory (jobs.scratch),
    # now and every so often (a machine's workers may run for months)
    if not wait:
        await asyncio.to_thread(scratch.remove_orphans)
        await _run(app, services, concurrency, wait, install_signal_handlers, common)
        return
    warning = scratch.fallback_warning()
    if warning:
        log.warning(warning)
    tidying = asyncio.create_task(_remove_orphans_every(scratch.ORPHAN_AGE / 4))
    # engine children forked ahead of the jobs (jobs.prefork): a job's child is ready when it
    # arrives, and the forkserver starts now rather than on the first job
    isolation.keep_warm(concurrency, services.config.workers.child_jobs,
                        services.config.workers.job_memory_bytes)
    stop = _Stop()
    try:
        # Procrastinate's workers stop by themselves when their database connection is cut
        # (a PostgreSQL restart or failover: the heartbeat or the listener fails): start them
        # again, rather than exit, until we are asked to stop
        while True:
            try:
                await _run(app, services, concurrency, wait, install_signal_handlers, common,
                           stop)
            except Exception as exc:  # any failure to reach the database
                if stop.requested:
                    raise
                log.warning("the queue stopped (%s); starting again in %g s", exc,
                            RESTART_SECONDS)
            else:
                if stop.requested:
                    return
                log.warning("the queue's workers stopped on their own (database connection "
                            "lost?); starting again in %g s", RESTART_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.event.wait(), RESTART_SECONDS)
            if stop.requested:
                return
    finally:
        tidying.cancel()
        await asyncio.to_thread(isolation.keep_warm, 0)


class _Stop:
    """Whether a stop was asked for (SIGTERM/SIGINT), across restarts of the queue's workers."""

    def __init__(self) -> None:
        self.requested = False
        self.event = asyncio.Event()

    def set(self) -> None:
        self.requested = True
        self.event.set()


async def _run(app: procrastinate.App, services: Services, concurrency: int, wait: bool,
               install_signal_handlers: bool, common: dict, asked: _Stop | None = None) -> None:
    async with app.open_async():
        app.perform_import_paths()
        workers = [
            Worker(app=app, queues=[QUEUE], name="compress", concurrency=concurrency, **common),
            Worker(app=app, queues=[WEBHOOK_QUEUE, MAINTENANCE_QUEUE], name="side",
                   concurrency=SIDE_CONCURRENCY, **common),
        ]
        assert len(workers) == QUEUE_WORKERS_PER_PROCESS

        def stop() -> None:
            for worker in workers:
                worker.stop()

        def requested() -> None:
            # only a signal is a request to stop; the clean-up below also stops the workers
            # when one of them ended on its own, which the caller restarts instead
            log.info("stop requested: finishing jobs in flight (at most %g s)",
                     services.config.workers.shutdown_grace_seconds)
            if asked is not None:
                asked.set()
            stop()

        loop = asyncio.get_running_loop()
        installed = []
        if install_signal_handlers:
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(signum, requested)
                    installed.append(signum)
        try:
            if wait:
                runs = [asyncio.create_task(worker.run()) for worker in workers]
                try:
                    await asyncio.wait(runs, return_when=asyncio.FIRST_COMPLETED)
                finally:  # one ended (stopped, or a side task failed) or we were cancelled
                    stop()
                    await asyncio.gather(*runs, return_exceptions=True)
                for run in runs:
                    if not run.cancelled() and (error := run.exception()) is not None:
                        raise error
            else:
                # drain: side jobs first (webhooks of jobs ended earlier), then compressions,
                # then side jobs again (webhooks those compressions queued)
                await workers[1].run()
                await workers[0].run()
                await workers[1].run()
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)
            await services.close()
