"""Deadlines for receiving a request: the defence against Slowloris and slow uploads.

uvicorn has no deadline for receiving a request: its keep-alive timeout is
armed only between requests, and a connection that sends one header byte
every few seconds (Slowloris), or a body at one byte a second, holds a socket
and a task for as long as it likes (uvicorn #157; 100 such connections were
all still open after 90 s).  ASGI middleware cannot help, since it runs only
once the headers are in.  So the HTTP protocol itself is extended
(:func:`guarded_protocol`), with three settings (``SQUEEZER_HEADER_TIMEOUT_SECONDS``,
``SQUEEZER_BODY_TIMEOUT_SECONDS``, ``SQUEEZER_MIN_UPLOAD_BYTES_PER_SECOND``):

* the request line and headers must be complete within the header timeout of
  the connection's first byte being awaited (a new connection, or the first
  byte of the next request on a kept-alive one);
* while a body is being received, every window of the body timeout must bring
  at least ``min rate x window`` bytes (and at least one): a stalled body and
  a trickling one are both cut;
* time does not count against the client while the server has paused
  reading (the route is busy storing what it already has) or while the client
  waits, as it should, for ``100 Continue``.

A connection that misses a deadline gets ``408 Request Timeout`` (the
standard error body, when no answer has started) and is closed; the route, if
one is running, sees the client disconnect and cleans up (an upload in
progress is aborted and nothing of it is kept).  A reverse proxy in front
should have its own such limits too (docs/deploy.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("squeezer.api.deadlines")

#: How often each connection's deadlines are checked, in seconds.
TICK = 1.0


def _timeout_response() -> bytes:
    body = json.dumps({"success": False, "status": 408, "id": uuid.uuid4().hex,
                       "code": "request_timeout",
                       "message": "the request was not received in time"}).encode()
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n"
            + body)


class DeadlineProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with header and body deadlines (set by the subclass
    :func:`guarded_protocol` makes)."""

    header_timeout: float = 10.0
    body_window: float = 30.0
    min_rate: float = 1024.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._phase = "head"  # "head", "body" or "app" (the request is in; the route works)
        self._phase_started = time.monotonic()
        self._window_started = self._phase_started
        self._window_bytes = 0
        self._ticker: asyncio.TimerHandle | None = None

    # -- the protocol's own events -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._enter("head")
        self._ticker = self.loop.call_later(TICK, self._tick)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._enter("head")

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._enter("body")

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self._window_bytes += len(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._enter("app")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the keep-alive timeout now guards the wait for the next request's first byte
        self._enter("idle")

    # -- deadlines -------------------------------------------------------------------------

    def _enter(self, phase: str) -> None:
        self._phase = phase
        self._phase_started = self._window_started = time.monotonic()
        self._window_bytes = 0

    def _tick(self) -> None:
        self._ticker = None
        if self.transport.is_closing():
            return
        why = self._missed(time.monotonic())
        if why:
            self._expire(why)
            return
        self._ticker = self.loop.call_later(TICK, self._tick)

    def _missed(self, now: float) -> str:
        """Why the client missed a deadline ("" when it has not)."""
        if self._phase == "head":
            if now - self._phase_started > self.header_timeout:
                return f"headers not complete within {self.header_timeout:g} s"
            return ""
        if self._phase != "body":
            return ""
        cycle = self.cycle
        if (self.flow.read_paused or cycle is None or cycle.waiting_for_100_continue
                or cycle.response_complete or not cycle.more_body):
            # the server is not reading, or the client waits for 100 Continue: not its fault
            self._window_started, self._window_bytes = now, 0
            return ""
        elapsed = now - self._window_started
        if elapsed < self.body_window:
            return ""
        wanted = max(1.0, self.min_rate * elapsed)
        if self._window_bytes < wanted:
            return (f"{self._window_bytes} body bytes in {elapsed:.0f} s, under the minimum of "
                    f"{self.min_rate:g} bytes/s")
        self._window_started, self._window_bytes = now, 0
        return ""

    def _expire(self, why: str) -> None:
        client = "%s:%d" % self.client if self.client else "a client"  # noqa: UP031
        log.info("closing the connection of %s: %s", client, why)
        cycle = self.cycle
        if cycle is None or not cycle.response_started:
            self.transport.write(_timeout_response())
        if cycle is not None and not cycle.response_complete:
            # the route reads a disconnect and writes nothing more (an upload is aborted)
            cycle.disconnected = True
            cycle.message_event.set()
        self.transport.close()


def guarded_protocol(header_timeout: float, body_window: float,
                     min_rate: float) -> type[DeadlineProtocol]:
    """A protocol class for ``uvicorn.Config(http=...)`` with these deadlines."""
    return type("SqueezerHttpProtocol", (DeadlineProtocol,), {
        "header_timeout": float(header_timeout), "body_window": float(body_window),
        "min_rate": float(min_rate)})
