"""The PDF engine's options: its group of the options model and what each level means for it.

A request names a level (:class:`~squeezer.engines.level.Level`) and may
override single knobs in its ``pdf`` group; :func:`resolve` merges the level's
row of :data:`LEVELS`, the group and the common options into the concrete
:class:`Settings` the engine runs with, so the engine never has to know which
knob came from where.  Fields of the same name are carried over by name, not
copied one by one: a knob is declared once in :class:`PdfOptions` (what a
caller may say) and once in :class:`Settings` (what the engine runs with).
"""

from __future__ import annotations

from enum import Enum
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from squeezer.engines.level import Level
from squeezer.engines.optiontypes import OptionGroup

if TYPE_CHECKING:
    from squeezer.engines.options import Options


class ColorModel(str, Enum):
    keep = "keep"
    gray = "gray"
    bitonal = "bitonal"


#: The floor the target-size search never goes below.
MIN_DPI = 72
MIN_QUALITY = 30
#: The MRC background is never coarser than this.
MIN_MRC_BACKGROUND_DPI = 50


class PdfLevel(BaseModel):
    """What one level means for a PDF: a row of :data:`LEVELS`."""

    model_config = ConfigDict(frozen=True)

    summary: str  #: one plain sentence for people choosing a level
    lossy_images: bool
    dpi: int | None  #: images drawn above this resolution are downsampled to it
    image_quality: int  #: the JPEG quality cap of the per-image search
    image_ssim: float | None  #: the per-image SSIM floor of that search
    scan_bitonal: bool = False
    mrc: bool = False
    mrc_background_dpi: int = 100
    mrc_quality: int = 50
    scan_ssim: float = 0.95
    #: XMP keeps only what readers use (metadata.py): on from medium
    lean_metadata: bool = False


#: What each level means for a PDF (docs/options.md and ``GET /v1/options`` show the summaries).
LEVELS: dict[Level, PdfLevel] = {
    Level.lossless: PdfLevel(
        summary="Pixels untouched: the file is only re-packed and cleaned, losslessly.",
        lossy_images=False, dpi=None, image_quality=100, image_ssim=None),
    Level.low: PdfLevel(
        summary="Looks identical: images above 300 dpi scaled down, photos re-encoded only as "
                "far as they stay visually the same (SSIM at least 0.98).",
        lossy_images=True, dpi=300, image_quality=85, image_ssim=0.98, scan_ssim=0.97),
    Level.medium: PdfLevel(
        summary="For screens and office printing: images above 150 dpi scaled down, photos at "
                "the lowest quality that keeps SSIM at least 0.96, black-and-white scans as 1-bit.",
        lossy_images=True, dpi=150, image_quality=75, image_ssim=0.96, scan_bitonal=True,
        scan_ssim=0.95, lean_metadata=True),
    Level.high: PdfLevel(
        summary="For reading on screen: images above 120 dpi scaled down, photos at SSIM 0.93 "
                "or better, colour scans split into text and background layers.",
        lossy_images=True, dpi=120, image_quality=60, image_ssim=0.93, scan_bitonal=True,
        mrc=True, mrc_background_dpi=100, mrc_quality=40, scan_ssim=0.90, lean_metadata=True),
    Level.extreme: PdfLevel(
        summary="Smallest, with visible loss: images above 96 dpi scaled down, photos at SSIM "
                "0.88 or better, scans as layers with a 75 dpi background.",
        lossy_images=True, dpi=96, image_quality=45, image_ssim=0.88, scan_bitonal=True,
        mrc=True, mrc_background_dpi=75, mrc_quality=30, scan_ssim=0.85, lean_metadata=True),
}


class PdfOptions(OptionGroup):
    """PDF options. ``None`` for a knob means "whatever the level says"."""

    title: ClassVar[str] = "PDFs"
    flat: ClassVar[bool] = True

    dpi: int | None = Field(
        None, ge=MIN_DPI, le=2400,
        description="Downsample images drawn above this resolution to it (default: the level's).")
    image_quality: int | None = Field(
        None, ge=1, le=100,
        description="A fixed JPEG quality for photographic images instead of the level's search.")
    color_model: ColorModel = Field(
        ColorModel.keep, description="keep the colours, or turn every image gray or 1-bit "
        "black and white.")
    remove_annotations: bool = Field(
        False, description="Drop comments, links and other annotations (not form fields).")
    remove_bookmarks: bool = Field(False, description="Drop the outline (bookmarks).")
    remove_embedded_files: bool = Field(
        False, description="Drop attachments and associated files.")
    remove_javascript: bool = Field(
        False, description="Drop document JavaScript and JavaScript actions.")
    remove_form_fields: bool = Field(
        False, description="Flatten form fields into the page and drop the interactive form.")
    linearize: bool = Field(False, description='Write a linearized ("fast web view") file.')
    remove_encryption: bool = Field(
        False, description="Write the output unencrypted (default: keep the input's encryption).")
    mrc: bool | None = Field(
        None, description="Split colour and gray text scans into MRC layers (mask, background, "
        "foreground); default: on in high and extreme.")
    mrc_background_dpi: int | None = Field(
        None, ge=MIN_MRC_BACKGROUND_DPI, le=600,
        description="Resolution of the MRC background layer (default: 100 in high, 75 in extreme).")
    mrc_preserve_smoothing: bool = Field(
        False, description="Keep anti-aliased text edges in the MRC background (larger files).")
    bitonal_threshold: int | None = Field(
        None, ge=1, le=254, description="Fixed ink/paper cut for 1-bit conversion "
        "(default: adaptive, Sauvola).")
    char_repair: bool = Field(
        False, description="Remove specks and fill pinholes in 1-bit images and MRC masks.")
    color_detection: bool = Field(
        True, description="Store colour images and scans whose content is gray as gray; false "
        "keeps every colour image in colour.")
    jbig2: bool = Field(
        True, description="Code 1-bit images as JBIG2 generic regions (lossless) when smaller "
        "than CCITT G4; false keeps G4 (for readers older than PDF 1.4).")


class Settings(BaseModel):
    """Concrete knob values after a level, the ``pdf`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level = Level.medium
    lossy_images: bool
    dpi: int | None  # target image resolution; None keeps every image's resolution
    image_quality: int  # JPEG quality for photographic images (the cap when image_ssim is set)
    #: per-image SSIM floor: each JPEG gets the lowest quality (at most image_quality) that keeps
    #: it; None means every JPEG is encoded at exactly image_quality
    image_ssim: float | None = None
    color_model: ColorModel = ColorModel.keep
    #: colour detection: RGB images whose pixels are all gray become gray, and colour scans
    #: whose content is gray get gray MRC layers (PassportPDF's EnableColorDetection)
    color_detection: bool = True
    remove_annotations: bool = False
    remove_metadata: bool = False
    remove_bookmarks: bool = False
    remove_embedded_files: bool = False
    remove_javascript: bool = False
    remove_form_fields: bool = False
    linearize: bool = False
    remove_encryption: bool = False
    password: str | None = None
    target_size: int | None = None
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


#: ``pdf`` group knobs whose ``None`` means "the level's value"; the others are carried as given
LEVEL_KNOBS = frozenset({"dpi", "image_quality", "mrc", "mrc_background_dpi"})
#: common options the PDF engine runs with
COMMON = frozenset({"level", "remove_metadata", "password", "target_size"})


def resolve(options: Options) -> Settings:
    """The engine's :class:`Settings` for ``options`` (level row, then the group, then common)."""
    group = options.pdf
    values = LEVELS[options.level].model_dump(exclude={"summary"})
    values.update(group.model_dump(exclude=set(LEVEL_KNOBS)))
    values.update(options.model_dump(include=set(COMMON)))
    if group.dpi is not None:
        values.update(dpi=group.dpi, lossy_images=True)
    if group.image_quality is not None:
        # an explicit quality is a fixed quality: no per-image search
        values.update(image_quality=group.image_quality, mrc_quality=group.image_quality,
                      image_ssim=None, lossy_images=True)
    if group.mrc is not None:
        values.update(mrc=group.mrc, lossy_images=values["lossy_images"] or group.mrc)
        if group.mrc and options.level is Level.lossless:
            values["scan_ssim"] = 0.90
    if group.mrc_background_dpi is not None:
        values["mrc_background_dpi"] = group.mrc_background_dpi
    if group.color_model is ColorModel.bitonal:
        values["scan_bitonal"] = True
    return Settings(**values)
