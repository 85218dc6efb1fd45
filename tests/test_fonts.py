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


def test_only_the_fonts_form_fields_type_with_stay_whole(tmp_path):
    """/DR lists two whole fonts; the fields' appearances name one: that one stays whole and
    the report says so, the other (drawn by page content only) is cut."""
    pdf = pikepdf.new()
    programs = []
    for pad in (b"\0" * 4, b""):  # (two programs: deduplication would make them one)
        program = pdf.make_stream(arial_program() + pad)
        program.Length1 = len(arial_program()) + len(pad)
        programs.append(program)
    typed, drawn = truetype_font(pdf, programs[0]), truetype_font(pdf, programs[1])
    typed.BaseFont = Name("/ArialTyped")
    content = b"BT /F2 24 Tf 72 650 Td (xyz 789) Tj ET"
    page = pdfgen.add_page(pdf, content, Dictionary(Font=Dictionary(F2=drawn)))
    field = pdf.make_indirect(Dictionary(FT=Name.Tx, T=pikepdf.String("name"),
                                         DA=pikepdf.String("/Typed 12 Tf 0 g"), Type=Name.Annot,
                                         Subtype=Name.Widget, Rect=Array([72, 500, 300, 520]),
                                         P=page.obj))
    page.obj.Annots = Array([field])
    pdf.Root.AcroForm = Dictionary(Fields=Array([field]),
                                   DR=Dictionary(Font=Dictionary(Typed=typed, Drawn=drawn)))
    src, dst = tmp_path / "form.pdf", tmp_path / "out.pdf"
    pdf.save(src)
    report = compress(src, dst, Options(level="lossless"))
    assert report.fonts_kept_whole == ["ArialTyped"]
    with pikepdf.open(dst) as out:
        sizes = sorted(len(o.read_bytes()) for o in out.objects
                       if isinstance(o, pikepdf.Stream) and "/Length1" in o)
        assert sizes[-1] == len(arial_program()) + 4 and sizes[0] < len(arial_program()) // 10
    same_everywhere(src, dst)


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "at_most"), [
    ("pdf-lib__embed_font_and_measure_text.pdf", 0.1),  # Identity-H TrueType (CIDFontType2)
    ("pdfjs__PDFJS-9279-reduced.pdf", 0.05),  # a 13,597-glyph CID-keyed CFF for 4 glyphs
])
def test_whole_cid_fonts_are_cut_to_the_glyphs_drawn(tmp_path, name, at_most):
    src, dst = pdfgen.corpus_file(name), tmp_path / "out.pdf"
    compress(src, dst, Options(level="lossless"))
    assert dst.stat().st_size < at_most * src.stat().st_size
    with pikepdf.open(dst) as out:
        type0 = [o for o in out.objects if isinstance(o, Dictionary) and o.get("/Subtype") == Name.Type0]
        assert type0 and all(str(f.BaseFont)[7] == "+" for f in type0)
    assert pdfgen.all_pages_identical(src, dst) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


@pytest.mark.corpus
def test_cff_subsets_of_one_font_share_one_program(tmp_path):
    """21 subsets of Helvetica (a PyMuPDF deck) become one program; every page draws the same."""
    src, dst = pdfgen.corpus_file("pymupdf-utilities__output-2.pdf"), tmp_path / "out.pdf"
    compress(src, dst, Options(level="lossless"))

    def helvetica_programs(path) -> set:
        with pikepdf.open(path) as pdf:
            return {o.FontFile3.objgen for o in pdf.objects
                    if isinstance(o, Dictionary) and o.get("/Type") == Name.FontDescriptor
                    and str(o.get("/FontName", "")).endswith("+Helvetica") and "/FontFile3" in o}

    assert len(helvetica_programs(src)) == 21 and len(helvetica_programs(dst)) == 1
    assert pdfgen.all_pages_identical(src, dst, scale=0.5) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_a_large_font_named_as_a_subset_is_cut_again(tmp_path):
    """A producer's "subset" tag is no promise: a whole font under an ``ABCDEF+`` name is cut
    to the glyphs drawn all the same, and keeps one tag (a new one), not two."""
    src, dst = tmp_path / "tagged.pdf", tmp_path / "out.pdf"
    with pikepdf.open(FULL_ARIAL) as pdf:
        font = pdf.get_object(65, 0)
        font.BaseFont = Name("/QWERTY+Arial")
        font.FontDescriptor.FontName = Name("/QWERTY+Arial")
        pdf.save(src)
    report = compress(src, dst, Options(level="lossless"))
    assert report.steps["fonts"] > 400_000
    same_everywhere(src, dst)
    with pikepdf.open(dst) as out:
        font = next(o for o in out.objects if isinstance(o, Dictionary)
                    and o.get("/Subtype") == Name.TrueType and "Arial" in str(o.BaseFont))
        names = (str(font.BaseFont), str(font.FontDescriptor.FontName))
    assert all(n[7] == "+" and n.endswith("+Arial") and n.count("+") == 1 for n in names), names
    assert names[0] != "/QWERTY+Arial"


def test_the_form_fonts_are_those_a_default_appearance_names():
    """form_fonts (one pass over the objects) finds on a real tax form exactly the fonts its
    fields' /DA strings name, wherever a font table lists them under that name."""
    from squeezer.engines.pdf import fonts

    with pikepdf.open(pdfgen.corpus_file("pdfjs__prefilled_f1040.pdf", wide=False)) as pdf:
        names = {token.decode() for obj in pdf.objects if isinstance(obj, Dictionary)
                 and isinstance(obj.get("/DA"), pikepdf.String)
                 for token in bytes(obj.DA).split() if token.startswith(b"/")}
        expected = {value.objgen for obj in pdf.objects if isinstance(obj, Dictionary)
                    and isinstance(obj.get("/Font"), Dictionary)
                    and not isinstance(obj.get("/Font"), pikepdf.Stream)
                    for key, value in obj.Font.items()
                    if key in names and isinstance(value, Dictionary) and value.is_indirect}
        dr = pdf.Root.AcroForm.get("/DR")
        if isinstance(dr, Dictionary) and isinstance(dr.get("/Font"), Dictionary):
            expected |= {v.objgen for k, v in dr.Font.items()
                         if k in names and isinstance(v, Dictionary) and v.is_indirect}
        assert len(expected) == 3
        assert fonts.form_fonts(pdf) == expected
