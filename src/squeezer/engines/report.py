"""What a compression run did, as plain JSON-serialisable data.

The same report is printed by the CLI (``--json``), stored with API jobs and
shown on the web page, so it carries facts, not presentation.
"""

from __future__ import annotations

from pydantic import BaseModel, Field


class ImageStats(BaseModel):
    seen: int = 0
    recompressed: int = 0
    skipped: int = 0
    downsampled: int = 0
    to_jpeg: int = 0
    to_flate: int = 0
    to_ccitt: int = 0
    to_jbig2: int = 0
    to_gray: int = 0
    deduplicated: int = 0


class ScanPage(BaseModel):
    """What the scan step decided for one scanned page (see ``engines.pdf.scans``)."""

    page: int  #: 1-based page number
    #: what the page image holds: "bitonal", "gray_text", "color_text" or "photo"
    content: str
    ocr_layer: bool = False  #: an invisible text layer is drawn over the image
    dpi: float = 0.0  #: the image's resolution where the page draws it
    resampled: bool = False  #: brought down to 300 dpi before re-encoding
    #: "mrc" (mask + background + foreground), "bitonal" (1-bit G4) or "plain" (image step)
    method: str = "plain"
    reason: str | None = None  #: why a page stayed on the plain path
    codec: str | None = None  #: the 1-bit coder of a bitonal page or an MRC mask: ccitt, jbig2
    ssim: float | None = None  #: rendered SSIM of the re-encoded page against the original
    bytes_before: int = 0
    bytes_after: int = 0


class RunReport(BaseModel):
    """What every engine's report says: sizes, what was kept or changed, and how it went."""

    input_bytes: int
    output_bytes: int = 0
    ratio: float = 1.0  # output_bytes / input_bytes
    original_kept: bool = False
    #: requested changes that found something to change ("metadata", "javascript",
    #: "linearize", "encryption", "resize", "convert", ...); such a result is kept even when
    #: not smaller
    requested_changes: list[str] = Field(default_factory=list)
    target_size: int | None = None
    target_reached: bool | None = None
    settings: dict[str, object] = Field(default_factory=dict)
    warnings: list[str] = Field(default_factory=list)
    elapsed_seconds: float = 0.0
    engine_versions: dict[str, str] = Field(default_factory=dict)

    @property
    def saved_bytes(self) -> int:
        return self.input_bytes - self.output_bytes

    def finish(self, output_bytes: int) -> None:
        self.output_bytes = output_bytes
        self.ratio = round(output_bytes / self.input_bytes, 6) if self.input_bytes else 1.0


class Report(RunReport):
    """The outcome of one PDF compression."""

    pages: int = 0
    images: ImageStats = Field(default_factory=ImageStats)
    fonts_deduplicated: int = 0
    #: bytes saved by each step, measured by saving after it (step name -> bytes)
    steps: dict[str, int] = Field(default_factory=dict)
    #: how many pages are scans ("scan") and how many are drawn ("vector")
    pages_classified: dict[str, int] = Field(default_factory=dict)
    #: one entry per scanned page: its content class and how it was encoded
    scan_pages: list[ScanPage] = Field(default_factory=list)
    #: how a damaged input was repaired before compression (None: it opened as it was)
    repaired: str | None = None
    #: embedded fonts kept whole because form fields may type any character with them
    fonts_kept_whole: list[str] = Field(default_factory=list)
