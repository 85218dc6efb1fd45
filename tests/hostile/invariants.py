"""The six invariants every hostile input is held to, as assertions and a canary.

1. no 5xx (an outage the test itself causes may answer 503/507, said where it does);
2. no traceback and no server path in any answer (HTTP bodies and headers, job JSON,
   webhook bodies, CLI output);
3. the service is healthy afterwards (``/healthz`` and a benign compression);
4. no temporary files left;
5. memory under the cap (the CLI's peak resident size; the job children's cap);
6. zero connections to forbidden addresses: a :class:`Canary` listener on
   ``127.0.0.2`` (loopback, but outside the tests' allow-list of ``127.0.0.1/32``)
   that must see nothing.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import threading
from pathlib import Path

#: what a traceback or a server path looks like in any text
LEAKS = [re.compile(p) for p in (
    r"Traceback \(most recent call last\)", r'File "[^"]+", line \d+', r"\.py\", line",
    r"site-packages", r"/tmp/", r"/work/", r"/root/", r"/home/", r"/usr/lib", r"/proc/",
    r"squeezer-(job|child|batch)-", r"\bpostgres(ql)?://", r"sqz_[A-Za-z0-9_-]{20,}")]


def leaks(text: str, allowed: tuple[str, ...] = ()) -> list[str]:
    """The leak patterns found in ``text`` (``allowed``: substrings removed first, such as
    the client's own file paths in CLI output)."""
    for ok in allowed:
        text = text.replace(ok, "")
    return [p.pattern for p in LEAKS if p.search(text)]


def assert_clean_answer(response, allowed_5xx: tuple[int, ...] = ()) -> None:
    """Invariants 1 and 2 for one HTTP answer."""
    assert response.status_code < 500 or response.status_code in allowed_5xx, (
        response.request.method, str(response.request.url)[:200], response.status_code,
        response.text[:500])
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    found = leaks(text)
    assert not found, (str(response.request.url)[:200], found, response.text[:1000])


class Canary:
    """A TCP listener on a forbidden address that records every connection it gets."""

    HOST = "127.0.0.2"

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind((self.HOST, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.hits: list[tuple[str, int]] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            self.hits.append(peer)
            conn.close()

    def close(self) -> None:
        self.sock.close()


def temp_leftovers(root: Path) -> list[str]:
    """Squeezer's temporary files and directories under ``root``."""
    return sorted(p.name for p in root.iterdir() if p.name.startswith("squeezer-")
                  or p.name.startswith(".") and p.name.endswith(".part"))


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "4m"):
    """A small tmpfs at ``path`` (root only); None when it cannot be mounted here."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path)],
        capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
