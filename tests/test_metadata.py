"""XMP metadata (engines/pdf/metadata.py): what no reader uses goes at medium and above, the
document's own description stays, and a PDF/A file keeps its claim (tested on PDF/A-1 and
PDF/A-2 files of the corpus)."""

from __future__ import annotations

import base64
import re

import pdfgen
import pikepdf
import pytest
from pikepdf import Dictionary, Name

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

_THUMB = base64.b64encode(bytes(range(256)) * 40).decode()


def xmp_heavy_pdf(path, pdfa: bool = False) -> None:
    """A page whose XMP holds a thumbnail, an editing history and padding, and whose image
    carries an XMP packet of its own (what Illustrator and InDesign write)."""
    pdf = pikepdf.new()
    image = pdfgen.image_stream(pdf, pdfgen.photo_array(64, 48), encoding="flate")
    history = "".join(
        f"<rdf:li rdf:parseType='Resource'><stEvt:action>saved</stEvt:action>"
        f"<stEvt:instanceID>xmp.iid:{i:032d}</stEvt:instanceID></rdf:li>" for i in range(300))
    claim = ("<rdf:Description rdf:about='' xmlns:pdfaid='http://www.aiim.org/pdfa/ns/id/'>"
             "<pdfaid:part>2</pdfaid:part><pdfaid:conformance>B</pdfaid:conformance>"
             "</rdf:Description>") if pdfa else ""
    xmp = (
        "<?xpacket begin='\ufeff' id='W5M0MpCehiHzreSzNTczkc9d'?>\n"
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'>\n <rdf:RDF "
        "xmlns:rdf='http://www.w3.org/1999/02/22-rdf-syntax-ns#'>\n"
        "  <rdf:Description rdf:about='' xmlns:dc='http://purl.org/dc/elements/1.1/'>\n"
        "   <dc:title><rdf:Alt><rdf:li xml:lang='x-default'>Kept title</rdf:li></rdf:Alt>"
        "</dc:title>\n  </rdf:Description>\n"
        "  <rdf:Description rdf:about='' xmlns:xap='http://ns.adobe.com/xap/1.0/' "
        "xmlns:xapGImg='http://ns.adobe.com/xap/1.0/g/img/' "
        "xmlns:xmpMM='http://ns.adobe.com/xap/1.0/mm/' "
        "xmlns:stEvt='http://ns.adobe.com/xap/1.0/sType/ResourceEvent#'>\n"
        "   <xap:Thumbnails><rdf:Alt><rdf:li rdf:parseType='Resource'>"
        f"<xapGImg:image>{_THUMB}</xapGImg:image></rdf:li></rdf:Alt></xap:Thumbnails>\n"
        f"   <xmpMM:History><rdf:Seq>{history}</rdf:Seq></xmpMM:History>\n"
        "   <xmpMM:DocumentID>xmp.did:kept</xmpMM:DocumentID>\n"
        f"  </rdf:Description>\n{claim} </rdf:RDF>\n</x:xmpmeta>\n" + " " * 4000 +
        "\n<?xpacket end='w'?>").encode()
    metadata = pdf.make_stream(xmp, Type=Name.Metadata, Subtype=Name.XML)
    pdf.Root.Metadata = metadata
    image.Metadata = pdf.make_stream(xmp, Type=Name.Metadata, Subtype=Name.XML)
    content = b"q 64 0 0 48 72 600 cm /Im0 Do Q\n" + pdfgen.text_ops(["Metadata test"], y=500)
    pdfgen.add_page(pdf, content, Dictionary(XObject=Dictionary(Im0=image),
                                             Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    pdf.save(path, compress_streams=False)


def _packets(path) -> tuple[bytes, list[dict]]:
    """The document's XMP, and each metadata stream's dictionary."""
    with pikepdf.open(path) as pdf:
        streams = [dict(o.stream_dict) for o in pdf.objects
                   if isinstance(o, pikepdf.Stream) and o.stream_dict.get("/Type") == Name.Metadata]
        return pdf.Root.Metadata.read_bytes(), streams


def test_medium_keeps_only_the_metadata_readers_use(tmp_path):
    src = tmp_path / "in.pdf"
    xmp_heavy_pdf(src)
    low, medium = tmp_path / "low.pdf", tmp_path / "medium.pdf"
    compress(src, low, Options(level="low"))
    compress(src, medium, Options(level="medium"))
    # every preset: no thumbnail, no padding; low keeps the history and the image's packet
    kept, streams = _packets(low)
    assert b"Thumbnails" not in kept and b"    \n<?xpacket end" not in kept
    assert b"xmpMM:History" in kept and len(streams) == 2
    # medium: the document's packet alone, without history, and as small as its content
    kept, streams = _packets(medium)
    assert len(streams) == 1 and b"History" not in kept
    assert b"Kept title" in kept and b"xmp.did:kept" in kept
    assert len(kept) < 1200
    assert medium.stat().st_size < src.stat().st_size // 10
    assert pdfgen.page_texts(medium) == pdfgen.page_texts(src)


def test_metadata_of_single_objects_is_compressed_unless_pdfa(tmp_path):
    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    xmp_heavy_pdf(src)
    compress(src, dst, Options(level="low"))
    with pikepdf.open(dst) as pdf:
        image = pdfgen.image_xobjects(pdf)[0]
        assert image.Metadata.stream_dict.get("/Filter") == Name.FlateDecode
    src_a, dst_a = tmp_path / "in-a.pdf", tmp_path / "out-a.pdf"
    xmp_heavy_pdf(src_a, pdfa=True)
    compress(src_a, dst_a, Options(level="low"))
    kept, streams = _packets(dst_a)
    assert b"pdfaid:part>2<" in kept and b"xmpMM:History" in kept  # (low: the packet stays)
    assert streams and all("/Filter" not in s for s in streams)


def _transparency(pdf: pikepdf.Pdf) -> int:
    """Soft masks, transparency groups and constant alphas below 1 anywhere in the file."""
    found = 0
    for obj in pdf.objects:
        if isinstance(obj, (pikepdf.Dictionary, pikepdf.Stream)):
            found += "/SMask" in obj and obj.get("/SMask") != Name("/None")
            group = obj.get("/Group")
            found += isinstance(group, pikepdf.Dictionary) and group.get("/S") == Name.Transparency
            found += any(isinstance(obj.get(k), (int, float)) and float(obj.get(k)) < 1
                         for k in ("/CA", "/ca"))
    return found


@pytest.mark.corpus
@pytest.mark.parametrize(("name", "part"), [
    ("format-corpus__veraPDFHiRes.pdf", 1),  # a PDF/A-1b scan (PDF 1.4)
    ("tika-pdf-poc__2._Parkeerverordening_Heerlen_2025__183800.pdf", 2),  # PDF/A-2, text
])
@pytest.mark.parametrize("preset", ["lossless", "medium"])
def test_pdfa_stays_pdfa(tmp_path, name, part, preset):
    src = pdfgen.corpus_file(name)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level=preset))
    assert not report.original_kept
    with pikepdf.open(src) as before, pikepdf.open(dst) as after:
        xmp = after.Root.Metadata.read_bytes()
        claim = re.search(rb"pdfaid:part\s*(?:=\s*[\"']|>)\s*(\d)", xmp)
        assert claim and int(claim.group(1)) == part
        for obj in after.objects:  # every metadata stream unfiltered
            if isinstance(obj, pikepdf.Stream) and obj.stream_dict.get("/Type") == Name.Metadata:
                assert "/Filter" not in obj.stream_dict
        assert after.Root.OutputIntents.unparse() == before.Root.OutputIntents.unparse() or \
            len(after.Root.OutputIntents) == len(before.Root.OutputIntents)
        for obj in after.objects:  # every font still embedded
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == Name.FontDescriptor:
                assert any(k in obj for k in ("/FontFile", "/FontFile2", "/FontFile3"))
        assert _transparency(after) <= _transparency(before)
        if part == 1:  # PDF 1.4: no object or cross-reference streams
            assert after.pdf_version <= "1.4"
            assert not any(isinstance(o, pikepdf.Stream) and o.stream_dict.get("/Type")
                           in (Name.ObjStm, Name.XRef) for o in after.objects)
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
