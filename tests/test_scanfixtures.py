"""The synthetic scans are what they claim to be, so scan-engine tests built on them mean something.

Checked with implementations other than the generator's own: pikepdf (qpdf) for
structure, PDFium for pixels and text, libtiff (``ccitt.decode``) for the G4 data.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
import pytest
import scanfixtures as sf
from pikepdf import Name

from squeezer.engines.pdf import ccitt

PAGES = [{"kind": "bitonal"}, {"kind": "gray"}, {"kind": "color", "stamp": True, "photo": True},
         {"kind": "photo"}]


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("scans")
    return {
        "ocr": sf.scan_pdf(root / "ocr.pdf", PAGES, ocr_layer=True, seed=3),
        "plain": sf.scan_pdf(root / "plain.pdf", PAGES, ocr_layer=False, seed=3),
    }


def _render(path: Path, index: int, scale: float = 0.5) -> np.ndarray:
    doc = pdfium.PdfDocument(path)
    try:
        return doc[index].render(scale=scale).to_numpy().copy()
    finally:
        doc.close()


def _text(path: Path, index: int) -> str:
    doc = pdfium.PdfDocument(path)
    try:
        return doc[index].get_textpage().get_text_range()
    finally:
        doc.close()


@pytest.mark.parametrize(("kind", "mode"), [("bitonal", "1"), ("gray", "L"), ("color", "RGB"),
                                            ("photo", "RGB")])
def test_images_are_letter_at_300_dpi(kind: str, mode: str) -> None:
    image = sf.scan_image(kind, stamp=kind == "color", photo=kind == "color")
    assert image.size == (2550, 3300) and image.mode == mode
    arr = np.asarray(image.convert("L"))
    if kind != "photo":  # text pages: mostly paper, some ink
        assert 0.01 < (arr < 128).mean() < 0.2
    if kind in ("gray", "color"):  # noise and anti-aliasing: many gray levels, no pure white
        assert len(np.unique(arr)) > 100 and (arr == 255).mean() < 0.01


def test_deterministic_by_seed() -> None:
    a, b = sf.scan_image("gray", dpi=100, seed=1), sf.scan_image("gray", dpi=100, seed=1)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != sf.scan_image("gray", dpi=100, seed=2).tobytes()


def test_pdf_structure(scans: dict[str, Path]) -> None:
    with pikepdf.open(scans["ocr"]) as pdf:
        assert len(pdf.pages) == len(PAGES)
        for page, spec in zip(pdf.pages, PAGES):
            assert [float(v) for v in page.MediaBox] == [0, 0, 612, 792]
            assert b"612 0 0 792 0 0 cm /Im0 Do" in page.Contents.read_bytes()
            image = page.Resources.XObject.Im0
            assert (image.Width, image.Height) == (2550, 3300)
            if spec["kind"] == "bitonal":
                assert image.Filter == Name.CCITTFaxDecode and image.BitsPerComponent == 1
                parms = image.DecodeParms
                assert (parms.K, parms.Columns, parms.Rows, parms.BlackIs1) == (-1, 2550, 3300, False)
            else:
                assert image.Filter == Name.DCTDecode
                gray = spec["kind"] == "gray"
                assert image.ColorSpace == (Name.DeviceGray if gray else Name.DeviceRGB)


def test_g4_image_is_the_bitonal_scan(scans: dict[str, Path]) -> None:
    with pikepdf.open(scans["plain"]) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        decoded = ccitt.decode(image.read_raw_bytes(), 2550, 3300)
    expected = np.asarray(sf.scan_image("bitonal", seed=3).convert("L"))
    assert np.array_equal(np.asarray(decoded), expected)


def test_pages_render(scans: dict[str, Path]) -> None:
    for i, spec in enumerate(PAGES):
        arr = _render(scans["plain"], i, scale=1)
        assert arr.shape[:2] == (792, 612)
        if spec["kind"] != "photo":
            assert arr.min() < 100 and np.median(arr) > 200  # dark text on light paper


def test_ocr_layer_extracts_at_the_words(scans: dict[str, Path]) -> None:
    for i, spec in enumerate(PAGES):
        scan = sf.render_scan(spec["kind"], seed=3 + i, stamp=spec.get("stamp", False),
                              photo=spec.get("photo", False))
        text = _text(scans["ocr"], i)
        assert _text(scans["plain"], i) == ""
        if spec["kind"] == "photo":
            assert text == "" and scan.lines == []
            continue
        assert text.split() == " ".join(line.text for line in scan.lines).split()
        assert "statement" in text
        doc = pdfium.PdfDocument(scans["ocr"])
        try:
            left, bottom, _, _ = doc[i].get_textpage().get_charbox(0)
        finally:
            doc.close()
        first = scan.lines[0]  # its first glyph sits where the scan shows the first word
        assert abs(left - first.words[0].x * 72 / 300) < 2
        assert abs(bottom - (792 - first.baseline * 72 / 300)) < 2


def test_ocr_layer_is_invisible(scans: dict[str, Path]) -> None:
    for i in range(len(PAGES)):
        assert np.array_equal(_render(scans["ocr"], i), _render(scans["plain"], i))


def test_vector_and_mixed_pages(tmp_path: Path) -> None:
    lines = sf.vector_pdf(tmp_path / "vector.pdf")
    assert _text(tmp_path / "vector.pdf", 0).split() == " ".join(lines).split()
    with pikepdf.open(tmp_path / "vector.pdf") as pdf:
        assert "/XObject" not in pdf.pages[0].Resources
    lines = sf.mixed_pdf(tmp_path / "mixed.pdf")
    assert _text(tmp_path / "mixed.pdf", 0).split() == " ".join(lines).split()
    with pikepdf.open(tmp_path / "mixed.pdf") as pdf:
        content = pdf.pages[0].Contents.read_bytes()
        assert b"216 0 0 144 72 600 cm /Im0 Do" in content  # 3 x 2 in: not a full-page image
        assert content.count(b"Tj") == len(lines)
