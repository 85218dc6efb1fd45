"""Named errors of the blob store.

Same style as :mod:`squeezer.engines.errors` and :mod:`squeezer.net.errors`:
one class per way storage can fail, each with a stable machine-readable
``code`` and a ``retryable`` flag, so that the API can map them to HTTP
statuses (404, 413, 416, 503 + ``Retry-After``) and the job layer can decide
whether to try again, without parsing messages. obstore's own exceptions never
escape this package; the original is kept as ``__cause__`` for the logs.

Messages are meant for operators' logs (they may name a bucket or a local
path); the API answers clients with the ``code`` and its own wording.
"""

from __future__ import annotations

from squeezer.errors import SqueezerError


class StorageError(SqueezerError):
    """Base class of every error the blob store raises on purpose."""

    code = "storage_error"
    http_status = 503

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class InvalidKey(StorageError, ValueError):
    """A key is not a well-formed server-generated key; nothing was touched.

    Keys are built by the service from ids it generated. Seeing this error
    means a bug (or a user-supplied name that reached the storage layer,
    hostile-inputs.md row 21), so the API should answer 500, not echo it.
    """

    code = "invalid_key"
    http_status = 500


class BlobNotFound(StorageError):
    """No blob is stored under the key (never written, deleted, or expired)."""

    code = "blob_not_found"
    http_status = 404


class BlobTooLarge(StorageError):
    """A streamed upload passed ``max_bytes``; the upload was aborted and nothing stored."""

    code = "blob_too_large"
    http_status = 413

    def __init__(self, message: str, *, key: str | None = None, max_bytes: int) -> None:
        super().__init__(message, key=key)
        self.max_bytes = max_bytes


class InvalidRange(StorageError):
    """The requested byte range starts at or beyond the end of the blob (HTTP 416).

    ``size`` is the blob's size when known, for ``Content-Range: bytes */size``.
    """

    code = "range_not_satisfiable"
    http_status = 416

    def __init__(self, message: str, *, key: str | None = None, size: int | None = None) -> None:
        super().__init__(message, key=key)
        self.size = size


class StorageUnavailable(StorageError):
    """The store cannot be reached or refuses us: network, DNS, TLS, timeouts, 5xx,
    rejected credentials, a missing bucket. The API answers 503; jobs retry later."""

    code = "storage_unavailable"
    retryable = True


class StorageFull(StorageError):
    """No space left (ENOSPC), a file-size or quota limit (EFBIG, EDQUOT), or the
    object store reports it is full. Nothing partial is left at the key; retryable."""

    code = "storage_full"
    retryable = True


class StorageConfigError(StorageError):
    """``SQUEEZER_STORAGE_URL`` or a storage setting is malformed or unsupported.

    Raised by :func:`squeezer.storage.open_store` at start-up, so that a
    misconfigured service fails before it accepts work.
    """

    code = "storage_misconfigured"
    http_status = 500
