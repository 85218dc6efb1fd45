"""The image engine on generated images of every format: sizes, dimensions, formats, SSIM
floors, metadata, orientation, resizing, limits and named errors.

Images are small (a few hundred pixels a side) so the whole file runs in well under a minute.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageSequence

from squeezer.engines import compress_any
from squeezer.engines.errors import (
    DamagedImageError,
    ImageTooLargeError,
    InputTooLargeError,
    TooManyFramesError,
    UnsupportedFormatError,
)
from squeezer.engines.image import compress
from squeezer.engines.image.options import LEVELS, Resize
from squeezer.engines.image.quality import score
from squeezer.engines.image.resize import plan
from squeezer.engines.level import Level, level_of
from squeezer.engines.limits import Limits
from squeezer.engines.options import Options
from squeezer.engines.sniff import sniff

W, H = 320, 240


# --- generated images ----------------------------------------------------------------------------


def photo(w: int = W, h: int = H, noise: float = 2.0, seed: int = 1) -> Image.Image:
    """A photo-like image: smooth colour gradients, a soft blob, mild sensor noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([200 * x / w + 30, 180 * y / h + 40,
                     128 + 90 * np.sin(x / 23.0) * np.cos(y / 31.0)], -1)
    blob = 60 * np.exp(-(((x - w * 0.6) / (w / 6)) ** 2 + ((y - h * 0.4) / (h / 5)) ** 2))
    base += blob[..., None]
    base += rng.normal(0, noise, base.shape)
    return Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))


def line_art(w: int = W, h: int = H) -> Image.Image:
    im = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(im)
    d.rectangle((10, 10, w // 2, h // 2), fill=(200, 30, 30))
    d.ellipse((w // 2, h // 3, w - 10, h - 10), outline=(20, 20, 160), width=4)
    for i in range(0, w, 16):
        d.line((i, h - 1, w - 1, i % h), fill=(0, 120, 0), width=1)
    d.text((20, h - 40), "Squeezer 123", fill="black")
    return im


def transparent(w: int = W, h: int = H) -> Image.Image:
    im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    d = ImageDraw.Draw(im)
    d.ellipse((20, 20, w - 20, h - 20), fill=(30, 140, 220, 255))
    d.rectangle((w // 3, h // 3, 2 * w // 3, 2 * h // 3), fill=(250, 200, 0, 128))
    return im


def frames(n: int = 6, w: int = 160, h: int = 120) -> list[Image.Image]:
    out = []
    for i in range(n):
        im = Image.new("RGB", (w, h), (240, 240, 240))
        d = ImageDraw.Draw(im)
        d.ellipse((10 + 15 * i, 30, 50 + 15 * i, 70), fill=(200, 40, 40))
        d.rectangle((0, h - 20, w, h), fill=(40, 40, 200))
        out.append(im)
    return out


def save(image: Image.Image, path: Path, fmt: str, **kw) -> Path:
    image.save(path, fmt, **kw)
    return path


def decoded(path: Path) -> Image.Image:
    if sniff(path.read_bytes()[:4096]).format == "heic":
        import pillow_heif

        pillow_heif.register_heif_opener()
    im = Image.open(path)
    im.load()
    return im


def kind_of(path: Path) -> str:
    return sniff(path.read_bytes()[:65536]).format


# --- sniffing ------------------------------------------------------------------------------------


def test_sniff_every_format_from_bytes_not_names(tmp_path: Path) -> None:
    im = photo(64, 48)
    for fmt, pil in [("jpeg", "JPEG"), ("png", "PNG"), ("gif", "GIF"), ("webp", "WEBP"),
                     ("avif", "AVIF"), ("tiff", "TIFF"), ("bmp", "BMP")]:
        path = save(im, tmp_path / "misnamed.pdf", pil)  # the name lies; the bytes decide
        assert kind_of(path) == fmt
    apng = tmp_path / "a.png"
    f = frames(3)
    f[0].save(apng, "PNG", save_all=True, append_images=f[1:])
    assert sniff(apng.read_bytes()).animated
    assert sniff(b'<?xml version="1.0"?>\n<!-- x --><svg xmlns="http://www.w3.org/2000/svg"/>'
                 ).format == "svg"
    assert sniff(b"%PDF-1.7\n...").format == "pdf"
    with pytest.raises(UnsupportedFormatError, match="EPS/PostScript"):
        sniff(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n")
    with pytest.raises(UnsupportedFormatError, match="EPS"):
        sniff(b"\xc5\xd0\xd3\xc6" + bytes(28))
    with pytest.raises(UnsupportedFormatError):
        sniff(b"PK\x03\x04 a zip file")


# --- JPEG ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("img") / "photo.jpg"
    photo().save(path, "JPEG", quality=95)
    return path


def test_jpeg_levels_shrink_keep_size_and_hold_their_floor(jpeg_photo: Path,
                                                                 tmp_path: Path) -> None:
    reference = decoded(jpeg_photo).convert("RGB")
    sizes = {}
    for level in ("lossless", "low", "medium", "high", "extreme"):
        out = tmp_path / f"{level}.jpg"
        report = compress(jpeg_photo, out, Options(level=level))
        assert kind_of(out) == "jpeg" and report.format_out == "jpeg"
        assert (report.width, report.height) == (W, H) == decoded(out).size
        assert report.output_bytes == out.stat().st_size < jpeg_photo.stat().st_size
        got = score(reference, decoded(out).convert("RGB"))
        floor = LEVELS[level_of(level)].score
        if level == "lossless":
            assert np.array_equal(np.asarray(decoded(out)), np.asarray(reference))
        else:
            assert got >= floor - 0.01, (level, got)
        sizes[level] = report.output_bytes
    assert sizes["lossless"] > sizes["low"] >= sizes["medium"] >= sizes["high"] >= sizes["extreme"]


def test_explicit_quality_and_target_size(jpeg_photo: Path, tmp_path: Path) -> None:
    low = compress(jpeg_photo, tmp_path / "q30.jpg", Options(quality=30))
    high = compress(jpeg_photo, tmp_path / "q80.jpg", Options(quality=80))
    assert low.quality == 30 and high.quality == 80 and low.output_bytes < high.output_bytes
    target = jpeg_photo.stat().st_size // 4
    report = compress(jpeg_photo, tmp_path / "t.jpg", Options(target_size=target))
    assert report.target_reached is True and report.output_bytes <= target


def test_exif_orientation_applied_and_metadata_stripped_or_kept(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    exif[0x8298] = "(c) Squeezer tests"
    exif[0x010F] = "CameraMaker"
    exif[0x8769] = {0x9003: "2024:01:02 03:04:05"}
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 0.0)}
    src = tmp_path / "rotated.jpg"
    photo(300, 200).save(src, "JPEG", quality=95, exif=exif.tobytes())
    report = compress(src, tmp_path / "out.jpg", Options())
    out = decoded(tmp_path / "out.jpg")
    assert out.size == (200, 300), "orientation 6 must be applied to the pixels"
    assert dict(out.getexif()) == {0x8298: "(c) Squeezer tests"}, \
        "only the copyright is kept by default"
    assert report.input.exif["gps"] == "yes" and report.input.exif["make"] == "CameraMaker"
    assert "exif" in report.metadata_removed
    assert any("orientation" in a for a in report.actions)

    kept = compress(src, tmp_path / "kept.jpg",
                    Options(preserve=["copyright", "location"]))
    exif_out = decoded(tmp_path / "kept.jpg").getexif()
    assert exif_out.get(0x8298) == "(c) Squeezer tests"
    assert exif_out.get_ifd(0x8825), "GPS kept"
    assert 0x010F not in exif_out, "camera make is not a preserved group"
    assert not exif_out.get_ifd(0x8769).get(0x9003), "creation date not asked for"
    assert set(kept.metadata_kept) == {"copyright", "location"}

    lossless = compress(src, tmp_path / "lossless.jpg", Options(level="lossless"))
    repacked = decoded(tmp_path / "lossless.jpg")
    assert lossless.output_bytes < src.stat().st_size
    # the coefficients are untouched, so the orientation stays a tag (beside the copyright)
    assert repacked.size == (300, 200) and repacked.getexif().get(0x0112) == 6
    assert repacked.getexif().get(0x8298) == "(c) Squeezer tests"
    assert 0x010F not in repacked.getexif()


# --- PNG -----------------------------------------------------------------------------------------


def test_png_line_art_palette_and_lossless(tmp_path: Path) -> None:
    src = save(line_art(), tmp_path / "art.png", "PNG", compress_level=1)
    report = compress(src, tmp_path / "art.out.png", Options())
    assert kind_of(tmp_path / "art.out.png") == "png"
    assert report.output_bytes < src.stat().st_size * 0.7
    assert score(line_art(), decoded(tmp_path / "art.out.png").convert("RGB")) >= \
        LEVELS[Level.medium].score
    lossless = compress(src, tmp_path / "art.lossless.png", Options(level="lossless"))
    assert lossless.output_bytes < src.stat().st_size
    assert np.array_equal(np.asarray(decoded(tmp_path / "art.lossless.png").convert("RGB")),
                          np.asarray(line_art()))


def test_png_transparency_kept_and_flattened_for_jpeg(tmp_path: Path) -> None:
    src = save(transparent(), tmp_path / "t.png", "PNG")
    compress(src, tmp_path / "t.out.png", Options())
    out = decoded(tmp_path / "t.out.png").convert("RGBA")
    assert out.getpixel((0, 0))[3] == 0 and out.getpixel((40, H // 2))[3] == 255
    report = compress(src, tmp_path / "t.jpg", Options(format="jpeg", background="#ff0000"))
    assert kind_of(tmp_path / "t.jpg") == "jpeg" and report.format_out == "jpeg"
    r, g, b = decoded(tmp_path / "t.jpg").convert("RGB").getpixel((2, 2))
    assert r > 240 and g < 20 and b < 20, "transparent pixels flattened onto the background"
    assert "convert" in report.requested_changes


def test_apng_keeps_its_frames(tmp_path: Path) -> None:
    f = frames(5)
    src = tmp_path / "anim.png"
    f[0].save(src, "PNG", save_all=True, append_images=f[1:], duration=80, loop=0,
              compress_level=1)
    report = compress(src, tmp_path / "anim.out.png", Options())
    out = decoded(tmp_path / "anim.out.png")
    assert getattr(out, "n_frames", 1) == 5 and report.frames == 5
    assert report.output_bytes <= src.stat().st_size


def test_photo_png_that_cannot_shrink_keeps_the_original(tmp_path: Path) -> None:
    src = tmp_path / "tiny.png"
    Image.new("L", (8, 8), 0).save(src, "PNG", optimize=True)
    before = src.read_bytes()
    report = compress(src, tmp_path / "tiny.out.png", Options(level="lossless"))
    if report.original_kept:
        assert (tmp_path / "tiny.out.png").read_bytes() == before
    else:
        assert report.output_bytes < len(before)


# --- GIF, WebP, AVIF, HEIC, TIFF, BMP, SVG -------------------------------------------------------


def test_animated_gif_optimised_and_converted_to_animated_webp(tmp_path: Path) -> None:
    f = frames(6)
    src = tmp_path / "anim.gif"
    f[0].save(src, "GIF", save_all=True, append_images=f[1:], duration=100, loop=0,
              optimize=False, disposal=1)
    report = compress(src, tmp_path / "anim.out.gif", Options())
    assert kind_of(tmp_path / "anim.out.gif") == "gif"
    assert report.frames == 6 and report.output_bytes <= src.stat().st_size
    webp = compress(src, tmp_path / "anim.webp", Options(format="webp"))
    out = decoded(tmp_path / "anim.webp")
    assert kind_of(tmp_path / "anim.webp") == "webp" and out.n_frames == 6
    assert webp.output_bytes < src.stat().st_size


def test_webp_animated_and_still(tmp_path: Path) -> None:
    src = save(photo(), tmp_path / "p.webp", "WEBP", quality=95, method=0)
    report = compress(src, tmp_path / "p.out.webp", Options())
    assert kind_of(tmp_path / "p.out.webp") == "webp" and report.output_bytes < src.stat().st_size
    assert score(decoded(src).convert("RGB"), decoded(tmp_path / "p.out.webp").convert("RGB")) \
        >= LEVELS[Level.medium].score - 0.5 or report.quality == LEVELS[Level.medium].quality_cap
    f = frames(4)
    anim = tmp_path / "a.webp"
    f[0].save(anim, "WEBP", save_all=True, append_images=f[1:], duration=100, lossless=True,
              method=0)
    report = compress(anim, tmp_path / "a.out.webp", Options())
    assert decoded(tmp_path / "a.out.webp").n_frames == 4 and report.frames == 4


def test_avif_and_heic(tmp_path: Path) -> None:
    src = save(photo(), tmp_path / "p.avif", "AVIF", quality=95, speed=9)
    report = compress(src, tmp_path / "p.out.avif", Options())
    assert kind_of(tmp_path / "p.out.avif") == "avif"
    assert report.output_bytes < src.stat().st_size
    import pillow_heif

    heic = tmp_path / "p.heic"
    pillow_heif.from_pillow(photo()).save(heic, quality=95)
    assert kind_of(heic) == "heic"
    report = compress(heic, tmp_path / "p.out.heic", Options())
    assert report.format_in == "heic" and (report.width, report.height) == (W, H)
    assert report.output_bytes <= heic.stat().st_size
    jpg = compress(heic, tmp_path / "p.jpg", Options(format="jpeg"))
    assert kind_of(tmp_path / "p.jpg") == "jpeg" and jpg.format_out == "jpeg"


def test_tiff_and_bmp_lossless(tmp_path: Path) -> None:
    src = save(line_art(), tmp_path / "a.tif", "TIFF")
    report = compress(src, tmp_path / "a.out.tif", Options())
    assert kind_of(tmp_path / "a.out.tif") == "tiff" and report.output_bytes < src.stat().st_size
    assert np.array_equal(np.asarray(decoded(tmp_path / "a.out.tif").convert("RGB")),
                          np.asarray(line_art()))
    bmp = save(line_art().quantize(16).convert("RGB"), tmp_path / "a.bmp", "BMP")
    report = compress(bmp, tmp_path / "a.out.bmp", Options())
    assert kind_of(tmp_path / "a.out.bmp") == "bmp" and report.output_bytes < bmp.stat().st_size
    webp = compress(src, tmp_path / "a.webp", Options(format="webp"))
    assert webp.output_bytes < report.output_bytes


SVG = b"""<?xml version="1.0" encoding="UTF-8" standalone="no"?>
<!-- Created with Inkscape (http://www.inkscape.org/) -->
<svg xmlns="http://www.w3.org/2000/svg" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape"
     xmlns:sodipodi="http://sodipodi.sourceforge.net/DTD/sodipodi-0.dtd"
     width="100.000000" height="100.000000" inkscape:version="1.2">
  <metadata><rdf>lots of editor data</rdf></metadata>
  <sodipodi:namedview pagecolor="#ffffff" />
  <g id="layer1" inkscape:label="Layer 1">
    <path id="icon" d="M 10.000000 20.000000 L 30.500000 40.000000 L 10.000000 20.000000 Z"
          style="fill:#ff0000;stroke:none" />
  </g>
</svg>
"""


def test_svg_optimised_as_text(tmp_path: Path) -> None:
    src = tmp_path / "a.svg"
    src.write_bytes(SVG)
    report = compress(src, tmp_path / "a.out.svg", Options())
    out = (tmp_path / "a.out.svg").read_bytes()
    assert report.format_out == "svg" and len(out) < len(SVG) / 2
    assert b"inkscape" not in out and b"metadata" not in out and b"<!--" not in out
    assert b'id="icon"' in out, "ids are kept (sprites and CSS refer to them)"
    bomb = tmp_path / "bomb.svg"
    bomb.write_bytes(b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">]>'
                     b'<svg xmlns="http://www.w3.org/2000/svg">&a;</svg>')
    with pytest.raises(UnsupportedFormatError, match="entity"):
        compress(bomb, tmp_path / "bomb.out.svg")


# --- resize --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "w", "h", "size", "expected"), [
    ("fit", 100, 100, (400, 200), (100, 50)),
    ("fit", 800, 800, (400, 200), (400, 200)),       # never enlarged
    ("scale", 200, None, (400, 200), (200, 100)),
    ("scale", None, 50, (400, 200), (100, 50)),
    ("cover", 100, 100, (400, 200), (100, 100)),
    ("thumb", 100, 100, (400, 200), (100, 100)),
    ("crop", 100, 60, (400, 200), (100, 60)),
    ("exact", 123, 45, (400, 200), (123, 45)),
    ("exact", 800, 600, (400, 200), (800, 600)),     # exact obeys
])
def test_resize_modes(tmp_path: Path, mode: str, w: int | None, h: int | None,
                      size: tuple[int, int], expected: tuple[int, int]) -> None:
    src = save(photo(*size), tmp_path / "in.png", "PNG")
    report = compress(src, tmp_path / "out.png", Options(
        level="low", resize=Resize(mode=mode, width=w, height=h)))
    assert decoded(tmp_path / "out.png").size == expected == (report.width, report.height)


def test_resize_string_form_entropy_crop_and_upscale() -> None:
    r = Resize.parse("cover:300x300:entropy")
    assert (r.mode.value, r.width, r.height, r.crop.value) == ("cover", 300, 300, "entropy")
    assert plan((100, 100), Resize(mode="fit", width=200, height=200, upscale=True))[0] == (200, 200)
    with pytest.raises(ValueError):
        Resize.parse("fit")
    with pytest.raises(ValueError):
        Resize(mode="cover", width=10)
    # entropy crop finds the detailed half of an image that is flat on the left
    from squeezer.engines.image.resize import _window

    im = Image.new("L", (400, 100), 128)
    im.paste(photo(200, 100).convert("L"), (200, 0))
    x0, _, _, _ = _window(im, (200, 100), Resize(mode="crop", width=1, height=1,
                                                 crop="entropy").crop)
    assert x0 >= 150


# --- auto format, dispatcher ---------------------------------------------------------------------


def test_auto_keeps_transparency_and_picks_the_smallest(tmp_path: Path) -> None:
    src = save(transparent(), tmp_path / "t.png", "PNG")
    report = compress(src, tmp_path / "t.out", Options(format="auto"))
    assert report.format_out in ("webp", "avif", "png") and len(report.candidates) >= 2
    assert report.output_bytes == min(report.candidates.values())
    assert decoded(tmp_path / "t.out").convert("RGBA").getpixel((0, 0))[3] == 0


def test_dispatcher_picks_by_bytes_and_maps_options(tmp_path: Path, fx) -> None:
    img = save(line_art(), tmp_path / "looks-like.pdf", "PNG")
    report = compress_any(img, tmp_path / "out.png", {"preset": "extreme", "dpi": 150})
    assert report.kind == "image" and report.settings["level"] == "extreme"
    assert [w for w in report.warnings if "pdf.dpi" in w] == [
        "options for other formats do not apply to this PNG and were ignored: pdf.dpi"]
    pdf = tmp_path / "doc.png"  # a PDF whatever its name says
    pdf.write_bytes(Path(fx.text()).read_bytes())
    pdf_report = compress_any(pdf, tmp_path / "out.pdf", {"compression": "lossless"})
    assert pdf_report.pages >= 1 and pdf_report.settings["lossy_images"] is False
    assert any("'compression' is deprecated" in w for w in pdf_report.warnings)
    with pytest.raises(Exception, match="bogus"):
        Options.model_validate({"bogus": 1})
    opts = Options.model_validate({"resize": "fit:10x10", "preset": "high"})
    assert opts.level is Level.high and opts.not_for({"pdf"}) == ["image.resize"]
    eps = tmp_path / "x.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n")
    with pytest.raises(UnsupportedFormatError):
        compress_any(eps, tmp_path / "x.out")


# --- limits and damaged input --------------------------------------------------------------------


def _png_bomb(width: int, height: int) -> bytes:
    """A tiny PNG declaring a huge 1-bit image whose rows are all zero (a decompression bomb)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes((width + 7) // 8)
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(row) for _ in range(64)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def test_limits_are_named_errors(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    # 900 M pixels (Pillow's own refusal) and 256 M (between our 200 M and Pillow's
    # default 2 x 89 M refusal): both quote our documented limit, not Pillow's
    for side in (30_000, 16_000):
        bomb.write_bytes(_png_bomb(side, side))
        assert bomb.stat().st_size < 10_000
        with pytest.raises(ImageTooLargeError, match="limit of 200000000 pixels") as caught:
            compress(bomb, tmp_path / "out.png")
        assert str(side * side) in str(caught.value)
        assert not (tmp_path / "out.png").exists()
    src = save(line_art(), tmp_path / "a.png", "PNG")
    with pytest.raises(ImageTooLargeError):
        compress(src, tmp_path / "out.png", limits=Limits(max_image_pixels=1000))
    with pytest.raises(InputTooLargeError):
        compress(src, tmp_path / "out.png", limits=Limits(max_input_bytes=100))
    f = frames(5)
    gif = tmp_path / "a.gif"
    f[0].save(gif, "GIF", save_all=True, append_images=f[1:])
    with pytest.raises(TooManyFramesError):
        compress(gif, tmp_path / "out.gif", limits=Limits(max_frames=3))
    assert not list(tmp_path.glob("out.*"))


def test_damaged_and_refused_inputs(tmp_path: Path) -> None:
    buf = io.BytesIO()
    photo().save(buf, "JPEG")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(DamagedImageError) as info:
        compress(broken, tmp_path / "out.jpg")
    assert info.value.code == "image_invalid"
    eps = tmp_path / "figure.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")
    with pytest.raises(UnsupportedFormatError) as refused:
        compress(eps, tmp_path / "out.jpg")
    assert refused.value.code == "unsupported_format" and "EPS" in refused.value.message
    assert not (tmp_path / "out.jpg").exists()


def test_in_place_and_frames_iterate(tmp_path: Path) -> None:
    src = save(line_art(), tmp_path / "a.png", "PNG", compress_level=0)
    size = src.stat().st_size
    report = compress(src, src, Options())
    assert report.output_bytes == src.stat().st_size < size
    assert len(list(ImageSequence.Iterator(decoded(src)))) == 1


# --- lossy PNG, JPEG floor, lossy GIF (issue 6 targets) -----------------------------------------


def ui_screenshot(w: int = 480, h: int = 360, gradient: bool = True) -> Image.Image:
    """Flat UI colours, anti-aliased text and one gradient patch (dithering costs bytes here)."""
    im = Image.new("RGB", (w, h), (245, 246, 248))
    d = ImageDraw.Draw(im)
    d.rectangle((0, 0, w, 40), fill=(32, 92, 180))
    for r in range(6):
        d.rectangle((16, 56 + r * 44, w - 16, 90 + r * 44), fill="white", outline=(220, 220, 225))
        d.text((28, 66 + r * 44), f"Row {r}: interface text", fill=(40, 40, 40))
    if gradient:
        y, x = np.mgrid[0:90, 0:150]
        grad = np.stack([x * 255 // 150, y * 255 // 90, 255 - x * 255 // 150], -1)
        im.paste(Image.fromarray(grad.astype(np.uint8)), (w - 170, h - 110))
    return im


def test_png_graphic_undithered_palette_beats_dithered_at_the_floor(tmp_path: Path) -> None:
    from squeezer.engines.image import gif as gifmod

    flat = ui_screenshot(gradient=False)
    src = save(flat, tmp_path / "ui.png", "PNG", compress_level=6)
    report = compress(src, tmp_path / "ui.out.png", Options())
    out = decoded(tmp_path / "ui.out.png")
    assert kind_of(tmp_path / "ui.out.png") == "png" and out.mode == "P"
    assert score(flat, out.convert("RGB")) >= LEVELS[Level.medium].score
    assert report.output_bytes < src.stat().st_size * 0.5
    assert "undithered" in report.actions[-1]
    assert gifmod.palette_frames([flat], 80, 0.0)[0].mode == "P"


def _unsampled_blocks(width: int = 1024, height: int = 768) -> Image.Image:
    """A slide whose search sample (the engine's evenly spread tiles) sees only its plain
    background, while the rest of it holds 400 colours in flat blocks: the sample passes a
    palette at every quality, the whole only at the top one."""
    from squeezer.engines.image import quality

    index = np.arange(width * height, dtype=np.int64).reshape(height, width)
    coded = np.stack([(index >> 16) & 255, (index >> 8) & 255, index & 255], -1)
    seen = np.asarray(quality.sample(Image.fromarray(coded.astype(np.uint8)))).astype(np.int64)
    sampled = np.zeros(width * height, bool)
    sampled[((seen[..., 0] << 16) | (seen[..., 1] << 8) | seen[..., 2]).ravel()] = True
    sampled = sampled.reshape(height, width)
    rng = np.random.default_rng(7)
    base = rng.integers(0, 200, (40, 3))
    colours = np.concatenate([np.clip(base + 2 * k, 0, 255) for k in range(10)])
    pixels = np.full((height, width, 3), (250, 250, 240), np.uint8)
    for y in range(0, height, 12):
        for x in range(0, width, 12):
            if not sampled[y:y + 12, x:x + 12].any():
                pixels[y:y + 12, x:x + 12] = colours[rng.integers(len(colours))]
    return Image.fromarray(pixels)


def test_png_palette_search_climbs_past_a_flattering_sample(tmp_path: Path) -> None:
    """A sample can flatter the whole image by more than one rung of the palette ladder (a real
    1024 x 768 slide: 87 at q70 on its sample, 73 / 82 / 96 at q70 / 90 / 100 on the whole).
    Trying only the rung found and the one above left it lossless at 1.4 x the q100 palette's
    bytes; every rung above is tried on the whole before giving up."""
    slide = _unsampled_blocks()
    src = save(slide, tmp_path / "slide.png", "PNG", compress_level=9)
    lossless = compress(src, tmp_path / "slide.lossless.png", Options(level="lossless"))
    report = compress(src, tmp_path / "slide.out.png", Options())
    out = decoded(tmp_path / "slide.out.png")
    assert out.mode == "P", report.actions
    assert score(slide, out.convert("RGB")) >= LEVELS[Level.medium].score
    assert report.output_bytes < lossless.output_bytes * 0.8


def test_png_gradient_is_never_cut_into_bands(tmp_path: Path) -> None:
    """Issue 19: a palette turned a test card's gradient into flat cells at the default level
    while luma SSIM stayed high.  The floor (SSIMULACRA2 and the banding check) refuses every
    palette that does that; what is written keeps the gradient."""
    from squeezer.engines.image import png as pngmod
    from squeezer.engines.image.quality import Reference, banding

    card = ui_screenshot()
    undithered = pngmod.palette_frame(card, 100, 0.0)
    floor = LEVELS[Level.medium]
    measured = Reference(card).measure(undithered)
    assert measured.banding > floor.banding, "the check sees the cells"
    src = save(card, tmp_path / "card.png", "PNG", compress_level=6)
    for level in ("low", "medium", "high"):
        report = compress(src, tmp_path / f"card.{level}.png", Options(level=level))
        out = np.asarray(decoded(tmp_path / f"card.{level}.png").convert("RGB"))
        got = banding(np.asarray(card), out)
        assert got <= LEVELS[level_of(level)].banding, (level, got, report.actions)
        assert score(card, Image.fromarray(out)) >= LEVELS[level_of(level)].score - 0.01


def test_png_photo_posterised_only_where_noise_hides_it(tmp_path: Path) -> None:
    from squeezer.engines.image import png as pngmod

    noisy = photo(384, 288, noise=10.0)
    src = save(noisy, tmp_path / "noisy.png", "PNG", compress_level=6)
    report = compress(src, tmp_path / "noisy.out.png", Options())
    out = decoded(tmp_path / "noisy.out.png")
    assert out.mode == "RGB" and kind_of(tmp_path / "noisy.out.png") == "png"
    assert "posterised" in report.actions[-1]
    assert score(noisy, out) >= LEVELS[Level.medium].score
    assert report.output_bytes < src.stat().st_size * 0.9
    # a clean gradient would band: no step is allowed (and the banding check sees it)
    clean = photo(384, 288, noise=0.0)
    assert pngmod.posterize_steps(clean) == []
    from squeezer.engines.image.quality import banding

    assert banding(np.asarray(clean), np.asarray(pngmod.posterize(clean, 4))) > 0.05


def test_png_render_too_clean_to_posterise_loses_only_its_lowest_bit(tmp_path: Path) -> None:
    """A render whose lowest bit is noise-like (a dithered gradient, noise under one level)
    has no noise to hide a coarse step, but rounding to even values costs nothing visible and
    is a fifth of its bytes; a flat screenshot's lowest bit is not noise and is not tried."""
    from squeezer.engines.image import png as pngmod

    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:300, 0:400]
    smooth = np.stack([x * 0.6, y * 0.8, (x + y) * 0.3], -1) + rng.normal(0, 0.6, (300, 400, 3))
    render = Image.fromarray(np.clip(smooth + 20, 0, 255).astype(np.uint8))
    assert pngmod.posterize_steps(render) == [] and pngmod.lowest_bit_pays(render)
    src = save(render, tmp_path / "render.png", "PNG", compress_level=9)
    report = compress(src, tmp_path / "render.out.png", Options())
    assert "posterised to steps of 2" in report.actions[-1], report.actions
    out = np.asarray(decoded(tmp_path / "render.out.png").convert("RGB")).astype(np.int16)
    assert np.abs(out - np.asarray(render)).max() <= 1
    assert report.output_bytes < src.stat().st_size * 0.9
    assert not pngmod.lowest_bit_pays(ui_screenshot(gradient=False))


def test_png_cut_out_photo_is_posterised_by_its_opaque_noise(tmp_path: Path) -> None:
    """A photo on a transparent surround (product shots in slides): the flat hidden colour of
    the surround is not the photo's noise, so it does not forbid posterising the photo."""
    from squeezer.engines.image import png as pngmod

    noisy = np.asarray(photo(384, 288, noise=10.0).convert("RGBA")).copy()
    noisy[:, :200, 3] = 0  # the left half and more transparent
    noisy[:, :200, :3] = 255
    cut_out = Image.fromarray(noisy)
    assert pngmod.posterize_steps(cut_out) == pngmod.posterize_steps(
        Image.fromarray(noisy[:, 200:]))  # the opaque part decides
    assert pngmod.posterize_steps(cut_out)
    src = save(cut_out, tmp_path / "cut.png", "PNG", compress_level=6)
    report = compress(src, tmp_path / "cut.out.png", Options())
    out = np.asarray(decoded(tmp_path / "cut.out.png").convert("RGBA"))
    assert report.output_bytes < src.stat().st_size * 0.9, report.actions
    assert np.array_equal(out[..., 3], noisy[..., 3])


def test_png_pillow_quantizer_is_selectable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from squeezer.config import Config
    from squeezer.engines import runtime
    from squeezer.engines.image import png as pngmod

    monkeypatch.setenv("SQUEEZER_QUANTIZER", "pillow")
    monkeypatch.setattr(runtime, "current", runtime.current)  # restored after the test
    Config().apply_to_engines()
    assert pngmod.backend() == "pillow-mediancut"
    src = save(ui_screenshot(gradient=False), tmp_path / "ui.png", "PNG", compress_level=6)
    report = compress(src, tmp_path / "ui.out.png", Options())
    assert "pillow-mediancut" in report.actions[-1]
    assert score(ui_screenshot(gradient=False),
                 decoded(tmp_path / "ui.out.png").convert("RGB")) >= LEVELS[Level.medium].score
    assert report.output_bytes < src.stat().st_size * 0.5
    logo = pngmod.quantize(transparent(), 80, 0.0)
    assert logo.mode == "P" and logo.convert("RGBA").getpixel((0, 0))[3] == 0


def test_jpeg_high_never_below_its_floor_even_above_the_cap(tmp_path: Path) -> None:
    # strong noise: the level's cap does not hold the floor on this q95 source
    src = save(photo(noise=24.0, seed=3), tmp_path / "grainy.jpg", "JPEG", quality=95)
    reference = decoded(src).convert("RGB")
    report = compress(src, tmp_path / "grainy.out.jpg", Options())
    floor = LEVELS[Level.medium].score
    assert report.output_bytes < src.stat().st_size
    assert score(reference, decoded(tmp_path / "grainy.out.jpg").convert("RGB")) >= floor - 0.01
    assert report.score is None or report.score >= floor - 0.01


def test_jpeg_fine_colour_detail_falls_back_to_full_chroma(tmp_path: Path) -> None:
    """Red type on blue: no 4:2:0 quality keeps the floor (chroma is halved), 4:4:4 does; the
    result must not be the input kept whole (two q99 photo-book JPEGs were)."""
    rng = np.random.default_rng(3)
    image = Image.new("RGB", (480, 360), (40, 60, 200))
    draw = ImageDraw.Draw(image)
    for _ in range(220):
        draw.text((int(rng.integers(0, 480)), int(rng.integers(0, 360))), "Map",
                  fill=(230, 30, 30))
    noisy = np.asarray(image).astype(np.int16) + rng.normal(0, 3, (360, 480, 3)).astype(np.int16)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    src = save(image, tmp_path / "map.jpg", "JPEG", quality=99, subsampling=0)
    reference = decoded(src).convert("RGB")
    report = compress(src, tmp_path / "map.out.jpg", Options())
    out = decoded(tmp_path / "map.out.jpg")
    assert report.output_bytes < src.stat().st_size * 0.8, report.actions
    assert "4:4:4" in report.actions[-1] and not report.warnings
    assert score(reference, out.convert("RGB")) >= LEVELS[Level.medium].score - 0.01


def animation(n: int = 8, w: int = 200, h: int = 150) -> list[Image.Image]:
    """A gradient background (more than 256 colours) with a ball moving across it."""
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 // w, y * 255 // h, 128 + 0 * x], -1).astype(np.uint8)
    out = []
    for i in range(n):
        im = Image.fromarray(base.copy())
        d = ImageDraw.Draw(im)
        d.ellipse((10 + 18 * i, 40, 55 + 18 * i, 85), fill=(220, 40, 40))
        d.text((10, h - 25), f"frame {i}", fill=(0, 0, 0))
        out.append(im)
    return out


@pytest.mark.parametrize("level", ["medium", "extreme"])
def test_lossy_gif_keeps_frames_durations_and_floor(tmp_path: Path,
                                                                    level: str) -> None:
    src = tmp_path / "ball.gif"
    durations = [40, 80, 120, 40, 80, 120, 40, 200]
    f = animation()
    f[0].save(src, "GIF", save_all=True, append_images=f[1:], duration=durations, loop=0,
              optimize=False, disposal=1)
    with Image.open(src) as im:
        reference = [fr.convert("RGB") for fr in ImageSequence.Iterator(im)]
    report = compress(src, tmp_path / "ball.out.gif", Options(level=level))
    assert kind_of(tmp_path / "ball.out.gif") == "gif"
    assert report.output_bytes < src.stat().st_size * 0.85
    # Pillow dithered each source frame; a shared palette undoes the dither into bands
    # (SSIMULACRA2 56, where luma SSIM said 0.95): it is refused, whatever wins
    with Image.open(tmp_path / "ball.out.gif") as out:
        assert out.n_frames == len(f) and report.frames == len(f)
        got_durations, got = [], []
        for fr in ImageSequence.Iterator(out):
            got_durations.append(fr.info["duration"])
            got.append(fr.convert("RGB"))
        assert out.info.get("loop") == 0
    assert got_durations == durations
    floor = LEVELS[level_of(level)].score
    assert all(score(r, g) >= floor - 0.01 for r, g in zip(reference, got, strict=True))


def test_lossy_gif_shared_palette_on_flat_colours(tmp_path: Path) -> None:
    """An opaque UI animation with anti-aliased text: one shared palette keeps still pixels'
    indices (small changed rectangles) and holds the floor."""
    f = []
    for i in range(6):
        im = ui_screenshot(240, 180, gradient=False)
        ImageDraw.Draw(im).ellipse((180, 8, 200, 28), fill=(250, 200, 0) if i % 2 else
                                   (60, 200, 90))
        ImageDraw.Draw(im).text((30, 150), f"item {i}", fill=(40, 40, 40))
        f.append(im)
    src = tmp_path / "ui.gif"
    f[0].save(src, "GIF", save_all=True, append_images=f[1:], duration=100, loop=0,
              optimize=False)
    report = compress(src, tmp_path / "ui.out.gif", Options(level="extreme"))
    assert report.frames == 6 and report.output_bytes < src.stat().st_size
    assert report.score is not None and report.score >= LEVELS[Level.extreme].score


def lzw_code_sizes(data: bytes) -> list[int]:
    """Each image's LZW minimum code size, read by walking the GIF's blocks."""
    def skip(pos: int) -> int:
        while data[pos]:
            pos += 1 + data[pos]
        return pos + 1

    pos = 13 + ((3 << ((data[10] & 7) + 1)) if data[10] & 0x80 else 0)
    sizes = []
    while data[pos] != 0x3B:
        if data[pos] == 0x21:
            pos = skip(pos + 2)
            continue
        flags = data[pos + 9]
        pos += 10 + ((3 << ((flags & 7) + 1)) if flags & 0x80 else 0)
        sizes.append(data[pos])
        pos = skip(pos + 1)
    return sizes


def test_gif_frames_recoded_at_the_smallest_lzw_code_size(tmp_path: Path) -> None:
    from squeezer.engines.image import gif as gifmod

    f = frames(6)  # three colours: 2-bit codes instead of Pillow's 8
    buf = io.BytesIO()
    f[0].save(buf, "GIF", save_all=True, append_images=f[1:], duration=70, loop=0, optimize=True)
    plain = buf.getvalue()
    smaller = gifmod.min_code_size(plain)
    assert len(smaller) < len(plain)
    assert lzw_code_sizes(plain) == [8] * len(lzw_code_sizes(plain))
    assert max(lzw_code_sizes(smaller)) <= 2
    a, b = Image.open(io.BytesIO(plain)), Image.open(io.BytesIO(smaller))
    assert b.n_frames == a.n_frames == 6
    for x, y in zip(ImageSequence.Iterator(a), ImageSequence.Iterator(b), strict=True):
        assert x.info["duration"] == y.info["duration"] == 70
        assert np.array_equal(np.asarray(x.convert("RGBA")), np.asarray(y.convert("RGBA")))
    assert gifmod.min_code_size(b"not a gif") == b"not a gif"
    src = tmp_path / "anim.gif"
    src.write_bytes(plain)
    report = compress(src, tmp_path / "anim.out.gif", Options(level="lossless"))
    assert report.output_bytes <= len(smaller) and report.frames == 6


def test_png_raw_bytes_is_what_the_deflate_stream_holds() -> None:
    """The bound on the lossless level's slow packers is the inflated size of the rows (what
    zopfli has to work through), read from the header; checked against the real stream."""
    from squeezer.engines.image import png as pngmod

    rng = np.random.default_rng(5)
    for mode, shape in (("RGB", (37, 53, 3)), ("RGBA", (20, 31, 4)), ("L", (9, 70)),
                        ("LA", (16, 16, 2))):
        image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
        buf = io.BytesIO()
        image.save(buf, "PNG")
        data = buf.getvalue()
        idat, pos = b"", 8
        while pos < len(data):
            size = struct.unpack(">I", data[pos:pos + 4])[0]
            if data[pos + 4:pos + 8] == b"IDAT":
                idat += data[pos + 8:pos + 8 + size]
            pos += 12 + size
        assert pngmod.raw_bytes(data) == len(zlib.decompress(idat)), mode
    assert pngmod.raw_bytes(b"not a png") > pngmod.FINAL_MAX_RAW


def test_png_lossless_leaves_zopfli_to_small_images(tmp_path: Path) -> None:
    """zopfli's time grows with the rows it deflates: 1024 x 768 slides took 9-13 s each for
    4-6 % (11-15 s in all at ``lossless``).  Past :data:`png.ZOPFLI_MAX_RAW` the final pack
    is oxipng's level 4 alone; a small image still gets zopfli's smaller stream."""
    import oxipng

    from squeezer.engines.image import png as pngmod

    strip = oxipng.StripChunks.all()
    big = ui_screenshot(gradient=False).resize((1024, 768))
    data = pngmod.oxipng(save_bytes(big), keep=[], animated=False, optimize_alpha=False)
    assert pngmod.raw_bytes(data) > pngmod.ZOPFLI_MAX_RAW
    assert pngmod.final_pack(data, keep=[], animated=False, optimize_alpha=False) == min(
        data, oxipng.optimize_from_memory(data, level=pngmod.FINAL_LEVEL, strip=strip), key=len)
    small = pngmod.oxipng(save_bytes(ui_screenshot(gradient=False).crop((100, 50, 400, 300))),
                          keep=[], animated=False, optimize_alpha=False)
    assert pngmod.raw_bytes(small) <= pngmod.ZOPFLI_MAX_RAW
    level4 = oxipng.optimize_from_memory(small, level=pngmod.FINAL_LEVEL, strip=strip)
    assert len(pngmod.final_pack(small, keep=[], animated=False, optimize_alpha=False)) < \
        min(len(small), len(level4))


def save_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()
