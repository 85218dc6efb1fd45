"""Vendor formats of a job's webhook body (``jobs.webhook_format``, migration 0006).

A job created through a vendor protocol is announced in that vendor's shape,
so its clients' webhook receivers work unchanged.  Each module here makes,
from database rows, exactly the body the protocol's API answers for the job
(the compat route calls the same function), so the two never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ProtocolHooks:
    """What the worker does for a protocol while it has a job's files at hand."""

    #: the protocol shows SHA-1 hashes of the input and the result (Compressor.app's
    #: ``sha1``): compute them once, beside the upload, instead of re-reading the blobs later
    sha1: bool = False


#: hooks by ``jobs.webhook_format``; a protocol not named here needs none
HOOKS: dict[str, ProtocolHooks] = {"compressor": ProtocolHooks(sha1=True)}


def hooks_for(webhook_format: str | None) -> ProtocolHooks:
    return HOOKS.get(webhook_format or "native", ProtocolHooks())
