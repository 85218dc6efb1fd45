"""Running one compression job: stored (or fetched) input in, stored result and job state out.

Written for at-least-once delivery: a job that a killed worker left
``running`` is simply run again; the fetched input and the result go to keys
derived from the job id (overwritten atomically by a re-run) and their file
rows have ids derived from the job id, so a second run never leaves a second
copy.

While the engine runs, a watcher writes its progress to the job row (at most
every :data:`PROGRESS_SECONDS`) and reads the row's state: once a client has
cancelled the job, the engine child is killed and nothing more is written —
no result blob, no result row.  A job with an external storage target
(:mod:`squeezer.jobs.exports`) has its stored result written there before it
is marked succeeded; a failed write fails the job (``export_failed``).  The
state change that ends a job, the export's URL and the queue entry of its
webhook commit in one transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg

from squeezer.config import Config
from squeezer.db import exports as export_rows
from squeezer.db import files as file_rows
from squeezer.db import jobs as job_rows
from squeezer.db.jobs import JobState
from squeezer.db.server import Database
from squeezer.engines.errors import (
    DISK_FULL_ERRNOS,
    DiskFullError,
    EngineError,
    UnsupportedFormatError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.sniff import EXTENSIONS, MIME, sniff_file
from squeezer.errors import InternalError, SqueezerError, public_message
from squeezer.jobs import exports, scratch
from squeezer.jobs.errors import ExportFailed, InputGone, JobCancelled
from squeezer.jobs.formats import hooks_for
from squeezer.jobs.isolation import ChildLimits, compress_isolated
from squeezer.net import NetError, UrlPolicy, fetch_to_file, sanitize_filename
from squeezer.storage import BlobStore, StorageError, StorageFull

if TYPE_CHECKING:
    import procrastinate

log = logging.getLogger(__name__)
RESULT_NAMESPACE = uuid.UUID("6f1c0b1e-4f7e-4c36-9a55-5c2d3b7e9a10")
INPUT_NAMESPACE = uuid.UUID("3d0e8f5a-2b71-4c1e-8f0a-6a4b9c2d7e11")
DEFAULT_BASE_URL = "http://127.0.0.1:8000"
#: How often the watcher writes progress and looks for a cancel (a cancel stops within ~this).
PROGRESS_SECONDS = 0.5
T = TypeVar("T")
#: What a job that ran out of local disk says (the machine's problem; trying again can help).
DISK_FULL_MESSAGE = "the server ran out of disk space while running the job; try again later"


@dataclass
class Services:
    """What a worker needs to run jobs, deliver webhooks and sweep: the configuration, the
    database and the blob store.  What the steps use (limits, policies, the signing key) is
    derived from the configuration once, here, not configured again.
    """

    config: Config
    database: Database
    store: BlobStore
    limits: Limits = field(init=False)
    child: ChildLimits = field(init=False)
    #: how long fetched inputs and results are kept (``SQUEEZER_FILE_TTL_SECONDS``)
    result_ttl: timedelta = field(init=False)
    base_url: str = field(init=False)
    #: signs download URLs in job JSON
    signing_key: bytes = field(init=False, repr=False)
    fetch_policy: UrlPolicy = field(init=False)
    webhook_policy: UrlPolicy = field(init=False)

    _pool: Any = field(default=None, init=False, repr=False, compare=False)
    _pool_loop: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        config = self.config
        self.limits = config.limits.limits()
        self.child = ChildLimits(seconds=config.limits.max_seconds or 600.0,
                                 memory_bytes=config.workers.job_memory_bytes)
        self.result_ttl = timedelta(seconds=config.service.file_ttl_seconds)
        self.base_url = (config.service.public_url or DEFAULT_BASE_URL).rstrip("/")
        self.signing_key = config.signing_key()
        self.fetch_policy = config.url_policy()
        self.webhook_policy = config.webhook_policy()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """A pooled autocommit connection: a job's connections then cost no new logins
        (a fresh one costs milliseconds, which a small synchronous request feels)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            from psycopg_pool import AsyncConnectionPool

            self._pool = AsyncConnectionPool(self.database.url, min_size=1, max_size=8,
                                             open=False, kwargs={"autocommit": True})
            self._pool_loop = loop
            await self._pool.open()
        async with self._pool.connection() as conn:
            yield conn

    async def close(self) -> None:
        """Close the pool (the end of a worker's event loop)."""
        if self._pool is not None and self._pool_loop is asyncio.get_running_loop():
            await self._pool.close()
        self._pool = self._pool_loop = None


def result_file_id(job_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RESULT_NAMESPACE, str(job_id))


def result_key(job_id: uuid.UUID, extension: str = "pdf") -> str:
    return f"results/{job_id}/out.{extension}"


def output_format(report: Any) -> str:
    """The result's format from its report: an image report names it, a PDF's is a PDF."""
    return getattr(report, "format_out", "") or "pdf"


def input_file_id(job_id: uuid.UUID) -> uuid.UUID:
    """The file row of a URL job's fetched input (the same on every run of the job)."""
    return uuid.uuid5(INPUT_NAMESPACE, str(job_id))


def input_key(job_id: uuid.UUID) -> str:
    return f"uploads/{job_id}/input"


class _Watch:
    """Shared between the job, the engine thread and the watcher task."""

    def __init__(self) -> None:
        self.fraction = 0.0
        self.stop = threading.Event()  # polled by the engine's parent loop
        self.stopped = asyncio.Event()  # awaited by async steps (fetch, download)

    def progress(self, fraction: float, stage: str) -> None:  # called from the engine thread
        self.fraction = max(self.fraction, fraction)

    def cancel(self) -> None:
        self.stop.set()
        self.stopped.set()


async def _watch(services: Services, job_id: uuid.UUID, watch: _Watch) -> None:
    """Write progress every PROGRESS_SECONDS and stop the job when its row is no longer running."""
    try:
        async with services.connection() as conn:
            await _watch_with(conn, job_id, watch)
    except (psycopg.Error, OSError):  # the job runs on; it just cannot be cancelled meanwhile
        log.warning("job %s: no connection for progress and cancellation", job_id, exc_info=True)


async def _watch_with(conn: psycopg.AsyncConnection, job_id: uuid.UUID, watch: _Watch) -> None:
    written = 0.0
    while not watch.stop.is_set():
        await asyncio.sleep(PROGRESS_SECONDS)
        try:
            if watch.fraction > written + 1e-4:
                written = watch.fraction
                running = await job_rows.set_progress(conn, job_id, written)
            else:
                running = await job_rows.state_of(conn, job_id) == JobState.running
        except psycopg.Error:
            log.warning("job %s: cannot read its state; will try again", job_id, exc_info=True)
            continue
        if not running:
            log.info("job %s is no longer running (cancelled); stopping it", job_id)
            watch.cancel()


async def _unless_stopped(step: Awaitable[T], watch: _Watch) -> T:
    """Await ``step``, or cancel it and raise JobCancelled when the job is cancelled first."""
    task = asyncio.ensure_future(step)
    stopper = asyncio.ensure_future(watch.stopped.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:  # the worker is shutting down: let the step clean up
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise
    finally:
        stopper.cancel()
    if not task.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise JobCancelled("cancelled while fetching or downloading the input")
    return task.result()


async def _end(services: Services, app: procrastinate.App | None, conn: psycopg.AsyncConnection,
               job: job_rows.JobRow, code: str, message: str,
               names: Mapping[str, str] | None = None) -> str:
    """Fail the job and queue its webhook, in one transaction.

    The message is what the job JSON and the webhook show: server paths in it
    become the names the client knows (``names``: the scratch input is the
    client's file name) or are dropped (:func:`squeezer.errors.public_message`).
    """
    from squeezer.jobs.webhooks import defer_webhook

    message = public_message(message, names)
    async with conn.transaction():
        if await job_rows.fail(conn, job.id, code, message) and app is not None:
            await defer_webhook(app, conn, job)
    return JobState.failed


def _public(value: Any, names: Mapping[str, str]) -> Any:
    """A report with no server path in any of its texts (a warning quoting qpdf quotes the
    scratch copy's path: it becomes the client's file name)."""
    if isinstance(value, str):
        return public_message(value, names) if "/" in value else value
    if isinstance(value, dict):
        return {k: _public(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [_public(v, names) for v in value]
    return value


def _internal(job_id: uuid.UUID, exc: BaseException) -> str:
    """Log a bug's details under the job id; the plain message the client gets instead."""
    detail = getattr(exc, "detail", None)
    if detail:
        log.error("job %s: the engine failed (a bug):\n%s", job_id, detail)
    else:
        log.error("job %s failed (a bug)", job_id, exc_info=exc)
    return (f"internal error while running the job; the server log has the details under "
            f"job {job_id}")


async def _obtain_input(services: Services, conn: psycopg.AsyncConnection,
                        job: job_rows.JobRow, src: Path, watch: _Watch,
                        source: file_rows.FileRow | None
                        ) -> tuple[file_rows.FileRow | None, Path]:
    """The job's input file row and a local path to it: the stored file (read in place when
    the store is a local directory, else downloaded to ``src``), or the URL fetched to ``src``
    and stored once.  ``source`` is the stored input's row, read with the job's start."""
    if job.input_file_id is not None:
        if source is not None:
            in_place = services.store.local_path(source.blob_key)
            if in_place is not None:
                return source, in_place
            got = await _unless_stopped(services.store.get_to_file(source.blob_key, src), watch)
            if not source.sha256:  # uploaded straight to the bucket: now its bytes are known
                await file_rows.set_sha256(conn, source.id, got.sha256)
        return source, src
    url = job.input["url"]
    fetched = await _unless_stopped(fetch_to_file(url, src, services.fetch_policy), watch)
    name = sanitize_filename(job.input_name) or fetched.filename_hint or "input.pdf"
    try:
        mime = MIME[sniff_file(src).format]
    except UnsupportedFormatError:  # the engine's dispatcher refuses it with a clear code
        mime = fetched.content_type or "application/octet-stream"
    stored = await services.store.put_file(input_key(job.id), src, content_type=mime)
    source = await file_rows.insert_file(
        conn, file_id=input_file_id(job.id), key_id=job.key_id, kind="upload", name=name,
        size=stored.size, mime=mime, sha256=stored.sha256, blob_key=stored.key,
        ttl=services.result_ttl,
    )
    await job_rows.set_input(conn, job.id, source.id, name)
    return source, src


async def _compress(services: Services, job: job_rows.JobRow, src: Path, dst: Path,
                    watch: _Watch) -> Any:
    """The engine in its child; on cancellation of this task the child is killed first."""
    engine = asyncio.ensure_future(asyncio.to_thread(
        compress_isolated, src, dst, job.options, services.limits, services.child,
        progress=watch.progress, should_stop=watch.stop.is_set, owner=str(job.key_id),
    ))
    try:
        return await asyncio.shield(engine)
    except asyncio.CancelledError:
        watch.cancel()  # the engine's loop sees it within 50 ms and kills the child
        with contextlib.suppress(BaseException):
            await engine
        raise


async def run_compress_job(services: Services, job_id: uuid.UUID,
                           app: procrastinate.App | None = None) -> str:
    """Run job ``job_id``; return its final state (or ``gone``).

    Storage outages propagate (the queue retries them).  With ``app``, the
    job's webhook is queued in the transaction that ends it.
    """
    async with services.connection() as conn:
        return await _run(services, job_id, app, conn)


async def _run(services: Services, job_id: uuid.UUID, app: procrastinate.App | None,
               conn: psycopg.AsyncConnection) -> str:
    from squeezer.jobs.webhooks import defer_webhook

    job: job_rows.JobRow | None = None
    try:
        started = await job_rows.start_with_input(conn, job_id)
        if started is None:
            return "gone"  # ended already (cancelled while queued, a duplicate delivery) or deleted
        job, stored_in = started.job, started.input_file
        try:
            job_dir = scratch.job_directory()
        except OSError as exc:  # this machine's temporary disk: full, or not writable
            log.warning("job %s: no temporary directory", job_id, exc_info=True)
            if exc.errno in DISK_FULL_ERRNOS:
                scratch.note_disk_full()
                return await _end(services, app, conn, job, DiskFullError.code, DISK_FULL_MESSAGE)
            return await _end(services, app, conn, job, InternalError.code,
                              _internal(job_id, exc))
        watch = _Watch()
        watcher = asyncio.create_task(_watch(services, job_id, watch))
        try:
            with job_dir as tmp:
                src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
                names = {str(src): job.input_name or "the input", str(dst): "the result",
                         str(tmp): "the job's directory"}
                try:
                    source, src = await _obtain_input(services, conn, job, src, watch, stored_in)
                    if source is None:
                        return await _end(services, app, conn, job, InputGone.code,
                                          "the input file has expired or was deleted")
                    names[str(src)] = source.name
                    report = await _compress(services, job, src, dst, watch)
                except NetError as exc:
                    return await _end(services, app, conn, job, exc.code,
                                      f"could not fetch the input: {exc.message}", names)
                except EngineError as exc:
                    return await _end(services, app, conn, job, exc.code, exc.message, names)
                except JobCancelled:
                    return JobState.cancelled
                except (StorageFull, OSError) as exc:
                    if isinstance(exc, OSError) and exc.errno not in DISK_FULL_ERRNOS:
                        return await _end(services, app, conn, job, InternalError.code,
                                          _internal(job_id, exc))
                    # the input's copy did not fit in the temporary directory: this machine's
                    # disk, not the store (a store's own outage propagates, and is retried)
                    log.warning("job %s: no room for its files in %s", job_id, tmp,
                                exc_info=True)
                    scratch.note_disk_full()
                    return await _end(services, app, conn, job, DiskFullError.code,
                                      DISK_FULL_MESSAGE)
                except (StorageError, asyncio.CancelledError):
                    raise
                except SqueezerError as exc:  # an engine child's bug, sent as internal_error
                    return await _end(services, app, conn, job, exc.code,
                                      _internal(job_id, exc) if exc.code == InternalError.code
                                      else exc.message, names)
                except Exception as exc:  # noqa: BLE001 - a bug must end the job, not strand it
                    return await _end(services, app, conn, job, InternalError.code,
                                      _internal(job_id, exc))
                if watch.stop.is_set():  # (a cancel after this is caught by the final statement)
                    return JobState.cancelled
                fmt = output_format(report)
                # a protocol that shows more hashes than the native sha256 gets them now,
                # while the files are here (jobs.formats)
                sha1 = hooks_for(job.webhook_format).sha1
                stored, out_sha1, in_sha1 = await asyncio.gather(
                    services.store.put_file(result_key(job_id, EXTENSIONS[fmt]), dst,
                                            content_type=MIME[fmt], move=not sha1),
                    _maybe(_sha1, dst, sha1), _maybe(_sha1, src, sha1))
                exported = None
                try:  # the copy in the client's bucket, if the job has one (jobs.exports)
                    if started.has_export:
                        exported = await _unless_stopped(exports.export_result(
                            conn, store=services.store, signing_key=services.signing_key,
                            job=job, blob_key=stored.key, input_name=source.name,
                            policy=services.fetch_policy, mime=MIME[fmt]), watch)
                except ExportFailed as exc:
                    await services.store.delete(stored.key)
                    return await _end(services, app, conn, job, exc.code, exc.message)
                except JobCancelled:
                    await services.store.delete(stored.key)
                    return JobState.cancelled
        finally:
            watch.stop.set()
            watcher.cancel()
            with contextlib.suppress(BaseException):
                await watcher
        # one statement ends the job and records its result; the rare extras (a webhook, an
        # export's URL, a protocol's SHA-1) share its transaction
        extras = in_sha1 is not None or exported is not None or (app is not None
                                                                 and bool(job.webhook_url))
        async with conn.transaction() if extras else contextlib.nullcontext():
            if await job_rows.succeed_with_output(
                    conn, job_id, output_file_id=result_file_id(job_id),
                    report=_public(report.model_dump(mode="json"), names),
                    name=result_name(source.name, fmt),
                    size=stored.size, mime=MIME[fmt], sha256=stored.sha256,
                    blob_key=stored.key, ttl=services.result_ttl, sha1=out_sha1):
                if in_sha1 is not None:
                    await file_rows.set_sha1(conn, source.id, in_sha1)
                if exported is not None:
                    await export_rows.record_url(conn, job_id, exported)
                if app is not None:
                    await defer_webhook(app, conn, job)
                return JobState.succeeded
        # cancelled between the engine's end and the lock: take the blob back
        await services.store.delete(stored.key)
        return JobState.cancelled
    except StorageFull as exc:
        # the store itself is full (a quota, a full local blob directory): fail the job with
        # the store's code; trying again at once would not help
        log.warning("job %s: the store is full", job_id, exc_info=True)
        if job is None:
            raise
        return await _end(services, app, conn, job, exc.code,
                          "the server's file store is full; try again later")
    except StorageError:
        log.warning("job %s: storage failed; the queue will retry it", job_id, exc_info=True)
        raise


async def _maybe(digest: Callable[[Path], str], path: Path, wanted: bool) -> str | None:
    return await asyncio.to_thread(digest, path) if wanted else None


def _sha1(path: Path) -> str:
    """SHA-1 of a local file (Compressor.app's hash, ``files.sha1``), read in 1 MiB blocks."""
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def result_name(name: str, fmt: str = "pdf") -> str:
    """``report.pdf`` → ``report.compressed.pdf``; ``photo.png`` as WebP →
    ``photo.compressed.webp``."""
    extension = EXTENSIONS.get(fmt, fmt)
    if "." in extension and name.lower().endswith("." + extension):  # src.tar.gz
        return f"{name[:-len(extension) - 1]}.compressed.{extension}"
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 5:
        stem = name
    return f"{stem}.compressed.{extension}"
