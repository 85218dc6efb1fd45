"""The image step on several threads: results in document order, errors on time, same bytes."""

from __future__ import annotations

import threading
import time
import zlib

import numpy as np
import pdfgen
import pikepdf
import pytest
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.limits import Limits
from squeezer.engines.options import Options
from squeezer.engines.pdf import ccitt, compress
from squeezer.engines.threads import ordered_map, thread_count


def test_results_come_in_input_order_whatever_finishes_first():
    def slow_first(i: int) -> int:
        time.sleep(0.02 * (10 - i))
        return i * i

    assert list(ordered_map(slow_first, range(10), threads=4)) == [i * i for i in range(10)]


def test_an_error_is_raised_at_its_turn_and_no_work_outlives_the_call():
    started: list[int] = []
    running = threading.Semaphore(0)
    lock = threading.Lock()

    def work(i: int) -> int:
        with lock:
            started.append(i)
        if i == 3:
            raise ValueError("item 3")
        time.sleep(0.05)
        running.release()
        return i

    got = []
    with pytest.raises(ValueError, match="item 3"):
        for value in ordered_map(work, range(100), threads=2):
            got.append(value)
    assert got == [0, 1, 2]
    seen = len(started)
    time.sleep(0.2)
    assert len(started) == seen  # nothing started after the error reached the caller
    assert seen < 100  # the items beyond the window were never started


def test_one_thread_is_a_plain_map_on_the_callers_thread():
    names = list(ordered_map(lambda _: threading.current_thread().name, range(3), threads=1))
    assert names == [threading.current_thread().name] * 3


def test_thread_count_follows_the_limit():
    assert thread_count(3) == 3
    assert 1 <= thread_count(0) <= 4


def _mixed_images_pdf(path) -> None:
    """Pages of photos, flat graphics, CCITT G4 scans (decoded by PDFium) and 1-bit Flate scans."""
    pdf = pikepdf.new()
    xobjects = {}
    for k in range(3):
        xobjects[f"/P{k}"] = pdfgen.image_stream(
            pdf, pdfgen.photo_array(900, 700, seed=k), encoding="jpeg", quality=95)
        flat = np.zeros((300, 400, 3), np.uint8)
        flat[:, : 100 + 50 * k] = (200, 30 * k, 90)
        xobjects[f"/G{k}"] = pdfgen.image_stream(pdf, flat)
        ink = pdfgen.bitonal_array(1275, 1650, seed=k)
        g4 = Stream(pdf, ccitt.encode_g4(ink))
        g4.stream_dict = Dictionary(
            Type=Name.XObject, Subtype=Name.Image, Width=1275, Height=1650,
            ColorSpace=Name.DeviceGray, BitsPerComponent=1, Filter=Name.CCITTFaxDecode,
            DecodeParms=Dictionary(K=-1, Columns=1275, Rows=1650))
        xobjects[f"/C{k}"] = pdf.make_indirect(g4)
        flate = Stream(pdf, zlib.compress(np.packbits(~ink, axis=1).tobytes()))
        flate.stream_dict = Dictionary(
            Type=Name.XObject, Subtype=Name.Image, Width=1275, Height=1650,
            ColorSpace=Name.DeviceGray, BitsPerComponent=1, Filter=Name.FlateDecode)
        xobjects[f"/F{k}"] = pdf.make_indirect(flate)
    for k in range(3):
        content = (b"q 300 0 0 230 36 500 cm /P%d Do Q q 200 0 0 150 350 500 cm /G%d Do Q "
                   b"q 280 0 0 360 36 60 cm /C%d Do Q q 200 0 0 260 350 60 cm /F%d Do Q\n"
                   % (k, k, k, k)) + pdfgen.text_ops([f"Mixed page {k + 1}"], y=40)
        pdfgen.add_page(pdf, content, Dictionary(
            XObject=Dictionary({n: xobjects[n] for n in xobjects if n[-1] == str(k)}),
            Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    pdf.save(path)


@pytest.mark.parametrize("preset", ["lossless", "medium"])
def test_the_output_does_not_depend_on_the_number_of_threads(tmp_path, preset):
    src = tmp_path / "mixed.pdf"
    _mixed_images_pdf(src)
    outputs, reports = [], []
    for threads in (1, 4):
        dst = tmp_path / f"out-{threads}.pdf"
        report = compress(src, dst, Options(level=preset), limits=Limits(max_threads=threads))
        outputs.append(dst.read_bytes())
        reports.append(report.model_dump(exclude={"elapsed_seconds"}))
    assert outputs[0] == outputs[1]
    assert reports[0] == reports[1]
    report = reports[0]
    assert report["images"]["seen"] == 12
    assert report["images"]["recompressed"] >= 6
    assert report["output_bytes"] < report["input_bytes"]
    assert pdfgen.page_texts(tmp_path / "out-4.pdf") == pdfgen.page_texts(src)


def test_no_thread_outlives_a_run_that_failed(tmp_path, monkeypatch):
    """The image threads and the input's reference reading end before the error reaches the caller.

    Each image's work is slowed past the time limit, so the limit is hit on an
    image thread however fast the machine is.
    """
    from squeezer.engines.errors import TimeLimitError
    from squeezer.engines.pdf import images

    best = images._best
    attempted = []

    def slow_best(*args, **kwargs):
        attempted.append(threading.current_thread().name)
        time.sleep(1.5)
        return best(*args, **kwargs)

    monkeypatch.setattr(images, "_best", slow_best)
    src = tmp_path / "mixed.pdf"
    _mixed_images_pdf(src)
    before = set(threading.enumerate())
    with pytest.raises(TimeLimitError):
        compress(src, tmp_path / "out.pdf", Options(level="medium"),
                 limits=Limits(max_threads=4, max_seconds=1.0))
    assert attempted and threading.current_thread().name not in attempted
    assert set(threading.enumerate()) <= before
    assert not (tmp_path / "out.pdf").exists()


def test_scan_pages_do_not_depend_on_the_number_of_threads(tmp_path):
    """The scan step classifies and codes pages on threads and writes them in page order."""
    import scanfixtures

    src = scanfixtures.scan_pdf(tmp_path / "scans.pdf", [
        {"kind": "gray", "ocr_layer": True}, {"kind": "color", "stamp": True},
        {"kind": "bitonal"}, {"kind": "photo"}], dpi=200, size_in=(6, 8))
    outputs, reports = [], []
    for threads in (1, 4):
        dst = tmp_path / f"out-{threads}.pdf"
        report = compress(src, dst, Options(level="high"), limits=Limits(max_threads=threads))
        outputs.append(dst.read_bytes())
        reports.append(report.model_dump(exclude={"elapsed_seconds"}))
    assert outputs[0] == outputs[1]
    assert reports[0] == reports[1]
    methods = [page["method"] for page in reports[0]["scan_pages"]]
    assert len(methods) == 4 and "mrc" in methods, methods
