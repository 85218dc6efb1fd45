"""Outbound HTTP for fetch-by-URL and webhooks, SSRF-safe.

Nothing in the service may open an outbound connection to a user-given URL
except through this package; see ``docs/security.md``.
"""

from squeezer.net.deliver import WEBHOOK_POLICY, DeliveryResult, post_json
from squeezer.net.errors import (
    NetError,
    SourceHttpError,
    SourceTimeout,
    SourceTooLarge,
    SourceUnreachable,
    TooManyRedirects,
    UrlNotAllowed,
)
from squeezer.net.fetch import FetchResult, fetch_to_file, sanitize_filename
from squeezer.net.policy import (
    ParsedTarget,
    UrlPolicy,
    acheck_url,
    aresolve_and_check,
    check_url,
    resolve_and_check,
)

__all__ = [
    "WEBHOOK_POLICY",
    "DeliveryResult",
    "FetchResult",
    "NetError",
    "ParsedTarget",
    "SourceHttpError",
    "SourceTimeout",
    "SourceTooLarge",
    "SourceUnreachable",
    "TooManyRedirects",
    "UrlNotAllowed",
    "UrlPolicy",
    "acheck_url",
    "aresolve_and_check",
    "check_url",
    "fetch_to_file",
    "post_json",
    "resolve_and_check",
    "sanitize_filename",
]
