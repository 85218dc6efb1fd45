"""External storage connectors: provider credentials stored once, sealed, named by id.

Compressor.app's "External Storage Connectors" (seed 001): a key creates a
connector with the credentials of an S3 (or S3-compatible: R2, Spaces, B2,
MinIO… by endpoint), GCS or Azure account, and later requests say
``store: {"connector": <id>, "bucket", "path"}`` to have the result written
there.  The credentials never appear in an answer or a log.  At rest they are
sealed with AES-256-GCM under a key derived from ``SQUEEZER_SECRET_KEY`` by
HKDF-SHA256 (its own ``info``, so the download-URL HMAC key and this key never
coincide); the row's id and owner are the associated data, so a sealed blob
copied onto another row or another key does not open.  Rotating
``SQUEEZER_SECRET_KEY`` therefore makes existing connectors unusable (they must
be created again), which docs/compat.md says.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from obstore.store import AzureStore, GCSStore, S3Store

from squeezer.api.errors import ApiError
from squeezer.api.state import ApiServices
from squeezer.net import acheck_url
from squeezer.net.errors import NetError
from squeezer.storage import BlobStore, InvalidKey, validate_key

_HKDF_INFO = b"squeezer storage connectors v1"
_NONCE = 12
#: provider names a request may use -> the three kinds of store
PROVIDERS = {"s3": "s3", "aws": "s3", "r2": "s3", "spaces": "s3", "digitalocean": "s3",
             "b2": "s3", "backblaze": "s3", "minio": "s3", "s3-compatible": "s3",
             "gcs": "gcs", "gs": "gcs", "google": "gcs",
             "azure": "azure", "az": "azure", "azure-blob": "azure"}
#: which settings each kind takes (all strings), and which of them are required
_FIELDS = {
    "s3": ({"access_key_id", "secret_access_key", "session_token", "region", "endpoint"},
           {"access_key_id", "secret_access_key"}),
    "gcs": ({"service_account_key"}, {"service_account_key"}),
    "azure": ({"account_name", "account_key", "sas_token"}, {"account_name"}),
}
#: S3-compatible providers that have no default endpoint
_NEEDS_ENDPOINT = {"r2", "spaces", "digitalocean", "b2", "backblaze", "minio", "s3-compatible"}


def derive_key(signing_key: bytes) -> bytes:
    """The AES-256 key of the connector table, derived from the deployment's secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(signing_key)


def _aad(connector_id: uuid.UUID, key_id: uuid.UUID) -> bytes:
    return f"{connector_id}:{key_id}".encode()


def seal(signing_key: bytes, connector_id: uuid.UUID, key_id: uuid.UUID,
         settings: dict[str, str]) -> bytes:
    nonce = os.urandom(_NONCE)
    plain = json.dumps(settings, separators=(",", ":")).encode()
    return nonce + AESGCM(derive_key(signing_key)).encrypt(nonce, plain,
                                                           _aad(connector_id, key_id))


def unseal(signing_key: bytes, connector_id: uuid.UUID, key_id: uuid.UUID,
           sealed: bytes) -> dict[str, str]:
    try:
        plain = AESGCM(derive_key(signing_key)).decrypt(sealed[:_NONCE], sealed[_NONCE:],
                                                        _aad(connector_id, key_id))
    except InvalidTag:
        raise ApiError(409, "this connector cannot be opened with the server's current secret "
                       "key; create it again", code="connector_unreadable") from None
    return json.loads(plain)


@dataclass(frozen=True)
class Connector:
    id: uuid.UUID
    key_id: uuid.UUID
    provider: str  # s3 | gcs | azure
    name: str
    created_at: datetime

    def public(self) -> dict[str, Any]:
        """What answers show: never a credential."""
        return {"id": str(self.id), "provider": self.provider, "name": self.name,
                "created_at": self.created_at.isoformat().replace("+00:00", "Z")}


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid connector", errors=[{"field": field, "message": message}])


def normalize(body: dict[str, Any]) -> tuple[str, str, dict[str, str]]:
    """``(kind, name, settings)`` from a create request; 422 with field errors otherwise.

    Settings may be given flat or under ``credentials``; a GCS service-account
    key may be the JSON object itself.
    """
    raw_provider = str(body.get("provider") or body.get("type") or "").strip().lower()
    if not raw_provider:
        raise _invalid("provider", "required (s3, r2, spaces, b2, gcs or azure)")
    kind = PROVIDERS.get(raw_provider)
    if kind is None:
        raise _invalid("provider", f"unknown provider {raw_provider!r}")
    given: dict[str, Any] = {k: v for k, v in body.items()
                             if k not in ("provider", "type", "name", "credentials")}
    credentials = body.get("credentials") or {}
    if not isinstance(credentials, dict):
        raise _invalid("credentials", "must be an object")
    given.update(credentials)
    allowed, required = _FIELDS[kind]
    settings: dict[str, str] = {}
    for field, value in given.items():
        where = f"credentials.{field}" if field in credentials else field
        if field not in allowed:
            raise _invalid(where, f"not a setting of {raw_provider} connectors")
        if field == "service_account_key" and isinstance(value, dict):
            value = json.dumps(value)
        if not isinstance(value, str) or not value.strip() or len(value) > 16384:
            raise _invalid(where, "must be a non-empty string")
        settings[field] = value.strip()
    for field in sorted(required - settings.keys()):
        raise _invalid(f"credentials.{field}", "required")
    if kind == "azure" and not ({"account_key", "sas_token"} & settings.keys()):
        raise _invalid("credentials.account_key", "account_key or sas_token is required")
    if raw_provider in _NEEDS_ENDPOINT and "endpoint" not in settings:
        raise _invalid("credentials.endpoint", f"{raw_provider} connectors need the endpoint URL")
    if "endpoint" in settings:
        parts = urlsplit(settings["endpoint"])
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
            raise _invalid("credentials.endpoint", "must be an http(s) URL")
        settings["endpoint"] = settings["endpoint"].rstrip("/")
    if kind == "s3":
        settings.setdefault("region", "auto" if raw_provider == "r2" else "us-east-1")
    name = str(body.get("name") or raw_provider)[:200]
    return kind, name, settings


async def check_endpoint(svc: ApiServices, settings: dict[str, str]) -> None:
    """An S3 endpoint is a URL the server will connect to: the fetch SSRF policy applies."""
    endpoint = settings.get("endpoint")
    if not endpoint:
        return
    try:
        await acheck_url(endpoint, svc.config.url_policy())
    except NetError as exc:
        raise ApiError(422, "invalid connector", code=exc.code,
                       errors=[{"field": "credentials.endpoint", "message": str(exc)}]) from None


# --- rows ---------------------------------------------------------------------------------

_COLS = "id, key_id, provider, name, created_at"


async def create(svc: ApiServices, key_id: uuid.UUID, kind: str, name: str,
                 settings: dict[str, str]) -> Connector:
    connector_id = uuid.uuid4()
    sealed = seal(svc.signing_key, connector_id, key_id, settings)
    async with svc.connection() as conn:
        cur = await conn.execute(
            f"""insert into storage_connectors (id, key_id, provider, name, sealed)
                values (%s, %s, %s, %s, %s) returning {_COLS}""",
            (connector_id, key_id, kind, name, sealed))
        row = await cur.fetchone()
    assert row is not None
    return Connector(*row)


async def listing(svc: ApiServices, key_id: uuid.UUID) -> list[Connector]:
    async with svc.connection() as conn:
        cur = await conn.execute(
            f"select {_COLS} from storage_connectors where key_id = %s order by created_at desc",
            (key_id,))
        return [Connector(*row) for row in await cur.fetchall()]


async def delete(svc: ApiServices, key_id: uuid.UUID, connector_id: uuid.UUID) -> bool:
    async with svc.connection() as conn:
        cur = await conn.execute("delete from storage_connectors where id = %s and key_id = %s",
                                 (connector_id, key_id))
        return cur.rowcount == 1


async def opened(svc: ApiServices, key_id: uuid.UUID,
                 connector_id: uuid.UUID) -> tuple[Connector, dict[str, str]]:
    """The connector and its unsealed settings; 404 when it is not this key's."""
    async with svc.connection() as conn:
        cur = await conn.execute(
            f"select {_COLS}, sealed from storage_connectors where id = %s and key_id = %s",
            (connector_id, key_id))
        row = await cur.fetchone()
    if row is None:
        raise ApiError(404, "no such connector", code="not_found",
                       errors=[{"field": "store.connector", "message": "no such connector"}])
    connector = Connector(*row[:5])
    return connector, unseal(svc.signing_key, connector.id, key_id, bytes(row[5]))


# --- the target store ------------------------------------------------------------------------


def object_key(path: str | None, name: str) -> str:
    """The object key for ``path`` (a directory when it ends in ``/``; default: ``name``)."""
    path = (path or "").lstrip("/")
    if not path or path.endswith("/"):
        path += name
    try:
        validate_key(path)
    except InvalidKey as exc:
        raise ApiError(422, "invalid store path",
                       errors=[{"field": "store.path", "message": str(exc)}]) from None
    return path


def target_store(kind: str, settings: dict[str, str], bucket: str) -> BlobStore:
    """An obstore store on ``bucket`` with the connector's own credentials (not the server's)."""
    client_options: dict[str, Any] = {"connect_timeout": timedelta(seconds=5),
                                      "timeout": timedelta(seconds=3600)}
    retry = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
    try:
        if kind == "s3":
            extra = {"endpoint": settings["endpoint"]} if "endpoint" in settings else {}
            if settings.get("endpoint", "").startswith("http://"):
                client_options["allow_http"] = True
            if settings.get("session_token"):
                extra["session_token"] = settings["session_token"]
            store = S3Store(bucket, access_key_id=settings["access_key_id"],
                            secret_access_key=settings["secret_access_key"],
                            region=settings["region"], client_options=client_options,
                            retry_config=retry, **extra)  # type: ignore[arg-type]
        elif kind == "gcs":
            store = GCSStore(bucket, service_account_key=settings["service_account_key"],
                             client_options=client_options, retry_config=retry)  # type: ignore[arg-type]
        else:
            auth = ({"account_key": settings["account_key"]} if "account_key" in settings
                    else {"sas_key": settings["sas_token"]})
            store = AzureStore(bucket, account_name=settings["account_name"],
                               client_options=client_options, retry_config=retry,
                               **auth)  # type: ignore[arg-type]
    except Exception as exc:  # noqa: BLE001 - obstore refuses a malformed setting
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ApiError(422, "the connector's settings do not open a store",
                       errors=[{"field": "store.connector", "message": first}]) from None
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
