"""Configuration: every knob is also an environment variable ``SQUEEZER_*``.

Engine limits live here so that the CLI, the API and the workers build the
same :class:`~squeezer.engines.limits.Limits` from the same variables, e.g.
``SQUEEZER_MAX_PAGES=2000``.  The service's knobs (TTLs, rate limits, the
sync/async switch, fetch allow-lists) are here too, so that an API process
and a worker on another machine agree as long as they share the environment.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from squeezer.engines.limits import Limits


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SQUEEZER_", extra="ignore")

    #: where the embedded database and local blobs live
    data_dir: Path = Path("squeezer-data")
    #: an external PostgreSQL; unset starts an embedded one in ``data_dir``
    database_url: str | None = None
    #: an object store (s3://, gs://, az://); unset stores blobs in ``data_dir/blobs``
    storage_url: str | None = None

    max_input_bytes: int = Limits().max_input_bytes
    max_pages: int = Limits().max_pages
    max_image_pixels: int = Limits().max_image_pixels
    max_stream_bytes: int = Limits().max_stream_bytes
    max_document_bytes: int = Limits().max_document_bytes
    max_seconds: float = Limits().max_seconds

    # --- the service -----------------------------------------------------------------------
    #: signs download URLs (HMAC); unset: a random key kept in ``data_dir/secret_key``.
    #: Every API process of one deployment must share it.
    secret_key: str | None = None
    #: the externally visible base URL (download links, webhooks); unset: the request's own
    public_url: str | None = None
    #: how long uploads, results and finished jobs are kept
    file_ttl_seconds: int = Field(7200, gt=0)
    #: largest upload (multipart or fetched); 0 = no limit of the service's own
    max_upload_bytes: int = Field(1 << 30, ge=0)
    #: inputs above this are always processed asynchronously
    sync_max_bytes: int = Field(32 << 20, ge=0)
    #: how long ``POST /v1/compress`` waits for a result before answering 202
    sync_wait_seconds: float = Field(30.0, ge=0)
    #: the longest ``wait`` a client may ask for (long polling)
    max_wait_seconds: float = Field(60.0, ge=0)
    #: requests per key per window, shared by every API process; 0 disables
    rate_limit: int = Field(100_000, ge=0)
    rate_window_seconds: int = Field(900, gt=0)
    #: fetch-by-URL and webhooks: comma-separated host names / CIDRs allowed although internal
    fetch_allow_hosts: str = ""
    fetch_allow_networks: str = ""
    fetch_allow_private: bool = False
    #: per-job child process caps (0 disables the memory cap)
    job_memory_bytes: int = Field(4 << 30, ge=0)
    #: how often the periodic sweep (expiry, stalled jobs, old rate windows) runs
    sweep_seconds: int = Field(30, gt=0)
    #: a worker silent this long is presumed dead and its jobs are retried
    stalled_seconds: float = Field(30.0, gt=0)
    #: webhook delivery attempts before giving up, and the first retry delay
    webhook_attempts: int = Field(8, ge=1)
    webhook_backoff_seconds: float = Field(5.0, ge=0)

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in Limits.model_fields})

    def signing_key(self) -> bytes:
        """The download-URL key: ``secret_key``, else one made once and kept in ``data_dir``."""
        if self.secret_key:
            return self.secret_key.encode("utf-8")
        path = Path(self.data_dir) / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(secrets.token_urlsafe(32))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # first writer wins; concurrent starters read its key
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode("utf-8")

    def url_policy(self, **overrides: object):  # -> squeezer.net.UrlPolicy
        """The SSRF policy for fetch-by-URL (and, with overrides, webhooks)."""
        from squeezer.net import UrlPolicy

        def split(value: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in value.split(",") if part.strip())

        fields: dict[str, object] = {
            "allow_hosts": split(self.fetch_allow_hosts),
            "allow_networks": split(self.fetch_allow_networks),
            "allow_private": self.fetch_allow_private,
            "max_bytes": self.max_upload_bytes or (1 << 40),
        }
        fields.update(overrides)
        return UrlPolicy(**fields)  # type: ignore[arg-type]


def load() -> Config:
    return Config()
