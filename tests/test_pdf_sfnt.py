"""The sfnt table directory read without fontTools (issue 18: the glyph count that decides
whether a font is worth subsetting cost a cold start numpy and fontTools)."""

from __future__ import annotations

import io
import itertools

import pdfgen
import pikepdf
import pytest
from fontTools.ttLib import TTFont

from squeezer.engines.pdf import fonts, sfnt


def _fonttools_count(data: bytes) -> int:
    """Glyphs whose loca entry spans bytes, as fontTools reads the tables."""
    tt = TTFont(io.BytesIO(data))
    loca = list(tt["loca"])
    return sum(1 for a, b in itertools.pairwise(loca) if b > a)


def _programs(path) -> list[bytes]:
    with pikepdf.open(path) as pdf:
        return [d.FontFile2.read_bytes() for d in pdf.objects
                if isinstance(d, pikepdf.Dictionary) and d.get("/Type") == "/FontDescriptor"
                and isinstance(d.get("/FontFile2"), pikepdf.Stream)]


def test_outlined_glyphs_of_word_subsets_match_fonttools() -> None:
    # Word's subsets keep 4,686 glyph ids with outlines for a few dozen of them
    programs = _programs(pdfgen.corpus_file("docling__right_to_left_01.pdf"))
    assert len(programs) == 3
    counts = [sfnt.outlined_glyphs(p) for p in programs]
    assert counts == [_fonttools_count(p) for p in programs]
    assert all(0 < c < 200 for c in counts)
    assert all(len(TTFont(io.BytesIO(p))["loca"]) > 4000 for p in programs)


def test_outlined_glyphs_of_a_whole_font_match_fonttools() -> None:
    ttf = pdfgen.find_ttf()
    if ttf is None:
        pytest.skip("no TrueType font on this machine")
    data = ttf.read_bytes()
    assert sfnt.outlined_glyphs(data) == _fonttools_count(data) > 100


def test_damaged_programs_raise_and_count_as_no_candidate() -> None:
    ttf = pdfgen.find_ttf()
    if ttf is None:
        pytest.skip("no TrueType font on this machine")
    data = ttf.read_bytes()
    for bad in (data[:40], b"OTTO" + b"\x00" * 8, b"\x00\x01\x00\x00\xff\xff" + b"\x00" * 6):
        with pytest.raises(ValueError):
            sfnt.outlined_glyphs(bad)
    with pytest.raises(ValueError):
        sfnt.tables(b"%PDF-1.7 not a font")
    with pikepdf.new() as pdf:
        assert fonts.glyph_count(pikepdf.Stream(pdf, data[:40])) == 0
        assert fonts.glyph_count(pikepdf.Stream(pdf, data)) == _fonttools_count(data)
