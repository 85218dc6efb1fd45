"""Synthetic scanned pages and PDFs for the scan engine's tests (issue 5).

A real scan is a page of text as a scanner saw it: paper that is not quite
white, ink that is not quite black, anti-aliased edges from the optics, sensor
noise, sometimes a colour stamp or a photograph pasted in, and often an
invisible OCR text layer on top.  The generators below make such pages
deterministically (one ``seed`` each) and fast (vectorised numpy and Pillow,
no per-pixel Python), so tests can check that the scan step classifies,
re-encodes and keeps the text of every kind of page.

``render_scan`` returns the image *and* where each word was drawn; ``scan_pdf``
uses those positions for the OCR layer the way OCRmyPDF does (Helvetica in
text rendering mode 3, each word stretched with ``Tz`` to its box), so PDFium
extracts the words and renders nothing of them.

The only engine import is the G4 coder (:func:`squeezer.engines.pdf.ccitt.encode_g4`),
the same libtiff strip extraction a fixture would otherwise duplicate.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pikepdf
from pdfgen import add_page, find_ttf, helvetica, text_ops
from pikepdf import Dictionary, Name, Stream
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from squeezer.engines.pdf.ccitt import encode_g4

KINDS = ("bitonal", "gray", "color", "photo")

#: Real English (ASCII, no PDF string specials), wrapped and repeated to fill a page.
TEXT = (
    "Dear customer, thank you for your letter of the twelfth. We have checked the account "
    "and found that the payment was received on time, but the amount was booked against "
    "the wrong invoice. The balance shown on your last statement is therefore not correct. "
    "Please find enclosed a corrected statement together with a copy of the original "
    "receipt. If you have any further questions about this matter, do not hesitate to "
    "call our office between nine and five on any working day. We apologise for the "
    "trouble this has caused and hope to continue serving you in the coming year."
)
PARAGRAPH = TEXT.split()

PAPER: dict[str, Any] = {"bitonal": 255, "gray": 236, "color": (246, 239, 222)}
#: Ink by paragraph, in turn: colour pages alternate black and dark blue.
INKS: dict[str, tuple[Any, ...]] = {"bitonal": (0,), "gray": (44,),
                                    "color": ((18, 18, 22), (24, 40, 110))}
STAMP_RED = (196, 32, 44)
NOISE_SIGMA = 6.0
#: A 3 x 3 binomial blur (Gaussian, sigma ~0.7 px): 2.5x faster than GaussianBlur.
_OPTICS = ImageFilter.Kernel((3, 3), [1, 2, 1, 2, 4, 2, 1, 2, 1])

#: Helvetica advance widths (1/1000 em) of the letters used; others count as 556.
_HELV = dict(zip("abcdefghijklmnopqrstuvwxyz,. ", [
    556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, 556, 556,
    333, 500, 278, 556, 500, 722, 500, 500, 500, 278, 278, 278]))
_HELV.update(dict(zip("DIPTW", [722, 278, 667, 611, 944])))


@dataclass(frozen=True)
class Word:
    text: str
    x: float  #: left edge, pixels from the image's left
    width: float  #: pixels


@dataclass(frozen=True)
class Line:
    words: tuple[Word, ...]
    baseline: float  #: pixels from the image's top
    size: float  #: font size, pixels

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


@dataclass
class Scan:
    image: Image.Image
    lines: list[Line]
    dpi: int


# --- fonts and text layout ---------------------------------------------------------------


def _font(px: int) -> ImageFont.FreeTypeFont:
    """A scalable font at ``px`` pixels: Pillow's bundled one (Pillow >= 10.1 built with
    FreeType, as every wheel is), else a DejaVu TrueType font of the system."""
    try:
        font = ImageFont.load_default(size=px)
        if isinstance(font, ImageFont.FreeTypeFont):
            return font
    except (TypeError, OSError, ImportError):
        pass
    ttf = find_ttf()
    if ttf is None:
        raise RuntimeError("scan fixtures need Pillow with FreeType or a TrueType font")
    return ImageFont.truetype(str(ttf), px)


def _layout(font: ImageFont.FreeTypeFont, px: int, dpi: int, size: tuple[int, int], seed: int,
            hole: tuple[int, int, int, int] | None) -> list[tuple[Line, int]]:
    """Word-wrapped lines filling the page inside 1 inch margins, paragraphs of 7 lines;
    lines beside ``hole`` (x0, y0, x1, y1) stop short of it.  Returns (line, paragraph)."""
    width, height = size
    margin, leading = dpi, round(px * 1.3)
    gap = font.getlength(" ")
    start = (seed * 17) % len(PARAGRAPH)
    words = PARAGRAPH[start:] + PARAGRAPH[:start]
    out: list[tuple[Line, int]] = []
    i, baseline, count = 0, margin + px, 0
    while baseline < height - margin:
        right = width - margin
        if hole and baseline + leading * 0.3 > hole[1] and baseline - px < hole[3]:
            right = hole[0] - dpi // 6
        x, placed = float(margin), []
        while True:
            word = words[i % len(words)]
            w = font.getlength(word)
            if x + w > right and placed:
                break
            placed.append(Word(word, x, w))
            x += w + gap
            i += 1
        out.append((Line(tuple(placed), float(baseline), float(px)), count // 7))
        count += 1
        baseline += leading * (2 if count % 7 == 0 else 1)
    return out


# --- page pieces -----------------------------------------------------------------------------


def _noise(arr: np.ndarray, rng: np.random.Generator, sigma: float = NOISE_SIGMA) -> np.ndarray:
    """Sensor noise: the sum of three uniform integers in [-k, k] (near-Gaussian, standard
    deviation sqrt(k(k+1)) ~ ``sigma``), in integers: half the time of float normals."""
    k = max(1, round(sigma))
    noise = rng.integers(-k, k + 1, arr.shape, dtype=np.int8)
    noise += rng.integers(-k, k + 1, arr.shape, dtype=np.int8)
    noise += rng.integers(-k, k + 1, arr.shape, dtype=np.int8)
    out = arr.astype(np.int16)
    out += noise
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def _smooth_field(rng: np.random.Generator, size: tuple[int, int], cells: int,
                  channels: int = 3) -> np.ndarray:
    """Random values on a coarse grid ``cells`` across, bicubically enlarged to ``size``:
    smooth variation at that scale.  H x W x ``channels`` float32, 0..255."""
    w, h = size
    coarse = rng.integers(0, 256, (max(2, cells * h // w), cells, channels), dtype=np.uint8)
    image = Image.fromarray(coarse if channels == 3 else coarse[..., 0])
    field = np.asarray(image.resize(size, Image.BICUBIC), dtype=np.float32)
    return field if channels == 3 else field[..., None]


def photo_patch(size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """An RGB 'photograph' of ``size`` (w, h): a colour gradient, soft colour blobs,
    luminance texture at two scales, and noise.

    The picture is made at most ~800 px across and enlarged (photographs are smooth);
    the noise is added at full size, like a scanner's.
    """
    rng = np.random.default_rng(seed + 101)
    full = size
    scale = max(1, -(-max(size) // 800))
    size = (-(-full[0] // scale), -(-full[1] // scale))
    w, h = size
    x = np.linspace(0, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, h, dtype=np.float32)[:, None]
    wave = 50 * np.sin(x * 9 + seed)[..., None] * np.cos(y * 7)[..., None]
    gradient = np.stack(np.broadcast_arrays(200 * x, 180 * y, 120 + 0 * x * y), axis=-1) + wave
    texture = 0.3 * (_smooth_field(rng, size, max(4, w // 30), 1) - 127) \
        + 0.15 * (_smooth_field(rng, size, max(8, w // 6), 1) - 127)
    img = np.clip(0.6 * gradient + 0.4 * _smooth_field(rng, size, 5) + texture, 0, 255)
    picture = Image.fromarray(img.astype(np.uint8))
    if scale > 1:
        picture = picture.resize(full, Image.BICUBIC)
    return _noise(np.asarray(picture), rng, 4.0)


def _stamp(dpi: int, text: tuple[str, str] = ("RECEIVED", "12 MAR 2024")) -> Image.Image:
    """An L mask (255 = ink) of a rubber stamp: two rings with text inside, tilted."""
    d = round(1.7 * dpi)
    mask = Image.new("L", (d, d), 0)
    draw = ImageDraw.Draw(mask)
    ring = max(2, dpi // 40)
    draw.ellipse((ring, ring, d - ring, d - ring), outline=235, width=ring)
    inner = d // 9
    draw.ellipse((inner, inner, d - inner, d - inner), outline=235, width=max(1, ring // 2))
    big, small = _font(round(d * 0.15)), _font(round(d * 0.09))
    draw.text((d / 2, d * 0.47), text[0], font=big, fill=235, anchor="ms")
    draw.text((d / 2, d * 0.64), text[1], font=small, fill=235, anchor="ms")
    return mask.rotate(14, resample=Image.BICUBIC, expand=True)


def _multiply_ink(page: np.ndarray, mask: Image.Image, colour: tuple[int, ...], at: tuple[int, int],
                  strength: float = 0.85) -> None:
    """Stamp ink multiplies what is under it (text shows through), like real ink on paper."""
    x, y = max(0, at[0]), max(0, at[1])
    region = page[y : y + mask.height, x : x + mask.width]
    h, w = region.shape[:2]
    m = np.asarray(mask, dtype=np.float32)[:h, :w] / 255 * strength
    if region.ndim == 3:
        m = m[..., None]
    tint = np.asarray(colour, dtype=np.float32) / 255
    region[...] = (region * (1 - m * (1 - tint))).astype(np.uint8)


# --- whole scans -----------------------------------------------------------------------------


def render_scan(kind: str, dpi: int = 300, size_in: tuple[float, float] = (8.5, 11), seed: int = 0,
                stamp: bool = False, photo: bool = False) -> Scan:
    """A scanned page image of ``kind`` (see :data:`KINDS`) and the text lines drawn on it.

    ``stamp`` and ``photo`` apply to "gray" and "color" pages (a gray page gets them
    in gray); a "photo" page is one photograph and has no text.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}")
    size = (round(size_in[0] * dpi), round(size_in[1] * dpi))
    rng = np.random.default_rng(seed)
    if kind == "photo":
        return Scan(Image.fromarray(photo_patch(size, seed)), [], dpi)
    px = round(11 * dpi / 72)
    font = _font(px)
    hole = None
    if photo and kind != "bitonal":
        side = min(2 * dpi, size[0] // 3, size[1] // 2)
        top = min(round(4.2 * dpi), size[1] - side - dpi // 4)
        right = min(size[0] - dpi, size[0] - dpi // 4)
        hole = (right - side, top, right, top + side)
    lines = _layout(font, px, dpi, size, seed, hole)
    mode = "RGB" if kind == "color" else "L"
    page = Image.new(mode, size, PAPER[kind])
    draw = ImageDraw.Draw(page)
    inks = INKS[kind]
    for line, para in lines:
        draw.text((line.words[0].x, line.baseline), line.text, font=font,
                  fill=inks[para % len(inks)], anchor="ls")
    if kind == "bitonal":
        arr = np.asarray(page) < 128
        specks = rng.integers(0, [size[1] - 2, size[0] - 2], (size[0] * size[1] // 40000, 2))
        arr[specks[:, 0], specks[:, 1]] = True  # scanner dust
        return Scan(Image.fromarray(~arr), [line for line, _ in lines], dpi)
    page = page.filter(_OPTICS)  # the scanner's optics: anti-aliased edges
    arr = np.array(page)
    if hole:
        patch = photo_patch((hole[2] - hole[0], hole[3] - hole[1]), seed)
        if mode == "L":
            patch = np.asarray(Image.fromarray(patch).convert("L"))
        arr[hole[1] : hole[3], hole[0] : hole[2]] = patch
    if stamp:
        mask = _stamp(dpi)
        colour = STAMP_RED if mode == "RGB" else (110,)
        _multiply_ink(arr, mask, colour, (size[0] - dpi - mask.width, dpi // 2))
    return Scan(Image.fromarray(_noise(arr, rng)), [line for line, _ in lines], dpi)


def scan_image(kind: str, dpi: int = 300, size_in: tuple[float, float] = (8.5, 11), seed: int = 0,
               stamp: bool = False, photo: bool = False) -> Image.Image:
    """The page image of :func:`render_scan`: mode "1" (bitonal), "L" (gray), else "RGB"."""
    image = render_scan(kind, dpi, size_in, seed, stamp, photo).image
    return image.convert("1") if kind == "bitonal" else image


# --- PDFs ------------------------------------------------------------------------------------


def _image_xobject(pdf: pikepdf.Pdf, image: Image.Image, bitonal: bool,
                   jpeg_quality: int) -> Stream:
    """Bitonal as CCITT G4 (ink = sample 0, /BlackIs1 false), gray and colour as baseline JPEG."""
    width, height = image.size
    if bitonal:
        data = encode_g4(np.asarray(image.convert("L")) < 128)
        filt, bpc, cs = Name.CCITTFaxDecode, 1, Name.DeviceGray
        parms = Dictionary(K=-1, Columns=width, Rows=height, BlackIs1=False)
    else:
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=jpeg_quality)
        data, filt, bpc, parms = buf.getvalue(), Name.DCTDecode, 8, None
        cs = Name.DeviceGray if image.mode == "L" else Name.DeviceRGB
    stream = Stream(pdf, data)
    stream.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Image, Width=width,
                                    Height=height, ColorSpace=cs, BitsPerComponent=bpc, Filter=filt)
    if parms is not None:
        stream.DecodeParms = parms
    return pdf.make_indirect(stream)


def _escape(text: str) -> bytes:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode("latin-1")


def ocr_ops(lines: list[Line], dpi: float, page_height: float, font: str = "/F1") -> bytes:
    """An invisible text layer (``3 Tr``) with every word at its box, as OCRmyPDF writes one:
    Helvetica at the line's size, horizontally scaled (``Tz``) to the word's drawn width."""
    k = 72 / dpi
    out = [b"BT 3 Tr"]
    for line in lines:
        size = line.size * k
        out.append(f"{font} {size:.2f} Tf".encode())
        for word in line.words:
            natural = sum(_HELV.get(ch, 556) for ch in word.text) / 1000 * size
            tz = 100 * word.width * k / natural if natural else 100
            out.append(f"{tz:.1f} Tz 1 0 0 1 {word.x * k:.2f} {page_height - line.baseline * k:.2f} Tm "
                       .encode() + b"(" + _escape(word.text) + b") Tj")
    out.append(b"ET")
    return b"\n".join(out) + b"\n"


def scan_pdf(path: Path, pages: list[dict] | None = None, *, kind: str = "gray", dpi: int = 300,
             ocr_layer: bool = False, stamp: bool = False, photo: bool = False,
             jpeg_quality: int = 90, seed: int = 0,
             size_in: tuple[float, float] = (8.5, 11)) -> Path:
    """A scanned PDF: one page per spec, each drawing its scan image over the whole page.

    A spec is a dict overriding any keyword (``kind``, ``dpi``, ``ocr_layer``, ``stamp``,
    ``photo``, ``jpeg_quality``, ``seed``, ``size_in``); ``None`` is one page of the
    keywords.  Page ``i`` defaults to seed ``seed + i`` so pages differ.
    """
    defaults = {"kind": kind, "dpi": dpi, "ocr_layer": ocr_layer, "stamp": stamp,
                "photo": photo, "jpeg_quality": jpeg_quality, "size_in": size_in}
    pdf = pikepdf.new()
    font = helvetica(pdf)
    for i, spec in enumerate(pages or [{}]):
        o = {**defaults, "seed": seed + i, **spec}
        scan = render_scan(o["kind"], o["dpi"], o["size_in"], o["seed"], o["stamp"], o["photo"])
        w, h = (round(v * 72, 3) for v in o["size_in"])
        content = f"q {w:g} 0 0 {h:g} 0 0 cm /Im0 Do Q\n".encode()
        resources = Dictionary(XObject=Dictionary(
            Im0=_image_xobject(pdf, scan.image, o["kind"] == "bitonal", o["jpeg_quality"])))
        if o["ocr_layer"] and scan.lines:
            content += ocr_ops(scan.lines, o["dpi"], h)
            resources.Font = Dictionary(F1=font)
        add_page(pdf, content, resources, mediabox=(w, h))
    path = Path(path)
    pdf.save(path)
    pdf.close()
    return path


def _lines(count: int, seed: int) -> list[str]:
    start = (seed * 17) % len(PARAGRAPH)
    words = PARAGRAPH[start:] + PARAGRAPH[:start]
    return [" ".join(words[(i * 10 + j) % len(words)] for j in range(10)) for i in range(count)]


def vector_pdf(path: Path, lines: int = 40, seed: int = 0) -> list[str]:
    """A born-digital page: visible Helvetica text, no images (the scan step leaves it alone).
    Returns the lines written."""
    text = _lines(lines, seed)
    pdf = pikepdf.new()
    add_page(pdf, text_ops(text, y=740), Dictionary(Font=Dictionary(F1=helvetica(pdf))))
    pdf.save(Path(path))
    pdf.close()
    return text


def mixed_pdf(path: Path, seed: int = 0) -> list[str]:
    """A born-digital page with a 3 x 2 in photo (JPEG) and 30 lines of visible text: it
    draws an image, but is not a scan.  Returns the lines written."""
    text = _lines(30, seed)
    pdf = pikepdf.new()
    patch = Image.fromarray(photo_patch((600, 400), seed))
    image = _image_xobject(pdf, patch, bitonal=False, jpeg_quality=90)
    content = b"q 216 0 0 144 72 600 cm /Im0 Do Q\n" + text_ops(text, y=560)
    add_page(pdf, content, Dictionary(XObject=Dictionary(Im0=image),
                                      Font=Dictionary(F1=helvetica(pdf))))
    pdf.save(Path(path))
    pdf.close()
    return text
