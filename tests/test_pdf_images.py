"""Image recompression (engines/pdf/images.py and its codecs) on generated PDFs.

Every case writes a real PDF holding one kind of image, runs the whole engine
(``compress``, which also verifies), and checks the image objects qpdf finds in
the output and the pixels PDFium renders.
"""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pdfgen
import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image

from squeezer.engines.options import Options
from squeezer.engines.pdf import compress
from squeezer.engines.pdf import jpeg as jpeg_codec
from squeezer.engines.pdf.options import resolve
from squeezer.engines.ssim import Similarity, ssim

# --- builders ------------------------------------------------------------------------------


def raw_image(pdf: pikepdf.Pdf, data: bytes, width: int, height: int, colorspace: object,
              bpc: int = 8, filt: Name | None = Name.FlateDecode, **extra: object) -> Stream:
    """An image XObject; ``data`` is Flate-compressed here unless ``filt`` says otherwise."""
    if filt == Name.FlateDecode:
        data = zlib.compress(data, 6)
    stream = Stream(pdf, data)
    stream.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Image, Width=width,
                                    Height=height, BitsPerComponent=bpc, **extra)
    if colorspace is not None:
        stream.ColorSpace = colorspace
    if filt is not None:
        stream.Filter = filt
    return pdf.make_indirect(stream)


def jpeg_bytes(array: np.ndarray, quality: int, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def one_image_pdf(path: Path, build, inches: tuple[float, float] = (4, 3),
                  background: bool = False, via_form: bool = False) -> Path:
    """A letter page drawing the image ``build(pdf)`` returns, ``inches`` wide and high.

    ``background`` paints a mid-gray rectangle first (to see transparency);
    ``via_form`` draws the image ``inches`` big inside a form XObject that the
    page scales by one half (so it is half that size on the page).
    """
    pdf = pikepdf.new()
    image = build(pdf)
    w, h = inches[0] * 72, inches[1] * 72
    content = b"0.5 g 36 36 540 720 re f\n" if background else b""
    resources = Dictionary(XObject=Dictionary(Im0=image), Font=Dictionary(F1=pdfgen.helvetica(pdf)))
    if via_form:
        form = Stream(pdf, b"q %g 0 0 %g 0 0 cm /Im0 Do Q" % (w, h))
        form.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Form,
                                      BBox=Array([0, 0, 2 * w, 2 * h]),
                                      Matrix=Array([0.5, 0, 0, 0.5, 0, 0]),
                                      Resources=Dictionary(XObject=Dictionary(Im0=image)))
        resources = Dictionary(XObject=Dictionary(Fm0=pdf.make_indirect(form)),
                               Font=Dictionary(F1=pdfgen.helvetica(pdf)))
        content += b"q 1 0 0 1 36 300 cm /Fm0 Do Q\n"
    else:
        content += b"q %g 0 0 %g 36 300 cm /Im0 Do Q\n" % (w, h)
    content += pdfgen.text_ops(["An image test page"], y=200)
    pdfgen.add_page(pdf, content, resources)
    pdf.save(path)
    pdf.close()
    return path


def run(src: Path, dst: Path, **options):
    report = compress(src, dst, Options(**options))
    failed = [w for w in report.warnings if "verification" in w]
    assert failed == [], failed
    return report


def _pixels(image: pikepdf.Stream, filt: object) -> np.ndarray:
    """The image's samples.  JPEG by Pillow; JBIG2 by PDFium (pikepdf would need the
    jbig2dec program, which Squeezer does not install) as the bool array of a mode-1
    image (True = sample 1); everything else by pikepdf."""
    if filt == Name.DCTDecode:
        return np.asarray(Image.open(io.BytesIO(image.read_raw_bytes())))
    if filt == Name.JBIG2Decode:
        from squeezer.engines.pdf import bilevel
        return ~bilevel.decode_ink(image)
    return np.asarray(pikepdf.PdfImage(image).as_pil_image())


def the_image(path: Path) -> dict:
    """The first image XObject's dictionary facts and raw bytes, from the output."""
    with pikepdf.open(path) as pdf:
        images = [o for o in pdfgen.image_xobjects(pdf)
                  if not any(o.objgen == getattr(p.get("/SMask"), "objgen", None)
                             for p in pdfgen.image_xobjects(pdf))]
        image = images[0]
        filt = image.get("/Filter")
        return {
            "filter": str(filt) if filt is not None else None,
            "width": int(image.Width), "height": int(image.Height),
            "bpc": int(image.get("/BitsPerComponent", 1)),
            "colorspace": image.get("/ColorSpace"),
            "colorspace_str": str(image.get("/ColorSpace")),
            "raw": image.read_raw_bytes(),
            "pixels": _pixels(image, filt),
            "mask": image.get("/Mask"), "smask": image.get("/SMask"),
            "decode": [float(x) for x in image.Decode] if "/Decode" in image else None,
            "imagemask": bool(image.get("/ImageMask", False)),
        }


def same_render(a: Path, b: Path, dpi: int = 72) -> bool:
    return np.array_equal(pdfgen.render_gray(a, 0, dpi), pdfgen.render_gray(b, 0, dpi))


def flat_graphics(width: int = 480, height: int = 360, colors: int = 600) -> np.ndarray:
    """A chart-like RGB image: flat rectangles of ``colors`` distinct colours."""
    rng = np.random.default_rng(5)
    img = np.full((height, width, 3), 255, np.uint8)
    palette = rng.integers(0, 256, (colors, 3), dtype=np.uint8)
    side = max(2, int(np.sqrt(width * height / colors)))
    k = 0
    for y in range(0, height, side):
        for x in range(0, width, side):
            img[y:y + side - 1, x:x + side - 1] = palette[k % colors]
            k += 1
    return img


def few_colours(width: int, height: int, colors: int = 12) -> np.ndarray:
    """Pixels drawn at random from a few colours: a palette codes them far smaller."""
    rng = np.random.default_rng(9)
    palette = rng.integers(0, 256, (colors, 3), dtype=np.uint8)
    return palette[rng.integers(0, colors, (height, width))]


# --- resolution --------------------------------------------------------------------------------


def test_photo_is_downsampled_to_the_target_resolution(tmp_path):
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(1200, 900), encoding="flate"))  # 4 in: 300 dpi
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["width"] == 600 and out["height"] == 450
    assert out["filter"] == "/DCTDecode"
    assert report.images.downsampled == 1 and report.images.to_jpeg == 1
    assert report.steps["images"] > 0
    assert pdfgen.min_ssim(src, dst, pages=1) >= 0.9


def test_slightly_above_target_is_not_resampled(tmp_path):
    # 640 px over 4 in = 160 dpi: within the 10 % hysteresis of 150 dpi
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(640, 480), encoding="flate"))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert (out["width"], out["height"]) == (640, 480)
    assert report.images.downsampled == 0


def test_effective_resolution_through_a_scaled_form_xobject(tmp_path):
    # drawn 4 in wide inside a form scaled by 1/2: 2 in on the page, so 1200 px = 600 dpi
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(1200, 900), encoding="flate"), inches=(4, 3), via_form=True)
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium", image_quality=75)  # (a fixed quality: no size search)
    out = the_image(dst)
    assert out["width"] == 300 and out["height"] == 225


def test_lossless_never_downsamples(tmp_path):
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(1200, 900), encoding="flate"))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.images.downsampled == 0 and report.images.to_jpeg == 0
    if not report.original_kept:
        assert the_image(dst)["width"] == 1200
        assert same_render(src, dst)


# --- photographs and graphics ----------------------------------------------------------------


def test_photo_becomes_a_smaller_jpeg_within_the_visual_floor(tmp_path):
    # 150 dpi already: no resampling, only the codec changes
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(600, 450), encoding="flate"))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.output_bytes < 0.3 * report.input_bytes
    assert the_image(dst)["filter"] == "/DCTDecode"
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.9


@pytest.mark.parametrize("colors", [600, 40])
def test_flat_graphics_stay_lossless(tmp_path, colors):
    art = flat_graphics(colors=colors)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, art.tobytes(), 480, 360, Name.DeviceRGB, filt=None))  # 120 dpi, uncompressed
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] == "/FlateDecode"
    assert report.images.to_jpeg == 0
    pixels = out["pixels"] if out["pixels"].ndim == 3 else None
    if colors <= 256:
        assert out["colorspace"][0] == Name.Indexed
        assert out["bpc"] == 8  # 40 colours need 6 bits; PDF offers 8
    with pikepdf.open(dst) as pdf:
        decoded = np.asarray(pikepdf.PdfImage(pdfgen.image_xobjects(pdf)[0]).as_pil_image()
                             .convert("RGB"))
    assert np.array_equal(decoded, art)
    assert pixels is None or pixels.shape[:2] == (360, 480)
    assert same_render(src, dst)


def test_rgb_that_is_gray_becomes_devicegray_losslessly(tmp_path):
    gray = pdfgen.photo_array(400, 300)[:, :, 1]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, rgb.tobytes(), 400, 300, Name.DeviceRGB))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    out = the_image(dst)
    assert out["colorspace"] == Name.DeviceGray
    assert report.images.to_gray == 1
    assert np.array_equal(out["pixels"], gray)
    assert same_render(src, dst)


def test_gray_with_only_black_and_white_becomes_one_bit(tmp_path):
    ink = pdfgen.bitonal_array(1275, 1650)  # a 150 dpi letter page
    gray = np.where(ink, 0, 255).astype(np.uint8)
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    image = raw_image(pdf, gray.tobytes(), 1275, 1650, Name.DeviceGray)
    pdfgen.add_page(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do Q\n",
                    Dictionary(XObject=Dictionary(Im0=image)))
    pdf.save(src)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    out = the_image(dst)
    assert out["filter"] == "/JBIG2Decode" and out["bpc"] == 1
    assert report.images.to_jbig2 == 1
    assert same_render(src, dst, dpi=150)
    g4 = tmp_path / "g4.pdf"
    report = run(src, g4, preset="lossless", jbig2=False)
    out = the_image(g4)
    assert out["filter"] == "/CCITTFaxDecode" and out["bpc"] == 1
    assert report.images.to_ccitt == 1
    assert same_render(src, g4, dpi=150)


def test_one_bit_flate_scan_becomes_jbig2_or_g4(fx, tmp_path):
    src = fx.bitonal()
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    out = the_image(dst)
    assert out["filter"] == "/JBIG2Decode"
    assert report.images.to_jbig2 == 1
    assert same_render(src, dst, dpi=100)
    report = run(src, dst, preset="lossless", jbig2=False)
    assert the_image(dst)["filter"] == "/CCITTFaxDecode"
    assert report.images.to_ccitt == 1
    assert same_render(src, dst, dpi=100)


def test_stencil_mask_keeps_imagemask_and_decode(tmp_path):
    ink = pdfgen.bitonal_array(1200, 1600)
    packed = np.packbits(~ink, axis=1).tobytes()  # 0 = paint, with /Decode [1 0]: 1 = paint
    inverted = np.packbits(ink, axis=1).tobytes()
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, inverted, 1200, 1600, None, bpc=1, ImageMask=True, Decode=Array([1, 0])),
        inches=(4, 16 / 3), background=True)
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["imagemask"] and out["decode"] == [1.0, 0.0]
    # G4, JBIG2 or Flate, whichever is smallest (synthetic blocks deflate well)
    assert out["filter"] in ("/CCITTFaxDecode", "/JBIG2Decode", "/FlateDecode")
    assert same_render(src, dst, dpi=100)
    assert packed  # (the other polarity is what the scan fixture uses)


def test_a_jpeg_is_never_reencoded_above_its_own_quality(tmp_path):
    photo = pdfgen.photo_array(1200, 900)
    data = jpeg_bytes(photo, 40)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 1200, 900, Name.DeviceRGB, filt=Name.DCTDecode))  # 300 dpi: resampled
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="low")  # quality 85, 300 dpi: no resampling, quality capped
    with pikepdf.open(dst) as pdf:
        raw = pdfgen.image_xobjects(pdf)[0].read_raw_bytes()
    assert jpeg_codec.estimate_quality(Image.open(io.BytesIO(raw))) <= 42
    dst2 = tmp_path / "out2.pdf"
    report = run(src, dst2, preset="medium")  # resampled to 150 dpi, at most quality 40
    out = the_image(dst2)
    assert out["width"] == 600 and report.images.downsampled == 1
    assert jpeg_codec.estimate_quality(Image.open(io.BytesIO(out["raw"]))) <= 42


def test_quality_estimate_matches_the_encoder_setting():
    photo = pdfgen.photo_array(256, 192)
    for q in (30, 50, 75, 90):
        assert abs(jpeg_codec.estimate_quality(Image.open(io.BytesIO(jpeg_bytes(photo, q)))) - q) <= 1
        ours = jpeg_codec.encode(Image.fromarray(photo), q)
        assert abs(jpeg_codec.estimate_quality(Image.open(io.BytesIO(ours))) - q) <= 1


# --- perceptual quality -------------------------------------------------------------------------


def smooth_photo(width: int = 600, height: int = 450) -> np.ndarray:
    """A photo-like image without pixel noise (which no JPEG keeps): low qualities look fine."""
    from PIL import ImageFilter

    return np.asarray(Image.fromarray(pdfgen.photo_array(width, height))
                      .filter(ImageFilter.GaussianBlur(1.5)))


def luma_ssim(a: np.ndarray, b: np.ndarray) -> float:
    to_l = (lambda x: np.asarray(Image.fromarray(x).convert("L")) if x.ndim == 3 else x)
    return pdfgen.ssim(to_l(a), to_l(b))


def test_the_fast_ssim_is_the_tests_float_ssim():
    rng = np.random.default_rng(4)
    a = rng.integers(0, 256, (150, 201), dtype=np.uint8)
    for b in (np.clip(a.astype(int) + rng.integers(-20, 20, a.shape), 0, 255).astype(np.uint8),
              np.full_like(a, 255), a // 2, a):
        assert abs(Similarity(a)(b) - pdfgen.ssim(a, b)) < 1e-6
        assert abs(ssim(a, b) - pdfgen.ssim(a, b)) < 1e-6
    photo = Image.fromarray(smooth_photo(300, 200)).convert("L")
    data = jpeg_codec.encode(photo, 30)
    decoded = np.asarray(Image.open(io.BytesIO(data)))
    assert abs(jpeg_codec.similarity([Similarity(np.asarray(photo))], data)
               - pdfgen.ssim(np.asarray(photo), decoded)) < 1e-6


def test_choose_quality_is_the_lowest_rung_that_keeps_the_floor():
    image = Image.fromarray(smooth_photo(300, 200))
    planes = jpeg_codec._planes(image)
    refs = [Similarity(planes[:, :, 0])]
    lowest, step = jpeg_codec.SEARCH_LOWEST, jpeg_codec.SEARCH_STEP
    for floor in (0.9, 0.98, 0.99, 0.995):
        q = jpeg_codec.choose_quality(image, floor, 85)
        assert lowest <= q <= 85
        if q < 85:
            assert jpeg_codec.similarity(refs, jpeg_codec.encode(image, q)) >= floor
        for lower in range(lowest, q, step):
            assert jpeg_codec.similarity(refs, jpeg_codec.encode(image, lower)) < floor
    assert jpeg_codec.choose_quality(image, 1.01, 70) == 70  # unreachable: the cap
    assert jpeg_codec.choose_quality(image, 0.0, 70) == lowest
    assert jpeg_codec.choose_quality(image, 0.0, 20) == 20  # never above the cap
    # a large image is measured on a mosaic of block-aligned tiles, not whole
    big = Image.fromarray(smooth_photo(1600, 1200))
    mosaic = jpeg_codec.mosaic(big)
    assert mosaic.width * mosaic.height <= jpeg_codec.SAMPLE_PIXELS
    assert mosaic.width % 16 == 0 and mosaic.height % 16 == 0


def test_medium_picks_a_lower_quality_where_the_image_keeps_its_look(tmp_path):
    photo = smooth_photo()
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, photo, encoding="flate"))  # 150 dpi: no resampling
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.settings["image_ssim"] == 0.96
    out = the_image(dst)
    assert out["filter"] == "/DCTDecode" and 288 <= out["width"] <= 600  # >= 72 dpi
    if out["width"] == 600:
        quality = jpeg_codec.estimate_quality(Image.open(io.BytesIO(out["raw"])))
        assert quality <= 60  # well below the cap of 75
    # the floor, measured on the whole image as the page shows it (150 dpi)
    assert luma_ssim(photo, as_drawn(out["pixels"], photo)) >= 0.94
    fixed = tmp_path / "fixed.pdf"
    run(src, fixed, preset="medium", image_quality=75)
    assert len(out["raw"]) < 0.8 * len(the_image(fixed)["raw"])
    # a stricter preset keeps more: low's floor is higher
    low = tmp_path / "low.pdf"
    run(src, low, preset="low")
    low_pixels = as_drawn(the_image(low)["pixels"], photo)
    assert luma_ssim(photo, low_pixels) >= luma_ssim(photo, as_drawn(out["pixels"], photo))


def as_drawn(pixels: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``pixels`` scaled to ``like``'s size, as a page drawing both at one size shows them."""
    if pixels.shape[:2] == like.shape[:2]:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((like.shape[1], like.shape[0]),
                                                     Image.Resampling.LANCZOS))


def detailed_photo(width: int = 600, height: int = 450, seed: int = 5) -> np.ndarray:
    """A photo whose detail is at the pixel scale (fine texture, sharp edges): fewer pixels
    would lose it."""
    rng = np.random.default_rng(seed)
    base = pdfgen.photo_array(width, height, seed)
    texture = rng.integers(0, 2, (height // 2 + 1, width // 2 + 1, 1)) * 90 - 45
    texture = np.repeat(np.repeat(texture, 2, axis=0), 2, axis=1)[:height, :width]
    return np.clip(base.astype(int) + texture, 0, 255).astype(np.uint8)


def test_size_and_quality_are_chosen_together_where_the_image_is_seen(tmp_path):
    # both drawn 4 x 3 in at 150 dpi (medium's resolution): the smooth photo keeps its looks
    # with fewer pixels, the detailed one does not
    smooth, detailed = smooth_photo(), detailed_photo()
    sizes = {}
    for name, photo in (("smooth", smooth), ("detailed", detailed)):
        src = one_image_pdf(tmp_path / f"{name}.pdf", lambda pdf, p=photo: pdfgen.image_stream(
            pdf, p, encoding="flate"))
        dst = tmp_path / f"{name}-out.pdf"
        report = run(src, dst, preset="medium")
        out = the_image(dst)
        sizes[name] = out["width"]
        assert out["filter"] == "/DCTDecode"
        assert report.images.downsampled == (out["width"] < 600)
        assert luma_ssim(photo, as_drawn(out["pixels"], photo)) >= 0.94
    assert sizes["smooth"] < 600
    assert sizes["detailed"] == 600


def test_a_photo_drawn_small_is_judged_at_its_drawn_size(tmp_path):
    # the same 1200 x 900 pixels drawn 8 x 6 in (150 dpi) and 2 x 1.5 in (600 dpi): drawn
    # small, the page shows a quarter of them, so far fewer bytes keep its looks
    photo = detailed_photo(1200, 900)
    out = {}
    for inches in ((8, 6), (2, 1.5)):
        src = one_image_pdf(tmp_path / f"{inches[0]}.pdf", lambda pdf: pdfgen.image_stream(
            pdf, photo, encoding="flate"), inches=inches)
        dst = tmp_path / f"{inches[0]}-out.pdf"
        run(src, dst, preset="medium")
        out[inches[0]] = the_image(dst)
    assert out[2]["width"] <= 300  # 150 dpi where it is drawn (or fewer)
    assert len(out[2]["raw"]) < 0.5 * len(out[8]["raw"])


def test_an_explicit_quality_is_a_fixed_quality(tmp_path):
    photo = smooth_photo()
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, photo, encoding="flate"))
    for quality in (75, 40):
        dst = tmp_path / f"q{quality}.pdf"
        report = run(src, dst, preset="medium", image_quality=quality)
        assert report.settings["image_ssim"] is None
        out = the_image(dst)
        assert out["filter"] == "/DCTDecode"
        assert abs(jpeg_codec.estimate_quality(Image.open(io.BytesIO(out["raw"]))) - quality) <= 1


def grainy_photo(width: int = 1200, height: int = 900, seed: int = 3) -> Image.Image:
    """A photograph with sensor grain: a colour field whose spectrum falls as 1/f^1.5 (like
    natural images) at half the size, scaled up, plus gray grain at the pixel scale (what a
    camera adds and a page drawn at a lower resolution averages away)."""
    rng = np.random.default_rng(seed)
    half_w, half_h = width // 2, height // 2
    f = np.hypot(np.fft.rfftfreq(half_w)[None, :], np.fft.fftfreq(half_h)[:, None])
    f[0, 0] = 1.0
    planes = []
    for beta, amp in ((1.5, 45.0), (1.7, 22.0), (1.7, 22.0)):  # luma, then smoother chroma
        spectrum = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** beta
        spectrum[0, 0] = 0
        field = np.fft.irfft2(spectrum, s=(half_h, half_w))
        planes.append(Image.fromarray(np.clip(128 + amp * field / field.std(), 0, 255)
                                      .astype(np.uint8)))
    image = Image.merge("YCbCr", planes).convert("RGB").resize((width, height),
                                                                Image.Resampling.BICUBIC)
    grain = rng.standard_normal((height, width, 1)) * 3.0
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def test_a_floor_out_of_reach_takes_the_encoder_that_keeps_as_much_in_fewer_bytes():
    # grain at 150 dpi: no quality up to the cap keeps 0.96; the level's answer was jpegli at
    # the cap, and libjpeg-turbo keeps as much where the image is seen for fewer bytes
    image = grainy_photo()
    size = (600, 450)
    small = image.resize(size, Image.Resampling.LANCZOS)
    chosen, quality, encoder = jpeg_codec.choose_size_and_quality(
        image, [jpeg_codec.Option(size, 75)], size, 0.96, resized={size: small})
    assert chosen.size == size
    assert (encoder, quality) != (jpeg_codec.JPEGLI, 75)
    ours, theirs = jpeg_codec.encode(chosen, quality, encoder), jpeg_codec.encode(small, 75)
    assert len(ours) < 0.95 * len(theirs)
    reference = np.asarray(small)
    decoded = [np.asarray(Image.open(io.BytesIO(d))) for d in (ours, theirs)]
    assert luma_ssim(reference, decoded[0]) >= luma_ssim(reference, decoded[1]) - 0.002
    # a floor within reach: the lowest passing rung of either encoder, and the floor kept
    chosen, quality, encoder = jpeg_codec.choose_size_and_quality(
        image, [jpeg_codec.Option(size, 75)], size, 0.9, resized={size: small})
    data = jpeg_codec.encode(chosen, quality, encoder)
    assert quality < 75
    # (measured on a tile mosaic: the whole image lands within a hundredth of it)
    assert luma_ssim(reference, np.asarray(Image.open(io.BytesIO(data)))) >= 0.9 - 0.01
    # gray images have one encoder
    assert jpeg_codec.encoders("L") == (jpeg_codec.LIBJPEG,)


def test_a_grainy_photo_page_is_smaller_than_jpegli_at_the_cap_and_keeps_its_looks(tmp_path):
    photo = np.asarray(grainy_photo())  # 1200 x 900 drawn 4 x 3 in: 300 dpi
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, photo, encoding="jpeg", quality=92))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] == "/DCTDecode" and (out["width"], out["height"]) == (600, 450)
    assert report.images.downsampled == 1
    drawn = Image.fromarray(out["pixels"])
    at_cap = jpeg_codec.encode(Image.fromarray(photo).resize((600, 450), Image.Resampling.LANCZOS),
                               75)
    assert len(out["raw"]) < 0.95 * len(at_cap)
    assert drawn.mode == "RGB"
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.955
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_a_jpeg_whose_decode_parms_hold_encoder_settings_is_reencoded(tmp_path):
    # Ghostscript writes its encoder's settings into /DecodeParms; readers ignore them, so the
    # image is downsampled and re-encoded like any JPEG.  A /ColorTransform changes how the
    # JPEG decodes: that one is left as it is.
    photo = smooth_photo(1200, 900)  # drawn 4 x 3 in: 300 dpi
    data = jpeg_bytes(photo, 90)
    for name, parms in (
            ("gs", Dictionary(QFactor=0.76, HSamples=Array([2, 1, 1, 2]),
                              VSamples=Array([2, 1, 1, 2]), Columns=1200, Rows=900, Colors=3)),
            ("quality", Dictionary(Quality=80)),
            ("transform", Dictionary(ColorTransform=1))):
        src = one_image_pdf(tmp_path / f"{name}.pdf", lambda pdf, p=parms: raw_image(
            pdf, data, 1200, 900, Name.DeviceRGB, filt=Name.DCTDecode, DecodeParms=p))
        dst = tmp_path / f"{name}-out.pdf"
        run(src, dst, preset="medium")
        out = the_image(dst)
        assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.955
        with pikepdf.open(dst) as pdf:
            parms_out = pdfgen.image_xobjects(pdf)[0].get("/DecodeParms")
        if name == "transform":
            assert (out["width"], out["height"]) == (1200, 900)
            assert parms_out is not None and int(parms_out.ColorTransform) == 1
        else:
            assert out["width"] <= 600 and out["height"] <= 450  # (smooth: maybe fewer pixels)
            assert parms_out is None
            assert len(out["raw"]) < len(data) / 3


def test_a_jpeg_at_its_size_is_reencoded_only_well_below_its_own_quality(tmp_path):
    photo = smooth_photo(900, 675)
    data = jpeg_bytes(photo, 75)
    assert len(data) >= 16_384
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 900, 675, Name.DeviceRGB, filt=Name.DCTDecode), inches=(6, 4.5))  # 150 dpi
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert report.images.downsampled == (out["width"] < 900)
    if out["width"] == 900:  # re-encoded at its own size: well below its own quality
        assert jpeg_codec.estimate_quality(Image.open(io.BytesIO(out["raw"]))) <= 75 - 5
    assert len(out["raw"]) < len(data)
    source = np.asarray(Image.open(io.BytesIO(data)))
    assert luma_ssim(source, as_drawn(out["pixels"], source)) >= 0.94
    # the same JPEG under a fixed quality at its own: only re-packed losslessly
    dst2 = tmp_path / "fixed.pdf"
    run(src, dst2, preset="medium", image_quality=75)
    assert np.array_equal(the_image(dst2)["pixels"], source)


def test_an_image_that_would_not_shrink_keeps_its_bytes(tmp_path):
    rng = np.random.default_rng(1)
    noise = np.packbits(rng.integers(0, 2, (300, 400), dtype=np.uint8).astype(bool), axis=1)
    original = zlib.compress(noise.tobytes(), 9)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, original, 400, 300, Name.DeviceGray, bpc=1, filt=Name.FlateDecode))
    with pikepdf.open(src) as pdf:
        before = pdfgen.image_xobjects(pdf)[0].read_raw_bytes()
    for preset in ("lossless", "medium"):
        dst = tmp_path / f"{preset}.pdf"
        report = compress(src, dst, Options(level=preset))
        assert report.images.skipped == 1 and report.images.recompressed == 0
        # qpdf may re-deflate on save; the decoded samples must be the stream's own
        with pikepdf.open(dst) as pdf:
            image = pdfgen.image_xobjects(pdf)[0]
            assert str(image.Filter) == "/FlateDecode"
            assert image.read_bytes() == zlib.decompress(before)


def test_a_jpeg_that_would_not_shrink_keeps_its_exact_bytes(tmp_path):
    photo = pdfgen.photo_array(300, 225)
    data = jpeg_codec.encode(Image.fromarray(photo), 50)  # already optimised, quality 50
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 300, 225, Name.DeviceRGB, filt=Name.DCTDecode))  # 75 dpi
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium"))
    assert report.images.recompressed == 0
    with pikepdf.open(dst) as pdf:
        assert pdfgen.image_xobjects(pdf)[0].read_raw_bytes() == data


# --- transparency and masks ------------------------------------------------------------------


def test_smask_keeps_its_transparency(tmp_path):
    photo = pdfgen.photo_array(1200, 900)
    y, x = np.mgrid[0:900, 0:1200]
    alpha = np.where((x - 600) ** 2 + (y - 450) ** 2 < 350 ** 2, 255, 0).astype(np.uint8)

    def build(pdf):
        smask = raw_image(pdf, alpha.tobytes(), 1200, 900, Name.DeviceGray)
        return raw_image(pdf, photo.tobytes(), 1200, 900, Name.DeviceRGB, SMask=smask)

    src = one_image_pdf(tmp_path / "in.pdf", build, background=True)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.images.downsampled == 2  # the photo and its mask, consistently
    with pikepdf.open(dst) as pdf:
        (base,) = [o for o in pdfgen.image_xobjects(pdf) if "/SMask" in o]
        smask = base.SMask
        assert (int(base.Width), int(smask.Width)) == (600, 600)
        assert str(smask.Filter) != "/DCTDecode"
        assert smask.ColorSpace == Name.DeviceGray
    a, b = pdfgen.render_gray(src, 0, 72), pdfgen.render_gray(dst, 0, 72)
    assert pdfgen.ssim(a, b) >= 0.9
    # outside the circle the gray background shows through, unchanged
    assert abs(int(a[720 - 300 - 5, 40]) - int(b[720 - 300 - 5, 40])) <= 2


def test_color_key_mask_never_becomes_jpeg(tmp_path):
    photo = pdfgen.photo_array(1200, 900).copy()
    photo[300:600, 400:800] = (255, 0, 255)  # the keyed-out colour

    def build(pdf):
        return raw_image(pdf, photo.tobytes(), 1200, 900, Name.DeviceRGB,
                         Mask=Array([255, 255, 0, 0, 255, 255]))

    src = one_image_pdf(tmp_path / "in.pdf", build, background=True)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.images.to_jpeg == 0 and report.images.downsampled == 0
    if not report.original_kept:
        out = the_image(dst)
        assert out["filter"] != "/DCTDecode" and isinstance(out["mask"], Array)
    assert same_render(src, dst)


# --- colour spaces, depths and /Decode --------------------------------------------------------


def _icc_rgb(pdf):
    from PIL import ImageCms

    profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    icc = pdf.make_stream(profile)
    icc.N = 3
    return Array([Name.ICCBased, icc])


def _kind(kind: str):
    """(builder, expects) for an image of ``kind`` drawn at 300 dpi (600 x 450 px over 2 x 1.5 in)."""
    photo = pdfgen.photo_array(600, 450)
    if kind == "indexed":
        palette = np.random.default_rng(3).integers(0, 256, (16, 3), dtype=np.uint8)
        index = (photo[:, :, 0] // 16).astype(np.uint8)
        packed = (index[:, 0::2] << 4 | index[:, 1::2]).tobytes()
        return lambda pdf: raw_image(pdf, packed, 600, 450, Array(
            [Name.Indexed, Name.DeviceRGB, 15, pikepdf.String(palette.tobytes())]), bpc=4)
    if kind == "cmyk":
        cmyk = np.concatenate([255 - photo, np.full((450, 600, 1), 20, np.uint8)], axis=2)
        return lambda pdf: raw_image(pdf, cmyk.tobytes(), 600, 450, Name.DeviceCMYK)
    if kind == "16bit":
        deep = (photo.astype(">u2") * 257).tobytes()
        return lambda pdf: raw_image(pdf, deep, 600, 450, Name.DeviceRGB, bpc=16)
    if kind == "icc":
        return lambda pdf: raw_image(pdf, photo.tobytes(), 600, 450, _icc_rgb(pdf))
    if kind == "icc-jpeg":
        return lambda pdf: raw_image(pdf, jpeg_bytes(photo, 95), 600, 450, _icc_rgb(pdf),
                                     filt=Name.DCTDecode)
    if kind == "decode":
        return lambda pdf: raw_image(pdf, photo.tobytes(), 600, 450, Name.DeviceRGB,
                                     Decode=Array([1, 0, 1, 0, 1, 0]))
    if kind == "gray-decode":
        return lambda pdf: raw_image(pdf, photo[:, :, 0].tobytes(), 600, 450, Name.DeviceGray,
                                     Decode=Array([1, 0]))
    if kind == "cmyk-jpeg":
        cmyk = np.concatenate([255 - photo, np.full((450, 600, 1), 20, np.uint8)], axis=2)
        return lambda pdf: raw_image(pdf, jpeg_bytes(cmyk, 95, "CMYK"), 600, 450,
                                     Name.DeviceCMYK, filt=Name.DCTDecode,
                                     Decode=Array([1, 0, 1, 0, 1, 0, 1, 0]))
    if kind == "cmyk-jpeg-nodecode":  # Adobe-inverted data, no /Decode: the reader's convention
        cmyk = np.concatenate([255 - photo, np.full((450, 600, 1), 20, np.uint8)], axis=2)
        return lambda pdf: raw_image(pdf, jpeg_bytes(cmyk, 95, "CMYK"), 600, 450,
                                     Name.DeviceCMYK, filt=Name.DCTDecode)
    raise ValueError(kind)


KINDS = ["indexed", "cmyk", "16bit", "icc", "icc-jpeg", "decode", "gray-decode", "cmyk-jpeg",
         "cmyk-jpeg-nodecode"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_colour_space_survives_lossless_pixel_exact(tmp_path, kind):
    src = one_image_pdf(tmp_path / "in.pdf", _kind(kind), inches=(2, 1.5))
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="lossless")
    assert same_render(src, dst, dpi=100)


@pytest.mark.parametrize("kind", KINDS)
def test_every_colour_space_survives_medium_within_the_floor(tmp_path, kind):
    src = one_image_pdf(tmp_path / "in.pdf", _kind(kind), inches=(2, 1.5))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.9
    if kind in ("icc", "decode", "cmyk", "16bit", "gray-decode", "cmyk-jpeg", "icc-jpeg",
                "cmyk-jpeg-nodecode"):
        assert report.images.downsampled == 1
        assert the_image(dst)["width"] == 300
    if kind in ("icc", "icc-jpeg") and not report.original_kept:
        assert the_image(dst)["colorspace"][0] == Name.ICCBased


# --- colour models -------------------------------------------------------------------------------


def test_gray_color_model_makes_every_image_gray(tmp_path):
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(600, 450), encoding="jpeg", quality=95), inches=(4, 3))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium", color_model="gray")
    out = the_image(dst)
    assert out["colorspace"] == Name.DeviceGray and out["filter"] == "/DCTDecode"
    assert report.images.to_gray == 1


def test_bitonal_color_model_makes_one_bit(tmp_path):
    gray = np.where(pdfgen.bitonal_array(1200, 900), 30, 220).astype(np.uint8)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, gray.tobytes(), 1200, 900, Name.DeviceGray), inches=(4, 3))
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium", color_model="bitonal"))
    out = the_image(dst)
    assert out["filter"] == "/JBIG2Decode" and out["bpc"] == 1
    assert report.images.to_jbig2 == 1
    report = compress(src, dst, Options(level="medium", color_model="bitonal", jbig2=False))
    out = the_image(dst)
    assert out["filter"] == "/CCITTFaxDecode" and out["bpc"] == 1
    assert report.images.to_ccitt == 1


# --- damage ------------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flate", "jpeg"])
def test_a_corrupt_image_is_kept_with_a_warning(tmp_path, damage):
    def build(pdf):
        photo = pdfgen.image_stream(pdf, pdfgen.photo_array(600, 450), encoding="flate")
        if damage == "flate":  # deflates to a tenth of the rows, then garbage
            bad = raw_image(pdf, zlib.compress(bytes(600 * 3 * 45)) + b"garbage-tail", 600, 450,
                            Name.DeviceRGB, filt=None, Filter=Name.FlateDecode)
        else:
            bad = raw_image(pdf, b"\xff\xd8\xff\xe0garbage" * 50, 600, 450, Name.DeviceRGB,
                            filt=Name.DCTDecode)
        return pdf.make_indirect(Dictionary(Good=photo, Bad=bad))

    pdf = pikepdf.new()
    images = build(pdf)
    pdfgen.add_page(pdf, b"q 288 0 0 216 36 400 cm /Im0 Do Q q 288 0 0 216 36 100 cm /Im1 Do Q\n"
                    + pdfgen.text_ops(["damaged"], y=50),
                    Dictionary(XObject=Dictionary(Im0=images.Good, Im1=images.Bad),
                               Font=Dictionary(F1=pdfgen.helvetica(pdf))))
    src = tmp_path / "in.pdf"
    pdf.save(src)
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium"))
    assert any("kept as it is" in w for w in report.warnings), report.warnings
    assert report.images.recompressed >= 1
    assert not report.original_kept
    pdfgen.assert_valid_output(src, dst, report)


def test_a_flate_wrapped_jpeg_is_unwrapped(tmp_path):
    data = jpeg_bytes(pdfgen.photo_array(600, 450), 60)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, zlib.compress(data, 9), 600, 450, Name.DeviceRGB, filt=None,
        Filter=Array([Name.FlateDecode, Name.DCTDecode])))  # 150 dpi: no resampling
    dst = tmp_path / "out.pdf"
    # a fixed quality above the JPEG's own 60: no re-encoding, only unwrapped and re-packed
    report = run(src, dst, preset="medium", image_quality=75)
    out = the_image(dst)
    assert out["filter"] == "/DCTDecode" and report.images.recompressed == 1
    assert same_render(src, dst, dpi=100)  # the same coefficients
    # the preset's per-image search may re-encode it lower; it is unwrapped either way
    dst2 = tmp_path / "out2.pdf"
    report = run(src, dst2, preset="medium")
    out = the_image(dst2)
    assert out["filter"] == "/DCTDecode" and report.images.recompressed == 1
    assert len(out["raw"]) < len(data)
    assert jpeg_codec.estimate_quality(Image.open(io.BytesIO(out["raw"]))) <= 60


@pytest.mark.parametrize("variant", ["few-colours", "gray"])
def test_a_matte_soft_mask_pins_the_colour_space_losslessly(tmp_path, variant):
    """A soft mask's /Matte has one value per component of its image's colour space: the
    image may not become /Indexed or DeviceGray (the render changed by up to 49/255)."""
    colours = few_colours(240, 180)
    if variant == "gray":
        colours = np.repeat(colours[:, :, :1], 3, axis=2)
    y, x = np.mgrid[0:180, 0:240]
    alpha = np.where(np.hypot(x - 120, y - 90) < 60, 255, 128).astype(np.uint8)
    # pre-blended with black, as /Matte [0 0 0] says
    blended = (colours.astype(np.uint16) * alpha[:, :, None] // 255).astype(np.uint8)

    def build(pdf):
        smask = raw_image(pdf, alpha.tobytes(), 240, 180, Name.DeviceGray,
                          Matte=Array([0, 0, 0]))
        return raw_image(pdf, blended.tobytes(), 240, 180, Name.DeviceRGB, SMask=smask)

    src = one_image_pdf(tmp_path / "in.pdf", build, background=True)
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="lossless")
    assert np.array_equal(pdfgen.render_rgb(src, 0), pdfgen.render_rgb(dst, 0))
    with pikepdf.open(dst) as pdf:
        (image,) = [o for o in pdfgen.image_xobjects(pdf) if "/SMask" in o]
        assert image.ColorSpace == Name.DeviceRGB


def test_a_two_colour_interpolated_image_renders_exactly_losslessly(tmp_path):
    """PDFium smooths an /Interpolate image held as a 1-bit palette differently from the
    same colours as RGB (3 levels apart), so such a palette gets 2 bits per index."""
    colours = few_colours(80, 80, colors=2)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, colours.tobytes(), 80, 80, Name.DeviceRGB, Interpolate=True))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.images.to_flate == 1
    assert np.array_equal(pdfgen.render_rgb(src, 0), pdfgen.render_rgb(dst, 0))


def test_icc_rgb_that_is_gray_stays_in_its_colour_space_losslessly(tmp_path):
    gray = pdfgen.photo_array(300, 200)[:, :, 1]
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, rgb.tobytes(), 300, 200, _icc_rgb(pdf)))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.images.to_gray == 0
    assert same_render(src, dst)


def test_indexed_image_becomes_gray_when_asked(tmp_path):
    src = one_image_pdf(tmp_path / "in.pdf", _kind("indexed"), inches=(2, 1.5))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium", color_model="gray")
    out = the_image(dst)
    assert out["colorspace"] == Name.DeviceGray and report.images.to_gray == 1
    assert out["width"] == 300


def test_png_predictors_decode_to_the_same_pixels(tmp_path, monkeypatch):
    # the step alone, saved without qpdf's re-deflation (which drops predictors)
    from squeezer.engines.budget import Budget
    from squeezer.engines.pdf import images
    from squeezer.engines.pdf.images import optimize_images
    from squeezer.engines.report import Report

    monkeypatch.setattr(images, "PNG_PREDICTORS", True)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, pdfgen.photo_array(400, 300), encoding="flate"))
    dst = tmp_path / "out.pdf"
    with pikepdf.open(src) as pdf:
        report = Report(input_bytes=src.stat().st_size)
        optimize_images(pdf, resolve(Options(level="lossless")), Budget(), report)
        image = pdfgen.image_xobjects(pdf)[0]
        assert int(image.DecodeParms.Predictor) == 15
        assert report.steps["images"] > 0 and report.images.to_flate == 1
        pdf.save(dst, recompress_flate=False)
    assert same_render(src, dst)


@pytest.mark.parametrize("black_is_1", [False, True])
def test_a_g4_scan_drawn_far_above_300_dpi_is_resampled(tmp_path, black_is_1):
    from squeezer.engines.pdf import ccitt

    ink = pdfgen.bitonal_array(2400, 1800)  # 4 x 3 in on the page: 600 dpi
    zero = ~ink if black_is_1 else ink  # G4 codes ``zero`` as black runs

    def build(pdf):
        return raw_image(pdf, ccitt.encode_g4(zero), 2400, 1800, Name.DeviceGray, bpc=1,
                         filt=Name.CCITTFaxDecode, DecodeParms=Dictionary(
                             K=-1, Columns=2400, Rows=1800, BlackIs1=black_is_1))

    src = one_image_pdf(tmp_path / "in.pdf", build)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] in ("/CCITTFaxDecode", "/JBIG2Decode", "/FlateDecode")
    assert out["bpc"] == 1
    assert out["width"] == 1200 and report.images.downsampled == 1  # 300 dpi for bitonal
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.9
    # lossless: the same pixels, re-coded as JBIG2 (or kept with jbig2 off)
    lossless = tmp_path / "lossless.pdf"
    report = run(src, lossless, preset="lossless")
    assert report.images.to_jbig2 == 1 and report.images.downsampled == 0
    assert the_image(lossless)["width"] == 2400
    assert same_render(src, lossless, dpi=100)
    report = run(src, lossless, preset="lossless", jbig2=False)
    assert report.images.recompressed == 0


def test_g4_codec_round_trips_both_polarities():
    from squeezer.engines.pdf import ccitt

    rng = np.random.default_rng(0)
    zero = pdfgen.bitonal_array(800, 700) ^ (rng.random((700, 800)) < 0.01)
    data = ccitt.encode_g4(zero)
    assert np.array_equal(np.asarray(ccitt.decode(data, 800, 700, -1, False)) == 0, zero)
    assert np.array_equal(np.asarray(ccitt.decode(data, 800, 700, -1, True)) == 0, ~zero)


def test_an_8_bit_black_and_white_image_is_resampled_as_a_scan(tmp_path):
    gray = np.where(pdfgen.bitonal_array(2400, 1800), 0, 255).astype(np.uint8)  # 600 dpi
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, gray.tobytes(), 2400, 1800, Name.DeviceGray))
    dst = tmp_path / "out.pdf"
    # G4 only: the synthetic blocks are so regular that JBIG2 codes them smaller at 600 dpi
    # than resampled (the smallest candidate wins, so JBIG2 would keep the full size)
    report = run(src, dst, preset="medium", jbig2=False)
    out = the_image(dst)
    assert out["bpc"] == 1 and out["width"] == 1200  # 300 dpi, not 150: text stays crisp
    assert report.images.downsampled == 1


# --- JPEG 2000, CMYK JPEG without an Adobe marker, never larger than lossless -----------------


def _jpx_bytes(array: np.ndarray, mode: str, codestream_only: bool = False) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array, mode).save(buf, "JPEG2000", no_jp2=codestream_only)
    return buf.getvalue()


def test_jpx_photo_is_decoded_and_recompressed_under_medium(tmp_path):
    photo = pdfgen.photo_array(600, 450)
    data = _jpx_bytes(photo, "RGB")  # JP2 file, sRGB in its header, no /ColorSpace in the PDF
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 600, 450, None, filt=Name.JPXDecode), inches=(2, 1.5))
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] == "/DCTDecode" and out["colorspace"] == Name.DeviceRGB
    assert out["width"] == 300 and report.images.downsampled == 1
    assert len(out["raw"]) < len(data) / 3
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.95
    # the lossless preset keeps JPEG 2000 as it is
    run(src, tmp_path / "lossless.pdf", preset="lossless")
    assert the_image(tmp_path / "lossless.pdf")["filter"] == "/JPXDecode"


def test_indexed_jpx_becomes_exact_flate(tmp_path):
    """/Indexed in the dictionary: the codestream holds indexes; the result renders the same."""
    palette = np.array([[255, 255, 255], [200, 30, 30], [30, 30, 200], [0, 0, 0]], np.uint8)
    index = np.zeros((120, 160), np.uint8)
    index[20:60, 10:150] = 1
    index[70:110, 30:90] = 2
    index[::7, :] = 3
    # a raw codestream, no JP2 header
    data = _jpx_bytes(index, "L", codestream_only=True)
    space = Array([Name.Indexed, Name.DeviceRGB, 3, pikepdf.String(palette.tobytes())])
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 160, 120, space, filt=Name.JPXDecode), inches=(160 / 100, 120 / 100))
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] == "/FlateDecode"
    assert out["colorspace"][0] == Name.Indexed and out["bpc"] == 2
    assert same_render(src, dst, dpi=100)


def test_jpx_that_does_not_decode_is_kept_with_a_warning(tmp_path):
    data = _jpx_bytes(pdfgen.photo_array(200, 150), "RGB")
    broken = data[: len(data) // 2]
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, broken, 200, 150, Name.DeviceRGB, filt=Name.JPXDecode), inches=(2, 1.5))
    dst = tmp_path / "out.pdf"
    report = compress(src, dst, Options(level="medium"))
    assert report.images.skipped == 1 and any("JPX" in w for w in report.warnings)
    if not report.original_kept:
        with pikepdf.open(dst) as pdf:
            assert [str(o.Filter) for o in pdfgen.image_xobjects(pdf)] == ["/JPXDecode"]


def _strip_adobe_marker(data: bytes) -> bytes:
    pos = 2
    while data[pos] == 0xFF and data[pos + 1] != 0xDA:
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if data[pos + 1] == 0xEE:
            return data[:pos] + data[pos + 2 + length:]
        pos += 2 + length
    raise AssertionError("no APP14 marker")


def test_cmyk_jpeg_without_adobe_marker_keeps_its_colours(tmp_path):
    """No APP14: the samples are stored as they are meant (readers use them as stored)."""
    photo = pdfgen.photo_array(600, 450)
    cmyk = np.concatenate([255 - photo, np.full((450, 600, 1), 20, np.uint8)], axis=2)
    data = _strip_adobe_marker(jpeg_bytes(255 - cmyk, 95, "CMYK"))  # Pillow stores 255 - x
    assert not jpeg_codec.adobe_marker(data)[0]
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, data, 600, 450, Name.DeviceCMYK, filt=Name.DCTDecode), inches=(2, 1.5))
    reference = one_image_pdf(tmp_path / "ref.pdf", lambda pdf: raw_image(
        pdf, cmyk.tobytes(), 600, 450, Name.DeviceCMYK), inches=(2, 1.5))
    # PDFium reads the marker-less JPEG as the samples it stores
    assert np.abs(pdfgen.render_gray(src, 0, 100).astype(int)
                  - pdfgen.render_gray(reference, 0, 100).astype(int)).mean() < 2
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert report.images.downsampled == 1 and the_image(dst)["filter"] == "/DCTDecode"
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.95
    assert np.abs(pdfgen.render_gray(src, 0, 100).astype(int)
                  - pdfgen.render_gray(dst, 0, 100).astype(int)).mean() < 3


def test_cmyk_flate_photo_becomes_cmyk_jpeg_with_its_colours(tmp_path):
    photo = pdfgen.photo_array(600, 450)
    cmyk = np.concatenate([255 - photo, np.full((450, 600, 1), 20, np.uint8)], axis=2)
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, cmyk.tobytes(), 600, 450, Name.DeviceCMYK), inches=(4, 3))
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium")
    out = the_image(dst)
    assert out["filter"] == "/DCTDecode" and out["colorspace"] == Name.DeviceCMYK
    assert out["decode"] is None
    assert np.abs(pdfgen.render_gray(src, 0, 100).astype(int)
                  - pdfgen.render_gray(dst, 0, 100).astype(int)).mean() < 3


def test_medium_never_larger_than_lossless_on_line_art_drawn_small(tmp_path):
    """A few-colour chart at ~280 dpi: resampled, its edges become new colours that Flate
    codes worse than the original; the full-size lossless candidate must win then."""
    rng = np.random.default_rng(11)
    art = np.full((335, 1255, 3), 255, np.uint8)
    colors = np.array([[0, 0, 0], [31, 119, 180], [255, 127, 14], [44, 160, 44]], np.uint8)
    for k in range(40):  # thin polylines and text-like strokes
        y = rng.integers(5, 330)
        x0, x1 = sorted(rng.integers(0, 1255, 2))
        art[y:y + 2, x0:x1] = colors[k % 4]
        x = rng.integers(0, 1250)
        y0, y1 = sorted(rng.integers(0, 335, 2))
        art[y0:y1, x:x + 1] = colors[(k + 1) % 4]
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, art.tobytes(), 1255, 335, Name.DeviceRGB), inches=(1255 / 280, 335 / 280))
    lossless, medium = tmp_path / "lossless.pdf", tmp_path / "medium.pdf"
    run(src, lossless, preset="lossless")
    run(src, medium, preset="medium")
    assert len(the_image(medium)["raw"]) <= len(the_image(lossless)["raw"])
    assert medium.stat().st_size <= lossless.stat().st_size
    assert pdfgen.min_ssim(src, medium, pages=1, dpi=100) >= 0.95


@pytest.mark.corpus
def test_corpus_jpx_with_miscounted_tile_parts_is_recompressed(tmp_path):
    """pymupdf test_2904: 56 indexed-CMYK JPX images whose SOT markers count fewer tile-parts
    than they hold (OpenJPEG refuses them as they are).  Medium decodes every one and the
    pages render as before."""
    from squeezer.engines.pdf import pixels

    src = pdfgen.CORPUS / "pymupdf__test_2904.pdf"
    if not src.exists():
        pytest.skip(f"corpus file {src.name} not present")
    with pikepdf.open(src) as pdf:
        jpx = [o for o in pdfgen.image_xobjects(pdf) if o.get("/Filter") == Name.JPXDecode]
        assert len(jpx) == 56
        for image in jpx[:8]:
            header = pixels.jpx_header(image.read_raw_bytes())
            arr, bpc = pixels.jpx_samples(header)
            assert arr.shape == (int(image.Height), int(image.Width), 1)
            assert int(arr.max()) <= int(image.ColorSpace[2])  # indexes within the palette
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="medium")
    assert not [w for w in report.warnings if "JPX" in w]
    assert dst.stat().st_size < 0.9 * src.stat().st_size
    with pikepdf.open(dst) as pdf:
        assert not [o for o in pdfgen.image_xobjects(pdf) if o.get("/Filter") == Name.JPXDecode]
    assert pdfgen.min_ssim(src, dst, pages=7, dpi=100) >= 0.99


def screenshot_like(width: int = 900, height: int = 600, seed: int = 3) -> np.ndarray:
    """Flat panels, anti-aliased text and a soft shadow: graphics (most pixels equal their
    neighbour), yet far from few colours."""
    from PIL import ImageDraw, ImageFilter, ImageFont

    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (width, height), (236, 236, 236))
    draw = ImageDraw.Draw(im)
    for y in range(0, height, 60):
        draw.rectangle((20, y + 8, width - 20, y + 52), fill=tuple(int(v) for v in
                                                                rng.integers(150, 255, 3)))
    try:
        font = ImageFont.load_default(size=18)
    except TypeError:
        font = ImageFont.load_default()
    for y in range(0, height, 60):
        draw.text((40, y + 20), f"execvp (did not finish)  0x{int(rng.integers(1 << 30)):08x}",
                  fill=(20, 20, 20), font=font)
    shadow = im.filter(ImageFilter.GaussianBlur(2))
    arr = np.asarray(im).copy()
    arr[:, width // 2:] = np.asarray(shadow)[:, width // 2:]
    return arr


def test_graphics_become_jpeg_at_the_levels_resolution_when_that_keeps_their_looks(tmp_path):
    shot = screenshot_like()
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: pdfgen.image_stream(
        pdf, shot, encoding="flate"), inches=(6, 4))  # 150 dpi
    lossless, medium = tmp_path / "lossless.pdf", tmp_path / "medium.pdf"
    run(src, lossless, preset="lossless")
    report = run(src, medium, preset="medium")
    out = the_image(medium)
    assert out["filter"] == "/DCTDecode" and out["width"] == 900  # no fewer pixels
    assert report.images.to_jpeg == 1
    assert len(out["raw"]) < 0.7 * len(the_image(lossless)["raw"])
    assert luma_ssim(shot, out["pixels"]) >= 0.94


def antialiased_logo(shapes: int = 10) -> np.ndarray:
    """Overlapping flat triangles, smoothed by downscaling: hundreds of colours along the
    edges and white around them (a logo), which deflates better plain than PNG-predicted."""
    from PIL import ImageDraw

    im = Image.new("RGB", (400, 200), "white")
    draw = ImageDraw.Draw(im)
    for k in range(shapes):
        x = 20 + k * 37 % 300
        draw.polygon([(x, 190), (x + 60, 20 + k * 11 % 90), (x + 130, 190)],
                     fill=(40 + k * 7 % 200, 90 + k * 13 % 150, 150 + k * 5 % 100))
    return np.asarray(im.resize((200, 100), Image.LANCZOS))


def test_a_raw_image_deflates_at_least_as_well_as_plain_flate(tmp_path):
    """An uncompressed image ends no larger than qpdf's plain Flate of it (the PNG predictor
    alone was 30 % larger on a real logo), whichever predictor or none wins."""
    logo = antialiased_logo()
    src = one_image_pdf(tmp_path / "in.pdf", lambda pdf: raw_image(
        pdf, logo.tobytes(), 200, 100, Name.DeviceRGB, filt=None), inches=(2, 1))
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="lossless")
    out = the_image(dst)
    assert np.array_equal(out["pixels"], logo)
    assert len(out["raw"]) <= len(zlib.compress(logo.tobytes(), 9))


def _strips_pdf(path: Path, strips: int) -> Path:
    """A 300 dpi page of 1-bit text cut into ``strips`` CCITT G4 images of 1980 x 132 pixels,
    each drawn where it belongs (how some scanners and converters write a page)."""
    import scanfixtures

    from squeezer.engines.pdf.ccitt import encode_g4

    ink = np.asarray(scanfixtures.scan_image("bitonal", dpi=300, size_in=(6.6, 0.44 * strips),
                                             seed=7).convert("L")) < 128
    pdf = pikepdf.new()
    xobjects, content = Dictionary(), b""
    height_pt = 72 * 0.44 * strips
    for k in range(strips):
        strip = ink[132 * k:132 * (k + 1)]
        xobjects[f"/S{k}"] = raw_image(pdf, encode_g4(strip), 1980, 132, Name.DeviceGray, bpc=1,
                                       filt=Name.CCITTFaxDecode,
                                       DecodeParms=Dictionary(K=-1, Columns=1980, Rows=132,
                                                              BlackIs1=False))
        content += b"q 475.2 0 0 31.68 36 %g cm /S%d Do Q\n" % (700 - 31.68 * (k + 1), k)
    assert height_pt > 0
    pdfgen.add_page(pdf, content, Dictionary(XObject=xobjects))
    pdf.save(path)
    pdf.close()
    return path


def test_a_page_of_g4_strips_becomes_jbig2_where_that_is_smaller(tmp_path):
    # 8 strips of 261 k pixels: each below the size that pays JBIG2's load on its own, 2 M
    # pixels together; lossless, so the page renders the same
    src = _strips_pdf(tmp_path / "in.pdf", 8)
    dst = tmp_path / "out.pdf"
    report = run(src, dst, preset="lossless")
    assert report.images.to_jbig2 >= 3  # (the strips of margin are a few bytes of G4)
    with pikepdf.open(src) as a, pikepdf.open(dst) as b:
        before = sum(len(i.read_raw_bytes()) for i in pdfgen.image_xobjects(a))
        after = sum(len(i.read_raw_bytes()) for i in pdfgen.image_xobjects(b))
    assert after < 0.9 * before
    assert same_render(src, dst, dpi=150)
    # one strip alone stays G4: its few bytes would not pay for loading the JBIG2 coder
    one = _strips_pdf(tmp_path / "one.pdf", 1)
    report = run(one, tmp_path / "one-out.pdf", preset="lossless")
    assert report.images.to_jbig2 == 0


def test_the_quality_is_bisected_between_the_rungs():
    # between a rung that fails and the next that passes, the lowest quality found to pass
    calls: list[int] = []

    def passes(q: int) -> bytes | None:
        calls.append(q)
        return b"%d" % q if q >= 52 else None

    assert jpeg_codec.refine(passes, 50, 55, b"55") == (52, b"52")
    assert len(calls) <= 3
    assert jpeg_codec.refine(passes, 54, 55, b"55") == (55, b"55")  # nothing in between
    # the searches land on single qualities, not only on the ladder's rungs, and keep the floor
    image = Image.fromarray(smooth_photo(600, 450))
    q = jpeg_codec.choose_quality(image, 0.985, 85)
    sample = jpeg_codec.mosaic(image)  # (what the search measures)
    refs = [Similarity(jpeg_codec._planes(sample)[:, :, 0])]
    assert jpeg_codec.similarity(refs, jpeg_codec._encode_plain(sample, q)) >= 0.985
    if q > jpeg_codec.SEARCH_LOWEST:
        assert jpeg_codec.similarity(refs, jpeg_codec._encode_plain(sample, q - 1)) < 0.985


def test_a_jpx_soft_mask_drawn_far_above_the_target_becomes_smaller_lossless_flate(tmp_path):
    # a 300 x 100 photo under a 1800 x 600 JPEG 2000 soft mask, drawn 2 x 0.67 in: the mask at
    # 900 dpi; it is decoded, resampled by its placement and kept lossless (Flate)
    photo = smooth_photo(300, 100)
    y, x = np.mgrid[0:600, 0:1800]
    alpha = np.clip(255 * (1 - np.hypot((x - 900) / 900, (y - 300) / 300)), 0, 255).astype(np.uint8)
    alpha[::40, :] = 0  # fine stripes, so the mask has detail
    mask_data = _jpx_bytes(alpha, "L")

    def build(pdf):
        mask = raw_image(pdf, mask_data, 1800, 600, Name.DeviceGray, filt=Name.JPXDecode)
        return raw_image(pdf, photo.tobytes(), 300, 100, Name.DeviceRGB, SMask=mask)

    src = one_image_pdf(tmp_path / "in.pdf", build, inches=(2, 2 / 3), background=True)
    dst = tmp_path / "out.pdf"
    run(src, dst, preset="medium")
    with pikepdf.open(dst) as pdf:
        (image,) = [o for o in pdfgen.image_xobjects(pdf) if "/SMask" in o]
        mask = image.SMask
        assert mask.get("/Filter") == Name.FlateDecode
        assert int(mask.Width) < 1800 and int(mask.Width) >= 300 - 1  # (150 dpi: 300 px)
    assert dst.stat().st_size < src.stat().st_size
    assert pdfgen.min_ssim(src, dst, pages=1, dpi=100) >= 0.98
    # the lossless preset keeps it as it is
    run(src, tmp_path / "lossless.pdf", preset="lossless")
    with pikepdf.open(tmp_path / "lossless.pdf") as pdf:
        (image,) = [o for o in pdfgen.image_xobjects(pdf) if "/SMask" in o]
        assert image.SMask.get("/Filter") == Name.JPXDecode


def test_a_palette_counts_its_colour_table(tmp_path):
    """An /Indexed image's colour table is written in its dictionary as hex, outside the
    stream: 200 colours cost 1.2 KB there.  A small image of 200 colours as a palette had
    256 bytes of data against 768 as RGB, so the palette won and the file grew; counted
    with its table, the palette loses and the image stays RGB."""
    rng = np.random.default_rng(11)
    colours = rng.integers(0, 256, (200, 3), dtype=np.uint8)
    array = colours[np.arange(256) % 200].reshape(16, 16, 3)
    src = tmp_path / "in.pdf"
    pdf = pikepdf.new()
    image = pdfgen.image_stream(pdf, array)
    resources = Dictionary(XObject=Dictionary(Im0=image))
    pdfgen.add_page(pdf, b"q 100 0 0 100 72 600 cm /Im0 Do Q\n" + pdfgen.text_ops(
        pdfgen.words_lines(3, lines=40)), resources)
    pdf.Root.Pages.Kids[0].Resources.Font = Dictionary(F1=pdfgen.helvetica(pdf))
    pdf.save(src, compress_streams=False)
    report = compress(src, tmp_path / "out.pdf", Options(level="lossless"))
    assert report.output_bytes < src.stat().st_size
    with pikepdf.open(tmp_path / "out.pdf") as out:
        kept = out.pages[0].Resources.XObject.Im0
        assert kept.ColorSpace == Name.DeviceRGB, kept.ColorSpace
        assert np.array_equal(np.frombuffer(kept.read_bytes(), np.uint8).reshape(16, 16, 3),
                              array)
