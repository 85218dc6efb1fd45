"""Issue 19's colour models, round trips and metadata: every one on generated files.

CMYK: the test builds its own small CMYK ICC profile (a lut16 A2B0 table whose inks are
deliberately unlike the textbook formula), so the test knows what the profile says each ink
mix looks like, independently of LittleCMS, and can tell "converted through the profile"
from "converted by the formula".  Chromium, which colour-manages CMYK JPEGs with skcms,
must then show the output as it shows the source.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageDraw, ImageSequence

from squeezer.engines import compress_any
from squeezer.engines.errors import ImageTooLargeError
from squeezer.engines.image import compress
from squeezer.engines.image.jpeg import components
from squeezer.engines.image.options import LEVELS
from squeezer.engines.image.quality import score
from squeezer.engines.level import Level
from squeezer.engines.limits import Limits
from squeezer.engines.options import Options

# --- a CMYK profile of our own -------------------------------------------------------------------


def ink_to_srgb(cmyk: np.ndarray) -> np.ndarray:
    """What the test profile says an ink mix (0..1, last axis C, M, Y, K) looks like, in
    sRGB 0..1: cyan leans green, magenta is warm, black is a cool dark grey (not the
    textbook 1 - ink, so a conversion that ignores the profile is visibly off)."""
    c, m, y, k = (cmyk[..., i] for i in range(4))
    r = (1 - 0.95 * c - 0.10 * m) * (1 - 0.85 * k)
    g = (1 - 0.55 * c - 0.90 * m - 0.05 * y) * (1 - 0.80 * k)
    b = (1 - 0.25 * c - 0.45 * m - 0.92 * y) * (1 - 0.75 * k)
    return np.clip(np.stack([r, g, b], -1), 0, 1)


def _srgb_to_lab_d50(rgb: np.ndarray) -> np.ndarray:
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4360747, 0.3850649, 0.1430804],  # sRGB to XYZ, Bradford-adapted to D50
                  [0.2225045, 0.7168786, 0.0606169],
                  [0.0139322, 0.0971045, 0.7141733]])
    xyz = lin @ m.T / np.array([0.9642, 1.0, 0.8249])

    def f(t: np.ndarray) -> np.ndarray:
        return np.where(t > (6 / 29) ** 3, np.cbrt(t), t / (3 * (6 / 29) ** 2) + 4 / 29)

    fx, fy, fz = f(xyz[..., 0]), f(xyz[..., 1]), f(xyz[..., 2])
    return np.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], -1)


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def cmyk_profile(grid: int = 9) -> bytes:
    """An ICC v2 output profile, CMYK to Lab, with one lut16 (A2B0) sampled from
    :func:`ink_to_srgb` on a ``grid``^4 lattice."""
    axis = np.linspace(0, 1, grid)
    c, m, y, k = np.meshgrid(axis, axis, axis, axis, indexing="ij")
    lab = _srgb_to_lab_d50(ink_to_srgb(np.stack([c, m, y, k], -1))).reshape(-1, 3)
    enc = np.stack([lab[:, 0] / 100 * 0xFF00, (lab[:, 1] + 128) * 256,
                    (lab[:, 2] + 128) * 256], -1)
    clut = np.clip(np.round(enc), 0, 0xFFFF).astype(">u2").tobytes()
    ramp = np.round(np.linspace(0, 0xFFFF, 2)).astype(">u2").tobytes()
    a2b0 = (b"mft2" + bytes(4) + bytes([4, 3, grid, 0])
            + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
            + struct.pack(">HH", 2, 2) + ramp * 4 + clut + ramp * 3)
    name = b"Squeezer test CMYK"
    desc = (b"desc" + bytes(4) + struct.pack(">I", len(name) + 1) + name + b"\0"
            + bytes(8) + bytes(3) + bytes(67))
    wtpt = b"XYZ " + bytes(4) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    cprt = b"text" + bytes(4) + b"no copyright, test data\0"
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += bytes(-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"prtr" + b"CMYK"
              + b"Lab " + bytes(12) + b"acsp" + bytes(4) + bytes(4) + bytes(4) + bytes(4)
              + bytes(8) + struct.pack(">I", 0) + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
              + bytes(4) + bytes(16) + bytes(28))
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def cmyk_photo(w: int = 160, h: int = 120) -> np.ndarray:
    """Smooth ink ramps and patches (0..255 ink amounts, C M Y K)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ink = np.stack([255 * xx / w, 255 * yy / h, 200 * (1 - xx / w), 60 + 0 * xx], -1)
    ink[10:50, 10:60] = (0, 220, 200, 0)    # red
    ink[60:110, 90:150] = (230, 0, 30, 20)  # cyan-green
    return ink.astype(np.uint8)


@pytest.fixture(scope="module")
def cmyk_jpeg(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    ink = cmyk_photo()
    path = tmp_path_factory.mktemp("cmyk") / "cmyk.jpg"
    # Pillow writes CMYK as Adobe does: an APP14 marker and inverted samples
    Image.fromarray(ink, "CMYK").save(path, "JPEG", quality=95, icc_profile=cmyk_profile())
    return path, ink


def test_cmyk_jpeg_converted_through_its_profile_and_the_profile_dropped(
        cmyk_jpeg: tuple[Path, np.ndarray], tmp_path: Path) -> None:
    src, _ink = cmyk_jpeg
    assert b"Adobe" in src.read_bytes()[:200], "an Adobe APP14 (inverted) CMYK JPEG"
    with Image.open(src) as im:
        assert im.mode == "CMYK" and im.info.get("icc_profile")
        decoded_ink = np.asarray(im)
    report = compress(src, tmp_path / "out.jpg", Options())
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.mode == "RGB" and not out.info.get("icc_profile"), "sRGB, untagged"
        got = np.asarray(out).astype(np.float32)
    assert any("through its ICC profile (Squeezer test CMYK)" in a for a in report.actions)
    assert report.output_bytes < src.stat().st_size
    expected = ink_to_srgb(decoded_ink.astype(np.float32) / 255) * 255
    naive = np.asarray(Image.fromarray(decoded_ink, "CMYK").convert("RGB")).astype(np.float32)
    assert np.abs(got - expected).mean() < 4, "what the profile says"
    assert np.abs(naive - expected).mean() > 15, "the textbook formula would be far off"
    assert report.input is not None and report.input.icc_profile == "Squeezer test CMYK"


def ycck_jpeg(path: Path, ink: np.ndarray, icc: bytes | None) -> Path:
    """A YCCK JPEG as Photoshop writes one: Adobe APP14 with transform 2, the inks inverted
    and C, M, Y stored as YCbCr.  libjpeg decodes YCCK to inverted CMYK and Pillow undoes
    the inversion, so stored = (YCbCr of C M Y, 255 - K); Pillow's CMYK writer inverts what
    it is given, and libjpeg's APP14 transform byte is then set to 2."""
    c, m, y, k = (ink[..., i].astype(np.float64) for i in range(4))
    stored = np.stack([0.299 * c + 0.587 * m + 0.114 * y,
                       -0.168736 * c - 0.331264 * m + 0.5 * y + 128,
                       0.5 * c - 0.418688 * m - 0.081312 * y + 128, 255 - k], -1)
    given = np.clip(np.round(255 - stored), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(given, "CMYK").save(buf, "JPEG", quality=95,
                                        **({"icc_profile": icc} if icc else {}))
    data = bytearray(buf.getvalue())
    at = data.index(b"Adobe") + 11
    assert data[at] == 0
    data[at] = 2
    path.write_bytes(bytes(data))
    return path


def test_ycck_jpeg_converted_through_its_profile(tmp_path: Path) -> None:
    ink = cmyk_photo()
    src = ycck_jpeg(tmp_path / "ycck.jpg", ink, cmyk_profile())
    with Image.open(src) as im:
        assert im.mode == "CMYK" and im.info.get("adobe_transform") == 2
        decoded_ink = np.asarray(im)
    assert np.abs(decoded_ink.astype(np.float32) - ink).mean() < 2, "a faithful YCCK file"
    report = compress(src, tmp_path / "out.jpg", Options())
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.mode == "RGB" and not out.info.get("icc_profile")
        got = np.asarray(out).astype(np.float32)
    expected = ink_to_srgb(decoded_ink.astype(np.float32) / 255) * 255
    assert np.abs(got - expected).mean() < 4, "what the profile says"
    assert any("through its ICC profile" in a for a in report.actions)
    assert report.output_bytes < src.stat().st_size


def test_cmyk_jpeg_without_a_profile_uses_the_formula(tmp_path: Path) -> None:
    ink = cmyk_photo()
    src = tmp_path / "plain.jpg"
    Image.fromarray(ink, "CMYK").save(src, "JPEG", quality=95)
    report = compress(src, tmp_path / "out.jpg", Options())
    with Image.open(src) as im:
        naive = np.asarray(im.convert("RGB")).astype(np.float32)
    with Image.open(tmp_path / "out.jpg") as out:
        assert out.mode == "RGB"
        assert np.abs(np.asarray(out).astype(np.float32) - naive).mean() < 4
    assert any("standard formula" in a for a in report.actions)


def test_cmyk_jpeg_in_chromium_looks_like_the_source(cmyk_jpeg: tuple[Path, np.ndarray],
                                                     chromium: Any, tmp_path: Path) -> None:
    """Chromium shows the source through its CMYK profile (skcms) and the output as sRGB.

    The old output (the formula's RGB with the CMYK profile still attached, which Chromium
    ignores on an RGB JPEG) was shown as the formula: far from the source.  The output now
    follows the profile as LittleCMS reads it; skcms reads the same profile a little
    differently where black ink is mixed in (measured: 7.5 levels mean on Ghostscript's SWOP
    profile, 15-19 on this test profile, 0-3 where there is no black), so the check is that
    the output is far closer to the source than the formula, and equal where K is 0."""
    src, _ = cmyk_jpeg
    out = tmp_path / "out.jpg"
    compress(src, out, Options())
    page_file = tmp_path / "page.html"
    style = "margin:0;display:block;image-rendering:pixelated"
    page_file.write_text(f'<html><body style="margin:0;background:#fff">'
                         f'<img id="a" src="{src.as_uri()}" style="{style}">'
                         f'<img id="b" src="{out.as_uri()}" style="{style}"></body></html>')
    naive = tmp_path / "naive.png"
    with Image.open(src) as im:
        im.convert("RGB").save(naive)
    page_file.write_text(page_file.read_text().replace(
        "</body>", f'<img id="c" src="{naive.as_uri()}" style="{style}"></body>'))
    page = chromium.new_page(viewport={"width": 400, "height": 500})
    page.goto(page_file.as_uri())
    page.wait_for_function("Array.from(document.images).every("
                           "i => i.complete && i.naturalWidth > 0)")
    a, b, c = (np.asarray(Image.open(io.BytesIO(page.locator(f"#{i}").screenshot()))
                          .convert("RGB")).astype(np.float32) for i in ("a", "b", "c"))
    page.close()
    assert a.shape == b.shape == c.shape
    assert np.abs(a - 255).mean() > 30, "the source was drawn (not an empty image)"
    ours, formula = np.abs(a - b).mean(), np.abs(a - c).mean()
    assert ours < 0.5 * formula, (ours, formula)
    no_black = cmyk_photo()[..., 3] == 0
    assert np.abs(a - b)[no_black].mean() < 4, "equal where there is no black ink"


# --- gray, 16-bit, alpha, palettes, animations --------------------------------------------------


def test_gray_jpeg_stays_one_component(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:240, 0:320]
    gray = Image.fromarray(((xx * 0.6 + yy * 0.3 + 20 * np.sin(xx / 7.0)) % 256)
                           .astype(np.uint8), "L")
    src = tmp_path / "gray.jpg"
    gray.save(src, "JPEG", quality=95)
    compress(src, tmp_path / "out.jpg", Options())
    assert components((tmp_path / "out.jpg").read_bytes()) == 1
    # a gray picture saved as colour is written gray too (one component, not 4:4:4)
    colour = tmp_path / "rgb-gray.png"
    gray.convert("RGB").save(colour, "PNG")
    report = compress(colour, tmp_path / "from-png.jpg", Options(format="jpeg"))
    data = (tmp_path / "from-png.jpg").read_bytes()
    assert components(data) == 1 and "gray" in report.actions[-1]
    assert report.score is not None and report.score >= LEVELS[Level.medium].score - 0.01


def test_16_bit_png_round_trips(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:120, 0:160]
    deep = (xx * 400 + yy * 13).astype(np.uint16)
    src = tmp_path / "deep.png"
    Image.fromarray(deep).save(src, "PNG")
    with Image.open(src) as im:
        assert im.mode.startswith("I;16") or im.mode == "I"
    lossless = compress(src, tmp_path / "lossless.png", Options(level="lossless"))
    with Image.open(tmp_path / "lossless.png") as out:
        assert np.array_equal(np.asarray(out).astype(np.uint16), deep), "16 bits kept"
    assert lossless.input is not None and lossless.input.bit_depth == 16
    compress(src, tmp_path / "lossy.png", Options())
    with Image.open(tmp_path / "lossy.png") as out:
        got = np.asarray(out.convert("I")).astype(np.float64)
        if got.max() <= 255:
            got = got * 257
        assert out.size == (160, 120) and np.abs(got - deep).mean() < 2 * 257


def test_gray_alpha_and_palette_transparency_round_trip(tmp_path: Path) -> None:
    la = Image.new("LA", (120, 90), (0, 0))
    ImageDraw.Draw(la).ellipse((10, 10, 110, 80), fill=(200, 255))
    ImageDraw.Draw(la).rectangle((40, 30, 80, 60), fill=(60, 128))
    src = tmp_path / "la.png"
    la.save(src, "PNG")
    compress(src, tmp_path / "la.out.png", Options())
    with Image.open(tmp_path / "la.out.png") as out:
        a = np.asarray(out.convert("RGBA"))
    ref = np.asarray(la.convert("RGBA"))
    assert np.array_equal(a[..., 3] > 0, ref[..., 3] > 0) and abs(int(a[45, 60, 3]) - 128) < 8
    pal = Image.new("P", (120, 90), 0)
    pal.putpalette([0, 0, 0, 250, 60, 20, 20, 90, 200] + [0] * 759)
    ImageDraw.Draw(pal).rectangle((20, 20, 100, 70), fill=1)
    ImageDraw.Draw(pal).line((0, 0, 119, 89), fill=2, width=5)
    src = tmp_path / "trns.png"
    pal.save(src, "PNG", transparency=0)
    compress(src, tmp_path / "trns.out.png", Options())
    with Image.open(tmp_path / "trns.out.png") as out:
        got = np.asarray(out.convert("RGBA"))
    with Image.open(src) as im:
        want = np.asarray(im.convert("RGBA"))
    assert (want[..., 3] == 0).any()
    assert np.array_equal(got[..., 3] == 0, want[..., 3] == 0)
    assert np.array_equal(got[want[..., 3] > 0], want[want[..., 3] > 0])


def test_antialiased_alpha_gets_a_palette_and_keeps_its_clear_pixels(tmp_path: Path) -> None:
    """An exact alpha mask at 128 failed every palette of an anti-aliased logo (an edge pixel
    of 126 became 130), so such logos stayed lossless; now only pixels clearly transparent
    (alpha <= 63) or clearly opaque (>= 192) must stay on their side, and SSIMULACRA2 over a
    dark and a light background judges the edge."""
    big = Image.new("RGBA", (640, 480), (0, 0, 0, 0))
    d = ImageDraw.Draw(big)
    d.ellipse((40, 40, 600, 440), fill=(230, 80, 40, 255))
    d.ellipse((200, 140, 440, 340), fill=(255, 255, 255, 200))
    d.rectangle((80, 200, 560, 260), fill=(20, 90, 200, 255))
    logo = big.resize((160, 120), Image.Resampling.LANCZOS)  # soft, anti-aliased edges
    want = np.asarray(logo)[..., 3]
    assert ((want > 63) & (want < 192)).any(), "the edges are half-transparent"
    src = tmp_path / "logo.png"
    logo.save(src, "PNG")
    report = compress(src, tmp_path / "out.png", Options())
    assert "palette" in report.actions[-1], report.actions
    assert report.output_bytes < src.stat().st_size
    assert report.score is not None and report.score >= LEVELS[Level.medium].score
    with Image.open(tmp_path / "out.png") as out:
        got = np.asarray(out.convert("RGBA"))[..., 3]
    assert not ((want <= 63) & (got >= 128)).any() and not ((want >= 192) & (got < 128)).any()


def _transparent_frames(n: int = 9) -> list[Image.Image]:
    out = []
    for i in range(n):
        im = Image.new("RGBA", (120, 90), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        d.ellipse((10 + i * 8, 20, 50 + i * 8, 60), fill=(220, 40, 40, 255))
        d.rectangle((0, 70, 119, 89), fill=(30, 120, 200, 255))
        out.append(im)
    return out


@pytest.mark.parametrize("level", ["lossless", "medium", "extreme"])
def test_transparent_animated_gif_stays_transparent_with_every_frame(tmp_path: Path,
                                                                     level: str) -> None:
    """Issue 19: a 9-frame transparent GIF came out opaque (a dark background in a browser)
    while its report claimed SSIM 0.99985 and 30 frames."""
    f = _transparent_frames()
    src = tmp_path / "t.gif"
    f[0].save(src, "GIF", save_all=True, append_images=f[1:], duration=90, loop=0, disposal=2)
    report = compress(src, tmp_path / "t.out.gif", Options(level=level))
    with Image.open(tmp_path / "t.out.gif") as out:
        got = [fr.convert("RGBA") for fr in ImageSequence.Iterator(out)]
    assert len(got) == 9 and report.frames == 9
    assert report.input is not None and report.input.frames == 9
    for a, b in zip(f, got, strict=True):
        alpha = np.asarray(b)[..., 3]
        assert np.array_equal(alpha == 0, np.asarray(a)[..., 3] == 0), "transparency kept"
    assert report.output_bytes <= src.stat().st_size


def test_apng_and_animated_webp_keep_frames_and_timing(tmp_path: Path) -> None:
    f = [im.convert("RGBA") for im in _transparent_frames(5)]
    durations = [50, 100, 150, 100, 50]
    apng = tmp_path / "a.png"
    f[0].save(apng, "PNG", save_all=True, append_images=f[1:], duration=durations, loop=0)
    report = compress(apng, tmp_path / "a.out.png", Options())
    with Image.open(tmp_path / "a.out.png") as out:
        got = [(fr.info.get("duration"), np.asarray(fr.convert("RGBA")))
               for fr in ImageSequence.Iterator(out)]
        assert len(got) == 5 == report.frames
        assert [d for d, _ in got] == durations
        assert all(a[0, 0, 3] == 0 and a[40, 20, 3] == 255 for _, a in got[:1])
    webp = tmp_path / "a.webp"
    f[0].save(webp, "WEBP", save_all=True, append_images=f[1:], duration=durations, loop=0,
              lossless=True)
    report = compress(webp, tmp_path / "a.out.webp", Options())
    with Image.open(tmp_path / "a.out.webp") as out:
        assert out.n_frames == 5 == report.frames
        first = np.asarray(next(iter(ImageSequence.Iterator(out))).convert("RGBA"))
        assert first[0, 0, 3] == 0, "transparent stays transparent"


# --- metadata ------------------------------------------------------------------------------------


def _tagged_jpeg(path: Path) -> Path:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8298] = "(c) A Photographer"
    exif[0x013B] = "A Photographer"
    exif[0x010F] = "CameraMaker"
    exif[0x8825] = {1: "N", 2: (48.0, 51.0, 0.0)}
    yy, xx = np.mgrid[0:200, 0:300]
    im = Image.fromarray(np.stack([xx % 256, yy % 256, (xx + yy) % 256], -1).astype(np.uint8))
    im.save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


def test_metadata_copyright_kept_unless_removal_is_asked(tmp_path: Path) -> None:
    src = _tagged_jpeg(tmp_path / "tagged.jpg")
    report = compress(src, tmp_path / "out.jpg", Options())
    with Image.open(tmp_path / "out.jpg") as out:
        exif = out.getexif()
        assert out.size == (200, 300), "orientation applied"
        assert exif.get(0x8298) == "(c) A Photographer" and exif.get(0x013B) == "A Photographer"
        assert 0x010F not in exif and not exif.get_ifd(0x8825) and exif.get(0x0112) in (None, 1)
    assert report.metadata_kept == ["copyright"] and "exif" in report.metadata_removed
    removed = compress(src, tmp_path / "bare.jpg", Options(remove_metadata=True))
    with Image.open(tmp_path / "bare.jpg") as out:
        assert not out.getexif().get(0x8298) and not out.getexif().get(0x013B)
    assert "copyright" in removed.metadata_removed and removed.metadata_kept == []


def test_remove_metadata_is_not_reported_as_ignored_for_images(tmp_path: Path) -> None:
    src = _tagged_jpeg(tmp_path / "tagged.jpg")
    report = compress_any(src, tmp_path / "out.jpg", {"remove_metadata": True})
    assert not any("ignored" in w for w in report.warnings), report.warnings
    assert "copyright" in report.metadata_removed


def test_bomb_errors_quote_our_limit(tmp_path: Path) -> None:
    src = tmp_path / "big.png"
    Image.new("L", (3000, 2000)).save(src, "PNG")
    with pytest.raises(ImageTooLargeError, match="limit of 5000000 pixels"):
        compress(src, tmp_path / "out.png", limits=Limits(max_image_pixels=5_000_000))
    # Pillow's own check (it refuses at twice its threshold) must agree with ours
    with pytest.raises(ImageTooLargeError) as caught:
        compress(src, tmp_path / "out.png", limits=Limits(max_image_pixels=4_000_000))
    assert "4000000" in str(caught.value) and "8000000" not in str(caught.value)


def test_profile_round_trip_reads_back_with_littlecms() -> None:
    """The test profile itself is valid ICC (LittleCMS opens it and agrees with it)."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(cmyk_profile()))
    assert profile.profile.xcolor_space.strip() == "CMYK"
    ink = np.array([[[0, 220, 200, 0]]], np.uint8)
    rgb = ImageCms.profileToProfile(Image.fromarray(ink, "CMYK"), profile,
                                    ImageCms.createProfile("sRGB"), outputMode="RGB")
    want = ink_to_srgb(ink.astype(np.float32) / 255)[0, 0] * 255
    assert np.abs(np.asarray(rgb)[0, 0] - want).max() < 6
    assert score(Image.fromarray(np.full((32, 32, 3), 128, np.uint8)),
                 Image.fromarray(np.full((32, 32, 3), 128, np.uint8))) == 100.0
