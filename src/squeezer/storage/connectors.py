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

import contextlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any
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
    from obstore.store import AzureConfig, ClientConfig, RetryConfig

    from squeezer.net.policy import UrlPolicy

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
    """The connector's settings do not make a store: a field fails its provider's grammar,
    or obstore refused it.  ``field`` names the setting (``credentials.region``, ``bucket``)."""

    code = "connector_invalid"
    http_status = 422

    def __init__(self, message: str, *, field: str = "credentials") -> None:
        super().__init__(message)
        self.field = field


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


# --- what a connector may say, as the providers define it -----------------------------------
#
# Every field ends up in a URL, a host name or a signed header, so each one is held to the
# grammar its provider documents: an S3 ``region`` of ``x@HOST:PORT/#`` or an Azure account
# of ``HOST:PORT#`` made the worker connect wherever the client liked.  Endpoints are then
# built here from the validated parts, never taken from the client as a string.

#: AWS region names (us-east-1, eu-central-2, us-gov-west-1, cn-north-1, ap-southeast-4)
AWS_REGION = re.compile(r"^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$")
#: a signing region of an S3-compatible service (auto, us-east-1, nyc3, us-west-004)
S3_REGION = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
#: S3 bucket names (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html)
S3_BUCKET = re.compile(r"^(?!xn--)(?!.*\.\.)(?!.*\.-)(?!.*-\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
#: GCS bucket names (cloud.google.com/storage/docs/buckets#naming)
GCS_BUCKET = re.compile(r"^(?!goog)(?!.*\.\.)[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
#: Azure storage account and container names (learn.microsoft.com, "Naming and referencing
#: containers, blobs, and metadata"; storage account name rules)
AZURE_ACCOUNT = re.compile(r"^[a-z0-9]{3,24}$")
AZURE_CONTAINER = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
#: key ids, secrets and tokens: printable ASCII without spaces, quotes or separators
TOKEN = re.compile(r"^[A-Za-z0-9+/=._~-]{1,8192}$")
SAS = re.compile(r"^[A-Za-z0-9%&=._~+/:,-]{1,8192}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,253}$")
#: where a GCS service-account key may have its tokens made (Google's two documented URIs)
GCS_TOKEN_URIS = ("https://oauth2.googleapis.com/token", "https://accounts.google.com/o/oauth2/token")
GCS_ENDPOINT = "https://storage.googleapis.com"
#: the keys of a service-account key file that reach the store (any other is dropped; one that
#: moves an endpoint, such as ``gcs_base_url``, is refused outright)
GCS_KEY_FIELDS = ("type", "project_id", "private_key_id", "private_key", "client_email",
                  "client_id", "token_uri", "auth_uri", "auth_provider_x509_cert_url",
                  "client_x509_cert_url", "universe_domain")
GCS_REFUSED_KEYS = ("gcs_base_url", "disable_oauth", "base_url")


def _refuse(field: str, message: str) -> ConnectorInvalid:
    return ConnectorInvalid(f"{field}: {message}", field=field)


def _match(grammar: re.Pattern[str], value: str, field: str, what: str) -> str:
    if not grammar.match(value):
        raise _refuse(field, f"not {what}")
    return value


def validate_settings(kind: str, settings: dict[str, str]) -> dict[str, str]:
    """``settings`` held to the provider's grammars; the endpoint rebuilt from its parts.

    Raises :class:`ConnectorInvalid` naming the field.  Run when a connector is
    created and again whenever one is used (rows written before these rules).
    """
    out = dict(settings)
    where = "credentials."
    if kind == "s3":
        for name in ("access_key_id", "secret_access_key", "session_token"):
            if name in out:
                _match(TOKEN, out[name], where + name, "a key or token (letters, digits, +/=._~-)")
        if "endpoint" in out:
            out["endpoint"] = canonical_endpoint(out["endpoint"])
            _match(S3_REGION, out.get("region", "us-east-1"), where + "region", "a region name")
        else:
            _match(AWS_REGION, out.get("region", "us-east-1"), where + "region",
                   "an AWS region name such as us-east-1")
    elif kind == "gcs":
        out["service_account_key"] = _service_account_key(out.get("service_account_key", ""))
    elif kind == "azure":
        _match(AZURE_ACCOUNT, out.get("account_name", ""), where + "account_name",
               "an Azure storage account name (3 to 24 lower-case letters and digits)")
        if "account_key" in out:
            _match(TOKEN, out["account_key"], where + "account_key", "a base64 account key")
        if "sas_token" in out:
            out["sas_token"] = _match(SAS, out["sas_token"].lstrip("?"), where + "sas_token",
                                      "a SAS token (a URL query string)")
    return out


def validate_bucket(kind: str, bucket: str) -> str:
    """The bucket (S3, GCS) or container (Azure) name, held to its provider's grammar."""
    if not isinstance(bucket, str):
        raise _refuse("bucket", "must be a string")
    grammar, what = {"s3": (S3_BUCKET, "an S3 bucket name"), "gcs": (GCS_BUCKET, "a GCS bucket name"),
                     "azure": (AZURE_CONTAINER, "an Azure container name")}[kind]
    return _match(grammar, bucket, "bucket", what + " (3 to 63 lower-case letters, digits, "
                  "dots or hyphens, as the provider defines them)")


def canonical_endpoint(url: str) -> str:
    """``scheme://host[:port]`` of an S3-compatible endpoint, rebuilt from the parsed URL.

    No credentials, path, query or fragment: the bucket and key are put in the
    path by the store, and anything else would be a way to smuggle a different
    target past the checks.
    """
    from squeezer.net.errors import NetError
    from squeezer.net.policy import UrlPolicy, check_url

    field = "credentials.endpoint"
    if not isinstance(url, str):
        raise _refuse(field, "must be an http(s) URL")
    try:
        # the format only: where it may connect is the address policy's, at use
        target = check_url(url.strip(), UrlPolicy(allow_networks=("0.0.0.0/0", "::/0")))
    except NetError as exc:
        raise _refuse(field, f"must be an http(s) URL ({exc.message})") from None
    if target.target not in ("/", "") or "?" in url or "#" in url:
        raise _refuse(field, "must be the endpoint alone, without a path, query or fragment")
    host = f"[{target.host}]" if ":" in target.host else target.host
    default = {"http": 80, "https": 443}[target.scheme]
    port = "" if target.port == default else f":{target.port}"
    return f"{target.scheme}://{host}{port}"


def _service_account_key(raw: str) -> str:
    """A GCS service-account key with only the fields a key file has, its token URI one of
    Google's, and nothing that moves an endpoint (``gcs_base_url`` pointed a worker anywhere)."""
    field = "credentials.service_account_key"
    try:
        key = json.loads(raw)
    except (ValueError, RecursionError):
        raise _refuse(field, "not a JSON service-account key") from None
    if not isinstance(key, dict):
        raise _refuse(field, "not a JSON service-account key")
    refused = sorted(k for k in key if str(k).lower() in GCS_REFUSED_KEYS)
    if refused:
        raise _refuse(field, f"{', '.join(refused)} is not accepted: the endpoint is Google's")
    if key.get("type") != "service_account":
        raise _refuse(field, 'type must be "service_account"')
    if not isinstance(key.get("client_email"), str) or not EMAIL.match(key["client_email"]):
        raise _refuse(field, "client_email is missing or not an e-mail address")
    private = key.get("private_key")
    if not isinstance(private, str) or "PRIVATE KEY-----" not in private:
        raise _refuse(field, "private_key is missing or not a PEM private key")
    if key.get("token_uri", GCS_TOKEN_URIS[0]) not in GCS_TOKEN_URIS:
        raise _refuse(field, f"token_uri must be one of Google's ({GCS_TOKEN_URIS[0]})")
    clean = {k: key[k] for k in GCS_KEY_FIELDS if k in key and isinstance(key[k], str)}
    clean.setdefault("token_uri", GCS_TOKEN_URIS[0])
    return json.dumps(clean, separators=(",", ":"))


def endpoint_of(kind: str, settings: dict[str, str]) -> str:
    """The store's base URL, built here from validated fields."""
    if kind == "s3":
        if "endpoint" in settings:
            return canonical_endpoint(settings["endpoint"])
        return f"https://s3.{settings.get('region', 'us-east-1')}.amazonaws.com"
    if kind == "gcs":
        return GCS_ENDPOINT
    return f"https://{settings['account_name']}.blob.core.windows.net"


def targets_of(kind: str, settings: dict[str, str]) -> set[tuple[str, int]]:
    """Every ``(host, port)`` a store of this connector may connect to: its endpoint, and for
    GCS, Google's token service."""
    from urllib.parse import urlsplit

    found = set()
    urls = [endpoint_of(kind, settings)]
    if kind == "gcs":
        urls += list(GCS_TOKEN_URIS)
    for url in urls:
        parts = urlsplit(url)
        assert parts.hostname is not None
        found.add((parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)))
    return found


def build_store(kind: str, settings: dict[str, str], bucket: str, proxy_url: str) -> BlobStore:
    """An obstore store on ``bucket`` with the connector's own credentials (never the
    server's), whose every connection goes through ``proxy_url`` (:mod:`squeezer.net.egress`).

    Every address-bearing setting is passed explicitly, so that no ``AWS_*``,
    ``GOOGLE_*`` or ``AZURE_*`` variable of the server's own environment (which
    obstore reads) can point a client's store elsewhere.  obstore retries
    transient failures itself (3 times within 15 s); what still fails is
    reported as a :class:`StorageError`.
    """
    settings = validate_settings(kind, settings)
    bucket = validate_bucket(kind, bucket)
    endpoint = endpoint_of(kind, settings)
    client_options: ClientConfig = {"connect_timeout": timedelta(seconds=5),
                                    "timeout": timedelta(seconds=3600),
                                    "proxy_url": proxy_url,
                                    "allow_http": endpoint.startswith("http://")}
    retry: RetryConfig = {"max_retries": 3, "retry_timeout": timedelta(seconds=15)}
    store: S3Store | GCSStore | AzureStore
    try:
        if kind == "s3":
            # endpoint given under both names obstore reads, so no AWS_ENDPOINT_URL_S3 of the
            # server's environment can take precedence over the one built here
            extra: dict[str, Any] = {"endpoint": endpoint, "aws_endpoint_url_s3": endpoint,
                                     "virtual_hosted_style_request": False}
            if settings.get("session_token"):
                extra["session_token"] = settings["session_token"]
            store = S3Store(bucket, access_key_id=settings["access_key_id"],
                            secret_access_key=settings["secret_access_key"],
                            region=settings.get("region", "us-east-1"),
                            client_options=client_options, retry_config=retry, **extra)
        elif kind == "gcs":
            store = GCSStore(bucket, service_account_key=settings["service_account_key"],
                             base_url=endpoint, client_options=client_options,
                             retry_config=retry)
        else:
            auth: AzureConfig = (
                {"account_key": settings["account_key"]} if "account_key" in settings
                else {"sas_key": settings["sas_token"]})
            store = AzureStore(bucket, account_name=settings["account_name"], endpoint=endpoint,
                               use_emulator=False, client_options=client_options,
                               retry_config=retry,
                               **auth)  # type: ignore[misc]  # obstore stub: container_name twice
    except Exception as exc:  # noqa: BLE001 - obstore refuses a malformed setting
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConnectorInvalid(f"the connector's settings do not open a store: {first}") from None
    return BlobStore(store, url=f"{kind}://{bucket}", can_sign=True)


def check_store(kind: str, settings: dict[str, str], bucket: str) -> None:
    """Raise :class:`ConnectorInvalid` unless a store can be built (no connection made)."""
    build_store(kind, settings, bucket, "http://unused:x@127.0.0.1:9")


@contextlib.contextmanager
def target_store(kind: str, settings: dict[str, str], bucket: str,
                 policy: UrlPolicy) -> Iterator[BlobStore]:
    """The store on ``bucket``, usable within the block, whose connections can reach only its
    own endpoint, through the address policy (``policy``: the fetch policy), pinned."""
    from squeezer.net.egress import egress

    settings = validate_settings(kind, settings)
    with egress().grant(targets_of(kind, settings), policy) as proxy_url:
        yield build_store(kind, settings, bucket, proxy_url)


def object_url(kind: str, settings: dict[str, str], bucket: str, key: str) -> str:
    """The object's permanent URL, as the provider spells it (what Compressor.app returns)."""
    path = quote(key, safe="/")
    if kind == "s3":
        if "endpoint" in settings:
            return f"{canonical_endpoint(settings['endpoint'])}/{bucket}/{path}"
        return f"https://{bucket}.s3.{settings['region']}.amazonaws.com/{path}"
    if kind == "gcs":
        return f"{GCS_ENDPOINT}/{bucket}/{path}"
    return f"https://{settings['account_name']}.blob.core.windows.net/{bucket}/{path}"
