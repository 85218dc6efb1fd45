"""Configuration: every knob is also an environment variable ``SQUEEZER_*``.

Engine limits live here so that the CLI and (later) the service build the
same :class:`~squeezer.engines.limits.Limits` from the same variables, e.g.
``SQUEEZER_MAX_PAGES=2000``.
"""

from __future__ import annotations

from pathlib import Path

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

    def limits(self) -> Limits:
        return Limits(**{name: getattr(self, name) for name in Limits.model_fields})


def load() -> Config:
    return Config()
