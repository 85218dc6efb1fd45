"""Subsets of one CFF font (``/FontFile3 /Type1C``) become one program.

Documents assembled from pieces (merged PDFs, PyMuPDF output, InDesign books)
embed the same font again and again, each time a subset of its own: one slide
deck of the corpus carried 21 Helvetica subsets.  Subsets of one base font
(the name after the ``ABCDEF+`` tag) whose glyphs agree are served by one
program with the union of their glyphs, as :mod:`fontfiles` does for Type 1:

- every font matrix, paint type and hinting value of the private dictionary
  must be equal, every glyph two subsets share must be the same charstring
  (subroutines expanded, the same advance), and the built-in encodings must
  agree on every code both define;
- the union is written without subroutines (the glyphs a document draws are
  few; the flat program deflates about as well), and each subset's glyphs must
  draw exactly as before from it.

Each font keeps its own dictionary (widths, encoding, name); a descriptor's
/CharSet is widened to the union.  CID-keyed CFF fonts are left alone.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from typing import Any

import pikepdf
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import flate, type1
from squeezer.engines.report import Report

log = logging.getLogger(__name__)

_HINTING = ("BlueValues", "OtherBlues", "FamilyBlues", "FamilyOtherBlues", "BlueScale",
            "BlueShift", "BlueFuzz", "StdHW", "StdVW", "StemSnapH", "StemSnapV", "ForceBold",
            "LanguageGroup", "ExpansionFactor")
_TOP_KEPT = ("version", "Notice", "Copyright", "FullName", "FamilyName", "Weight",
             "isFixedPitch", "ItalicAngle", "UnderlinePosition", "UnderlineThickness",
             "PaintType", "StrokeWidth", "FontMatrix")


class _Unmergeable(Exception):
    pass


@dataclass
class _Program:
    stream: Stream
    descriptors: list[Dictionary]
    top: Any  #: fontTools' TopDict
    glyphs: dict[str, tuple[float, tuple]]  #: name -> (advance, charstring commands)
    encoding: dict[int, str]  #: code -> name (the built-in encoding)
    before: int
    drawn: dict = field(default_factory=dict)


def merge_subsets(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Give each group of mergeable CFF subsets of one font a single program."""
    by_base: dict[str, dict[tuple[int, int], list[Dictionary]]] = {}
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.FontDescriptor):
            continue
        program = obj.get("/FontFile3")
        if not (isinstance(program, Stream) and program.is_indirect
                and program.stream_dict.get("/Subtype") == Name.Type1C):
            continue
        name = str(obj.get("/FontName", ""))
        base = type1.base_name(name)
        if base == name.lstrip("/"):
            continue  # only tagged subsets are merged
        by_base.setdefault(base, {}).setdefault(program.objgen, []).append(obj)
    saved = 0
    for streams in by_base.values():
        if len(streams) < 2:
            continue
        budget.check_time()
        programs: list[_Program] = []
        for descriptors in streams.values():
            try:
                programs.append(_read(descriptors[0].FontFile3, descriptors))  # type: ignore[arg-type]
            except Exception as exc:  # noqa: BLE001 - fontTools on a damaged program
                log.debug("CFF program not merged: %s", exc)
        groups: list[list[_Program]] = []
        for candidate in programs:
            for group in groups:
                if _compatible([*group, candidate]):
                    group.append(candidate)
                    break
            else:
                groups.append([candidate])
        for group in groups:
            if len(group) > 1:
                try:
                    saved += _replace(pdf, group)
                except Exception as exc:  # noqa: BLE001 - keep the subsets as they are
                    log.debug("CFF subsets not merged: %s", exc)
    if saved:
        report.steps["fonts"] = report.steps.get("fonts", 0) + saved


def _read(stream: Stream, descriptors: list[Dictionary]) -> _Program:
    from fontTools.cffLib import CFFFontSet
    from fontTools.cffLib.specializer import programToCommands

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(stream.read_bytes()), None)
    if len(cff.fontNames) != 1:
        raise _Unmergeable("several fonts")
    top = cff[cff.fontNames[0]]
    if hasattr(top, "ROS"):
        raise _Unmergeable("CID-keyed")
    cff.desubroutinize()
    private = top.Private
    nominal = getattr(private, "nominalWidthX", 0)
    default = getattr(private, "defaultWidthX", 0)
    glyphs = {}
    for name in top.charset:
        charstring = top.CharStrings[name]
        charstring.decompile()
        commands = programToCommands(charstring.program)
        width = default
        if commands and commands[0][0] == "":
            width = nominal + commands[0][1][0]
            commands = commands[1:]
        glyphs[name] = (width, tuple((op, tuple(_freeze(a) for a in args)) for op, args in commands))
    encoding = top.Encoding
    if isinstance(encoding, str):
        from fontTools.encodings.StandardEncoding import StandardEncoding

        encoding = list(StandardEncoding) if encoding == "StandardEncoding" else None
    if encoding is None:
        raise _Unmergeable("expert encoding")
    codes = {code: name for code, name in enumerate(encoding) if name in glyphs and name != ".notdef"}
    return _Program(stream, descriptors, top, glyphs, codes, len(stream.read_raw_bytes()))


def _freeze(value: object) -> object:
    return bytes(value) if isinstance(value, (bytes, bytearray)) else value


def _values(top: object) -> tuple:
    private = top.Private  # type: ignore[attr-defined]
    return (tuple(_plain(getattr(top, k, None)) for k in ("FontMatrix", "PaintType", "StrokeWidth")),
            tuple(_plain(getattr(private, k, None)) for k in _HINTING))


def _plain(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


def _compatible(group: list[_Program]) -> bool:
    first = _values(group[0].top)
    glyphs: dict[str, tuple] = {}
    codes: dict[int, str] = {}
    for program in group:
        if _values(program.top) != first:
            return False
        for name, glyph in program.glyphs.items():
            if glyphs.setdefault(name, glyph) != glyph:
                return False
        for code, name in program.encoding.items():
            if codes.setdefault(code, name) != name:
                return False
    names = list(codes.values())
    return len(names) == len(set(names))


def _replace(pdf: pikepdf.Pdf, group: list[_Program]) -> int:
    data = _build(group)
    _check(group, data)
    packed = flate.smallest(data)
    before = sum(p.before for p in group)
    if len(packed) >= before:
        return 0
    stream = pdf.make_stream(b"")
    stream.write(packed, filter=Name.FlateDecode)
    stream.Subtype = Name.Type1C
    names = sorted({n for p in group for n in p.glyphs if n != ".notdef"})
    for program in group:
        for descriptor in program.descriptors:
            descriptor.FontFile3 = stream
            if isinstance(descriptor.get("/CharSet"), pikepdf.String):
                descriptor.CharSet = pikepdf.String("".join("/" + n for n in names))
    return before - len(packed)


def _build(group: list[_Program]) -> bytes:
    from fontTools.cffLib import (
        CFFFontSet,
        CharStrings,
        GlobalSubrsIndex,
        IndexedStrings,
        PrivateDict,
        TopDict,
        TopDictIndex,
    )
    from fontTools.cffLib.specializer import commandsToProgram
    from fontTools.misc.psCharStrings import T2CharString

    first = group[0].top
    glyphs: dict[str, tuple] = {}
    codes: dict[int, str] = {}
    for program in group:
        glyphs.update(program.glyphs)
        codes.update(program.encoding)
    encoding = [".notdef"] * 256
    for code, name in codes.items():
        encoding[code] = name
    order = type1._charset(encoding, glyphs)
    strings = IndexedStrings()
    fontset = CFFFontSet()
    fontset.major, fontset.minor = 1, 0
    fontset.fontNames = [type1.base_name(str(group[0].descriptors[0].get("/FontName", "/Font")))]
    fontset.strings = strings
    fontset.GlobalSubrs = GlobalSubrsIndex()
    fontset.topDictIndex = TopDictIndex()
    private = PrivateDict(strings=strings)
    for key in _HINTING:
        value = getattr(first.Private, key, None)
        if value is not None:
            setattr(private, key, value)
    private.defaultWidthX = 0
    private.nominalWidthX = 0
    top = TopDict(strings=strings)
    for key in _TOP_KEPT:
        value = getattr(first, key, None)
        if value is not None:
            setattr(top, key, value)
    boxes = [p.top.FontBBox for p in group]
    top.FontBBox = [min(b[0] for b in boxes), min(b[1] for b in boxes),
                    max(b[2] for b in boxes), max(b[3] for b in boxes)]
    top.charset = order
    top.Encoding = type1._encoding(encoding, set(order))
    top.Private = private
    top.GlobalSubrs = fontset.GlobalSubrs
    charstrings = CharStrings(None, order, fontset.GlobalSubrs, private, None, None)
    for name in order:
        width, commands = glyphs[name]
        program = ([width] if width else []) + commandsToProgram(
            [(op, list(args)) for op, args in commands])
        charstrings[name] = T2CharString(program=program, private=private,
                                         globalSubrs=fontset.GlobalSubrs)
    top.CharStrings = charstrings
    fontset.topDictIndex.append(top)
    out = io.BytesIO()
    fontset.compile(out, type1._NoRecalc())
    return out.getvalue()


def _check(group: list[_Program], data: bytes) -> None:
    """Every glyph of every subset must draw the same outline with the same advance."""
    from fontTools.cffLib import CFFFontSet
    from fontTools.pens.recordingPen import DecomposingRecordingPen

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), None)
    merged = cff[cff.fontNames[0]].CharStrings
    checked: set[str] = set()
    for program in group:
        own = program.top.CharStrings
        for name in program.glyphs:
            if name in checked:
                continue  # (the same charstring in every subset that has it: drawn once)
            checked.add(name)
            a, b = DecomposingRecordingPen(own), DecomposingRecordingPen(merged)
            own[name].draw(a)
            merged[name].draw(b)
            if a.value != b.value or own[name].width != merged[name].width:
                raise _Unmergeable(f"glyph {name} draws differently")
