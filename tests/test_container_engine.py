"""The container engine on real and generated files: each format's rules, levels, verification,
and the hostile archives (every one a named error or a kept member, nothing left behind)."""

from __future__ import annotations

import io
import lzma
import os
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from containerfx import (
    content_types_add,
    corpus_file,
    cut,
    docx,
    epubcheck,
    jpeg_bytes,
    many_members,
    nested_zips,
    photo,
    png_bytes,
    raw_zip,
    rels_add,
    rezip,
)
from PIL import Image

from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.container.zipread import open_zip
from squeezer.engines.dispatch import compress_any
from squeezer.engines.errors import (
    ArchiveBombError,
    DamagedArchiveError,
    NestingTooDeepError,
    TooManyMembersError,
    UnsafeArchiveError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.sniff import sniff_file

THUMB_REL = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
IMAGE_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/image"


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGBA"))


def members(path: Path) -> dict[str, zipfile.ZipInfo]:
    with zipfile.ZipFile(path) as z:
        return {i.filename: i for i in z.infolist()}


def read(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read(name)


def raw_member(path: Path, name: str) -> bytes:
    with open_zip(path, ArchiveBudget(Limits())) as z:
        (entry,) = [e for e in z.entries if e.name == name]
        return z.raw(entry)


def docx_text(path: Path) -> list[str]:
    import docx as python_docx

    return [p.text for p in python_docx.Document(str(path)).paragraphs]


# --- OOXML ----------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _no_renders_unless_asked(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """LibreOffice takes seconds per document: only the tests about the render check draw
    (the door tests run it through the CLI and the service)."""
    if "render" not in request.node.name:
        from squeezer.engines.container import render

        monkeypatch.setattr(render, "soffice", lambda: None)


def test_render_check_draws_first_pages_and_sees_a_missing_picture(tmp_path: Path) -> None:
    from squeezer.engines.container import render

    if render.soffice() is None:
        pytest.skip("LibreOffice is not installed")
    src = docx(tmp_path / "photo.docx", picture=png_bytes(photo(900, 600)), width_in=5.5,
               paragraphs=2)
    out = tmp_path / "out.docx"
    report = compress_any(src, out, {"level": "medium"})
    assert any(v.startswith("LibreOffice: first page drawn the same") for v in report.verified)
    # the same document with the photo's pixels blanked: the readers see no difference (same
    # text, same picture count), the render does
    (name,) = [n for n in members(src) if n.startswith("word/media/")]
    blank = png_bytes(Image.new("RGB", (900, 600), "white"))
    blanked = rezip(src, tmp_path / "blank.docx", replace={name: blank})
    assert docx_text(blanked) == docx_text(src)
    score = render.compare("docx", src, blanked, tmp_path)
    assert score is not None and score < render.MIN_SSIM




def test_docx_lossless_keeps_every_pixel_text_and_entry_metadata(tmp_path: Path) -> None:
    src = corpus_file("docs", "python-docx__having-images.docx")
    out = tmp_path / "out.docx"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.kind == "archive" and report.format_out == "docx"
    assert report.container == "ooxml" and not report.original_kept
    assert out.stat().st_size == report.output_bytes < src.stat().st_size
    assert docx_text(out) == docx_text(src)
    before, after = members(src), members(out)
    assert list(before) == list(after)  # same members, same order, no rename at lossless
    for name, info in before.items():
        other = after[name]
        assert (other.date_time, other.external_attr, other.create_system) == (
            info.date_time, info.external_attr, info.create_system), name
        a, b = read(src, name), read(out, name)
        if name.endswith((".png", ".jpeg", ".jpg")):
            assert np.array_equal(pixels(a), pixels(b)), name
        elif not name.endswith((".xml", ".rels")):
            assert a == b, name
    rows = {m.name: m for m in report.members}
    assert sum(m.bytes_after for m in report.members) < sum(m.bytes_before for m in report.members)
    assert any("losslessly" in m.action for m in rows.values())
    assert {t.type for t in report.by_type} >= {"png", "jpeg", "xml"}
    assert any(v.startswith("python-docx: opens") for v in report.verified)


def test_docx_medium_downscales_to_the_drawing_extent_and_renames_a_png_photo(
        tmp_path: Path) -> None:
    src = docx(tmp_path / "photo.docx", picture=png_bytes(photo(1200, 900)), width_in=1.0)
    out = tmp_path / "out.docx"
    report = compress_any(src, out, {"level": "medium"})
    assert report.output_bytes < src.stat().st_size * 0.2
    names = set(members(out))
    assert not any(n.endswith(".png") for n in names if n.startswith("word/media/"))
    [jpeg] = [n for n in names if n.startswith("word/media/") and n.endswith(".jpeg")]
    image = Image.open(io.BytesIO(read(out, jpeg)))
    assert image.format == "JPEG" and image.width <= 221  # 1 inch at medium's 220 dpi
    types = read(out, "[Content_Types].xml").decode()
    assert 'Extension="jpeg"' in types
    rels = read(out, "word/_rels/document.xml.rels").decode()
    assert jpeg.rsplit("/", 1)[1] in rels and ".png" not in rels
    assert report.renamed and list(report.renamed.values()) == [jpeg]
    assert docx_text(out) == docx_text(src)
    import docx as python_docx

    assert len(python_docx.Document(str(out)).inline_shapes) == 1


def test_docx_png_photo_with_an_unused_alpha_channel_becomes_a_jpeg(tmp_path: Path) -> None:
    """Screenshots and renders are often saved RGBA with every pixel opaque: a JPEG holds
    them; a picture with any transparent pixel stays PNG."""
    opaque = photo(1200, 900).convert("RGBA")
    src = docx(tmp_path / "rgba.docx", picture=png_bytes(opaque), width_in=4.0)
    report = compress_any(src, tmp_path / "out.docx", {"level": "medium"})
    [(old, new)] = report.renamed.items()
    assert old.endswith(".png") and new.endswith(".jpeg"), report.renamed
    assert Image.open(io.BytesIO(read(tmp_path / "out.docx", new))).mode in ("RGB", "L")
    holed = np.asarray(opaque).copy()
    holed[:40, :40, 3] = 0
    src = docx(tmp_path / "holed.docx", picture=png_bytes(Image.fromarray(holed)), width_in=4.0)
    report = compress_any(src, tmp_path / "out2.docx", {"level": "medium"})
    assert not report.renamed
    [png] = [n for n in members(tmp_path / "out2.docx") if n.startswith("word/media/")]
    assert Image.open(io.BytesIO(read(tmp_path / "out2.docx", png))).mode in ("RGBA", "P")


def test_a_drawing_shown_a_little_smaller_is_never_stored_above_lossless(tmp_path: Path) -> None:
    """A palette drawing resampled to its box grows (new colours) and its JPEG conversion may
    be refused: the member still gets the level's result at its own size, never less than
    the lossless re-pack."""
    from PIL import ImageDraw

    image = Image.new("RGB", (600, 600), "white")
    pen = ImageDraw.Draw(image)
    for i in range(0, 600, 12):
        pen.line([(0, i), (600, 600 - i)], fill=(200, 30, 30), width=1)
        pen.line([(i, 0), (600 - i, 600)], fill=(30, 30, 200), width=1)
    buf = io.BytesIO()
    image.quantize(8).save(buf, "PNG", optimize=True)
    src = docx(tmp_path / "drawing.docx", picture=buf.getvalue(), width_in=480 / 220)
    sizes = {}
    for level in ("lossless", "medium"):
        report = compress_any(src, tmp_path / f"{level}.docx",
                              {"level": level, "archive": {"render_check": False}})
        [row] = [m for m in report.members if m.name.startswith("word/media/")]
        assert not row.action.startswith("kept"), row.action
        sizes[level] = row.bytes_after
    assert sizes["medium"] <= sizes["lossless"] < len(buf.getvalue())


def test_pptx_pictures_come_down_to_their_shape_size_on_the_slide(tmp_path: Path) -> None:
    import pptx
    from pptx.util import Inches

    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Quarterly photos"
    slide.shapes.add_picture(io.BytesIO(jpeg_bytes(photo(1600, 1200))), Inches(1), Inches(2),
                             width=Inches(2))
    src = tmp_path / "deck.pptx"
    prs.save(str(src))
    out = tmp_path / "out.pptx"
    report = compress_any(src, out, {"level": "medium"})
    [name] = [n for n in members(out) if n.startswith("ppt/media/")]
    image = Image.open(io.BytesIO(read(out, name)))
    assert image.width <= 441 and image.width / image.height == pytest.approx(4 / 3, rel=0.01)
    assert report.output_bytes < src.stat().st_size / 3
    lossless = tmp_path / "lossless.pptx"
    compress_any(src, lossless, {"level": "lossless"})
    assert Image.open(io.BytesIO(read(lossless, name))).size == (1600, 1200)
    shapes = [s.shape_type for s in pptx.Presentation(str(out)).slides[0].shapes]
    assert shapes == [s.shape_type for s in pptx.Presentation(str(src)).slides[0].shapes]


def test_thumbnail_and_unused_media_dropped_above_lossless_only(tmp_path: Path) -> None:
    base = docx(tmp_path / "base.docx", picture=jpeg_bytes(photo(300, 200)))
    with zipfile.ZipFile(base) as z:
        types, root_rels = z.read("[Content_Types].xml"), z.read("_rels/.rels")
    if b"thumbnail" not in root_rels:  # python-docx's template has one; else add it
        root_rels = rels_add(root_rels, ("rIdT", THUMB_REL, "docProps/thumbnail.jpeg"))
        base = rezip(base, tmp_path / "thumb.docx", add={
            "docProps/thumbnail.jpeg": jpeg_bytes(photo(256, 180, seed=3))},
            replace={"_rels/.rels": root_rels})
    src = rezip(base, tmp_path / "extra.docx",
                add={"word/media/orphan.png": png_bytes(photo(200, 200, seed=4))},
                replace={"[Content_Types].xml": content_types_add(
                    types, ("/word/media/orphan.png", "image/png"))})
    lossless = compress_any(src, tmp_path / "l.docx", {"level": "lossless"})
    assert {"docProps/thumbnail.jpeg", "word/media/orphan.png"} <= set(members(tmp_path / "l.docx"))
    assert not lossless.dropped
    medium = compress_any(src, tmp_path / "m.docx", {"level": "medium"})
    after = set(members(tmp_path / "m.docx"))
    assert "docProps/thumbnail.jpeg" not in after and "word/media/orphan.png" not in after
    assert sorted(medium.dropped) == ["docProps/thumbnail.jpeg", "word/media/orphan.png"]
    assert b"thumbnail" not in read(tmp_path / "m.docx", "_rels/.rels")
    assert b"orphan" not in read(tmp_path / "m.docx", "[Content_Types].xml")
    assert docx_text(tmp_path / "m.docx") == docx_text(src)


def test_vba_parts_stay_byte_identical(tmp_path: Path) -> None:
    base = docx(tmp_path / "base.docx")
    vba = bytes(range(256)) * 64  # compressible, so a re-pack would change its stored bytes
    with zipfile.ZipFile(base) as z:
        types, rels = z.read("[Content_Types].xml"), z.read("word/_rels/document.xml.rels")
    types = types.replace(
        b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
        b"application/vnd.ms-word.document.macroEnabled.main+xml")
    src = rezip(base, tmp_path / "macro.docm", add={"word/vbaProject.bin": vba},
                replace={"[Content_Types].xml": content_types_add(
                    types, ("/word/vbaProject.bin", "application/vnd.ms-office.vbaProject")),
                    "word/_rels/document.xml.rels": rels_add(rels, (
                        "rIdV", "http://schemas.microsoft.com/office/2006/relationships/vbaProject",
                        "vbaProject.bin"))})
    assert sniff_file(src).format == "docm"
    out = tmp_path / "out.docm"
    report = compress_any(src, out, {"level": "medium"})
    assert report.format_out == "docm" and not report.original_kept
    assert raw_member(out, "word/vbaProject.bin") == raw_member(src, "word/vbaProject.bin")
    [row] = [m for m in report.members if m.name == "word/vbaProject.bin"]
    assert "byte-identical" in row.action


def test_signed_package_is_byte_identical_unless_allowed(tmp_path: Path) -> None:
    base = docx(tmp_path / "base.docx", picture=png_bytes(photo(400, 300)))
    with zipfile.ZipFile(base) as z:
        types, root_rels = z.read("[Content_Types].xml"), z.read("_rels/.rels")
    origin = ("http://schemas.openxmlformats.org/package/2006/relationships/digital-signature/"
              "origin")
    sig = ("http://schemas.openxmlformats.org/package/2006/relationships/digital-signature/"
           "signature")
    src = rezip(base, tmp_path / "signed.docx", add={
        "_xmlsignatures/origin.sigs": b"",
        "_xmlsignatures/sig1.xml": b"<Signature xmlns='http://www.w3.org/2000/09/xmldsig#'/>",
        "_xmlsignatures/_rels/origin.sigs.rels": (
            b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            b'package/2006/relationships"><Relationship Id="rId1" Type="' + sig.encode()
            + b'" Target="sig1.xml"/></Relationships>')},
        replace={"_rels/.rels": rels_add(root_rels, ("rIdS", origin,
                                                      "_xmlsignatures/origin.sigs")),
                 "[Content_Types].xml": content_types_add(types, (
                     "/_xmlsignatures/sig1.xml",
                     "application/vnd.openxmlformats-package.digital-signature-xmlsignature+xml"),
                     ("/_xmlsignatures/origin.sigs",
                      "application/vnd.openxmlformats-package.digital-signature-origin"))})
    out = tmp_path / "out.docx"
    kept = compress_any(src, out, {"level": "medium"})
    assert kept.signed and kept.original_kept and out.read_bytes() == src.read_bytes()
    assert any("signed" in w for w in kept.warnings)
    dropped = compress_any(src, out, {"level": "medium", "archive": {"drop_signatures": True}})
    assert not dropped.original_kept, dropped.warnings
    assert dropped.output_bytes < src.stat().st_size
    names = set(members(out))
    assert not any(n.startswith("_xmlsignatures/") for n in names)
    assert b"digital-signature" not in read(out, "_rels/.rels")
    assert b"_xmlsignatures" not in read(out, "[Content_Types].xml")
    assert docx_text(out) == docx_text(src)


FONT_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/font"
FONT_KEY = "{6C1D9B1E-3F2A-4B5C-8D7E-0A1B2C3D4E5F}"


def _assert_subset_at_medium_only(src: Path, member: str, stored: bytes, ttf: Path, text: str,
                                  font_bytes: Callable[[bytes], bytes] = lambda b: b,
                                  ) -> tuple[Path, Any]:
    """``member`` (an embedded font, ``stored`` as it is in ``src``) is kept byte for byte at
    lossless and subset at medium to a third of its size, keeping ``text``'s characters;
    ``font_bytes`` turns the stored member into the font (Word's de-obfuscation).  The
    medium output's path and report."""
    from fontTools.ttLib import TTFont

    lossless = src.with_name("lossless" + src.suffix)
    compress_any(src, lossless, {"level": "lossless"})
    assert read(lossless, member) == stored
    out = src.with_name("medium" + src.suffix)
    report = compress_any(src, out, {"level": "medium"})
    row = {m.name: m for m in report.members}[member]
    assert row.action == "subset" and row.size_after < len(stored) / 3
    cmap = TTFont(io.BytesIO(font_bytes(read(out, member)))).getBestCmap()
    assert all(ord(c) in cmap for c in text)
    assert len(cmap) < len(TTFont(str(ttf)).getBestCmap()) / 3
    return out, report


def test_word_embedded_fonts_are_subset_obfuscated_and_marked(tmp_path: Path) -> None:
    from pdfgen import find_ttf

    from squeezer.engines.container import fonts

    ttf = find_ttf()
    if ttf is None:
        pytest.skip("no TrueType font on this machine")
    key = fonts.font_key(FONT_KEY)
    assert key is not None
    plain = ttf.read_bytes()
    odttf = fonts.deobfuscate(plain, key)
    assert odttf[:32] != plain[:32] and odttf[32:] == plain[32:]
    base = docx(tmp_path / "base.docx", paragraphs=5)
    table = read(base, "word/fontTable.xml").replace(
        b"</w:fonts>", f'<w:font w:name="Embedded"><w:embedRegular r:id="rIdF1" '
        f'w:fontKey="{FONT_KEY}"/></w:font></w:fonts>'.encode())
    if b"xmlns:r=" not in table:
        table = table.replace(b"<w:fonts ", b'<w:fonts xmlns:r="http://schemas.openxmlformats.org'
                              b'/officeDocument/2006/relationships" ', 1)
    rels = rels_add(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><Relationships '
                    b'xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
                    b'</Relationships>', ("rIdF1", FONT_REL, "fonts/font1.odttf"))
    types = read(base, "[Content_Types].xml").replace(
        b"</Types>", b'<Default Extension="odttf" ContentType="application/vnd.openxmlformats-'
        b'officedocument.obfuscatedFont"/></Types>')
    src = rezip(base, tmp_path / "fonts.docx", replace={"word/fontTable.xml": table,
                                                       "[Content_Types].xml": types},
                add={"word/_rels/fontTable.xml.rels": rels, "word/fonts/font1.odttf": odttf})
    out, _ = _assert_subset_at_medium_only(src, "word/fonts/font1.odttf", odttf, ttf,
                                           "Paragraph quick brown fox 0123456789",
                                           lambda data: fonts.deobfuscate(data, key))
    assert b'w:subsetted="1"' in read(out, "word/fontTable.xml")
    assert docx_text(out) == docx_text(src)


def test_identical_media_are_merged_and_every_relationship_follows(tmp_path: Path) -> None:
    picture = png_bytes(photo(300, 200))
    base = docx(tmp_path / "base.docx", picture=picture)
    with zipfile.ZipFile(base) as z:
        [media] = [n for n in z.namelist() if n.startswith("word/media/")]
        rels = z.read("word/_rels/document.xml.rels")
        document = z.read("word/document.xml")
    # a second copy of the picture, referenced by a second relationship and drawing
    copy = media.replace("image1", "image9")
    rid = document.split(b'r:embed="')[1].split(b'"')[0]
    drawing = document[document.index(b"<w:drawing>"):document.index(b"</w:drawing>") + 12]
    document = document.replace(b"</w:body>", b"<w:p><w:r>" + drawing.replace(
        rid, b"rIdCopy") + b"</w:r></w:p></w:body>")
    src = rezip(base, tmp_path / "dup.docx", add={copy: picture}, replace={
        "word/document.xml": document,
        "word/_rels/document.xml.rels": rels_add(rels, ("rIdCopy", IMAGE_REL,
                                                        copy.split("word/")[1]))})
    out = tmp_path / "out.docx"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.deduplicated == 1
    names = set(members(out))
    assert (media in names) != (copy in names)
    rels_out = read(out, "word/_rels/document.xml.rels").decode()
    kept = media if media in names else copy
    assert rels_out.count(kept.split("word/")[1]) == 2
    import docx as python_docx

    assert len(python_docx.Document(str(out)).inline_shapes) == 2


def test_pptx_and_xlsx_from_the_corpus_open_with_the_same_content(tmp_path: Path) -> None:
    for name, level in (("docling__docling_ecosystem.pptx", "lossless"),
                        ("tika__pic.xlsx", "high")):
        src = cut(corpus_file("docs", name), tmp_path / f"cut-{name}")
        out = tmp_path / name
        report = compress_any(src, out, {"level": level})
        assert not report.original_kept and report.output_bytes < src.stat().st_size
        assert any(v.startswith(("python-pptx: opens", "openpyxl: opens"))
                   for v in report.verified), report.verified


# --- ODF and EPUB -----------------------------------------------------------------------------


def odt(path: Path, picture: bytes) -> Path:
    from odf.draw import Frame
    from odf.draw import Image as DrawImage
    from odf.opendocument import OpenDocumentText
    from odf.text import P

    doc = OpenDocumentText()
    for i in range(20):
        doc.text.addElement(P(text=f"Paragraph {i}: pack my box with five dozen liquor jugs."))
    href = doc.addPicture("Pictures/photo.png", "image/png", picture)
    frame = Frame(width="3cm", height="2.25cm", anchortype="paragraph", name="photo")
    frame.addElement(DrawImage(href=href))
    para = P()
    para.addElement(frame)
    doc.text.addElement(para)
    doc.save(str(path))
    return path


def first_member(path: Path) -> zipfile.ZipInfo:
    with zipfile.ZipFile(path) as z:
        return z.infolist()[0]


def test_odt_mimetype_first_stored_and_manifest_follows_a_rename(tmp_path: Path) -> None:
    src = odt(tmp_path / "doc.odt", png_bytes(photo(1000, 750)))
    assert sniff_file(src).format == "odt"
    out = tmp_path / "out.odt"
    report = compress_any(src, out, {"level": "medium"})
    assert report.container == "odf" and report.output_bytes < src.stat().st_size * 0.3
    first = first_member(out)
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
    assert first.extra == b"" and read(out, "mimetype") == b"application/vnd.oasis.opendocument.text"
    [picture] = [n for n in members(out) if n.startswith("Pictures/")]
    assert picture.endswith(".jpg") and report.renamed == {"Pictures/photo.png": picture}
    manifest = read(out, "META-INF/manifest.xml").decode()
    assert picture in manifest and "photo.png" not in manifest
    assert picture in read(out, "content.xml").decode()
    assert Image.open(io.BytesIO(read(out, picture))).width <= 3 / 2.54 * 220 + 1
    assert any(v.startswith("odfpy: opens, 21 paragraphs") for v in report.verified)


def test_odt_whose_manifest_names_an_external_dtd_is_compressed(tmp_path: Path) -> None:
    """OpenOffice 1.x/2.x wrote ``<!DOCTYPE manifest:manifest … "Manifest.dtd">``: odfpy (through
    defusedxml) refuses the input, while the output's rewritten manifest has no DOCTYPE and
    opens; both sides must still be compared the same way (the input was returned whole,
    tika's testODT-TIKA-6000.odt: 3.89 MB kept against 1.49 MB)."""
    plain = odt(tmp_path / "plain.odt", png_bytes(photo(1000, 750)))
    manifest = read(plain, "META-INF/manifest.xml")
    head, _, body = manifest.partition(b"?>")
    doctype = (b'\n<!DOCTYPE manifest:manifest PUBLIC "-//OpenOffice.org//DTD Manifest 1.0//EN" '
               b'"Manifest.dtd">')
    src = rezip(plain, tmp_path / "doc.odt",
                replace={"META-INF/manifest.xml": head + b"?>" + doctype + body},
                stored={"mimetype"})
    out = tmp_path / "out.odt"
    report = compress_any(src, out, {"level": "medium"})
    assert not report.original_kept, report.warnings
    assert report.output_bytes < src.stat().st_size * 0.3
    assert "xml text: opens, 3 parts; same text" in report.verified
    [picture] = [n for n in members(out) if n.startswith("Pictures/")]
    assert picture.endswith(".jpg") and picture in read(out, "content.xml").decode()


def test_odt_embedded_fonts_are_subset_to_the_documents_characters(tmp_path: Path) -> None:
    from odf.opendocument import OpenDocumentText
    from odf.style import FontFace
    from odf.svg import FontFaceFormat, FontFaceSrc, FontFaceUri
    from odf.text import P
    from pdfgen import find_ttf

    ttf = find_ttf()
    if ttf is None:
        pytest.skip("no TrueType font on this machine")
    plain = ttf.read_bytes()
    doc = OpenDocumentText()
    for i in range(10):
        doc.text.addElement(P(text=f"Paragraph {i}: pack my box with five dozen liquor jugs."))
    # what LibreOffice's "Embed fonts in document" writes: Fonts/*.ttf named by a font-face-uri
    href = doc.addPicture("Fonts/Embedded-1.ttf", "application/x-font-ttf", plain)
    face = FontFace(name="Embedded", fontfamily="Embedded")
    src_el = FontFaceSrc()
    uri = FontFaceUri(href=href, type="simple")
    uri.addElement(FontFaceFormat(string="truetype"))
    src_el.addElement(uri)
    face.addElement(src_el)
    doc.fontfacedecls.addElement(face)
    src = tmp_path / "fonts.odt"
    doc.save(str(src))
    out, report = _assert_subset_at_medium_only(src, "Fonts/Embedded-1.ttf", plain, ttf,
                                                "Paragraph PACK MY BOX liquor 0123456789")
    assert "Fonts/Embedded-1.ttf" in read(out, "META-INF/manifest.xml").decode()
    assert any(v.startswith("odfpy: opens, 10 paragraphs") for v in report.verified)


def test_epub_keeps_its_packaging_and_caps_images(tmp_path: Path) -> None:
    src = corpus_file("docs", "unstructured__winter-sports.epub")
    out = tmp_path / "out.epub"
    report = compress_any(src, out, {"level": "extreme"})
    assert report.container == "epub" and not report.original_kept
    first = first_member(out)
    assert (first.filename, first.compress_type, first.extra) == ("mimetype", 0, b"")
    assert any(v.startswith("epub:") for v in report.verified)
    with zipfile.ZipFile(out) as z:
        for name in z.namelist():
            if name.endswith((".jpg", ".jpeg", ".png")):
                assert max(Image.open(io.BytesIO(z.read(name))).size) <= 1400
    import subprocess

    command = epubcheck()
    if command:  # the reference checker, when Debian's package is there
        def errors(path: Path) -> int:
            try:
                proc = subprocess.run([*command, "-q", "-e", str(path)], capture_output=True,
                                      text=True, timeout=300)
            except subprocess.TimeoutExpired:
                pytest.skip("epubcheck (Java) took over 5 minutes on this loaded machine")
            return sum(ln.startswith(("ERROR", "FATAL"))
                       for ln in (proc.stdout + proc.stderr).splitlines())

        assert errors(out) <= errors(src)


# --- plain ZIP, nesting, website ----------------------------------------------------------------


def test_truetype_fonts_are_deflated_harder_not_stored_as_packed(tmp_path: Path) -> None:
    """TTF/OTF are tables, not entropy-coded: the lossless re-pack deflates them with
    near-optimal parsing and beats zlib's and libdeflate's usual levels, bytes unchanged."""
    from pdfgen import find_ttf

    ttf = find_ttf()
    if ttf is None:
        pytest.skip("no TrueType font on this machine")
    data = ttf.read_bytes()
    src = tmp_path / "fonts.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("fonts/a.ttf", data)
    out = tmp_path / "out.zip"
    compress_any(src, out, {"level": "lossless"})
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(out) as b:
        assert b.read("fonts/a.ttf") == data
        stored = b.getinfo("fonts/a.ttf").compress_size
        assert stored < a.getinfo("fonts/a.ttf").compress_size
    import deflate

    assert stored < min(len(deflate.deflate_compress(data, level)) for level in (6, 9))


def test_plain_zip_keeps_names_times_permissions_dirs_and_links(tmp_path: Path) -> None:
    src = tmp_path / "plain.zip"
    with zipfile.ZipFile(src, "w") as z:
        d = zipfile.ZipInfo("photos/", (2019, 1, 2, 3, 4, 6))
        d.external_attr = (0o40755 << 16) | 0x10
        d.create_system = 3
        z.writestr(d, b"")
        p = zipfile.ZipInfo("photos/big.jpg", (2018, 6, 7, 8, 9, 10))
        p.external_attr = 0o100640 << 16
        p.create_system = 3
        z.writestr(p, jpeg_bytes(photo(500, 400)), zipfile.ZIP_DEFLATED)
        n = zipfile.ZipInfo("cafX notes.txt", (2017, 1, 1, 0, 0, 0))
        z.writestr(n, b"same text, always\n" * 200, zipfile.ZIP_DEFLATED)
        link = zipfile.ZipInfo("latest.jpg", (2018, 6, 7, 8, 9, 10))
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, b"photos/big.jpg")
    # a name that is not UTF-8 (CP437 bytes, no UTF-8 flag), as old zip tools write
    src.write_bytes(src.read_bytes().replace(b"cafX notes.txt", b"caf\x82 notes.txt"))
    before = {i.filename: i for i in zipfile.ZipFile(src).infolist()}
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.container == "zip" and report.output_bytes < src.stat().st_size
    after = {i.filename: i for i in zipfile.ZipFile(out).infolist()}
    assert list(after) == list(before)
    for name, info in before.items():
        got = after[name]
        assert got.orig_filename == info.orig_filename and got.flag_bits & 0x800 == \
            info.flag_bits & 0x800
        assert (got.date_time, got.external_attr, got.create_system) == (
            info.date_time, info.external_attr, info.create_system)
    assert zipfile.ZipFile(out).read("latest.jpg") == b"photos/big.jpg"  # the link, not followed
    text = next(n for n in before if n.startswith("caf"))
    assert zipfile.ZipFile(out).read(text) == zipfile.ZipFile(src).read(text)
    assert np.array_equal(pixels(zipfile.ZipFile(out).read("photos/big.jpg")),
                          pixels(zipfile.ZipFile(src).read("photos/big.jpg")))


def test_nested_containers_and_a_pdf_inside_go_to_their_engines(tmp_path: Path, fx) -> None:
    inner = docx(tmp_path / "inner.docx", picture=png_bytes(photo(400, 300)))
    src = tmp_path / "bundle.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as z:
        z.write(inner, "reports/inner.docx")
        z.write(fx.uncompressed(), "reports/doc.pdf")
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "lossless"})
    rows = {m.name: m for m in report.members}
    assert rows["reports/doc.pdf"].type == "pdf" and "pdf engine" in rows["reports/doc.pdf"].action
    assert rows["reports/inner.docx"].members, "the nested document's own rows"
    assert report.nested_depth == 2
    with zipfile.ZipFile(out) as z:
        nested = tmp_path / "nested.docx"
        nested.write_bytes(z.read("reports/inner.docx"))
        assert docx_text(nested) == docx_text(inner)
        assert len(z.read("reports/doc.pdf")) < fx.uncompressed().stat().st_size


def website(path: Path, css: str = "body { margin : 0 ;  color : #333 }") -> Path:
    page = ("<!DOCTYPE html>\n<html>\n  <head>\n    <!-- a comment -->\n    <link rel=\"stylesheet\" "
            "href=\"css/site.css\">\n    <script src=\"js/app.js\"></script>\n  </head>\n  <body>\n"
            "    <div>\n      <p>Hello,   <b>world</b> !</p>\n" + "      <p>More   text  here.</p>\n" * 20 + "      <img src=\"img/logo.png\" "
            "alt=\"logo\">\n    </div>\n  </body>\n</html>\n") * 1
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("site/index.html", page)
        z.writestr("site/css/site.css", f"/* styles */\n{css}\n\n.a   {{ background: url(../img/logo.png) }}\n" * 20)
        z.writestr("site/js/app.js", "// app\nfunction add ( a , b ) {\n  return a + b ;\n}\n" * 30)
        z.writestr("site/data.json", '{\n  "a" : [ 1 , 2.50 , "x  y" ],\n  "b" : null\n}\n')
        z.writestr("site/img/logo.png", png_bytes(photo(120, 80)))
    return path


def test_website_bundle_is_minified_and_references_still_resolve(tmp_path: Path) -> None:
    src = website(tmp_path / "site.zip")
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "medium", "archive": {"precompress": True}})
    assert report.container == "website"
    with zipfile.ZipFile(out) as z:
        html = z.read("site/index.html").decode()
        assert "<!-- a comment -->" not in html and "Hello, <b>world</b> !" in html
        assert z.read("site/data.json") == b'{"a":[1,2.50,"x  y"],"b":null}'
        assert "/* styles */" not in z.read("site/css/site.css").decode()
        names = set(z.namelist())
    assert {"site/index.html.br", "site/index.html.gz", "site/css/site.css.gz"} <= names
    assert "precompress" in report.requested_changes
    assert any(v.startswith("website:") and "local references resolve" in v
               for v in report.verified)


def test_website_html_is_left_alone_when_css_makes_whitespace_visible(tmp_path: Path) -> None:
    src = website(tmp_path / "site.zip", css="nav li { display: inline-block }")
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "medium"})
    assert read(out, "site/index.html") == read(src, "site/index.html")
    assert any("HTML not minified" in w for w in report.warnings)


# --- tar, gzip, 7z ------------------------------------------------------------------------------


def make_tar(path: Path, mode: str) -> Path:
    with tarfile.open(path, mode) as tf:
        for name, data, perm in (("pkg/readme.txt", b"text stays text\n" * 300, 0o644),
                                 ("pkg/art.png", png_bytes(photo(300, 200), level=0), 0o600)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), perm, 1_500_000_000
            info.uname, info.gname = "alice", "staff"
            tf.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/latest.png")
        link.type, link.linkname, link.mtime = tarfile.SYMTYPE, "art.png", 1_500_000_000
        tf.addfile(link)
    return path


@pytest.mark.parametrize(("suffix", "mode", "fmt"), [("tar.gz", "w:gz", "tar.gz"),
                                                     ("tar.xz", "w:xz", "tar.xz"),
                                                     ("tar", "w", "tar")])
def test_tarballs_keep_headers_and_text(tmp_path: Path, suffix: str, mode: str, fmt: str) -> None:
    src = make_tar(tmp_path / f"pkg.{suffix}", mode)
    assert sniff_file(src).format == fmt
    out = tmp_path / f"out.{suffix}"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.container == "tar" and report.output_bytes < src.stat().st_size
    with tarfile.open(src) as a, tarfile.open(out) as b:
        for x, y in zip(a.getmembers(), b.getmembers(), strict=True):
            assert (x.name, x.mode, x.mtime, x.uname, x.gname, x.type, x.linkname) == (
                y.name, y.mode, y.mtime, y.uname, y.gname, y.type, y.linkname)
        assert b.extractfile("pkg/readme.txt").read() == a.extractfile("pkg/readme.txt").read()
        assert np.array_equal(pixels(b.extractfile("pkg/art.png").read()),
                              pixels(a.extractfile("pkg/art.png").read()))


def test_tar_zst_and_a_gzipped_svg(tmp_path: Path) -> None:
    import gzip

    import zstandard

    tar = make_tar(tmp_path / "pkg.tar", "w")
    src = tmp_path / "pkg.tar.zst"
    src.write_bytes(zstandard.ZstdCompressor(level=3).compress(tar.read_bytes()))
    report = compress_any(src, tmp_path / "out.tar.zst", {"level": "lossless"})
    assert report.format_out == "tar.zst" and report.output_bytes < src.stat().st_size
    svg = (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" '
           b'height="100">\n  <!-- drawn by hand -->\n' + b'  <rect x="10.000000" y="10.000000" '
           b'width="20.000000" height="20.000000" fill="#ff0000"/>\n' * 40 + b"</svg>\n")
    svgz = tmp_path / "icon.svgz"
    svgz.write_bytes(gzip.compress(svg, 6))
    assert sniff_file(svgz).format == "gz"
    out = tmp_path / "out.svgz"
    report = compress_any(svgz, out, {"level": "medium"})
    assert report.container == "single" and report.members[0].type == "svg"
    assert report.output_bytes < svgz.stat().st_size
    assert gzip.decompress(out.read_bytes()).lstrip().startswith(b"<svg")


def test_7z_is_read_checked_and_kept_unless_writing_is_asked(tmp_path: Path) -> None:
    import py7zr

    src = corpus_file("archives", "tika__test-documents.7z")
    out = tmp_path / "out.7z"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.original_kept and out.read_bytes() == src.read_bytes()
    assert len(report.members) == 9 and any(v.startswith("7z:") for v in report.verified)
    report = compress_any(src, out, {"level": "lossless", "archive": {"write_7z": True}})
    with py7zr.SevenZipFile(out) as z:
        names = z.getnames()
    assert "test-documents/testTXT.txt" in names
    assert report.output_bytes <= src.stat().st_size


# --- hostile archives ---------------------------------------------------------------------------


def assert_refused(tmp_path: Path, data: bytes, error: type, limits: Limits | None = None,
                   name: str = "hostile.zip") -> None:
    src = tmp_path / name
    src.write_bytes(data)
    out = tmp_path / "out" / name
    out.parent.mkdir(exist_ok=True)
    before = sorted(p.name for p in tmp_path.parent.iterdir())
    with pytest.raises(error):
        compress_any(src, out, {"level": "lossless"}, limits=limits)
    assert not out.exists() and list(out.parent.iterdir()) == []
    assert sorted(p.name for p in tmp_path.parent.iterdir()) == before


def test_bombs_by_ratio_total_bytes_and_overlapping_entries(tmp_path: Path) -> None:
    zeros = raw_zip([(b"zeros.bin", bytes(8 << 20), 8)])
    assert_refused(tmp_path, zeros, ArchiveBombError, Limits(max_archive_ratio=100))
    two = raw_zip([(b"a.bin", os.urandom(600_000), 0), (b"b.bin", os.urandom(600_000), 0)])
    assert_refused(tmp_path, two, ArchiveBombError, Limits(max_archive_bytes=1_000_000))
    overlapping = raw_zip([(f"f{i}".encode(), b"A" * 5000, 8) for i in range(5)], overlap=True)
    assert_refused(tmp_path, overlapping, ArchiveBombError)


def test_a_gzip_bomb_stops_at_the_byte_limit(tmp_path: Path) -> None:
    import gzip

    assert_refused(tmp_path, gzip.compress(bytes(16 << 20), 9), ArchiveBombError,
                   Limits(max_archive_bytes=4 << 20), name="bomb.gz")


@pytest.mark.parametrize("name", [b"../evil.txt", b"/etc/cron.d/evil", b"C:\\evil.txt",
                                  b"ok/../../evil.txt"])
def test_zip_slip_names_are_refused(tmp_path: Path, name: bytes) -> None:
    assert_refused(tmp_path, raw_zip([(b"fine.txt", b"x" * 100, 8), (name, b"y" * 100, 8)]),
                   UnsafeArchiveError)
    assert not (tmp_path.parent / "evil.txt").exists()


def test_tar_slip_and_duplicate_names_are_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 3
        tf.addfile(info, io.BytesIO(b"bad"))
    assert_refused(tmp_path, buf.getvalue(), UnsafeArchiveError, name="slip.tar")
    dup = raw_zip([(b"same.txt", b"one" * 50, 8), (b"same.txt", b"two" * 50, 8)])
    assert_refused(tmp_path, dup, UnsafeArchiveError)


def test_encrypted_members_are_kept_as_they_are(tmp_path: Path) -> None:
    secret = os.urandom(3000)  # stands for ZipCrypto bytes: never opened, copied verbatim
    src = tmp_path / "enc.zip"
    src.write_bytes(raw_zip([(b"secret.bin", secret, 0), (b"readme.txt", b"open text\n" * 400, 0)],
                            flags={b"secret.bin": 1}))
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "lossless"})
    assert raw_member(out, "secret.bin") == secret
    assert zipfile.ZipFile(out).getinfo("secret.bin").flag_bits & 1
    [row] = [m for m in report.members if m.name == "secret.bin"]
    assert row.action == "kept: encrypted"
    assert zipfile.ZipFile(out).read("readme.txt") == b"open text\n" * 400


def test_broken_central_directories_are_named(tmp_path: Path) -> None:
    good = raw_zip([(b"a.txt", b"hello" * 100, 8)])
    assert_refused(tmp_path, good[:-10], DamagedArchiveError)  # truncated end record
    cd = good.index(b"PK\x01\x02")
    assert_refused(tmp_path, good[:cd] + b"XX" + good[cd + 2:], DamagedArchiveError)
    wrong_crc = good.replace(good[14:18], b"\0\0\0\0", 2)
    assert_refused(tmp_path, wrong_crc, DamagedArchiveError)


def test_too_many_members_are_refused_from_the_directory(tmp_path: Path) -> None:
    assert_refused(tmp_path, many_members(100_000), TooManyMembersError)


def test_deeply_nested_archives_stop_at_the_depth_limit(tmp_path: Path) -> None:
    assert_refused(tmp_path, nested_zips(8), NestingTooDeepError, Limits(max_archive_depth=4))
    ok = tmp_path / "ok.zip"
    ok.write_bytes(nested_zips(3))
    report = compress_any(ok, tmp_path / "ok.out.zip", {"level": "lossless"})
    assert report.nested_depth == 3


def test_xz_and_tar_bombs_use_the_same_limits(tmp_path: Path) -> None:
    data = lzma.compress(bytes(12 << 20))
    assert_refused(tmp_path, data, ArchiveBombError, Limits(max_archive_ratio=200), name="z.xz")


def test_a_video_inside_a_presentation_goes_to_the_media_engine(tmp_path: Path) -> None:
    """Only once the media engine (issue 16) is installed: its family routes the member."""
    from squeezer.engines.families import FAMILIES

    if not any(f.name == "video" for f in FAMILIES):
        pytest.skip("no video engine installed")
    clips = sorted((corpus_file("video", "MANIFEST.tsv").parent).glob("*.mp4"),
                   key=lambda p: p.stat().st_size)
    if not clips:
        pytest.skip("no MP4 clip in the corpus")
    src = tmp_path / "clips.zip"
    with zipfile.ZipFile(src, "w", zipfile.ZIP_STORED) as z:
        z.write(clips[0], "media/clip.mp4")
    report = compress_any(src, tmp_path / "out.zip", {"level": "medium"})
    [row] = [m for m in report.members if m.name == "media/clip.mp4"]
    from squeezer.engines.families import family_of

    assert family_of(row.type).name == "video"  # sniffed as the media engine's own format
    assert "engine" in row.action or row.action.startswith("kept")
    assert row.bytes_after <= row.bytes_before


def test_png_effort_follows_pixel_density_and_both_keep_every_pixel() -> None:
    """A screenshot-like PNG (flat areas: few bytes per pixel) gets oxipng's fast setting, a
    photo-like one -o2; both come back smaller with the same pixels."""
    from squeezer.engines.container.members import png_effort, repack_png

    flat = np.zeros((300, 400, 3), np.uint8)
    flat[40:120, 50:350] = (30, 90, 200)
    flat[150:260, :] = (250, 250, 240)
    flat[::20, :] = 0  # ruled lines, like a form
    screenshot = png_bytes(Image.fromarray(flat, "RGB"), level=1)
    dense = png_bytes(photo(300, 200), level=1)
    assert png_effort(screenshot) == "fast"
    assert png_effort(dense) == "full"
    assert png_effort(b"not a png") == "full"
    for data in (screenshot, dense):
        out = repack_png(data)
        assert len(out) < len(data)
        assert np.array_equal(pixels(out), pixels(data))


def test_large_odf_content_is_compared_by_lxml_with_odfpys_counts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above ``ODFPY_MAX_BYTES`` the check reads content.xml with lxml: it must count the
    paragraphs odfpy counts, and see a changed paragraph."""
    from squeezer.engines.container import verify

    src = odt(tmp_path / "doc.odt", png_bytes(photo(64, 48)))
    with zipfile.ZipFile(src) as z:
        parts: dict[str, bytes | None] = {n: z.read(n) for n in z.namelist()}
    label, odfpy_sig = verify.document_signature("odt", src, parts)
    assert label == "odfpy"
    monkeypatch.setattr(verify, "ODFPY_MAX_BYTES", 0)
    label, lxml_sig = verify.document_signature("odt", src, parts)
    assert label.startswith("lxml")
    assert lxml_sig["paragraphs"] == odfpy_sig["paragraphs"] == 21
    assert lxml_sig["tables"] == odfpy_sig["tables"] == 0
    changed = dict(parts, **{"content.xml": (parts["content.xml"] or b"").replace(
        b"Paragraph 7:", b"Paragraph 8:")})
    assert verify.document_signature("odt", src, changed)[1]["text"] != lxml_sig["text"]


def test_xml_whitespace_is_dropped_only_where_the_bytes_show_a_gap_between_tags() -> None:
    """An indented part loses its indentation (same infoset); a part written on one line is
    left as it is without being parsed, as is one whose only blank is a character reference."""
    from lxml import etree

    from squeezer.engines.container.textmin import xml_whitespace

    decl = b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
    indented = decl + b'<r xmlns="urn:x">\n  <a>\n    <b>t t</b>\n  </a>\n  <c/>\n</r>'
    out = xml_whitespace(indented)
    assert out == decl + b'<r xmlns="urn:x"><a><b>t t</b></a><c/></r>'
    assert etree.tostring(etree.fromstring(out), method="c14n") == etree.tostring(
        etree.fromstring(indented, etree.XMLParser(remove_blank_text=True)), method="c14n")
    assert xml_whitespace(decl + b'<r xmlns="urn:x"><a><b>t t</b></a><c/></r>') is None
    assert xml_whitespace(decl + b"<r><a/>&#32;<c/></r>") is None
