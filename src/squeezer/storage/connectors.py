"""External storage connectors: a client's own bucket, its credentials sealed at rest.

Compressor.app's "External Storage Connectors" (seed 001): a key stores the
credentials of an S3 (or S3-compatible: R2, Spaces, B2, MinIO… by endpoint),
GCS or Azure account once, and jobs name the connector to have their result
written to one of its buckets.  This module is what the API (creating
connectors) and the workers (writing results, :mod:`squeezer.jobs.exports`)
share, with no HTTP and no database in it:

* :func:`seal` / :func:`unseal`: AES-256-GCM under a key derived from
  ``SQUEEZER_SECRET_KEY`` by HKDF-SHA256 (its own ``info``, so the download-URL
  HMAC key and this key never coincide); the connector's id and owning key are
  the associated data, so a sealed blob copied onto another row or another key
  does not open.  Rotating ``SQUEEZER_SECRET_KEY`` makes existing connectors
  unreadable (:class:`ConnectorUnreadable`); they must be created again.
* :func:`target_store`: an obstore store on one bucket with the connector's
  credentials (never the server's), wrapped in :class:`BlobStore` so writes
  stream, abort cleanly and raise :mod:`squeezer.storage.errors`.
* :func:`object_key` / :func:`object_url`: where the result goes and the
  provider's permanent URL of it.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING
from urllib.parse import quote

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from obstore.store import AzureStore, GCSStore, S3Store

from squeezer.storage.errors import StorageError
from squeezer.storage.keys import validate_key
from squeezer.storage.store import BlobStore

if TYPE_CHECKING:
    from obstore.store import AzureConfig, ClientConfig, RetryConfig, S3Config

_HKDF_INFO = b"squeezer storage connectors v1"
_NONCE = 12
#: provider names a client may use -> the three kinds of store
PROVIDERS = {"s3": "s3", "aws": "s3", "r2": "s3", "spaces": "s3", "digitalocean": "s3",
             "b2": "s3", "backblaze": "s3", "minio": "s3", "s3-compatible": "s3",
             "gcs": "gcs", "gs": "gcs", "google": "gcs",
             "azure": "azure", "az": "azure", "azure-blob": "azure"}
#: which settings each kind takes (all strings), and which of them are required
FIELDS = {
    "s3": ({"access_key_id", "secret_access_key", "session_token", "region", "endpoint"},
           {"access_key_id", "secret_access_key"}),
    "gcs": ({"service_account_key"}, {"service_account_key"}),
    "azure": ({"account_name", "account_key", "sas_token"}, {"account_name"}),
}
#: S3-compatible providers that have no default endpoint
NEEDS_ENDPOINT = {"r2", "spaces", "digitalocean", "b2", "backblaze", "minio", "s3-compatible"}


class ConnectorUnreadable(StorageError):
    """The sealed settings do not open with the server's current secret key (it changed)."""

    code = "connector_unreadable"
    http_status = 422


class ConnectorInvalid(StorageError):
    """The connector's settings do not make a store (obstore refused one of them)."""

    code = "connector_invalid"
    http_status = 422


def derive_key(signing_key: bytes) -> bytes:
    """The AES-256 key of the connector table, derived from the deployment's secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(signing_key)


def _aad(connector_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    return f"{connector_id}:{key_id}".encode()


def seal(signing_key: bytes, connector_id: uuid.UUID, key_id: uuid.UUID,
         settings: dict[str, str]) -> bytes:
    """``nonce || ciphertext+tag`` of the settings, bound to the connector and its key."""
    nonce = os.urandom(_NONCE)
    plain = json.dumps(settings, separators=(",", ":")).encode()
    return nonce + AESGCM(derive_key(signing_key)).encrypt(nonce, plain,
                                                           _aad(connector_id, key_id))


def unseal(signing_key: bytes, connector_id: uuid.UUID, key_id: uuid.UUID,
           sealed: bytes) -> dict[str, str]:
    """The settings :func:`seal` sealed; :class:`ConnectorUnreadable` if they do not open."""
    try:
        plain = AESGCM(derive_key(signing_key)).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                                        _aad(connector_id, key_id))
    except InvalidTag:
        raise ConnectorUnreadable("this connector cannot be opened with the server's current "
                                  "secret key; create it again") from None
    return json.loads(plain)


def safe_name(name: str) -> str:
    """``name`` as one key segment: characters the key rules refuse become ``_``."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", name.rsplit("/", 1)[-1])[:200]
    return cleaned.lstrip(".-") or "output.pdf"


def object_key(path: str | None, name: str) -> str:
    """The object key for ``path`` (a directory when it ends in ``/``; default: ``name``).

    ``name`` (a client's file name) is made a valid segment (:func:`safe_name`);
    ``path`` is the client's choice and must follow the blob-key rules as it is
    (:class:`squeezer.storage.InvalidKey` otherwise).
    """
    path = (path or "").lstrip("/")
    if not path or path.endswith("/"):
        path += safe_name(name)
    return validate_key(path)


def target_store(kind: str, settings: dict[str, str], bucket: str) -> BlobStore:
    """An obstore store on ``bucket`` with the connector's own credentials (not the server's).

    obstore retries transient failures itself (3 times within 15 s); what
    still fails is reported to the caller as a :class:`StorageError`.
    """
    client_options: ClientConfig = {"connect_timeout": timedelta(seconds=5),
                                    "timeout": timedelta(seconds=3600)}
    retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
    store: S3Store | GCSStore | AzureStore
    try:
        if kind == "s3":
            extra: S3Config = {"endpoint": settings["endpoint"]} if "endpoint" in settings else {}
            if settings.get("endpoint", "").startswith("http://"):
                client_options["allow_http"] = True
            if settings.get("session_token"):
                extra["session_token"] = settings["session_token"]
            store = S3Store(bucket, access_key_id=settings["access_key_id"],
                            secret_access_key=settings["secret_access_key"],
                            region=settings["region"], client_options=client_options,
                            retry_config=retry,
                            **extra)  # type: ignore[misc]  # obstore stub: bucket twice
        elif kind == "gcs":
            store = GCSStore(bucket, service_account_key=settings["service_account_key"],
                             client_options=client_options, retry_config=retry)
        else:
            auth: AzureConfig = (
                {"account_key": settings["account_key"]} if "account_key" in settings
                else {"sas_key": settings["sas_token"]})
            store = AzureStore(bucket, account_name=settings["account_name"],
                               client_options=client_options, retry_config=retry,
                               **auth)  # type: ignore[misc]  # obstore stub: container_name twice
    except Exception as exc:  # noqa: BLE001 - obstore refuses a malformed setting
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConnectorInvalid(f"the connector's settings do not open a store: {first}") from None
    return BlobStore(store, url=f"{kind}://{bucket}", can_sign=True)


def object_url(kind: str, settings: dict[str, str], bucket: str, key: str) -> str:
    """The object's permanent URL, as the provider spells it (what Compressor.app returns)."""
    path = quote(key, safe="/")
    if kind == "s3":
        if "endpoint" in settings:
            return f"{settings['endpoint']}/{bucket}/{path}"
        return f"https://{bucket}.s3.{settings['region']}.amazonaws.com/{path}"
    if kind == "gcs":
        return f"https://storage.googleapis.com/{bucket}/{path}"
    return f"https://{settings['account_name']}.blob.core.windows.net/{bucket}/{path}"
