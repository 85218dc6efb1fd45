"""File-system helpers every engine needs: atomic output and scratch space.

No half-written file may ever exist at a destination path: output is written
to a temporary file in the destination's directory and moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` so that ``dst`` is either absent/old or complete.

    The result gets the permissions a plain ``open(dst, "w")`` would give: those
    of the file it replaces (in-place compression keeps the input's mode), else
    0666 minus the umask; ``mkstemp`` alone would leave a private 0600 file.
    """
    dst = Path(dst)
    try:
        mode = dst.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where the OS allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # the portable way sets it and puts it back
    os.umask(mask)
    return mask


def input_size(path: Path, max_bytes: int) -> int:
    """The size of the input file at ``path``, or the named error that stops the run.

    Checked before anything opens the file, so an oversized upload costs one ``stat``.
    """
    from squeezer.engines.errors import InputError, InputTooLargeError

    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    if path.is_dir():
        raise InputError(f"{path} is a directory, not a file")
    if max_bytes and size > max_bytes:
        raise InputTooLargeError(f"the file is {size} bytes; the limit is {max_bytes}")
    return size


class GuardedWriter(io.RawIOBase):
    """A file for a native writer (qpdf through pikepdf) that never sees a failed write.

    qpdf turns a failed write (a full disk, ``EFBIG`` under a file-size limit)
    into a C++ exception that, on some paths, escapes and aborts the whole
    process (``terminate called after throwing QPDFSystemError``): no error
    line, no clean-up.  This writer keeps the first ``OSError`` of the file it
    wraps, swallows the rest of the output, and :meth:`finish` raises
    :class:`DiskFullError` (or the ``OSError``) once the native call has
    returned normally.  A Ctrl-C (``KeyboardInterrupt``) that arrives while qpdf
    is inside one of these methods is kept the same way and raised by
    :meth:`finish`: thrown through qpdf's C++ frames it ended the process with
    ``terminate called after throwing an instance of 'nanobind::python_error'``.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._file: Any = open(self.path, "wb", buffering=1 << 20)  # noqa: SIM115 - closed in finish
        self.error: OSError | None = None
        self.interrupted: KeyboardInterrupt | None = None

    def _stopped(self) -> bool:
        return self.error is not None or self.interrupted is not None

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        size = len(memoryview(data))
        if not self._stopped():
            try:
                self._file.write(data)
            except OSError as exc:
                self.error = exc
            except KeyboardInterrupt as exc:
                self.interrupted = exc
        return size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if not self._stopped():
            try:
                return self._file.seek(offset, whence)
            except OSError as exc:
                self.error = exc
            except KeyboardInterrupt as exc:
                self.interrupted = exc
        return 0

    def tell(self) -> int:
        try:
            return self._file.tell() if not self._stopped() else 0
        except KeyboardInterrupt as exc:
            self.interrupted = exc
            return 0

    def flush(self) -> None:
        if not self._stopped() and not self._file.closed:
            try:
                self._file.flush()
            except OSError as exc:
                self.error = exc
            except KeyboardInterrupt as exc:
                self.interrupted = exc

    @staticmethod
    def failure(error: OSError) -> Exception:
        """The error to raise for a failed write: :class:`DiskFullError` for a full disk."""
        from squeezer.engines.errors import DISK_FULL_ERRNOS, DiskFullError

        return DiskFullError() if error.errno in DISK_FULL_ERRNOS else error

    def finish(self) -> None:
        """Close the file; raise what went wrong (the partial file is removed)."""
        if self.interrupted is not None:
            self.abandon()
            raise self.interrupted
        self.flush()
        try:
            self._file.close()
        except OSError as exc:
            self.error = self.error or exc
        super().close()
        if self.error is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
            raise self.failure(self.error) from None

    def abandon(self) -> None:
        """Close and remove the file after the native call failed."""
        with contextlib.suppress(OSError):
            self._file.close()
        super().close()
        with contextlib.suppress(OSError):
            self.path.unlink()
