"""Fetch a user-given URL into a file, SSRF-safely and within hard limits.

Why a module of its own: "fetch by URL" is the service's largest attack surface
(hostile-inputs.md §1.8, rows 27–31). Each guarantee below is one of the
house rules — bad input gives a named error, never a hang or a partial file:

- the URL and every redirect hop pass :func:`squeezer.net.policy.check_url` and
  are resolved once, all addresses checked, and connected to only through those
  addresses (:mod:`squeezer.net.pinning`); a refused URL raises
  :class:`UrlNotAllowed` before any connection;
- at most ``policy.max_redirects`` redirects;
- at most ``policy.max_bytes`` bytes, counted while streaming, whatever
  ``Content-Length`` says (or does not say); a larger declared length is
  refused before reading the body;
- connect/read timeouts per operation, and one total deadline over DNS,
  connects, redirects and the body, so a slow-drip server cannot hold a worker;
- the body goes to a temporary file beside ``dest`` and is renamed into place
  only when complete; on any failure it is deleted.
"""

from __future__ import annotations

import email.message
import hashlib
import os
import tempfile
import unicodedata
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urljoin, urlsplit

import anyio
import httpcore

from squeezer.net.errors import (
    SourceHttpError,
    SourceTimeout,
    SourceTooLarge,
    TooManyRedirects,
)
from squeezer.net.pinning import header, pinned_request
from squeezer.net.policy import ParsedTarget, Resolver, UrlPolicy, acheck_target, check_url

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SUCCESS_STATUSES = frozenset({200, 203})
_CHUNK = 64 * 1024
_MAX_FILENAME = 200


@dataclass(frozen=True)
class FetchResult:
    size: int
    sha256: str  # hex digest of the stored bytes
    content_type: str | None  # media type, lower case, without parameters
    final_url: str  # canonical URL of the last hop
    filename_hint: str | None  # sanitised display name; never use it as a path
    redirects: int = 0


def sanitize_filename(name: str | None) -> str | None:
    """A display-only file name: no directories, no control characters, no leading dots.

    It is a hint for ``Content-Disposition`` of the result; storage never
    builds a path from it (hostile-inputs.md §1.10).
    """
    if not name:
        return None
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if c in '<>:"|?*' else c
        for c in name
        if unicodedata.category(c)[0] != "C"  # control, format, surrogate, unassigned
    )
    name = name.strip().lstrip(".").strip()
    if not name:
        return None
    if len(name) > _MAX_FILENAME:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            name = stem[: _MAX_FILENAME - len(ext) - 1] + "." + ext
        else:
            name = name[:_MAX_FILENAME]
    return name


def _filename_from_disposition(value: str | None) -> str | None:
    if not value:
        return None
    message = email.message.Message()
    try:
        message["content-disposition"] = value
        return message.get_filename()
    except (ValueError, TypeError, LookupError, UnicodeError):  # malformed: just no hint
        return None


def _filename_hint(disposition: str | None, final_url: str) -> str | None:
    hint = sanitize_filename(_filename_from_disposition(disposition))
    if hint:
        return hint
    path = urlsplit(final_url).path
    return sanitize_filename(unquote(path.rsplit("/", 1)[-1]))


def _media_type(value: str | None) -> str | None:
    if not value:
        return None
    media = value.split(";", 1)[0].strip().lower()
    return media or None


async def _decoded(response: httpcore.Response, encoding: str | None) -> AsyncIterator[bytes]:
    """The body, with gzip/deflate undone in bounded steps (no bomb can expand at once)."""
    encoding = (encoding or "identity").strip().lower()
    if encoding in ("identity", ""):
        async for chunk in response.aiter_stream():
            yield chunk
        return
    if encoding in ("gzip", "x-gzip"):
        decoder = zlib.decompressobj(wbits=31)
    elif encoding == "deflate":
        decoder = zlib.decompressobj(wbits=47)  # zlib or gzip header, auto-detected
    else:
        raise SourceHttpError(
            f"unsupported Content-Encoding {encoding!r} (we ask for identity)", response.status
        )
    try:
        async for chunk in response.aiter_stream():
            data = chunk
            while data:
                out = decoder.decompress(data, _CHUNK)
                if out:
                    yield out
                data = decoder.unconsumed_tail
        tail = decoder.flush()
        if tail:
            yield tail
    except zlib.error as exc:
        raise SourceHttpError(f"corrupt {encoding} body: {exc}", response.status) from None


async def fetch_to_file(
    url: str,
    dest: Path | str,
    policy: UrlPolicy | None = None,
    *,
    resolver: Resolver | None = None,
    headers: Mapping[str, str] | None = None,
) -> FetchResult:
    """Download ``url`` to ``dest`` (atomically), under ``policy``.

    Raises :class:`UrlNotAllowed` (before any connection, also for a refused
    redirect hop), :class:`TooManyRedirects`, :class:`SourceHttpError` (with
    ``.status``), :class:`SourceTooLarge`, :class:`SourceTimeout` or
    :class:`SourceUnreachable`. ``dest`` exists afterwards only on success.
    ``headers`` are extra request headers (e.g. an ``Authorization`` the user
    supplied); they are sent to the first hop only, never across redirects.
    """
    policy = policy or UrlPolicy()
    dest = Path(dest)
    first = check_url(url, policy)  # refused URLs never reach DNS or a socket
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with anyio.fail_after(policy.total_timeout):
                    result = await _fetch(first, out, policy, resolver, dict(headers or {}))
            except TimeoutError:
                raise SourceTimeout(
                    f"fetching {first.url} took longer than {policy.total_timeout:g} s"
                ) from None
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        return result
    finally:
        tmp.unlink(missing_ok=True)


async def _fetch(
    first: ParsedTarget,
    out: BinaryIO,
    policy: UrlPolicy,
    resolver: Resolver | None,
    extra_headers: dict[str, str],
) -> FetchResult:
    current = first
    redirects = 0
    while True:
        addresses = await acheck_target(current, policy, resolver=resolver)
        request_headers = [
            ("User-Agent", policy.user_agent),
            ("Accept", "*/*"),
            ("Accept-Encoding", "identity"),
            ("Connection", "close"),
        ]
        if current is first:
            request_headers += [
                (k, v)
                for k, v in extra_headers.items()
                if k.lower() not in ("host", "content-length", "transfer-encoding", "connection")
            ]
        async with pinned_request(
            "GET",
            current,
            addresses,
            headers=request_headers,
            connect_timeout=policy.connect_timeout,
            read_timeout=policy.read_timeout,
            ca_bundle=policy.ca_bundle,
        ) as response:
            status = response.status
            if status in REDIRECT_STATUSES:
                location = header(response, "location")
                if not location:
                    raise SourceHttpError(
                        f"{current.url} answered {status} without Location", status
                    )
                if redirects >= policy.max_redirects:
                    raise TooManyRedirects(
                        f"more than {policy.max_redirects} redirects (last from {current.url})",
                        status,
                    )
                redirects += 1
                # Re-validated like a new URL: scheme, userinfo, literal addresses…
                current = check_url(urljoin(current.url, location.strip()), policy)
                continue
            if status not in SUCCESS_STATUSES:
                raise SourceHttpError(f"{current.url} answered HTTP {status}", status)

            declared = header(response, "content-length")
            if declared and declared.strip().isdigit() and int(declared) > policy.max_bytes:
                raise SourceTooLarge(
                    f"{current.url} declares {int(declared)} bytes, "
                    f"more than the limit of {policy.max_bytes}"
                )
            digest = hashlib.sha256()
            size = 0
            async for chunk in _decoded(response, header(response, "content-encoding")):
                size += len(chunk)
                if size > policy.max_bytes:
                    raise SourceTooLarge(
                        f"{current.url} sent more than the limit of {policy.max_bytes} bytes"
                    )
                digest.update(chunk)
                out.write(chunk)
            return FetchResult(
                size=size,
                sha256=digest.hexdigest(),
                content_type=_media_type(header(response, "content-type")),
                final_url=current.url,
                filename_hint=_filename_hint(header(response, "content-disposition"), current.url),
                redirects=redirects,
            )
