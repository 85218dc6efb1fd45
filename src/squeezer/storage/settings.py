"""The store's settings: one model with the defaults, read from ``SQUEEZER_STORAGE_*``.

The configuration object (:class:`squeezer.config.StorageConfig`) fills it
from the environment; code and tests that open a store without one get these
defaults.  Credentials are *not* settings here: obstore reads the standard
``AWS_*``, ``GOOGLE_*`` and ``AZURE_*`` variables (and instance/workload
identity) itself, so they never pass through our configuration objects or logs.
"""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


class StorageSettings(BaseModel):
    model_config = ConfigDict(populate_by_name=True, use_attribute_docstrings=True)

    url: str | None = None
    """Where blobs live (``SQUEEZER_STORAGE_URL``); unset means ``SQUEEZER_DATA_DIR/blobs``.
    See docs/storage.md."""

    s3_endpoint: str | None = Field(
        None, validation_alias=AliasChoices("s3_endpoint", "SQUEEZER_S3_ENDPOINT"))
    """S3-compatible endpoint (MinIO, Ceph, R2, moto…) (``SQUEEZER_S3_ENDPOINT``). ``http://``
    is allowed only because it is spelled out here (or in ``AWS_ENDPOINT_URL``)."""

    connect_timeout: float = 5.0
    """Seconds to establish a connection; an unreachable store fails fast (503)."""

    read_timeout: float = 60.0
    """Seconds without a single byte on an open transfer before it is abandoned."""

    timeout: float = 3600.0
    """Seconds one request may take in total, body included: it bounds the
    largest blob a slow link can move, so it is generous."""

    retries: int = 3
    """Retries of a failed request (connection errors, 5xx, timeouts), with backoff."""

    retry_timeout: float = 15.0
    """No new retry starts after this many seconds: an outage becomes a 503
    within roughly this time instead of obstore's default 3 minutes."""
