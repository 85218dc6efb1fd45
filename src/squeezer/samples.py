"""A sample PDF the project makes itself, for ``squeezer demo`` and ``make run``.

A fresh clone has no corpus beside it, and a PDF copied from somewhere else
would bring someone else's licence along.  So the sample is drawn here, the
same bytes every time: a two-page brochure about Squeezer with a large
photograph-like picture (a Mandelbrot set coloured over gradients, with the
fine grain a camera gives) stored losslessly at 300 dpi, a diagram of flat
colours, and text in the standard Helvetica font.  That is what office PDFs
full of pasted photos look like, and what the engine is for: the text stays
text, the picture becomes a JPEG at the level's resolution.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name
from PIL import Image

#: US Letter, in points
PAGE = (612, 792)

_TITLE = "Squeezer: smaller files, same look"
_TEXT = (
    "This PDF was made by squeezer demo so that there is something to compress on a",
    "machine with nothing else on it. Its picture is stored losslessly at 300 dpi,",
    "as office programs store pasted photographs; its text is real text.",
    "",
    "Squeezer keeps the text selectable, the links and the page count as they are,",
    "scales pictures drawn sharper than the level's resolution down to it, and",
    "re-encodes photographs at the lowest quality that still looks the same.",
    "Every result is checked against the original before it is kept, and a result",
    "that is not smaller is never returned: you get the original back instead.",
)
_PAGE2 = (
    "What the levels mean for a PDF (squeezer options lists them for every format):",
    "",
    "lossless   pixels untouched; the file is only re-packed and cleaned",
    "low        looks identical; pictures above 300 dpi scaled down",
    "medium     for screens and office printing (the default everywhere)",
    "high       for reading on screen",
    "extreme    smallest, with visible loss",
    "",
    "Try it on your own files:  squeezer compress report.pdf",
    "Or start the web page:     make serve   (then open the address it prints)",
)


def photo(width: int = 1800, height: int = 1200) -> np.ndarray:
    """A photograph-like RGB picture: smooth colour fields, sharp detail and grain."""
    mandel = np.asarray(Image.effect_mandelbrot((width, height), (-2.2, -1.2, 1.0, 1.2), 64),
                        dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    sky = 40 + 170 * (y / height)
    warm = 90 + 120 * np.sin(x / width * np.pi)
    rgb = np.stack([warm * 0.6 + mandel * 0.4, sky * 0.7 + mandel * 0.3,
                    255 - sky * 0.6 + mandel * 0.2], axis=-1)
    grain = np.random.default_rng(7).normal(0, 5, rgb.shape)
    return np.clip(rgb + grain, 0, 255).astype(np.uint8)


def diagram(width: int = 900, height: int = 300) -> np.ndarray:
    """Flat-colour bars (a chart): what stays lossless."""
    out = np.full((height, width, 3), 250, np.uint8)
    colours = [(31, 111, 92), (79, 191, 159), (243, 193, 95), (180, 35, 24)]
    for i, share in enumerate((0.95, 0.55, 0.35, 0.3)):
        top = 30 + i * 65
        out[top:top + 45, 40:40 + int((width - 80) * share)] = colours[i]
    return out


def _image(pdf: pikepdf.Pdf, pixels: np.ndarray) -> pikepdf.Stream:
    height, width = pixels.shape[:2]
    stream = pikepdf.Stream(pdf, zlib.compress(np.ascontiguousarray(pixels).tobytes(), 6))
    stream.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Image, Width=width,
                                    Height=height, ColorSpace=Name.DeviceRGB,
                                    BitsPerComponent=8, Filter=Name.FlateDecode)
    return pdf.make_indirect(stream)


def _text(lines: tuple[str, ...], x: int, y: int, size: int = 11) -> bytes:
    ops = [f"BT /F1 {size} Tf {size + 4} TL {x} {y} Td".encode()]
    ops += [b"(" + line.encode("latin-1") + b") Tj T*" for line in lines]
    return b"\n".join([*ops, b"ET"]) + b"\n"


def sample_pdf(path: str | Path) -> Path:
    """Write the sample PDF to ``path`` (about 2 MB, two pages) and return the path."""
    path = Path(path)
    pdf = pikepdf.new()
    pdf.docinfo["/Title"] = _TITLE
    pdf.docinfo["/Creator"] = "squeezer demo"
    font = pdf.make_indirect(Dictionary(Type=Name.Font, Subtype=Name.Type1,
                                        BaseFont=Name.Helvetica, Encoding=Name.WinAnsiEncoding))
    picture, chart = _image(pdf, photo()), _image(pdf, diagram())
    # page 1: title, the picture (6 x 4 inches: 300 dpi), text
    content = (_text((_TITLE,), 72, 730, 20) + b"q 432 0 0 288 90 400 cm /Im1 Do Q\n"
               + _text(_TEXT, 72, 370))
    # page 2: the chart (drawn at 150 dpi) and the levels
    content2 = b"q 432 0 0 144 90 600 cm /Im2 Do Q\n" + _text(_PAGE2, 72, 560)
    for body, name, image in ((content, "/Im1", picture), (content2, "/Im2", chart)):
        page = Dictionary(Type=Name.Page, MediaBox=Array([0, 0, *PAGE]),
                          Resources=Dictionary(Font=Dictionary(F1=font),
                                               XObject=Dictionary({name: image})),
                          Contents=pdf.make_stream(body))
        pdf.pages.append(pikepdf.Page(page))
    path.parent.mkdir(parents=True, exist_ok=True)
    pdf.save(path, deterministic_id=True)
    pdf.close()
    return path
