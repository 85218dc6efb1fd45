"""The crops the image levels' floors were judged on: source | medium | high.

For a few real images of the corpus (fur, a sunset sky, a smooth slide background, text,
two images with alpha) and two generated gradients, the engine's output at each level is cut
at the same place, side by side with the source, each labelled with its SSIMULACRA2 score, banding and bytes (images with alpha:
over white and over black, one row each).  Written to
``bench/results/image-crops/`` at 1x (PNG, about 150 KB in all: a 2x nearest-neighbour copy
adds no information, so the sheets are judged at 2x zoom in a viewer).

    .venv/bin/python bench/image_crops.py
"""

from __future__ import annotations

import io
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parent))
import image_sources as src

from squeezer.engines.image import compress
from squeezer.engines.image import quality as q
from squeezer.engines.options import Options

OUT = Path(__file__).resolve().parent / "results" / "image-crops"
#: the sheets' scale (1: the pixels as they are; zoom in the viewer)
ZOOM = 1
#: (label, zip, member, crop box in the source's pixels, format written)
CASES = [
    ("cat-fur", "docs/tika__2pic.docx", "word/media/image1.jpeg", (560, 300, 720, 420), "jpg"),
    ("lighthouse-sky", "docs/tika__pic.xlsx", "xl/media/image2.jpeg", (640, 60, 800, 180), "jpg"),
    ("lighthouse-roof", "docs/tika__pic.xlsx", "xl/media/image2.jpeg", (80, 100, 240, 220), "jpg"),
    ("teal-slide-gradient", "docs/poi__KEY02.pptx", "ppt/media/image7.jpeg",
     (600, 300, 760, 420), "jpg"),
    ("editor-text", "docs/sigil__Sigil_Plugin_Framework_rev15.epub",
     "OEBPS/Images/Sigil_Plugins_Menu.jpg", (150, 150, 310, 270), "jpg"),
    ("screenshot-png", "docs/sigil__Sigil_Plugin_Framework_rev15.epub",
     "OEBPS/Images/Manage_Plugins.png", (40, 40, 200, 160), "png"),
]
#: images with alpha: each level drawn over white (top row) and black (bottom row)
ALPHA_CASES = [
    ("icon-alpha", "archives/readium-test-files__chrome-app-2-30.0.zip",
     "chrome-app/icons/large.png", (0, 0, 128, 128), "png"),
    ("dove-gray-alpha", "archives/learning-area__structuring-a-page-of-content-start.zip",
     "structuring-a-page-of-content-start/dove.png", (40, 40, 200, 160), "png"),
]
LEVELS = ("medium", "high")


def _levels(data: bytes, fmt: str) -> list[tuple[str, Image.Image, q.Measure, int]]:
    from image_bench import reference_frames

    reference = reference_frames(data)[0]  # as a colour-managed viewer shows it
    alpha = reference.mode in ("RGBA", "LA", "PA") or "transparency" in reference.info
    mode = "RGBA" if alpha else "RGB"
    reference = reference.convert(mode)
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"in.{fmt}"
        path.write_bytes(data)
        for level in LEVELS:
            dst = Path(tmp) / f"{level}.{fmt}"
            compress(path, dst, Options(level=level))
            got = Image.open(dst)
            got.load()
            got = got.convert(mode)
            out.append((level, got, q.measure(reference, got), dst.stat().st_size))
    return [("source", reference, q.PERFECT, len(data))] + out


def sheet(name: str, tiles: list[tuple[str, Image.Image, q.Measure, int]],
          box: tuple[int, int, int, int],
          backdrops: tuple[tuple[int, int, int], ...] = ((128, 128, 128),)) -> None:
    w, h = box[2] - box[0], box[3] - box[1]
    canvas = Image.new("RGB", (len(tiles) * (ZOOM * w + 8),
                               18 + len(backdrops) * (ZOOM * h + 4)), "white")
    draw = ImageDraw.Draw(canvas)
    for k, (label, image, m, size) in enumerate(tiles):
        crop = image.convert("RGBA").crop(box).resize((ZOOM * w, ZOOM * h),
                                                      Image.Resampling.NEAREST)
        x = k * (ZOOM * w + 8)
        for row, colour in enumerate(backdrops):
            backdrop = Image.new("RGBA", crop.size, (*colour, 255))
            backdrop.alpha_composite(crop)
            canvas.paste(backdrop.convert("RGB"), (x, 18 + row * (ZOOM * h + 4)))
        text = label if label == "source" else (
            f"{label}: {m.score:.1f}, {m.banding * 100:.1f}%, {size // 1024}K")
        draw.text((x + 2, 3), text, fill="black")
    OUT.mkdir(parents=True, exist_ok=True)
    canvas.save(OUT / f"{name}.png", optimize=True)
    print(name, [(t[0], round(t[2].score, 1), round(t[2].banding, 4), t[3]) for t in tiles])


def main() -> None:
    for name, zip_path, member, box, fmt in CASES:
        data = src.member(zip_path, member)
        if data is None:
            continue
        sheet(name, _levels(data, fmt), box)
    for name, zip_path, member, box, fmt in ALPHA_CASES:
        data = src.member(zip_path, member)
        if data is not None:
            sheet(name, _levels(data, fmt), box, ((255, 255, 255), (0, 0, 0)))
    for label, image in src.synthetic_gradients()[:1]:
        buf = io.BytesIO()
        image.save(buf, "PNG")
        sheet("synthetic-ramp-png", _levels(buf.getvalue(), "png"), (300, 200, 460, 320))
    card = Image.new("RGB", (480, 360), (245, 246, 248))
    d = ImageDraw.Draw(card)
    d.rectangle((0, 0, 480, 40), fill=(32, 92, 180))
    for r in range(6):
        d.text((28, 66 + r * 44), f"Row {r}: interface text", fill=(40, 40, 40))
    y, x = np.mgrid[0:90, 0:150]
    grad = np.stack([x * 255 // 150, y * 255 // 90, 255 - x * 255 // 150], -1).astype(np.uint8)
    card.paste(Image.fromarray(grad), (310, 250))
    buf = io.BytesIO()
    card.save(buf, "PNG")
    sheet("test-card-gradient-png", _levels(buf.getvalue(), "png"), (310, 250, 460, 340))


if __name__ == "__main__":
    main()
