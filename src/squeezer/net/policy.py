"""The SSRF policy: which URLs the service may connect to, and which addresses.

Why this module exists: the service fetches user-given URLs and posts webhooks
to user-given URLs, from inside the operator's network. Every known bypass of
such guards (imgproxy's ``0.0.0.0``, Gotenberg's ``HTTP://`` and 6to4/NAT64
embeddings, imagor's unchecked redirects, DNS rebinding; see
``shared/research/hostile-inputs.md`` §1.8) falls into one of four holes, and
each has its answer here or in :mod:`squeezer.net.pinning`:

1. the URL is parsed once, strictly, and re-built canonically by us, so no
   other parser's reading of it is ever used (scheme case, userinfo,
   backslashes, numeric-host spellings, IDNA look-alikes);
2. the host is resolved *once* and **every** address in the answer must be
   acceptable (a mixed public/internal answer is refused);
3. the connection goes to one of those validated addresses, never to a second
   lookup's answer (no DNS rebinding);
4. each redirect hop goes through 1–3 again.

Address classes are our own explicit table, not only ``ipaddress.is_global``:
Python before 3.12.4 / 3.11.10 mis-classifies several ranges (CVE-2024-4032),
treats multicast as global, and never looks inside IPv6 addresses that embed an
IPv4 one.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote, urlsplit

import anyio.to_thread
import idna

from squeezer.net.errors import SourceUnreachable, UrlNotAllowed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: A resolver maps (ASCII host, port) to the IP address strings of its answer.
#: The default calls ``getaddrinfo``; tests inject a stub.
Resolver = Callable[[str, int], Iterable[str]]

DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_LENGTH = 4096

# ---------------------------------------------------------------------------
# Address classification
# ---------------------------------------------------------------------------

#: How an address class may be let through:
#:   "never"    – not even ``allow_networks`` (nothing sane listens there for us);
#:   "private"  – ``allow_private``, an allow-listed host name, or ``allow_networks``;
#:   "network"  – only an explicit ``allow_networks`` CIDR containing it;
#:   "nat64"    – like "network", or ``allow_nat64`` when the embedded IPv4 is public.
Lift = Literal["never", "private", "network", "nat64"]


@dataclass(frozen=True)
class _Range:
    network: IPNetwork
    what: str
    lift: Lift


def _ranges(rows: list[tuple[str, str, Lift]]) -> tuple[_Range, ...]:
    return tuple(_Range(ipaddress.ip_network(cidr), what, lift) for cidr, what, lift in rows)


# Order matters: the first matching row names the address in the error message.
_V4_RANGES = _ranges(
    [
        ("0.0.0.0/8", "an unspecified / 'this network' address (0.0.0.0/8)", "never"),
        ("127.0.0.0/8", "a loopback address (127.0.0.0/8)", "network"),
        ("10.0.0.0/8", "a private address (10.0.0.0/8)", "private"),
        ("172.16.0.0/12", "a private address (172.16.0.0/12)", "private"),
        ("192.168.0.0/16", "a private address (192.168.0.0/16)", "private"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)", "private"),
        ("169.254.0.0/16", "a link-local address (169.254.0.0/16, cloud metadata)", "network"),
        ("168.63.129.16/32", "the Azure platform (WireServer) address", "network"),
        ("192.0.0.0/24", "an IETF protocol-assignment address (192.0.0.0/24)", "network"),
        ("192.0.2.0/24", "a documentation address (192.0.2.0/24)", "network"),
        ("198.51.100.0/24", "a documentation address (198.51.100.0/24)", "network"),
        ("203.0.113.0/24", "a documentation address (203.0.113.0/24)", "network"),
        ("192.88.99.0/24", "a 6to4 relay anycast address (192.88.99.0/24)", "network"),
        ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)", "network"),
        ("224.0.0.0/4", "a multicast address (224.0.0.0/4)", "never"),
        ("255.255.255.255/32", "the broadcast address", "never"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4)", "network"),
    ]
)

_V6_RANGES = _ranges(
    [
        ("::/128", "the unspecified IPv6 address (::)", "never"),
        ("::1/128", "the IPv6 loopback address (::1)", "network"),
        ("::ffff:0:0/96", "an IPv4-mapped IPv6 address", "network"),
        ("::/96", "an IPv4-compatible IPv6 address (::/96, deprecated)", "network"),
        ("64:ff9b::/96", "a NAT64 address (64:ff9b::/96)", "nat64"),
        ("64:ff9b:1::/48", "a local-use NAT64 address (64:ff9b:1::/48)", "network"),
        ("100::/64", "a discard-only address (100::/64)", "network"),
        ("2001::/32", "a Teredo address (2001::/32)", "network"),
        ("2001:db8::/32", "a documentation address (2001:db8::/32)", "network"),
        ("2001::/23", "an IETF protocol-assignment address (2001::/23)", "network"),
        ("2002::/16", "a 6to4 address (2002::/16)", "network"),
        ("3fff::/20", "a documentation address (3fff::/20)", "network"),
        ("5f00::/16", "an SRv6 SID address (5f00::/16)", "network"),
        ("fc00::/7", "a unique-local (private) IPv6 address (fc00::/7)", "private"),
        ("fec0::/10", "a site-local IPv6 address (fec0::/10)", "private"),
        ("fe80::/10", "a link-local IPv6 address (fe80::/10)", "network"),
        ("ff00::/8", "a multicast IPv6 address (ff00::/8)", "never"),
    ]
)
_V6_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_V6_LOOPBACK = ipaddress.ip_network("::1/128")


def embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64, Teredo)."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]  # the client address
    packed = ip.packed
    if ip in ipaddress.ip_network("64:ff9b::/96") or ip in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(packed[12:])
    return None


def classify(ip: IPAddress) -> tuple[str, Lift] | None:
    """Describe why ``ip`` is not a plain public address, or ``None`` if it is one.

    Returns ``(description, lift)``; see :data:`Lift` for what can allow it.
    """
    if isinstance(ip, ipaddress.IPv4Address):
        for row in _V4_RANGES:
            if ip in row.network:
                return row.what, row.lift
        if not ip.is_global:  # pragma: no cover - the table above is a superset today
            return "a non-global address", "network"
        return None
    if ip.scope_id:
        return "an IPv6 address with a zone id", "never"
    for row in _V6_RANGES:
        if ip in row.network:
            what = row.what
            inner = (
                embedded_ipv4(ip) if row.network.prefixlen <= 96 and ip != row.network[0] else None
            )
            if inner is not None and row.lift != "never" and ip not in _V6_LOOPBACK:
                what = f"{what} embedding {inner}"
            return what, row.lift
    if ip not in _V6_GLOBAL_UNICAST:
        return "an address outside IPv6 global unicast (2000::/3)", "network"
    if not ip.is_global:  # pragma: no cover - the table above is a superset today
        return "a non-global address", "network"
    return None


# ---------------------------------------------------------------------------
# The policy
# ---------------------------------------------------------------------------


def _normalise_host_pattern(pattern: str) -> str:
    pattern = pattern.strip().lower().rstrip(".")
    wildcard = pattern.startswith("*.")
    bare = pattern[2:] if wildcard else pattern
    if not bare.isascii():
        bare = idna.encode(bare, uts46=True).decode("ascii")
    return ("*." + bare) if wildcard else bare


@dataclass(frozen=True)
class UrlPolicy:
    """Where outbound requests may go, and how much they may cost.

    Deny by default: public addresses only, http/https only. The allow-lists
    are for on-prem installs that must reach an internal file server, e.g.
    ``allow_networks=("10.0.0.0/8",)`` or ``allow_hosts=("files.intranet",)``.

    - ``allow_hosts``: host names (exact, or ``*.suffix`` for sub-domains) whose
      *private-class* addresses (RFC 1918, CGNAT, IPv6 ULA) are accepted.
      Loopback, link-local and reserved addresses still need ``allow_networks``.
      An entry that is an IP or CIDR is treated as an ``allow_networks`` entry.
    - ``allow_networks``: CIDRs whose addresses are accepted whatever their
      class, except unspecified (0.0.0.0/8, ::), multicast and broadcast.
    - ``allow_private``: accept private-class addresses for every host.
    - ``allowlist_only``: refuse everything not matched by the two allow-lists,
      public addresses included.
    - ``allow_nat64``: on IPv6-only networks with DNS64, accept 64:ff9b::/96
      addresses whose embedded IPv4 address is public.
    """

    schemes: frozenset[str] = frozenset({"http", "https"})
    allow_hosts: tuple[str, ...] = ()
    allow_networks: tuple[str, ...] = ()
    allow_private: bool = False
    allowlist_only: bool = False
    allow_nat64: bool = False
    allowed_ports: frozenset[int] | None = None  # None: any port 1..65535
    max_redirects: int = 5
    max_bytes: int = 1 << 30
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    total_timeout: float = 300.0
    ca_bundle: str | None = None  # PEM file of trusted CAs; None: certifi's bundle
    user_agent: str = "Squeezer/0.1 (+fetch)"

    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hosts: frozenset[str] = field(init=False, repr=False, compare=False)
    _suffixes: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        networks: list[IPNetwork] = []
        hosts: set[str] = set()
        suffixes: list[str] = []
        for entry in self.allow_networks:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        for entry in self.allow_hosts:
            try:
                networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            pattern = _normalise_host_pattern(entry)
            if pattern.startswith("*."):
                suffixes.append(pattern[1:])  # ".intranet"
            elif pattern:
                hosts.add(pattern)
        object.__setattr__(self, "schemes", frozenset(s.lower() for s in self.schemes))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hosts", frozenset(hosts))
        object.__setattr__(self, "_suffixes", tuple(suffixes))
        if self.max_redirects < 0 or self.max_bytes < 0:
            raise ValueError("max_redirects and max_bytes must be >= 0")

    def host_is_allowlisted(self, host: str) -> bool:
        """Whether an already-normalised host name matches ``allow_hosts``."""
        host = host.lower().rstrip(".")
        return host in self._hosts or any(host.endswith(s) for s in self._suffixes)

    def address_refusal(self, ip: IPAddress, *, host_allowlisted: bool = False) -> str | None:
        """Why ``ip`` may not be connected to under this policy, or ``None`` if it may."""
        verdict = classify(ip)
        in_networks = any(ip in net for net in self._networks)
        if verdict is None:
            if self.allowlist_only and not (host_allowlisted or in_networks):
                return f"{ip} is not in the configured allow-list"
            return None
        what, lift = verdict
        if lift == "never":
            return f"{ip} is {what}"
        if in_networks:
            return None
        if lift == "private" and (self.allow_private or host_allowlisted):
            return None
        if lift == "nat64" and self.allow_nat64 and isinstance(ip, ipaddress.IPv6Address):
            inner = embedded_ipv4(ip)
            if inner is not None and self.address_refusal(inner) is None:
                return None
        return f"{ip} is {what}"


# ---------------------------------------------------------------------------
# URL parsing
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ParsedTarget:
    """A validated URL, re-built canonically; only ``url`` is ever handed to HTTP code."""

    scheme: str  # "http" or "https", lower case
    host: str  # ASCII (IDNA) host, lower case, no brackets, no trailing dot
    port: int  # effective port
    target: str  # path + "?query", percent-encoded ASCII, never empty
    ip: str | None  # set when the host is an IP literal (normalised)
    host_allowlisted: bool

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme)
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.target}"


_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*):")
_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?$")
_HEX_RE = re.compile(r"^0[xX][0-9a-fA-F]*$")
# Characters left as-is when percent-encoding a path/query (RFC 3986 pchar + "/?%").
_SAFE = "/?%:@!$&'()*+,;=-._~[]"


def _refuse(url: str, why: str) -> UrlNotAllowed:
    shown = url if len(url) <= 200 else url[:200] + "…"
    return UrlNotAllowed(f"URL not allowed: {shown!r}: {why}")


def _parse_ipv4_number(part: str) -> int | None:
    """One dotted part as libc/WHATWG read it: decimal, 0x-hex or 0-octal."""
    if part == "":
        return None
    if part[:2].lower() == "0x":
        digits, base, alphabet = part[2:], 16, "0123456789abcdefABCDEF"
    elif len(part) > 1 and part[0] == "0":
        digits, base, alphabet = part[1:], 8, "01234567"
    else:
        digits, base, alphabet = part, 10, "0123456789"
    if digits == "":
        return 0
    if any(c not in alphabet for c in digits):
        return None
    return int(digits, base)


def parse_legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Read ``2130706433``, ``0x7f.1``, ``017700000001``, ``127.1`` the way libc would.

    Returns ``None`` when the host does not end in a number (so it is a domain
    name); raises ``ValueError`` when it ends in a number but is no valid IPv4.
    Doing this ourselves means such spellings are checked as the address they
    really are, and never reach a resolver as a "name".
    """
    parts = host.split(".")
    last = parts[-1]
    if not (last.isascii() and (last.isdigit() or _HEX_RE.match(last))):
        return None
    if len(parts) > 4:
        raise ValueError("too many parts")
    numbers = [_parse_ipv4_number(p) for p in parts]
    if any(n is None for n in numbers):
        raise ValueError("not a number")
    nums = [n for n in numbers if n is not None]
    if any(n > 255 for n in nums[:-1]) or nums[-1] >= 256 ** (5 - len(nums)):
        raise ValueError("part out of range")
    value = nums[-1]
    for i, n in enumerate(nums[:-1]):
        value += n * 256 ** (3 - i)
    return ipaddress.IPv4Address(value)


def _normalise_host(url: str, raw: str) -> tuple[str, IPAddress | None]:
    """Return the canonical ASCII host and, for IP literals, the address."""
    if raw.startswith("["):
        inner = raw[1:-1]
        if "%" in inner:
            raise _refuse(url, "IPv6 zone ids are not allowed")
        try:
            ip6 = ipaddress.IPv6Address(inner)
        except ValueError:
            raise _refuse(url, "malformed IPv6 literal") from None
        return str(ip6), ip6
    if "%" in raw:
        raise _refuse(url, "percent-encoded host names are not allowed")
    host = raw
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise _refuse(url, f"invalid international host name ({exc})") from None
    host = host.lower()
    host = host.removesuffix(".")
    if not host:
        raise _refuse(url, "empty host")
    try:
        ip4 = parse_legacy_ipv4(host)
    except ValueError:
        raise _refuse(url, f"malformed numeric host {host!r}") from None
    if ip4 is not None:
        return str(ip4), ip4
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL_RE.match(label) for label in labels):
        raise _refuse(url, f"invalid host name {host!r}")
    return host, None


def check_url(url: str, policy: UrlPolicy) -> ParsedTarget:
    """Validate ``url`` against ``policy`` without any network access.

    Checks the scheme (case-insensitively), refuses userinfo, empty hosts,
    malformed or disallowed ports, backslashes, whitespace and control
    characters, and IP-literal hosts that the policy refuses (whatever their
    spelling). Host *names* are checked after resolution, by
    :func:`resolve_and_check`. Raises :class:`UrlNotAllowed`.
    """
    if not isinstance(url, str) or not url:
        raise UrlNotAllowed("URL not allowed: empty URL")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(url, f"longer than {MAX_URL_LENGTH} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url) or "\\" in url:
        raise _refuse(url, "whitespace, control characters and backslashes are not allowed")
    match = _SCHEME_RE.match(url)
    scheme = match.group(1).lower() if match else ""
    if scheme not in policy.schemes:
        allowed = ", ".join(sorted(policy.schemes))
        raise _refuse(url, f"scheme {scheme or '(none)'!r} is not allowed (only {allowed})")
    rest = url[match.end() :] if match else url
    if not rest.startswith("//"):
        raise _refuse(url, "expected '//' after the scheme")
    try:
        parts = urlsplit("x:" + rest)  # the scheme is checked; keep urlsplit's own out of it
    except ValueError as exc:
        raise _refuse(url, f"malformed URL ({exc})") from None
    netloc = parts.netloc
    if "@" in netloc:
        raise _refuse(url, "credentials (user@host) in URLs are not allowed")
    if not netloc:
        raise _refuse(url, "empty host")

    # host[:port] or [v6][:port]
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _refuse(url, "unterminated IPv6 literal")
        raw_host, after = netloc[: end + 1], netloc[end + 1 :]
        if after and not after.startswith(":"):
            raise _refuse(url, "garbage after IPv6 literal")
        raw_port = after[1:] if after else ""
    else:
        raw_host, _, raw_port = netloc.partition(":")
        if ":" in raw_port:
            raise _refuse(url, "more than one ':' in the host")
    if raw_port == "":
        port = DEFAULT_PORTS.get(scheme, 0)
    elif raw_port.isascii() and raw_port.isdigit() and len(raw_port) <= 5:
        port = int(raw_port)
    else:
        raise _refuse(url, f"invalid port {raw_port!r}")
    if not 1 <= port <= 65535:
        raise _refuse(url, f"invalid port {port}")
    if policy.allowed_ports is not None and port not in policy.allowed_ports:
        raise _refuse(url, f"port {port} is not allowed")

    host, ip = _normalise_host(url, raw_host)
    allowlisted = ip is None and policy.host_is_allowlisted(host)
    if ip is not None:
        why = policy.address_refusal(ip)
        if why:
            raise _refuse(url, why)
    elif policy.allowlist_only and not allowlisted and not policy._networks:
        raise _refuse(url, f"host {host!r} is not in the configured allow-list")

    path = quote(parts.path or "/", safe=_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    target = path + ("?" + quote(parts.query, safe=_SAFE) if parts.query else "")
    return ParsedTarget(scheme, host, port, target, str(ip) if ip else None, allowlisted)


# ---------------------------------------------------------------------------
# Resolution
# ---------------------------------------------------------------------------


def system_resolver(host: str, port: int) -> list[str]:
    """``getaddrinfo`` for TCP, both families; the addresses in the OS's preference order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def resolve_and_check(
    host: str, port: int, policy: UrlPolicy, *, resolver: Resolver | None = None
) -> list[str]:
    """Resolve ``host`` once and return its addresses if **all** of them are acceptable.

    A single refused address in the answer refuses the whole host: an attacker
    who controls DNS could otherwise mix a public address (to pass the check)
    with an internal one (to be connected to). DNS failure fails closed with
    :class:`SourceUnreachable`; a refused address raises :class:`UrlNotAllowed`.
    The caller must connect only to the returned addresses (see
    :mod:`squeezer.net.pinning`).
    """
    literal: IPAddress | None
    try:
        literal = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        try:  # "127.1", "0x7f.1"…: checked as the address libc would make of them
            literal = parse_legacy_ipv4(host.lower().rstrip("."))
        except ValueError:
            raise UrlNotAllowed(f"URL not allowed: malformed numeric host {host!r}") from None
    if literal is not None:
        why = policy.address_refusal(literal)
        if why:
            raise UrlNotAllowed(f"URL not allowed: host {host}: {why}")
        return [str(literal)]

    allowlisted = policy.host_is_allowlisted(host)
    try:
        answer = list((resolver or system_resolver)(host, port))
    except (OSError, UnicodeError, ValueError) as exc:
        raise SourceUnreachable(f"could not resolve host {host!r}: {exc}") from None
    if not answer:
        raise SourceUnreachable(f"could not resolve host {host!r}: empty answer")
    addresses: list[str] = []
    for raw in answer:
        text = str(raw)
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            raise UrlNotAllowed(
                f"URL not allowed: host {host!r} resolved to a non-address {text!r}"
            ) from None
        if "%" in text:
            raise UrlNotAllowed(f"URL not allowed: host {host!r} resolved to a scoped {text}")
        why = policy.address_refusal(ip, host_allowlisted=allowlisted)
        if why:
            raise UrlNotAllowed(
                f"URL not allowed: host {host!r} resolves to a refused address: {why}"
            )
        if str(ip) not in addresses:
            addresses.append(str(ip))
    return addresses


async def aresolve_and_check(
    host: str, port: int, policy: UrlPolicy, *, resolver: Resolver | None = None
) -> list[str]:
    """:func:`resolve_and_check` in a worker thread, so a slow DNS never blocks the loop.

    The thread is abandoned if the caller's deadline cancels us (``getaddrinfo``
    cannot be interrupted); its late answer is simply dropped.
    """
    return await anyio.to_thread.run_sync(
        lambda: resolve_and_check(host, port, policy, resolver=resolver),
        abandon_on_cancel=True,
    )


def check_target(
    target: ParsedTarget, policy: UrlPolicy, *, resolver: Resolver | None = None
) -> list[str]:
    """Resolve and check an already-parsed target (sync)."""
    if target.ip is not None:
        return [target.ip]
    return resolve_and_check(target.host, target.port, policy, resolver=resolver)


async def acheck_target(
    target: ParsedTarget, policy: UrlPolicy, *, resolver: Resolver | None = None
) -> list[str]:
    """Resolve and check an already-parsed target (async, DNS in a thread)."""
    if target.ip is not None:
        return [target.ip]
    return await aresolve_and_check(target.host, target.port, policy, resolver=resolver)


async def acheck_url(
    url: str, policy: UrlPolicy, *, resolver: Resolver | None = None
) -> tuple[ParsedTarget, list[str]]:
    """Submit-time check: parse, then resolve and check every address (no connection).

    The API calls this when a job or webhook URL is submitted, so that a refused
    URL is a 400 ``url_not_allowed`` at once; fetch and delivery check again at
    use time (DNS may have changed since).
    """
    target = check_url(url, policy)
    return target, await acheck_target(target, policy, resolver=resolver)
