"""Embedded Type 1 programs become CFF, and subsets of one font become one program.

A ``/FontFile`` (Type 1) program is replaced by the equivalent
``/FontFile3 /Subtype /Type1C`` (CFF) one :mod:`type1` writes and checks, when
that is smaller (about a third of the bytes on the corpora).  The font
dictionary (``/Type1``, widths, encoding) does not change: a Type 1 font may
have either program (ISO 32000-1 §9.9).

A whole embedded font (no ``ABCDEF+`` subset tag: old Distiller, some
generators) keeps only the glyphs the document can draw with it, as the
TrueType subsetting of :mod:`fonts` does and under the same conditions (no
form may type with it, every content stream readable): every glyph any
reading of a drawn code may name (the font's own encoding, the /Encoding's
base and differences, Standard, WinAnsi and MacRoman), and the parts of
accented glyphs.

LaTeX documents often embed one font several times, each a subset of its own
(``AAAAAD+CMR10``, ``AAAAAN+CMR10``: one per included figure or chapter).
Subsets of one base font whose shared glyphs, hints and built-in codes agree
are served by one program holding the union of their glyphs; each font keeps
its own dictionary, and a descriptor's ``/CharSet`` (the glyph names of the
program, required by PDF/A-1 for Type 1 subsets) is widened to the union.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import flate, fonts, type1
from squeezer.engines.report import Report

log = logging.getLogger(__name__)


@dataclass
class _Embedded:
    stream: Stream
    descriptors: list[Dictionary]
    program: type1.Program
    before: int  #: the stream's bytes as stored
    fonts: list[Dictionary] = field(default_factory=list)  #: the font dictionaries using it


def convert_type1(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Replace every convertible Type 1 program by CFF, merging subsets of one font."""
    found: dict[tuple[int, int], _Embedded] = {}
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.FontDescriptor):
            continue
        stream = obj.get("/FontFile")
        if not (isinstance(stream, Stream) and stream.is_indirect):
            continue
        entry = found.get(stream.objgen)
        if entry is not None:
            entry.descriptors.append(obj)
            continue
        budget.check_time()
        try:
            program = type1.read(stream.read_bytes())
        except type1.NotConvertible as exc:
            log.debug("Type 1 program %s kept: %s", stream.objgen, exc)
            continue
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            continue
        found[stream.objgen] = _Embedded(stream, [obj], program, len(stream.read_raw_bytes()))
    if not found:
        return
    _subset_whole_fonts(pdf, found, budget)
    saved = 0
    for group in _groups(list(found.values())):
        budget.check_time()
        saved += _replace(pdf, group)
    if saved:
        report.steps["fonts"] = report.steps.get("fonts", 0) + saved


#: Whole fonts with fewer glyphs than this are kept whole (little to gain).
MIN_GLYPHS_TO_SUBSET = 64


def _subset_whole_fonts(pdf: pikepdf.Pdf, found: dict[tuple[int, int], _Embedded],
                        budget: Budget) -> None:
    """Cut each whole (untagged) program down to the glyphs its fonts can draw."""
    if not any(type1.base_name(e.program.name) == e.program.name.lstrip("/")
               and len(e.program.glyphs) >= MIN_GLYPHS_TO_SUBSET for e in found.values()):
        return  # (only subsets, as LaTeX embeds: no need to look for their font dictionaries)
    by_descriptor = {d.objgen: e for e in found.values() for d in e.descriptors if d.is_indirect}
    for obj in pdf.objects:
        if isinstance(obj, Dictionary) and obj.get("/Type") == Name.Font and obj.is_indirect:
            descriptor = obj.get("/FontDescriptor")
            if isinstance(descriptor, Dictionary) and descriptor.objgen in by_descriptor:
                by_descriptor[descriptor.objgen].fonts.append(obj)
    whole = [e for e in found.values()
             if type1.base_name(e.program.name) == e.program.name.lstrip("/")
             and len(e.program.glyphs) >= MIN_GLYPHS_TO_SUBSET and e.fonts
             and all(f.get("/Subtype") == Name.Type1 for f in e.fonts)]
    if not whole:
        return
    excluded = fonts.form_fonts(pdf)
    whole = [e for e in whole if not any(f.objgen in excluded for f in e.fonts)]
    wanted = {f.objgen for e in whole for f in e.fonts}
    if not wanted:
        return
    try:
        used = fonts.codes_used(pdf, wanted, budget)
    except fonts.Unknowable as exc:
        log.debug("Type 1 fonts not subset: %s", exc)
        return
    for entry in whole:
        builtin = entry.program.font.get("Encoding")
        keep: set[str] = set()
        for font in entry.fonts:
            keep |= _reachable(font, used.get(font.objgen, set()), builtin)
        try:
            entry.program = type1.subset(entry.program, keep)
        except type1.NotConvertible as exc:  # a kept glyph's charstring does not run
            log.debug("Type 1 program %s kept: %s", entry.stream.objgen, exc)
            del found[entry.stream.objgen]
            continue
        tag = fonts.subset_tag(entry.stream, keep)
        charset = _charset(entry.program)
        for font in entry.fonts:
            fonts.tag_subset(font, tag)
        for descriptor in entry.descriptors:
            descriptor.CharSet = charset  # (PDF/A-1 requires it of a Type 1 subset)


def _charset(program: type1.Program) -> pikepdf.String:
    """A descriptor's /CharSet: the names of the program's glyphs (.notdef aside)."""
    return pikepdf.String("".join("/" + n for n in sorted(program.glyphs) if n != ".notdef"))


def _reachable(font: Dictionary, codes: set[int], builtin: object) -> set[str]:
    """Every glyph name a reader may look a drawn code up by, whichever encoding it trusts."""
    from fontTools.encodings.StandardEncoding import StandardEncoding

    readings = [fonts.glyph_names(font), fonts.encoding_names("/WinAnsiEncoding"),
                fonts.encoding_names("/MacRomanEncoding"), dict(enumerate(StandardEncoding))]
    if isinstance(builtin, (list, tuple)) and len(builtin) == 256:
        readings.append(dict(enumerate(builtin)))
    encoding = font.get("/Encoding")
    differences = encoding.get("/Differences") if isinstance(encoding, Dictionary) else None
    if isinstance(differences, pikepdf.Array):
        readings.append(fonts.differences(differences))
    return {reading[code] for code in codes for reading in readings if code in reading}


def _groups(entries: list[_Embedded]) -> list[list[_Embedded]]:
    """Programs that can share one: subsets of one base font that :func:`type1.merge` joins."""
    by_base: dict[str, list[list[_Embedded]]] = {}
    for entry in entries:
        groups = by_base.setdefault(type1.base_name(entry.program.name), [])
        for group in groups:
            if _merged([e.program for e in group] + [entry.program]) is not None:
                group.append(entry)
                break
        else:
            groups.append([entry])
    return [group for groups in by_base.values() for group in groups]


def _merged(programs: list[type1.Program]) -> type1.Program | None:
    """:func:`type1.merge`, None also when a glyph it compares does not run (glyphs are
    interpreted on first use: such a program is then converted alone, or kept)."""
    try:
        return type1.merge(programs)
    except type1.NotConvertible:
        return None


def _replace(pdf: pikepdf.Pdf, group: list[_Embedded]) -> int:
    """Write the group's CFF program and point its descriptors at it; return bytes saved."""
    programs = [e.program for e in group]
    merged = programs[0] if len(group) == 1 else _merged(programs)
    if merged is None:  # (cannot happen: the group was built by merging)
        return sum(_replace(pdf, [e]) for e in group) if len(group) > 1 else 0
    try:
        data = type1.to_cff(merged, serves=programs)
    except type1.NotConvertible as exc:
        log.debug("Type 1 programs %s kept: %s", [e.stream.objgen for e in group], exc)
        if len(group) > 1:
            return sum(_replace(pdf, [e]) for e in group)
        return 0
    packed = flate.smallest(data)
    before = sum(e.before for e in group)
    if len(packed) >= before:
        return 0
    program = pdf.make_stream(b"")
    program.write(packed, filter=Name.FlateDecode)
    program.Subtype = Name.Type1C
    for entry in group:
        for descriptor in entry.descriptors:
            del descriptor["/FontFile"]
            descriptor.FontFile3 = program
            if len(group) > 1 and isinstance(descriptor.get("/CharSet"), pikepdf.String):
                descriptor.CharSet = _charset(merged)
    return before - len(packed)
