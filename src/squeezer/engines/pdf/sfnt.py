"""The table directory of a TrueType or OpenType program, read and written with :mod:`struct`.

Counting a program's glyphs decides whether a font is worth subsetting at all; doing it with
fontTools and numpy cost a cold ``squeezer compress`` of a one-page text PDF ~0.2 s of imports
(issue 18) for a number that sits in two small tables.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Sequence

#: The first four bytes of the programs read here (TrueType, Apple TrueType, OpenType CFF).
SFNT_VERSIONS = (b"\x00\x01\x00\x00", b"true", b"OTTO")

# The tables no PDF reader uses, named once for every step that drops them (fonttables from
# any embedded program, glyfcut from the programs it cuts, the fontTools subsetter's options):
#: text shaping and math layout: a PDF content stream places glyphs already laid out
SHAPING = frozenset({"GSUB", "GPOS", "GDEF", "BASE", "JSTF", "kern", "MATH"})
#: GDI's hinted advances per pixel size (hdmx), line heights per size (VDMX), the size from
#: which hinting stops changing widths (LTSH), a printer's metrics (PCLT): a PDF places every
#: glyph by its /Widths, and FreeType's interpreter (PDFium, MuPDF), pdf.js and Ghostscript
#: draw outlines without them
DEVICE = frozenset({"hdmx", "VDMX", "LTSH", "PCLT"})
#: embedded bitmap strikes: PDFium, MuPDF and Poppler load glyphs with FT_LOAD_NO_BITMAP and
#: pdf.js draws outlines, so they go from programs whose outlines draw every glyph anyway
BITMAPS = frozenset({"EBDT", "EBLC", "EBSC"})
#: outline tables: a program with one of them may lose its bitmaps
OUTLINES = frozenset({"glyf", "CFF ", "CFF2"})


def directory(data: bytes, *, strict: bool = False) -> dict[bytes, tuple[int, int]]:
    """Each table's (offset, length) by tag; ValueError when the directory does not parse
    (``strict``: also when a table runs past the end of the program)."""
    if len(data) < 12 or data[:4] not in SFNT_VERSIONS:
        raise ValueError("not a TrueType or OpenType program")
    (count,) = struct.unpack_from(">H", data, 4)
    if 12 + 16 * count > len(data):
        raise ValueError("table directory runs past the end")
    found = {}
    for i in range(count):
        tag, _checksum, offset, length = struct.unpack_from(">4sIII", data, 12 + 16 * i)
        if strict and offset + length > len(data):
            raise ValueError(f"table {tag!r} runs past the end")
        found[tag] = (offset, length)
    return found


def checksum(data: bytes) -> int:
    """The sfnt table checksum: the sum of big-endian 32-bit words, zero-padded."""
    data += bytes(-len(data) % 4)
    return sum(struct.unpack(f">{len(data) // 4}I", data)) & 0xFFFFFFFF


def assemble(version: bytes, tables: dict[bytes, bytes],
             order: Sequence[bytes] | None = None) -> bytes:
    """An sfnt program of ``tables``: the directory sorted by tag, the tables in ``order``
    (by tag when None; fontTools' ``save(reorderTables=False)`` keeps the program's own
    order), each padded to 4 bytes, and ``head``'s checkSumAdjustment set for the whole
    (the ``head`` checksum taken with it zero, as the spec says)."""
    if b"head" in tables:
        head = tables[b"head"]
        tables = {**tables, b"head": head[:8] + bytes(4) + head[12:]}
    tags = sorted(tables)
    count = len(tags)
    exponent = max(count.bit_length() - 1, 0)
    search_range = 16 << exponent
    header = version + struct.pack(">HHHH", count, search_range, exponent,
                                   max(0, 16 * count - search_range))
    start = 12 + 16 * count
    offsets: dict[bytes, int] = {}
    body = bytearray()
    for tag in tags if order is None else order:
        offsets[tag] = start + len(body)
        body += tables[tag] + bytes(-len(tables[tag]) % 4)
    entries = b"".join(struct.pack(">4sIII", tag, checksum(tables[tag]), offsets[tag],
                                   len(tables[tag])) for tag in tags)
    font = bytearray(header + entries + body)
    if b"head" in tables:
        struct.pack_into(">I", font, offsets[b"head"] + 8,
                         (0xB1B0AFBA - checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)


def tables(data: bytes) -> dict[bytes, bytes]:
    """Each table's bytes by tag (as far as the program has them; ValueError when the
    directory does not parse)."""
    return {tag: data[offset:offset + length]
            for tag, (offset, length) in directory(data).items()}


def outlined_glyphs(data: bytes) -> int:
    """How many glyphs have outline data: glyphs whose ``loca`` entry spans bytes (TrueType),
    else ``maxp``'s glyph count (CFF flavoured OpenType).  ValueError when it cannot tell."""
    found = tables(data)
    loca, head = found.get(b"loca"), found.get(b"head")
    if loca is not None and head is not None:
        if len(head) < 54:
            raise ValueError("head table too short")
        (wide,) = struct.unpack_from(">h", head, 50)
        size = 4 if wide else 2
        if len(loca) % size:
            raise ValueError("loca table of a partial entry")
        offsets = struct.unpack(f">{len(loca) // size}{'I' if wide else 'H'}", loca)
        return sum(1 for a, b in itertools.pairwise(offsets) if b > a)
    maxp = found.get(b"maxp")
    if maxp is None or len(maxp) < 6:
        raise ValueError("no glyph count")
    return int(struct.unpack_from(">H", maxp, 4)[0])
