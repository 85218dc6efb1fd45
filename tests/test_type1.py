"""Type 1 programs become CFF (engines/pdf/type1.py, fontfiles.py): every glyph draws the same
(renders pixel-identical), fonts shrink, whole fonts are cut to the glyphs drawn; on real
LaTeX and Distiller files cut from the corpus (skipped without it)."""

from __future__ import annotations

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
