"""Running one compression job: stored input in, stored result and job state out.

Written for at-least-once delivery: a job that a killed worker left
``running`` is simply run again; the result goes to a key derived from the
job id (overwritten atomically by a re-run) and its file row has an id
derived from the job id, so a second run never leaves a second result.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from squeezer.db import jobs as job_rows
from squeezer.db.server import Database
from squeezer.engines.errors import EngineError
from squeezer.engines.limits import Limits
from squeezer.engines.pdf import PdfOptions
from squeezer.jobs.isolation import ChildLimits, compress_isolated
from squeezer.storage import BlobStore, StorageError

log = logging.getLogger(__name__)
RESULT_NAMESPACE = uuid.UUID("6f1c0b1e-4f7e-4c36-9a55-5c2d3b7e9a10")


@dataclass
class Services:
    """What a worker needs to run jobs: the database, the blob store and the limits."""

    database: Database
    store: BlobStore
    limits: Limits = field(default_factory=Limits)
    child: ChildLimits = field(default_factory=ChildLimits)
    result_ttl: timedelta = timedelta(hours=2)


def result_file_id(job_id: uuid.UUID) -> uuid.UUID:
    return uuid.uuid5(RESULT_NAMESPACE, str(job_id))


def result_key(job_id: uuid.UUID) -> str:
    return f"results/{job_id}/out.pdf"


async def run_compress_job(services: Services, job_id: uuid.UUID) -> str:
    """Run job ``job_id``; return its final state.  Storage outages propagate (retryable)."""
    conn = await services.database.aconnect(autocommit=True)
    try:
        job = await job_rows.start(conn, job_id)
        if job is None:
            return "gone"  # ended already (a duplicate delivery) or deleted
        source = await job_rows.get_file(conn, job.input_file_id) if job.input_file_id else None
        if source is None:
            await job_rows.fail(conn, job_id, "input_gone", "the input file has expired or was deleted")
            return "failed"
        with tempfile.TemporaryDirectory(prefix="squeezer-job-") as tmp:
            src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out.pdf"
            await services.store.get_to_file(source.blob_key, src)
            try:
                report = await asyncio.to_thread(
                    compress_isolated, src, dst, PdfOptions(**job.options), services.limits,
                    services.child,
                )
            except EngineError as exc:
                await job_rows.fail(conn, job_id, exc.code, exc.message)
                return "failed"
            stored = await services.store.put_file(result_key(job_id), dst,
                                                   content_type="application/pdf")
        output = await job_rows.insert_file(
            conn, file_id=result_file_id(job_id), key_id=job.key_id, kind="result",
            name=_result_name(source.name), size=stored.size, mime="application/pdf",
            sha256=stored.sha256, blob_key=stored.key, ttl=services.result_ttl,
        )
        await job_rows.succeed(conn, job_id, output.id, report.model_dump(mode="json"))
        return "succeeded"
    except StorageError:
        log.warning("job %s: storage failed; the queue will retry it", job_id, exc_info=True)
        raise
    finally:
        await conn.close()


def _result_name(name: str) -> str:
    stem = name[:-4] if name.lower().endswith(".pdf") else name
    return f"{stem}.compressed.pdf"
