"""Resource limits an engine enforces on untrusted input.

Limits are plain data so that the CLI, the API and the job workers can all
build them from configuration (``squeezer.config``) and hand them to an
engine.  Each limit, when hit, raises its own named error from
:mod:`squeezer.engines.errors` before any output is written.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

#: Default address-space cap of ``squeezer compress`` and ``analyze`` processes (RLIMIT_AS).
CLI_MEMORY_BYTES = 4 << 30


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

    max_media_seconds: float = Field(
        4 * 3600.0, ge=0, description="Longest video or audio accepted (seconds of media).")
    max_video_pixels: int = Field(
        8192 * 4352, ge=0, description="Most pixels (width x height) of one video frame.")
    max_video_frames: int = Field(
        1_000_000, ge=0, description="Most frames a video may have (about 9 hours at 30 fps).")
    max_media_streams: int = Field(
        64, ge=0, description="Most streams (video, audio, subtitle tracks) a media file may have.")
    max_output_bytes: int = Field(
        4 << 30, ge=0, description="Largest output a conversion may write (a result that must "
        "be smaller than its input is capped at the input's size).")
    max_seconds_per_media_second: float = Field(
        4.0, ge=0, description="Processing time a video or audio may take per second of its "
        "duration, when that is more than max_seconds (a 10-minute video: up to 40 minutes).")
    max_media_memory_bytes: int = Field(
        3 << 30, ge=0, description="Memory (data segment) the ffmpeg program may use.")

    def media_deadline_seconds(self, duration: float) -> float:
        """The time budget of a media file ``duration`` seconds long (0: no limit)."""
        if not self.max_seconds:
            return 0.0
        return max(self.max_seconds, self.max_seconds_per_media_second * duration)


DEFAULT_LIMITS = Limits()
