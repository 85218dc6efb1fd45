"""The scan step (issue 5): page classification, bitonal pages, MRC layers, and their guards.

Every test runs the real engine on synthetic 300 dpi scans (``scanfixtures``) or
corpus scans, and checks the result the way a reader would: it opens, renders
close to the original, keeps its page count and its OCR text layer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pdfgen
import pikepdf
import pytest
import scanfixtures
from pikepdf import Name

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress
from squeezer.engines.pdf import mrc as mrc_module
from squeezer.engines.pdf.scancontent import classify, luminance

# a smaller page keeps the suite fast: 4 x 3 inches at 300 dpi (1200 x 900 pixels)
SMALL = (4.0, 3.0)


def run(src: Path, dst: Path, **options):
    report = compress(src, dst, Options(**options))
    failed = [w for w in report.warnings if "verification" in w]
    assert failed == [], failed
    return report


def forms_and_images(path: Path) -> tuple[list, list]:
    """(form XObjects, image XObjects) drawn on the first page, one level into forms, with
    the stencil masks that images name in /Mask."""
    with pikepdf.open(path) as pdf:
        forms, images = [], []

        def add(image) -> None:
            images.append(dict(image.stream_dict))
            if isinstance(image.get("/Mask"), pikepdf.Stream):
                images.append(dict(image.Mask.stream_dict))

        for xobject in pdf.pages[0].Resources.XObject.values():
            if xobject.Subtype == Name.Form:
                forms.append(dict(xobject.stream_dict))
                for inner in xobject.Resources.XObject.values():
                    add(inner)
            else:
                add(xobject)
        return forms, images


def backgrounds(images: list) -> list:
    return [i for i in images if i.get("/Filter") == Name.DCTDecode and "/Mask" not in i]


# --- classification ----------------------------------------------------------------------


@pytest.mark.parametrize("kind, photo, expected", [
    ("bitonal", False, "bitonal"),
    ("gray", False, "gray_text"),
    ("color", False, "color_text"),
    ("color", True, "color_text"),
    ("photo", False, "photo"),
])
def test_page_images_are_classified_by_content(kind, photo, expected):
    image = scanfixtures.scan_image(kind, size_in=SMALL, photo=photo, stamp=kind == "color")
    arr = np.asarray(image.convert("L") if image.mode == "1" else image)
    arr = arr.reshape(arr.shape[0], arr.shape[1], -1)
    content = classify(arr, 300, luminance(arr))
    assert content.kind == expected
    assert content.photo.any() == (photo or kind == "photo")


def test_a_photo_page_is_told_at_a_glance_and_text_pages_are_not(tmp_path):
    from squeezer.engines.budget import Budget
    from squeezer.engines.pdf.scans import _clearly_a_photo

    src = scanfixtures.scan_pdf(tmp_path / "scan.pdf", [
        {"kind": "photo", "size_in": SMALL}, {"kind": "gray", "size_in": SMALL},
        {"kind": "color", "size_in": SMALL, "stamp": True, "photo": True}])
    with pikepdf.open(src) as pdf:
        seen = [_clearly_a_photo(page.Resources.XObject[key], 300, Budget())
                for page in pdf.pages for key in page.Resources.XObject.keys()]
        first = next(iter(pdf.pages[0].Resources.XObject.values()))
        assert not _clearly_a_photo(first, 150, Budget())  # too few pixels to glance at
    assert seen == [True, False, False]


def test_report_classifies_every_page_scan_or_vector(tmp_path):
    scans = scanfixtures.scan_pdf(tmp_path / "scan.pdf", [
        {"kind": "gray", "size_in": SMALL}, {"kind": "color", "size_in": SMALL, "stamp": True},
        {"kind": "photo", "size_in": SMALL}])
    report = run(scans, tmp_path / "out.pdf", preset="high")
    assert report.pages_classified == {"scan": 3, "vector": 0}
    assert [(e.page, e.content) for e in report.scan_pages] == [
        (1, "gray_text"), (2, "color_text"), (3, "photo")]
    assert [e.method for e in report.scan_pages] == ["mrc", "mrc", "plain"]
    assert report.scan_pages[2].reason.startswith("a photograph")
    assert all(e.dpi == 300 for e in report.scan_pages)

    vector = tmp_path / "vector.pdf"
    scanfixtures.vector_pdf(vector)
    mixed = tmp_path / "mixed.pdf"
    scanfixtures.mixed_pdf(mixed)
    for path in (vector, mixed):
        report = run(path, tmp_path / "v.pdf", preset="high")
        assert report.pages_classified == {"scan": 0, "vector": 1}
        assert report.scan_pages == []


# --- MRC -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["gray", "color"])
def test_mrc_makes_a_color_scan_much_smaller_and_keeps_its_look(tmp_path, kind):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind=kind, size_in=SMALL, stamp=True,
                                photo=kind == "color")
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="high")
    entry = report.scan_pages[0]
    assert entry.method == "mrc", entry.reason
    assert report.output_bytes < 0.35 * report.input_bytes
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.90
    forms, images = forms_and_images(dst)
    # the scan image became a form drawing a JPEG background and a 1-bit mask at full size
    assert len(forms) == 1 and forms[0]["/BBox"] == [0, 0, 1, 1]
    masks = [i for i in images if i.get("/ImageMask")]
    assert len(masks) == 1 and (masks[0]["/Width"], masks[0]["/Height"]) == (1200, 900)
    assert masks[0]["/Filter"] in (Name.JBIG2Decode, Name.CCITTFaxDecode)
    assert [b["/Width"] for b in backgrounds(images)] == [400]  # 100 dpi in high
    if kind == "color":
        # the stamp is red: the text colour is a foreground image masked by the stencil
        foreground = [i for i in images if "/Mask" in i]
        assert len(foreground) == 1 and foreground[0]["/ColorSpace"] == Name.DeviceRGB


def test_mrc_background_dpi_and_extreme(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="gray", size_in=SMALL)
    run(src, tmp_path / "a.pdf", preset="high", mrc_background_dpi=150)
    run(src, tmp_path / "b.pdf", preset="extreme")
    widths = [[b["/Width"] for b in backgrounds(forms_and_images(tmp_path / p)[1])]
              for p in ("a.pdf", "b.pdf")]
    assert widths == [[600], [300]]  # 150 dpi asked; extreme's 75 dpi


def test_ocr_text_layer_and_its_positions_are_kept_exactly(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="color", size_in=SMALL, ocr_layer=True)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="high")
    assert report.scan_pages[0].method == "mrc" and report.scan_pages[0].ocr_layer
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    assert "customer" in pdfgen.page_texts(dst)[0] or "letter" in pdfgen.page_texts(dst)[0]
    with pikepdf.open(src) as a, pikepdf.open(dst) as b:
        # the page's own content (image draw + invisible text) is byte for byte the same
        assert a.pages[0].Contents.read_bytes() == b.pages[0].Contents.read_bytes()


def test_mrc_off_keeps_a_gray_scan_on_the_plain_path(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="gray", size_in=SMALL)
    report = run(src, tmp_path / "out.pdf", preset="high", mrc=False)
    assert report.scan_pages[0].method == "plain"
    assert report.scan_pages[0].reason == "gray text: MRC is off at this level"
    medium = run(src, tmp_path / "m.pdf", preset="medium")
    assert medium.scan_pages[0].method == "plain"
    on = run(src, tmp_path / "on.pdf", preset="medium", mrc=True)
    assert on.scan_pages[0].method == "mrc" and on.output_bytes < medium.output_bytes


def test_a_page_failing_the_quality_floor_falls_back_and_says_why(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="color", size_in=SMALL, photo=True)
    # a background at 50 dpi cannot keep the photo patch at SSIM 0.99: the page stays plain
    report = compress(src, tmp_path / "out.pdf", Options(level="high", mrc_background_dpi=50))
    entry = report.scan_pages[0]
    assert entry.method == "mrc" or entry.reason.startswith("MRC SSIM")
    strict = mrc_module.LEGIBILITY_FLOOR
    assert 0 < strict <= 1


def test_legibility_check_fails_a_mask_that_lost_the_text():
    image = scanfixtures.scan_image("gray", size_in=SMALL)
    arr = np.asarray(image)[:, :, None]
    gray = luminance(arr)
    content = classify(arr, 300, gray)
    layers = mrc_module.split(arr, gray, content, 300, 100)
    assert mrc_module.legibility(gray, layers.mask, content) > 0.95
    assert mrc_module.legibility(gray, np.zeros_like(layers.mask), content) == 0.0
    shifted = np.roll(layers.mask, 4, axis=1)  # every glyph drawn 4 pixels off
    assert mrc_module.legibility(gray, shifted, content) < mrc_module.LEGIBILITY_FLOOR


# --- bitonal -------------------------------------------------------------------------------


def test_gray_scan_of_black_and_white_text_becomes_one_bit_in_medium(tmp_path):
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    # a gray scan of a black-and-white page: the bitonal fixture, blurred a little, as JPEG
    image = scanfixtures.scan_image("bitonal", size_in=SMALL).convert("L")
    pdfgen.add_page(pdf, b"q 288 0 0 216 0 0 cm /Im0 Do Q\n", pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(Im0=pdfgen.image_stream(pdf, np.asarray(image),
                                                           "jpeg", quality=90))),
        mediabox=(288, 216))
    pdf.save(src)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    entry = report.scan_pages[0]
    assert (entry.content, entry.method) == ("bitonal", "bitonal"), entry.reason
    assert entry.ssim >= 0.95 and report.output_bytes < 0.5 * report.input_bytes
    _, images = forms_and_images(dst)
    assert images[0]["/BitsPerComponent"] == 1
    assert images[0]["/Filter"] in (Name.JBIG2Decode, Name.CCITTFaxDecode)
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.95
    # low has no scan step: the gray pixels stay 8-bit
    low = run(src, tmp_path / "low.pdf", preset="low")
    assert low.scan_pages == [] and low.pages_classified == {}
    assert forms_and_images(tmp_path / "low.pdf")[1][0]["/BitsPerComponent"] == 8


def test_color_model_bitonal_thresholds_every_scan_and_fixed_threshold_works(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="color", size_in=SMALL, stamp=True)
    for options in ({}, {"bitonal_threshold": 100}, {"char_repair": True}):
        dst = tmp_path / "out.pdf"
        report = run(src, dst, preset="medium", color_model="bitonal", **options)
        assert report.scan_pages[0].method == "bitonal"
        _, images = forms_and_images(dst)
        assert images[0]["/BitsPerComponent"] == 1 and images[0]["/Decode"] == [0, 1]
        assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.8


def test_char_repair_removes_specks():
    from squeezer.engines.pdf import binarize

    ink = np.zeros((60, 60), bool)
    ink[10:30, 10:14] = True  # a stroke
    ink[45, 45] = True  # dust
    ink[20, 12] = False  # a pinhole in the stroke
    repaired = binarize.repair(ink)
    assert not repaired[45, 45] and repaired[20, 12]
    assert repaired[10:30, 10:14].all()


def test_jbig2_off_keeps_ccitt(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", kind="gray", size_in=SMALL)
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="high", jbig2=False)
    _, images = forms_and_images(dst)
    assert [i["/Filter"] for i in images if i.get("/ImageMask")] == [Name.CCITTFaxDecode]


# --- corpus --------------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("name, method", [
    ("pymupdf__test_4034.pdf", "mrc"),
    ("unstructured__pdf-with-ocr-text.pdf", "mrc"),
])
def test_corpus_scans_get_mrc_and_keep_text_and_look(tmp_path, name, method):
    src = pdfgen.CORPUS / name
    if not src.exists():
        pytest.skip(f"corpus file {name} not present")
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="high")
    assert report.scan_pages[0].method == method, report.scan_pages[0].reason
    assert report.output_bytes < 0.3 * report.input_bytes
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    assert pdfgen.min_ssim(src, dst, pages=2, dpi=100) >= 0.93


def test_colour_detection_off_keeps_a_gray_looking_colour_scan_in_colour(tmp_path):
    image = scanfixtures.scan_image("gray", size_in=SMALL).convert("RGB")  # gray pixels, RGB
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    pdfgen.add_page(pdf, b"q 288 0 0 216 0 0 cm /Im0 Do Q\n", pikepdf.Dictionary(
        XObject=pikepdf.Dictionary(Im0=pdfgen.image_stream(pdf, np.asarray(image), "jpeg"))),
        mediabox=(288, 216))
    pdf.save(src)
    detected = run(src, tmp_path / "a.pdf", preset="high")
    kept = run(src, tmp_path / "b.pdf", preset="high", color_detection=False)
    assert detected.scan_pages[0].content == "gray_text"
    assert kept.scan_pages[0].content == "color_text"
    spaces = [{str(i.get("/ColorSpace")) for i in backgrounds(forms_and_images(tmp_path / p)[1])}
              for p in ("a.pdf", "b.pdf")]
    assert spaces == [{"/DeviceGray"}, {"/DeviceRGB"}]


def test_a_damaged_scan_image_stays_plain_and_the_document_still_compresses(tmp_path):
    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", [
        {"kind": "gray", "size_in": SMALL}, {"kind": "gray", "size_in": SMALL}])
    with pikepdf.open(src, allow_overwriting_input=True) as pdf:
        image = pdf.pages[0].Resources.XObject.Im0
        data = image.read_raw_bytes()
        image.write(data[: len(data) // 3], filter=Name.DCTDecode)  # a truncated JPEG
        pdf.save(src)
    report = compress(src, tmp_path / "out.pdf", Options(level="high"))
    first, second = report.scan_pages
    assert first.method == "plain" and "not decoded" in first.reason
    assert second.method == "mrc"
    assert report.pages == 2 and report.output_bytes < report.input_bytes


# --- which pages are looked at -------------------------------------------------------------


def test_pages_without_a_scan_sized_image_are_not_scans_and_share_their_images(tmp_path):
    """A logo stretched over a page is no scan (under 50 dpi); the same picture as the whole
    of a one-inch page is one, but it is also drawn on the logo page, so it is marked shared."""
    from squeezer.engines.pdf.scanpages import find_scans

    pdf = pikepdf.new()
    picture = pdfgen.image_stream(pdf, pdfgen.photo_array(200, 200, seed=5))
    big = pdfgen.image_stream(pdf, pdfgen.photo_array(1200, 900, seed=6))
    form = pdf.make_stream(b"q 288 0 0 216 0 0 cm /Big Do Q", Type=Name.XObject, Subtype=Name.Form,
                           BBox=[0, 0, 288, 216],
                           Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Big=big)))
    draw = b"q 612 0 0 792 0 0 cm /P Do Q"
    pdfgen.add_page(pdf, draw, pikepdf.Dictionary(XObject=pikepdf.Dictionary(P=picture)))
    pdfgen.add_page(pdf, b"q 72 0 0 72 0 0 cm /P Do Q",
                    pikepdf.Dictionary(XObject=pikepdf.Dictionary(P=picture)), mediabox=(72, 72))
    pdfgen.add_page(pdf, b"/F Do", pikepdf.Dictionary(XObject=pikepdf.Dictionary(F=form)),
                    mediabox=(288, 216))
    scans, vector = find_scans(pdf)
    assert vector == 1
    assert {objgen: (s.pages, s.shared) for objgen, s in scans.items()} == {
        picture.objgen: ([1], True), big.objgen: ([2], False)}
    assert round(scans[big.objgen].dpi) == 300


def test_text_scans_left_to_the_image_step_stay_legible(tmp_path):
    # the scan step hands the image step the text pages it leaves plain, and there the size
    # search offers no size below 100 dpi (a mosaic of mostly paper judges strokes resampled
    # below it too kindly); a photograph still gets the smaller sizes down to 72 dpi
    from squeezer.engines.budget import Budget
    from squeezer.engines.pdf import images, scans
    from squeezer.engines.pdf import jpeg as jpeg_codec
    from squeezer.engines.pdf.options import resolve
    from squeezer.engines.report import Report

    src = scanfixtures.scan_pdf(tmp_path / "in.pdf", [{"kind": "gray"}, {"kind": "photo"}],
                                dpi=200, size_in=SMALL)
    settings = resolve(Options(preset="medium"))
    with pikepdf.open(src) as pdf:
        text: set[tuple[int, int]] = set()
        report = Report(input_bytes=src.stat().st_size)
        written = scans.optimize_scans(pdf, settings, Budget(), report, text=text)
        assert written == set()
        assert [p.content for p in report.scan_pages] == ["gray_text", "photo"]
        gray, photo = (page.Resources.XObject.Im0 for page in pdf.pages)
        assert text == {gray.objgen}
        ctx = images._Context(settings, Budget(), images._placements(pdf, settings, Budget()),
                              text_scans=text)
        # drawn at 200 dpi, offered from 150 dpi: 105 dpi (0.7) for both, 75 (0.5) for the photo
        assert images.MIN_TEXT_SCAN_DPI == 100 and jpeg_codec.SIZE_STEPS == (1.0, 0.7, 0.5)
        for image, sizes in ((gray, 2), (photo, 3)):
            options = images._options((600, 450), image, ctx, 800, 75)
            assert len(options) == sizes and options[0].size == (600, 450)
    # the whole engine: the text page at 150 dpi, its look and its size kept in check
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium")
    with pikepdf.open(dst) as pdf:
        assert int(pdf.pages[0].Resources.XObject.Im0.Width) == 600
    text_page, photo_page = (pdfgen.ssim(pdfgen.render_gray(src, i, 100),
                                         pdfgen.render_gray(dst, i, 100)) for i in range(2))
    assert photo_page >= 0.955
    assert text_page >= 0.9  # (the fixture's sensor noise is what a JPEG drops first)
    assert dst.stat().st_size < src.stat().st_size


@pytest.mark.corpus
def test_a_gray_text_scan_with_encoder_parms_is_reencoded_and_stays_legible(tmp_path):
    # paperless-ngx's rotated scan: 206 dpi gray JPEGs whose /DecodeParms hold /Quality 80
    # (an encoder setting); at medium they come down, never below 100 dpi, and keep their
    # look (at 75 dpi, which their tile mosaics allowed, two pages rendered at 0.951)
    src = pdfgen.corpus_file("paperless-ngx__rotated.pdf")
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.output_bytes < 0.4 * report.input_bytes
    with pikepdf.open(src) as a, pikepdf.open(dst) as b:
        for before, after in zip(a.pages, b.pages):
            old, new = (next(iter(p.Resources.XObject.values())) for p in (before, after))
            assert int(new.Width) < int(old.Width)
            page_width = float(after.MediaBox[2]) - float(after.MediaBox[0])
            assert int(new.Width) * 72 / page_width >= 99  # (rotated pages: width along width)
            assert "/DecodeParms" not in new
    assert pdfgen.min_ssim(src, dst, pages=4, dpi=100) >= 0.96
