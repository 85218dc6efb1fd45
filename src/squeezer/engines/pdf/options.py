"""The compression options shared by every front door (CLI, API, compat layers).

A request names a ``preset`` and may override any single knob; :meth:`PdfOptions.resolve`
merges the two into the concrete :class:`Settings` the engine runs with, so the
engine never has to know which knob came from where.
"""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


class Preset(str, Enum):
    lossless = "lossless"
    low = "low"
    medium = "medium"
    high = "high"
    extreme = "extreme"


class ColorModel(str, Enum):
    keep = "keep"
    gray = "gray"
    bitonal = "bitonal"


_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> Any:
    """Accept ``2000000``, ``"2MB"``, ``"500k"``, ``"1.5 MiB"`` as byte counts."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use bytes, or e.g. 500KB, 2MB)")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    prefix = unit[:1] if unit[:1] in "kmgt" else ""
    step = 1024 if "i" in unit else 1000
    factor = step ** ("kmgt".index(prefix) + 1) if prefix else 1
    return int(number * factor)


ByteSize = Annotated[int, BeforeValidator(parse_size), Field(gt=0)]


class Settings(BaseModel):
    """Concrete knob values after a preset and overrides are merged."""

    model_config = ConfigDict(frozen=True)

    lossy_images: bool
    dpi: int | None  # target image resolution; None keeps every image's resolution
    image_quality: int  # JPEG quality for photographic images (the cap when image_ssim is set)
    #: per-image SSIM floor: each JPEG gets the lowest quality (at most image_quality) that keeps
    #: it; None means every JPEG is encoded at exactly image_quality
    image_ssim: float | None = None
    color_model: ColorModel
    #: colour detection: RGB images whose pixels are all gray become gray, and colour scans
    #: whose content is gray get gray MRC layers (PassportPDF's EnableColorDetection)
    convert_lossless_gray: bool
    remove_annotations: bool
    remove_metadata: bool
    remove_bookmarks: bool
    remove_embedded_files: bool
    remove_javascript: bool
    remove_form_fields: bool
    linearize: bool
    remove_encryption: bool
    password: str | None
    target_size: int | None
    #: reduce fully embedded TrueType fonts to the glyphs drawn (off in the safe fallback)
    subset_fonts: bool = True
    #: scanned pages whose image is effectively black and white become 1-bit (CCITT G4)
    scan_bitonal: bool = False
    #: colour and gray scanned pages become MRC layers (mask + background + foreground)
    mrc: bool = False
    #: resolution of the MRC background layer
    mrc_background_dpi: int = 100
    #: JPEG quality of the MRC background (the foreground gets 5 less): smooth layers whose
    #: detail is in the mask, so a low quality costs no rendered SSIM (docs/scans.md)
    mrc_quality: int = 50
    #: keep anti-aliased text edges in the MRC background (larger, smoother)
    mrc_preserve_smoothing: bool = False
    #: fixed ink/paper cut (0-255) for bitonal conversion; None = adaptive (Sauvola)
    bitonal_threshold: int | None = None
    #: remove specks and fill pinholes in 1-bit masks (PassportPDF's EnableCharRepair)
    char_repair: bool = False
    #: 1-bit images may be JBIG2 generic regions (lossless) when smaller than CCITT G4
    jbig2: bool = True
    #: lowest rendered SSIM of a re-encoded scan page against the original (else plain path)
    scan_ssim: float = 0.95
    #: XMP keeps only what readers use: editing histories, ancestors, pantries and the
    #: packets of single objects go (metadata.py; medium and above)
    lean_metadata: bool = False


#: What each preset means.  The README's options table is generated from this.
PRESETS: dict[Preset, dict[str, Any]] = {
    Preset.lossless: {"lossy_images": False, "dpi": None, "image_quality": 100, "image_ssim": None},
    Preset.low: {"lossy_images": True, "dpi": 300, "image_quality": 85, "image_ssim": 0.98,
                 "scan_ssim": 0.97},
    Preset.medium: {"lossy_images": True, "dpi": 150, "image_quality": 75, "image_ssim": 0.96,
                    "scan_bitonal": True, "scan_ssim": 0.95, "lean_metadata": True},
    Preset.high: {"lossy_images": True, "dpi": 120, "image_quality": 60, "image_ssim": 0.93,
                  "scan_bitonal": True, "mrc": True, "mrc_background_dpi": 100,
                  "mrc_quality": 40, "scan_ssim": 0.90, "lean_metadata": True},
    Preset.extreme: {"lossy_images": True, "dpi": 96, "image_quality": 45, "image_ssim": 0.88,
                     "scan_bitonal": True, "mrc": True, "mrc_background_dpi": 75,
                     "mrc_quality": 30, "scan_ssim": 0.85, "lean_metadata": True},
}

PRESET_SUMMARIES: dict[Preset, str] = {
    Preset.lossless: "Structure only: pixels untouched, every stream re-packed losslessly.",
    Preset.low: "Images above 300 dpi downsampled, each JPEG at the lowest quality up to 85 "
                "that keeps its SSIM >= 0.98: visually identical.",
    Preset.medium: "Images above 150 dpi downsampled, each JPEG at the lowest quality up to 75 "
                   "that keeps its SSIM >= 0.96: screen and office print.",
    Preset.high: "Images above 120 dpi downsampled, each JPEG at the lowest quality up to 60 "
                 "that keeps its SSIM >= 0.93: screen reading.",
    Preset.extreme: "Images above 96 dpi downsampled, each JPEG at the lowest quality up to 45 "
                    "that keeps its SSIM >= 0.88: smallest, visible loss.",
}

#: The floor the target-size search never goes below.
MIN_DPI = 72
MIN_QUALITY = 30
#: The MRC background is never coarser than this.
MIN_MRC_BACKGROUND_DPI = 50


class PdfOptions(BaseModel):
    """Everything a caller may ask of the PDF engine.

    ``None`` for a knob means "whatever the preset says".
    """

    model_config = ConfigDict(extra="forbid", use_enum_values=False)

    preset: Preset = Preset.medium
    dpi: int | None = Field(None, ge=MIN_DPI, le=2400, description="Target image resolution.")
    image_quality: int | None = Field(None, ge=1, le=100, description="JPEG quality, 1-100.")
    color_model: ColorModel = ColorModel.keep
    remove_annotations: bool = False
    remove_metadata: bool = False
    remove_bookmarks: bool = False
    remove_embedded_files: bool = False
    remove_javascript: bool = False
    remove_form_fields: bool = False
    linearize: bool = False
    remove_encryption: bool = Field(
        False, description="Write the output unencrypted (default: keep the input's encryption)."
    )
    password: str | None = Field(None, repr=False, description="Password to open the input.")
    target_size: ByteSize | None = Field(None, description="Aim for at most this many bytes.")
    mrc: bool | None = Field(
        None, description="Split colour and gray scans into MRC layers (default: on in high and "
        "extreme).")
    mrc_background_dpi: int | None = Field(
        None, ge=MIN_MRC_BACKGROUND_DPI, le=600,
        description="Resolution of the MRC background layer (default: 100 in high, 75 in extreme).")
    mrc_preserve_smoothing: bool = Field(
        False, description="Keep anti-aliased text edges in the MRC background (larger files).")
    bitonal_threshold: int | None = Field(
        None, ge=1, le=254, description="Fixed ink/paper cut for bitonal conversion "
        "(default: adaptive, Sauvola).")
    char_repair: bool = Field(
        False, description="Remove specks and fill pinholes in bitonal images and MRC masks.")
    color_detection: bool = Field(
        True, description="Store colour images and scans whose content is gray as gray; false "
        "keeps every colour image in colour.")
    jbig2: bool = Field(
        True, description="Code 1-bit images as JBIG2 generic regions (lossless) when smaller "
        "than CCITT G4; false keeps G4 (for readers older than PDF 1.4).")

    def resolve(self) -> Settings:
        base = dict(PRESETS[self.preset])
        if self.dpi is not None:
            base["dpi"] = self.dpi
            base["lossy_images"] = True
        if self.image_quality is not None:
            # an explicit quality is a fixed quality: no per-image search
            base["image_quality"] = self.image_quality
            base["mrc_quality"] = self.image_quality
            base["image_ssim"] = None
            base["lossy_images"] = True
        if self.mrc is not None:
            base["mrc"] = self.mrc
            base["lossy_images"] = base["lossy_images"] or self.mrc
            base.setdefault("scan_ssim", 0.90)
        if self.mrc_background_dpi is not None:
            base["mrc_background_dpi"] = self.mrc_background_dpi
        if self.color_model == ColorModel.bitonal:
            base["scan_bitonal"] = True
        return Settings(
            **base,
            color_model=self.color_model,
            convert_lossless_gray=self.color_detection,
            remove_annotations=self.remove_annotations,
            remove_metadata=self.remove_metadata,
            remove_bookmarks=self.remove_bookmarks,
            remove_embedded_files=self.remove_embedded_files,
            remove_javascript=self.remove_javascript,
            remove_form_fields=self.remove_form_fields,
            linearize=self.linearize,
            remove_encryption=self.remove_encryption,
            password=self.password,
            target_size=self.target_size,
            mrc_preserve_smoothing=self.mrc_preserve_smoothing,
            bitonal_threshold=self.bitonal_threshold,
            char_repair=self.char_repair,
            jbig2=self.jbig2,
        )
