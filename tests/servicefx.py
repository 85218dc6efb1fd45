"""A real Squeezer service for tests: ``squeezer serve`` as a subprocess on a free port.

The server gets its own data directory (embedded PostgreSQL, local blobs),
its first-start admin key is read from its stdout, and :meth:`Service.api`
starts further API processes on the same database with other settings (a
tiny rate limit, a tiny TTL), the way a multi-machine deployment shares one.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self.stdout = log.with_suffix(".out")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "squeezer", *args], env=env, start_new_session=True,
            stdout=self.stdout.open("wb"), stderr=log.open("wb"),
        )

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def wait_ready(self, url: str, path: str = "/readyz", timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"server not ready in {timeout} s:\n{self.tail()}")

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


def first_key(proc: Process, timeout: float = 10) -> str:
    """The admin key a first start prints on stdout (with the address, once the API listens)."""
    deadline = time.monotonic() + timeout
    while True:
        match = re.search(r"(sqz_[A-Za-z0-9_-]{43})", proc.stdout.read_text())
        if match:
            return match.group(1)
        assert time.monotonic() < deadline, f"no first-start key printed:\n{proc.stdout.read_text()}"
        time.sleep(0.1)


class Service:
    """``squeezer serve`` with one worker; ``url``, ``key`` (the first-start admin key)."""

    def __init__(self, root: Path, **settings: str) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "SQUEEZER_DATA_DIR": str(self.data),
                    # the tests' own HTTP servers (sources, webhook receivers) are on 127.0.0.1
                    "SQUEEZER_FETCH_ALLOW_NETWORKS": "127.0.0.1/32",
                    "SQUEEZER_WEBHOOK_ALLOW_NETWORKS": "127.0.0.1/32",
                    "SQUEEZER_SWEEP_SECONDS": "1",
                    "SQUEEZER_STALLED_SECONDS": "5",
                    "SQUEEZER_WEBHOOK_BACKOFF_SECONDS": "0.2",
                    **settings}
        self.env.pop("SQUEEZER_DATABASE_URL", None)
        self.extra: list[Process] = []
        self.server = Process(["serve", "--port", str(self.port), "--workers", "1",
                               "--no-access-log"], self.env, root / "serve.log")
        self.server.wait_ready(self.url)
        self.key = first_key(self.server)
        self.database_url = self._database_url()

    def _database_url(self) -> str:
        """The embedded server's URL, as `squeezer serve` hands it to its workers."""
        sys.path.insert(0, str(Path(__file__).parent))
        from squeezer.db import open_database

        db = open_database(None, self.data)
        url = db.url
        self._db = db
        return url

    def client(self, key: str | None = None, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=120, **kwargs)

    def api(self, **settings: str) -> str:
        """Another API process on the same database and blobs, with ``settings``; its URL."""
        port = free_port()
        env = {**self.env, "SQUEEZER_DATABASE_URL": self.database_url, **settings}
        proc = Process(["api", "--port", str(port), "--no-access-log"], env,
                       self.root / f"api-{port}.log")
        url = f"http://127.0.0.1:{port}"
        proc.wait_ready(url, "/healthz")
        self.extra.append(proc)
        return url

    def new_key(self, name: str = "test") -> str:
        env = {**self.env, "SQUEEZER_DATABASE_URL": self.database_url}
        out = subprocess.run([sys.executable, "-m", "squeezer", "keys", "create", name],
                             env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    def stop(self) -> int:
        for proc in self.extra:
            proc.stop()
        code = self.server.stop()
        self._db.close()
        return code
