"""Writing a job's result to the client's own bucket (an external storage connector).

A job created with an export target (``job_exports``, written with the job in
one transaction) has its result written there by the worker, after the result
is stored and before the job is marked succeeded: the copy is part of the
durable job, not a best-effort step of some API process.  The bytes are
streamed from the service's blob store (exactly what was stored) through the
connector's own obstore store (:mod:`squeezer.storage.connectors`); the
object's permanent URL is recorded in the transaction that ends the job and
shown as ``result.stored_url`` (Compressor.app's ``url``).

Failure handling, decided once (docs/compat.md):

* The target is the client's bucket, not the service's storage.  obstore
  already retries transient failures (3 retries within 15 s); what still fails
  (a missing bucket, refused credentials, a deleted or unreadable connector, a
  path the key rules refuse) fails the job at once with :data:`CODE`
  (``export_failed``), the message naming provider, bucket, key and why.  No
  queue retry: it would run the engine again, and the store's error classes
  cannot tell a missing bucket from an outage without parsing messages.
* A failure *reading* the service's own blob store is the service's outage: it
  propagates as :class:`StorageUnavailable`, and the queue retries the job like
  any other storage outage.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import psycopg

from squeezer.db import connectors as connector_rows
from squeezer.db import exports as export_rows
from squeezer.db.jobs import JobRow
from squeezer.engines.sniff import EXTENSIONS, MIME
from squeezer.jobs.errors import ExportFailed
from squeezer.net.policy import UrlPolicy
from squeezer.storage import BlobStore, StorageError, connectors


class _SourceFailed(Exception):
    """Our own blob store failed while the result was read for the export (carries it)."""

    def __init__(self, error: StorageError) -> None:
        super().__init__(str(error))
        self.error = error


def object_name(input_name: str, mime: str = "application/pdf") -> str:
    """The exported object's name when the path names a directory: the input's, with the
    result's extension (``.pdf``, or an image's, which a conversion may have changed)."""
    fmt = next((f for f, m in MIME.items() if m == mime), "pdf")
    if "." in EXTENSIONS[fmt] and input_name.lower().endswith("." + EXTENSIONS[fmt]):
        return input_name  # src.tar.gz: a two-part extension, kept whole
    stem, dot, ext = input_name.rpartition(".")
    if not dot or not stem or len(ext) > 5:
        stem = input_name
    return f"{stem}.{EXTENSIONS[fmt]}"


async def _own(source: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    try:
        async for chunk in source:
            yield chunk
    except StorageError as exc:
        raise _SourceFailed(exc) from exc


async def export_result(conn: psycopg.AsyncConnection, *, store: BlobStore, signing_key: bytes,
                        job: JobRow, blob_key: str, input_name: str, policy: UrlPolicy,
                        mime: str = "application/pdf") -> str | None:
    """Write the stored result ``blob_key`` to the job's target; its URL (None: no target).

    Raises :class:`ExportFailed` for a failure of the target (the reason is also
    recorded in ``job_exports.error``) and :class:`StorageError` for one of
    ``store`` (the service's own blobs, retried by the queue).
    """
    target = await export_rows.get(conn, job.id)
    if target is None:
        return None
    where = f"bucket {target.bucket!r}"
    try:
        found = None
        if target.connector_id is not None:
            found = await connector_rows.sealed(conn, job.key_id, target.connector_id)
        if found is None:
            raise ExportFailed(f"the result could not be written to {where}: "
                               "the storage connector was deleted")
        connector, sealed = found
        where = f"{connector.provider} {where} (connector {connector.name!r})"
        try:
            settings = connectors.unseal(signing_key, connector.id, job.key_id, sealed)
            key = connectors.object_key(target.path, object_name(input_name, mime))
            # through the egress proxy: only the connector's own endpoint, under the policy
            with connectors.target_store(connector.provider, settings, target.bucket,
                                         policy) as out:
                await out.put_stream(key, _own(store.stream(blob_key)), content_type=mime)
        except _SourceFailed as exc:
            raise exc.error from None
        except StorageError as exc:
            raise ExportFailed(f"the result could not be written to {where}: "
                               f"{exc.message}") from None
        return connectors.object_url(connector.provider, settings, target.bucket, key)
    except ExportFailed as exc:
        await export_rows.record_error(conn, job.id, exc.message)
        raise
