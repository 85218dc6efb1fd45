"""SSRF-safe fetch and webhook delivery (squeezer.net), over real sockets.

The machine has no internet, so:
- "public" URLs are checked by the validation functions with a stub resolver
  (no connection is ever attempted for them);
- the local HTTP server listens on 127.0.0.2, reachable only because the test
  policy allow-lists 127.0.0.2/32;
- a canary listener on 127.0.0.1 counts connections: every refused URL that
  would land on it must leave it at zero (hostile-inputs.md invariant I5).
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from squeezer.net import (
    SourceHttpError,
    SourceTimeout,
    SourceTooLarge,
    SourceUnreachable,
    TooManyRedirects,
    UrlNotAllowed,
    UrlPolicy,
    acheck_url,
    check_url,
    fetch_to_file,
    post_json,
    resolve_and_check,
    sanitize_filename,
)
from squeezer.net.deliver import EXCERPT_BYTES, parse_retry_after
from squeezer.net.policy import classify, parse_legacy_ipv4

SERVER_IP = "127.0.0.2"
PUBLIC_IP = "93.184.216.34"


# ---------------------------------------------------------------------------
# Fixtures: canary, HTTP server, resolvers
# ---------------------------------------------------------------------------


class Canary:
    """A listening socket nobody should ever connect to; counts completed connections."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self._accepted = 0

    def connections(self) -> int:
        """Drain the accept queue (the kernel completes handshakes without us) and count."""
        time.sleep(0.05)
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self._accepted
            conn.close()
            self._accepted += 1

    def close(self) -> None:
        self.sock.close()


class Recorded:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.lock = threading.Lock()

    def add(self, **kw) -> None:
        with self.lock:
            self.requests.append(kw)


def _body(n: int) -> bytes:
    pattern = bytes(range(256))
    return (pattern * (n // 256 + 1))[:n]


def make_handler(recorded: Recorded, canary_port: int):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # keep test output clean
            pass

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                self.close_connection = True

        def _record(self, body: bytes = b"") -> None:
            recorded.add(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )

        def _send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self._record()
            url = urlsplit(self.path)
            parts = url.path.strip("/").split("/")
            route = parts[0]
            if route == "file":
                n = int(parts[1])
                self._send(200, _body(n), {"Content-Type": "application/pdf; x=1"})
            elif route == "hop":
                k = int(parts[1])
                if k > 0:
                    self._send(302, b"", {"Location": f"/hop/{k - 1}"})
                else:
                    self._send(200, _body(1000), {"Content-Type": "application/pdf"})
            elif route == "redirect":
                target = parse_qs(url.query)["to"][0]
                self._send(302, b"moved", {"Location": target})
            elif route == "status":
                self._send(int(parts[1]), b"nope")
            elif route == "disposition":
                self._send(
                    200,
                    b"%PDF-1.7\n",
                    {"Content-Disposition": 'attachment; filename="../../etc/passwd"'},
                )
            elif route == "liar-big":
                self.send_response(200)
                self.send_header("Content-Length", str(10**12))
                self.end_headers()
                self.wfile.write(b"x" * 1000)
            elif route == "liar-short":
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.write(b"x" * 10)
            elif route == "endless":  # HTTP/1.0, no length: read until close, forever
                self.send_response(200)
                self.end_headers()
                chunk = b"y" * 65536
                while True:
                    self.wfile.write(chunk)
            elif route == "chunked-endless":
                self.wfile.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"z" * 65536
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            elif route == "drip":
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                for _ in range(1000):
                    self.wfile.write(b"d")
                    self.wfile.flush()
                    time.sleep(0.1)
            elif route == "gzip":
                payload = _body(5000)
                self._send(200, gzip.compress(payload), {"Content-Encoding": "gzip"})
            elif route == "gzip-bomb":
                self._send(200, _gzip_bomb(), {"Content-Encoding": "gzip"})
            else:
                self._send(404, b"unknown route")

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            self._record(body)
            route = urlsplit(self.path).path
            if route == "/hook":
                self._send(204)
            elif route == "/hook302":
                self._send(302, b"", {"Location": f"http://127.0.0.1:{canary_port}/stolen"})
            elif route == "/hook500":
                self._send(500, b"E" * 10_000)
            elif route == "/hook429":
                self._send(429, b"slow down", {"Retry-After": "7"})
            elif route == "/hook-slow":
                time.sleep(3)
                self._send(204)
            else:
                self._send(404)

    return Handler


class Server:
    def __init__(self, canary_port: int, ssl_context: ssl.SSLContext | None = None) -> None:
        self.recorded = Recorded()
        self.httpd = ThreadingHTTPServer((SERVER_IP, 0), make_handler(self.recorded, canary_port))
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False  # endless/drip handlers end when the client leaves
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def requests(self) -> list[dict]:
        with self.recorded.lock:
            return list(self.recorded.requests)

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def canary():
    c = Canary()
    yield c
    c.close()


@pytest.fixture()
def server(canary):
    try:
        s = Server(canary.port)
    except OSError as exc:  # 127.0.0.2 is loopback on Linux; elsewhere maybe not
        pytest.skip(f"cannot bind {SERVER_IP}: {exc}")
    yield s
    s.close()


class StubResolver:
    """Answers from a table, counts calls; unknown names fail like NXDOMAIN."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]]) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        answer = self.table.get(host)
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answer and isinstance(answer[0], list):  # a sequence of answers, one per call
            n = sum(1 for h in self.calls if h == host) - 1
            return answer[min(n, len(answer) - 1)]  # type: ignore[return-value]
        return answer  # type: ignore[return-value]


def forbidden_resolver(host: str, port: int) -> list[str]:
    raise AssertionError(f"the resolver must not be consulted for {host}")


# Limits small enough for fast tests.
@functools.cache
def _gzip_bomb() -> bytes:
    """20 MiB of zeros gzipped, made once: compressing it per request took longer than the
    client's read timeout on a loaded machine."""
    return gzip.compress(b"\0" * (20 << 20))


ALLOW_SERVER = UrlPolicy(
    allow_networks=(f"{SERVER_IP}/32",),
    max_bytes=256 * 1024,
    connect_timeout=2,
    read_timeout=2,
    total_timeout=5,
)


def run(coro):
    return asyncio.run(coro)


def leftovers(directory: Path) -> list[str]:
    """Files in ``directory``, ignoring conftest's private system temp dir."""
    return sorted(p.name for p in directory.iterdir() if p.name != "_systmp")


# ---------------------------------------------------------------------------
# Validation only (no sockets)
# ---------------------------------------------------------------------------

ROW_27 = [
    "http://127.0.0.1:6379/",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0:8000",
    "http://[::1]/",
    "http://[::ffff:127.0.0.1]/",
    "http://[2002:7f00:1::1]/",
    "http://[64:ff9b::a9fe:a9fe]/",
    "http://100.64.0.1/",
    "http://10.0.0.1/",
]

MORE_REFUSED = [
    # numeric spellings libc accepts for 127.0.0.1
    "http://2130706433/",
    "http://0x7f.1/",
    "http://017700000001/",
    "http://127.1/",
    "http://0x7f000001/",
    "http://127.0.0.1./",
    "http://１２７．０．０．１/",  # full-width digits/dots, mapped by IDNA
    # other ranges
    "http://172.16.0.1/",
    "http://192.168.1.1/",
    "http://198.18.0.1/",
    "http://224.0.0.1/",
    "http://240.0.0.1/",
    "http://255.255.255.255/",
    "http://192.0.2.1/",
    "http://168.63.129.16/",
    "http://0.1.2.3/",
    "http://[::]/",
    "http://[fc00::1]/",
    "http://[fd00:ec2::254]/",
    "http://[fe80::1]/",
    "http://[ff02::1]/",
    "http://[::127.0.0.1]/",
    "http://[64:ff9b:1::a00:1]/",
    "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",  # Teredo
    "http://[2001:db8::1]/",
    "http://[::ffff:8.8.8.8]/",  # mapped addresses are refused outright
    # scheme and userinfo tricks
    "file:///etc/passwd",
    "gopher://example.com/_SLAVEOF",
    "ftp://example.com/x",
    "dict://example.com:11211/",
    "javascript:alert(1)",
    "//example.com/x",
    "http://good.example@evil.example/",
    "http://user:pass@example.com/",
    "http://@example.com/",
    # malformed hosts and ports
    "http:///path",
    "http://:80/",
    "http://example.com:0/",
    "http://example.com:65536/",
    "http://example.com:+80/",
    "http://example.com:8o/",
    "http://example.com:80:80/",
    "http://[fe80::1%25eth0]/",
    "http://%31%32%37.0.0.1/",
    "http://1.2.3.4.5/",
    "http://0x7g.1/",
    "http://256.1.1.1/",
    "http://exa mple.com/",
    "http://example.com\\@127.0.0.1/",
    "http://example.com/\r\nX: y",
    "http://[::1/",
    "http://a..b/",
]


@pytest.mark.parametrize("url", ROW_27 + MORE_REFUSED)
def test_refused_urls_are_refused_before_dns(url: str) -> None:
    with pytest.raises(UrlNotAllowed) as info:
        check_url(url, UrlPolicy())
        raise AssertionError("check_url accepted it")  # names resolve later: must fail here
    assert info.value.code == "url_not_allowed"
    assert "URL not allowed" in info.value.message


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://Example.COM/a?b=c#frag", "http://example.com/a?b=c"),
        ("hTTpS://example.com:443", "https://example.com/"),
        ("https://example.com:8443/x%20y", "https://example.com:8443/x%20y"),
        ("http://bücher.example/é", "http://xn--bcher-kva.example/%C3%A9"),
        ("http://8.8.8.8/", "http://8.8.8.8/"),
        ("http://[2606:4700:4700::1111]:8080/", "http://[2606:4700:4700::1111]:8080/"),
        ("http://example.com.:/", "http://example.com/"),
    ],
)
def test_public_urls_are_accepted_and_canonicalised(url: str, canonical: str) -> None:
    assert check_url(url, UrlPolicy()).url == canonical


@pytest.mark.parametrize(
    ("host", "ip"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.01", "127.0.0.1"),
        ("10.0x10.1", "10.16.0.1"),
        ("8.8.8.8", "8.8.8.8"),
        ("example.com", None),
        ("0x7f.example", None),
    ],
)
def test_legacy_ipv4_spellings(host: str, ip: str | None) -> None:
    parsed = parse_legacy_ipv4(host)
    assert (str(parsed) if parsed else None) == ip


def test_public_addresses_pass_the_classifier() -> None:
    for ip in ["8.8.8.8", "1.1.1.1", PUBLIC_IP, "2606:4700:4700::1111", "2a00:1450::1"]:
        assert classify(ipaddress.ip_address(ip)) is None, ip
    # 100.64/10 is special-cased by Python; we refuse it explicitly.
    assert classify(ipaddress.ip_address("100.100.100.200")) is not None


def test_resolution_checks_every_address() -> None:
    resolver = StubResolver(
        {
            "public.test": [PUBLIC_IP, "2606:4700:4700::1111"],
            "mixed.test": [PUBLIC_IP, "127.0.0.1"],
            "mixed6.test": [PUBLIC_IP, "::ffff:169.254.169.254"],
            "files.intranet": ["10.1.2.3"],
            "loop.intranet": ["127.0.0.1"],
        }
    )
    policy = UrlPolicy()
    assert resolve_and_check("public.test", 443, policy, resolver=resolver) == [
        PUBLIC_IP,
        "2606:4700:4700::1111",
    ]
    for name in ["mixed.test", "mixed6.test", "files.intranet"]:
        with pytest.raises(UrlNotAllowed):
            resolve_and_check(name, 80, policy, resolver=resolver)
    with pytest.raises(SourceUnreachable):  # DNS failure fails closed
        resolve_and_check("nxdomain.test", 80, policy, resolver=resolver)

    on_prem = UrlPolicy(allow_hosts=("files.intranet", "loop.intranet"))
    assert resolve_and_check("files.intranet", 80, on_prem, resolver=resolver) == ["10.1.2.3"]
    with pytest.raises(UrlNotAllowed):  # a host allow-list never opens loopback
        resolve_and_check("loop.intranet", 80, on_prem, resolver=resolver)

    networks = UrlPolicy(allow_networks=("10.0.0.0/8",))
    assert resolve_and_check("files.intranet", 80, networks, resolver=resolver) == ["10.1.2.3"]
    assert check_url("http://10.0.0.1/", networks).ip == "10.0.0.1"
    with pytest.raises(UrlNotAllowed):  # unspecified/multicast are never allowed
        check_url("http://0.0.0.0/", UrlPolicy(allow_networks=("0.0.0.0/0",)))

    only = UrlPolicy(allow_hosts=("*.intranet",), allowlist_only=True)
    with pytest.raises(UrlNotAllowed):
        check_url("https://example.com/", only)
    assert resolve_and_check("files.intranet", 80, only, resolver=resolver) == ["10.1.2.3"]

    nat64 = UrlPolicy(allow_nat64=True)
    assert check_url("http://[64:ff9b::808:808]/", nat64).ip == "64:ff9b::808:808"
    with pytest.raises(UrlNotAllowed):
        check_url("http://[64:ff9b::808:808]/", UrlPolicy())
    with pytest.raises(UrlNotAllowed):
        check_url("http://[64:ff9b::a9fe:a9fe]/", nat64)


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system32\\drivers\\etc\\hosts", "hosts"),
        ("/abs/path/secret.key", "secret.key"),
        ("nested/dir/photo.png", "photo.png"),
        ("", None),
        (None, None),
        ("..", None),
        (".", None),
        (" ", None),
        (".hidden.pdf", "hidden.pdf"),
        ("a\0b\x1f.pdf", "ab.pdf"),
        ("re:port<1>?.pdf", "re_port_1__.pdf"),
    ],
)
def test_filename_hints_are_sanitised(raw: str | None, safe: str | None) -> None:
    assert sanitize_filename(raw) == safe


def test_long_filename_keeps_extension() -> None:
    name = sanitize_filename("a" * 5000 + ".pdf")
    assert name is not None and len(name) <= 200 and name.endswith(".pdf")


def test_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


# ---------------------------------------------------------------------------
# Refusals over real sockets: zero connections
# ---------------------------------------------------------------------------


def test_refused_urls_make_zero_connections(canary: Canary, tmp_path: Path) -> None:
    p = canary.port
    urls = [
        f"http://127.0.0.1:{p}/",
        f"http://0.0.0.0:{p}/",
        f"http://[::ffff:127.0.0.1]:{p}/",
        f"http://[::1]:{p}/",
        f"http://[2002:7f00:1::1]:{p}/",
        f"http://127.1:{p}/",
        f"http://2130706433:{p}/",
        f"http://0x7f.1:{p}/",
        f"http://017700000001:{p}/",
        f"HTTP://127.0.0.1:{p}/",
        f"http://user@127.0.0.1:{p}/",
        f"gopher://127.0.0.1:{p}/_INFO",
    ] + ROW_27
    for url in urls:
        with pytest.raises(UrlNotAllowed):
            run(fetch_to_file(url, tmp_path / "out.pdf", UrlPolicy(), resolver=forbidden_resolver))
        result = run(post_json(url, b"{}", {}, UrlPolicy(), resolver=forbidden_resolver))
        assert result.error == "url_not_allowed" and result.status is None, url
    # names are refused after resolution, still before connecting
    with pytest.raises(UrlNotAllowed):
        run(fetch_to_file(f"http://localhost:{p}/", tmp_path / "out.pdf", UrlPolicy()))
    mixed = StubResolver({"mixed.test": [PUBLIC_IP, "127.0.0.1"]})
    with pytest.raises(UrlNotAllowed):
        run(fetch_to_file(f"http://mixed.test:{p}/", tmp_path / "o", UrlPolicy(), resolver=mixed))
    assert mixed.calls == ["mixed.test"]
    assert canary.connections() == 0
    assert leftovers(tmp_path) == []


def test_the_test_server_is_reachable_only_through_the_allowlist(
    server: Server, tmp_path: Path
) -> None:
    with pytest.raises(UrlNotAllowed):
        run(fetch_to_file(f"http://{SERVER_IP}:{server.port}/file/10", tmp_path / "x", UrlPolicy()))
    assert server.requests == []
    result = run(
        fetch_to_file(f"http://{SERVER_IP}:{server.port}/file/10", tmp_path / "x", ALLOW_SERVER)
    )
    assert result.size == 10


# ---------------------------------------------------------------------------
# Fetch over real sockets
# ---------------------------------------------------------------------------


def test_fetch_success_with_pinned_name(server: Server, tmp_path: Path) -> None:
    import hashlib

    resolver = StubResolver({"files.test": [SERVER_IP]})
    dest = tmp_path / "in.pdf"
    result = run(
        fetch_to_file(
            f"HTTP://Files.Test:{server.port}/file/100000", dest, ALLOW_SERVER, resolver=resolver
        )
    )
    expected = _body(100000)
    assert dest.read_bytes() == expected
    assert result.size == len(expected)
    assert result.sha256 == hashlib.sha256(expected).hexdigest()
    assert result.content_type == "application/pdf"
    assert result.final_url == f"http://files.test:{server.port}/file/100000"
    assert result.filename_hint == "100000"
    # one lookup for one hop; the name (not the IP) travels in Host
    assert resolver.calls == ["files.test"]
    (request,) = server.requests
    assert request["headers"]["host"] == f"files.test:{server.port}"
    assert request["headers"]["accept-encoding"] == "identity"
    assert leftovers(tmp_path) == ["in.pdf"]


def test_redirect_chain_of_five_is_followed_and_each_hop_resolved_once(
    server: Server, tmp_path: Path
) -> None:
    resolver = StubResolver({"files.test": [SERVER_IP]})
    result = run(
        fetch_to_file(
            f"http://files.test:{server.port}/hop/5",
            tmp_path / "r",
            ALLOW_SERVER,
            resolver=resolver,
        )
    )
    assert result.redirects == 5
    assert result.final_url.endswith("/hop/0")
    assert resolver.calls == ["files.test"] * 6  # exactly one lookup per hop
    assert [r["path"] for r in server.requests] == [f"/hop/{k}" for k in range(5, -1, -1)]


def test_sixth_redirect_is_refused(server: Server, tmp_path: Path) -> None:
    with pytest.raises(TooManyRedirects) as info:
        run(fetch_to_file(f"http://{SERVER_IP}:{server.port}/hop/6", tmp_path / "r", ALLOW_SERVER))
    assert info.value.status == 302
    assert len(server.requests) == 6
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:{canary}/",
        "http://[::ffff:127.0.0.1]:{canary}/",
        "http://2130706433:{canary}/",
        "http://169.254.169.254/latest/meta-data/",
        "file:///etc/passwd",
        "http://rebind.test:{canary}/",
    ],
)
def test_redirect_to_internal_is_refused_at_the_hop(
    server: Server, canary: Canary, tmp_path: Path, target: str
) -> None:
    resolver = StubResolver({"rebind.test": ["127.0.0.1"]})
    location = target.format(canary=canary.port)
    url = f"http://{SERVER_IP}:{server.port}/redirect?to={location}"
    with pytest.raises(UrlNotAllowed):
        run(fetch_to_file(url, tmp_path / "r", ALLOW_SERVER, resolver=resolver))
    assert canary.connections() == 0
    assert len(server.requests) == 1
    assert leftovers(tmp_path) == []


def test_dns_rebinding_between_hops_is_caught(
    server: Server, canary: Canary, tmp_path: Path
) -> None:
    # First answer is the allow-listed server; the next lookup "rebinds" to loopback.
    resolver = StubResolver({"files.test": [[SERVER_IP], ["127.0.0.1"]]})
    with pytest.raises(UrlNotAllowed):
        run(
            fetch_to_file(
                f"http://files.test:{server.port}/hop/1",
                tmp_path / "r",
                ALLOW_SERVER,
                resolver=resolver,
            )
        )
    assert resolver.calls == ["files.test", "files.test"]
    assert canary.connections() == 0
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ("liar-big", SourceTooLarge),  # declared length over the limit: refused unread
        ("endless", SourceTooLarge),  # no length, never ends
        ("chunked-endless", SourceTooLarge),
        ("gzip-bomb", SourceTooLarge),  # counted after bounded decoding
        ("liar-short", SourceUnreachable),  # truncated body
        ("status/404", SourceHttpError),
        ("status/503", SourceHttpError),
    ],
)
def test_bad_sources_leave_no_file(server: Server, tmp_path: Path, route: str, error: type) -> None:
    dest = tmp_path / "in.pdf"
    with pytest.raises(error) as info:
        run(fetch_to_file(f"http://{SERVER_IP}:{server.port}/{route}", dest, ALLOW_SERVER))
    assert leftovers(tmp_path) == []
    if route.startswith("status/"):
        assert info.value.status == int(route.split("/")[1])
        assert info.value.retryable == (info.value.status == 503)


def test_slow_drip_hits_the_total_deadline(server: Server, tmp_path: Path) -> None:
    policy = UrlPolicy(allow_networks=(f"{SERVER_IP}/32",), read_timeout=5, total_timeout=1)
    started = time.monotonic()
    with pytest.raises(SourceTimeout) as info:
        run(fetch_to_file(f"http://{SERVER_IP}:{server.port}/drip", tmp_path / "d", policy))
    assert time.monotonic() - started < 4  # the deadline (1 s) ended it, not the 100 s body
    assert info.value.code == "source_timeout"
    assert leftovers(tmp_path) == []


def test_gzip_body_is_decoded(server: Server, tmp_path: Path) -> None:
    result = run(
        fetch_to_file(f"http://{SERVER_IP}:{server.port}/gzip", tmp_path / "g", ALLOW_SERVER)
    )
    assert (tmp_path / "g").read_bytes() == _body(5000)
    assert result.size == 5000


def test_content_disposition_hint_is_sanitised(server: Server, tmp_path: Path) -> None:
    result = run(
        fetch_to_file(f"http://{SERVER_IP}:{server.port}/disposition", tmp_path / "c", ALLOW_SERVER)
    )
    assert result.filename_hint == "passwd"
    assert leftovers(tmp_path) == ["c"]


def test_unreachable_port_is_a_named_error(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port that was free a moment ago
        s.bind((SERVER_IP, 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceUnreachable):
        run(fetch_to_file(f"http://{SERVER_IP}:{port}/", tmp_path / "u", ALLOW_SERVER))
    assert leftovers(tmp_path) == []


# ---------------------------------------------------------------------------
# HTTPS: SNI and certificate verification use the name, the socket the pinned IP
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl CLI not available to make a test CA")
    d = tmp_path_factory.mktemp("tls")

    def ossl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True)

    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ossl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
         "-subj", "/CN=Squeezer test CA",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    (d / "leaf.ext").write_text(
        "subjectAltName=DNS:files.test\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n"
    )
    ossl("req", *ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=files.test")
    ossl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "leaf.pem", "-days", "2", "-extfile", "leaf.ext")  # fmt: skip
    return d


def test_https_pins_ip_but_verifies_the_name(
    canary: Canary, tls_files: Path, tmp_path: Path
) -> None:
    seen_sni: list[str | None] = []
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files / "leaf.pem", tls_files / "leaf.key")
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    try:
        tls_server = Server(canary.port, ssl_context=context)
    except OSError as exc:
        pytest.skip(f"cannot bind {SERVER_IP}: {exc}")
    try:
        policy = UrlPolicy(
            allow_networks=(f"{SERVER_IP}/32",),
            ca_bundle=str(tls_files / "ca.pem"),
            total_timeout=5,
        )
        resolver = StubResolver({"files.test": [SERVER_IP], "other.test": [SERVER_IP]})
        url = f"https://files.test:{tls_server.port}/file/1000"
        result = run(fetch_to_file(url, tmp_path / "t", policy, resolver=resolver))
        assert result.size == 1000
        assert seen_sni[-1] == "files.test"
        # same pinned IP, but a name the certificate does not carry: verification fails
        with pytest.raises(SourceUnreachable):
            run(
                fetch_to_file(
                    f"https://other.test:{tls_server.port}/file/1",
                    tmp_path / "o",
                    policy,
                    resolver=resolver,
                )
            )
        with pytest.raises(SourceUnreachable):  # the IP itself is not in the certificate
            run(
                fetch_to_file(
                    f"https://{SERVER_IP}:{tls_server.port}/file/1", tmp_path / "o", policy
                )
            )
        with pytest.raises(SourceUnreachable):  # without the test CA nothing is trusted
            run(fetch_to_file(url, tmp_path / "o", ALLOW_SERVER, resolver=resolver))
        assert leftovers(tmp_path) == ["t"]
    finally:
        tls_server.close()


# ---------------------------------------------------------------------------
# Webhook delivery
# ---------------------------------------------------------------------------


def test_webhook_receiver_gets_exact_body_and_headers(server: Server) -> None:
    body = b'{"id":"job_1","status":"succeeded","note":"\xc3\xa9"}'
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": "1700000000",
        "webhook-signature": "v1,abc=",
    }
    resolver = StubResolver({"hooks.test": [SERVER_IP]})
    result = run(
        post_json(
            f"http://hooks.test:{server.port}/hook", body, headers, ALLOW_SERVER, resolver=resolver
        )
    )
    assert result.ok and result.status == 204 and result.error is None
    (request,) = server.requests
    assert request["method"] == "POST" and request["body"] == body
    for k, v in headers.items():
        assert request["headers"][k] == v
    assert request["headers"]["content-type"] == "application/json"
    assert request["headers"]["host"] == f"hooks.test:{server.port}"
    assert resolver.calls == ["hooks.test"]


def test_webhook_3xx_is_a_failure_and_not_followed(server: Server, canary: Canary) -> None:
    result = run(post_json(f"http://{SERVER_IP}:{server.port}/hook302", b"{}", {}, ALLOW_SERVER))
    assert result.status == 302 and result.error == "redirect_not_followed" and not result.ok
    assert len(server.requests) == 1
    assert canary.connections() == 0


def test_webhook_500_and_429_are_reported(server: Server) -> None:
    failed = run(post_json(f"http://{SERVER_IP}:{server.port}/hook500", b"{}", {}, ALLOW_SERVER))
    assert failed.status == 500 and failed.error == "http_status"
    assert 0 < len(failed.response_excerpt) <= EXCERPT_BYTES
    limited = run(post_json(f"http://{SERVER_IP}:{server.port}/hook429", b"{}", {}, ALLOW_SERVER))
    assert limited.status == 429 and limited.retry_after == 7.0


def test_webhook_timeout_and_unreachable(server: Server) -> None:
    quick = UrlPolicy(allow_networks=(f"{SERVER_IP}/32",), read_timeout=0.5, total_timeout=2)
    slow = run(post_json(f"http://{SERVER_IP}:{server.port}/hook-slow", b"{}", {}, quick))
    assert slow.error == "timeout" and slow.status is None
    nxdomain = run(post_json("http://nowhere.test/", b"{}", {}, quick, resolver=StubResolver({})))
    assert nxdomain.error == "unreachable"


def test_submit_time_check_resolves_without_connecting() -> None:
    resolver = StubResolver({"public.test": [PUBLIC_IP], "mixed.test": [PUBLIC_IP, "10.0.0.1"]})
    target, addresses = run(acheck_url("HTTPS://public.test/a.pdf", UrlPolicy(), resolver=resolver))
    assert target.url == "https://public.test/a.pdf" and addresses == [PUBLIC_IP]
    with pytest.raises(UrlNotAllowed):
        run(acheck_url("https://mixed.test/a.pdf", UrlPolicy(), resolver=resolver))
