"""Blob storage shared by the API processes and the workers.

``open_store(url, data_dir)`` gives a :class:`BlobStore` over a local
directory (default) or S3/GCS/Azure, all through obstore. Everything is async
and streamed; errors are the named classes of :mod:`squeezer.storage.errors`.
See docs/storage.md for configuration, guarantees and the key layout.
"""

from squeezer.storage.errors import (
    BlobNotFound,
    BlobTooLarge,
    InvalidKey,
    InvalidRange,
    StorageConfigError,
    StorageError,
    StorageFull,
    StorageUnavailable,
)
from squeezer.storage.factory import open_store
from squeezer.storage.keys import validate_key, validate_prefix
from squeezer.storage.local import LocalBlobStore
from squeezer.storage.settings import StorageSettings
from squeezer.storage.store import BlobInfo, BlobReader, BlobStore, StoredBlob

__all__ = [
    "BlobInfo",
    "BlobNotFound",
    "BlobReader",
    "BlobStore",
    "BlobTooLarge",
    "InvalidKey",
    "InvalidRange",
    "LocalBlobStore",
    "StorageConfigError",
    "StorageError",
    "StorageFull",
    "StorageSettings",
    "StorageUnavailable",
    "StoredBlob",
    "open_store",
    "validate_key",
    "validate_prefix",
]
