"""Map obstore's (and the OS's) exceptions to :mod:`squeezer.storage.errors`.

obstore raises a few typed exceptions (``FileNotFoundError`` for a missing
object, ``PermissionDeniedError``, ``UnauthenticatedError``…) and, for
everything else — connection refused, timeouts, HTTP 5xx, 416, ENOSPC on a
local disk — one ``GenericError`` whose message carries the cause. This module
is the only place that looks at those messages, so that a change in obstore's
wording breaks one function (and its tests), not the callers.
"""

from __future__ import annotations

import errno

from obstore import exceptions as oe

from squeezer.storage.errors import (
    BlobNotFound,
    InvalidRange,
    StorageError,
    StorageFull,
    StorageUnavailable,
)

# Operations that create objects: a "not found" there means the bucket or
# container is missing, which is a configuration/outage problem, not a 404.
WRITE_OPS = frozenset({"put", "put_file", "put_stream"})

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT})
_UNAVAILABLE_ERRNOS = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO, errno.ENOTCONN})
_FULL_MARKERS = (
    f"(os error {errno.ENOSPC})",
    f"(os error {errno.EFBIG})",
    f"(os error {errno.EDQUOT})",
    "XMinioStorageFull",
    "507 Insufficient Storage",
    "QuotaExceeded",
)
_RANGE_MARKERS = ("InvalidRange", "Requested range was invalid", "416 Range Not Satisfiable")
_UNAVAILABLE_MARKERS = (
    "HTTP error",
    "error sending request",
    "timed out",
    "Timeout",
    "retries",
    "non-2xx status code: 5",
    "credential",
    "Credential",
    "NoSuchBucket",
    "ContainerNotFound",
    "dns error",
    "connection",
)


def _summary(exc: BaseException) -> str:
    """First line of obstore's message (the rest is a Rust debug dump), bounded."""
    text = str(exc).strip()
    line = text.splitlines()[0] if text else type(exc).__name__
    return line if len(line) <= 400 else line[:400] + "…"


def translate(exc: BaseException, *, op: str, key: str | None) -> StorageError:
    """The :class:`StorageError` to raise (``from exc``) for ``exc`` during ``op`` on ``key``."""
    if isinstance(exc, StorageError):
        return exc
    what = f"{op} {key!r}" if key is not None else op
    detail = _summary(exc)
    if isinstance(exc, FileNotFoundError):
        # obstore raises the builtin for a missing object; our own local file
        # handling raises it (with an errno) if the storage root vanished.
        if op in WRITE_OPS:
            return StorageUnavailable(
                f"{what}: bucket, container or directory not found: {detail}", key=key
            )
        return BlobNotFound(f"{what}: no such blob", key=key)
    if isinstance(exc, (oe.PermissionDeniedError, oe.UnauthenticatedError)):
        return StorageUnavailable(f"{what}: the store refused our credentials: {detail}", key=key)
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _FULL_ERRNOS:
            return StorageFull(f"{what}: {detail}", key=key)
        if exc.errno in _UNAVAILABLE_ERRNOS:
            return StorageUnavailable(f"{what}: {detail}", key=key)
        return StorageError(f"{what}: {detail}", key=key)
    if isinstance(exc, oe.BaseError):
        text = str(exc)
        if any(marker in text for marker in _FULL_MARKERS):
            return StorageFull(f"{what}: storage is full: {detail}", key=key)
        if any(marker in text for marker in _RANGE_MARKERS):
            return InvalidRange(f"{what}: range not satisfiable", key=key)
        if any(marker in text for marker in _UNAVAILABLE_MARKERS):
            return StorageUnavailable(f"{what}: storage unavailable: {detail}", key=key)
        return StorageError(f"{what}: {detail}", key=key)
    if isinstance(exc, TimeoutError):
        return StorageUnavailable(f"{what}: timed out", key=key)
    return StorageError(f"{what}: {type(exc).__name__}: {detail}", key=key)
