"""Write a file so that its final name is either absent/old or complete — also
after a crash or power loss.

obstore's ``LocalStore`` stages writes in ``<key>#<n>`` and renames them into
place, which is atomic against a crashed *process*, but it never calls
``fsync``: after a power loss a freshly renamed file can be empty or short on
common file systems (XFS, ext4 without ``auto_da_alloc`` for new names). So the
local backend and :meth:`BlobStore.get_to_file` write through this class:
data to a temporary file on the same file system, ``fsync``, ``os.replace``,
then ``fsync`` the directory so the rename itself is durable.

Methods are blocking; async callers run them in a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PART_SUFFIX = ".part"


class AtomicFile:
    """A temporary file in ``tmp_dir`` that becomes ``dest`` on :meth:`commit`."""

    def __init__(self, dest: Path, tmp_dir: Path) -> None:
        self.dest = dest
        self.tmp_path = tmp_dir / f".{dest.name[:100]}.{secrets.token_hex(8)}{PART_SUFFIX}"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        # O_EXCL: never write through a pre-existing file or symlink.
        fd = os.open(
            self.tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644
        )
        self._file = os.fdopen(fd, "wb", buffering=0)
        self.size = 0

    def write(self, chunks: list[bytes] | bytes) -> None:
        if isinstance(chunks, (bytes, bytearray, memoryview)):
            chunks = [chunks]
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                n = self._file.write(view)
                view = view[n:]
                self.size += n

    def commit(self) -> None:
        """fsync, move into place (creating ``dest``'s directory if needed), fsync the directory."""
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        finally:
            self._file.close()
        for attempt in range(3):
            self.dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(self.tmp_path, self.dest)
                break
            except FileNotFoundError:
                # The destination directory was removed by a concurrent delete's
                # empty-directory cleanup between mkdir and rename: recreate it.
                if attempt == 2 or not self.tmp_path.exists():
                    raise
        fsync_dir(self.dest.parent)

    def abort(self) -> None:
        """Close and delete the temporary file; never raises."""
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp_path)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
