"""Layout tables (GSUB, GPOS, …), device tables (hdmx, VDMX, …) and duplicate names leave
embedded fonts no form types with; nothing else changes."""

from __future__ import annotations

import io
import struct

import pdfgen
import pikepdf
import pytest
from fontTools import subset
from fontTools.ttLib import TTFont
from pikepdf import Array, Dictionary, Name
from test_fonts import FULL_ARIAL, arial_program, same_everywhere, truetype_font

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress, flate, fonttables
from squeezer.engines.pdf.fonttables import BITMAPS, DEVICE

pytestmark = pytest.mark.skipif(not FULL_ARIAL.exists(), reason="needs ../shared/corpus")
LAYOUT = {"GSUB", "GPOS", "GDEF"}


def shaped_subset(office_names: bool = False) -> bytes:
    """Arial cut to printable ASCII the way Word embeds it: its layout tables kept, and with
    ``office_names`` its device tables and every name record (three platforms, translated
    style names) too."""
    font = TTFont(io.BytesIO(arial_program()))
    options = subset.Options()
    options.layout_features = ["*"]
    options.notdef_outline = True
    if office_names:
        options.name_IDs = ["*"]
        options.name_languages = ["*"]
        options.name_legacy = True
        options.drop_tables = [t for t in options.drop_tables if t not in DEVICE]
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="".join(chr(c) for c in range(32, 127)))
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


def tables(data: bytes) -> dict[str, bytes]:
    reader = TTFont(io.BytesIO(data), lazy=True).reader
    return {tag: reader[tag] for tag in reader.keys()}


def _pdf(path, in_form: bool, office_names: bool = False) -> None:
    pdf = pikepdf.new()
    program = pdf.make_stream(shaped_subset(office_names))
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
    assert set(after) == set(before) - LAYOUT - DEVICE - BITMAPS
    for tag in set(after) - {"head"}:
        assert after[tag] == before[tag], tag
    same_everywhere(src, dst)


def test_device_tables_and_duplicate_names_leave_and_every_name_stays_once(tmp_path):
    # Word's subsets keep hdmx/VDMX/LTSH/PCLT and every name record on three platforms;
    # a PDF reader uses none of them: each name id keeps its Windows English record
    # (copyright, trademark and licence text included), the copies go
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    _pdf(src, in_form=False, office_names=True)
    data = _program(src)
    before = TTFont(io.BytesIO(data))
    assert DEVICE & set(before.keys())
    platforms = {r.platformID for r in before["name"].names}
    assert {1, 3} <= platforms
    report = compress(src, dst, Options(level="lossless"))
    assert dst.stat().st_size < src.stat().st_size and report.steps["fonts"] > 0
    after = TTFont(io.BytesIO(_program(dst)))
    assert not DEVICE & set(after.keys())
    ids = {r.nameID for r in before["name"].names}
    kept = after["name"].names
    assert {r.nameID for r in kept} == ids
    assert len(kept) == len(ids)  # once each
    for name_id in ids:
        english = before["name"].getName(name_id, 3, 1, 0x409)
        if english is not None:
            assert after["name"].getName(name_id, 3, 1, 0x409).toUnicode() == english.toUnicode()
    assert "Monotype" in after["name"].getName(0, 3, 1, 0x409).toUnicode()  # the copyright
    for tag in set(tables(_program(dst))) - {"head", "name"}:
        assert tables(_program(dst))[tag] == tables(data)[tag], tag
    same_everywhere(src, dst)
    assert pdfgen.all_pages_identical(src, dst, scale=2.0) == []
    # written as the flate step writes: the smaller of libdeflate's levels 9 and 10
    with pikepdf.open(dst) as pdf:
        (program,) = [o for o in pdf.objects if isinstance(o, pikepdf.Stream) and "/Length1" in o]
        assert len(program.read_raw_bytes()) == len(flate.smallest(program.read_bytes()))


def test_a_font_the_form_types_with_keeps_its_layout_tables(tmp_path):
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    _pdf(src, in_form=True)
    compress(src, dst, Options(level="lossless"))
    assert LAYOUT <= set(tables(_program(dst)))


@pytest.mark.corpus
def test_office_bitmap_strikes_and_math_tables_leave_and_pages_render_the_same(tmp_path):
    # a PowerPoint deck's Calibri subsets carry EBDT/EBLC strikes, Cambria Math its MATH
    # table: readers draw the outlines and never shape, so both go, pixel for pixel the same
    src = pdfgen.corpus_file("cppcon2015__3D_Face_Tracking_and_Reconstruction_using_Modern_C_-_"
                             "Patrik_Huber_-_CppCon_2015.pdf")
    dst = tmp_path / "out.pdf"
    compress(src, dst, Options(level="lossless"))
    found: set[str] = set()
    with pikepdf.open(dst) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, Dictionary) and isinstance(obj.get("/FontFile2"), pikepdf.Stream):
                found |= set(tables(obj.FontFile2.read_bytes()))
    assert "glyf" in found and not (BITMAPS | {"MATH"}) & found
    assert pdfgen.all_pages_identical(src, dst, scale=2.0) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def _drop_set(data: bytes) -> frozenset[str]:
    lengths = fonttables._table_lengths(data)
    drop = (fonttables.DROPPABLE | DEVICE) & set(lengths)
    return drop | (BITMAPS & set(lengths)) if fonttables.OUTLINES & set(lengths) else drop


def _both(data: bytes) -> tuple[bytes | None, bytes | None]:
    lengths, drop = fonttables._table_lengths(data), _drop_set(data)
    return (fonttables._rewritten(data, lengths, drop),
            fonttables._rewritten_by_fonttools(data, lengths, drop))


def test_the_struct_rewrite_writes_what_fonttools_writes():
    """The rewrite without fontTools (issue 18: its import cost a cold run ~50 ms) writes the
    bytes fontTools wrote: Word-like subsets with layout tables, with every name record on
    three platforms, and the corpus' embedded TrueType programs."""
    for office_names in (False, True):
        fast, slow = _both(shaped_subset(office_names))
        assert fast is not None and fast == slow
    count = 0
    for name in ("docling__right_to_left_01.pdf", "camelot__background_lines.pdf",
                 "adobe-pdfservices__exportPdfFormDataInput.pdf"):
        with pikepdf.open(pdfgen.corpus_file(name)) as pdf:
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Stream) and "/Length1" in obj:
                    data = obj.read_bytes()
                    if fonttables._table_lengths(data):
                        fast, slow = _both(data)
                        assert fast == slow, (name, obj.objgen)
                        count += 1
    assert count >= 3


def test_a_name_table_fonttools_would_not_give_back_whole_leaves_the_program_as_it_is():
    # records out of the specification's order: fontTools sorts them when it writes, so the
    # table would change although no record goes; the program is kept (both ways)
    data = shaped_subset()
    font = TTFont(io.BytesIO(data))
    records = sorted(font["name"].names, key=lambda r: -r.nameID)
    strings = b"".join(r.toBytes() for r in records)
    head = struct.pack(">HHH", 0, len(records), 6 + 12 * len(records))
    at = 0
    for r in records:
        head += struct.pack(">6H", r.platformID, r.platEncID, r.langID, r.nameID,
                            len(r.toBytes()), at)
        at += len(r.toBytes())
    unsorted = _replace_table(data, "name", head + strings)
    assert len({r.nameID for r in records}) == len(records)  # (nothing to slim)
    assert _both(unsorted) == (None, None)


def _replace_table(data: bytes, tag: str, table: bytes) -> bytes:
    """``data`` with table ``tag``'s bytes replaced, appended at the end (directory patched)."""
    (count,) = struct.unpack_from(">H", data, 4)
    out = bytearray(data + bytes(-len(data) % 4))
    for i in range(count):
        at = 12 + 16 * i
        if data[at:at + 4] == tag.encode("latin-1"):
            struct.pack_into(">II", out, at + 8, len(out), len(table))
    return bytes(out + table)


def test_programs_the_rewrite_does_not_read_plainly_go_to_fonttools():
    data = shaped_subset(office_names=True)
    drop = _drop_set(data)
    # a table listed twice
    twice = bytearray(data)
    twice[12 + 16:12 + 32] = twice[12:28]
    with pytest.raises(fonttables._Unusual):
        fonttables._rewritten(bytes(twice), fonttables._table_lengths(bytes(twice)), drop)
    # a name table whose string offset is wrong (fontTools reads on, from the offset given)
    font = TTFont(io.BytesIO(data))
    name = font["name"].compile(font)
    (strings_at,) = struct.unpack_from(">H", name, 4)
    odd = _replace_table(data, "name", name[:4] + struct.pack(">H", strings_at + 2)
                         + name[6:strings_at] + b"\0\0" + name[strings_at:])
    with pytest.raises(fonttables._Unusual):
        fonttables._rewritten(odd, fonttables._table_lengths(odd), _drop_set(odd))
    # ... and such a program is still rewritten, by fontTools
    pdf = pikepdf.new()
    program = pdf.make_stream(odd)
    saved = fonttables._drop(program)
    expected = fonttables._rewritten_by_fonttools(odd, fonttables._table_lengths(odd),
                                                  _drop_set(odd))
    assert saved > 0 and expected is not None and program.read_bytes() == expected
