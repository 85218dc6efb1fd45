"""Named errors of outbound HTTP (fetch-by-URL and webhooks).

Same style as :mod:`squeezer.engines.errors`: one class per way a fetch can
fail, each with a stable machine-readable ``code`` so that the API can map it
to an HTTP status / job error without parsing messages. ``retryable`` tells the
job layer whether trying again later can help (a refused URL never will; a
timeout or a 503 may).
"""

from __future__ import annotations

from squeezer.errors import SqueezerError


class NetError(SqueezerError):
    """Base class of every error the outbound HTTP layer raises on purpose: the URL a client
    gave could not be used (400), whatever the remote's own status was."""

    code = "net_error"
    http_status = 400


class UrlNotAllowed(NetError):
    """The URL is refused by the SSRF policy; raised before any connection is made.

    The API answers 400 with this message at submit time, and a job (or a
    redirect hop) fails with the same code.
    """

    code = "url_not_allowed"


class SourceTooLarge(NetError):
    """The remote body is larger than the configured maximum (declared or streamed)."""

    code = "source_too_large"
    http_status = 413


class SourceTimeout(NetError):
    """Connecting, reading or the whole download took longer than allowed."""

    code = "source_timeout"
    retryable = True


class SourceUnreachable(NetError):
    """DNS failed, the connection was refused/reset, TLS failed, or the body was truncated."""

    code = "source_unreachable"
    retryable = True


class SourceHttpError(NetError):
    """The server answered with a status that is not a usable success."""

    code = "source_http_error"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status
        # 408/429/5xx are the remote's temporary trouble; other 4xx are final.
        self.retryable = status in (408, 425, 429) or 500 <= status <= 599


class TooManyRedirects(SourceHttpError):
    """More redirects than ``UrlPolicy.max_redirects`` (each hop was also re-checked)."""

    code = "source_too_many_redirects"

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, status)
        self.retryable = False
