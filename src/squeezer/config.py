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

from squeezer.engines.limits import CLI_MEMORY_BYTES, Limits
from squeezer.net.deliver import WEBHOOK_POLICY
from squeezer.net.policy import UrlPolicy
from squeezer.storage.settings import StorageSettings

_FETCH_DEFAULTS = UrlPolicy()


def _env(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class DatabaseConfig(BaseSettings):
    model_config = _env("SQUEEZER_DATABASE_")

    url: str | None = Field(
        None, description="An external PostgreSQL (postgresql://user:password@host:5432/db); "
        "unset: an embedded one in the data directory.")
    connect_timeout_seconds: float = Field(
        3.0, gt=0, description="Seconds to open a database connection (libpq's "
        "connect_timeout; at least 2).")
    statement_timeout_seconds: float = Field(
        3.0, gt=0, description="Seconds an API request waits for any one answer of the "
        "database (a query, a commit, a pooled connection) before it is answered 503 with "
        "Retry-After; also the server's statement_timeout for the API's queries.")


class StorageConfig(BaseSettings, StorageSettings):
    """:class:`~squeezer.storage.settings.StorageSettings` from ``SQUEEZER_STORAGE_*``."""

    model_config = _env("SQUEEZER_STORAGE_")


class LimitsConfig(BaseSettings, Limits):
    """The engines' :class:`~squeezer.engines.limits.Limits` from ``SQUEEZER_MAX_*``, and the
    memory cap of the CLI's compressing processes."""

    model_config = _env("SQUEEZER_")

    cli_memory_bytes: int = Field(
        CLI_MEMORY_BYTES, ge=0, description="Address space of squeezer compress and analyze processes "
        "(RLIMIT_AS): an allocation past it fails as memory_limit; 0: none. Job children have "
        "SQUEEZER_JOB_MEMORY_BYTES.")

    def limits(self) -> Limits:
        return Limits(**self.model_dump(exclude={"cli_memory_bytes"}))


def _split(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


class _AddressPolicyConfig(BaseSettings):
    """Where outbound connections of one kind may go (docs/security.md): the allow-lists."""

    allow_hosts: str = Field(
        "", description="Comma-separated host names (or *.suffix) whose private addresses "
        "may be reached.")
    allow_networks: str = Field(
        "", description="Comma-separated CIDRs that may be reached whatever their class.")
    allow_private: bool = Field(
        False, description="Accept RFC 1918 / ULA addresses for every host.")
    allowlist_only: bool = Field(
        False, description="Refuse everything the two allow-lists do not name, public "
        "addresses included.")
    allow_nat64: bool = Field(
        False, description="Accept 64:ff9b::/96 addresses whose IPv4 address is public.")
    allowed_ports: str = Field(
        "", description="Comma-separated ports, e.g. 80,443; empty: any port.")
    ca_bundle: str | None = Field(
        None, description="A PEM file of trusted CAs; unset: certifi's bundle.")

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

    max_redirects: int = Field(
        _FETCH_DEFAULTS.max_redirects, ge=0, le=20,
        description="Redirects a fetch follows (each hop checked again).")
    max_bytes: int = Field(
        0, ge=0, description="Largest fetched body; 0: SQUEEZER_MAX_UPLOAD_BYTES.")
    connect_timeout: float = Field(
        _FETCH_DEFAULTS.connect_timeout, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(
        _FETCH_DEFAULTS.read_timeout, gt=0, description="Seconds without a byte.")
    total_timeout: float = Field(
        _FETCH_DEFAULTS.total_timeout, gt=0, description="Seconds for the whole download.")

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

    connect_timeout: float = Field(
        WEBHOOK_POLICY.connect_timeout, gt=0, description="Seconds to connect.")
    read_timeout: float = Field(
        WEBHOOK_POLICY.read_timeout, gt=0, description="Seconds without a byte of the answer.")
    total_timeout: float = Field(
        WEBHOOK_POLICY.total_timeout, gt=0, description="Seconds for one delivery attempt.")
    attempts: int = Field(8, ge=1, description="Delivery attempts before giving up.")
    backoff_seconds: float = Field(
        5.0, ge=0, description="The first retry delay, doubling (docs/webhooks.md).")

    def policy(self) -> UrlPolicy:
        return self._policy(WEBHOOK_POLICY, "SQUEEZER_WEBHOOK_ALLOWED_PORTS",
                            connect_timeout=self.connect_timeout,
                            read_timeout=self.read_timeout, total_timeout=self.total_timeout)


class ServiceConfig(BaseSettings):
    """What the API promises its clients: files, sync answers, rate limits, links."""

    model_config = _env("SQUEEZER_")

    secret_key: str | None = Field(
        None, repr=False, description="Signs download links (HMAC); unset: a random key kept "
        "in the data directory. Every process of one deployment must share it.")
    public_url: str | None = Field(
        None, description="The address clients use, the base of download links in job JSON "
        "and webhooks; unset: the request's own (workers: http://127.0.0.1:8000).")
    file_ttl_seconds: int = Field(
        7200, gt=0, description="How long uploads, results and finished jobs are kept.")
    max_upload_bytes: int = Field(
        1 << 30, ge=0, description="Largest upload, and largest fetched URL; 0: no limit of "
        "the service's own.")
    max_json_bytes: int = Field(
        1 << 20, ge=1024, description="Largest request body that is not a file upload (JSON, "
        "forms), counted as it arrives; past it: 413.")
    sync_max_bytes: int = Field(
        32 << 20, ge=0, description="Inputs above this are always processed asynchronously "
        "(202 and a job to poll).")
    sync_wait_seconds: float = Field(
        30.0, ge=0, description="How long POST /v1/compress waits for the result before "
        "answering 202.")
    max_wait_seconds: float = Field(
        60.0, ge=0, description="The longest long poll (?wait=N) a client may ask for.")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="A request's line and headers must arrive within this many "
        "seconds (Slowloris), else the connection is closed.")
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="While a body arrives, each window of this many seconds must "
        "bring at least min_upload_bytes_per_second x the window; a stalled or trickling "
        "body is answered 408.")
    min_upload_bytes_per_second: int = Field(
        1024, ge=0, description="The slowest accepted upload rate (see "
        "SQUEEZER_BODY_TIMEOUT_SECONDS); 0: only a stalled body is cut.")
    rate_limit: int = Field(
        100_000, ge=0, description="Requests per key per window, counted in PostgreSQL "
        "(shared by every API process); 0: none.")
    rate_window_seconds: int = Field(
        900, gt=0, description="The rate-limit window.")
    direct_min_bytes: int = Field(
        32 << 20, ge=0, description="With a bucket (S3/GCS/Azure) as storage: downloads of "
        "files at least this large are redirected (307) to a presigned URL of the bucket, so "
        "their bytes never pass through the API; 0: never.")
    direct_upload_seconds: int = Field(
        3600, ge=60, le=7 * 86400, description="How long a presigned upload URL "
        "(POST /v1/uploads) stays valid.")


class WorkerConfig(BaseSettings):
    """How workers run jobs."""

    model_config = _env("SQUEEZER_")

    job_memory_bytes: int = Field(
        4 << 30, ge=0, description="Resident-memory cap of a job's engine child (with its "
        "forked helpers), memory_limit; 0: none.")
    sweep_seconds: int = Field(
        30, gt=0, description="How often the sweep (expiry, stalled jobs, old rate windows) "
        "runs, one worker of the cluster per tick.")
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="After SIGTERM, how long running jobs may finish before they "
        "are stopped and requeued.")
    stalled_seconds: float = Field(
        30.0, gt=0, description="A worker silent this long is presumed dead and its jobs are "
        "requeued; /readyz wants a heartbeat this recent.")
    child_jobs: int = Field(
        100, ge=1, le=10_000, description="Jobs one engine child runs, all for one API key, "
        "before it is replaced. A child runs no other key's job, so nothing one file does to "
        "the process can reach another client's file; it is also replaced after a failed job, "
        "when it holds 512 MiB or a quarter of the memory cap, and after a minute without "
        "work. 1: every job in a fresh child (costs ~30 ms of CPU per job).")


class EngineConfig(BaseSettings):
    """Process-wide engine choices (they change how, never what, an engine compresses)."""

    model_config = _env("SQUEEZER_")

    quantizer: Literal["auto", "pillow"] = Field(
        "auto", validation_alias=AliasChoices("quantizer", "SQUEEZER_QUANTIZER"),
        description="auto: libimagequant when installed; pillow: Pillow's own quantiser "
        "(no GPL code).")


class Config(BaseSettings):
    """Everything a Squeezer process is configured with."""

    model_config = _env("SQUEEZER_")

    data_dir: Path = Field(
        Path("squeezer-data"), description="Where the embedded PostgreSQL, local blobs and "
        "the generated secret key live (relative to the working directory).")
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


def variables() -> list[tuple[str, str, Any, str]]:
    """``(environment variable, setting path, default, meaning)`` for every setting: what
    ``squeezer config --variables`` prints and docs/deploy.md's table is generated from."""
    field = Config.model_fields["data_dir"]
    out: list[tuple[str, str, Any, str]] = [
        ("SQUEEZER_DATA_DIR", "data_dir", field.default, field.description or "")]
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
            description = " ".join((field.description or "").split())
            out.append((variable, f"{section}.{name}", default, description))
    return out


def variables_markdown() -> str:
    """The settings table of docs/deploy.md."""
    rows = ["| variable | setting | default | meaning |", "|---|---|---|---|"]
    for variable, path, default, description in variables():
        shown = "unset" if default is None else f"`{default}`"
        rows.append(f"| `{variable}` | `{path}` | {shown} | {description} |")
    return "\n".join(rows) + "\n"
