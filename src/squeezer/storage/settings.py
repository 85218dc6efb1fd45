"""Storage knobs, each also an environment variable ``SQUEEZER_*``.

Kept beside the storage code (rather than in :mod:`squeezer.config`) so that
``open_store`` works in the API, the workers and tests alike; the service's
``Config`` can embed or mirror these fields. Credentials are *not* settings
here: obstore reads the standard ``AWS_*``, ``GOOGLE_*`` and ``AZURE_*``
variables (and instance/workload identity) itself, so they never pass
through our configuration objects or logs.
"""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict


class StorageSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SQUEEZER_", extra="ignore")

    storage_url: str | None = None
    """Where blobs live; unset means ``SQUEEZER_DATA_DIR/blobs``. See docs/storage.md."""

    s3_endpoint: str | None = None
    """S3-compatible endpoint (MinIO, Ceph, R2, moto…). ``http://`` is allowed
    only because it is spelled out here (or in ``AWS_ENDPOINT_URL``)."""

    storage_connect_timeout: float = 5.0
    """Seconds to establish a connection; an unreachable store fails fast (503)."""

    storage_read_timeout: float = 60.0
    """Seconds without a single byte on an open transfer before it is abandoned."""

    storage_timeout: float = 3600.0
    """Seconds one request may take in total, body included: it bounds the
    largest blob a slow link can move, so it is generous."""

    storage_retries: int = 3
    """Retries of a failed request (connection errors, 5xx, timeouts), with backoff."""

    storage_retry_timeout: float = 15.0
    """No new retry starts after this many seconds: an outage becomes a 503
    within roughly this time instead of obstore's default 3 minutes."""
