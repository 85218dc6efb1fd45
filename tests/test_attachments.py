"""Embedded files (engines/pdf/attachments.py): PDFs and images inside a PDF go through their
own engines, the rest is deflated; the file specification describes the new bytes."""

from __future__ import annotations

import hashlib
import io
import zlib

import pdfgen
import pikepdf
from pikepdf import Dictionary, Name
from PIL import Image

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress


def _attach(pdf: pikepdf.Pdf, name: str, data: bytes, compressed: bool) -> None:
    stream = pdf.make_stream(data, Type=Name.EmbeddedFile)
    if compressed:
        stream.write(zlib.compress(data, 1), filter=Name.FlateDecode)
    stream.Params = Dictionary(Size=len(data), CheckSum=pikepdf.String(hashlib.md5(data).digest()))
    spec = pdf.make_indirect(Dictionary(Type=Name.Filespec, F=pikepdf.String(name),
                                        UF=pikepdf.String(name), EF=Dictionary(F=stream)))
    if "/Names" not in pdf.Root:
        pdf.Root.Names = Dictionary(EmbeddedFiles=Dictionary(Names=pikepdf.Array()))
    pdf.Root.Names.EmbeddedFiles.Names.extend([pikepdf.String(name), spec])


def test_embedded_pdf_image_and_raw_data_shrink_and_stay_whole(tmp_path):
    inner = tmp_path / "inner.pdf"
    pdfgen.uncompressed_text_pdf(inner, pages=8)  # a PDF another run makes much smaller
    photo = io.BytesIO()
    Image.fromarray(pdfgen.photo_array(400, 300)).save(photo, "JPEG", quality=95)
    wav = b"RIFF" + bytes(200_000)  # uncompressed, highly compressible
    pdf = pikepdf.new()
    pdfgen.add_page(pdf, pdfgen.text_ops(["A document with attachments"]),
                    Dictionary(Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    _attach(pdf, "inner.pdf", inner.read_bytes(), compressed=True)
    _attach(pdf, "photo.jpg", photo.getvalue(), compressed=True)
    _attach(pdf, "sound.wav", wav, compressed=False)
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    pdf.save(src, compress_streams=False)
    report = compress(src, dst, Options(level="medium"))
    assert report.steps["attachments"] > 0 and not report.original_kept
    with pikepdf.open(dst) as out:
        names = out.Root.Names.EmbeddedFiles.Names
        files = {str(names[i]): names[i + 1].EF.F for i in range(0, len(names), 2)}
        assert set(files) == {"inner.pdf", "photo.jpg", "sound.wav"}  # every attachment kept
        for stream in files.values():  # /Params describe the bytes as they now are
            data = stream.read_bytes()
            assert int(stream.Params.Size) == len(data)
            assert bytes(stream.Params.CheckSum) == hashlib.md5(data).digest()
        inner_out = files["inner.pdf"].read_bytes()
        assert len(inner_out) < inner.stat().st_size // 2
        assert files["sound.wav"].read_bytes() == wav  # other files: same bytes, deflated
        photo_out = files["photo.jpg"].read_bytes()
        assert len(photo_out) <= len(photo.getvalue())
        # the image is re-packed losslessly: the same pixels
        assert Image.open(io.BytesIO(photo_out)).tobytes() == \
            Image.open(io.BytesIO(photo.getvalue())).tobytes()
    nested = tmp_path / "nested.pdf"
    nested.write_bytes(inner_out)
    assert pdfgen.page_texts(nested) == pdfgen.page_texts(inner)
