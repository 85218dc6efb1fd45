"""Damaged files readers show are repaired, not refused (engines/pdf/repair.py), and a damaged
page tree's leftover pages do not ride along through bookmarks and links (structure.py)."""

from __future__ import annotations

import zlib

import pdfgen
import pikepdf
import pytest

from squeezer.engines.errors import DamagedPdfError
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress


def _text_pages(count: int, first: int = 3) -> tuple[dict[int, bytes], list[int]]:
    """Uncompressed text pages under /Pages 2 0 R (so a rewrite is smaller than the input)."""
    objects: dict[int, bytes] = {9: pdfgen._FONT_OBJ}
    kids = []
    for i in range(count):
        page, content = first + 2 * i, first + 2 * i + 1
        lines = pdfgen.words_lines(i, 40)
        objects[page] = pdfgen._simple_page(2, content)
        objects[content] = pdfgen._stream_obj(pdfgen.text_ops(lines))
        kids.append(page)
    return objects, kids


def test_a_trailer_naming_the_wrong_object_is_repaired(tmp_path):
    """An update whose /Root points at a font: qpdf and PDFium refuse it, Ghostscript finds
    the catalog; so do we, and the report says so."""
    objects, kids = _text_pages(3)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count 3 >>" % b" ".join(b"%d 0 R" % k for k in kids)
    src = tmp_path / "in.pdf"
    pdfgen.raw_pdf(src, objects, root=9)
    with pytest.raises(pikepdf.PdfError):
        pikepdf.open(src)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium"))
    assert report.repaired and "catalog" in report.repaired
    assert not report.original_kept and dst.stat().st_size < src.stat().st_size
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 3
    assert [t.split()[:3] for t in pdfgen.page_texts(dst)] == \
        [pdfgen.words_lines(i, 40)[0].split()[:3] for i in range(3)]


def test_a_catalog_without_a_page_tree_gets_the_one_in_the_file(tmp_path):
    objects, kids = _text_pages(2)
    objects[1] = b"<< /Type /Catalog /Pages 12 >>"  # not a reference: qpdf finds no page tree
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count 2 >>" % b" ".join(b"%d 0 R" % k for k in kids)
    src = tmp_path / "in.pdf"
    pdfgen.raw_pdf(src, objects)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="lossless"))
    assert "page tree" in report.repaired
    assert pdfgen.render_all(dst) == 2


def test_damage_nothing_can_read_is_still_a_named_error(tmp_path):
    objects, _ = _text_pages(1)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Count 1 >>"  # no /Kids: no reader finds the page
    src = tmp_path / "in.pdf"
    pdfgen.raw_pdf(src, objects)
    with pytest.raises(DamagedPdfError):
        compress(src, tmp_path / "out.pdf", Options())
    assert not (tmp_path / "out.pdf").exists()


def test_pages_outside_a_cyclic_page_tree_leave_with_it(tmp_path):
    """Bookmarks and links to page objects readers never show keep their titles and
    rectangles but lose their targets, so those pages' content is not written."""
    src = tmp_path / "in.pdf"
    # the cycle of pdfgen.kids_cycle_pdf, plus a page outside the tree with a large image,
    # reached only from a bookmark and a link
    orphan_image = zlib.compress(pdfgen.photo_array(600, 400).tobytes())
    extra = {
        20: b"<< /Type /Page /MediaBox [0 0 612 792] /Resources << /XObject << /Im 21 0 R >> >> "
            b"/Contents 22 0 R >>",
        21: b"<< /Type /XObject /Subtype /Image /Width 600 /Height 400 /ColorSpace /DeviceRGB "
            b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n" % len(orphan_image)
            + orphan_image + b"\nendstream",
        22: pdfgen._stream_obj(b"q 600 0 0 400 0 0 cm /Im Do Q"),
        23: b"<< /Type /Outlines /First 24 0 R /Last 24 0 R /Count 1 >>",
        24: b"<< /Title (Lost page) /Parent 23 0 R /Dest [20 0 R /Fit] >>",
        25: b"<< /Type /Annot /Subtype /Link /Rect [72 72 200 100] /Dest [20 0 R /Fit] >>",
    }
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R /Outlines 23 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 3 >>",
        3: pdfgen._simple_page(2, 4).replace(b"/Contents", b"/Annots [25 0 R] /Contents"),
        4: pdfgen._content("first leaf"),
        5: b"<< /Type /Pages /Parent 2 0 R /Kids [6 0 R 2 0 R] /Count 2 >>",
        6: pdfgen._simple_page(5, 7),
        7: pdfgen._content("second leaf"),
        9: pdfgen._FONT_OBJ,
        **extra,
    }
    pdfgen.raw_pdf(src, objects)
    dst = tmp_path / "out.pdf"
    compress(src, dst, Options(level="lossless"))
    assert dst.stat().st_size < len(orphan_image) // 4
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 2
        item = pdf.Root.Outlines.First
        assert str(item.Title) == "Lost page" and "/Dest" not in item
        (link,) = pdf.pages[0].Annots
        assert link.Subtype == pikepdf.Name.Link and "/Dest" not in link


def test_the_report_says_what_opening_repaired(tmp_path):
    """A rebuilt cross-reference table and a flattened page-tree loop are repairs too."""
    broken, cyclic = tmp_path / "xref.pdf", tmp_path / "loop.pdf"
    pdfgen.broken_xref_pdf(broken)
    pages = pdfgen.kids_cycle_pdf(cyclic)
    report = compress(broken, tmp_path / "a.pdf", Options(level="lossless"))
    assert "cross-reference" in report.repaired
    report = compress(cyclic, tmp_path / "b.pdf", Options(level="lossless"))
    assert "loop" in report.repaired and f"{pages} reachable" in report.repaired
    assert any("repaired" in w for w in report.warnings)
    intact = tmp_path / "intact.pdf"
    pdfgen.text_pdf(intact)
    assert compress(intact, tmp_path / "c.pdf", Options(level="lossless")).repaired is None


def test_what_only_pdfium_reads_is_rebuilt_from_its_pages(tmp_path):
    """A page tree root with a /Parent: qpdf finds no /Kids, PDFium shows both pages; the
    pages PDFium reads are imported into a fresh document, text and all."""
    objects, kids = _text_pages(2)
    objects[1] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[2] = b"<< /Type /Pages /Kids [%s] /Count 2 /Parent 1 0 R >>" % b" ".join(
        b"%d 0 R" % k for k in kids)
    src = tmp_path / "in.pdf"
    pdfgen.raw_pdf(src, objects)
    with pytest.raises(pikepdf.PdfError):
        pikepdf.open(src).pages[0]
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium"))
    assert "PDFium" in report.repaired and not report.original_kept
    assert [t.split()[:3] for t in pdfgen.page_texts(dst)] == \
        [pdfgen.words_lines(i, 40)[0].split()[:3] for i in range(2)]
