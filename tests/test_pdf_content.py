"""Content-stream numbers (engines/pdf/content.py): rounded to what moves nothing on the page
by more than 0.005 pt, at the scale each number is used at; the page renders the same."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pdfgen
import pikepdf
from pikepdf import Array, Dictionary, Name

from squeezer.engines.budget import Budget
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress, content
from squeezer.engines.ssim import ssim


class _Report:
    def __init__(self) -> None:
        self.steps: dict[str, int] = {}


def _paths(seed: int, count: int, span: float) -> bytes:
    """A stroked and a filled polyline with coordinates written to 7 decimals, the way
    plotting and Quartz output writes them."""
    rng = random.Random(seed)
    out = [b"0.1215686275 0.4666666667 0.7058823529 RG 0.7303421 w"]
    points = [(rng.uniform(0, span), rng.uniform(0, span)) for _ in range(count)]
    out.append(b"%.7f %.7f m" % points[0])
    out += [b"%.7f %.7f l" % p for p in points[1:]]
    out.append(b"S 0.9960784314 0.4980392157 0.0549019608 rg")
    out.append(b"%.7f %.7f %.7f %.7f re f" % (span * 0.1, span * 0.1, span * 0.3, span * 0.2))
    return b"\n".join(out) + b"\n"


def vector_pdf(path: Path, in_form: bool = False) -> Path:
    """A letter page of plotted paths at user-space scale, a block of them drawn through a
    1000 x scale (coordinates under 0.6), text kerned with 3-decimal TJ numbers, and
    optionally the paths in a form XObject drawn at scale 2."""
    pdf = pikepdf.new()
    font = pdfgen.helvetica(pdf)
    body = _paths(1, 400, 500)
    body += b"q 1000.0000 0 0 1000.0000 50.00001 50.00001 cm 0.0002 w\n" + _paths(2, 200, 0.5) + b"Q\n"
    body += (b"BT /F1 11.00000 Tf 0.9999999 0 0 1 72.0000001 740.123456 Tm "
             b"[(Rounded)-333.333(numbers)-12.3456(stay)-250.0001(put)] TJ ET\n")
    resources = Dictionary(Font=Dictionary(F1=font))
    if in_form:
        form = pdf.make_stream(_paths(3, 300, 250), Type=Name.XObject, Subtype=Name.Form,
                               BBox=Array([0, 0, 300, 300]))
        resources.XObject = Dictionary(Fm0=form)
        body += b"q 2 0 0 2 0 0 cm /Fm0 Do Q\n"
    pdfgen.add_page(pdf, body, resources)
    pdf.save(path)
    pdf.close()
    return path


def _render(path: Path, dpi: int = 150) -> np.ndarray:
    doc = pdfgen.open_pdfium(path)
    try:
        bitmap = doc[0].render(scale=dpi / 72, grayscale=True)
        return bitmap.to_numpy().squeeze().copy()
    finally:
        doc.close()


def _page_bytes(path: Path) -> bytes:
    with pikepdf.open(path) as pdf:
        contents = pdf.pages[0].obj.Contents
        streams = list(contents) if isinstance(contents, Array) else [contents]
        return b"".join(s.read_bytes() for s in streams)


def _ops(data: bytes) -> list[tuple[list[str], str]]:
    """(operands as text, operator) of a content stream."""
    with pikepdf.new() as pdf:
        return [([str(v) for v in operands], str(op))
                for operands, op in pikepdf.parse_content_stream(pikepdf.Stream(pdf, data))]


def test_numbers_rounded_at_the_scale_they_are_drawn_at(tmp_path: Path) -> None:
    src = vector_pdf(tmp_path / "in.pdf", in_form=True)
    out = tmp_path / "out.pdf"
    with pikepdf.open(src) as pdf:
        form_before = pdf.pages[0].Resources.XObject.Fm0.read_bytes()
        report = _Report()
        saved = content.round_numbers(pdf, Budget(), report)  # type: ignore[arg-type]
        assert saved > 0 and report.steps["content"] == saved
        form_after = pdf.pages[0].Resources.XObject.Fm0.read_bytes()
        pdf.save(out)
    before, after = _page_bytes(src), _page_bytes(out)
    assert len(after) < 0.8 * len(before)
    ops = _ops(after)
    decimals = {}
    for operands, op in ops:
        for text in operands:
            if "." in text:
                decimals.setdefault(op, set()).add(len(text.split(".")[1]))
    # user space: 2 decimals; the block drawn at 1000 x keeps 5 (0.005 pt / 1000)
    assert max(decimals["l"]) == 5 and 2 in decimals["l"]
    assert max(decimals["RG"]) <= 3
    # kerns, thousandths of an 11 pt em, placed within 0.0005 pt: 2 decimals
    assert b"-333.333" in before and b"[(Rounded)-333.33(numbers)-12.35(stay)-250(put)]" in after
    # the form, drawn at scale 2, keeps 3 decimals where it had 7
    assert len(form_after) < len(form_before)
    form_ops = _ops(form_after)
    assert max(len(v.split(".")[1]) for o, op in form_ops if op == "l" for v in o if "." in v) == 3
    a, b = _render(src), _render(out)
    assert ssim(a, b) > 0.995
    assert np.mean(np.abs(a.astype(int) - b.astype(int)) > 64) < 0.001


def test_streams_without_long_numbers_are_left_alone(tmp_path: Path) -> None:
    src = tmp_path / "text.pdf"
    pdfgen.text_pdf(src, pages=1)
    with pikepdf.open(src) as pdf:
        stream = pdf.pages[0].obj.Contents
        assert content.round_numbers(pdf, Budget(), _Report()) == 0  # type: ignore[arg-type]
        assert pdf.pages[0].obj.Contents.objgen == stream.objgen


def test_numbers_written_the_shortest_way() -> None:
    assert content.fixed(0.00002324581, 2) == b"0"
    assert content.fixed(-0.5, 3) == b"-.5"
    assert content.fixed(719.9999, 2) == b"720"
    assert content.fixed(-0.0001, 2) == b"0"
    assert content.significant(0.7303421) == b".730342"
    assert content.significant(-0.0000123456789) == b"-.0000123457"
    assert content.worth_rounding(b"1.1234567 2.7654321 l\n" * 40)
    assert not content.worth_rounding(b"1.12 2.75 l\n" * 40)


def test_medium_rounds_lossless_keeps_every_digit(tmp_path: Path) -> None:
    src = vector_pdf(tmp_path / "in.pdf")
    medium = compress(src, tmp_path / "medium.pdf", Options(level="medium"))
    lossless = compress(src, tmp_path / "lossless.pdf", Options(level="lossless"))
    assert medium.steps.get("content", 0) > 0 and not medium.warnings
    assert "content" not in lossless.steps
    assert medium.output_bytes < lossless.output_bytes
    assert b"740.123456" in _page_bytes(tmp_path / "lossless.pdf")
    assert b"740.123456" not in _page_bytes(tmp_path / "medium.pdf")


def test_null_operands_of_damaged_streams_are_kept(tmp_path: Path) -> None:
    """Fuzzed and damaged files put ``null`` where numbers belong; it is written back as it
    was, and the rest of the stream is still rounded."""
    pdf = pikepdf.new()
    body = _paths(4, 200, 500) + b"null 0.1234567 m [(a) null -12.3456789] TJ null w\n"
    pdfgen.add_page(pdf, body, Dictionary())
    src = tmp_path / "nulls.pdf"
    pdf.save(src)
    with pikepdf.open(src) as doc:
        assert content.round_numbers(doc, Budget(), _Report()) > 0  # type: ignore[arg-type]
        doc.save(tmp_path / "out.pdf")
    after = _page_bytes(tmp_path / "out.pdf")
    # (an instruction with a null operand keeps its numbers; a kern at font size 1 is whole)
    assert b"null 0.1234567 m" in after and b"[(a)null -12] TJ" in after and b"null w" in after


def test_a_stream_with_a_fuzzed_operator_is_kept_as_it_was(tmp_path: Path) -> None:
    """An operator that is no UTF-8 (a fuzzed file) leaves its stream untouched, no error."""
    pdf = pikepdf.new()
    body = _paths(5, 200, 500) + b"1.1234567 \xe3\xe3\n"
    pdfgen.add_page(pdf, body, Dictionary())
    src = tmp_path / "fuzzed.pdf"
    pdf.save(src)
    with pikepdf.open(src) as doc:
        assert content.round_numbers(doc, Budget(), _Report()) == 0  # type: ignore[arg-type]
    medium = compress(src, tmp_path / "out.pdf", Options(level="medium"))
    assert medium.output_bytes <= src.stat().st_size and b"\xe3\xe3" in _page_bytes(tmp_path / "out.pdf")


def test_rounded_content_is_deflated_by_the_flate_step(tmp_path: Path) -> None:
    """The rounded content is a new stream with no filter; the Flate step took only streams
    already Flate, so qpdf deflated these with zlib when it wrote the file: 8 % larger than
    libdeflate's on a code listing, enough for ``high`` to write a larger file than
    ``lossless``.  Now the page's stream is exactly what the Flate step writes."""
    from squeezer.engines.pdf import flate

    src = vector_pdf(tmp_path / "in.pdf")
    compress(src, tmp_path / "medium.pdf", Options(level="medium"))
    with pikepdf.open(tmp_path / "medium.pdf") as pdf:
        stream = pdf.pages[0].obj.Contents
        assert isinstance(stream, pikepdf.Stream) and stream.get("/Filter") == Name.FlateDecode
        assert len(stream.read_raw_bytes()) == len(flate.smallest(stream.read_bytes()))


def test_xmp_metadata_stays_unfiltered(tmp_path: Path) -> None:
    """qpdf leaves an unfiltered XMP stream as it is (PDF/A wants it readable without a
    filter); the Flate step, which now deflates unfiltered streams, does the same."""
    src = vector_pdf(tmp_path / "in.pdf")
    with pikepdf.open(src, allow_overwriting_input=True) as pdf:
        with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
            meta["dc:title"] = "Plotted paths " * 40
        pdf.save(src)
    compress(src, tmp_path / "medium.pdf", Options(level="medium"))
    with pikepdf.open(tmp_path / "medium.pdf") as pdf:
        xmp = pdf.Root.Metadata
        assert "/Filter" not in xmp and b"Plotted paths" in xmp.read_raw_bytes()
