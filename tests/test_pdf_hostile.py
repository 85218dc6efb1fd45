"""Hostile and malformed inputs: each is refused with its named error, or repaired.

Rows of the hostile test table (/work/shared/research/hostile-inputs.md §5)
covered here: 1 deep nesting, 2 xref loop, 3 /Pages cycle, 4 absurd /Count,
5 many pages, 6 Flate bomb, 7 filter-chain bomb, 8 giant declared image,
17 native crash isolation (the risky inputs run in a child interpreter),
19/20 passwords (in test_pdf_engine.py).  Inputs are kept small so each case
finishes in well under a second or two; timings are not asserted.
"""

from __future__ import annotations

from pathlib import Path

import pdfgen
import pikepdf
import pytest

from squeezer.engines.errors import (
    DamagedPdfError,
    DecompressionLimitError,
    EngineError,
    ImageTooLargeError,
    InputTooLargeError,
    TimeLimitError,
    TooManyPagesError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

MB = 1 << 20
BOMB_LIMITS = Limits(max_stream_bytes=50 * MB)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """A directory holding every hostile fixture, generated once per module and worker."""
    d = tmp_path_factory.mktemp("hostile")
    pdfgen.many_pages_pdf(d / "many.pdf", pages=10)
    pdfgen.giant_image_pdf(d / "giant.pdf")
    pdfgen.flate_bomb_pdf(d / "bomb.pdf", nbytes=300 * MB)
    pdfgen.flate_bomb_pdf(d / "chain.pdf", nbytes=300 * MB, rounds=2)
    pdfgen.flate_bomb_pdf(d / "chain3.pdf", nbytes=300 * MB, rounds=3)
    pdfgen.flate_bomb_pdf(d / "image_bomb.pdf", nbytes=100 * MB, as_image=True)
    pdfgen.lzw_bomb_pdf(d / "lzw.pdf", cycles=30)  # 158 KB -> 210 MB
    pdfgen.document_budget_pdf(d / "doc_budget.pdf", pages=2, per_stream=40 * MB)
    pdfgen.document_budget_pdf(d / "doc_budget_neg.pdf", pages=2, per_stream=40 * MB, negative_image=True)
    for dims in [("/Foo", "100"), ("(abc)", "100"), ("[1 2]", "3"), ("100", "null")]:
        pdfgen.giant_image_pdf(d / f"dims_{dims[0].strip('/()[]').replace(' ', '')}.pdf", *dims)
    pdfgen.deep_nesting_pdf(d / "deep.pdf", depth=10_000)
    pdfgen.kids_cycle_pdf(d / "cycle.pdf")
    pdfgen.kids_cycle_inherited_pdf(d / "cycle_inherited.pdf")
    pdfgen.absurd_count_pdf(d / "count.pdf")
    pdfgen.xref_loop_pdf(d / "xref_loop.pdf")
    pdfgen.bad_hex_stream_pdf(d / "bad_hex.pdf")
    pdfgen.duplicate_images_pdf(d / "dup_images.pdf")
    return d


def assert_no_output(out_dir: Path, dst: Path) -> None:
    assert not dst.exists()
    assert pdfgen.dir_listing(out_dir) == set()


# --- configured limits ---------------------------------------------------------------------------


def test_too_many_pages(hostile, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(TooManyPagesError) as info:
        compress(hostile / "many.pdf", dst, Options(), limits=Limits(max_pages=5))
    assert info.value.code == "too_many_pages"
    assert_no_output(out_dir, dst)


def test_page_limit_is_inclusive(hostile, out_dir):
    report = compress(hostile / "many.pdf", out_dir / "out.pdf", Options(), limits=Limits(max_pages=10))
    assert report.pages == 10


def test_input_too_large(hostile, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(InputTooLargeError) as info:
        compress(hostile / "many.pdf", dst, Options(), limits=Limits(max_input_bytes=100))
    assert info.value.code == "input_too_large"
    assert_no_output(out_dir, dst)


def test_time_limit(hostile, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(TimeLimitError) as info:
        compress(hostile / "dup_images.pdf", dst, Options(), limits=Limits(max_seconds=0.001))
    assert info.value.code == "timeout"
    assert_no_output(out_dir, dst)


def test_zero_disables_a_limit(hostile, out_dir):
    report = compress(hostile / "many.pdf", out_dir / "out.pdf", Options(),
                      limits=Limits(max_pages=0, max_seconds=0, max_input_bytes=0))
    assert report.pages == 10


# --- images that declare a giant size (row 8) ----------------------------------------------------


def test_giant_declared_image_is_refused_before_decoding(hostile, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(ImageTooLargeError) as info:
        compress(hostile / "giant.pdf", dst, Options(level="medium"))
    assert info.value.code == "image_too_large"
    assert "100000" in str(info.value)
    assert_no_output(out_dir, dst)


@pytest.mark.parametrize("preset", ["lossless", "extreme"])
def test_giant_image_is_refused_by_every_preset(hostile, out_dir, preset):
    with pytest.raises(ImageTooLargeError):
        compress(hostile / "giant.pdf", out_dir / "out.pdf", Options(level=preset))


def test_pixel_limit_is_configurable(hostile, out_dir):
    """A 10240 x 10240 image passes the default pixel limit but not a lower one."""
    with pytest.raises(ImageTooLargeError):
        compress(hostile / "image_bomb.pdf", out_dir / "out.pdf", Options(),
                 limits=Limits(max_image_pixels=1_000_000))


# --- decompression bombs (rows 6, 7) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["bomb", "chain", "chain3", "image_bomb", "lzw"])
def test_decompression_bomb_is_refused(hostile, out_dir, name):
    src = hostile / f"{name}.pdf"
    assert src.stat().st_size < 400_000  # small file, 100-300 MB once decoded
    dst = out_dir / "out.pdf"
    with pytest.raises(DecompressionLimitError) as info:
        compress(src, dst, Options(), limits=BOMB_LIMITS)
    assert info.value.code == "decompression_limit"
    assert_no_output(out_dir, dst)


def test_document_decompression_budget(hostile, out_dir):
    """Two streams under the per-stream limit, together over the per-document one."""
    dst = out_dir / "out.pdf"
    with pytest.raises(DecompressionLimitError):
        compress(hostile / "doc_budget.pdf", dst, Options(),
                 limits=Limits(max_stream_bytes=50 * MB, max_document_bytes=60 * MB))
    assert_no_output(out_dir, dst)


def test_negative_image_size_does_not_refund_the_document_budget(hostile, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(DecompressionLimitError):
        compress(hostile / "doc_budget_neg.pdf", dst, Options(),
                 limits=Limits(max_stream_bytes=50 * MB, max_document_bytes=60 * MB))
    assert_no_output(out_dir, dst)


@pytest.mark.parametrize(
    "name",
    [
        "dims_Foo",  # /Width /Foo
        "dims_abc",  # /Width (abc)
        "dims_12",  # /Width [1 2]
        "dims_100",  # /Height null
    ],
)
def test_non_numeric_image_size_is_repaired_or_named(hostile, out_dir, name):
    dst = out_dir / "out.pdf"
    try:
        report = compress(hostile / f"{name}.pdf", dst, Options())
    except EngineError:
        assert_no_output(out_dir, dst)
        return
    assert report.pages == 1
    assert pdfgen.render_all(dst) == 1


@pytest.mark.parametrize(
    "name",
    [
        "bomb",
        "lzw",
    ],
)
def test_bomb_memory_stays_bounded(hostile, tmp_path, name):
    """In a fresh interpreter, refusing a 200-300 MB bomb costs far less than that in memory."""
    base = pdfgen.isolated_compress(hostile / "many.pdf", tmp_path / "a.pdf")
    bomb = pdfgen.isolated_compress(hostile / f"{name}.pdf", tmp_path / "b.pdf",
                                    limits={"max_stream_bytes": 50 * MB})
    assert base.returncode == 0 and base.result["ok"], base.stderr
    assert bomb.returncode == 0, bomb.stderr
    assert bomb.result["error"] == "DecompressionLimitError"
    grown_mb = (bomb.result["maxrss_kb"] - base.result["maxrss_kb"]) / 1024
    assert grown_mb < 150, f"peak memory grew by {grown_mb:.0f} MB refusing the bomb"
    assert not (tmp_path / "b.pdf").exists()


def test_qpdf_limits_do_not_leak_into_the_next_call(hostile, tmp_path, out_dir):
    """qpdf's limits are process-wide: a strict call must not break a later lenient one."""
    with pytest.raises(DecompressionLimitError):
        compress(hostile / "bomb.pdf", out_dir / "x.pdf", Options(), limits=Limits(max_stream_bytes=1 * MB))
    legit = tmp_path / "legit.pdf"
    pdfgen.flate_bomb_pdf(legit, nbytes=3 * MB)  # 3 MB of whitespace: fine under the defaults
    report = compress(legit, out_dir / "ok.pdf", Options(), limits=Limits(max_stream_bytes=8 * MB))
    assert report.pages == 1


# --- malformed structure (rows 1-4) -------------------------------------------------------------


def _assert_repaired_or_named(outcome: pdfgen.ChildOutcome, dst: Path, allowed: set[str]) -> None:
    assert outcome.returncode == 0, f"the child crashed ({outcome.returncode}): {outcome.stderr}"
    assert outcome.result is not None, outcome.stderr
    if outcome.result["ok"]:
        with pikepdf.open(dst) as pdf:
            assert len(pdf.pages) == outcome.result["report"]["pages"] >= 1
        assert pdfgen.render_all(dst) >= 1
    else:
        assert outcome.result["error"] in allowed, outcome.result


def test_deep_nesting_in_a_child_process(hostile, tmp_path):
    dst = tmp_path / "out.pdf"
    outcome = pdfgen.isolated_compress(hostile / "deep.pdf", dst)
    _assert_repaired_or_named(outcome, dst, {"DamagedPdfError"})


def test_deep_nesting(hostile, out_dir):
    dst = out_dir / "out.pdf"
    try:
        report = compress(hostile / "deep.pdf", dst, Options())
    except DamagedPdfError:
        assert_no_output(out_dir, dst)
        return
    assert report.pages == 1
    assert pdfgen.page_texts(dst) == ["deep nesting"]


def test_pages_kids_cycle_is_rebuilt(hostile, out_dir):
    src = hostile / "cycle.pdf"
    with pytest.raises(pikepdf.PdfError, match="(?i)loop"):
        with pikepdf.open(src) as pdf:
            len(pdf.pages)
    dst = out_dir / "out.pdf"
    report = compress(src, dst, Options())
    assert report.pages == 2
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 2
        assert int(pdf.Root.Pages.Count) == 2
    assert pdfgen.page_texts(dst) == ["first leaf", "second leaf"]


def test_pages_kids_cycle_keeps_inherited_attributes(hostile, out_dir):
    dst = out_dir / "out.pdf"
    report = compress(hostile / "cycle_inherited.pdf", dst, Options())
    assert report.pages == 2
    doc = pdfgen.open_pdfium(dst)
    try:
        shown = [(doc[i].get_size(), doc[i].get_rotation()) for i in range(len(doc))]
    finally:
        doc.close()
    assert shown == [((300.0, 400.0), 0), ((600.0, 500.0), 90)]
    assert pdfgen.page_texts(dst) == ["first leaf", "second leaf"]


def test_pages_kids_cycle_in_a_child_process(hostile, tmp_path):
    dst = tmp_path / "out.pdf"
    outcome = pdfgen.isolated_compress(hostile / "cycle.pdf", dst)
    _assert_repaired_or_named(outcome, dst, {"DamagedPdfError"})


def test_absurd_page_count_uses_the_real_leaves(hostile, out_dir):
    dst = out_dir / "out.pdf"
    report = compress(hostile / "count.pdf", dst, Options(), limits=Limits(max_pages=100))
    assert report.pages == 2
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 2
        assert int(pdf.Root.Pages.Count) == 2
    assert pdfgen.page_texts(dst) == ["one", "two"]


def test_xref_loop_finishes(hostile, out_dir):
    dst = out_dir / "out.pdf"
    report = compress(hostile / "xref_loop.pdf", dst, Options())
    assert report.pages == 1
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 1
    assert pdfgen.page_texts(dst) == ["xref loop"]


def test_undecodable_stream_with_binary_error_message(hostile, out_dir):
    dst = out_dir / "out.pdf"
    try:
        report = compress(hostile / "bad_hex.pdf", dst, Options())
    except EngineError:
        assert_no_output(out_dir, dst)
        return
    assert report.pages == 1
    assert pdfgen.page_texts(dst) == ["bad hex stream"]


def test_truncated_file(tmp_path, out_dir):
    """The first half of a valid PDF: repaired from what is there, or DamagedPdfError."""
    full = tmp_path / "full.pdf"
    pdfgen.text_pdf(full, pages=4, compress=False)
    src = tmp_path / "truncated.pdf"
    data = full.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    dst = out_dir / "out.pdf"
    try:
        report = compress(src, dst, Options())
    except DamagedPdfError:
        assert_no_output(out_dir, dst)
        return
    with pikepdf.open(dst) as pdf:
        assert 1 <= len(pdf.pages) == report.pages <= 4
        assert "/Size" in pdf.trailer
    assert pdfgen.render_all(dst) == report.pages
