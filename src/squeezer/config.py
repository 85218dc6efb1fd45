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
    max_frames: int = Limits().max_frames
    max_seconds: float = Limits().max_seconds
    max_threads: int = Limits().max_threads

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
    #: fetch-by-URL (docs/security.md): comma-separated host names / CIDRs allowed although
    #: internal, and the fetch's limits
    fetch_allow_hosts: str = ""
    fetch_allow_networks: str = ""
    fetch_allow_private: bool = False
    fetch_allowlist_only: bool = False
    fetch_allow_nat64: bool = False
    fetch_allowed_ports: str = ""  # e.g. "80,443"; empty: any port
    fetch_max_redirects: int = Field(5, ge=0, le=20)
    fetch_max_bytes: int = Field(0, ge=0)  # 0: SQUEEZER_MAX_UPLOAD_BYTES
    fetch_connect_timeout: float = Field(10.0, gt=0)
    fetch_read_timeout: float = Field(30.0, gt=0)
    fetch_total_timeout: float = Field(300.0, gt=0)
    fetch_ca_bundle: str | None = None
    #: webhooks: separate allow-lists (letting an internal file server be fetched should not
    #: let webhooks reach it too); never a redirect
    webhook_allow_hosts: str = ""
    webhook_allow_networks: str = ""
    webhook_allow_private: bool = False
    webhook_allowlist_only: bool = False
    webhook_allow_nat64: bool = False
    webhook_allowed_ports: str = ""
    webhook_connect_timeout: float = Field(5.0, gt=0)
    webhook_read_timeout: float = Field(10.0, gt=0)
    webhook_total_timeout: float = Field(15.0, gt=0)
    webhook_ca_bundle: str | None = None
    #: per-job child process caps (0 disables the memory cap)
    job_memory_bytes: int = Field(4 << 30, ge=0)
    #: how often the periodic sweep (expiry, stalled jobs, old rate windows) runs
    sweep_seconds: int = Field(30, gt=0)
    #: after SIGTERM, how long a worker's jobs may finish before they are stopped and requeued
    shutdown_grace_seconds: float = Field(30.0, ge=0)
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

    def _policy(self, prefix: str, **fields: object):  # -> squeezer.net.UrlPolicy
        from squeezer.net import UrlPolicy

        def split(value: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in value.split(",") if part.strip())

        ports = split(getattr(self, f"{prefix}_allowed_ports"))
        try:
            allowed_ports = frozenset(int(p) for p in ports) if ports else None
        except ValueError:
            raise ValueError(f"SQUEEZER_{prefix.upper()}_ALLOWED_PORTS: not a list of ports: "
                             f"{ports}") from None
        return UrlPolicy(  # type: ignore[arg-type]
            allow_hosts=split(getattr(self, f"{prefix}_allow_hosts")),
            allow_networks=split(getattr(self, f"{prefix}_allow_networks")),
            allow_private=getattr(self, f"{prefix}_allow_private"),
            allowlist_only=getattr(self, f"{prefix}_allowlist_only"),
            allow_nat64=getattr(self, f"{prefix}_allow_nat64"),
            allowed_ports=allowed_ports,
            connect_timeout=getattr(self, f"{prefix}_connect_timeout"),
            read_timeout=getattr(self, f"{prefix}_read_timeout"),
            total_timeout=getattr(self, f"{prefix}_total_timeout"),
            ca_bundle=getattr(self, f"{prefix}_ca_bundle"),
            **fields,
        )

    def url_policy(self):  # -> squeezer.net.UrlPolicy
        """The SSRF policy for fetch-by-URL."""
        return self._policy(
            "fetch", max_redirects=self.fetch_max_redirects,
            max_bytes=self.fetch_max_bytes or self.max_upload_bytes or (1 << 40),
        )

    def webhook_policy(self):  # -> squeezer.net.UrlPolicy
        """The SSRF policy for webhooks: :data:`squeezer.net.WEBHOOK_POLICY` with the
        ``SQUEEZER_WEBHOOK_*`` allow-lists and timeouts."""
        from squeezer.net import WEBHOOK_POLICY

        return self._policy("webhook", max_redirects=0, max_bytes=WEBHOOK_POLICY.max_bytes,
                            user_agent=WEBHOOK_POLICY.user_agent)


def load() -> Config:
    return Config()
