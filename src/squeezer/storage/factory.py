"""Build the process's :class:`BlobStore` from ``SQUEEZER_STORAGE_URL``.

Accepted forms (docs/storage.md has examples):

- unset/empty: the local directory ``<data_dir>/blobs`` (the one-machine default);
- ``file:///abs/path`` or a plain path (relative paths are relative to ``data_dir``);
- ``s3://bucket[/prefix]`` — endpoint from ``SQUEEZER_S3_ENDPOINT`` (or
  ``AWS_ENDPOINT_URL``), region and credentials from the standard ``AWS_*``
  variables or the instance/pod identity;
- ``gs://bucket[/prefix]`` — ``GOOGLE_*`` variables / workload identity;
- ``az://container[/prefix]`` — ``AZURE_STORAGE_*`` variables / managed identity.

Timeouts and retries are set here, not left at obstore's defaults (30 s per
request including the body, which would cut large downloads; up to 10 retries
over 3 minutes, which would turn an outage into hung requests rather than 503s).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit
from urllib.request import url2pathname

from obstore.store import AzureStore, GCSStore, S3Store

from squeezer.storage.errors import StorageConfigError
from squeezer.storage.local import LocalBlobStore
from squeezer.storage.settings import StorageSettings
from squeezer.storage.store import BlobStore

_CLOUD_STORES: dict[str, Any] = {"s3": S3Store, "gs": GCSStore, "az": AzureStore}


def open_store(
    url: str | None, data_dir: Path, settings: StorageSettings | None = None
) -> BlobStore:
    """The blob store named by ``url``; ``None`` or ``""`` means ``data_dir/blobs``.

    Raises :class:`StorageConfigError` for a malformed or unsupported URL or
    setting. Does not contact the store (credentials may be fetched lazily),
    so a store that is down fails on first use with :class:`StorageUnavailable`.
    """
    settings = settings or StorageSettings()
    data_dir = Path(data_dir)
    url = (url or "").strip()
    if not url:
        return LocalBlobStore(data_dir / "blobs")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):  # a path (or C:\\path)
        path = Path(url).expanduser()
        return LocalBlobStore(path if path.is_absolute() else data_dir / path)
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
            raise StorageConfigError(f"file URL must look like file:///absolute/path, not {url!r}")
        return LocalBlobStore(Path(url2pathname(unquote(parts.path))))
    if scheme in _CLOUD_STORES:
        if not parts.netloc:
            raise StorageConfigError(
                f"{scheme}:// storage URL needs a bucket or container: {url!r}"
            )
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise StorageConfigError(
                f"storage URL must be {scheme}://bucket/prefix; put credentials in the environment"
            )
        return _open_cloud(scheme, url, settings)
    raise StorageConfigError(
        f"unsupported storage URL scheme {scheme!r}: use a path, file://, s3://, gs:// or az://"
    )


def _open_cloud(scheme: str, url: str, settings: StorageSettings) -> BlobStore:
    client_options: dict[str, Any] = {
        "connect_timeout": timedelta(seconds=settings.connect_timeout),
        "read_timeout": timedelta(seconds=settings.read_timeout),
        "timeout": timedelta(seconds=settings.timeout),
    }
    retry_config: dict[str, Any] = {
        "max_retries": settings.retries,
        "retry_timeout": timedelta(seconds=settings.retry_timeout),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "max_backoff": timedelta(seconds=2),
            "base": 2,
        },
    }
    extra: dict[str, Any] = {}
    if scheme == "s3":
        endpoint = settings.s3_endpoint or os.environ.get("AWS_ENDPOINT_URL_S3")
        explicit = endpoint or os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT")
        if endpoint:
            extra["endpoint"] = endpoint.rstrip("/")
        if explicit:
            endpoint_scheme = urlsplit(explicit).scheme.lower()
            if endpoint_scheme not in ("http", "https"):
                raise StorageConfigError(f"S3 endpoint must be an http(s) URL, not {explicit!r}")
            if endpoint_scheme == "http":
                client_options["allow_http"] = True  # spelled out by the operator
    try:
        store = _CLOUD_STORES[scheme].from_url(
            url, client_options=client_options, retry_config=retry_config, **extra
        )
    except Exception as exc:  # obstore: ValueError, GenericError, UnknownConfigurationKeyError…
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise StorageConfigError(f"cannot open storage {url!r}: {first_line}") from exc
    shown = urlunsplit(urlsplit(url)._replace(query="", fragment=""))
    return BlobStore(store, url=shown, can_sign=True)
