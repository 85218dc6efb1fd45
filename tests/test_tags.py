"""Structure elements that mark nothing are pruned; the tags that mark content stay
(engines/pdf/tags.py)."""

from __future__ import annotations

import pdfgen
import pikepdf
from pikepdf import Array, Dictionary, Name, String

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress, tags


def tagged_pdf(path, ghosts: int) -> None:
    """One tagged page (two paragraphs, MCIDs 0 and 1) whose tree also holds ``ghosts``
    elements marking content of a page that is no longer in the document, and one naming
    an MCID the page does not have (as tools that cut pages out of a tagged file leave it)."""
    pdf = pikepdf.new()
    content = (b"/P <</MCID 0>> BDC BT /F1 12 Tf 72 720 Td (Kept paragraph) Tj ET EMC\n"
               b"/P <</MCID 1>> BDC BT /F1 12 Tf 72 700 Td (Second one) Tj ET EMC\n")
    page = pdfgen.add_page(pdf, content, Dictionary(Font=Dictionary(F1=pdfgen.helvetica(pdf))),
                           StructParents=0).obj
    gone = pdf.make_indirect(Dictionary(Type=Name.Page, MediaBox=Array([0, 0, 612, 792])))
    root = pdf.make_indirect(Dictionary(Type=Name.StructTreeRoot))
    doc = pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.Document, P=root))

    def element(where, mcid):
        return pdf.make_indirect(Dictionary(Type=Name.StructElem, S=Name.P, P=doc, Pg=where,
                                            K=mcid, Alt=String("alternate text " * 4)))

    kept = [element(page, 0), element(page, 1)]
    dead = [element(gone, i) for i in range(ghosts)] + [element(page, 7)]
    doc.K = Array(kept + dead)
    root.K = doc
    root.ParentTree = pdf.make_indirect(Dictionary(Nums=Array([0, Array(kept), 1, Array(dead[:5])])))
    pdf.Root.StructTreeRoot = root
    pdf.Root.MarkInfo = Dictionary(Marked=True)
    pdf.save(path)


def test_elements_marking_nothing_are_pruned_and_the_rest_kept(tmp_path):
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    tagged_pdf(src, ghosts=3 * tags.ELEMENTS_PER_PAGE)
    report = compress(src, dst, Options(level="lossless"))
    assert dst.stat().st_size < src.stat().st_size // 50
    assert not report.original_kept
    with pikepdf.open(dst) as pdf:
        root = pdf.Root.StructTreeRoot  # the tags stay
        doc = root.K
        assert [int(e.K) for e in doc.K] == [0, 1]
        assert str(doc.K[0].Alt).startswith("alternate text")
        nums = root.ParentTree.Nums
        assert len(nums) == 2 and int(nums[0]) == 0 and len(nums[1]) == 2
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_an_ordinary_tagged_document_keeps_its_tree(tmp_path):
    """Below the elements-per-page bound nothing is read or pruned, not even the one dead
    element (such a tree is what its writer made)."""
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    tagged_pdf(src, ghosts=10)
    compress(src, dst, Options(level="lossless"))
    with pikepdf.open(dst) as pdf:
        assert len(pdf.Root.StructTreeRoot.K.K) == 13
