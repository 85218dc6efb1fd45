"""The container engine's options: its ``archive`` group and what each level means for it.

A container's members go to their own engines (images to the image engine,
PDFs to the PDF engine, video and audio to the media engine when it is
installed) at the requested level, with the ``image``/``pdf``/… groups of the
same request; this group says what happens to the container itself.
:func:`resolve` merges the level's row of :data:`LEVELS`, the group and the
common options into :class:`ArchiveSettings` (the pattern of
:mod:`squeezer.engines.image.options`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from squeezer.engines.level import Level
from squeezer.engines.optiontypes import OptionGroup

if TYPE_CHECKING:
    from squeezer.engines.options import Options


class ArchiveLevel(BaseModel):
    """What one level means for a container: a row of :data:`LEVELS`."""

    model_config = ConfigDict(frozen=True)

    summary: str  #: one plain sentence for people choosing a level
    #: members go to their engines at this level (lossless: our own lossless re-packers only)
    lossy: bool
    #: images are brought down to this many pixels per inch of the size the document shows
    #: them at (OOXML drawing extents, ODF frame sizes); None: never resized
    display_dpi: int | None
    #: longest side of an EPUB's images (reflowable pages have no fixed size)
    ebook_max_side: int | None
    #: media no part refers to, and package thumbnails, are dropped
    drop_unused: bool
    #: EPUB fonts are subset to the characters the book uses
    subset_fonts: bool
    #: HTML, CSS and JavaScript of website bundles are minified
    minify: bool
    #: a photo stored as PNG (or BMP/TIFF) becomes a JPEG where the format lets references
    #: follow the new name (OOXML, ODF)
    convert_photos: bool
    #: office documents' first pages are drawn before and after by LibreOffice, when it is
    #: installed, and compared (lossless changes no pixel: nothing to draw)
    render_check: bool = True


#: What each level means for a container (docs/containers.md has the measured numbers).
LEVELS: dict[Level, ArchiveLevel] = {
    Level.lossless: ArchiveLevel(
        summary="Every member's content kept (pixels, text): re-packed with the best deflate, "
                "images and PDFs optimised losslessly, duplicates merged, XML/JSON whitespace "
                "the format ignores dropped.",
        lossy=False, display_dpi=None, ebook_max_side=None, drop_unused=False,
        subset_fonts=False, minify=False, convert_photos=False, render_check=False),
    Level.low: ArchiveLevel(
        summary="Members at their engines' low level, images brought down to 300 dpi of their "
                "displayed size, unused media and thumbnails dropped, websites minified.",
        lossy=True, display_dpi=300, ebook_max_side=3200, drop_unused=True, subset_fonts=True,
        minify=True, convert_photos=True),
    Level.medium: ArchiveLevel(
        summary="Members at their engines' medium level, images at 220 dpi of their displayed "
                "size, unused media and thumbnails dropped, fonts subset, websites minified.",
        lossy=True, display_dpi=220, ebook_max_side=2400, drop_unused=True, subset_fonts=True,
        minify=True, convert_photos=True),
    Level.high: ArchiveLevel(
        summary="Members at their engines' high level, images at 150 dpi of their displayed "
                "size.",
        lossy=True, display_dpi=150, ebook_max_side=1800, drop_unused=True, subset_fonts=True,
        minify=True, convert_photos=True),
    Level.extreme: ArchiveLevel(
        summary="Members at their engines' extreme level, images at 110 dpi of their "
                "displayed size; visible loss.",
        lossy=True, display_dpi=110, ebook_max_side=1400, drop_unused=True, subset_fonts=True,
        minify=True, convert_photos=True),
}


class ArchiveOptions(OptionGroup):
    """Office documents, e-books, archives and website bundles (OOXML, ODF, EPUB, ZIP, tar,
    gzip, 7z)."""

    title: ClassVar[str] = "Documents, e-books and archives"

    drop_signatures: bool = Field(
        False, description="Re-pack signed packages (JAR, APK, signed OOXML/ODF/EPUB) and "
        "remove their signatures, which re-packing invalidates; off: a signed package is left "
        "byte-identical.")
    display_dpi: int | None = Field(
        None, ge=72, le=1200, description="Bring images down to this many pixels per inch of "
        "the size the document shows them at (default: the level's; lossless never resizes).")
    drop_unused: bool | None = Field(
        None, description="Drop media no part refers to and package thumbnails (default: on "
        "above lossless).")
    minify: bool | None = Field(
        None, description="Minify the HTML, CSS and JavaScript of website bundles, never "
        "changing what a browser renders (default: on above lossless).")
    precompress: bool = Field(
        False, description="Add .br and .gz siblings of a website bundle's text files for "
        "static hosting (the bundle then grows).")
    recurse: bool = Field(
        True, description="Compress the archives and documents inside an archive too.")
    zopfli: bool = Field(
        False, description="Deflate with zopfli: a few percent smaller, tens of times slower.")
    write_7z: bool = Field(
        False, description="Re-write 7z archives with their members compressed; off: a 7z is "
        "read, checked and kept as it is.")
    render_check: bool | None = Field(
        None, description="Draw the first page of office documents before and after with "
        "LibreOffice, when it is installed, and keep the input if they differ (SSIM below 0.9) "
        "(default: on above lossless).")


class ArchiveSettings(BaseModel):
    """Concrete values after a level, the ``archive`` group and the common options are merged."""

    model_config = ConfigDict(frozen=True)

    level: Level
    lossy: bool
    display_dpi: int | None
    ebook_max_side: int | None
    drop_unused: bool
    subset_fonts: bool
    minify: bool
    convert_photos: bool
    drop_signatures: bool
    precompress: bool
    recurse: bool
    zopfli: bool
    write_7z: bool
    render_check: bool = False
    remove_metadata: bool = False


def resolve(options: Options) -> ArchiveSettings:
    """The engine's :class:`ArchiveSettings` for ``options``."""
    group = options.archive
    row = LEVELS[options.level]
    values: dict[str, Any] = row.model_dump(exclude={"summary"})
    values.update({name: value for name, value in group.model_dump().items()
                   if value is not None and name in ArchiveSettings.model_fields})
    values.update(level=options.level, remove_metadata=options.remove_metadata)
    if not row.lossy and group.display_dpi is None:
        values["display_dpi"] = None
    return ArchiveSettings(**values)
