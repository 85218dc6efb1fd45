"""``squeezer serve --open``: the web page works without pasting a key, on a trusted network.

How it works, and why it is built this way:

- At start-up the API process creates a dedicated, non-admin API key named
  ``web page (--open) …``.  Its secret lives only in this process's memory
  (the database keeps its hash, as for every key); its id is written to
  ``SQUEEZER_DATA_DIR/web-open-<port>.key-id`` so that a run that crashed is
  cleaned up by the next start on the same data directory.  A clean stop
  revokes it.  Nothing in the auth layer changes: requests without a key are
  still 401; the page simply receives this key from ``/web/config.json`` and
  sends it as ``Authorization: Bearer`` like any other client.
- The key is handed out only to requests whose ``Host`` header is an IP
  literal, ``localhost``, this machine's host name, the ``--host`` given or
  the host of ``SQUEEZER_PUBLIC_URL``: a page on another site that re-binds
  its own DNS name to this server (DNS rebinding) gets no key.  No CORS
  headers are sent, so other origins cannot read the config either.
- The risk, documented in the README: anyone who can reach the port can use
  the service (and the API, with the key the page reveals) within the key's
  rate limit, and — since every open-mode user shares the one key — list
  (``GET /v1/jobs``), download and delete the others' files.  The default bind stays
  127.0.0.1; listening on another address with ``--open`` prints a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import uuid
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI

log = logging.getLogger("squeezer.web")

KEY_NAME = "web page (--open)"


class OpenMode:
    """The open-mode key of one API process, and the hosts it is handed to."""

    def __init__(self, hosts: set[str]) -> None:
        self.secret: str | None = None
        self.key_id: uuid.UUID | None = None
        self.hosts = hosts

    def allowed_host(self, host_header: str | None) -> bool:
        host = _host_only(host_header or "")
        if not host:
            return False
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            return host in self.hosts


def _host_only(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:value.find("]")] if "]" in value else ""
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


def _hosts(bind_host: str, public_url: str | None) -> set[str]:
    names = {"localhost", bind_host.lower()}
    for name in (socket.gethostname(), socket.getfqdn()):
        if name:
            names.add(name.lower())
    if public_url:
        names.add((urlsplit(public_url).hostname or "").lower())
    return {n for n in names if n}


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def enable(app: FastAPI, config: Any, database: Any, *, host: str, port: int) -> OpenMode:
    """Give ``app`` an open-mode key for its lifetime (created at start-up, revoked at stop)."""
    from squeezer.db import keys

    mode = OpenMode(_hosts(host, getattr(config, "public_url", None)))
    app.state.web_open_mode = mode
    record = Path(config.data_dir) / f"web-open-{port}.key-id"
    if not _is_loopback(host):
        log.warning("--open on %s: anyone who can reach port %d can compress files here "
                    "without a key (and read the page's key); use it on a trusted network only",
                    host, port)
    inner = app.router.lifespan_context

    async def revoke(key_id: uuid.UUID) -> None:
        conn = await database.aconnect(autocommit=True)
        try:
            await keys.revoke(conn, key_id)
        finally:
            await conn.close()

    @asynccontextmanager
    async def lifespan(a: FastAPI):
        if record.exists():  # left by a run that did not stop cleanly
            try:
                await revoke(uuid.UUID(record.read_text().strip()))
            except ValueError:
                pass
        conn = await database.aconnect(autocommit=True)
        try:
            key, secret = await keys.create(conn, f"{KEY_NAME} {socket.gethostname()}:{port}")
        finally:
            await conn.close()
        record.write_text(str(key.id))
        mode.key_id, mode.secret = key.id, secret
        try:
            async with inner(a) as state:
                yield state
        finally:
            mode.secret = None
            await revoke(key.id)
            record.unlink(missing_ok=True)

    app.router.lifespan_context = lifespan
    return mode
