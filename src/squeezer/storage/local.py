"""Blobs in a local directory (the default: ``SQUEEZER_DATA_DIR/blobs``).

Reads, listing and deletes go through obstore's ``LocalStore``. Writes do not:
``LocalStore`` renames a staged ``<key>#<n>`` file into place (atomic against
a crashed process) but never fsyncs, so after a power loss a blob could exist
at its key with missing bytes — and a crashed upload leaves ``#<n>`` files
scattered next to the blobs. Here every write goes to ``<root>/.partial/``,
is fsynced, renamed to its key and the directory fsynced
(:class:`squeezer.storage._atomic.AtomicFile`); leftovers of crashes are all
in one directory, which :meth:`LocalBlobStore.sweep_partials` empties. No key
can name ``.partial`` (segments may not start with ``.``).

Several processes (and machines, on a shared file system with POSIX rename
semantics) can use the same root: a reader sees the old blob or the new one,
never a mix.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterable
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from obstore.store import LocalStore

from squeezer.storage._atomic import PART_SUFFIX, AtomicFile, fsync_dir
from squeezer.storage._translate import translate
from squeezer.storage.keys import validate_key
from squeezer.storage.store import READ_CHUNK, BlobStore, StoredBlob, metered

PARTIAL_DIR = ".partial"
_COPY_BLOCK = 4 << 20  # file-to-file copies: fewer thread hops, still bounded memory


def _copy_block(src: BinaryIO, hasher: Any, writer: AtomicFile, key: str) -> int:
    """Copy one block; an error reading ``src`` is the caller's (propagates as
    ``OSError``), an error writing is the store's (a :class:`StorageError`)."""
    block = src.read(_COPY_BLOCK)
    if block:
        hasher.update(block)
        try:
            writer.write(block)
        except OSError as exc:
            raise translate(exc, op="put_file", key=key) from exc
    return len(block)


class LocalBlobStore(BlobStore):
    """A :class:`BlobStore` on a local directory; ``signed_url`` returns ``None``."""

    def __init__(self, root: Path) -> None:
        root = Path(root).expanduser().absolute()
        try:
            root.mkdir(parents=True, exist_ok=True)
            store = LocalStore(root, automatic_cleanup=True)
        except Exception as exc:
            raise translate(exc, op="open", key=None) from exc
        super().__init__(store, url=root.as_uri(), can_sign=False)
        self.root = root
        self.partial_dir = root / PARTIAL_DIR

    def path_of(self, key: str) -> Path:
        """The file holding ``key`` (for diagnostics and tests; read through the API)."""
        return self.root.joinpath(*validate_key(key).split("/"))

    def local_path(self, key: str) -> Path | None:
        path = self.path_of(key)
        return path if path.is_file() else None

    async def _open_writer(self, key: str, op: str) -> AtomicFile:
        try:
            return await asyncio.to_thread(AtomicFile, self.path_of(key), self.partial_dir)
        except OSError as exc:
            raise translate(exc, op=op, key=key) from exc

    @staticmethod
    async def _write(writer: AtomicFile, chunks: list[bytes], key: str) -> None:
        try:
            await asyncio.to_thread(writer.write, chunks)
        except OSError as exc:
            raise translate(exc, op="put_stream", key=key) from exc

    @staticmethod
    async def _commit(writer: AtomicFile, key: str, op: str) -> None:
        try:
            await asyncio.to_thread(writer.commit)
        except OSError as exc:
            raise translate(exc, op=op, key=key) from exc

    async def put_file(
        self, key: str, path: Path | str, *, content_type: str | None = None,
        move: bool = False,
    ) -> StoredBlob:
        validate_key(key)
        if move:
            moved = await asyncio.to_thread(self._move_in, key, Path(path))
            if moved is not None:
                return moved
        hasher = hashlib.sha256()
        src = await asyncio.to_thread(open, path, "rb")
        with src:
            writer = await self._open_writer(key, "put_file")
            try:
                while await asyncio.to_thread(_copy_block, src, hasher, writer, key):
                    pass
                await self._commit(writer, key, "put_file")
            except BaseException:
                writer.abort()
                raise
        return StoredBlob(key=key, size=writer.size, sha256=hasher.hexdigest())

    def _move_in(self, key: str, path: Path) -> StoredBlob | None:
        """Hash, fsync and rename ``path`` to ``key`` (as :class:`AtomicFile` would commit it);
        None when it lives on another file system (the caller copies instead)."""
        dest = self.path_of(key)
        if os.stat(path).st_dev != os.stat(self.root).st_dev:
            return None
        hasher = hashlib.sha256()
        size = 0
        with open(path, "rb") as src:
            while block := src.read(_COPY_BLOCK):
                hasher.update(block)
                size += len(block)
            os.fsync(src.fileno())
        try:
            for attempt in range(3):
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.replace(path, dest)
                    break
                except FileNotFoundError:  # a concurrent delete removed the empty directory
                    if attempt == 2 or not path.exists():
                        raise
            fsync_dir(dest.parent)
        except OSError as exc:
            raise translate(exc, op="put_file", key=key) from exc
        return StoredBlob(key=key, size=size, sha256=hasher.hexdigest())

    async def put_stream(
        self,
        key: str,
        source: AsyncIterable[bytes],
        *,
        max_bytes: int | None = None,
        content_type: str | None = None,
    ) -> StoredBlob:
        validate_key(key)
        if max_bytes is not None and max_bytes < 0:
            raise ValueError("max_bytes must be >= 0")
        hasher = hashlib.sha256()
        writer = await self._open_writer(key, "put_stream")
        try:
            batch: list[bytes] = []
            pending = 0
            async for chunk in metered(source, hasher, key, max_bytes, "put_stream"):
                batch.append(chunk)
                pending += len(chunk)
                if pending >= READ_CHUNK:
                    await self._write(writer, batch, key)
                    batch, pending = [], 0
            if batch:
                await self._write(writer, batch, key)
            await self._commit(writer, key, "put_stream")
        except BaseException:
            writer.abort()
            raise
        return StoredBlob(key=key, size=writer.size, sha256=hasher.hexdigest())

    async def sweep_partials(self, older_than: timedelta = timedelta(hours=24)) -> int:
        """Delete temporary files of writes interrupted by a crash.

        Only files older than ``older_than`` go: another process (or machine,
        on a shared directory) may be writing the younger ones right now.
        """
        return await asyncio.to_thread(self._sweep, older_than.total_seconds())

    def _sweep(self, max_age: float) -> int:
        cutoff = time.time() - max_age
        removed = 0
        try:
            entries = list(os.scandir(self.partial_dir))
        except FileNotFoundError:
            return 0
        for entry in entries:
            try:
                if (
                    entry.name.endswith(PART_SUFFIX)
                    and entry.stat(follow_symlinks=False).st_mtime < cutoff
                ):
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue
        return removed
