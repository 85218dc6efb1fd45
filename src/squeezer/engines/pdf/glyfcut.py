"""A TrueType program cut to some of its glyphs, every glyph keeping its id.

A CID-keyed TrueType font (``CIDFontType2``) reaches its glyphs by id, through the
font's ``/CIDToGIDMap``, so cutting it needs no renumbering: the glyphs no page
draws are emptied in ``glyf`` (their ``loca`` entries span no bytes), the glyphs past
the last one kept are cut off, the metrics, ``cmap`` and ``post`` names of the cut
glyphs go, and so do the tables no PDF reader uses (:data:`DROPPED`); every other
table stays byte for byte but ``name``, whose Macintosh records go.  That is a table rewrite with :mod:`struct`;
fontTools' subsetter did the same job at ~70 ms of imports and ~100 ms of parsing
and compiling per font, the largest part of a cold ``squeezer compress`` of a short
Word document (issue 18).  A kept glyph's bytes are copied unchanged, so it draws
the same outline by construction; a program this module cannot read plainly
(offsets out of order or out of range, tables that disagree, a composite glyph that
runs past its end) raises :class:`Unreadable`, and the caller falls back to fontTools.
"""

from __future__ import annotations

import itertools
import struct

from squeezer.engines.pdf import sfnt

#: Tables dropped from a cut program: those no PDF reader uses (:mod:`sfnt`: shaping, device
#: metrics, bitmap strikes; several index glyphs past the ones a cut keeps), AAT and Graphite
#: shaping, the signature (which no longer matches), metadata.
DROPPED = frozenset(tag.encode("latin-1") for tag in sfnt.SHAPING | sfnt.DEVICE | sfnt.BITMAPS | {
    "morx", "mort", "feat", "Feat", "Glat", "Gloc", "Silf", "Sill", "DSIG", "meta", "FFTM"})
#: Tables that index glyphs in ways this module does not rewrite: with any of them the
#: program keeps its glyph count (the glyphs past the last one kept are emptied, not cut off).
_COUNTED = (b"CBLC", b"CBDT", b"sbix", b"COLR", b"SVG ", b"VORG",
            b"gvar", b"fvar", b"HVAR", b"VVAR", b"MVAR", b"CFF ", b"CFF2", b"bloc", b"bdat")

# composite glyph component flags (the 'glyf' table of the OpenType specification)
_ARG_1_AND_2_ARE_WORDS = 0x0001
_WE_HAVE_A_SCALE = 0x0008
_MORE_COMPONENTS = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE = 0x0040
_WE_HAVE_A_TWO_BY_TWO = 0x0080


class Unreadable(ValueError):
    """The program is not one this module cuts (the caller uses another way, or none)."""


def _directory(data: bytes) -> dict[bytes, tuple[int, int]]:
    try:
        return sfnt.directory(data, strict=True)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None


def glyph_count(data: bytes) -> int:
    """``maxp``'s glyph count (:class:`Unreadable` without one)."""
    directory = _directory(data)
    if b"maxp" not in directory or directory[b"maxp"][1] < 6:
        raise Unreadable("no maxp table")
    return int(struct.unpack_from(">H", data, directory[b"maxp"][0] + 4)[0])


def _components(glyph: bytes) -> list[int]:
    """The glyph ids a composite glyph is made of ([] for a simple or empty glyph)."""
    if len(glyph) < 10 or struct.unpack_from(">h", glyph, 0)[0] >= 0:
        return []
    found, at = [], 10
    while True:
        if at + 4 > len(glyph):
            raise Unreadable("a composite glyph runs past its end")
        flags, gid = struct.unpack_from(">HH", glyph, at)
        found.append(gid)
        at += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
        if flags & _WE_HAVE_A_SCALE:
            at += 2
        elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
            at += 4
        elif flags & _WE_HAVE_A_TWO_BY_TWO:
            at += 8
        if not flags & _MORE_COMPONENTS:
            return found


def cut(data: bytes, keep: set[int]) -> tuple[bytes, set[int]]:
    """``data`` with only the glyphs ``keep`` (plus .notdef and the parts of kept composite
    glyphs) left in ``glyf``, every glyph id unchanged; and the ids kept.

    Raises :class:`Unreadable` for a program it does not cut.
    """
    directory = _directory(data)
    if data[:4] == b"OTTO":
        raise Unreadable("CFF outlines")
    if b"glyf" not in directory or b"loca" not in directory or b"head" not in directory:
        raise Unreadable("no TrueType outlines")
    head_at, head_length = directory[b"head"]
    if head_length < 54:
        raise Unreadable("head table too short")
    (wide,) = struct.unpack_from(">h", data, head_at + 50)
    loca_at, loca_length = directory[b"loca"]
    size = 4 if wide else 2
    count = loca_length // size - 1
    if count < 1:
        raise Unreadable("empty loca table")
    offsets = struct.unpack_from(f">{count + 1}{'I' if wide else 'H'}", data, loca_at)
    if not wide:
        offsets = tuple(2 * o for o in offsets)
    glyf_at, glyf_length = directory[b"glyf"]
    if any(b < a for a, b in itertools.pairwise(offsets)) or offsets[-1] > glyf_length:
        raise Unreadable("loca offsets out of order or past glyf")
    if glyph_count(data) != count:
        raise Unreadable("maxp and loca count different glyphs")
    for header_tag, metrics_tag in ((b"hhea", b"hmtx"), (b"vhea", b"vmtx")):
        if header_tag in directory or metrics_tag in directory:
            header = data[slice(directory[header_tag][0], sum(directory[header_tag]))] \
                if header_tag in directory else b""
            metrics_length = directory.get(metrics_tag, (0, 0))[1]
            longs = struct.unpack_from(">H", header, 34)[0] if len(header) >= 36 else 0
            if not 0 < longs <= count or metrics_length < 4 * longs + 2 * (count - longs):
                raise Unreadable(f"{metrics_tag.decode()} does not match the glyph count")

    def glyph(gid: int) -> bytes:
        return data[glyf_at + offsets[gid]:glyf_at + offsets[gid + 1]]

    kept: set[int] = set()
    todo = [g for g in keep | {0} if 0 <= g < count]
    while todo:
        gid = todo.pop()
        if gid in kept:
            continue
        kept.add(gid)
        todo.extend(g for g in _components(glyph(gid)) if g < count and g not in kept)

    tables = {tag: data[at:at + length] for tag, (at, length) in directory.items()
              if tag not in DROPPED}
    # glyphs past the last one kept are cut off, where every table that counts glyphs is
    # one rewritten here (the PDF reaches no id past it)
    if not any(tag in tables for tag in _COUNTED):
        with_metrics = _truncated(tables, max(kept) + 1, count)
        if with_metrics is not None:
            tables, count = with_metrics
    # the new glyf and loca: short offsets when they fit (glyphs 2-byte aligned), as fontTools
    # writes them; the glyphs cut out span no bytes, and their metrics are zero (a PDF's
    # widths come from /W; zeros deflate to nothing)
    pieces = [glyph(gid) if gid in kept else b"" for gid in range(count)]
    short = sum(len(p) + len(p) % 2 for p in pieces) < 0x20000
    align = 2 if short else 4
    glyf = bytearray()
    loca = [0]
    for piece in pieces:
        glyf += piece + b"\0" * (-len(piece) % align)
        loca.append(len(glyf) // 2 if short else len(glyf))
    tables[b"glyf"] = bytes(glyf)
    tables[b"loca"] = struct.pack(f">{len(loca)}{'H' if short else 'I'}", *loca)
    for header_tag, metrics_tag in ((b"hhea", b"hmtx"), (b"vhea", b"vmtx")):
        zeroed = _zero_metrics(tables.get(header_tag), tables.get(metrics_tag), kept, count)
        if zeroed is not None:
            tables[metrics_tag] = zeroed
    if b"name" in tables:
        tables[b"name"] = _windows_names(tables[b"name"])
    if b"post" in tables:
        tables[b"post"] = _kept_glyph_names(tables[b"post"], kept, count)
    if b"cmap" in tables:
        tables[b"cmap"] = _kept_cmap(tables[b"cmap"], kept)
    head = bytearray(tables[b"head"])
    struct.pack_into(">h", head, 50, 0 if short else 1)  # indexToLocFormat
    tables[b"head"] = bytes(head)
    return sfnt.assemble(data[:4], tables), kept


def _zero_metrics(header: bytes | None, metrics: bytes | None, kept: set[int],
                  count: int) -> bytes | None:
    """``metrics`` (hmtx or vmtx) with the entries of glyphs not ``kept`` set to zero."""
    if header is None or metrics is None or len(header) < 36:
        return None
    (longs,) = struct.unpack_from(">H", header, 34)
    if longs == 0 or longs > count or len(metrics) < 4 * longs + 2 * (count - longs):
        return None
    out = bytearray(metrics)
    for gid in range(count):
        # (the last long entry's advance is every later glyph's: it stays)
        if gid not in kept and gid != longs - 1:
            at, width = (4 * gid, 4) if gid < longs else (4 * longs + 2 * (gid - longs), 2)
            out[at:at + width] = bytes(width)
    return bytes(out)


def _format4(table: bytes) -> dict[int, int]:
    """Character -> glyph of a format 4 ``cmap`` subtable."""
    (segments_x2,) = struct.unpack_from(">H", table, 6)
    n = segments_x2 // 2
    if 16 + 8 * n > len(table):
        raise Unreadable("cmap format 4 runs past its end")
    ends = struct.unpack_from(f">{n}H", table, 14)
    starts = struct.unpack_from(f">{n}H", table, 16 + 2 * n)
    deltas = struct.unpack_from(f">{n}h", table, 16 + 4 * n)
    range_at = 16 + 6 * n
    ranges = struct.unpack_from(f">{n}H", table, range_at)
    found = {}
    for i in range(n):
        if starts[i] > ends[i]:
            continue
        for code in range(starts[i], ends[i] + 1):
            if ranges[i] == 0:
                gid = (code + deltas[i]) & 0xFFFF
            else:
                at = range_at + 2 * i + ranges[i] + 2 * (code - starts[i])
                if at + 2 > len(table):
                    continue
                (gid,) = struct.unpack_from(">H", table, at)
                if gid:
                    gid = (gid + deltas[i]) & 0xFFFF
            if gid:
                found[code] = gid
    return found


def _format12(table: bytes) -> dict[int, int]:
    """Character -> glyph of a format 12 ``cmap`` subtable."""
    (groups,) = struct.unpack_from(">I", table, 12)
    if 16 + 12 * groups > len(table) or groups > 0x10FFFF:
        raise Unreadable("cmap format 12 runs past its end")
    found = {}
    for i in range(groups):
        first, last, gid = struct.unpack_from(">III", table, 16 + 12 * i)
        if last < first or last - first > 0x10FFFF:
            raise Unreadable("a cmap group out of range")
        for code in range(first, last + 1):
            found[code] = gid + code - first
    return found


def _build4(mapping: dict[int, int]) -> bytes:
    """A format 4 subtable of ``mapping`` (runs of one delta are one segment)."""
    segments: list[list[int]] = []  # [start, end, delta]
    for code in sorted(c for c in mapping if c < 0xFFFF):
        delta = (mapping[code] - code) & 0xFFFF
        if segments and segments[-1][1] == code - 1 and segments[-1][2] == delta:
            segments[-1][1] = code
        else:
            segments.append([code, code, delta])
    segments.append([0xFFFF, 0xFFFF, 1])
    n = len(segments)
    power = 1
    while power * 2 <= n:
        power *= 2
    body = (struct.pack(f">{n}H", *(s[1] for s in segments)) + b"\0\0"
            + struct.pack(f">{n}H", *(s[0] for s in segments))
            + struct.pack(f">{n}H", *(s[2] for s in segments)) + bytes(2 * n))
    length = 14 + len(body)
    return struct.pack(">HHHHHHH", 4, length, 0, 2 * n, 2 * power,
                       power.bit_length() - 1, 2 * n - 2 * power) + body


def _build12(mapping: dict[int, int]) -> bytes:
    groups: list[list[int]] = []
    for code in sorted(mapping):
        gid = mapping[code]
        if groups and groups[-1][1] == code - 1 and groups[-1][2] + code - groups[-1][0] == gid:
            groups[-1][1] = code
        else:
            groups.append([code, code, gid])
    return struct.pack(">HHIII", 12, 0, 16 + 12 * len(groups), 0, len(groups)) + b"".join(
        struct.pack(">III", *g) for g in groups)


def _kept_cmap(cmap: bytes, kept: set[int]) -> bytes:
    """The ``cmap`` table mapping only to ``kept`` glyphs, its format 4 and 12 subtables
    rebuilt (others dropped); unchanged when it does not parse or keeps no subtable."""
    try:
        if len(cmap) < 4:
            return cmap
        (count,) = struct.unpack_from(">H", cmap, 2)
        records = []
        for i in range(count):
            platform, encoding, offset = struct.unpack_from(">HHI", cmap, 4 + 8 * i)
            if offset + 4 > len(cmap):
                return cmap
            (fmt,) = struct.unpack_from(">H", cmap, offset)
            if fmt == 4:
                mapping = _format4(cmap[offset:])
            elif fmt == 12:
                mapping = _format12(cmap[offset:])
            else:
                continue
            mapping = {c: g for c, g in mapping.items() if g in kept}
            table = _build4(mapping) if fmt == 4 else _build12(mapping)
            records.append((platform, encoding, table))
    except (Unreadable, struct.error):
        return cmap
    if not records:
        return cmap
    header = bytearray(struct.pack(">HH", 0, len(records)))
    body = bytearray()
    places: dict[bytes, int] = {}
    start = 4 + 8 * len(records)
    for platform, encoding, table in sorted(records, key=lambda r: (r[0], r[1])):
        if table not in places:
            places[table] = start + len(body)
            body += table
        header += struct.pack(">HHI", platform, encoding, places[table])
    return bytes(header + body)


def _kept_glyph_names(post: bytes, kept: set[int], count: int) -> bytes:
    """A format 2 ``post`` table naming only the ``kept`` glyphs (the others become .notdef,
    their names dropped); any other table, or one that does not parse, unchanged."""
    if len(post) < 34 or struct.unpack_from(">I", post, 0)[0] != 0x00020000:
        return post
    (glyphs,) = struct.unpack_from(">H", post, 32)
    if glyphs != count or len(post) < 34 + 2 * count:
        return post
    index = struct.unpack_from(f">{count}H", post, 34)
    names, at, data = [], 34 + 2 * count, post
    while at < len(data):
        length = data[at]
        if at + 1 + length > len(data):
            return post
        names.append(data[at + 1:at + 1 + length])
        at += 1 + length
    renumbered: dict[int, int] = {}
    new_index, new_names = [], bytearray()
    for gid, i in enumerate(index):
        if gid not in kept or i < 258:
            new_index.append(i if gid in kept else 0)
            continue
        if i - 258 >= len(names):
            return post
        if i not in renumbered:
            renumbered[i] = 258 + len(renumbered)
            name = names[i - 258]
            new_names += bytes([len(name)]) + name
        new_index.append(renumbered[i])
    return post[:34] + struct.pack(f">{count}H", *new_index) + bytes(new_names)


def _windows_names(name: bytes) -> bytes:
    """The ``name`` table with only its Unicode and Windows records (what fontTools' subsetter
    keeps: the Macintosh ones repeat them in an old encoding); unchanged if it does not parse.

    (:mod:`fonttables` slims every program's names further, but only where that and its
    tables save :data:`fonttables.MIN_SAVING`, which a cut program's often do not.)"""
    if len(name) < 6:
        return name
    version, count, storage = struct.unpack_from(">HHH", name, 0)
    if version != 0 or 6 + 12 * count > len(name) or storage > len(name):
        return name
    records, strings, placed = [], bytearray(), {}
    for i in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(
            ">HHHHHH", name, 6 + 12 * i)
        if platform not in (0, 3):
            continue
        text = name[storage + offset:storage + offset + length]
        if len(text) != length:
            return name
        if text not in placed:
            placed[text] = len(strings)
            strings += text
        records.append((platform, encoding, language, name_id, length, placed[text]))
    if not records:
        return name
    header = struct.pack(">HHH", 0, len(records), 6 + 12 * len(records))
    return header + b"".join(struct.pack(">HHHHHH", *r) for r in records) + bytes(strings)



def _truncated(tables: dict[bytes, bytes], count: int,
               before: int) -> tuple[dict[bytes, bytes], int] | None:
    """``tables`` for a program of the first ``count`` of its ``before`` glyphs (``maxp``,
    the horizontal and vertical metrics, ``post``'s name index), or None when one of them
    is not as expected."""
    if count >= before:
        return None
    out = dict(tables)
    maxp = tables.get(b"maxp")
    if maxp is None or len(maxp) < 6:
        return None
    out[b"maxp"] = maxp[:4] + struct.pack(">H", count) + maxp[6:]
    for header_tag, metrics_tag in ((b"hhea", b"hmtx"), (b"vhea", b"vmtx")):
        header, metrics = tables.get(header_tag), tables.get(metrics_tag)
        if header is None and metrics is None:
            continue
        if header is None or metrics is None or len(header) < 36:
            return None
        (longs,) = struct.unpack_from(">H", header, 34)
        if longs == 0 or len(metrics) < 4 * longs + 2 * (before - longs):
            return None
        kept_longs = min(longs, count)
        out[metrics_tag] = metrics[:4 * kept_longs] + metrics[4 * longs:4 * longs + 2 * (count - kept_longs)]
        out[header_tag] = header[:34] + struct.pack(">H", kept_longs) + header[36:]
    post = tables.get(b"post")
    if post is not None:
        if len(post) < 32:
            return None
        (version,) = struct.unpack_from(">I", post, 0)
        if version == 0x00020000:
            if len(post) < 34 or struct.unpack_from(">H", post, 32)[0] != before \
                    or len(post) < 34 + 2 * before:
                return None
            out[b"post"] = (post[:32] + struct.pack(">H", count) + post[34:34 + 2 * count]
                            + post[34 + 2 * before:])
        elif version != 0x00030000:
            return None  # (format 1 is the 258 standard glyphs; 2.5 and 4 count glyphs too)
    return out, count
