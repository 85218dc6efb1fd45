"""The ``forkserver`` multiprocessing context, with a socket path that fits.

Why: the forkserver listens on a UNIX socket made under ``tempfile.gettempdir()``
(multiprocessing's private temporary directory), and a UNIX socket's path is
limited to 107 bytes.  Under a long ``TMPDIR`` (a deep job or test directory,
a container's mounted scratch) Python 3.11 fails with ``OSError: AF_UNIX path too
long`` when the first child starts; Python 3.12 falls back to a short system
directory on its own.  This does the same on 3.11: when the temporary directory
is too long for a socket, multiprocessing's own directory is made in the first
short, writable system directory instead, and removed at exit as usual.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import tempfile
from multiprocessing import process, util
from typing import Any

#: room left in the 107-byte socket path for "/pymp-XXXXXXXX/listener-XXXXXXXX"
_LONGEST_BASE = 70
_SHORT_BASES = ("/tmp", "/var/tmp", "/dev/shm")


def context() -> Any:
    """``multiprocessing.get_context("forkserver")``, its socket directory short enough."""
    _short_socket_dir()
    return multiprocessing.get_context("forkserver")


def _short_socket_dir() -> None:
    config = process.current_process()._config  # type: ignore[attr-defined]
    if config.get("tempdir") or len(tempfile.gettempdir()) <= _LONGEST_BASE:
        return  # already chosen (and maybe in use), or the default fits
    for base in _SHORT_BASES:
        if os.path.isdir(base) and os.access(base, os.W_OK | os.X_OK):
            tempdir = tempfile.mkdtemp(prefix="pymp-", dir=base)
            # what multiprocessing.util.get_temp_dir does with the directory it makes
            util.Finalize(None, shutil.rmtree, args=(tempdir, True), exitpriority=-100)
            config["tempdir"] = tempdir
            return
