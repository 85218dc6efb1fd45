"""The JBIG2 generic-region coder: what PDFium decodes is exactly what was coded."""

from __future__ import annotations

import io

import numpy as np
import pdfgen
import pikepdf
import pypdfium2 as pdfium
import pytest
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.pdf import bilevel, bitonal, ccitt, jbig2

pytestmark = pytest.mark.skipif(not jbig2.available(), reason="numba is not importable")


def _pdf_with(ink: np.ndarray, data: bytes, filter_: Name, parms: Dictionary | None) -> bytes:
    """A one-page PDF whose page is the 1-bit image, one PDF unit per pixel."""
    h, w = ink.shape
    pdf = pikepdf.new()
    image = Stream(pdf, data, Type=Name.XObject, Subtype=Name.Image, Width=w, Height=h,
                   ColorSpace=Name.DeviceGray, BitsPerComponent=1, Filter=filter_)
    if parms is not None:
        image.DecodeParms = parms
    page = pdf.add_blank_page(page_size=(max(w, 3), max(h, 3)))
    page.Resources = Dictionary(XObject=Dictionary(Im0=image))
    page.Contents = pdf.make_stream(f"q {w} 0 0 {h} 0 {max(h, 3) - h} cm /Im0 Do Q".encode())
    buf = io.BytesIO()
    pdf.save(buf)
    return buf.getvalue()


def _decoded(ink: np.ndarray) -> np.ndarray:
    """What PDFium decodes from the JBIG2 stream of ``ink`` (True where black)."""
    pdf = pikepdf.open(io.BytesIO(_pdf_with(ink, jbig2.encode_generic(ink), Name.JBIG2Decode,
                                            None)))
    return bilevel.decode_ink(pdf.pages[0].Resources.XObject.Im0)


def _text_like(h: int, w: int, seed: int) -> np.ndarray:
    """Rows of word-like blobs with blank lines between them (like a scanned page)."""
    rng = np.random.default_rng(seed)
    ink = np.zeros((h, w), bool)
    for top in range(8, h - 20, 28):
        x = 10
        while x < w - 40:
            length = int(rng.integers(8, 40))
            ink[top:top + 14, x:x + length] = rng.random((14, length)) < 0.45
            x += length + int(rng.integers(6, 14))
    return ink


@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 9), (64, 64), (120, 333)])
def test_random_bitmaps_round_trip_exactly(shape):
    rng = np.random.default_rng(sum(shape))
    for density in (0.0, 0.03, 0.5, 1.0):
        ink = rng.random(shape) < density
        assert np.array_equal(_decoded(ink), ink), (shape, density)


def test_repeated_rows_use_typical_prediction_and_round_trip():
    row = np.random.default_rng(3).random(301) < 0.3
    ink = np.vstack([np.tile(row, (40, 1)), np.zeros((30, 301), bool), np.tile(~row, (25, 1))])
    assert np.array_equal(_decoded(ink), ink)
    # 95 rows, of which only 3 differ from the row above: a few bytes per changed row
    assert len(jbig2.encode_generic(ink)) < 400


def test_text_like_page_is_smaller_than_g4_and_lossless():
    ink = _text_like(1100, 850, seed=7)
    coded = jbig2.encode_generic(ink)
    assert np.array_equal(_decoded(ink), ink)
    assert len(coded) < 0.85 * len(ccitt.encode_g4(ink))


def test_bitonal_encode_uses_jbig2_for_pages_and_g4_for_small_or_when_off():
    ink = _text_like(1100, 1000, seed=1)
    best = bitonal.encode(ink)
    assert best.codec == "jbig2" and best.filter == Name.JBIG2Decode
    g4 = bitonal.encode(ink, use_jbig2=False)
    assert g4.codec == "ccitt" and g4.filter == Name.CCITTFaxDecode
    assert len(best.data) < len(g4.data)
    small = _text_like(400, 500, seed=1)  # below MIN_JBIG2_PIXELS: not worth loading numba
    assert bitonal.encode(small).codec == "ccitt"


def test_bilevel_decodes_byte_aligned_g4_that_libtiff_is_not_told_about():
    """HL1396-style CCITT (/EncodedByteAlign true): decoded by PDFium, same pixels as G4."""
    path = pdfgen.CORPUS / "pdfcpu__HL1396.pdf"
    if not path.exists():
        pytest.skip("corpus not present")
    pdf = pikepdf.open(path)
    image = pdf.pages[0].Resources.XObject["/Im1"]
    assert image.DecodeParms.EncodedByteAlign
    ink = bilevel.decode_ink(image)
    assert ink.shape == (3300, 2548) and 0.01 < ink.mean() < 0.3
    rendered = pdfium.PdfDocument(path)[0].render(scale=2548 / 612, grayscale=True).to_pil()
    # the page shows the same ink (rendering resamples a little: compare coverage)
    assert abs((np.asarray(rendered.convert("L")) < 128).mean() - ink.mean()) < 0.01


@pytest.mark.parametrize("black_is_1", [False, True])
def test_plain_g4_is_decoded_by_libtiff_to_pdfiums_samples(black_is_1):
    ink = _text_like(700, 613, seed=11)
    data = ccitt.encode_g4(ink if not black_is_1 else ~ink)
    parms = Dictionary(K=-1, Columns=613, Rows=700, BlackIs1=black_is_1)
    pdf = pikepdf.open(io.BytesIO(_pdf_with(ink, data, Name.CCITTFaxDecode, parms)))
    image = pdf.pages[0].Resources.XObject.Im0
    assert bilevel._plain_g4(image, 613, 700) is black_is_1  # (libtiff's path)
    assert bilevel._ends_with_eofb(data)
    assert np.array_equal(bilevel._decode(image), bilevel._decode_pdfium(image))
    assert np.array_equal(bilevel.decode_ink(image), ink)
    # damaged data is not libtiff's: PDFium decodes what a reader shows, or it fails as before
    image.write(data[: len(data) // 2], filter=Name.CCITTFaxDecode, decode_parms=parms)
    assert not bilevel._ends_with_eofb(data[: len(data) // 2])
    try:
        expected = bilevel._decode_pdfium(image)
    except ValueError:
        expected = None
    if expected is not None:
        assert np.array_equal(bilevel._decode(image), expected)


_PREFETCH = r"""
import sys
from pathlib import Path
import pikepdf
sys.path.insert(0, sys.argv[1])
import pdfgen
from squeezer.engines.pdf import jbig2, pipeline
from squeezer.engines.options import Options
from squeezer.engines.pdf.options import PdfOptions, resolve

text, scan = Path(sys.argv[2]) / "text.pdf", Path(sys.argv[2]) / "scan.pdf"
pdfgen.text_pdf(text)
pdfgen.bitonal_scan_pdf(scan)
medium = resolve(Options(level="medium"))
with pikepdf.open(text) as pdf:
    assert pipeline._prefetch_jbig2(pdf, medium) is None  # nothing 1-bit: not loaded
assert not jbig2.loaded()
with pikepdf.open(scan) as pdf:
    off = resolve(Options(level="medium", jbig2=False))
    assert pipeline._prefetch_jbig2(pdf, off) is None
    loader = pipeline._prefetch_jbig2(pdf, medium)
    assert loader is not None and loader.daemon
    loader.join()
assert jbig2.loaded() and jbig2.available()
with pikepdf.open(scan) as pdf:
    assert pipeline._prefetch_jbig2(pdf, medium) is None  # loaded once per process
print("ok")
"""


def test_the_coder_is_loaded_ahead_only_for_documents_that_need_it(tmp_path):
    """(In a fresh process: this one has the coder loaded already.)"""
    import subprocess
    import sys
    from pathlib import Path

    done = subprocess.run(
        [sys.executable, "-c", _PREFETCH, str(Path(__file__).parent), str(tmp_path)],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
