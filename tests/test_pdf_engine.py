"""Guarantees of the PDF engine on generated fixtures (see tests/pdfgen.py).

Each test checks real outcomes: sizes, bytes, page counts, PDFium text and
rendering, and the PDF objects qpdf finds in the output.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pdfgen
import pikepdf
import pytest
from pikepdf import Dictionary, Name, Stream
from PIL import Image

from squeezer.engines.errors import (
    EngineError,
    InputError,
    InvalidPasswordError,
    NotAPdfError,
    PasswordRequiredError,
    TooManyPagesError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

PRESETS = ["lossless", "low", "medium", "high", "extreme"]
GENERATED = [
    "text", "uncompressed", "photo", "bitonal", "dup_images", "dup_fonts",
    "interactive", "junk", "metadata", "broken_xref",
]



def run(src: Path, dst: Path, **options) -> object:
    limits = options.pop("limits", None)
    return compress(src, dst, Options(**options), limits=limits)


# --- every preset on every generated fixture --------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", GENERATED)
def test_every_preset_gives_a_valid_smaller_or_original_output(fx, out_dir, name, preset):
    src = fx.get(name)
    before = pdfgen.sha256(src)
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset=preset)
    pdfgen.assert_valid_output(src, dst, report)
    assert pdfgen.sha256(src) == before, "the input was modified"
    assert report.settings["lossy_images"] is (preset != "lossless")
    assert pdfgen.dir_listing(out_dir) == {"out.pdf"}


@pytest.mark.parametrize("name", ["uncompressed", "junk", "dup_images", "dup_fonts", "metadata"])
def test_lossless_shrinks_files_with_structural_waste(fx, out_dir, name):
    src = fx.get(name)
    report = run(src, out_dir / "out.pdf", preset="lossless")
    assert not report.original_kept
    assert report.output_bytes < 0.75 * report.input_bytes


@pytest.mark.parametrize("preset", ["medium", "extreme"])
def test_lossy_presets_shrink_a_600_dpi_photo(fx, out_dir, preset):
    src = fx.photo()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset=preset)
    assert not report.original_kept
    assert report.output_bytes < 0.5 * report.input_bytes
    assert report.images.downsampled >= 1
    with pikepdf.open(dst) as pdf:
        (image,) = pdfgen.image_xobjects(pdf)
        assert int(image.Width) <= 2400 * 150 // 600 + 2  # 150 dpi on a 4 in wide picture
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.9


def test_lossless_keeps_every_pixel_of_the_photo(fx, out_dir):
    src = fx.photo()
    dst = out_dir / "out.pdf"
    run(src, dst, preset="lossless")
    with pikepdf.open(src) as a, pikepdf.open(dst) as b:
        (ia,), (ib,) = pdfgen.image_xobjects(a), pdfgen.image_xobjects(b)
        assert (int(ib.Width), int(ib.Height)) == (int(ia.Width), int(ia.Height))
        # the JPEG may be re-packed (Huffman tables, progressive scans), never re-quantised
        assert ib.Filter == ia.Filter == Name.DCTDecode
        assert len(ib.read_raw_bytes()) <= len(ia.read_raw_bytes())
        pixels_a = np.asarray(Image.open(io.BytesIO(ia.read_raw_bytes())))
        pixels_b = np.asarray(Image.open(io.BytesIO(ib.read_raw_bytes())))
        assert np.array_equal(pixels_a, pixels_b)
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.999


# --- never larger -----------------------------------------------------------------------------


@pytest.mark.parametrize("preset", ["lossless", "medium"])
def test_already_optimal_input_is_copied_byte_for_byte(fx, out_dir, preset):
    src = fx.tiny()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset=preset)
    assert report.original_kept is True
    assert pdfgen.sha256(dst) == pdfgen.sha256(src)
    assert report.output_bytes == report.input_bytes and report.ratio == 1.0
    assert report.steps == {}
    pdfgen.assert_valid_output(src, dst, report)


def test_original_kept_replaces_an_existing_destination(fx, out_dir):
    src = fx.tiny()
    dst = out_dir / "out.pdf"
    dst.write_bytes(b"stale content " * 1000)
    report = run(src, dst, preset="lossless")
    assert report.original_kept
    assert pdfgen.sha256(dst) == pdfgen.sha256(src)
    assert pdfgen.dir_listing(out_dir) == {"out.pdf"}


# --- encryption and passwords -------------------------------------------------------------------


ENCRYPTED = [
    pytest.param(6, "user", False, id="R6"),
    pytest.param(4, "user", False, id="R4"),
    pytest.param(3, "user", False, id="R3-rc4"),
    pytest.param(6, "", True, id="R6-empty-user-restricted"),
    pytest.param(6, "æøå", False, id="R6-unicode"),
]


@pytest.mark.parametrize(("R", "user", "restrict"), ENCRYPTED)
def test_encryption_is_preserved(fx, out_dir, R, user, restrict):
    src = fx.encrypted(R=R, user=user, restrict=restrict)
    dst = out_dir / "out.pdf"
    report = run(src, dst, password=user or None, preset="medium")
    pdfgen.assert_valid_output(src, dst, report, password=user or None)
    assert not report.original_kept  # the fixture's content streams are uncompressed
    with pikepdf.open(src, password=user) as a, pikepdf.open(dst, password=user) as b:
        assert b.is_encrypted
        ea, eb = a.encryption, b.encryption
        assert (eb.R, eb.V, eb.P, eb.bits) == (ea.R, ea.V, ea.P, ea.bits) == (eb.R, eb.V, eb.P, eb.bits)
        assert eb.R == R
        assert (eb.stream_method, eb.string_method) == (ea.stream_method, ea.string_method)
        assert b.allow == a.allow
        if restrict:
            assert b.allow.extract is False and b.allow.modify_other is False
    # the owner password still opens it, and nothing else but the user password does
    with pikepdf.open(dst, password="owner") as pdf:
        assert pdf.is_encrypted
    if user:
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(dst)
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(dst, password="not-it")


def test_remove_encryption_writes_a_plain_pdf(fx, out_dir):
    src = fx.encrypted(R=6, user="user")
    dst = out_dir / "out.pdf"
    report = run(src, dst, password="user", remove_encryption=True)
    with pikepdf.open(dst) as pdf:
        assert not pdf.is_encrypted
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src, "user")
    assert report.pages == 2


def test_owner_password_opens_the_input_too(fx, out_dir):
    src = fx.encrypted(R=6, user="user")
    dst = out_dir / "out.pdf"
    run(src, dst, password="owner")
    with pikepdf.open(dst, password="user") as pdf:
        assert pdf.is_encrypted and len(pdf.pages) == 2


def assert_nothing_written(out_dir: Path, dst: Path, previous: bytes | None = None) -> None:
    if previous is None:
        assert not dst.exists()
        assert pdfgen.dir_listing(out_dir) == set()
    else:
        assert dst.read_bytes() == previous
        assert pdfgen.dir_listing(out_dir) == {dst.name}


@pytest.mark.parametrize("R", [6, 4])
def test_missing_password_is_a_named_error(fx, out_dir, R):
    dst = out_dir / "out.pdf"
    with pytest.raises(PasswordRequiredError) as info:
        run(fx.encrypted(R=R), dst)
    assert info.value.code == "password_required"
    assert_nothing_written(out_dir, dst)


@pytest.mark.parametrize(
    ("R", "user", "wrong"),
    [(6, "user", "wrong"), (4, "user", "wrong"), (6, "æøå", "aeoa"), (6, "æøå", "\x01\xfe")],
)
def test_wrong_password_is_a_named_error(fx, out_dir, R, user, wrong):
    dst = out_dir / "out.pdf"
    with pytest.raises(InvalidPasswordError) as info:
        run(fx.encrypted(R=R, user=user), dst, password=wrong)
    assert info.value.code == "invalid_password"
    assert wrong not in str(info.value) and user not in str(info.value)
    assert_nothing_written(out_dir, dst)


@pytest.mark.parametrize(
    "content",
    [b"just some text, not a PDF\n" * 20, b"", pdfgen.PNG_BYTES, b"%PD" + b"\0" * 2000],
    ids=["text", "empty", "png", "truncated-header"],
)
def test_not_a_pdf_is_a_named_error(tmp_path, out_dir, content):
    src = tmp_path / "input.pdf"
    src.write_bytes(content)
    dst = out_dir / "out.pdf"
    with pytest.raises(NotAPdfError) as info:
        run(src, dst)
    assert info.value.code == "not_a_pdf"
    assert_nothing_written(out_dir, dst)


def test_missing_input_is_an_input_error(tmp_path, out_dir):
    dst = out_dir / "out.pdf"
    with pytest.raises(InputError) as info:
        run(tmp_path / "nope.pdf", dst)
    assert type(info.value) is InputError
    assert_nothing_written(out_dir, dst)


def test_broken_xref_is_repaired(fx, out_dir):
    src = fx.broken_xref()
    with pikepdf.open(src) as pdf:
        assert any("reconstruct" in w for w in pdf.get_warnings()), "fixture is not broken"
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert not report.original_kept
    pdfgen.assert_valid_output(src, dst, report)
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 3
        assert pdf.get_warnings() == []  # a sound file now, not merely recoverable
    assert [t.splitlines()[0] for t in pdfgen.page_texts(dst)] == ["Page 1", "Page 2", "Page 3"]


def test_header_after_leading_garbage_is_accepted(fx, tmp_path, out_dir):
    src = tmp_path / "prefixed.pdf"
    src.write_bytes(b"X" * 300 + b"\n" + fx.uncompressed().read_bytes())
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.pages == 2
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(fx.uncompressed())


# --- structure ----------------------------------------------------------------------------------


def test_duplicate_images_are_merged(fx, out_dir):
    src = fx.dup_images()
    with pikepdf.open(src) as pdf:
        assert len(pdfgen.image_xobjects(pdf)) == 2
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    with pikepdf.open(dst) as pdf:
        images = pdfgen.image_xobjects(pdf)
        assert len(images) == 1
        xobjects = pdf.pages[0].Resources.XObject
        assert xobjects.Im0.objgen == xobjects.Im1.objgen  # both names still resolve
    assert report.images.deduplicated >= 1
    assert report.steps.get("deduplication", 0) > 0
    assert report.output_bytes < 0.6 * report.input_bytes
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.999


def test_duplicate_font_programs_are_merged(fx, out_dir):
    src = fx.dup_fonts()
    with pikepdf.open(src) as pdf:
        assert len(pdfgen.font_programs(pdf)) == 2
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    with pikepdf.open(dst) as pdf:
        assert len(pdfgen.font_programs(pdf)) == 1
        fonts = pdf.pages[0].Resources.Font
        # a subset font's name gains a tag (ISO 32000 §9.6.4), nothing else
        assert str(fonts.F1.BaseFont).endswith("DupFontA") and str(fonts.F2.BaseFont).endswith("DupFontB")
    assert report.fonts_deduplicated >= 1
    assert report.output_bytes < 0.6 * report.input_bytes
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.999


@pytest.mark.parametrize("name", ["dup_images", "dup_fonts"])
def test_deduplication_report_is_exact(fx, out_dir, name):
    src = fx.get(name)
    report = run(src, out_dir / "out.pdf", preset="lossless")
    assert report.images.deduplicated == (1 if name == "dup_images" else 0)
    assert report.fonts_deduplicated == (1 if name == "dup_fonts" else 0)
    assert all(v >= 0 for v in report.steps.values()), report.steps
    assert report.steps["deduplication"] <= report.saved_bytes


def test_thumbnails_and_pieceinfo_are_dropped(fx, out_dir):
    src = fx.junk()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    pdfgen.assert_valid_output(src, dst, report)
    with pikepdf.open(dst) as pdf:
        assert "/PieceInfo" not in pdf.Root
        for page in pdf.pages:
            assert "/Thumb" not in page.obj and "/PieceInfo" not in page.obj
        for obj in pdf.objects:
            if isinstance(obj, (Dictionary, Stream)):
                assert "/PieceInfo" not in obj and "/Thumb" not in obj
    assert report.output_bytes < 0.1 * report.input_bytes  # ~140 KB of junk was all there was


def _page_streams(pdf: pikepdf.Pdf) -> list[Stream]:
    out = []
    for page in pdf.pages:
        contents = page.obj.Contents
        out.extend(contents if isinstance(contents, pikepdf.Array) else [contents])
    return out


def test_uncompressed_content_streams_get_compressed(fx, out_dir):
    src = fx.uncompressed()
    with pikepdf.open(src) as pdf:
        assert all("/Filter" not in s for s in _page_streams(pdf))
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    with pikepdf.open(dst) as pdf, pikepdf.open(src) as original:
        streams = _page_streams(pdf)
        assert streams and all(s.get("/Filter") == Name.FlateDecode for s in streams)
        # the decoded operators are the same
        assert [s.read_bytes() for s in streams] == [s.read_bytes() for s in _page_streams(original)]
    assert report.output_bytes < 0.6 * report.input_bytes


def _xmp_title(pdf: pikepdf.Pdf) -> str | None:
    if "/Metadata" not in pdf.Root:
        return None
    return pdf.open_metadata().get("dc:title")


def test_metadata_is_kept_by_default(fx, out_dir):
    dst = out_dir / "out.pdf"
    run(fx.metadata(), dst, preset="medium")
    with pikepdf.open(dst) as pdf:
        assert _xmp_title(pdf) == pdfgen.META_TITLE
        assert str(pdf.docinfo["/Title"]) == pdfgen.META_TITLE
        assert str(pdf.docinfo["/Author"]) == pdfgen.META_AUTHOR


def test_remove_metadata_removes_xmp_and_info(fx, out_dir):
    src = fx.metadata()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="medium", remove_metadata=True)
    pdfgen.assert_valid_output(src, dst, report)
    with pikepdf.open(dst) as pdf:
        assert "/Metadata" not in pdf.Root
        assert not any(isinstance(o, (Dictionary, Stream)) and "/Metadata" in o for o in pdf.objects)
        assert not any(isinstance(o, Stream) and o.get("/Type") == Name.Metadata for o in pdf.objects)
        info = pdf.trailer.get("/Info")
        assert info is None or len(info.keys()) == 0
    assert pdfgen.META_TITLE.encode() not in dst.read_bytes()  # nothing left in clear text either


def _annotation_kinds(pdf: pikepdf.Pdf) -> list[tuple[str, str | None]]:
    kinds = []
    for a in pdf.pages[0].obj.get("/Annots", []):
        action = a.get("/A")
        kinds.append((str(a.Subtype), str(action.S) if action is not None and "/S" in action else None))
    return kinds


def _fields(pdf: pikepdf.Pdf) -> dict[str, str]:
    acroform = pdf.Root.get("/AcroForm")
    if acroform is None:
        return {}
    return {str(f.T): str(f.get("/V")) for f in acroform.Fields}


def test_links_and_form_fields_are_kept_by_default(fx, out_dir):
    src = fx.interactive()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="medium")
    pdfgen.assert_valid_output(src, dst, report)
    with pikepdf.open(dst) as pdf:
        assert _annotation_kinds(pdf) == [("/Link", "/URI"), ("/Widget", None), ("/Link", "/JavaScript")]
        link = pdf.pages[0].Annots[0]
        assert str(link.A.URI) == pdfgen.LINK_URI
        assert _fields(pdf) == {pdfgen.FIELD_NAME: pdfgen.FIELD_VALUE}
        widget = pdf.Root.AcroForm.Fields[0]
        assert isinstance(widget.AP.N, Stream) and pdfgen.FIELD_VALUE.encode() in widget.AP.N.read_bytes()
        assert [str(i.title) for i in pdf.open_outline().root] == ["Chapter one"]
        assert list(pdf.attachments) == ["notes.txt"]
        assert pdf.attachments["notes.txt"].get_file().read_bytes() == b"attached notes " * 50
        assert pdf.Root.OpenAction.S == Name.JavaScript


def test_remove_annotations_keeps_form_widgets(fx, out_dir):
    dst = out_dir / "out.pdf"
    run(fx.interactive(), dst, remove_annotations=True)
    with pikepdf.open(dst) as pdf:
        assert _annotation_kinds(pdf) == [("/Widget", None)]
        assert _fields(pdf) == {pdfgen.FIELD_NAME: pdfgen.FIELD_VALUE}


def test_remove_bookmarks(fx, out_dir):
    dst = out_dir / "out.pdf"
    run(fx.interactive(), dst, remove_bookmarks=True)
    with pikepdf.open(dst) as pdf:
        assert "/Outlines" not in pdf.Root
        assert list(pdf.open_outline().root) == []
        assert _annotation_kinds(pdf)[0] == ("/Link", "/URI")  # nothing else went


def test_remove_javascript(fx, out_dir):
    dst = out_dir / "out.pdf"
    run(fx.interactive(), dst, remove_javascript=True)
    with pikepdf.open(dst) as pdf:
        assert "/OpenAction" not in pdf.Root
        assert "/JavaScript" not in pdf.Root.get("/Names", Dictionary())
        assert all(kind != "/JavaScript" for _, kind in _annotation_kinds(pdf))
        assert _annotation_kinds(pdf)[0] == ("/Link", "/URI")
        assert _fields(pdf) == {pdfgen.FIELD_NAME: pdfgen.FIELD_VALUE}
        for obj in pdf.objects:
            if isinstance(obj, Dictionary):
                assert obj.get("/S") != Name.JavaScript and "/JS" not in obj
    assert b"app.alert" not in dst.read_bytes() and b"var x" not in dst.read_bytes()


def test_remove_embedded_files(fx, out_dir):
    dst = out_dir / "out.pdf"
    run(fx.interactive(), dst, remove_embedded_files=True)
    with pikepdf.open(dst) as pdf:
        assert len(pdf.attachments) == 0
        assert not any(isinstance(o, Stream) and o.get("/Type") == Name.EmbeddedFile for o in pdf.objects)
        assert _fields(pdf) == {pdfgen.FIELD_NAME: pdfgen.FIELD_VALUE}


def test_remove_form_fields_flattens_values_into_the_page(fx, out_dir):
    src = fx.interactive()
    dst = out_dir / "out.pdf"
    run(src, dst, remove_form_fields=True)
    with pikepdf.open(dst) as pdf:
        assert "/AcroForm" not in pdf.Root
        kinds = _annotation_kinds(pdf)
        assert ("/Widget", None) not in kinds
        assert kinds[0] == ("/Link", "/URI")  # other annotations stay
    (text,) = pdfgen.page_texts(dst)
    assert pdfgen.FIELD_VALUE in text  # the value is still visible, now as page content
    assert text.startswith(pdfgen.page_texts(src)[0])


def test_linearize(fx, out_dir):
    src = fx.junk()
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless", linearize=True)
    assert not report.original_kept
    with pikepdf.open(dst) as pdf:
        assert pdf.is_linearized
        assert pdf.check_linearization(io.StringIO()) is True
    plain = out_dir / "plain.pdf"
    run(src, plain, preset="lossless")
    with pikepdf.open(plain) as pdf:
        assert not pdf.is_linearized


# --- target size ------------------------------------------------------------------------------


def test_reachable_target_is_met(fx, out_dir):
    src = fx.junk()
    dst = out_dir / "out.pdf"
    report = run(src, dst, target_size=20_000)
    assert report.target_reached is True
    assert report.target_size == 20_000
    assert dst.stat().st_size <= 20_000
    pdfgen.assert_valid_output(src, dst, report)
    assert report.settings["lossy_images"] is False  # the mildest step that fits is lossless


def test_reachable_target_on_a_photo_is_met(fx, out_dir):
    src = fx.photo()
    target = src.stat().st_size * 4 // 10
    dst = out_dir / "out.pdf"
    report = run(src, dst, target_size=target)
    assert report.target_reached is True
    assert dst.stat().st_size <= target
    pdfgen.assert_valid_output(src, dst, report)
    # the ladder's steps are fixed qualities (sizes must shrink along it), not per-image choices
    assert report.settings["lossy_images"] is True and report.settings["image_ssim"] is None


def test_size_strings_are_accepted_for_target(fx, out_dir):
    report = run(fx.junk(), out_dir / "out.pdf", target_size="20KB")
    assert report.target_size == 20_000 and report.target_reached is True


def test_unreachable_target_returns_the_smallest_valid_result(fx, out_dir):
    src = fx.photo()
    dst = out_dir / "out.pdf"
    report = run(src, dst, target_size=1000)
    assert report.target_reached is False
    assert any("target" in w for w in report.warnings)
    pdfgen.assert_valid_output(src, dst, report)
    smallest = out_dir / "extreme.pdf"
    run(src, smallest, preset="extreme")
    assert dst.stat().st_size <= smallest.stat().st_size


# --- atomic output ------------------------------------------------------------------------------


@pytest.mark.parametrize("existed", [False, True], ids=["new-dst", "existing-dst"])
@pytest.mark.parametrize("failure", ["wrong-password", "too-many-pages", "not-a-pdf"])
def test_failure_leaves_no_output_and_no_partial_file(fx, tmp_path, out_dir, existed, failure):
    dst = out_dir / "result.pdf"
    previous = b"previous result, must survive" if existed else None
    if existed:
        dst.write_bytes(previous)
    if failure == "wrong-password":
        call, error = (lambda: run(fx.encrypted(), dst, password="nope")), InvalidPasswordError
    elif failure == "too-many-pages":
        call, error = (lambda: run(fx.text(), dst, limits=Limits(max_pages=1))), TooManyPagesError
    else:
        junk = tmp_path / "junk.pdf"
        junk.write_bytes(b"hello")
        call, error = (lambda: run(junk, dst)), NotAPdfError
    with pytest.raises(error):
        call()
    assert_nothing_written(out_dir, dst, previous)


def test_in_place_compression(fx, tmp_path):
    work = tmp_path / "inplace"
    work.mkdir()
    path = work / "doc.pdf"
    shutil.copy(fx.junk(), path)
    reference = tmp_path / "reference.pdf"
    shutil.copy(fx.junk(), reference)
    report = compress(path, path, Options(level="lossless"))
    assert not report.original_kept
    pdfgen.assert_valid_output(reference, path, report)
    assert pdfgen.dir_listing(work) == {"doc.pdf"}


def test_in_place_with_original_kept_leaves_the_file_unchanged(fx, tmp_path):
    work = tmp_path / "inplace"
    work.mkdir()
    path = work / "doc.pdf"
    shutil.copy(fx.tiny(), path)
    before = pdfgen.sha256(path)
    report = compress(path, path, Options())
    assert report.original_kept
    assert pdfgen.sha256(path) == before
    assert pdfgen.dir_listing(work) == {"doc.pdf"}


def test_in_place_failure_leaves_the_input_untouched(fx, tmp_path):
    work = tmp_path / "inplace"
    work.mkdir()
    path = work / "doc.pdf"
    shutil.copy(fx.encrypted(), path)
    before = pdfgen.sha256(path)
    with pytest.raises(PasswordRequiredError):
        compress(path, path, Options())
    assert pdfgen.sha256(path) == before
    assert pdfgen.dir_listing(work) == {"doc.pdf"}


def test_progress_is_reported_in_order_and_ends_done(fx, out_dir):
    seen: list[tuple[float, str]] = []
    compress(fx.text(), out_dir / "out.pdf", Options(), progress=lambda f, s: seen.append((f, s)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions)
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert seen[-1] == (1.0, "done")


def test_every_error_is_an_engine_error_with_a_code():
    from squeezer.engines import errors

    classes = [c for c in vars(errors).values() if isinstance(c, type)
               and issubclass(c, Exception) and c.__module__ == errors.__name__]
    codes = [c.code for c in classes]
    assert all(issubclass(c, EngineError) for c in classes)
    assert len(set(codes)) == len(codes), "two error classes share a code"


@pytest.mark.parametrize("request_", ["remove_javascript", "remove_metadata", "linearize"])
def test_requested_removals_are_honoured_even_when_nothing_shrinks(tmp_path, out_dir, request_):
    src = tmp_path / "compact.pdf"
    if request_ == "remove_javascript":
        pdfgen.compact_pdf(src, catalog_extra=b"/OpenAction<</S/JavaScript/JS(app.alert\\(1\\))>>")
    else:
        pdfgen.compact_pdf(src, info=b"<</Title(Secret Project)/Author(Jane Doe)>>")
    dst = out_dir / "out.pdf"
    run(src, dst, preset="lossless", **{request_: True})
    data = dst.read_bytes()
    with pikepdf.open(dst) as pdf:
        assert len(pdf.pages) == 1
        if request_ == "remove_javascript":
            assert "/OpenAction" not in pdf.Root and b"app.alert" not in data
        elif request_ == "remove_metadata":
            assert len(pdf.docinfo.keys()) == 0 and b"Secret Project" not in data
        else:
            assert pdf.is_linearized


def test_output_gets_ordinary_permissions_and_in_place_keeps_them(fx, tmp_path, out_dir):
    """Atomic writes go through mkstemp (0600); the result must not stay private."""
    old = os.umask(0o022)
    try:
        dst = out_dir / "out.pdf"
        run(fx.uncompressed(), dst, preset="lossless")
        assert dst.stat().st_mode & 0o777 == 0o644
        work = tmp_path / "inplace.pdf"
        shutil.copy(fx.uncompressed(), work)
        os.chmod(work, 0o600)
        run(work, work, preset="lossless")
        assert work.stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


XMP_WITH_THUMBNAIL = b"""<?xpacket begin="\xef\xbb\xbf" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
 xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:xmpGImg="http://ns.adobe.com/xap/1.0/g/img/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">Kept Title</rdf:li></rdf:Alt></dc:title>
<xmp:Thumbnails><rdf:Alt><rdf:li rdf:parseType="Resource"><xmpGImg:format>JPEG</xmpGImg:format>
<xmpGImg:image>""" + b"QUJD" * 20000 + b"""</xmpGImg:image></rdf:li></rdf:Alt></xmp:Thumbnails>
</rdf:Description></rdf:RDF></x:xmpmeta>""" + b" " * 4000 + b"""
<?xpacket end="w"?>"""


def test_xmp_thumbnails_and_padding_are_dropped_and_the_rest_kept(tmp_path, out_dir):
    src = tmp_path / "xmp.pdf"
    pdf = pikepdf.new()
    pdfgen.add_page(pdf, b"BT /F1 12 Tf 72 720 Td (xmp) Tj ET",
                    Dictionary(Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    meta = pdf.make_stream(XMP_WITH_THUMBNAIL)
    meta.stream_dict.update(Dictionary(Type=Name.Metadata, Subtype=Name.XML))
    pdf.Root.Metadata = meta
    pdf.save(src, compress_streams=False)
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.output_bytes < report.input_bytes - 80_000
    with pikepdf.open(dst) as out:
        stream = out.Root.Metadata
        assert "/Filter" not in stream  # metadata stays readable without decoding
        data = stream.read_bytes()
        assert b"xmpGImg:image" not in data and b"Kept Title" in data
        assert data.rstrip().endswith(b'<?xpacket end="w"?>')
        assert out.open_metadata()["dc:title"] == "Kept Title"


def test_icc_profile_copies_differing_only_in_date_are_merged(tmp_path, out_dir):
    """One profile per image, each stamped with its own creation date, as InDesign writes them."""
    from PIL import ImageCms

    profile = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    src = tmp_path / "icc.pdf"
    pdf = pikepdf.new()
    xobjects = Dictionary()
    ops = b""
    for i in range(4):
        copy = bytearray(profile)
        copy[24:36] = bytes([20, 7, 0, 1 + i, 0, 1, 0, 2, 0, 3, 0, 4 + i])  # a different date
        icc = pdf.make_stream(bytes(copy))
        icc.stream_dict.N = 3
        image = pdfgen.image_stream(pdf, pdfgen.photo_array(64, 48, seed=i), encoding="flate")
        image.ColorSpace = pikepdf.Array([Name.ICCBased, icc])
        xobjects[f"/Im{i}"] = image
        ops += f"q 64 0 0 48 {72 + 80 * i} 600 cm /Im{i} Do Q\n".encode()
    pdfgen.add_page(pdf, ops, Dictionary(XObject=xobjects))
    pdf.save(src)
    dst = out_dir / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.steps["deduplication"] > 0
    with pikepdf.open(dst) as out:
        profiles = {img.ColorSpace[1].objgen for img in pdfgen.image_xobjects(out)}
        assert len(profiles) == 1
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.999
