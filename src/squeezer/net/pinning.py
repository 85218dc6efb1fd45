"""One HTTP exchange with a host whose addresses were already validated ("pinned").

Why: validating a name and then letting an HTTP client resolve it again leaves a
window in which DNS can answer differently (rebinding). Here the HTTP client
(httpcore) keeps the real host name in the URL, so the ``Host`` header, TLS SNI
and certificate verification all use the name, while its network backend is
replaced by :class:`PinnedBackend`, which never resolves anything: it connects
only to the addresses it was given and refuses any other host outright.

No proxy, no ``.netrc``, no environment variables are consulted: httpcore has
none of httpx's ``trust_env`` behaviour.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import typing
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import certifi
import httpcore

from squeezer.net.errors import SourceTimeout, SourceUnreachable
from squeezer.net.policy import ParsedTarget


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """A network backend that can reach one (host, port), via validated addresses only."""

    def __init__(self, host: str, port: int, addresses: Sequence[str]) -> None:
        if not addresses:
            raise ValueError("no validated address to pin")
        self._host = host.strip("[]").lower()
        self._port = port
        self._addresses = tuple(addresses)
        self._inner = httpcore.AnyIOBackend()
        self.connected: list[str] = []  # addresses actually connected to, for audits/tests

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if host.strip("[]").lower() != self._host or port != self._port:
            raise httpcore.ConnectError(f"refusing to connect to unvalidated {host}:{port}")
        last: Exception | None = None
        for address in self._addresses:
            try:
                stream = await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
                continue
            peer = stream.get_extra_info("server_addr")
            if peer and _same_ip(peer[0], address) is False:
                await stream.aclose()
                raise httpcore.ConnectError(f"connected to {peer[0]}, expected {address}")
            self.connected.append(address)
            return stream
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are never used for outbound requests")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _same_ip(a: str, b: str) -> bool | None:
    try:
        return ipaddress.ip_address(str(a).split("%", 1)[0]) == ipaddress.ip_address(b)
    except ValueError:
        return None


@functools.lru_cache(maxsize=8)
def ssl_context(ca_bundle: str | None) -> ssl.SSLContext:
    """Verifying TLS context (hostname checked against the URL's name, not the IP)."""
    context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@asynccontextmanager
async def pinned_request(
    method: str,
    target: ParsedTarget,
    addresses: Sequence[str],
    *,
    headers: Sequence[tuple[str, str]],
    body: bytes | None = None,
    connect_timeout: float,
    read_timeout: float,
    ca_bundle: str | None = None,
) -> AsyncIterator[httpcore.Response]:
    """Send one request to ``target`` over a fresh connection to one of ``addresses``.

    Yields the streaming response; network failures become
    :class:`SourceTimeout` / :class:`SourceUnreachable`. A fresh pool per
    exchange means a connection made for one host name is never reused for
    another (redirect hops each get their own).
    """
    backend = PinnedBackend(target.host, target.port, addresses)
    pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context(ca_bundle) if target.scheme == "https" else None,
        max_connections=1,
        retries=0,
        http1=True,
        http2=False,
        network_backend=backend,
    )
    extensions = {
        "timeout": {
            "connect": connect_timeout,
            "read": read_timeout,
            "write": read_timeout,
            "pool": connect_timeout,
        }
    }
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    where = target.url
    try:
        async with (
            pool,
            pool.stream(
                method, target.url, headers=raw_headers, content=body, extensions=extensions
            ) as response,
        ):
            yield response
    except httpcore.TimeoutException as exc:
        raise SourceTimeout(f"timed out talking to {where}: {type(exc).__name__}") from None
    except (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol) as exc:
        detail = str(exc) or type(exc).__name__
        raise SourceUnreachable(f"could not fetch {where}: {detail}") from None
    except ssl.SSLError as exc:  # pragma: no cover - httpcore maps these to ConnectError
        raise SourceUnreachable(f"TLS failure with {where}: {exc}") from None


def header(response: httpcore.Response, name: str) -> str | None:
    """First value of a response header, decoded leniently (UTF-8, else Latin-1)."""
    wanted = name.lower().encode("ascii")
    for key, value in response.headers:
        if key.lower() == wanted:
            try:
                return value.decode("utf-8")
            except UnicodeDecodeError:
                return value.decode("latin-1")
    return None
