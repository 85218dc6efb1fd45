"""Flate recompression: libdeflate 10 when smaller, predictors kept, corrupt streams left alone."""

from __future__ import annotations

import zlib

import numpy as np
import pdfgen
import pikepdf
from pikepdf import Dictionary, Name

from squeezer.engines.options import Options
from squeezer.engines import libdeflate
from squeezer.engines.pdf import compress, flate


def _predicted_image(pdf: pikepdf.Pdf, width: int = 300, height: int = 200) -> pikepdf.Stream:
    """A smooth gradient with a PNG Up predictor, as a careful writer stores it."""
    rows = np.tile(np.arange(width, dtype=np.uint8), (height, 1))
    filtered = bytearray()
    previous = np.zeros(width, dtype=np.uint8)
    for row in rows:
        filtered += b"\x02" + (row - previous).astype(np.uint8).tobytes()  # PNG "Up"
        previous = row
    image = pdf.make_stream(zlib.compress(bytes(filtered), 9))
    image.stream_dict.update(Dictionary(
        Type=Name.XObject, Subtype=Name.Image, Width=width, Height=height,
        ColorSpace=Name.DeviceGray, BitsPerComponent=8, Filter=Name.FlateDecode,
        DecodeParms=Dictionary(Predictor=12, Columns=width, Colors=1, BitsPerComponent=8)))
    return image


def test_fast_flate_is_recompressed_and_predictors_survive(tmp_path):
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    lines = pdfgen.words_lines(5, lines=200)
    content = pdfgen.text_ops(lines) + b"q 300 0 0 200 100 100 cm /Im1 Do Q\n"
    fast = pdf.make_stream(b"")
    fast.write(zlib.compress(content, 1), filter=Name.FlateDecode)
    image = _predicted_image(pdf)
    page = pdfgen.add_page(pdf, b"", Dictionary(Font=Dictionary(F1=pdfgen.helvetica(pdf)),
                                               XObject=Dictionary(Im1=image)))
    page.obj.Contents = fast
    pdf.save(src, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    with pikepdf.open(src) as before:
        fast_len = len(before.pages[0].obj.Contents.read_raw_bytes())

    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="lossless"))
    assert report.steps.get("flate", 0) > 0
    with pikepdf.open(dst) as after:
        contents = after.pages[0].obj.Contents
        assert len(contents.read_raw_bytes()) < fast_len
        assert contents.read_bytes() == content
        # the smaller of levels 9 and flate.LEVEL (10), which writes fewer bytes on text
        nine, ten = (len(libdeflate.compress(content, n)) for n in (9, flate.LEVEL))
        assert len(contents.read_raw_bytes()) == min(nine, ten) == ten < nine
        (out_image,) = pdfgen.image_xobjects(after)
        parms = out_image.get("/DecodeParms")
        assert parms is not None and int(parms.Predictor) >= 10, "the PNG predictor was dropped"
        assert np.array_equal(np.asarray(pikepdf.PdfImage(out_image).as_pil_image()),
                              np.tile(np.arange(300, dtype=np.uint8), (200, 1)))
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_libdeflate_writes_zlib_streams_any_inflater_reads():
    from squeezer.engines import libdeflate

    content = pdfgen.text_ops(pdfgen.words_lines(9, lines=400))
    for data in (content, b"", bytes(range(256)) * 64):
        packed = libdeflate.compress(data)
        assert isinstance(packed, bytes)
        assert zlib.decompress(packed) == data
    # a text content stream, what the step mostly deflates: fewer bytes than zlib's best
    assert len(libdeflate.compress(content)) < len(zlib.compress(content, 9))


def test_the_smaller_of_the_own_bytes_and_libdeflates_is_kept(tmp_path):
    """Palette-like runs, where zlib 9's lazy matching beats libdeflate 9: nothing grows."""
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    rng = np.random.default_rng(4)
    data = np.repeat(rng.integers(0, 38, 3000, dtype=np.uint8), rng.integers(1, 12, 3000)).tobytes()
    stream = pdf.make_stream(b"")
    stream.write(zlib.compress(data, 9), filter=Name.FlateDecode)
    pdfgen.add_page(pdf, pdfgen.text_ops(["kept"]),
                    Dictionary(Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    pdf.Root.Extra = stream  # (a stream no other step touches)
    pdf.save(src, compress_streams=False, stream_decode_level=pikepdf.StreamDecodeLevel.none)
    with pikepdf.open(src) as before:
        own = len(before.Root.Extra.read_raw_bytes())
    dst = tmp_path / "out.pdf"
    assert not compress(src, dst, Options(level="lossless")).original_kept
    with pikepdf.open(dst) as after:
        kept = after.Root.Extra
        assert len(kept.read_raw_bytes()) <= own
        assert kept.read_bytes() == data
