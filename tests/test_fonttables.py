"""Layout tables (GSUB, GPOS, …) leave embedded fonts no form types with; nothing else changes."""

from __future__ import annotations

import io

import pdfgen
import pikepdf
import pytest
from fontTools import subset
from fontTools.ttLib import TTFont
from pikepdf import Array, Dictionary, Name
from test_fonts import FULL_ARIAL, arial_program, same_everywhere, truetype_font

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

pytestmark = pytest.mark.skipif(not FULL_ARIAL.exists(), reason="needs ../shared/corpus")
LAYOUT = {"GSUB", "GPOS", "GDEF"}


def shaped_subset() -> bytes:
    """Arial cut to printable ASCII the way Word embeds it: its layout tables kept."""
    font = TTFont(io.BytesIO(arial_program()))
    options = subset.Options()
    options.layout_features = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(chr(c) for c in range(32, 127)))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def tables(data: bytes) -> dict[str, bytes]:
    reader = TTFont(io.BytesIO(data), lazy=True).reader
    return {tag: reader[tag] for tag in reader.keys()}


def _pdf(path, in_form: bool) -> None:
    pdf = pikepdf.new()
    program = pdf.make_stream(shaped_subset())
    program.Length1 = len(program.read_bytes())
    font = truetype_font(pdf, program)
    font.BaseFont = Name("/ABCDEF+Arial")
    content = b"BT /F1 24 Tf 72 650 Td (Kerning AVATAR fi 0123) Tj ET"
    page = pdfgen.add_page(pdf, content, Dictionary(Font=Dictionary(F1=font)))
    if in_form:
        field = pdf.make_indirect(Dictionary(
            FT=Name.Tx, T=pikepdf.String("name"), DA=pikepdf.String("/F1 12 Tf 0 g"),
            Type=Name.Annot, Subtype=Name.Widget, Rect=Array([72, 500, 300, 520]), P=page.obj))
        page.obj.Annots = Array([field])
        pdf.Root.AcroForm = Dictionary(Fields=Array([field]), DR=Dictionary(Font=Dictionary(F1=font)))
    pdf.save(path)


def _program(path) -> bytes:
    with pikepdf.open(path) as pdf:
        (program,) = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and "/Length1" in o]
        return program.read_bytes()


def test_layout_tables_leave_and_every_other_table_stays_byte_for_byte(tmp_path):
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    _pdf(src, in_form=False)
    before = tables(_program(src))
    assert LAYOUT <= set(before)
    report = compress(src, dst, Options(level="lossless"))
    assert report.steps["fonts"] > 1000 and dst.stat().st_size < src.stat().st_size
    after = tables(_program(dst))
    assert not LAYOUT & set(after)
    assert set(after) == set(before) - LAYOUT
    for tag in set(after) - {"head"}:
        assert after[tag] == before[tag], tag
    same_everywhere(src, dst)


def test_a_font_the_form_types_with_keeps_its_layout_tables(tmp_path):
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    _pdf(src, in_form=True)
    compress(src, dst, Options(level="lossless"))
    assert LAYOUT <= set(tables(_program(dst)))
