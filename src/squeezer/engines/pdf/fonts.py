"""Subsetting fully embedded TrueType fonts to the glyphs the document draws.

Office programs often embed a whole font (Arial: 570 KB) for a page of text.
Ghostscript subsets every font and the file shrinks tenfold; so do we, but
only where it is provably safe:

- simple ``/TrueType`` fonts with a ``/FontFile2`` program that is not a
  subset already (no ``ABCDEF+`` tag), or is a subset with outlines for more
  than :data:`FULL_SUBSET_GLYPHS` glyphs (pages extracted from a longer
  document keep the whole document's subsets);
- not named by the interactive form (``/AcroForm /DR`` or any ``/DA``): a
  form field may draw any character the user types later;
- every content stream that can use a font (pages, form XObjects, tiling
  patterns, annotation appearances) parsed without error, so the set of
  character codes drawn is complete.  If any stream cannot be read, nothing
  is subset.

Glyph ids are kept (``retain_gids``), so every way a reader maps a code to a
glyph (the (1,0) or (3,0) cmap by code, the (3,1) cmap by Unicode, the glyph
name) still lands on the same glyph; only the outlines of unused glyphs go.
The verification step renders and reads the result, and the pipeline's
fallback rebuilds without subsetting if it fails.
"""

from __future__ import annotations

import io
import logging
import random
import string
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import flate, sfnt
from squeezer.engines.pdf.contentstream import PARSE_ERRORS
from squeezer.engines.report import Report

if TYPE_CHECKING:
    from fontTools.ttLib import TTFont

#: Fonts smaller than this are not worth the work (and are usually subsets already).
MIN_PROGRAM_BYTES = 20_000
#: A subset (``ABCDEF+`` tag) is cut again only when more of its glyphs than this have
#: outlines: a simple font's 256 codes reach about that many at most, so the rest are
#: another document's (and counting glyphs costs milliseconds where subsetting costs a
#: content parse).
FULL_SUBSET_GLYPHS = 512
#: OpenType layout tables: text shaping data, which PDF readers never use (the content
#: stream already names the glyphs); subsetting drops them.
LAYOUT_TABLES = tuple(sorted(sfnt.SHAPING))
_TEXT_OPERATORS = "Tf Tj TJ ' \" Do"


class Unknowable(Exception):
    """A content stream could not be read: the codes drawn are not known."""


def is_subset(name: str) -> bool:
    """True for a subset's font name, ``/ABCDEF+Name`` (ISO 32000-1 §9.6.4)."""
    return len(name) > 8 and name[7] == "+" and name[1:7].isalpha() and name[1:7].isupper()


def glyph_count(program: Stream) -> int:
    """How many glyphs of a TrueType, OpenType or bare CFF program have an outline (0 when it
    does not parse).  Word's subsets keep every glyph id, thousands of them empty; cutting
    those again changed how readers drew some of their glyphs (SSIM 0.89 on a PowerPoint
    deck, caught by verification), so only glyphs with data count: TrueType glyphs from
    ``loca`` where their data is not empty, CFF glyphs from the CharStrings index's count.
    Only the table directory and ``head``/``loca`` (:mod:`sfnt`, no fontTools or numpy), or
    CFF's top dictionary, are read: a few milliseconds on a 270 KB program."""
    try:
        data = program.read_bytes()
        if data[:4] in sfnt.SFNT_VERSIONS:
            return sfnt.outlined_glyphs(data)
        from fontTools.cffLib import CFFFontSet

        cff = CFFFontSet()
        cff.decompile(io.BytesIO(data), None)
        return len(cff[cff.fontNames[0]].CharStrings)
    except Exception:  # noqa: BLE001 - a damaged program is no candidate
        return 0


def open_truetype(data: bytes, **kwargs: bool) -> TTFont:
    """A TrueType program for fontTools, its glyphs named by the post table or, where that
    table names none (format 3, usual in CJK fonts), ``glyphNNNNN`` by glyph id: readers
    know such glyphs by id only, and fontTools' names derived from the cmap took 1.1 s per
    load of a 25,059-glyph font (three loads per subset)."""
    from fontTools.ttLib import TTFont

    tt = TTFont(io.BytesIO(data), **kwargs)
    if "post" in tt and tt["post"].formatType == 3 and "maxp" in tt:
        tt.setGlyphOrder([".notdef", *(f"glyph{i:05d}" for i in range(1, tt["maxp"].numGlyphs))])
    return tt


def over_full(program: Stream) -> bool:
    """True for a subset program with more glyphs than a page extract of it needs."""
    return glyph_count(program) > FULL_SUBSET_GLYPHS


def type_descriptors(pdf: pikepdf.Pdf) -> int:
    """Give ``/Type /FontDescriptor`` to the font descriptors that lack it; return how many.

    The entry is required (ISO 32000-1 §9.8.1) and readers find a descriptor through its
    font's ``/FontDescriptor`` without it, but the font steps find descriptors by their
    type: some TeX toolchains (pdfTeX builds of the 2000s, dvipdfm) omitted it, and their
    Type 1 programs (15 a paper, 83-99 KB) were then neither converted to CFF nor merged.
    """
    typed = 0
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.Font):
            continue
        parts = [obj]
        kids = obj.get("/DescendantFonts")
        if isinstance(kids, Array):
            parts += [k for k in kids if isinstance(k, Dictionary)]
        for part in parts:
            descriptor = part.get("/FontDescriptor")
            if isinstance(descriptor, Dictionary) and not isinstance(descriptor, Stream) \
                    and "/Type" not in descriptor and "/FontName" in descriptor:
                descriptor.Type = Name.FontDescriptor
                typed += 1
    return typed


def note_form_fonts(pdf: pikepdf.Pdf, report: Report) -> None:
    """List in the report the whole embedded fonts kept whole for the interactive form."""
    names = set()
    for objgen in form_fonts(pdf):
        font = pdf.get_object(objgen)
        if not isinstance(font, Dictionary):
            continue
        base = str(font.get("/BaseFont", ""))[1:]
        descriptor = font.get("/FontDescriptor")
        if not isinstance(descriptor, Dictionary) and isinstance(font.get("/DescendantFonts"), Array):
            kid = font.DescendantFonts[0] if len(font.DescendantFonts) else None
            descriptor = kid.get("/FontDescriptor") if isinstance(kid, Dictionary) else None
        embedded = isinstance(descriptor, Dictionary) and any(
            isinstance(descriptor.get(k), Stream) for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        tagged = len(base) > 7 and base[6] == "+" and base[:6].isupper()
        if embedded and base and not tagged:
            names.add(base)
    report.fonts_kept_whole = sorted(names)


def subset_fonts(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Subset every eligible TrueType font program of ``pdf`` in place."""
    logging.getLogger("fontTools").setLevel(logging.ERROR)  # it narrates every dropped table
    candidates = _candidates(pdf)
    if not candidates:
        return
    try:
        used = codes_used(pdf, set(candidates), budget)
    except Unknowable as exc:
        report.warnings.append(f"fonts not subset: {exc}")
        return
    saved = 0
    for program, users in _programs(pdf, candidates):
        budget.check_time()
        try:
            saved += _subset(program, [(font, used.get(font.objgen, set())) for font in users])
        except Exception as exc:  # noqa: BLE001 - fontTools on a damaged program: keep it
            logging.getLogger(__name__).debug("font program %s not subset: %s", program.objgen, exc)
    if saved:
        report.steps["fonts"] = report.steps.get("fonts", 0) + saved


def _programs(pdf: pikepdf.Pdf, candidates: dict[tuple[int, int], Dictionary]
              ) -> list[tuple[Stream, list[Dictionary]]]:
    """Each font program with every font that uses it; programs shared with a font
    that may not be subset (a form font, say) are left out."""
    users: dict[tuple[int, int], list[Dictionary]] = {}
    streams: dict[tuple[int, int], Stream] = {}
    blocked: set[tuple[int, int]] = set()
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.Font):
            continue
        descriptor = obj.get("/FontDescriptor")
        program = descriptor.get("/FontFile2") if isinstance(descriptor, Dictionary) else None
        if not (isinstance(program, Stream) and program.is_indirect):
            continue
        if obj.is_indirect and obj.objgen in candidates:
            users.setdefault(program.objgen, []).append(obj)
            streams[program.objgen] = program
        else:
            blocked.add(program.objgen)
    return [(streams[k], fonts) for k, fonts in users.items() if k not in blocked]


# --- which fonts ---------------------------------------------------------------------------------


def _candidates(pdf: pikepdf.Pdf) -> dict[tuple[int, int], Dictionary]:
    excluded: set[tuple[int, int]] | None = None  # (the form's fonts: looked for at the first)
    found: dict[tuple[int, int], Dictionary] = {}
    for obj in pdf.objects:
        if not (isinstance(obj, Dictionary) and obj.get("/Type") == Name.Font
                and obj.get("/Subtype") == Name.TrueType and obj.is_indirect):
            continue
        if excluded is None:
            excluded = form_fonts(pdf)
        if obj.objgen in excluded:
            continue
        descriptor = obj.get("/FontDescriptor")
        program = descriptor.get("/FontFile2") if isinstance(descriptor, Dictionary) else None
        if not isinstance(program, Stream):
            continue
        if int(program.stream_dict.get("/Length", 0) or 0) < MIN_PROGRAM_BYTES // 4:
            continue
        if is_subset(str(obj.get("/BaseFont", ""))) and not over_full(program):
            continue  # a subset already
        found[obj.objgen] = obj
    return found


def form_fonts(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    """Fonts the interactive form may draw with (any text a user types).

    Those a default appearance (/DA: of the form, of a field, of a widget)
    names, found under that name in /DR or any font resources; with XFA, every
    font of /DR (an XFA form lays its fields out with fonts it names by family,
    which viewers look up there).  Fonts /DR merely lists are no field's.
    """
    acroform = pdf.Root.get("/AcroForm")
    if not isinstance(acroform, Dictionary):
        return set()
    fonts: set[tuple[int, int]] = set()
    resources = acroform.get("/DR")
    table = resources.get("/Font") if isinstance(resources, Dictionary) else None
    if "/XFA" in acroform and isinstance(table, Dictionary):
        for value in table.values():
            if isinstance(value, Dictionary) and value.is_indirect:
                fonts.add(value.objgen)
    # A /DA may name a font that is not in /DR; readers then look for it among
    # the field's own resources.  Keep whole every font listed under such a name.
    # (one pass over the objects gathers both the /DA names and the font tables)
    names: set[str] = set()
    tables = [table] if isinstance(table, Dictionary) else []
    for obj in [acroform, *pdf.objects]:
        if not isinstance(obj, Dictionary):
            continue
        if isinstance(obj.get("/DA"), pikepdf.String):
            names.update(t.decode("latin-1") for t in bytes(obj.DA).split() if t.startswith(b"/"))
        if obj is not acroform:
            found = obj.get("/Font")
            if isinstance(found, Dictionary) and not isinstance(found, Stream):
                tables.append(found)
    if names:
        for found in tables:
            for key, value in found.items():
                if str(key) in names and isinstance(value, Dictionary) and value.is_indirect:
                    fonts.add(value.objgen)
    return fonts


# --- which codes ---------------------------------------------------------------------------------


def _content_streams(pdf: pikepdf.Pdf) -> Iterator[tuple[pikepdf.Object, pikepdf.Object | None]]:
    """(content, resources) for everything that can draw text."""
    for page in pdf.pages:
        yield page.obj, page.obj.get("/Resources")
        for annot in page.obj.get("/Annots", None) or []:
            if not isinstance(annot, Dictionary):
                continue
            ap = annot.get("/AP")
            if not isinstance(ap, Dictionary):
                continue
            for entry in ap.values():
                streams = entry.values() if isinstance(entry, Dictionary) and not isinstance(entry, Stream) else [entry]
                for stream in streams:
                    if isinstance(stream, Stream):
                        yield stream, stream.get("/Resources")
    for obj in pdf.objects:
        if isinstance(obj, Stream) and (
            obj.stream_dict.get("/Subtype") == Name.Form
            or obj.stream_dict.get("/PatternType") == 1
        ):
            yield obj, obj.get("/Resources")
        if isinstance(obj, Dictionary) and obj.get("/Subtype") == Name.Type3:
            raise Unknowable("Type 3 fonts draw with glyph procedures")


def codes_used(pdf: pikepdf.Pdf, wanted: set[tuple[int, int]], budget: Budget,
               two_byte: frozenset | set = frozenset()) -> dict[tuple[int, int], set[int]]:
    """Font object -> the character codes drawn with it, for the fonts in ``wanted`` (those
    in ``two_byte`` read two bytes a code: Identity-H/V composite fonts);
    :class:`Unknowable` when a content stream that may use them cannot be read."""
    used: dict[tuple[int, int], set[int]] = {}
    for content, resources in _content_streams(pdf):
        budget.check_time()
        fonts = resources.get("/Font") if isinstance(resources, Dictionary) else None
        try:
            instructions = pikepdf.parse_content_stream(content, _TEXT_OPERATORS)
        except PARSE_ERRORS as exc:
            # (pikepdf raises TypeError on a content stream holding a stream object)
            raise Unknowable(f"a content stream does not parse ({exc})") from None
        current: set[int] | None = None
        wide = False
        for instruction in instructions:
            operands, operator = instruction.operands, instruction.operator
            op = str(operator)
            if op == "Tf":
                current = None
                if not operands:
                    continue
                font = fonts.get(str(operands[0])) if isinstance(fonts, Dictionary) else None
                if font is None:
                    # a font this stream does not define (inherited resources): unknowable
                    if wanted:
                        raise Unknowable(f"font {operands[0]} is not in the stream's resources")
                    continue
                if isinstance(font, Dictionary) and font.is_indirect and font.objgen in wanted:
                    current = used.setdefault(font.objgen, set())
                    wide = font.objgen in two_byte
            elif current is not None and op in ("Tj", "'", '"', "TJ"):
                for operand in operands:
                    _collect(operand, current, wide)
    return used


def _collect(operand: object, codes: set[int], wide: bool = False) -> None:
    if isinstance(operand, pikepdf.String):
        data = bytes(operand)
        if wide:
            codes.update(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data) - 1, 2))
        else:
            codes.update(data)
    elif isinstance(operand, Array):
        for item in operand:
            _collect(item, codes, wide)


# --- subsetting ----------------------------------------------------------------------------------


def encoding_names(base: str) -> dict[int, str]:
    """Code -> glyph name of a predefined simple-font encoding (Standard when not named)."""
    from fontTools.agl import UV2AGL
    from fontTools.encodings.codecs import search_function  # noqa: F401 - registers mac encodings
    from fontTools.encodings.StandardEncoding import StandardEncoding

    names: dict[int, str] = {}
    codec = {"/WinAnsiEncoding": "cp1252", "/MacRomanEncoding": "mac_roman"}.get(base)
    for code in range(256):
        if codec:
            try:
                char = bytes([code]).decode(codec)
                names[code] = UV2AGL.get(ord(char), f"uni{ord(char):04X}")
            except UnicodeDecodeError:
                pass
        elif StandardEncoding[code] != ".notdef":
            names[code] = StandardEncoding[code]
    return names


def differences(array: Array) -> dict[int, str]:
    """Code -> glyph name of an /Encoding's /Differences array."""
    names: dict[int, str] = {}
    code = 0
    for item in array:
        if isinstance(item, int):
            code = item
        else:
            names[code] = str(item)[1:]
            code += 1
    return names


def glyph_names(font: Dictionary) -> dict[int, str]:
    """Code -> glyph name from the font's /Encoding (base encoding plus /Differences)."""
    encoding = font.get("/Encoding")
    base = encoding.get("/BaseEncoding") if isinstance(encoding, Dictionary) else encoding
    names = encoding_names(str(base))
    found = encoding.get("/Differences") if isinstance(encoding, Dictionary) else None
    if isinstance(found, Array):
        names.update(differences(found))
    return names


def _lookups(tt: TTFont, codes: set[int], names: dict[int, str]) -> dict[tuple, str]:
    """Every way a reader may map a drawn code to a glyph, and the glyph it finds.

    Keys are ``("cmap", platform, encoding, key)`` for the (1,0)/(3,0) tables by
    code, the Unicode tables by the character the encoding names, and
    ``("name", glyph name)`` for lookups through the post table.
    """
    from fontTools.agl import toUnicode

    found: dict[tuple, str] = {}
    cmaps = {(t.platformID, t.platEncID): t.cmap for t in tt["cmap"].tables} if "cmap" in tt else {}
    glyphs = tt.getReverseGlyphMap()
    for code in codes:
        for (platform, encoding), cmap in cmaps.items():
            if (platform, encoding) in ((1, 0), (3, 0)):
                for key in (code, 0xF000 | code):
                    if key in cmap:
                        found[("cmap", platform, encoding, key)] = cmap[key]
        name = names.get(code)
        if not name:
            continue
        if name in glyphs:
            found[("name", name)] = name
        unicode = toUnicode(name)
        if unicode and len(unicode) == 1:
            for (platform, encoding), cmap in cmaps.items():
                if platform in (0, 3) and ord(unicode) in cmap:
                    found[("cmap", platform, encoding, ord(unicode))] = cmap[ord(unicode)]
    return found


def outline(tt: TTFont, name: str) -> tuple:
    """A TrueType glyph's points, contour ends, flags and metrics (equal when it draws the same)."""
    glyf = tt["glyf"]
    coordinates, ends, flags = glyf[name].getCoordinates(glyf)
    return tuple(coordinates), tuple(ends), bytes(flags), tt["hmtx"][name]


def _still_draws_the_same(before: TTFont, after: TTFont, lookups: dict[tuple, str]) -> bool:
    """True when every lookup of the original reaches the same outline in the subset."""
    if "glyf" not in before or "glyf" not in after:
        return False
    tables = {(t.platformID, t.platEncID): t.cmap for t in after["cmap"].tables}
    names = after.getReverseGlyphMap()
    for key, glyph in lookups.items():
        if key[0] == "cmap":
            table = tables.get((key[1], key[2]))
            if table is None or table.get(key[3]) != glyph:
                return False
        elif glyph not in names:
            return False
        if outline(before, glyph) != outline(after, glyph):
            return False
    return True


def _subset(program: Stream, users: list[tuple[Dictionary, set[int]]]) -> int:
    """Replace ``program`` by the subset its fonts draw; return the bytes saved (0 when not smaller)."""
    from fontTools import subset

    before = len(program.read_raw_bytes())
    if before < MIN_PROGRAM_BYTES:
        return 0
    original = program.read_bytes()
    # Tables load on first use: the layout tables (GSUB, GPOS, GDEF), which a PDF reader
    # never uses (the content stream names glyphs, not text to shape), are dropped without
    # being parsed; on CJK fonts parsing them took most of the subsetting time.
    reference = open_truetype(original)
    lookups: dict[tuple, str] = {}
    for font, codes in users:
        lookups.update(_lookups(reference, codes, glyph_names(font)))
    keep = {reference.getGlyphOrder()[0], *lookups.values()}  # .notdef and every glyph reached
    # the head table keeps the program's own modification time: the output then
    # depends only on the input (and does not tell when it was compressed)
    tt = open_truetype(original, recalcTimestamp=False)
    for tag in LAYOUT_TABLES:
        if tag in tt:
            del tt[tag]
    options = subset.Options()
    options.retain_gids = True
    options.notdef_outline = True
    options.recalc_bounds = False
    options.name_IDs = ["*"]
    options.name_languages = ["*"]
    options.legacy_cmap = True
    options.glyph_names = True  # readers look glyphs up by name (post table) too
    options.symbol_cmap = True
    options.layout_features = []
    options.drop_tables += [*LAYOUT_TABLES, "DSIG"]
    subsetter = subset.Subsetter(options)
    subsetter.populate(glyphs=sorted(keep))
    subsetter.subset(tt)
    # Glyph ids are retained, so the original cmap still points at the right
    # glyphs; fontTools would drop its format-0 (1,0) table, which readers use
    # for simple TrueType fonts.
    kept = set(tt.getGlyphOrder())
    cmap = reference["cmap"]
    for table in cmap.tables:
        if hasattr(table, "cmap"):
            table.cmap = {key: glyph for key, glyph in table.cmap.items() if glyph in kept}
    tt["cmap"] = cmap
    out = io.BytesIO()
    tt.save(out)
    data = out.getvalue()
    if not _still_draws_the_same(reference, open_truetype(data), lookups):
        return 0  # the subsetter dropped a table or glyph a reader could use: keep the font whole
    packed = flate.smallest(data)
    if len(packed) >= before:
        return 0
    program.write(packed, filter=Name.FlateDecode)
    program.Length1 = len(data)
    tag = subset_tag(program, keep)
    for font, _ in users:
        tag_subset(font, tag)
    return before - len(packed)


def subset_tag(program: Stream, keep: set) -> str:
    """The six capitals a subset's name starts with (ISO 32000-1 §9.6.4), derived from the
    program and the glyphs kept, so the output depends only on the input."""
    seed = f"{program.objgen}{sorted(keep)}"
    return "".join(random.Random(seed).choices(string.ascii_uppercase, k=6))


def tag_subset(font: Dictionary, tag: str) -> None:
    """Name ``font`` (and its descriptor) as a subset: ``TAG+BaseFont``."""
    name = _untagged(str(font.get("/BaseFont", "/Font")))
    font.BaseFont = Name(f"/{tag}+{name}")
    descriptor = font.get("/FontDescriptor")
    if isinstance(descriptor, Dictionary) and \
            not str(descriptor.get("/FontName", "")).startswith(f"/{tag}+"):
        descriptor.FontName = Name(f"/{tag}+{_untagged(str(descriptor.get('/FontName', '/' + name)))}")


def _untagged(name: str) -> str:
    """``/ABCDEF+Arial`` or ``/Arial`` -> ``Arial`` (a subset cut again gets a new tag)."""
    return name[8:] if is_subset(name) else name[1:]
