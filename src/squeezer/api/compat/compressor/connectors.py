"""External storage connectors, the HTTP side: validating a create request, errors as answers.

Compressor.app's "External Storage Connectors" (seed 001): a key creates a
connector with the credentials of an S3 (or S3-compatible: R2, Spaces, B2,
MinIO… by endpoint), GCS or Azure account, and later requests say
``store: {"connector": <id>, "bucket", "path"}`` to have the result written
there.  The credentials never appear in an answer or a log.  Sealing them
(AES-256-GCM under a key HKDF-derived from ``SQUEEZER_SECRET_KEY``), building
the target store and the object URLs is :mod:`squeezer.storage.connectors`;
the rows are :mod:`squeezer.db.connectors`; the worker writes results
(:mod:`squeezer.jobs.exports`).  This module turns requests into those calls
and their errors into answers (422 with fields, 404, 409).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from squeezer.api.errors import ApiError
from squeezer.api.state import ApiServices
from squeezer.db import connectors as rows
from squeezer.db.connectors import Connector
from squeezer.net import acheck_url
from squeezer.net.errors import NetError
from squeezer.storage import InvalidKey
from squeezer.storage import connectors as sealed_store
from squeezer.storage.connectors import FIELDS, NEEDS_ENDPOINT, PROVIDERS, ConnectorInvalid

__all__ = ["Connector", "check_endpoint", "check_target", "create", "delete", "listing",
           "normalize", "opened"]

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
    allowed, required = FIELDS[kind]
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
    if raw_provider in NEEDS_ENDPOINT and "endpoint" not in settings:
        raise _invalid("credentials.endpoint", f"{raw_provider} connectors need the endpoint URL")
    if kind == "s3":
        settings.setdefault("region", "auto" if raw_provider == "r2" else "us-east-1")
    try:  # each field against its provider's grammar; the endpoint rebuilt from its parts
        settings = sealed_store.validate_settings(kind, settings)
    except ConnectorInvalid as exc:
        raise _invalid(exc.field, exc.message.removeprefix(f"{exc.field}: ")) from None
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


async def create(svc: ApiServices, key_id: uuid.UUID, kind: str, name: str,
                 settings: dict[str, str]) -> Connector:
    connector_id = uuid.uuid4()
    sealed = sealed_store.seal(svc.signing_key, connector_id, key_id, settings)
    async with svc.connection() as conn:
        return await rows.insert(conn, connector_id=connector_id, key_id=key_id, provider=kind,
                                 name=name, sealed=sealed)


async def listing(svc: ApiServices, key_id: uuid.UUID) -> list[Connector]:
    async with svc.connection() as conn:
        return await rows.listing(conn, key_id)


async def delete(svc: ApiServices, key_id: uuid.UUID, connector_id: uuid.UUID) -> bool:
    async with svc.connection() as conn:
        return await rows.delete(conn, key_id, connector_id)


async def opened(svc: ApiServices, key_id: uuid.UUID,
                 connector_id: uuid.UUID) -> tuple[Connector, dict[str, str]]:
    """The connector and its unsealed settings; 404 when it is not this key's, 409 unreadable."""
    async with svc.connection() as conn:
        found = await rows.sealed(conn, key_id, connector_id)
    if found is None:
        raise ApiError(404, "no such connector", code="not_found",
                       errors=[{"field": "store.connector", "message": "no such connector"}])
    connector, sealed = found
    try:
        return connector, sealed_store.unseal(svc.signing_key, connector.id, key_id, sealed)
    except sealed_store.ConnectorUnreadable as exc:
        raise ApiError(409, exc.message, code=exc.code) from None


async def check_target(svc: ApiServices, key_id: uuid.UUID, connector_id: uuid.UUID,
                       bucket: str, path: str | None) -> None:
    """Refuse before any work a target the worker could not write: 404, 409 or 422."""
    connector, settings = await opened(svc, key_id, connector_id)
    try:
        sealed_store.object_key(path, "output.pdf")
    except InvalidKey as exc:
        raise ApiError(422, "invalid store path",
                       errors=[{"field": "store.path", "message": str(exc)}]) from None
    try:
        sealed_store.validate_bucket(connector.provider, bucket)
    except ConnectorInvalid as exc:
        raise ApiError(422, "invalid store bucket",
                       errors=[{"field": "store.bucket", "message": exc.message}]) from None
    try:
        sealed_store.check_store(connector.provider, settings, bucket)
    except ConnectorInvalid as exc:
        raise ApiError(422, "the connector's settings do not open a store",
                       errors=[{"field": "store.connector", "message": exc.message}]) from None
