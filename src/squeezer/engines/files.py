"""File-system helpers every engine needs: atomic output and scratch space.

No half-written file may ever exist at a destination path: output is written
to a temporary file in the destination's directory and moved into place with
:func:`os.replace`, which is atomic on POSIX and Windows.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path


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
