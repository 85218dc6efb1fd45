"""The storage connectors' egress proxy: the address policy, pinned, in front of obstore.

Real sockets and a real obstore S3 store: a listener stands where a hostile
connector points, and the assertion is that it sees nothing (or, for the
endpoint the grant names, exactly the request and never its redirect).
"""

from __future__ import annotations

import asyncio
import base64
import http.server
import socket
import threading

import pytest

from squeezer.net.egress import egress
from squeezer.net.policy import UrlPolicy
from squeezer.storage import connectors
from squeezer.storage.errors import StorageError

S3 = {"access_key_id": "AKIAEGRESSTEST", "secret_access_key": "egress-secret"}
LOOPBACK = UrlPolicy(allow_networks=("127.0.0.1/32",))


class Listener:
    """An HTTP server on 127.0.0.1 that records every connection and answers ``status``
    (with a Location to ``location`` for a 3xx)."""

    def __init__(self, status: int = 200, location: str = "") -> None:
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.connections = 0
        seen = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self) -> None:
                seen.connections += 1
                super().setup()

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                seen.requests.append((self.command, self.path, dict(self.headers)))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


def _raw(proxy_url: str | None, request: bytes) -> bytes:
    """Send ``request`` to the proxy (with the grant's credentials when ``proxy_url``)."""
    proxy = egress()
    if proxy_url is not None:
        token = proxy_url.split("//", 1)[1].split("@", 1)[0]
        auth = base64.b64encode(token.encode()).decode()
        request = request.replace(b"\r\n", f"\r\nProxy-Authorization: Basic {auth}\r\n"
                                  .encode(), 1)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as sock:
        sock.sendall(request)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_without_a_grant_token_the_proxy_relays_nothing(listener):
    answer = _raw(None, f"GET http://127.0.0.1:{listener.port}/ HTTP/1.1\r\nHost: x\r\n\r\n"
                  .encode())
    assert answer.startswith(b"HTTP/1.1 407 ")
    assert listener.connections == 0


def test_only_the_granted_endpoint_is_reachable(listener):
    other = Listener()
    try:
        with egress().grant({("127.0.0.1", listener.port)}, LOOPBACK) as proxy_url:
            for request in (f"GET http://127.0.0.1:{other.port}/ HTTP/1.1\r\nHost: x\r\n\r\n",
                            f"CONNECT 127.0.0.1:{other.port} HTTP/1.1\r\nHost: x\r\n\r\n"):
                assert _raw(proxy_url, request.encode()).startswith(b"HTTP/1.1 403 ")
            ok = _raw(proxy_url, f"GET http://127.0.0.1:{listener.port}/b/k HTTP/1.1\r\n"
                      f"Host: 127.0.0.1:{listener.port}\r\n\r\n".encode())
        assert ok.startswith(b"HTTP/1.0 200 ") or ok.startswith(b"HTTP/1.1 200 "), ok[:200]
        assert other.connections == 0
        assert [(m, p) for m, p, _ in listener.requests] == [("GET", "/b/k")]
        # the proxy's credentials are the proxy's: the endpoint never sees them
        assert "Proxy-Authorization" not in listener.requests[0][2]
    finally:
        other.close()


def test_a_granted_name_that_resolves_to_a_forbidden_address_is_refused(listener):
    """The grant names the endpoint, the policy still decides where it may resolve: a name
    (``localhost``) that resolves to loopback is refused under the default policy."""
    with egress().grant({("localhost", listener.port)}, UrlPolicy()) as proxy_url:
        for request in (f"GET http://localhost:{listener.port}/ HTTP/1.1\r\nHost: x\r\n\r\n",
                        f"CONNECT localhost:{listener.port} HTTP/1.1\r\nHost: x\r\n\r\n"):
            answer = _raw(proxy_url, request.encode())
            assert answer.startswith(b"HTTP/1.1 403 "), answer[:200]
            assert b"loopback" in answer or b"127.0.0.1" in answer, answer
    assert listener.connections == 0


def test_a_redirect_never_reaches_the_store_client(listener):
    canary = Listener()
    redirect = Listener(307, f"http://127.0.0.1:{canary.port}/stolen")
    try:
        with egress().grant({("127.0.0.1", redirect.port)}, LOOPBACK) as proxy_url:
            answer = _raw(proxy_url, f"PUT http://127.0.0.1:{redirect.port}/b/k HTTP/1.1\r\n"
                          f"Host: x\r\nContent-Length: 2\r\n\r\nhi".encode())
        assert answer.startswith(b"HTTP/1.1 502 ") and b"redirect" in answer, answer[:300]
        assert b"Location" not in answer and b"stolen" not in answer
        assert canary.connections == 0
    finally:
        canary.close()
        redirect.close()


def _put(endpoint: str, policy: UrlPolicy) -> None:
    settings = {**S3, "endpoint": endpoint}

    async def put() -> None:
        with connectors.target_store("s3", settings, "bucket", policy) as store:
            async def body():
                yield b"%PDF-1.7 result"
            await store.put_stream("out/a.pdf", body())

    asyncio.run(put())


def test_an_s3_store_whose_endpoint_resolves_inside_never_connects(listener):
    """obstore resolves names itself: through the proxy, ``localhost`` (loopback) is refused
    before any connection, and the upload fails with a storage error."""
    with pytest.raises(StorageError):
        _put(f"http://localhost:{listener.port}", UrlPolicy(max_redirects=0))
    assert listener.connections == 0


def test_an_s3_store_on_a_redirecting_endpoint_never_follows_it():
    """The signed request (AWS4-HMAC-SHA256) goes to the endpoint and nowhere else."""
    canary = Listener()
    redirect = Listener(307, f"http://127.0.0.1:{canary.port}/stolen")
    try:
        with pytest.raises(StorageError) as failed:
            _put(f"http://127.0.0.1:{redirect.port}", LOOPBACK)
        assert "redirect" in str(failed.value)
        assert redirect.requests, "the endpoint was never asked"
        assert all({k.lower(): v for k, v in h.items()}["authorization"]
                   .startswith("AWS4-HMAC-SHA256") for _, _, h in redirect.requests)
        assert canary.connections == 0
    finally:
        canary.close()
        redirect.close()
