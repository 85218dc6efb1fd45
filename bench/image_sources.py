"""The image bench's inputs: real images read in place from ``../shared/corpus`` (zip members of
the web bundles, office documents, e-books and archives), the PDF corpus' photographs, and
generated images for what the corpus lacks (CMYK, gray, animations, transparency, WebP).

Each input is ``(label, format, bytes, group)``; ``group`` is ``main`` (the per-type tables)
or ``gradient`` (the banding set: synthetic gradients and real skies).  Nothing is copied
into the repository.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms, ImageDraw

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus"

#: (zip under the corpus, member, label): real photographs, kept as their original JPEG bytes
PHOTOS = [
    ("archives/learning-area__structuring-a-page-of-content-start.zip",
     "structuring-a-page-of-content-start/favorite-3.jpg", "ibis (web)"),
    ("archives/learning-area__structuring-a-page-of-content-start.zip",
     "structuring-a-page-of-content-start/favorite-4.jpg", "pelican (web)"),
    ("docs/tika__2pic.docx", "word/media/image1.jpeg", "cat (docx)"),
    ("web/website-templates__coffee-shop-free-html5-template.zip",
     "coffee-shop-free-html5-template/assets/img/portfolio/folio02.jpg", "cake (web)"),
    ("web/website-templates__coffee-shop-free-html5-template.zip",
     "coffee-shop-free-html5-template/assets/img/portfolio/folio06.jpg", "latte (web)"),
    ("docs/poi__issue_51265_3.docx", "word/media/image1.jpeg", "seascape (docx)"),
    ("docs/phppresentation__Issue_00141.odp", "Pictures/100000000000078000000500FC85BBAD.jpg",
     "stools (odp)"),
    ("docs/poi__ca.ubc.cs.people_emhill_presentations_HowWeRefactor.pptx",
     "ppt/media/image8.jpeg", "statue (pptx)"),
    ("web/startbootstrap-clean-blog__dist.zip", "dist/assets/img/post-sample-image.jpg",
     "astronaut (web)"),
    ("docs/sigil__Sigil_Plugin_Framework_rev15.epub", "OEBPS/Images/Sigil_Plugins_Menu.jpg",
     "screenshot (epub)"),
]
#: real PNGs: screenshots, logos with alpha, gray+alpha, a photo saved as PNG
PNGS = [
    ("docs/sigil__Sigil_Plugin_Framework_rev15.epub", "OEBPS/Images/Manage_Plugins.png",
     "png screenshot RGBA (epub)"),
    ("archives/readium-test-files__chrome-app-2-30.0.zip",
     "chrome-app/images/about_readium_logo.png", "png logo RGBA (zip)"),
    ("archives/readium-test-files__chrome-app-2-30.0.zip", "chrome-app/icons/large.png",
     "png icon RGBA (zip)"),
    ("archives/learning-area__structuring-a-page-of-content-start.zip",
     "structuring-a-page-of-content-start/dove.png", "png gray+alpha (zip)"),
    ("docs/format-corpus__demoLibreOfficeImagePastedAsBitmap.odt",
     "Pictures/10000000000001F300000257D006F0C7.png", "png photo (odt)"),
    ("docs/readium-test-files__epub30-test-0130.epub", "EPUB/img/expected-multi-column.png",
     "png palette text (epub)"),
    ("docs/tika__testODT-TIKA-6000.odt", "Pictures/1000000000000400000003009B3728AE.png",
     "png slide (odt)"),
]
#: real skies and smooth backgrounds (the gradient set)
SKIES = [
    ("docs/odftoolkit__Text4.odt", "Pictures/100000000000025800000190B2D562FB.jpg", "lake sky"),
    ("docs/poi__issue_51265_3.docx", "word/media/image4.jpeg", "tree against the sky"),
    ("docs/tika__pic.xlsx", "xl/media/image2.jpeg", "lighthouse sunset"),
    ("docs/poi__KEY02.pptx", "ppt/media/image7.jpeg", "teal slide background"),
    ("docs/poi__KEY02.pptx", "ppt/media/image6.jpeg", "red slide background"),
    ("web/website-templates__coffee-shop-free-html5-template.zip",
     "coffee-shop-free-html5-template/assets/img/header_bg.jpg", "brown header background"),
]
CMYK_PROFILE = Path("/usr/share/color/icc/ghostscript/default_cmyk.icc")


def member(zip_path: str, name: str) -> bytes | None:
    try:
        with zipfile.ZipFile(CORPUS / zip_path) as zf:
            return zf.read(name)
    except (OSError, KeyError, zipfile.BadZipFile):
        return None


def _save(image: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _fit(image: Image.Image, most: int = 1_500_000) -> Image.Image:
    """Images over ``most`` pixels halved (the bench's timing target is for < 4 Mpx)."""
    while image.width * image.height > most:
        image = image.resize((image.width // 2, image.height // 2), Image.LANCZOS)
    return image


def jpeg_inputs(pdf_photos: list[tuple[str, Image.Image]]) -> Iterator[tuple[str, str, bytes]]:
    """The PDF corpus' photos saved as a camera would, the real photos, a gray and a CMYK one."""
    for label, image in pdf_photos:  # the PDF corpus' photos, saved as a camera would
        yield f"jpeg {label}", "jpg", _save(image.convert("RGB"), "JPEG", quality=92)
    for zip_path, name, label in PHOTOS:
        data = member(zip_path, name)
        if data is not None:
            yield f"jpeg {label}", "jpg", data
    photo = _photo()
    if photo is not None:
        yield "jpeg gray (from the ibis)", "jpg", _save(photo.convert("L"), "JPEG", quality=92)
        if CMYK_PROFILE.exists():
            profile = ImageCms.ImageCmsProfile(str(CMYK_PROFILE))
            cmyk = ImageCms.profileToProfile(photo, ImageCms.createProfile("sRGB"), profile,
                                             outputMode="CMYK")
            yield ("jpeg CMYK SWOP profile (the ibis)", "jpg",
                   _save(cmyk, "JPEG", quality=92, icc_profile=CMYK_PROFILE.read_bytes()))


def _photo() -> Image.Image | None:
    data = member(*PHOTOS[0][:2])
    return Image.open(io.BytesIO(data)).convert("RGB") if data else None


def png_inputs(generated: list[tuple[str, Image.Image]]) -> Iterator[tuple[str, str, bytes]]:
    for label, image in generated:
        yield label, "png", _save(image, "PNG", compress_level=6)
    for zip_path, name, label in PNGS:
        data = member(zip_path, name)
        if data is not None:
            yield label, "png", data
    f = transparent_frames()
    yield "png APNG transparent (generated)", "png", _save(
        f[0], "PNG", save_all=True, append_images=f[1:], duration=90, loop=0)


def transparent_frames(n: int = 9, w: int = 240, h: int = 180) -> list[Image.Image]:
    """A ball crossing a transparent canvas over a solid bar: issue 19's transparent GIF."""
    out = []
    for i in range(n):
        im = Image.new("RGBA", (w, h), (0, 0, 0, 0))
        d = ImageDraw.Draw(im)
        d.ellipse((10 + i * w // 12, h // 4, 10 + i * w // 12 + h // 3, h // 4 + h // 3),
                  fill=(220, 40, 40, 255))
        d.rectangle((0, h - 30, w - 1, h - 1), fill=(30, 120, 200, 255))
        d.text((8, h - 24), f"frame {i}", fill=(255, 255, 255, 255))
        out.append(im)
    return out


def gif_inputs(generated: list[tuple[str, bytes]]) -> Iterator[tuple[str, str, bytes]]:
    yield from ((label, "gif", data) for label, data in generated)
    f = transparent_frames()
    yield "gif transparent animation (9 frames)", "gif", _save(
        f[0], "GIF", save_all=True, append_images=f[1:], duration=90, loop=0, disposal=2)
    data = member("docs/odftoolkit__drawing_import_xml_MSO15.ods", "media/image57.gif")
    if data is not None:
        yield "gif still (ods)", "gif", data


def webp_inputs() -> Iterator[tuple[str, str, bytes]]:
    for zip_path, name, label in PHOTOS[2:5]:
        data = member(zip_path, name)
        if data is not None:
            image = _fit(Image.open(io.BytesIO(data)).convert("RGB"))
            yield f"webp {label} q90", "webp", _save(image, "WEBP", quality=90, method=4)
    data = member(*PNGS[1][:2])
    if data is not None:
        logo = Image.open(io.BytesIO(data)).convert("RGBA")
        yield "webp logo RGBA lossless", "webp", _save(logo, "WEBP", lossless=True)
    f = transparent_frames()
    yield "webp transparent animation", "webp", _save(
        f[0], "WEBP", save_all=True, append_images=f[1:], duration=90, loop=0, lossless=True)


def gradient_inputs() -> Iterator[tuple[str, str, bytes]]:
    """Synthetic gradients and real skies, each as a PNG and as a JPEG (q95)."""
    for label, image in synthetic_gradients() + real_skies():
        yield f"gradient {label} (png)", "png", _save(image, "PNG", compress_level=6)
        yield f"gradient {label} (jpeg q95)", "jpg", _save(image, "JPEG", quality=95)


def synthetic_gradients(w: int = 768, h: int = 512) -> list[tuple[str, Image.Image]]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack([x * 255 / w, y * 255 / h, 255 - x * 255 / w], -1)
    gray = np.repeat((x * 255 / w)[..., None], 3, -1)
    r = np.hypot(x - w / 2, y - h / 2) / np.hypot(w / 2, h / 2)
    radial = np.stack([30 + 60 * r, 60 + 80 * r, 140 + 100 * r], -1)
    dark = np.stack([20 + 30 * x / w, 50 + 40 * y / h, 60 + 40 * x / w], -1)
    sky = np.stack([90 + 120 * y / h, 140 + 90 * y / h, 230 - 10 * y / h], -1)
    out = []
    for label, a in (("synthetic RGB ramp", rgb), ("synthetic gray ramp", gray),
                     ("synthetic radial", radial), ("synthetic dark teal", dark),
                     ("synthetic sky", sky)):
        out.append((label, Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8))))
    return out


def real_skies() -> list[tuple[str, Image.Image]]:
    out = []
    for zip_path, name, label in SKIES:
        data = member(zip_path, name)
        if data is not None:
            out.append((f"{label} (real)", _fit(Image.open(io.BytesIO(data)).convert("RGB"),
                                                 800_000)))
    return out
