"""Text-shaping tables dropped from embedded TrueType and OpenType programs.

A PDF content stream names glyphs, positioned already: no reader shapes text
with an embedded font's ``GSUB``/``GPOS``/``GDEF``/``BASE``/``JSTF`` layout
tables or its ``kern`` table, and none checks a ``DSIG`` signature (which
every subset invalidates anyway).  Word and PowerPoint embed "subsets" that
keep all of them: a 163 KB subset of Segoe UI held 244 KB of ``GPOS``
(uncompressed) for 35 KB of outlines.  :mod:`fonts` drops these tables from
the fonts it cuts; here they go from every other program too, without
subsetting: the table directory is rewritten and every other table is kept
byte for byte.  The rewrite is done with :mod:`struct` (:func:`_rewritten`, fontTools'
own layout); fontTools, whose import a cold run would otherwise pay, reads only the
programs that one does not read plainly (and checks its result after the rewrite).

The device tables of Windows' hinted rendering go too (:data:`DEVICE`), and
the ``name`` table keeps each of its strings once: Office writes every record
three times (Unicode, Mac and Windows platforms) plus translated style names,
and an Arial subset carries its 2.8 KB licence text three times.  The Windows
English record of each name id stays (copyright, trademark and licence
included); the other platforms' and languages' copies of an id it has go.  A
Word report's 28 per-page Arial subsets: 722 -> ~590 KB of font programs.

Not touched: programs of fonts the interactive form may type with (a viewer
shapes the text a user types with them), font collections, and programs
whose droppable tables and duplicate names hold under :data:`MIN_SAVING` bytes.
"""

from __future__ import annotations

import io
import logging
import struct
from typing import TYPE_CHECKING

import pikepdf
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import flate, fonts, sfnt
from squeezer.engines.report import Report

if TYPE_CHECKING:
    from fontTools.ttLib import TTFont

log = logging.getLogger(__name__)

#: Tables no PDF reader uses (and a signature every rewrite invalidates).
DROPPABLE = sfnt.SHAPING | {"DSIG"}
#: Device tables and bitmap strikes (:mod:`sfnt` says why they go), and the outline tables
#: whose presence lets the bitmaps go.
DEVICE, BITMAPS, OUTLINES = sfnt.DEVICE, sfnt.BITMAPS, sfnt.OUTLINES
#: The platform and language whose name records are kept when present (Windows, US English).
WINDOWS_ENGLISH = (3, 0x409)
#: Programs whose droppable tables hold fewer bytes are left alone (not worth a rewrite).
MIN_SAVING = 2048


def drop_layout_tables(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Remove :data:`DROPPABLE` tables from every eligible embedded sfnt program."""
    blocked = _form_programs(pdf)
    saved = 0
    seen: set[tuple[int, int]] = set()
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.FontDescriptor):
            continue
        for key in ("/FontFile2", "/FontFile3"):
            program = obj.get(key)
            if not (isinstance(program, Stream) and program.is_indirect):
                continue
            if key == "/FontFile3" and program.stream_dict.get("/Subtype") != Name.OpenType:
                continue
            if program.objgen in seen or program.objgen in blocked:
                continue
            seen.add(program.objgen)
            budget.check_time()
            try:
                saved += _drop(program)
            except Exception as exc:  # noqa: BLE001 - fontTools on a damaged program: keep it
                log.debug("font program %s kept: %s", program.objgen, exc)
    if saved:
        report.steps["fonts"] = report.steps.get("fonts", 0) + saved


def _form_programs(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """Programs of the fonts a form field may type with (and of their descendants)."""
    found: set[tuple[int, int]] = set()
    for objgen in fonts.form_fonts(pdf):
        font = pdf.get_object(objgen)
        if not isinstance(font, Dictionary):
            continue
        parts = [font]
        kids = font.get("/DescendantFonts")
        if isinstance(kids, pikepdf.Array):
            parts += [k for k in kids if isinstance(k, Dictionary)]
        for part in parts:
            descriptor = part.get("/FontDescriptor")
            if isinstance(descriptor, Dictionary):
                for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                    program = descriptor.get(key)
                    if isinstance(program, Stream) and program.is_indirect:
                        found.add(program.objgen)
    return found


def _table_lengths(data: bytes) -> dict[str, int]:
    """Tag -> length from an sfnt's table directory ({} when it is not one)."""
    try:
        directory = sfnt.directory(data)
    except ValueError:
        return {}
    return {tag.decode("latin-1"): length for tag, (_, length) in directory.items()}


def _drop(program: Stream) -> int:
    """Rewrite ``program`` without its droppable tables; return the bytes saved."""
    data = program.read_bytes()
    lengths = _table_lengths(data)
    if not lengths:
        return 0
    drop = (DROPPABLE | DEVICE) & set(lengths)
    if OUTLINES & set(lengths):
        drop |= BITMAPS & set(lengths)
    try:
        new = _rewritten(data, lengths, drop)
    except _Unusual:
        new = _rewritten_by_fonttools(data, lengths, drop)
    if new is None:
        return 0
    before = len(program.read_raw_bytes())
    packed = flate.smallest(new)
    if len(packed) >= before:
        return 0
    program.write(packed, filter=Name.FlateDecode)
    if "/Length1" in program.stream_dict:
        program.Length1 = len(new)
    return before - len(packed)


class _Unusual(Exception):
    """A program :func:`_rewritten` does not read plainly (fontTools' reading then decides)."""


#: One record of a ``name`` table: platform, encoding, language, name id, and its bytes.
_NameRecord = tuple[int, int, int, int, bytes]


def _rewritten(data: bytes, lengths: dict[str, int], drop: frozenset[str]) -> bytes | None:
    """``data`` without the ``drop`` tables and with a slimmer ``name`` table, written with
    :mod:`struct` exactly as :func:`_rewritten_by_fonttools` writes it (None: not worth it,
    or a ``name`` table fontTools would not give back byte for byte).

    fontTools' import (its table modules included) cost a cold run ~50 ms of CPU for
    a one-page Word document (issue 18); a plain program needs none of it.  Raises
    :class:`_Unusual` for anything else: duplicate or truncated tables, a short ``head``,
    a ``name`` table whose records fontTools would skip or could not write.
    """
    (count,) = struct.unpack_from(">H", data, 4)
    try:
        directory = sfnt.directory(data, strict=True)
    except ValueError:
        raise _Unusual from None
    if len(directory) != count:
        raise _Unusual  # a tag listed twice
    tables = {tag.decode("latin-1"): data[offset:offset + length]
              for tag, (offset, length) in directory.items()}
    if "head" in tables and len(tables["head"]) < 54:
        raise _Unusual
    names_saved = 0
    if "name" in tables:
        records = _name_records(tables["name"])
        slim = _slim_records(records)
        compiled = _compile_names(records if slim is None else slim)
        if slim is None and compiled != tables["name"]:
            return None  # (every table but a slimmed name must stay byte for byte)
        if slim is not None:
            names_saved = len(tables["name"]) - len(compiled)
        tables["name"] = compiled
    if sum(lengths[t] for t in drop) + names_saved < MIN_SAVING:
        return None
    # the tables in the program's own order (by offset): fontTools' layout for
    # TTFont.save(reorderTables=False)
    order = [tag for tag, _ in sorted(directory.items(), key=lambda item: item[1][0])
             if tag.decode("latin-1") not in drop]
    return sfnt.assemble(data[:4], {tag: tables[tag.decode("latin-1")] for tag in order}, order)


def _name_records(table: bytes) -> list[_NameRecord]:
    """The records of a ``name`` table (format 0 or 1: language-tag records are not read,
    as fontTools does not); :class:`_Unusual` where fontTools would log a damaged table."""
    if len(table) < 6:
        raise _Unusual
    _format, count, string_offset = struct.unpack_from(">HHH", table)
    if string_offset != 6 + 12 * count or len(table) < string_offset:
        raise _Unusual
    strings = table[string_offset:]
    records = []
    for i in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(
            ">6H", table, 6 + 12 * i)
        if offset + length > len(strings):
            raise _Unusual
        records.append((platform, encoding, language, name_id, strings[offset:offset + length]))
    return records


def _slim_records(records: list[_NameRecord]) -> list[_NameRecord] | None:
    """:func:`_slim_names` on plain records (None when no record goes)."""
    kept = {r[3] for r in records if (r[0], r[2]) == WINDOWS_ENGLISH}
    slim = [r for r in records if (r[0], r[2]) == WINDOWS_ENGLISH or r[3] not in kept]
    return None if len(slim) == len(records) else slim


def _compile_names(records: list[_NameRecord]) -> bytes:
    """A format 0 ``name`` table as fontTools compiles it: records sorted by platform,
    encoding, language and name id (ties in their order), each distinct string stored once."""
    ordered = sorted(records, key=lambda r: r[:4])
    strings = bytearray()
    where: dict[bytes, int] = {}
    head = [struct.pack(">HHH", 0, len(ordered), 6 + 12 * len(ordered))]
    for platform, encoding, language, name_id, text in ordered:
        if text not in where:
            where[text] = len(strings)
            strings += text
        if where[text] > 0xFFFF or len(text) > 0xFFFF:
            raise _Unusual  # (fontTools fails to write it)
        head.append(struct.pack(">6H", platform, encoding, language, name_id, len(text),
                                where[text]))
    return b"".join(head) + bytes(strings)


def _rewritten_by_fonttools(data: bytes, lengths: dict[str, int],
                            drop: frozenset[str]) -> bytes | None:
    """:func:`_rewritten` by fontTools, for the programs that one does not read plainly."""
    from fontTools.ttLib import TTFont

    logging.getLogger("fontTools").setLevel(logging.ERROR)
    font = TTFont(io.BytesIO(data), lazy=True, recalcBBoxes=False, recalcTimestamp=False)
    ids = _slim_names(font) if "name" in lengths else None
    names_saved = lengths["name"] - len(font["name"].compile(font)) if ids is not None else 0
    if sum(lengths[t] for t in drop) + names_saved < MIN_SAVING:
        return None
    for tag in drop:
        del font[tag]
    out = io.BytesIO()
    font.save(out, reorderTables=False)
    new = out.getvalue()
    # every table left must be byte for byte the one read (only the directory changed), but
    # the name table, which must still name every id it named
    reader = TTFont(io.BytesIO(data), lazy=True).reader
    written = TTFont(io.BytesIO(new), lazy=True)
    check = written.reader
    if set(check.keys()) != set(lengths) - drop:
        return None
    if ids is not None and {r.nameID for r in written["name"].names} != ids:
        return None
    for tag in check.keys():  # noqa: SIM118 - (the reader has no __iter__)
        if tag == "name" and ids is not None:
            continue
        a, b = check[tag], reader[tag]
        if tag == "head":  # (its checkSumAdjustment, bytes 8-12, covers the whole file)
            a, b = a[:8] + a[12:], b[:8] + b[12:]
        if a != b:
            return None
    return new


def _slim_names(font: TTFont) -> set[int] | None:
    """Keep one record of each name id: the Windows English one where there is one.

    Returns the ids the table names (the same after as before), or None when no record
    goes (nothing to rewrite)."""
    table = font["name"]
    records = list(table.names)
    ids = {r.nameID for r in records}
    kept = {r.nameID for r in records if (r.platformID, r.langID) == WINDOWS_ENGLISH}
    slim = [r for r in records if (r.platformID, r.langID) == WINDOWS_ENGLISH
            or r.nameID not in kept]
    if len(slim) == len(records):
        return None
    table.names = slim
    return ids
