"""The periodic sweep: what keeps a long-running service tidy and its jobs moving.

One round (:func:`sweep_once`) deletes the blobs of expired files and marks
their rows deleted, puts jobs of dead workers back in the queue (and jobs whose queue
entry ended while their row did not: a worker that lost its database), forgets
finished rate-limit windows, removes storage leftovers of crashed uploads and
prunes Procrastinate's rows of jobs that ended more than a day ago.

Each part is independent: a blob store outage stops only the file part of
this round (it is logged, and the next round tries again), never the worker.
A session advisory lock keeps two sweeps from running at once even when
called outside the queue.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import procrastinate
import psycopg

from squeezer.db import files as file_rows
from squeezer.db import ratelimit
from squeezer.db import sweep as sweep_rows
from squeezer.storage import StorageError

if TYPE_CHECKING:
    from squeezer.jobs.runner import Services

log = logging.getLogger(__name__)

#: files handled per round at most (batches of BATCH); the rest waits for the next round
MAX_FILES_PER_ROUND = 5000
BATCH = 500
QUEUE_ROWS_KEPT_HOURS = 24
#: a queued or running job is looked at as a possible orphan only once it is this old
ORPHAN_MIN_AGE_SECONDS = 30.0


async def _expire_files(services: Services, conn: psycopg.AsyncConnection,
                        counts: dict[str, int]) -> None:
    while counts["files_deleted"] < MAX_FILES_PER_ROUND:
        batch = await file_rows.expired_files(conn, limit=BATCH)
        if not batch:
            return
        for row in batch:
            await services.store.delete(row.blob_key)  # a missing blob is not an error
            if await file_rows.mark_file_deleted(conn, row.id):
                counts["files_deleted"] += 1
        if len(batch) < BATCH:
            return


async def sweep_once(services: Services, app: procrastinate.App) -> dict[str, int]:
    """One sweep round; how many of each thing it did (``errors``: parts that failed)."""
    from squeezer.jobs.queue import resume_orphans, retry_stalled

    counts = {"files_deleted": 0, "stalled_retried": 0, "orphans_resumed": 0,
              "rate_windows_forgotten": 0,
              "partials_swept": 0, "queue_rows_pruned": 0, "errors": 0, "skipped": 0}
    conn = await services.database.aconnect(autocommit=True)
    try:
        if not await sweep_rows.try_lock_sweep(conn):
            counts["skipped"] = 1
            return counts
        try:
            try:
                await _expire_files(services, conn, counts)
            except StorageError:
                counts["errors"] += 1
                log.warning("sweep: the blob store failed; expired files wait for the next round",
                            exc_info=True)
            try:
                counts["stalled_retried"] = await retry_stalled(app, services.config.workers.stalled_seconds)
            except Exception:
                counts["errors"] += 1
                log.warning("sweep: retrying stalled jobs failed", exc_info=True)
            try:
                counts["orphans_resumed"] = await resume_orphans(
                    app, conn, max(ORPHAN_MIN_AGE_SECONDS, services.config.workers.stalled_seconds))
            except psycopg.Error:
                counts["errors"] += 1
                log.warning("sweep: resuming orphaned jobs failed", exc_info=True)
            try:
                counts["rate_windows_forgotten"] = await ratelimit.forget_old_windows(
                    conn, services.config.service.rate_window_seconds)
                counts["queue_rows_pruned"] = await sweep_rows.prune_queue_rows(
                    conn, QUEUE_ROWS_KEPT_HOURS)
            except psycopg.Error:
                counts["errors"] += 1
                log.warning("sweep: database clean-up failed", exc_info=True)
            try:
                counts["partials_swept"] = await services.store.sweep_partials()
            except StorageError:
                counts["errors"] += 1
                log.warning("sweep: sweeping storage partials failed", exc_info=True)
        finally:
            await sweep_rows.unlock_sweep(conn)
    finally:
        await conn.close()
    if any(counts[k] for k in counts if k not in ("errors", "skipped")):
        log.info("sweep: %s", counts)
    return counts
