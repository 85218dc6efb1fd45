"""POST a webhook body to a user-given URL under the same SSRF rules as fetching.

Why separate from :mod:`squeezer.net.fetch`: a webhook is the same SSRF surface
(Standard Webhooks spec; hostile-inputs.md §1.9, rows 32–33) but with different
rules — a 3xx is a *failure* and is never followed (following would let any
receiver bounce us to an internal address), timeouts are short, and the
receiver's answer is not ours to keep: at most :data:`EXCERPT_BYTES` of it are
read, for the operator's delivery log, and must not be echoed to API users.

:func:`post_json` never raises for network or policy reasons; it returns a
:class:`DeliveryResult` whose ``error`` the retry logic (jobs layer) reads.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from squeezer.net.errors import NetError, SourceTimeout, UrlNotAllowed
from squeezer.net.pinning import header, pinned_request
from squeezer.net.policy import Resolver, UrlPolicy, acheck_target, check_url

EXCERPT_BYTES = 256

#: Short limits for webhooks; the allow-lists are filled from settings by the caller.
WEBHOOK_POLICY = UrlPolicy(
    max_redirects=0,
    max_bytes=EXCERPT_BYTES,
    connect_timeout=5.0,
    read_timeout=10.0,
    total_timeout=15.0,
    user_agent="Squeezer-Webhooks/0.1",
)

_DROPPED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})


@dataclass(frozen=True)
class DeliveryResult:
    """What happened to one delivery attempt.

    ``error`` is ``None`` on a 2xx, else one of ``url_not_allowed`` (refused by
    policy, no connection made), ``redirect_not_followed`` (3xx), ``http_status``
    (4xx/5xx: see ``status``), ``timeout`` or ``unreachable``.
    """

    status: int | None
    elapsed: float
    error: str | None
    message: str | None = None
    retry_after: float | None = None  # seconds, from Retry-After on 429/503
    response_excerpt: bytes = b""  # at most EXCERPT_BYTES; for operator logs only

    @property
    def ok(self) -> bool:
        return self.error is None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else datetime.now(UTC).timestamp()
    return max(0.0, when.timestamp() - current)


async def post_json(
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    policy: UrlPolicy | None = None,
    *,
    resolver: Resolver | None = None,
) -> DeliveryResult:
    """POST ``body`` (JSON bytes) to ``url``; never follows redirects; never raises for I/O."""
    policy = policy or WEBHOOK_POLICY
    started = time.monotonic()

    def done(
        error: str | None,
        message: str | None,
        status: int | None,
        retry_after: float | None = None,
        response_excerpt: bytes = b"",
    ) -> DeliveryResult:
        return DeliveryResult(
            status=status,
            elapsed=time.monotonic() - started,
            error=error,
            message=message,
            retry_after=retry_after,
            response_excerpt=response_excerpt,
        )

    try:
        target = check_url(url, policy)
    except UrlNotAllowed as exc:
        return done("url_not_allowed", exc.message, status=None)

    request_headers = [("User-Agent", policy.user_agent)]
    supplied = {k.lower() for k in (headers or {})}
    if "content-type" not in supplied:
        request_headers.append(("Content-Type", "application/json"))
    request_headers += [
        (k, v) for k, v in (headers or {}).items() if k.lower() not in _DROPPED_HEADERS
    ]
    request_headers.append(("Connection", "close"))

    try:
        with anyio.fail_after(policy.total_timeout):
            addresses = await acheck_target(target, policy, resolver=resolver)
            async with pinned_request(
                "POST",
                target,
                addresses,
                headers=request_headers,
                body=body,
                connect_timeout=policy.connect_timeout,
                read_timeout=policy.read_timeout,
                ca_bundle=policy.ca_bundle,
            ) as response:
                status = response.status
                excerpt = b""
                async for chunk in response.aiter_stream():
                    excerpt += chunk[: EXCERPT_BYTES - len(excerpt)]
                    if len(excerpt) >= EXCERPT_BYTES:
                        break
                retry_after = parse_retry_after(header(response, "retry-after"))
    except UrlNotAllowed as exc:
        return done("url_not_allowed", exc.message, status=None)
    except (TimeoutError, SourceTimeout):
        return done("timeout", f"no answer from {target.url} in time", status=None)
    except NetError as exc:
        return done("unreachable", exc.message, status=None)

    if 200 <= status <= 299:
        return done(None, None, status=status, response_excerpt=excerpt)
    if 300 <= status <= 399:
        return done(
            "redirect_not_followed",
            f"{target.url} answered {status}; webhook redirects are never followed",
            status=status,
            response_excerpt=excerpt,
        )
    return done(
        "http_status",
        f"{target.url} answered HTTP {status}",
        status=status,
        retry_after=retry_after,
        response_excerpt=excerpt,
    )
