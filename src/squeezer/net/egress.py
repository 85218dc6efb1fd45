"""A local pinning proxy: the address policy in front of a client we cannot pin ourselves.

Fetches and webhooks go through httpcore with :class:`~squeezer.net.pinning.PinnedBackend`.
The storage connectors cannot: obstore (Rust's ``object_store`` on ``reqwest``)
resolves names itself, follows redirects itself (a 307 from an S3 endpoint
carried the signed request elsewhere) and takes its endpoints from whatever it
is given.  What it does take is a proxy (``client_options={"proxy_url": ...}``).
So each connector store is given this process's :class:`EgressProxy`, with a
:class:`Grant` naming the endpoints it may reach, and every connection it
makes goes through the same steps as a fetch:

* the requested host and port must be one the grant names (our own endpoint,
  built from validated fields: :mod:`squeezer.storage.connectors`), else
  ``403`` and no connection;
* the host is resolved once and **every** address checked against the policy
  (:func:`~squeezer.net.policy.resolve_and_check`), then one of them connected
  to and the peer checked: the pin (no second lookup, so no DNS rebinding);
* plain ``http`` requests are forwarded with ``Connection: close``, and an
  answer that is a redirect (3xx) is replaced by ``502`` and never reaches the
  client: redirects are not followed.

For ``https`` the proxy makes a tunnel (``CONNECT``) and cannot see inside
TLS.  A redirect there can only be followed back to the same endpoint, since
a redirect anywhere else needs a tunnel to another host, which the grant
refuses: the signed request never leaves the validated endpoint.  That is the
limit of this design, and is documented in docs/security.md.

The proxy listens on loopback only, on an ephemeral port, and answers only
requests carrying a grant's random token (``Proxy-Authorization``), so it is
no open relay for other local processes.  It runs on a thread of its own with
its own event loop, so any caller (a worker's loop, a test) can use it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import logging
import secrets
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from squeezer.net.errors import NetError
from squeezer.net.policy import UrlPolicy, resolve_and_check

log = logging.getLogger(__name__)

#: Largest request or response head the proxy reads.
MAX_HEAD = 64 << 10
#: Seconds a client has to send its request head, and a tunnel may stay silent.
HEAD_TIMEOUT = 30.0
IDLE_TIMEOUT = 300.0
CHUNK = 1 << 16


@dataclass(frozen=True)
class Grant:
    """Where one store may connect: ``(host, port)`` pairs, under ``policy``."""

    targets: frozenset[tuple[str, int]]
    policy: UrlPolicy
    token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: addresses actually connected to, for audits and tests
    connected: list[str] = field(default_factory=list, compare=False, hash=False)


class EgressProxy:
    """The process's proxy; :func:`egress` starts it on first use."""

    def __init__(self) -> None:
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._server: asyncio.AbstractServer | None = None
        self.port = 0
        self._thread = threading.Thread(target=self._run, args=(started,), daemon=True,
                                        name="squeezer-egress")
        self._thread.start()
        started.wait()
        if self._server is None:
            raise OSError("the egress proxy could not listen on 127.0.0.1")

    def _run(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, "127.0.0.1", 0, limit=MAX_HEAD))
            self.port = self._server.sockets[0].getsockname()[1]
        finally:
            started.set()
        self._loop.run_forever()

    @contextlib.contextmanager
    def grant(self, targets: Iterable[tuple[str, int]], policy: UrlPolicy) -> Iterator[str]:
        """A proxy URL (with its token) for the duration of the block."""
        entry = Grant(frozenset((h.lower().strip("[]"), int(p)) for h, p in targets), policy)
        with self._lock:
            self._grants[entry.token] = entry
        try:
            yield f"http://{entry.token}:x@127.0.0.1:{self.port}"
        finally:
            with self._lock:
                self._grants.pop(entry.token, None)

    def grant_of(self, proxy_url: str) -> Grant | None:
        """The live grant behind a URL :meth:`grant` made (for tests and audits)."""
        token = proxy_url.split("//", 1)[-1].split(":", 1)[0]
        with self._lock:
            return self._grants.get(token)

    # -- one client connection --------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), HEAD_TIMEOUT)
            method, target, version, headers = _parse_head(head)
            grant = self._authorised(headers)
            if grant is None:
                await _answer(writer, 407, "proxy authentication required",
                              [("Proxy-Authenticate", 'Basic realm="squeezer"')])
                return
            if method == "CONNECT":
                host, port = _split_authority(target, 443)
                up_reader, upstream = await self._open(grant, host, port)
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
                await _splice(reader, writer, up_reader, upstream)
                return
            if not target.lower().startswith("http://"):
                await _answer(writer, 400, "absolute http:// URL or CONNECT expected")
                return
            authority, _, path = target[7:].partition("/")
            host, port = _split_authority(authority, 80)
            up_reader, upstream = await self._open(grant, host, port)
            await self._forward(reader, writer, up_reader, upstream, method, "/" + path,
                                version, headers)
        except _Refused as exc:
            log.warning("egress refused: %s", exc)
            with contextlib.suppress(Exception):
                await _answer(writer, exc.status, str(exc))
        except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError, ValueError):
            pass
        finally:
            for stream in (upstream, writer):
                if stream is not None:
                    stream.close()

    def _authorised(self, headers: list[tuple[str, str]]) -> Grant | None:
        for name, value in headers:
            if name.lower() == "proxy-authorization":
                scheme, _, encoded = value.strip().partition(" ")
                if scheme.lower() != "basic":
                    return None
                try:
                    user = base64.b64decode(encoded.strip(), validate=True).decode().split(":")[0]
                except (ValueError, UnicodeDecodeError):
                    return None
                with self._lock:
                    return self._grants.get(user)
        return None

    async def _open(self, grant: Grant, host: str, port: int
                    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``host:port`` if the grant names it and the policy accepts every
        address it resolves to; the connection goes to one of those addresses (pinned)."""
        host = host.lower().strip("[]")
        if (host, port) not in grant.targets:
            raise _Refused(403, f"{host}:{port} is not this store's endpoint")
        policy = grant.policy
        if policy.allowed_ports is not None and port not in policy.allowed_ports:
            raise _Refused(403, f"port {port} is not allowed")
        try:
            addresses = await asyncio.to_thread(resolve_and_check, host, port, policy)
        except NetError as exc:
            raise _Refused(403, exc.message) from None
        last: Exception | None = None
        for address in addresses:
            try:
                up_reader, up_writer = await asyncio.wait_for(
                    asyncio.open_connection(address, port, limit=MAX_HEAD),
                    policy.connect_timeout)
            except (TimeoutError, OSError) as exc:
                last = exc
                continue
            peer = up_writer.get_extra_info("peername")
            if not peer or ipaddress.ip_address(str(peer[0]).split("%")[0]) \
                    != ipaddress.ip_address(address):
                up_writer.close()
                raise _Refused(502, f"connected to {peer}, expected {address}")
            grant.connected.append(address)
            return up_reader, up_writer
        raise _Refused(502, f"could not connect to {host}:{port}: {last}")

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       up_reader: asyncio.StreamReader, upstream: asyncio.StreamWriter,
                       method: str, path: str, version: str,
                       headers: list[tuple[str, str]]) -> None:
        """One plain-HTTP exchange: the request as origin-form with ``Connection: close``,
        the body spliced, the answer's head checked (no redirect passes), the rest spliced."""
        kept = [(k, v) for k, v in headers
                if k.lower() not in ("proxy-authorization", "proxy-connection", "connection",
                                     "keep-alive")]
        lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in kept]
        upstream.write(("\r\n".join(lines + ["Connection: close", "", ""])).encode("latin-1"))
        await upstream.drain()
        sending = asyncio.ensure_future(_pump(reader, upstream))
        try:
            head = await asyncio.wait_for(up_reader.readuntil(b"\r\n\r\n"), IDLE_TIMEOUT)
            status = int(head.split(b" ", 2)[1])
            if 300 <= status < 400:
                raise _Refused(502, f"the storage endpoint answered a redirect ({status}); "
                               "redirects are not followed")
            out = [line for line in head.split(b"\r\n")
                   if not line.lower().startswith((b"connection:", b"keep-alive:"))]
            writer.write(out[0] + b"\r\n" + b"".join(line + b"\r\n" for line in out[1:] if line)
                         + b"Connection: close\r\n\r\n")
            await writer.drain()
            await _pump(up_reader, writer)
        finally:
            sending.cancel()
            with contextlib.suppress(BaseException):
                await sending


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return method.upper(), target, version, headers


def _split_authority(authority: str, default_port: int) -> tuple[str, int]:
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.partition(":")
    if port and not port.isdigit():
        raise _Refused(400, f"bad port in {authority!r}")
    return host, int(port) if port else default_port


async def _answer(writer: asyncio.StreamWriter, status: int, message: str,
                  headers: list[tuple[str, str]] | None = None) -> None:
    body = message.encode()
    reason = {400: "Bad Request", 403: "Forbidden", 407: "Proxy Authentication Required",
              502: "Bad Gateway"}.get(status, "Error")
    extra = "".join(f"{k}: {v}\r\n" for k, v in headers or [])
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n{extra}"
                 f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    await writer.drain()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        data = await asyncio.wait_for(reader.read(CHUNK), IDLE_TIMEOUT)
        if not data:
            with contextlib.suppress(OSError):
                if writer.can_write_eof():
                    writer.write_eof()
            return
        writer.write(data)
        await writer.drain()


async def _splice(a_reader: asyncio.StreamReader, a_writer: asyncio.StreamWriter,
                  b_reader: asyncio.StreamReader, b_writer: asyncio.StreamWriter) -> None:
    tasks = [asyncio.ensure_future(_pump(a_reader, b_writer)),
             asyncio.ensure_future(_pump(b_reader, a_writer))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        # one side finished cleanly: let the other finish too (bounded by the idle timeout)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()


_PROXY: EgressProxy | None = None
_PROXY_LOCK = threading.Lock()


def egress() -> EgressProxy:
    """This process's proxy, started on first use (a fork gets its own)."""
    global _PROXY
    with _PROXY_LOCK:
        if _PROXY is None or not _PROXY._thread.is_alive():
            _PROXY = EgressProxy()
        return _PROXY
