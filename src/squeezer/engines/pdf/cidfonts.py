"""Whole composite (CID) fonts cut to the glyphs the document draws.

Word processors and PDF libraries embed whole fonts behind ``/Type0`` fonts with
the ``Identity-H`` encoding (a code is a two-byte CID): DejaVu Sans, 361 KB for
one page; a 13,597-glyph CFF Arial, 2.8 MB for four characters.  As the simple
TrueType fonts of :mod:`fonts` are cut, so are these, under the same
conditions (not a form's font, every content stream readable, no Type 3 font):

- TrueType outlines (``CIDFontType2``, ``/FontFile2``): the glyphs the drawn CIDs
  reach through ``/CIDToGIDMap`` (identity or a map stream) are kept, with glyph
  ids kept (the map and the widths stay valid) and composite glyphs' parts;
- CFF outlines (``CIDFontType0``, ``/FontFile3 /CIDFontType0C``): the drawn CIDs'
  glyphs (by the CFF charset of a CID-keyed font, by glyph id otherwise).

Subsets (``ABCDEF+`` names) with outlines for more than
:data:`fonts.FULL_SUBSET_GLYPHS` glyphs, over twice what the document draws with
them, are cut again: a page extracted from a Japanese brochure kept 964 glyphs
of its 245 KB subset.

Every kept glyph must draw the same outline afterwards, or the font stays whole.
"""

from __future__ import annotations

import io
import logging

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import flate, fonts
from squeezer.engines.report import Report

log = logging.getLogger(__name__)

#: Programs smaller than this are not worth the work; larger than the second, too much of it.
MIN_PROGRAM_BYTES = 20_000
MAX_PROGRAM_BYTES = 64 << 20
_IDENTITY = (Name("/Identity-H"), Name("/Identity-V"))


def subset_cid_fonts(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Cut every eligible whole CID font program of ``pdf`` in place."""
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    candidates = _candidates(pdf)
    if not candidates:
        return
    try:
        used = fonts.codes_used(pdf, set(candidates), budget, two_byte=set(candidates))
    except fonts.Unknowable as exc:
        report.warnings.append(f"fonts not subset: {exc}")
        return
    programs: dict[tuple[int, int], list[Dictionary]] = {}
    for font in candidates.values():
        programs.setdefault(_program(font).objgen, []).append(font)  # type: ignore[union-attr]
    blocked = _shared_with_others(pdf, candidates)
    saved = 0
    for key, users in programs.items():
        if key in blocked:
            continue
        budget.check_time()
        cids = set().union(*(used.get(f.objgen, set()) for f in users))
        if fonts.is_subset(str(users[0].get("/BaseFont", ""))) and \
                fonts.glyph_count(_program(users[0])) <= 2 * len(cids) + 32:  # type: ignore[arg-type]
            continue  # a subset of about what is drawn: cutting it again would save little
        try:
            saved += _cut(users, cids)
        except Exception as exc:  # noqa: BLE001 - fontTools on a damaged program: keep it
            log.debug("CID font program %s not subset: %s", key, exc)
    if saved:
        report.steps["fonts"] = report.steps.get("fonts", 0) + saved


def _descendant(font: Dictionary) -> Dictionary | None:
    kids = font.get("/DescendantFonts")
    kid = kids[0] if isinstance(kids, Array) and len(kids) == 1 else None
    return kid if isinstance(kid, Dictionary) else None


def _program(font: Dictionary) -> Stream | None:
    kid = _descendant(font)
    if kid is None:
        return None
    descriptor = kid.get("/FontDescriptor")
    if not isinstance(descriptor, Dictionary):
        return None
    if kid.get("/Subtype") == Name.CIDFontType2:
        program = descriptor.get("/FontFile2")
    elif kid.get("/Subtype") == Name.CIDFontType0:
        program = descriptor.get("/FontFile3")
        if not (isinstance(program, Stream)
                and program.stream_dict.get("/Subtype") == Name.CIDFontType0C):
            return None
    else:
        return None
    return program if isinstance(program, Stream) and program.is_indirect else None


def _candidates(pdf: pikepdf.Pdf) -> dict[tuple[int, int], Dictionary]:
    excluded: set[tuple[int, int]] | None = None  # (the form's fonts: looked for at the first)
    found: dict[tuple[int, int], Dictionary] = {}
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.Font
                and obj.get("/Subtype") == Name.Type0 and obj.is_indirect):
            continue
        if excluded is None:
            excluded = fonts.form_fonts(pdf)
        if obj.objgen in excluded or obj.get("/Encoding") not in _IDENTITY:
            continue
        program = _program(obj)
        if program is None or not MIN_PROGRAM_BYTES // 4 <= len(program.read_raw_bytes()) \
                <= MAX_PROGRAM_BYTES:
            continue
        if fonts.is_subset(str(obj.get("/BaseFont", ""))) and not fonts.over_full(program):
            continue  # a subset already
        found[obj.objgen] = obj
    return found


def _shared_with_others(pdf: pikepdf.Pdf, candidates: dict) -> set[tuple[int, int]]:
    """Programs some font that is not a candidate also uses (it may draw any glyph)."""
    mine = {_program(f).objgen for f in candidates.values()}  # type: ignore[union-attr]
    blocked = set()
    for obj in pdf.objects:
        if not isinstance(obj, Dictionary) or obj.get("/Type") != Name.FontDescriptor:
            continue
        for key in ("/FontFile2", "/FontFile3"):
            program = obj.get(key)
            if isinstance(program, Stream) and program.objgen in mine:
                users = [f for f in candidates.values()
                         if _descendant(f).get("/FontDescriptor") == obj]  # type: ignore[union-attr]
                if not users:
                    blocked.add(program.objgen)
    return blocked


def _cut(users: list[Dictionary], cids: set[int]) -> int:
    program = _program(users[0])
    assert program is not None
    before = len(program.read_raw_bytes())
    kid = _descendant(users[0])
    assert kid is not None
    if kid.get("/Subtype") == Name.CIDFontType2:
        data, keep = _cut_truetype(program.read_bytes(), kid, cids)
    else:
        data, keep = _cut_cff(program.read_bytes(), cids)
    if data is None:
        return 0
    packed = flate.smallest(data)
    if len(packed) >= before:
        return 0
    program.write(packed, filter=Name.FlateDecode)
    if kid.get("/Subtype") == Name.CIDFontType2:
        program.Length1 = len(data)
    else:
        program.Subtype = Name.CIDFontType0C
    tag = fonts.subset_tag(program, keep)
    for font in users:
        fonts.tag_subset(font, tag)
        descendant = _descendant(font)
        if descendant is not None and not str(descendant.get("/BaseFont", "")).startswith(f"/{tag}+"):
            fonts.tag_subset(descendant, tag)
    return before - len(packed)


def _gids(kid: Dictionary, cids: set[int], count: int) -> set[int]:
    """Glyph ids the CIDs reach through /CIDToGIDMap (identity when absent or /Identity)."""
    mapping = kid.get("/CIDToGIDMap")
    if isinstance(mapping, Stream):
        table = mapping.read_bytes()
        gids = {int.from_bytes(table[2 * c:2 * c + 2], "big") for c in cids
                if 2 * c + 2 <= len(table)}
    else:
        gids = set(cids)
    return {g for g in gids if g < count} | {0}


def _cut_truetype(original: bytes, kid: Dictionary, cids: set[int]) -> tuple[bytes | None, set]:
    """The program cut to the glyphs ``cids`` reach, glyph ids kept: by :mod:`glyfcut` (a
    table rewrite), or, for a program it does not read, by fontTools' subsetter."""
    from squeezer.engines.pdf import glyfcut

    try:
        keep = _gids(kid, cids, glyfcut.glyph_count(original))
        data, _ = glyfcut.cut(original, keep)
        return data, keep
    except glyfcut.Unreadable:
        return _cut_truetype_fonttools(original, kid, cids)


def _cut_truetype_fonttools(original: bytes, kid: Dictionary,
                            cids: set[int]) -> tuple[bytes | None, set]:
    from fontTools import subset

    reference = fonts.open_truetype(original)
    order = reference.getGlyphOrder()
    keep = _gids(kid, cids, len(order))
    tt = fonts.open_truetype(original, recalcTimestamp=False)
    for tag in fonts.LAYOUT_TABLES:
        if tag in tt:
            del tt[tag]
    options = subset.Options()
    options.retain_gids = True
    options.notdef_outline = True
    options.recalc_bounds = False
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.glyph_names = True
    options.layout_features = []
    options.drop_tables += [*fonts.LAYOUT_TABLES, "DSIG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(gids=sorted(keep))
    subsetter.subset(tt)
    out = io.BytesIO()
    tt.save(out)
    data = out.getvalue()
    after = fonts.open_truetype(data)
    if "glyf" not in reference or "glyf" not in after:
        return None, keep
    names = after.getGlyphOrder()
    for gid in keep:
        if gid >= len(names) or fonts.outline(reference, order[gid]) != fonts.outline(after, names[gid]):
            return None, keep
    return data, keep


def _cut_cff(original: bytes, cids: set[int]) -> tuple[bytes | None, set]:
    from fontTools.cffLib import CFFFontSet
    from fontTools.pens.recordingPen import DecomposingRecordingPen

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(original), None)
    top = cff[cff.fontNames[0]]
    charset = list(top.charset)
    if hasattr(top, "ROS"):
        names = {f"cid{c:05d}" for c in cids} | {".notdef"}
        keep = {n for n in charset if n in names}
    else:
        return None, set()  # (a name-keyed CFF behind a CIDFont: ids are glyph positions)
    reference = {n: _draw(top.CharStrings, n, DecomposingRecordingPen) for n in keep}
    top.charset = [n for n in charset if n in keep]
    # drop the other glyphs: CharStrings keeps its index, so rebuild it from what is kept
    strings = top.CharStrings
    kept = {n: strings[n] for n in top.charset}
    fd_select = getattr(top, "FDSelect", None)
    if fd_select is not None:
        fds = [fd_select[charset.index(n)] for n in top.charset]
        fd_select.gidArray = fds
        top.FDSelect = fd_select
    strings.charStrings = {n: i for i, n in enumerate(top.charset)}
    strings.charStringsIndex.items = [kept[n] for n in top.charset]
    out = io.BytesIO()
    cff.compile(out, _NoRecalc())
    data = out.getvalue()
    check = CFFFontSet()
    check.decompile(io.BytesIO(data), None)
    new = check[check.fontNames[0]]
    for name, outline in reference.items():
        if name not in new.CharStrings or _draw(new.CharStrings, name,
                                                DecomposingRecordingPen) != outline:
            return None, keep
    return data, keep


def _draw(glyphs, name: str, pen_class) -> list:
    pen = pen_class(glyphs)
    glyphs[name].draw(pen)
    return pen.value


class _NoRecalc:
    recalcBBoxes = False
