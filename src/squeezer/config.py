"""The one configuration object: read once per process, passed whole to the API and the workers.

:class:`Config` is nested by concern (``database``, ``storage``, ``fetch``,
``webhooks``, ``limits``, ``service``, ``workers``, ``engines``), and every
setting is also an environment variable ``SQUEEZER_*`` whose name says where
it sits: ``SQUEEZER_DATABASE_URL`` is ``database.url``,
``SQUEEZER_FETCH_ALLOW_HOSTS`` is ``fetch.allow_hosts``, ``SQUEEZER_MAX_PAGES``
is ``limits.max_pages``.  An API process and a worker on another machine
agree as long as they share the environment.

A section whose layer has its own settings model (the engines' :class:`Limits`,
the store's :class:`StorageSettings`, the address policies' defaults in
:mod:`squeezer.net`) takes that model's fields and defaults, so a default is
written once, next to the code that uses it.  ``squeezer config`` prints the
effective configuration with secrets masked (:func:`effective`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from squeezer.engines.limits import Limits
from squeezer.net.deliver import WEBHOOK_POLICY
from squeezer.net.policy import UrlPolicy
from squeezer.storage.settings import StorageSettings

_FETCH_DEFAULTS = UrlPolicy()


def _env(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class DatabaseConfig(BaseSettings):
    model_config = _env("SQUEEZER_DATABASE_")

    #: an external PostgreSQL; unset starts an embedded one in ``data_dir``
    url: str | None = None
    #: seconds to open a connection (libpq's connect_timeout; at least 2)
    connect_timeout_seconds: float = Field(3.0, gt=0)
    #: seconds an API request waits for any one answer of the database (a query, a commit,
    #: a pooled connection) before it is answered 503 with Retry-After; also the server's
    #: statement_timeout for the API's queries (db/deadline.py)
    statement_timeout_seconds: float = Field(3.0, gt=0)


class StorageConfig(BaseSettings, StorageSettings):
    """:class:`~squeezer.storage.settings.StorageSettings` from ``SQUEEZER_STORAGE_*``."""

    model_config = _env("SQUEEZER_STORAGE_")


class LimitsConfig(BaseSettings, Limits):
    """The engines' :class:`~squeezer.engines.limits.Limits` from ``SQUEEZER_MAX_*``, and the
    memory cap of the CLI's compressing processes."""

    model_config = _env("SQUEEZER_")

    #: address space of ``squeezer compress`` (and ``analyze``) processes, enforced by the OS
    #: (RLIMIT_AS): an allocation past it fails as ``memory_limit``; 0 disables.  The
    #: service's job children have their own cap, ``SQUEEZER_JOB_MEMORY_BYTES``
    cli_memory_bytes: int = Field(4 << 30, ge=0)

    def limits(self) -> Limits:
        return Limits(**self.model_dump(exclude={"cli_memory_bytes"}))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class _AddressPolicyConfig(BaseSettings):
    """Where outbound connections of one kind may go (docs/security.md): the allow-lists."""

    #: comma-separated host names (or ``*.suffix``) whose private addresses are allowed
    allow_hosts: str = ""
    #: comma-separated CIDRs allowed whatever their class
    allow_networks: str = ""
    allow_private: bool = False
    allowlist_only: bool = False
    allow_nat64: bool = False
    #: e.g. ``80,443``; empty: any port
    allowed_ports: str = ""
    ca_bundle: str | None = None

    def _ports(self, variable: str) -> frozenset[int] | None:
        ports = _split(self.allowed_ports)
        try:
            return frozenset(int(p) for p in ports) if ports else None
        except ValueError:
            raise ValueError(f"{variable}: not a list of ports: {ports}") from None

    def _policy(self, base: UrlPolicy, variable: str, **fields: Any) -> UrlPolicy:
        from dataclasses import replace

        return replace(base, allow_hosts=_split(self.allow_hosts),
                       allow_networks=_split(self.allow_networks),
                       allow_private=self.allow_private, allowlist_only=self.allowlist_only,
                       allow_nat64=self.allow_nat64, allowed_ports=self._ports(variable),
                       ca_bundle=self.ca_bundle, **fields)


class FetchConfig(_AddressPolicyConfig):
    """Fetch-by-URL: its allow-lists and limits (``SQUEEZER_FETCH_*``)."""

    model_config = _env("SQUEEZER_FETCH_")

    max_redirects: int = Field(_FETCH_DEFAULTS.max_redirects, ge=0, le=20)
    #: 0: ``service.max_upload_bytes``
    max_bytes: int = Field(0, ge=0)
    connect_timeout: float = Field(_FETCH_DEFAULTS.connect_timeout, gt=0)
    read_timeout: float = Field(_FETCH_DEFAULTS.read_timeout, gt=0)
    total_timeout: float = Field(_FETCH_DEFAULTS.total_timeout, gt=0)

    def policy(self, max_upload_bytes: int) -> UrlPolicy:
        return self._policy(_FETCH_DEFAULTS, "SQUEEZER_FETCH_ALLOWED_PORTS",
                            max_redirects=self.max_redirects,
                            max_bytes=self.max_bytes or max_upload_bytes or (1 << 40),
                            connect_timeout=self.connect_timeout,
                            read_timeout=self.read_timeout, total_timeout=self.total_timeout)


class WebhookConfig(_AddressPolicyConfig):
    """Webhooks: separate allow-lists (letting an internal file server be fetched should not
    let webhooks reach it too), never a redirect; delivery attempts (``SQUEEZER_WEBHOOK_*``)."""

    model_config = _env("SQUEEZER_WEBHOOK_")

    connect_timeout: float = Field(WEBHOOK_POLICY.connect_timeout, gt=0)
    read_timeout: float = Field(WEBHOOK_POLICY.read_timeout, gt=0)
    total_timeout: float = Field(WEBHOOK_POLICY.total_timeout, gt=0)
    #: delivery attempts before giving up, and the first retry delay
    attempts: int = Field(8, ge=1)
    backoff_seconds: float = Field(5.0, ge=0)

    def policy(self) -> UrlPolicy:
        return self._policy(WEBHOOK_POLICY, "SQUEEZER_WEBHOOK_ALLOWED_PORTS",
                            connect_timeout=self.connect_timeout,
                            read_timeout=self.read_timeout, total_timeout=self.total_timeout)


class ServiceConfig(BaseSettings):
    """What the API promises its clients: files, sync answers, rate limits, links."""

    model_config = _env("SQUEEZER_")

    #: signs download URLs (HMAC); unset: a random key kept in ``data_dir/secret_key``.
    #: Every API process of one deployment must share it.
    secret_key: str | None = Field(None, repr=False)
    #: the externally visible base URL (download links, webhooks); unset: the request's own
    public_url: str | None = None
    #: how long uploads, results and finished jobs are kept
    file_ttl_seconds: int = Field(7200, gt=0)
    #: largest upload (multipart or fetched); 0 = no limit of the service's own
    max_upload_bytes: int = Field(1 << 30, ge=0)
    #: largest request body that is not a file upload (JSON, forms): read incrementally and
    #: refused with 413 past this (api/bodylimit.py)
    max_json_bytes: int = Field(1 << 20, ge=1024)
    #: inputs above this are always processed asynchronously
    sync_max_bytes: int = Field(32 << 20, ge=0)
    #: how long ``POST /v1/compress`` waits for a result before answering 202
    sync_wait_seconds: float = Field(30.0, ge=0)
    #: the longest ``wait`` a client may ask for (long polling)
    max_wait_seconds: float = Field(60.0, ge=0)
    #: a request's line and headers must arrive within this many seconds (Slowloris)
    header_timeout_seconds: float = Field(10.0, gt=0)
    #: while a body arrives, each window of this many seconds must bring at least
    #: ``min_upload_bytes_per_second`` x the window (a stalled or trickling body is cut)
    body_timeout_seconds: float = Field(30.0, gt=0)
    min_upload_bytes_per_second: int = Field(1024, ge=0)
    #: requests per key per window, shared by every API process; 0 disables
    rate_limit: int = Field(100_000, ge=0)
    rate_window_seconds: int = Field(900, gt=0)


class WorkerConfig(BaseSettings):
    """How workers run jobs."""

    model_config = _env("SQUEEZER_")

    #: per-job child process memory cap (0 disables it)
    job_memory_bytes: int = Field(4 << 30, ge=0)
    #: how often the periodic sweep (expiry, stalled jobs, old rate windows) runs
    sweep_seconds: int = Field(30, gt=0)
    #: after SIGTERM, how long a worker's jobs may finish before they are stopped and requeued
    shutdown_grace_seconds: float = Field(30.0, ge=0)
    #: a worker silent this long is presumed dead and its jobs are retried
    stalled_seconds: float = Field(30.0, gt=0)


class EngineConfig(BaseSettings):
    """Process-wide engine choices (they change how, never what, an engine compresses)."""

    model_config = _env("SQUEEZER_")

    #: ``auto``: libimagequant when installed; ``pillow``: Pillow's own quantiser (no GPL code)
    quantizer: Literal["auto", "pillow"] = Field("auto", validation_alias=AliasChoices(
        "quantizer", "SQUEEZER_QUANTIZER"))


class Config(BaseSettings):
    """Everything a Squeezer process is configured with."""

    model_config = _env("SQUEEZER_")

    #: where the embedded database and local blobs live
    data_dir: Path = Path("squeezer-data")
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    fetch: FetchConfig = Field(default_factory=FetchConfig)
    webhooks: WebhookConfig = Field(default_factory=WebhookConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    service: ServiceConfig = Field(default_factory=ServiceConfig)
    workers: WorkerConfig = Field(default_factory=WorkerConfig)
    engines: EngineConfig = Field(default_factory=EngineConfig)

    def signing_key(self) -> bytes:
        """The download-URL key: ``secret_key``, else one made once and kept in ``data_dir``."""
        if self.service.secret_key:
            return self.service.secret_key.encode("utf-8")
        path = Path(self.data_dir) / "secret_key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(secrets.token_urlsafe(32))
            tmp.chmod(0o600)
            try:
                os.link(tmp, path)  # first writer wins; concurrent starters read its key
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return path.read_text().strip().encode("utf-8")

    def url_policy(self) -> UrlPolicy:
        """The SSRF policy for fetch-by-URL."""
        return self.fetch.policy(self.service.max_upload_bytes)

    def webhook_policy(self) -> UrlPolicy:
        """The SSRF policy for webhooks."""
        return self.webhooks.policy()

    def apply_to_engines(self) -> None:
        """Hand the process-wide engine choices to the engines (once, at start)."""
        from squeezer.engines import runtime

        runtime.configure(quantizer=self.engines.quantizer)


def load() -> Config:
    """The configuration from the environment; call once per process and pass it on."""
    config = Config()
    config.apply_to_engines()
    return config


#: settings shown masked by ``squeezer config``
SECRETS = {"service.secret_key"}


def effective(config: Config) -> dict[str, Any]:
    """The configuration as nested JSON with secrets (and database passwords) masked."""
    data = config.model_dump(mode="json")
    for path in SECRETS:
        section, name = path.split(".")
        if data[section].get(name):
            data[section][name] = "********"
    url = data["database"].get("url")
    if url:
        data["database"]["url"] = _mask_password(url)
    return data


def _mask_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":********@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def config_problems(exc: Exception) -> str:
    """A configuration error as ``SQUEEZER_X: message; …``, naming the variables to fix."""
    from pydantic import ValidationError

    if not isinstance(exc, ValidationError):
        return str(exc)
    sections = {info.annotation.__name__: info.annotation for info in Config.model_fields.values()
                if isinstance(info.annotation, type)}
    model = sections.get(exc.title, Config)
    prefix = str(model.model_config.get("env_prefix", "SQUEEZER_"))
    problems = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        if model is Config and loc and loc[0] in Config.model_fields and len(loc) > 1:
            section = Config.model_fields[loc[0]].annotation
            prefix = str(getattr(section, "model_config", {}).get("env_prefix", prefix))
            loc = loc[1:]
        variable = loc[0] if loc and loc[0].startswith("SQUEEZER_") else \
            prefix + "_".join(loc).upper()
        problems.append(f"{variable.upper()}: {error['msg']}")
    return "; ".join(problems)


def variables() -> list[tuple[str, str, Any]]:
    """``(environment variable, setting path, default)`` for every setting (the docs' table)."""
    out: list[tuple[str, str, Any]] = [("SQUEEZER_DATA_DIR", "data_dir", "squeezer-data")]
    for section, info in Config.model_fields.items():
        model = info.annotation
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        prefix = str(model.model_config.get("env_prefix", ""))
        for name, field in model.model_fields.items():
            alias = field.validation_alias
            names = [a for a in getattr(alias, "choices", []) if str(a).startswith("SQUEEZER_")]
            variable = str(names[0]) if names else (prefix + name).upper()
            default = field.get_default(call_default_factory=True)
            out.append((variable, f"{section}.{name}", default))
    return out
