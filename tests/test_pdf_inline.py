"""Inline images (engines/pdf/inline.py): large ones become image XObjects the image step
recompresses; the page draws the same pixels; small ones, and ones whose end a reader
would find elsewhere than a guess, stay inline."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pdfgen
import pikepdf
from pikepdf import Array, Dictionary, Name

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress


def _inline(data: bytes, width: int, height: int, keys: bytes) -> bytes:
    return b"BI /W %d /H %d %s ID\n" % (width, height, keys) + data + b"\nEI\n"


def inline_pdf(path: Path, pieces: list[bytes], resources: Dictionary | None = None,
               in_form: bool = False) -> Path:
    """One page drawing each inline image of ``pieces`` in a row of 1.5 x 1.5 in boxes,
    with a line of text under them; ``in_form`` draws them from a form XObject instead."""
    pdf = pikepdf.new()
    res = resources if resources is not None else Dictionary()
    body = b""
    for i, piece in enumerate(pieces):
        body += b"q 108 0 0 108 %d 500 cm\n" % (36 + 130 * i) + piece + b"Q\n"
    font = pdfgen.helvetica(pdf)
    if in_form:
        form = pdf.make_stream(body, Type=Name.XObject, Subtype=Name.Form,
                               BBox=Array([0, 0, 612, 792]), Resources=res)
        page_res = Dictionary(XObject=Dictionary(Fm0=form), Font=Dictionary(F1=font))
        content = b"/Fm0 Do\n"
    else:
        page_res = res
        page_res.Font = Dictionary(F1=font)
        content = body
    content += pdfgen.text_ops(["Inline images above"], y=400)
    pdfgen.add_page(pdf, content, page_res)
    pdf.save(path, compress_streams=False)
    pdf.close()
    return path


def photo_with_ei(width: int = 400, height: int = 300) -> np.ndarray:
    """A photo whose raw samples hold "EI" + white space, where a guessing parser stops."""
    photo = pdfgen.photo_array(width, height, seed=4)
    flat = photo.reshape(-1)
    for at in range(1000, flat.size - 4, 37_000):
        flat[at:at + 4] = np.frombuffer(b" EI ", np.uint8)
    return photo


def _inline_count(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        return sum(1 for _, op in pikepdf.parse_content_stream(pdf.pages[0]) if str(op) == "INLINE IMAGE")


def _xobject_images(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        return len(pdfgen.image_xobjects(pdf))


def test_a_raw_inline_photo_holding_ei_is_recompressed_and_renders_the_same(tmp_path):
    photo = photo_with_ei()
    src = inline_pdf(tmp_path / "in.pdf", [_inline(photo.tobytes(), 400, 300, b"/BPC 8 /CS /RGB")])
    lossless, medium = tmp_path / "lossless.pdf", tmp_path / "medium.pdf"
    report = compress(src, lossless, Options(level="lossless"))
    assert not report.original_kept and report.images.seen == 1
    assert _inline_count(lossless) == 0 and _xobject_images(lossless) == 1
    assert np.array_equal(pdfgen.render_rgb(src, 0), pdfgen.render_rgb(lossless, 0))
    assert pdfgen.page_texts(lossless) == pdfgen.page_texts(src)
    report = compress(src, medium, Options(level="medium"))
    assert report.images.to_jpeg == 1
    assert lossless.stat().st_size < src.stat().st_size
    assert medium.stat().st_size < src.stat().st_size // 4
    assert pdfgen.min_ssim(src, medium, pages=1) >= 0.95


def test_flate_ascii85_and_named_colour_space_inline_images_in_a_form(tmp_path):
    gray = pdfgen.photo_array(200, 150, seed=2)[:, :, 1]
    palette = np.random.default_rng(1).integers(0, 256, (16, 3), dtype=np.uint8)
    index = (pdfgen.photo_array(200, 150, seed=3)[:, :, 0] // 16).astype(np.uint8)
    import base64
    pieces = [
        _inline(zlib.compress(gray.tobytes()), 200, 150, b"/BPC 8 /CS /G /F /Fl"),
        _inline(base64.a85encode(gray.tobytes()) + b"~>", 200, 150, b"/BPC 8 /CS /G /F /A85"),
        _inline(index.tobytes(), 200, 150, b"/BPC 8 /CS /P0"),
    ]
    indexed = Array([Name.Indexed, Name.DeviceRGB, 15, pikepdf.String(palette.tobytes())])
    src = inline_pdf(tmp_path / "in.pdf", pieces, Dictionary(ColorSpace=Dictionary(P0=indexed)),
                     in_form=True)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="lossless"))
    assert report.images.seen == 3 and not report.original_kept
    with pikepdf.open(dst) as pdf:
        form = pdf.pages[0].Resources.XObject.Fm0
        assert len([op for _, op in pikepdf.parse_content_stream(form) if str(op) == "INLINE IMAGE"]) == 0
        spaces = [img.ColorSpace for img in pdfgen.image_xobjects(pdf)]
        assert any(isinstance(cs, Array) and cs[0] == Name.Indexed for cs in spaces)
    assert dst.stat().st_size < src.stat().st_size
    assert np.array_equal(pdfgen.render_rgb(src, 0), pdfgen.render_rgb(dst, 0))


def test_small_inline_images_and_ones_without_a_knowable_end_stay_inline(tmp_path):
    tiny = np.full((8, 8), 128, np.uint8)
    big = pdfgen.photo_array(200, 150, seed=5)[:, :, 0]
    pieces = [
        _inline(tiny.tobytes(), 8, 8, b"/BPC 8 /CS /G"),
        # run-length data: where it ends is not knowable without decoding: stays inline,
        # and so does everything after it in the stream
        _inline(_run_length(big.tobytes()), 200, 150, b"/BPC 8 /CS /G /F /RL"),
        _inline(big.tobytes(), 200, 150, b"/BPC 8 /CS /G"),
    ]
    src = inline_pdf(tmp_path / "in.pdf", pieces)
    dst = tmp_path / "out.pdf"
    compress(src, dst, Options(level="lossless"))
    assert _inline_count(dst) == 3
    assert np.array_equal(pdfgen.render_rgb(src, 0), pdfgen.render_rgb(dst, 0))


def _run_length(data: bytes) -> bytes:
    out = bytearray()
    for at in range(0, len(data), 128):
        chunk = data[at:at + 128]
        out += bytes([len(chunk) - 1]) + chunk
    return bytes(out + b"\x80")
