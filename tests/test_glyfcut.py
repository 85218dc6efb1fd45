"""TrueType programs cut by table rewrite (engines/pdf/glyfcut.py): every kept glyph draws the
same outline with the same metrics under the same id, fontTools reads every table of the
result, and programs the module does not read plainly are refused, not cut."""

from __future__ import annotations

import io
import struct

import pdfgen
import pikepdf
import pytest
from fontTools.ttLib import TTFont

from squeezer.engines import libdeflate
from squeezer.engines.pdf import fonts, glyfcut, sfnt

FULL_ARIAL = pdfgen.CORPUS / "pdfjs__issue17069.pdf"  # a 572 KB Arial embedded whole
pytestmark = pytest.mark.skipif(not FULL_ARIAL.exists(), reason="needs ../shared/corpus")


@pytest.fixture(scope="module")
def arial() -> bytes:
    with pikepdf.open(FULL_ARIAL) as pdf:
        return pdf.get_object(65, 0).FontDescriptor.FontFile2.read_bytes()


def _gid(font: TTFont, char: str) -> int:
    return font.getGlyphID(font.getBestCmap()[ord(char)])


def test_kept_glyphs_draw_the_same_under_the_same_ids(arial):
    original = TTFont(io.BytesIO(arial))
    aacute = _gid(original, "Á")
    assert original["glyf"][original.getGlyphName(aacute)].isComposite()
    keep = {_gid(original, c) for c in "Hello, wörld"} | {aacute}
    data, kept = glyfcut.cut(arial, keep)
    parts, todo = set(), list(keep)
    while todo:  # the parts of every kept composite (ö, Á), and their parts
        glyph = original["glyf"][original.getGlyphName(todo.pop())]
        for component in glyph.components if glyph.isComposite() else ():
            parts.add(original.getGlyphID(component.glyphName))
            todo.append(original.getGlyphID(component.glyphName))
    assert {_gid(original, "A")} <= parts and kept == keep | parts | {0}
    cut = TTFont(io.BytesIO(data))
    for tag in cut.keys():  # every table parses
        cut[tag]
    assert cut["maxp"].numGlyphs == max(kept) + 1  # the glyphs past the last one kept are gone
    names, order = cut.getGlyphOrder(), original.getGlyphOrder()
    for gid in kept:
        assert fonts.outline(cut, names[gid]) == fonts.outline(original, order[gid])
    dropped = next(g for g in range(max(kept)) if g not in kept)
    assert cut["glyf"][names[dropped]].numberOfContours == 0
    # the cmap maps what it mapped to kept glyphs, and nothing else
    want = {c: original.getGlyphID(n) for c, n in original.getBestCmap().items()
            if original.getGlyphID(n) in kept}
    assert {c: cut.getGlyphID(n) for c, n in cut.getBestCmap().items()} == want
    assert not {"GSUB", "GPOS", "kern", "DSIG"} & set(cut.keys())
    assert len(libdeflate.compress(data)) < len(libdeflate.compress(arial)) // 20


def test_a_program_whose_tables_disagree_is_not_cut(arial):
    directory = {tag: struct.unpack_from(">4sIII", arial, 12 + 16 * i)[2]
                 for i in range(struct.unpack_from(">H", arial, 4)[0])
                 for tag in [struct.unpack_from(">4s", arial, 12 + 16 * i)[0]]}
    lying = bytearray(arial)
    count = glyfcut.glyph_count(arial)
    struct.pack_into(">H", lying, directory[b"maxp"] + 4, count + 500)  # maxp counts more
    with pytest.raises(glyfcut.Unreadable):
        glyfcut.cut(bytes(lying), {1, 2, 3})
    with pytest.raises(glyfcut.Unreadable):
        glyfcut.cut(b"OTTO" + arial[4:], {1})  # CFF outlines: not this module's
    with pytest.raises(glyfcut.Unreadable):
        glyfcut.cut(arial[:2000], {1})  # a program cut short


def test_a_composite_glyph_running_past_its_end_is_refused():
    # numberOfContours -1, a bounding box, then a component record cut after its flags
    with pytest.raises(glyfcut.Unreadable):
        glyfcut._components(struct.pack(">hhhhh", -1, 0, 0, 100, 100) + b"\x00\x21")


def test_cutting_is_the_engines_way_for_cid_truetype_fonts(tmp_path):
    """The Identity-H TrueType file of the font tests goes through glyfcut (no fontTools
    subsetter) and its pages draw the same."""
    from squeezer.engines.options import Options
    from squeezer.engines.pdf import compress

    src, dst = pdfgen.corpus_file("pdf-lib__embed_font_and_measure_text.pdf"), tmp_path / "o.pdf"
    compress(src, dst, Options(level="lossless"))
    with pikepdf.open(dst) as out:
        programs = [o.read_bytes() for o in out.objects
                    if isinstance(o, pikepdf.Stream) and "/Length1" in o]
    assert programs
    for program in programs:
        tables = sfnt.tables(program)
        assert b"GSUB" not in tables and b"GPOS" not in tables
        assert struct.unpack_from(">H", tables[b"maxp"], 4)[0] < 1000
    assert pdfgen.all_pages_identical(src, dst) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
