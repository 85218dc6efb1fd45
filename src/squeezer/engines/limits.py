"""Resource limits an engine enforces on untrusted input.

Limits are plain data so that the CLI, the API and the job workers can all
build them from configuration (``squeezer.config``) and hand them to an
engine.  Each limit, when hit, raises its own named error from
:mod:`squeezer.engines.errors` before any output is written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Upper bounds for one compression run. ``0`` disables a limit."""

    model_config = ConfigDict(extra="forbid")

    max_input_bytes: int = Field(1 << 30, ge=0, description="Largest input file accepted.")
    max_pages: int = Field(10_000, ge=0, description="Most pages a document may have.")
    max_image_pixels: int = Field(
        200_000_000, ge=0, description="Most pixels (width x height) of one image."
    )
    max_stream_bytes: int = Field(
        512 << 20, ge=0, description="Most bytes one stream may decompress to."
    )
    max_document_bytes: int = Field(
        4 << 30, ge=0, description="Most bytes all image streams of a document may decompress to."
    )
    max_frames: int = Field(
        10_000, ge=0, description="Most frames an animated image (GIF, APNG, WebP) may have."
    )
    max_seconds: float = Field(600.0, ge=0, description="Wall-clock budget for one file.")
    max_archive_members: int = Field(
        20_000, ge=0, description="Most members a container (ZIP, tar, 7z) may have, nested "
        "containers' members included.")
    max_archive_bytes: int = Field(
        4 << 30, ge=0, description="Most bytes a container's members may expand to in total, "
        "nested containers included.")
    max_archive_ratio: int = Field(
        1_000, ge=0, description="Most times a container member (over 1 MiB expanded) may "
        "expand its stored size.")
    max_archive_depth: int = Field(
        4, ge=0, description="Deepest nesting of containers inside containers.")
    max_threads: int = Field(
        0, ge=0, description="Threads one file's image step may use (0: one per core, at most 4)."
    )


DEFAULT_LIMITS = Limits()
