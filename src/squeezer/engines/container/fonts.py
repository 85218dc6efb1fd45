"""Font subsetting for e-books, Word and OpenDocument documents (fontTools, as the PDF engine's font step uses).

A font whose ``OS/2.fsType`` forbids subsetting (bit 8) is kept whole.  Every layout feature, hinting instruction, name record and the ``.notdef``
glyph are kept; only glyphs no kept character reaches (through cmap and GSUB)
go.  WOFF and WOFF2 stay WOFF and WOFF2.  A font fontTools cannot read, or whose
subset is not smaller, is kept as it is.
"""

from __future__ import annotations

import io


def subset(data: bytes, chars: set[int]) -> bytes | None:
    try:
        import logging

        from fontTools import subset as ft_subset
        from fontTools.ttLib import TTFont

        # its warnings ("FFTM NOT subset; don't know how to subset; dropped": FontForge's own
        # tables, nothing a renderer reads) would land on the CLI's stderr
        logging.getLogger("fontTools.subset").setLevel(logging.ERROR)

        font = TTFont(io.BytesIO(data), lazy=False, recalcBBoxes=False, recalcTimestamp=False)
        if "OS/2" in font and font["OS/2"].fsType & 0x0100:
            return None  # the font's licence bits say: no subsetting
        flavor = font.flavor
        options = ft_subset.Options()
        options.layout_features = ["*"]
        options.name_IDs = ["*"]
        options.name_languages = ["*"]
        options.name_legacy = True
        options.notdef_outline = True
        options.glyph_names = True
        options.hinting = True
        options.legacy_kern = True
        options.symbol_cmap = True
        options.prune_unicode_ranges = False
        options.recalc_timestamp = False
        options.ignore_missing_glyphs = True
        options.ignore_missing_unicodes = True
        options.flavor = flavor
        subsetter = ft_subset.Subsetter(options)
        subsetter.populate(unicodes=sorted(chars))
        subsetter.subset(font)
        out = io.BytesIO()
        font.flavor = flavor
        font.save(out)
    except Exception:  # noqa: BLE001 - fontTools refusing a font leaves it as it is
        return None
    result = out.getvalue()
    return result if len(result) < len(data) else None


def deobfuscate(data: bytes, key: bytes) -> bytes:
    """An OOXML embedded font (``.odttf``) and back: its first 32 bytes XOR the 16-byte key
    (ECMA-376 part 1, §17.8.1, "Embedded Font Obfuscation"); the operation is its own inverse."""
    head = bytes(b ^ key[i % 16] for i, b in enumerate(data[:32]))
    return head + data[32:]


def font_key(guid: str) -> bytes | None:
    """The 16 key bytes of a ``w:fontKey`` GUID: its hex digits read from the last pair to the
    first (the spec's byte order); None when it is not a GUID."""
    digits = guid.strip("{}").replace("-", "")
    if len(digits) != 32:
        return None
    try:
        return bytes.fromhex(digits)[::-1]
    except ValueError:
        return None
