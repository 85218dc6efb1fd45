"""Font subsetting: whole TrueType programs shrink to the glyphs drawn, and nothing else changes."""

from __future__ import annotations

import io

import pdfgen
import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

FULL_ARIAL = pdfgen.CORPUS / "pdfjs__issue17069.pdf"  # a 572 KB Arial embedded whole
pytestmark = pytest.mark.skipif(not FULL_ARIAL.exists(), reason="needs ../shared/corpus")


def arial_program() -> bytes:
    with pikepdf.open(FULL_ARIAL) as pdf:
        return pdf.get_object(65, 0).FontDescriptor.FontFile2.read_bytes()


def truetype_font(pdf: pikepdf.Pdf, program: pikepdf.Stream) -> Dictionary:
    descriptor = pdf.make_indirect(Dictionary(
        Type=Name.FontDescriptor, FontName=Name("/Arial"), Flags=32,
        FontBBox=Array([-665, -325, 2000, 1040]), ItalicAngle=0, Ascent=905, Descent=-212,
        CapHeight=716, StemV=80, FontFile2=program))
    return pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.TrueType, BaseFont=Name("/Arial"),
        Encoding=Name.WinAnsiEncoding, FirstChar=32, LastChar=126,
        Widths=Array([600] * 95), FontDescriptor=descriptor))


def same_everywhere(src, dst) -> None:
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    assert pdfgen.min_ssim(src, dst, pages=2, dpi=100) == 1.0


def test_a_whole_font_is_cut_to_the_glyphs_drawn(tmp_path):
    dst = tmp_path / "out.pdf"
    report = compress(FULL_ARIAL, dst, Options(level="lossless"))
    assert report.steps["fonts"] > 400_000
    assert report.output_bytes < 0.25 * report.input_bytes
    same_everywhere(FULL_ARIAL, dst)
    with pikepdf.open(dst) as out:
        names = {str(o.BaseFont) for o in out.objects
                 if isinstance(o, Dictionary) and o.get("/Subtype") == Name.TrueType}
    assert any(n.endswith("+Arial") and n[7] == "+" for n in names), names


def _truetype_heads(path) -> list[tuple[int, int]]:
    from fontTools.ttLib import TTFont

    with pikepdf.open(path) as pdf:
        programs = [o.FontFile2.read_bytes() for o in pdf.objects
                    if isinstance(o, Dictionary) and "/FontFile2" in o]
    heads = [TTFont(io.BytesIO(p))["head"] for p in programs]
    return sorted((h.created, h.modified) for h in heads)


def test_a_subset_keeps_the_programs_own_timestamp(tmp_path):
    """The output depends on the input only: fontTools would stamp the time of subsetting."""
    dst = tmp_path / "out.pdf"
    report = compress(FULL_ARIAL, dst, Options(level="lossless"))
    assert report.steps["fonts"] > 400_000
    assert _truetype_heads(dst) == _truetype_heads(FULL_ARIAL)


def _two_fonts_one_program(path, in_form: bool) -> None:
    pdf = pikepdf.new()
    program = pdf.make_stream(arial_program())
    program.Length1 = len(arial_program())
    f1, f2 = truetype_font(pdf, program), truetype_font(pdf, program)
    content = b"BT /F1 24 Tf 72 700 Td (ABC abc) Tj ET BT /F2 24 Tf 72 650 Td (xyz 789) Tj ET"
    pdfgen.add_page(pdf, content, Dictionary(Font=Dictionary(F1=f1, F2=f2)))
    if in_form:
        pdf.Root.AcroForm = Dictionary(Fields=Array(), DR=Dictionary(Font=Dictionary(Arial=f2)),
                                       DA=pikepdf.String("/Arial 0 Tf 0 g"))
    pdf.save(path)


def test_a_program_shared_by_two_fonts_keeps_both_fonts_glyphs(tmp_path):
    src, dst = tmp_path / "shared.pdf", tmp_path / "out.pdf"
    _two_fonts_one_program(src, in_form=False)
    report = compress(src, dst, Options(level="lossless"))
    assert report.steps["fonts"] > 300_000
    same_everywhere(src, dst)


def test_fonts_a_form_may_type_with_stay_whole(tmp_path):
    src, dst = tmp_path / "form.pdf", tmp_path / "out.pdf"
    _two_fonts_one_program(src, in_form=True)
    report = compress(src, dst, Options(level="lossless"))
    assert "fonts" not in report.steps
    with pikepdf.open(dst) as out:
        programs = [o for o in out.objects if isinstance(o, pikepdf.Stream) and "/Length1" in o]
        assert [len(p.read_bytes()) for p in programs] == [len(arial_program())]
    same_everywhere(src, dst)
