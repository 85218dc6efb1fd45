"""Type 1 programs become CFF (engines/pdf/type1.py, fontfiles.py): every glyph draws the same
(renders pixel-identical), fonts shrink, whole fonts are cut to the glyphs drawn; on real
LaTeX and Distiller files cut from the corpus (skipped without it)."""

from __future__ import annotations

import itertools

import numpy as np
import pdfgen
import pikepdf
import pytest
from pikepdf import Name

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress, type1

pytestmark = pytest.mark.corpus


def _programs(path) -> dict[str, int]:
    """Bytes of the embedded font programs by kind (/FontFile, /FontFile3 ...)."""
    out: dict[str, int] = {}
    seen = set()
    with pikepdf.open(path) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == Name.FontDescriptor:
                for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                    program = obj.get(key)
                    if isinstance(program, pikepdf.Stream) and program.objgen not in seen:
                        seen.add(program.objgen)
                        out[key] = out.get(key, 0) + len(program.read_raw_bytes())
    return out


def test_latex_type1_fonts_become_cff_and_render_identically(tmp_path):
    """pdfTeX subsets (Computer Modern, Nimbus): hints, flex and hint replacement."""
    src = pdfgen.corpus_file("pdfminer__naacl06-shinyama.pdf")
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="lossless"))
    assert not report.original_kept and report.warnings == []
    before, after = _programs(src), _programs(dst)
    assert "/FontFile" not in after  # every program converted
    assert after["/FontFile3"] < 0.5 * before["/FontFile"]
    assert pdfgen.all_pages_identical(src, dst) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_whole_type1_fonts_are_cut_to_the_glyphs_drawn(tmp_path):
    src = pdfgen.corpus_file("camelot__assam.pdf")  # four whole Type 1 fonts, 85 % of the file
    dst = tmp_path / "out.pdf"
    # (low: the lowest level that subsets; medium also rounds content-stream numbers, which
    # may move a glyph by a fraction of a pixel, so its pages are not bit-identical)
    compress(src, dst, Options(level="low"))
    assert dst.stat().st_size < 0.1 * src.stat().st_size
    with pikepdf.open(dst) as pdf:
        fonts = [o for o in pdf.objects if isinstance(o, pikepdf.Dictionary)
                 and o.get("/Type") == Name.Font and o.get("/Subtype") == Name.Type1]
        assert fonts and all(str(f.BaseFont)[7] == "+" for f in fonts)  # named as subsets
    assert pdfgen.all_pages_identical(src, dst) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_subsets_of_one_font_share_one_program():
    """Two subsets of a font (split as pdfTeX splits them per figure) merge into one program
    that draws every glyph of both exactly as each did."""
    src = pdfgen.corpus_file("pdfminer__naacl06-shinyama.pdf")
    with pikepdf.open(src) as pdf:
        program = next(type1.read(o.FontFile.read_bytes()) for o in pdf.objects
                       if isinstance(o, pikepdf.Dictionary) and o.get("/Type") == Name.FontDescriptor
                       and str(o.get("/FontName")).endswith("NimbusRomNo9L-Regu"))
    names = sorted(n for n in program.glyphs if n != ".notdef")
    a = type1.subset(program, set(names[0::2]))
    b = type1.subset(program, set(names[1::2]) | {names[0]})
    merged = type1.merge([a, b])
    assert merged is not None and set(merged.glyphs) == set(program.glyphs)
    data = type1.to_cff(merged, serves=[a, b])  # raises unless each glyph draws as before
    assert len(data) < len(type1.to_cff(a)) + len(type1.to_cff(b))
    # a glyph that differs keeps them apart
    other = type1.Program(b.font, dict(b.glyphs))
    other.glyphs[names[0]] = program.glyphs[names[2]]
    assert type1.merge([a, other]) is None


def test_eexec_decryption_matches_the_reference():
    from fontTools.misc import eexec

    data = bytes(np.random.default_rng(5).integers(0, 256, 5000, dtype=np.uint8))
    assert type1._decrypt(data, 55665) == eexec.decrypt(data, 55665)[0]
    pieces = eexec.decrypt(data[:1234], 4330)[0] + eexec.decrypt(data[1234:], 4330)[0]
    assert type1._decrypt(data, 4330, [0, 1234]) == pieces
    # every length up to a few bytes, and many pieces (some a byte long, one empty)
    for length in range(6):
        assert type1._decrypt(data[:length], 55665) == eexec.decrypt(data[:length], 55665)[0]
    starts = [0, 1, 2, 3, 3, 10, 700, 701, 4999]
    bounds = [*starts, 5000]
    pieces = b"".join(eexec.decrypt(data[a:b], 4330)[0] for a, b in itertools.pairwise(bounds))
    assert type1._decrypt(data, 4330, starts) == pieces
    assert type1._decrypt(b"", 4330, [0]) == b""


def test_the_plain_decryption_gives_the_vectorised_ones_bytes():
    """Small programs in a process without numpy are decrypted byte by byte (issue 18):
    the same bytes as the vectorised scan, restarts included (at 0, repeated, at the end)."""
    from fontTools.misc import eexec

    data = bytes(np.random.default_rng(7).integers(0, 256, 6000, dtype=np.uint8))
    assert type1._decrypt_plain(data, 55665) == eexec.decrypt(data, 55665)[0]
    starts = [0, 17, 17, 900, 901, 5999, 6000]
    assert type1._decrypt_plain(data, 4330, starts) == type1._decrypt(data, 4330, starts)
    pieces = b"".join(eexec.decrypt(data[a:b], 4330)[0]
                      for a, b in zip([0, 17, 900, 901, 5999], [17, 900, 901, 5999, 6000]))
    assert type1._decrypt_plain(data, 4330, starts) == pieces
    assert type1._decrypt_plain(b"", 4330, [0]) == b""


def test_decryption_imports_numpy_only_past_the_plain_budget():
    """In a process without numpy, programs are decrypted plainly until
    PLAIN_DECRYPT_BYTES are done; the next one imports numpy (same bytes either way)."""
    import json
    import subprocess
    import sys

    code = (
        "import json, os, sys\n"
        "from squeezer.engines.pdf import type1\n"
        "small = os.urandom(1000)\n"
        "first = type1._decrypt(small, 4330, [0, 500])\n"
        "before = 'numpy' in sys.modules\n"
        "big = os.urandom(type1.PLAIN_DECRYPT_BYTES)\n"
        "second = type1._decrypt(big, 55665)\n"
        "after = 'numpy' in sys.modules\n"
        "import numpy\n"
        "same = first == type1._decrypt(small, 4330, [0, 500]) "
        "and second == type1._decrypt_plain(big, 55665)\n"
        "print(json.dumps([before, after, same]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    assert json.loads(out.stdout.splitlines()[-1]) == [False, True, True]


def test_a_damaged_program_is_kept_as_it_is():
    with pytest.raises(type1.NotConvertible):
        type1.convert(b"%!PS-AdobeFont-1.0: Broken\n/FontName /Broken def currentfile eexec \x00\x01")


def test_glyphs_are_interpreted_only_when_a_program_keeps_them():
    """A whole font is cut before it is converted: a charstring that does not run in a glyph
    the document never draws no longer keeps the font Type 1 (nor costs its interpretation)."""
    from fontTools.misc.psCharStrings import T1CharString

    src = pdfgen.corpus_file("camelot__assam.pdf")  # four whole Type 1 fonts
    with pikepdf.open(src) as pdf:
        data = next(o.FontFile.read_bytes() for o in pdf.objects
                    if isinstance(o, pikepdf.Dictionary) and o.get("/Type") == Name.FontDescriptor
                    and isinstance(o.get("/FontFile"), pikepdf.Stream))
    program = type1.read(data)
    names = sorted(n for n in program.glyphs if n != ".notdef")
    assert len(names) > 100
    keep = set(names[:8])
    reference = type1.to_cff(type1.subset(type1.read(data), keep))
    broken = names[-1]
    program.font["CharStrings"][broken] = T1CharString(program=[0, 0, "nosuchop"])
    cut = type1.subset(program, keep)
    assert broken not in cut.glyphs
    assert type1.to_cff(cut) == reference  # (checked glyph by glyph against the Type 1 program)
    with pytest.raises(type1.NotConvertible):
        type1.to_cff(program)  # the whole program holds the glyph that does not run


def test_a_whole_font_whose_drawn_glyph_does_not_run_stays_type1(tmp_path):
    """A tax form's whole Type 1 fonts: one draws a glyph whose charstring uses an operator
    Type 1 does not have; that program stays as it is (named as it was), the others are cut."""
    src = pdfgen.corpus_file("pdfminer__f1040nr.pdf")
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="low"))
    assert not report.original_kept
    before, after = _programs(src), _programs(dst)
    assert 0 < after["/FontFile"] < before["/FontFile"]  # the one kept, as Type 1
    assert after.get("/FontFile3", 0) > 0  # the others converted
    with pikepdf.open(dst) as pdf:
        for d in pdf.objects:
            if isinstance(d, pikepdf.Dictionary) and d.get("/Type") == Name.FontDescriptor \
                    and isinstance(d.get("/FontFile"), pikepdf.Stream):
                assert str(d.FontName)[7:8] != "+"  # not renamed as a subset
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_type1_programs_of_descriptors_without_a_type_become_cff(tmp_path):
    # an old TeX toolchain wrote its font descriptors without /Type /FontDescriptor; readers
    # find them through the fonts, and so do the font steps now (the programs shrink)
    src = pdfgen.corpus_file("pdfcpu__go-lecture.pdf", wide=False)
    with pikepdf.open(src) as pdf:
        untyped = [o for o in pdf.objects if isinstance(o, pikepdf.Dictionary)
                   and "/FontFile" in o and "/Type" not in o]
        assert len(untyped) >= 10
        before = sum(len(o.FontFile.read_raw_bytes()) for o in untyped)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="lossless"))
    assert not report.original_kept and report.warnings == []
    after = _programs(dst)
    assert "/FontFile" not in after  # every program converted, its descriptor typed
    assert after["/FontFile3"] < 0.6 * before
    assert pdfgen.all_pages_identical(src, dst) == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def _corpus_charstrings(name: str) -> list[bytes]:
    """The decrypted charstrings and subroutines of every Type 1 program of a corpus file."""
    out = []
    with pikepdf.open(pdfgen.corpus_file(name)) as pdf:
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary) and isinstance(obj.get("/FontFile"),
                                                                  pikepdf.Stream):
                font = type1.parse(obj.FontFile.read_bytes())
                for charstring in [*font["CharStrings"].values(), *font["Private"]["Subrs"]]:
                    out.append(charstring.bytecode)
    return out


def test_charstrings_decode_to_the_tokens_fonttools_reads():
    """The one-loop decoder gives exactly fontTools' program (values and their types) for
    every charstring of real LaTeX and Distiller fonts and for odd and truncated bytes."""
    import struct

    from fontTools.misc.psCharStrings import T1CharString

    def reference(data: bytes) -> list:
        charstring = T1CharString(data)
        charstring.decompile()
        return charstring.program

    datas = _corpus_charstrings("pdfminer__naacl06-shinyama.pdf") \
        + _corpus_charstrings("camelot__assam.pdf")
    assert len(datas) > 2000
    for data in datas:
        tokens = type1._t1_tokens(data)
        assert tokens == reference(data)
        assert [type(t) for t in tokens] == [type(t) for t in reference(data)]
    # every number form, an unknown operator, an unknown escape, seac, div
    data = bytes([32, 139, 246, 247, 0, 250, 255, 251, 0, 254, 255, 255, 0x80, 0, 0, 0,
                  255, 0x7F, 0xFF, 0xFF, 0xFF, 15, 12, 99, 12, 6, 12, 12, 13])
    assert type1._t1_tokens(data) == reference(data) == [
        -107, 0, 107, 108, 1131, -108, -1131, -2 ** 31, 2 ** 31 - 1, "unknown_15",
        "unknown_12_99", "seac", "div", "hsbw"]
    for truncated in (bytes([247]), bytes([12]), bytes([255, 1, 2])):
        with pytest.raises((IndexError, struct.error)) as ours:
            type1._t1_tokens(truncated)
        with pytest.raises(ours.type):
            reference(truncated)


def _cff_charstrings(data: bytes) -> list:
    import io

    from fontTools.cffLib import CFFFontSet

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), None)
    top = cff[cff.fontNames[0]]
    return list(top.CharStrings.values())


def _fonttools_t2(charstring) -> tuple[list, list, float]:
    """What fontTools' own T2 drawing decodes and draws (a fresh copy of the charstring)."""
    from fontTools.misc.psCharStrings import T2CharString
    from fontTools.pens.recordingPen import RecordingPen

    copy = T2CharString(bytecode=charstring.bytecode, private=charstring.private,
                        globalSubrs=charstring.globalSubrs)
    pen = RecordingPen()
    copy.draw(pen)
    return copy.program, pen.value, copy.width


def test_type2_charstrings_decode_and_draw_as_fonttools_draws_them():
    """The check's Type 2 side: the decoder gives fontTools' program (hint mask lengths
    included), and the extractor loop draws what fontTools draws, on the CFF programs
    converted from a document's Type 1 fonts (seac accents, flex, hint replacement) and on
    other producers' CFF fonts (whose subroutine calls the decoder leaves to fontTools)."""
    from fontTools.pens.recordingPen import RecordingPen

    charstrings = []
    for name, key in (("tika__testPDF_bad_page_303226.pdf", "/FontFile"),
                      ("camelot__eu-019.pdf", "/FontFile3")):
        with pikepdf.open(pdfgen.corpus_file(name)) as pdf:
            for obj in pdf.objects:
                if isinstance(obj, pikepdf.Dictionary) and isinstance(obj.get(key), pikepdf.Stream):
                    data = obj[key].read_bytes()
                    charstrings += _cff_charstrings(
                        type1.convert(data) if key == "/FontFile" else data)
    decoded = left = drawn = 0
    for charstring in charstrings:
        program, outline, width = _fonttools_t2(charstring)
        ours = type1._t2_tokens(charstring.bytecode)
        if ours is None:
            left += 1
        else:
            decoded += 1
            assert ours == program and [type(t) for t in ours] == [type(t) for t in program]
            private = charstring.private
            fast = type1._t2_outline(ours, private.nominalWidthX, private.defaultWidthX)
            if fast is not None:
                drawn += 1
                assert fast == (outline, width)
        pen = RecordingPen()
        assert type1._draw_t2(charstring, pen) == width
        assert pen.value == outline
    assert (decoded, left, drawn) == (346, 278, 288)  # (58 accented glyphs: fontTools draws)
    # width, two stems, hintmask (1 byte), vstemhm after it, a second hintmask, a 16.16
    # and a 16-bit operand, flex, endchar
    data = bytes([139 + 50, 139, 139 + 10, 139 + 20, 139 + 5, 18, 19, 0b11000000,
                  139 + 1, 139 + 2, 23, 19, 0b01000000, 255, 0, 1, 0x80, 0, 28, 0x80, 0,
                  21]) + bytes([139] * 13) + b"\x0c\x23\x0e"
    program = type1._t2_tokens(data)
    assert program == [50, 0, 10, 20, 5, "hstemhm", "hintmask", b"\xc0", 1, 2, "vstemhm",
                       "hintmask", b"\x40", 1.5, -32768, "rmoveto", *[0] * 13, "flex",
                       "endchar"]
    assert type1._t2_tokens(b"\x8b\x0a") is None  # callsubr: left to fontTools
    assert type1._t2_tokens(bytes([139, 139, 18, 19])) is None  # the mask's byte is missing


def test_the_check_draws_as_fonttools_draws_the_type1_glyphs():
    """The check's Type 1 side (fontTools' extractor in a plain loop) draws every glyph of
    LaTeX and Distiller fonts (flex, hint replacement, seac accents) as ``T1CharString.draw``
    does."""
    from fontTools.pens.recordingPen import DecomposingRecordingPen

    drawn = 0
    for file in ("ghostpdl__ghostpdl.pdf", "tika__testPDF_bad_page_303226.pdf"):
        pdf = pikepdf.open(pdfgen.corpus_file(file))
        for obj in pdf.objects:
            if isinstance(obj, pikepdf.Dictionary) and isinstance(obj.get("/FontFile"),
                                                                  pikepdf.Stream):
                program = type1.read(obj.FontFile.read_bytes())
                dict(program.glyphs)  # (interpreted: the programs are decoded, as in the check)
                charstrings = program.font["CharStrings"]
                for charstring in charstrings.values():
                    ours, theirs = (DecomposingRecordingPen(charstrings) for _ in range(2))
                    width = type1._draw_t1(charstring, ours)
                    charstring.draw(theirs)
                    assert ours.value == theirs.value and width == charstring.width
                    drawn += 1
    assert drawn == 585


def test_a_converted_glyph_that_draws_differently_is_refused():
    """The check still compares each glyph drawn from the written CFF with the Type 1 glyph:
    a point moved by one unit, or another advance, refuses the conversion."""
    import dataclasses

    src = pdfgen.corpus_file("pdfminer__naacl06-shinyama.pdf")
    with pikepdf.open(src) as pdf:
        program = next(type1.read(o.FontFile.read_bytes()) for o in pdf.objects
                       if isinstance(o, pikepdf.Dictionary) and o.get("/Type") == Name.FontDescriptor
                       and str(o.get("/FontName")).endswith("NimbusRomNo9L-Regu"))
    glyphs = dict(program.glyphs)
    type1._check(program.font, type1._build(program.font, dict(glyphs)), set(glyphs))
    moved = dict(glyphs)
    path = list(glyphs["a"].path)
    at = next(i for i, (command, _) in enumerate(path) if command == "L")
    x, y = path[at][1]
    path[at] = ("L", (x + 1, y))
    moved["a"] = dataclasses.replace(glyphs["a"], path=path)
    with pytest.raises(type1.NotConvertible, match="glyph a draws differently"):
        type1._check(program.font, type1._build(program.font, moved), set(moved))
    wider = dict(glyphs)
    wider["a"] = dataclasses.replace(glyphs["a"], width=glyphs["a"].width + 1)
    with pytest.raises(type1.NotConvertible, match="glyph a draws differently"):
        type1._check(program.font, type1._build(program.font, wider), set(wider))


def test_type2_operands_are_written_in_their_shortest_form():
    def put(value: float) -> bytes:
        out = bytearray()
        type1._put(out, value)
        return bytes(out)

    assert [put(v) for v in (0, 107, -107, 108, 1131, -108, -1131, 1132, 32767, -32767)] == [
        b"\x8b", b"\xf6", b"\x20", b"\xf7\x00", b"\xfa\xff", b"\xfb\x00", b"\xfe\xff",
        b"\x1c\x04\x6c", b"\x1c\x7f\xff", b"\x1c\x80\x01"]
    from fontTools.misc.psCharStrings import encodeIntT2

    assert all(put(v) == encodeIntT2(v) for v in range(-32767, 32768))  # fontTools' encoding
    assert put(2.0) == put(2) == b"\x8d"  # an integral quotient is an integer
    assert put(-0.5) == b"\xff\xff\xff\x80\x00" and put(1 + 1 / 65536) == b"\xff\x00\x01\x00\x01"
    for value in (32768, -32768, 40000.0, 0.1):  # beyond CFF's range, or not 16.16
        with pytest.raises(type1.NotConvertible):
            put(value)


def test_type2_outlines_are_drawn_as_fonttools_draws_them():
    """:func:`type1._t2_outline` on random programs of the operators the writer uses, with
    operand counts right and wrong: where it draws, fontTools draws the same points and
    advance; where fontTools fails, it declines (fontTools then draws and fails as before)."""
    import random

    from fontTools.cffLib import PrivateDict
    from fontTools.misc.psCharStrings import T2CharString
    from fontTools.pens.recordingPen import RecordingPen

    rnd = random.Random(18)
    counts = {1: [0, 2, 3, 4], 3: [2, 3], 18: [2, 4, 5], 23: [1, 2], 19: [0, 1, 2], 21: [1, 2, 3],
              22: [0, 1, 2], 4: [1, 2], 5: [1, 2, 4], 6: [1, 2, 3], 7: [0, 1, 5], 8: [5, 6, 12],
              30: [3, 4, 5, 8, 9, 13], 31: [4, 5, 6, 12], 14: [0, 1, 4], 35: [12, 13]}
    private = PrivateDict()
    private.nominalWidthX, private.defaultWidthX = 17, 500
    outcomes = {"same": 0, "declined": 0, "both refuse": 0}
    for _ in range(3000):
        data = bytearray()
        for _ in range(rnd.randrange(1, 12)):
            op = rnd.choice(list(counts))
            for _ in range(rnd.choice(counts[op])):
                value = rnd.choice([rnd.randint(-1131, 1131), rnd.randint(-32767, 32767),
                                    rnd.randint(-2 ** 20, 2 ** 20) / 65536])
                type1._put(data, value)
            data += b"\x0c\x23" if op == 35 else bytes([op])
            if op == 19:
                data += bytes(rnd.randrange(256) for _ in range(rnd.randrange(3)))
        program = type1._t2_tokens(bytes(data))
        if program is None:
            continue
        ours = type1._t2_outline(program, 17, 500)
        charstring = T2CharString(bytecode=bytes(data), private=private, globalSubrs=[])
        pen = RecordingPen()
        try:
            charstring.draw(pen)
        except (IndexError, ValueError, TypeError, AssertionError):
            assert ours is None
            outcomes["both refuse"] += 1
            continue
        if ours is None:
            outcomes["declined"] += 1
        else:
            assert ours == (pen.value, charstring.width)
            outcomes["same"] += 1
    assert outcomes == {"same": 840, "declined": 209, "both refuse": 1816}


def test_a_charstring_cut_inside_a_number_keeps_the_program_type1():
    """A charstring ending inside a 5-byte number (a damaged program) raised struct.error out
    of the font step; the program is now kept as it is, as any charstring that does not run."""
    from fontTools.misc.psCharStrings import T1CharString

    with pikepdf.open(pdfgen.corpus_file("pdfminer__naacl06-shinyama.pdf")) as pdf:
        data = next(o.FontFile.read_bytes() for o in pdf.objects
                    if isinstance(o, pikepdf.Dictionary) and isinstance(o.get("/FontFile"),
                                                                        pikepdf.Stream))
    program = type1.read(data)
    name = next(n for n in program.font["CharStrings"] if n != ".notdef")
    program.font["CharStrings"][name] = T1CharString(bytes([139, 139, 13, 255, 0, 1]))
    with pytest.raises(type1.NotConvertible, match="does not run"):
        type1.to_cff(program)
