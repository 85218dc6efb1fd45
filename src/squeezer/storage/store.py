"""The blob store the API processes and the workers share.

Uploads and results are blobs under server-generated keys (see
:mod:`squeezer.storage.keys`). Every operation is async, streams (no method
ever holds a whole blob in memory), validates its key first, and raises only
:mod:`squeezer.storage.errors` — obstore's exceptions are translated in one
place (:mod:`squeezer.storage._translate`).

:class:`BlobStore` talks to an obstore object store (S3, GCS, Azure) and uses
obstore's multipart uploads: an upload becomes visible at its key only when
complete, and a failed or refused (``max_bytes``) upload is aborted, so
nothing is left at the key. :class:`squeezer.storage.local.LocalBlobStore`
overrides the writes for a local directory (fsync + atomic rename).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import obstore
from obstore import exceptions as oe
from obstore.store import AzureStore, GCSStore, S3Store

from squeezer.storage._atomic import AtomicFile
from squeezer.storage._translate import translate
from squeezer.storage.errors import BlobNotFound, BlobTooLarge, InvalidRange, StorageError
from squeezer.storage.keys import validate_key, validate_prefix

if TYPE_CHECKING:
    from obstore import GetResult
    from obstore.store import ObjectStore

READ_CHUNK = 1 << 20
"""Download chunk size and file read size (1 MiB): small enough for many
concurrent downloads, large enough to keep per-chunk overhead negligible."""

PART_SIZE = 8 << 20
"""Multipart part size (8 MiB). S3 needs >= 5 MiB parts and allows 10,000
parts, so the largest blob is ~78 GiB — far above any configured input limit."""

PART_CONCURRENCY = 4
"""Parts uploaded at once. With :data:`PART_SIZE` this bounds an upload's
buffers to roughly 40 MB whatever the blob size (obstore's default, 12 x 5 MB,
would allow 60 MB+ per upload)."""

MAX_SIGNED_EXPIRY = timedelta(days=7)
"""The longest lifetime S3 SigV4 presigning accepts; used for every backend."""


@dataclass(frozen=True)
class BlobInfo:
    """What :meth:`BlobStore.head` knows about a stored blob."""

    size: int
    etag: str | None
    last_modified: datetime | None


@dataclass(frozen=True)
class StoredBlob:
    """Outcome of a write (or of :meth:`BlobStore.get_to_file`): size and sha256
    of exactly the bytes stored, computed while streaming."""

    key: str
    size: int
    sha256: str  # hex digest
    etag: str | None = None


class BlobReader:
    """An open download: metadata comes from the response headers, the body is
    streamed when iterated (``async for chunk in reader``).

    ``start``/``end`` are the byte range actually returned (``end`` exclusive,
    clamped to the blob's size), ``size`` is the whole blob's size, so an HTTP
    handler can answer ``Content-Range: bytes {start}-{end-1}/{size}``
    without a second request. Iterate at most once. Errors while streaming are
    translated like every other storage error.
    """

    def __init__(self, key: str, result: GetResult, chunk_size: int) -> None:
        meta = result.meta
        self.key = key
        self.size: int = meta["size"]
        self.start, self.end = result.range
        self.etag: str | None = meta.get("e_tag")
        self.last_modified: datetime | None = meta.get("last_modified")
        self._result: GetResult | None = result
        self._stream: Any = None
        self._chunk_size = chunk_size

    @property
    def length(self) -> int:
        return self.end - self.start

    def __aiter__(self) -> BlobReader:
        return self

    async def __anext__(self) -> bytes:
        if self._stream is None:
            if self._result is None:
                raise StopAsyncIteration
            self._stream = self._result.stream(min_chunk_size=self._chunk_size)
            self._result = None
        try:
            return await self._stream.__anext__()
        except StopAsyncIteration:
            self._stream = None
            raise
        except Exception as exc:
            self._stream = None
            raise translate(exc, op="read", key=self.key) from exc

    async def aclose(self) -> None:
        """Drop the response (and its connection) without reading the rest."""
        # Dropping obstore's objects promptly matters: a GetResult still alive
        # at interpreter exit aborts the process (obstore 0.12).
        self._result = None
        self._stream = None


_END = object()  # end of an upload's data


async def metered(
    source: AsyncIterable[bytes], hasher: Any, key: str, max_bytes: int | None, op: str
) -> AsyncIterator[bytes]:
    """The non-empty chunks of ``source``, hashed, refused past ``max_bytes``.

    Every upload path counts with this, so the limit is checked before a byte
    beyond it is stored, whatever the backend.
    """
    size = 0
    async for chunk in source:
        if not chunk:
            continue
        size += len(chunk)
        if max_bytes is not None and size > max_bytes:
            raise BlobTooLarge(f"{op} {key!r}: more than {max_bytes} bytes",
                               key=key, max_bytes=max_bytes)
        hasher.update(chunk)
        yield chunk


class _Aborted(Exception):
    """Raised into obstore's iterator to make it abort an upload we gave up on."""


def _force_put(queue: asyncio.Queue[Any], item: object) -> None:
    """Deliver ``item`` now even if the queue is full: the chunks dropped to make
    room belong to an upload that is being aborted anyway."""
    while True:
        try:
            queue.put_nowait(item)
            return
        except asyncio.QueueFull:
            queue.get_nowait()


class BlobStore:
    """Blobs in an obstore object store (S3, GCS, Azure). Create with
    :func:`squeezer.storage.open_store`, once per process; it is safe to share
    between tasks and threads."""

    def __init__(self, store: ObjectStore, *, url: str, can_sign: bool) -> None:
        self._store = store
        self.url = url  # for logs: scheme, bucket and prefix, never credentials
        self._can_sign = can_sign

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def can_sign(self) -> bool:
        """Whether :meth:`signed_url` can hand out URLs (a bucket with signing credentials)."""
        return self._can_sign and isinstance(self._store, (S3Store, GCSStore, AzureStore))

    # -- writes -------------------------------------------------------------

    def local_path(self, key: str) -> Path | None:
        """The local file holding ``key`` when the store is a local directory, else None.

        A worker hands this path to the engine instead of copying the blob to a
        temporary file first (the engine only reads its input).
        """
        return None

    async def put_file(
        self, key: str, path: Path | str, *, content_type: str | None = None,
        move: bool = False,
    ) -> StoredBlob:
        """Upload a local file in parts (never read whole); returns its size and sha256.

        ``path`` is the caller's file (an engine output, a fetched input): an
        error opening or reading it is the caller's and propagates as
        ``OSError``; errors of the store are :class:`StorageError`.  ``move``
        says the caller is done with the file: a local store may then rename it
        into place instead of copying it (an object store uploads it as always).
        """
        validate_key(key)
        file = await asyncio.to_thread(open, path, "rb")
        with file:

            async def blocks() -> AsyncIterator[bytes]:
                while block := await asyncio.to_thread(file.read, READ_CHUNK):
                    yield block

            return await self._put(
                key, blocks(), max_bytes=None, content_type=content_type, op="put_file"
            )

    async def put_stream(
        self,
        key: str,
        source: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        """Store the bytes ``source`` yields, counting and hashing them on the way.

        Past ``max_bytes`` the upload is aborted before the excess is sent and
        :class:`BlobTooLarge` is raised; nothing is left at ``key`` (an older
        blob there stays untouched). An exception raised by ``source`` itself
        (a client that disconnects mid-upload) aborts the upload the same way
        and propagates unchanged; so does cancelling the caller.
        """
        validate_key(key)
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        return await self._put(
            key, source, max_bytes=max_bytes, content_type=content_type, op="put_stream"
        )

    async def _put(
        self,
        key: str,
        source: AsyncIterable[bytes],
        *,
        max_bytes: int | None,
        content_type: str | None,
        op: str,
    ) -> StoredBlob:
        """Multipart upload of ``source`` that is aborted on every kind of failure.

        obstore aborts a multipart upload only when the iterator it reads from
        raises; a cancelled ``put_async`` just drops the upload, leaving its
        parts stored (and billed) until a lifecycle rule removes them. So the
        source is pumped by a task of ours into a small queue, and obstore
        reads the queue: on cancellation the pump is stopped, the queue makes
        obstore's iterator raise, obstore aborts, and only then does the
        cancellation propagate. Errors raised by ``source`` (or our
        :class:`BlobTooLarge`) are re-raised as they are.
        """
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=4)
        hasher = hashlib.sha256()
        size = 0
        failure: list[BaseException] = []

        async def pump() -> None:
            nonlocal size
            try:
                async for chunk in metered(source, hasher, key, max_bytes, op):
                    size += len(chunk)
                    await queue.put(chunk)
            except asyncio.CancelledError:
                _force_put(queue, _Aborted())
                raise
            except BaseException as exc:
                failure.append(exc)
                _force_put(queue, exc)
                if not isinstance(exc, Exception):
                    raise
            else:
                await queue.put(_END)

        async def feed() -> AsyncIterator[bytes]:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item

        kwargs: dict[str, Any] = {}
        if content_type:
            kwargs["attributes"] = {"Content-Type": content_type}
        pumping = asyncio.create_task(pump())
        upload = asyncio.ensure_future(
            obstore.put_async(
                self._store,
                key,
                feed(),
                use_multipart=True,
                chunk_size=PART_SIZE,
                max_concurrency=PART_CONCURRENCY,
                **kwargs,
            )
        )
        try:
            result = await asyncio.shield(upload)
        except asyncio.CancelledError:
            pumping.cancel()
            # Let obstore abort the multipart upload before giving up (bounded:
            # an abort is one request within the retry budget).
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(asyncio.shield(upload), timeout=30)
            raise
        except Exception as exc:
            if failure:
                raise failure[0] from None
            raise translate(exc, op=op, key=key) from exc
        finally:
            if not pumping.done():
                pumping.cancel()
                with contextlib.suppress(BaseException):
                    await pumping
        return StoredBlob(key=key, size=size, sha256=hasher.hexdigest(), etag=result.get("e_tag"))

    # -- reads --------------------------------------------------------------

    async def open_range(
        self, key: str, start: int = 0, end: int | None = None, *, chunk_size: int = READ_CHUNK
    ) -> BlobReader:
        """Start a download of bytes ``[start, end)`` (``end=None``: to the end).

        An ``end`` past the blob's end is clamped; a ``start`` at or past the
        end raises :class:`InvalidRange` (with the blob's ``size`` when it can
        be learnt) — HTTP 416.
        """
        validate_key(key)
        if start < 0 or (end is not None and end <= start):
            raise ValueError(f"bad byte range [{start}, {end})")
        options: dict[str, Any] = {}
        if end is not None:
            options["range"] = (start, end)
        elif start:
            options["range"] = {"offset": start}
        try:
            result = await obstore.get_async(self._store, key, options=options or None)  # type: ignore[arg-type]
        except Exception as exc:
            error = translate(exc, op="read", key=key)
            if isinstance(error, InvalidRange):
                error.size = await self._size_or_none(key)
            raise error from exc
        reader = BlobReader(key, result, chunk_size)
        if start and reader.start >= reader.size:
            # Some stores answer an offset at the very end with an empty body.
            await reader.aclose()
            raise InvalidRange(f"read {key!r}: range not satisfiable", key=key, size=reader.size)
        return reader

    async def stream(self, key: str, chunk_size: int = READ_CHUNK) -> AsyncIterator[bytes]:
        """The whole blob as chunks of about ``chunk_size`` bytes."""
        reader = await self.open_range(key, chunk_size=chunk_size)
        try:
            async for chunk in reader:
                yield chunk
        finally:
            await reader.aclose()

    async def get_to_file(self, key: str, path: Path | str) -> StoredBlob:
        """Download to ``path`` atomically: a temporary file beside it, fsync, rename.

        On any failure (including cancellation) the temporary file is removed
        and ``path`` is untouched. Returns the size and sha256 of the bytes.
        """
        validate_key(key)
        dest = Path(path)
        reader = await self.open_range(key)
        hasher = hashlib.sha256()
        try:
            writer = await asyncio.to_thread(AtomicFile, dest, dest.parent)
        except OSError as exc:
            await reader.aclose()
            raise translate(exc, op="get_to_file", key=key) from exc
        try:
            async for chunk in reader:
                hasher.update(chunk)
                await asyncio.to_thread(writer.write, chunk)
            await asyncio.to_thread(writer.commit)
        except BaseException as exc:
            writer.abort()
            await reader.aclose()
            if isinstance(exc, Exception):
                raise translate(exc, op="get_to_file", key=key) from exc
            raise
        return StoredBlob(key=key, size=writer.size, sha256=hasher.hexdigest(), etag=reader.etag)

    async def head(self, key: str) -> BlobInfo:
        """Size, etag and modification time, or :class:`BlobNotFound`."""
        validate_key(key)
        try:
            meta = await obstore.head_async(self._store, key)
        except Exception as exc:
            raise translate(exc, op="head", key=key) from exc
        return BlobInfo(
            size=meta["size"], etag=meta.get("e_tag"), last_modified=meta.get("last_modified")
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.head(key)
        except BlobNotFound:
            return False
        return True

    async def _size_or_none(self, key: str) -> int | None:
        try:
            return (await self.head(key)).size
        except StorageError:
            return None

    # -- deletes ------------------------------------------------------------

    async def delete(self, key: str) -> None:
        """Delete a blob; deleting a missing blob is not an error (retries, sweeps)."""
        validate_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except Exception as exc:
            error = translate(exc, op="delete", key=key)
            if not isinstance(error, BlobNotFound):
                raise error from exc

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every blob whose key is ``prefix`` or lies under ``prefix/``.

        Prefixes match whole segments: ``results/job1`` never touches
        ``results/job10``. Returns how many blobs were deleted.
        """
        prefix = validate_prefix(prefix)
        deleted = 0
        try:
            async for batch in obstore.list(self._store, prefix=prefix, chunk_size=1000):
                paths = [meta["path"] for meta in batch]
                try:
                    await obstore.delete_async(self._store, paths)
                except FileNotFoundError:
                    # Local stores fail a batch on a blob deleted concurrently:
                    # fall back to one-by-one idempotent deletes.
                    for path in paths:
                        await self.delete(path)
                deleted += len(paths)
            if await self.exists(prefix):  # ``prefix`` itself may be a blob
                await self.delete(prefix)
                deleted += 1
        except StorageError:
            raise
        except Exception as exc:
            raise translate(exc, op="delete_prefix", key=prefix) from exc
        return deleted

    # -- sharing ------------------------------------------------------------

    async def signed_url(self, key: str, expires: timedelta | float,
                         method: str = "GET") -> str | None:
        """A URL that lets anyone GET the blob (or, with ``method="PUT"``, write it) until
        ``expires`` (seconds or a timedelta, at most 7 days) passes — or ``None`` when the
        backend cannot presign (local directory; GCS without a service-account key), in which
        case the API serves the transfer itself.

        Signing is local computation with the store's credentials; it does not
        check that the blob exists.  A presigned PUT cannot bound the size: whoever
        hands one out checks the blob (:meth:`head`) before trusting it.
        """
        validate_key(key)
        if method not in ("GET", "PUT"):
            raise ValueError(f"only GET and PUT URLs are signed, not {method}")
        if not isinstance(expires, timedelta):
            expires = timedelta(seconds=expires)
        if not timedelta(seconds=1) <= expires <= MAX_SIGNED_EXPIRY:
            raise ValueError(f"signed URL lifetime must be between 1 s and 7 days, not {expires}")
        store = self._store
        if not self._can_sign or not isinstance(store, (S3Store, GCSStore, AzureStore)):
            return None
        try:
            return await obstore.sign_async(store, "PUT" if method == "PUT" else "GET", key,
                                            expires)
        except oe.NotSupportedError:
            return None
        except Exception as exc:
            raise translate(exc, op="sign", key=key) from exc

    async def sweep_partials(self, older_than: timedelta = timedelta(hours=24)) -> int:
        """Remove leftovers of uploads interrupted by a crash; returns how many.

        Object stores keep aborted multipart parts invisibly: configure the
        bucket's lifecycle rule (docs/storage.md). Nothing to do here.
        """
        return 0
