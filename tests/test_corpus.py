"""The engine on real-world PDFs from the shared corpus (never copied into the repository).

A small sample, one or two small files per category, runs with the lossless and
medium presets on every test run; the rest of the corpus runs only with
``--run-slow``.  Everything is skipped when the corpus is absent.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pdfgen
import pikepdf
import pytest

from squeezer.engines.errors import EngineError
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

pytestmark = pytest.mark.corpus

CORPUS = pdfgen.CORPUS
MANIFEST = CORPUS / "MANIFEST.tsv"

#: The per-run sample: (file, extra marks).
SAMPLE = [
    ("pymupdf__test_4751.pdf", ()),  # text_fonts, pdfTeX
    ("pdfplumber__WARN-Report-for-7-1-2015-to-03-25-2016.pdf", ()),  # text_fonts, Excel
    ("pdfcpu__mountain.pdf", ()),  # photo_heavy, one Flate photo
    ("pdfcpu__Wonderwall.pdf", ()),  # scan_bitonal, CCITT
    ("pymupdf__test_4224.pdf", ()),  # scan_bitonal with text layer
    ("ocrmypdf__c02-22.pdf", ()),  # scan_color
    ("pikepdf__congress-gray.pdf", ()),  # scan_gray
    ("pdfjs__prefilled_f1040.pdf", ()),  # form
    ("pdfjs__bug1815476.pdf", ()),  # encrypted_empty_pw
    ("pdfjs__issue17069.pdf", ()),  # encrypted_empty_pw
    ("pymupdf__test_4423.pdf", ()),  # already_optimized
    ("pymupdf__test-rewrite-images.pdf", ()),  # uncompressed_images
    ("pdfjs__PDFBOX-3148-2-fuzzed.pdf", ()),  # broken
    ("pdfjs__poppler-90-0-fuzzed.pdf", ()),  # broken
    ("pymupdf__test_4147.pdf", ()),  # broken: loop in /Pages
]

SSIM_FLOOR = {"lossless": 0.999, "medium": 0.95}
TEXT_PAGES = 3
VISUAL_PAGES = 3


def _manifest() -> dict[str, dict[str, str]]:
    if not MANIFEST.is_file():
        return {}
    with open(MANIFEST, newline="", encoding="utf-8") as f:
        return {row["file"]: row for row in csv.DictReader(f, delimiter="\t")}


ROWS = _manifest()


def _entry(name: str) -> tuple[Path, dict[str, str]]:
    path = CORPUS / name
    if name not in ROWS or not path.is_file():
        pytest.skip(f"corpus file {name} not present ({CORPUS})")
    return path, ROWS[name]


def _params(names_marks, presets):
    return [
        pytest.param(name, preset, marks=marks, id=f"{name.removesuffix('.pdf')}-{preset}")
        for name, marks in names_marks
        for preset in presets
    ]


def check_corpus_file(name: str, preset: str, out_dir: Path) -> None:
    src, row = _entry(name)
    assert pdfgen.sha256(src) == row["sha256"], "the corpus file differs from its manifest"
    dst = out_dir / "out.pdf"
    broken = row["category"] == "broken"
    try:
        report = compress(src, dst, Options(level=preset))
    except EngineError:
        if not broken:
            raise
        assert not dst.exists() and pdfgen.dir_listing(out_dir) == set()
        return
    # pikepdf.PdfError, UnicodeDecodeError, ... propagate and fail the test: only named errors

    in_size, out_size = src.stat().st_size, dst.stat().st_size
    assert report.output_bytes == out_size <= in_size == report.input_bytes
    if report.original_kept:
        assert pdfgen.sha256(dst) == row["sha256"]
    with pikepdf.open(dst) as pdf:
        qpdf_pages = len(pdf.pages)
        if row["encrypted"] == "yes":
            assert pdf.is_encrypted
    doc = pdfgen.open_pdfium(dst)
    out_pages = len(doc)
    doc.close()
    assert out_pages == qpdf_pages == report.pages
    assert pdfgen.render_all(dst) == out_pages
    if broken:
        return  # no trustworthy reference to compare against
    assert out_pages == int(row["pages"])
    assert pdfgen.page_texts(dst, limit=TEXT_PAGES) == pdfgen.page_texts(src, limit=TEXT_PAGES)
    score = pdfgen.min_ssim(src, dst, pages=VISUAL_PAGES, dpi=72)
    assert score >= SSIM_FLOOR[preset], f"min SSIM {score:.4f} below {SSIM_FLOOR[preset]}"


@pytest.mark.parametrize(("name", "preset"), _params(SAMPLE, ["lossless", "medium"]))
def test_corpus_sample(name, preset, out_dir):
    check_corpus_file(name, preset, out_dir)


def test_manifest_lists_the_sample():
    if not ROWS:
        pytest.skip(f"no corpus manifest at {MANIFEST}")
    missing = [name for name, _ in SAMPLE if name not in ROWS]
    assert missing == []


_SAMPLED = {name for name, _ in SAMPLE}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "preset"),
    _params([(name, ()) for name in sorted(ROWS) if name not in _SAMPLED], ["medium"]),
)
def test_corpus_rest(name, preset, out_dir):
    check_corpus_file(name, preset, out_dir)
