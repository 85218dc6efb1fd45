"""The LZW length counter agrees with qpdf's decoder, and stops early on bombs."""

from __future__ import annotations

import io

import numpy as np
import pdfgen
import pikepdf
import pytest
from PIL import Image

from squeezer.engines.pdf.lzw import decoded_length


def qpdf_decode(data: bytes, early_change: int | None = None) -> bytes:
    pdf = pikepdf.new()
    stream = pdf.make_stream(b"")
    parms = pikepdf.Dictionary(EarlyChange=early_change) if early_change is not None else None
    stream.write(data, filter=pikepdf.Name.LZWDecode, decode_parms=parms)
    return stream.read_bytes()


def tiff_lzw_strip(array: np.ndarray) -> bytes:
    """LZW data written by libtiff (MSB-first codes with early change, as in PDF)."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "TIFF", compression="tiff_lzw", rowsperstrip=array.shape[0])
    image = Image.open(buffer)
    offset, count = image.tag_v2[273][0], image.tag_v2[279][0]
    return buffer.getvalue()[offset:offset + count]


@pytest.mark.parametrize("cycles", [1, 4])
def test_counts_the_bomb_generator_exactly(cycles):
    data, expected = pdfgen.lzw_zeros(cycles)
    assert decoded_length(data) == expected == len(qpdf_decode(data))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_counts_real_encoder_output_like_qpdf(seed):
    rng = np.random.default_rng(seed)
    array = (rng.integers(0, 3 + seed * 40, (120, 333)) * (255 // (3 + seed * 40))).astype(np.uint8)
    data = tiff_lzw_strip(array)
    assert decoded_length(data) == len(qpdf_decode(data))


def test_stops_counting_past_the_limit():
    data, expected = pdfgen.lzw_zeros(10)
    assert 1000 < decoded_length(data, stop_after=1000) < expected


def test_garbage_never_raises():
    rng = np.random.default_rng(7)
    for _ in range(20):
        data = rng.integers(0, 256, 500, dtype=np.uint8).tobytes()
        assert decoded_length(data) >= 0


def test_a_pdf_with_a_corrupt_lzw_stream_compresses_or_names_the_damage(tmp_path):
    from squeezer.engines.errors import EngineError
    from squeezer.engines.options import Options
    from squeezer.engines.pdf import compress

    src = tmp_path / "bad_lzw.pdf"
    pdf = pikepdf.new()
    pdfgen.add_page(pdf, b"BT /F1 12 Tf 72 720 Td (corrupt lzw) Tj ET",
                    pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=pdfgen.helvetica(pdf))))
    junk = pdf.make_stream(b"")
    junk.write(bytes(range(256)) * 4, filter=pikepdf.Name.LZWDecode)
    pdf.Root.Junk = junk
    pdf.save(src)
    dst = tmp_path / "out.pdf"
    try:
        report = compress(src, dst, Options())
    except EngineError as exc:
        assert exc.code == "pdf_invalid" and not dst.exists()
        return
    assert report.pages == 1
    assert pdfgen.page_texts(dst) == ["corrupt lzw"]
