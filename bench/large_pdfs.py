#!/usr/bin/env python3
"""Large PDFs for the memory and speed targets, generated reproducibly (issue 18, item 11).

The corpora hold no file over 4 MB, so the two inputs that showed the engine's memory
problem are made here, the same bytes on every run with the same libraries:

- ``scan-300p-g4.pdf``: 300 pages of US letter scanned at 300 dpi, each a 2550 × 3300 1-bit
  image in CCITT Group 4 (the text pages of ``scan_pages.draw_bitonal``: blurred text,
  scanner noise thresholded to 1 bit, specks of dust; one seed per page), ~20 MB;
- ``photo-150p.pdf``: 150 pages, each one 2550 × 3300 RGB photograph-like JPEG (quality 85)
  over the whole page, ~175 MB.  The "photos" are synthetic: a colour field whose amplitude
  spectrum falls as 1/f^1.5 (about the spectrum of natural images), sharp-edged shapes over it
  (occlusion edges) and sensor
  grain, so JPEG spends its bytes on them as on camera pictures.

Both are written by a small streaming PDF writer (one page in memory at a time), so making
them needs no more memory than one page.  ``make(directory)`` returns their paths, writing only
what is missing (a ``.done`` stamp beside each records the generator's version);
``bench/pdf_bench.py`` benchmarks them with the category ``generated_scan`` /
``generated_photo``.  On its own::

    .venv/bin/python bench/large_pdfs.py /tmp/large          # both
    .venv/bin/python bench/large_pdfs.py /tmp/large --scan-pages 20 --photo-pages 10
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

#: Bump when what is generated changes, so cached files are made again.
VERSION = 1
PAGE_PT = (612, 792)  # US letter
WIDTH, HEIGHT = 2550, 3300  # 300 dpi over the page
SCAN_PAGES = 300
PHOTO_PAGES = 150
PHOTO_QUALITY = 85

#: name -> (category, pages) of the files :func:`make` writes.
FILES = {
    "scan-300p-g4.pdf": ("generated_scan", SCAN_PAGES),
    "photo-150p.pdf": ("generated_photo", PHOTO_PAGES),
}


class StreamingPdf:
    """Writes a PDF of full-page images one page at a time (objects go to disk at once)."""

    def __init__(self, path: Path, producer: str) -> None:
        self.f = path.open("wb")
        self.f.write(b"%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
        self.offsets: dict[int, int] = {}
        self.pages: list[int] = []
        self.next = 3  # 1: catalog, 2: page tree, written last
        self.producer = producer

    def _obj(self, num: int, body: bytes, stream: bytes | None = None) -> None:
        self.offsets[num] = self.f.tell()
        self.f.write(b"%d 0 obj\n" % num + body)
        if stream is not None:
            self.f.write(b"\nstream\n" + stream + b"\nendstream")
        self.f.write(b"\nendobj\n")

    def _alloc(self) -> int:
        self.next += 1
        return self.next - 1

    def add_image_page(self, data: bytes, image_dict: bytes) -> None:
        """A page drawing one image (``data`` already encoded) over the whole page."""
        image, content, page = self._alloc(), self._alloc(), self._alloc()
        self._obj(image, b"<< /Type /XObject /Subtype /Image %s /Length %d >>"
                  % (image_dict, len(data)), data)
        draw = b"q %d 0 0 %d 0 0 cm /Im0 Do Q" % PAGE_PT
        self._obj(content, b"<< /Length %d >>" % len(draw), draw)
        self._obj(page, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] "
                  b"/Resources << /XObject << /Im0 %d 0 R >> >> /Contents %d 0 R >>"
                  % (*PAGE_PT, image, content))
        self.pages.append(page)

    def close(self) -> None:
        kids = b" ".join(b"%d 0 R" % p for p in self.pages)
        self._obj(2, b"<< /Type /Pages /Count %d /Kids [%s] >>" % (len(self.pages), kids))
        self._obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
        info = self._alloc()
        self._obj(info, b"<< /Producer (%s) >>" % self.producer.encode())
        xref = self.f.tell()
        self.f.write(b"xref\n0 %d\n0000000000 65535 f \n" % self.next)
        for num in range(1, self.next):
            self.f.write(b"%010d 00000 n \n" % self.offsets[num])
        self.f.write(b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                     % (self.next, info, xref))
        self.f.close()


# --------------------------------------------------------------------------- pages


def g4_page(seed: int) -> tuple[bytes, bytes]:
    """(CCITT G4 data, image dictionary entries) of one synthetic 300 dpi bitonal text page."""
    from scan_pages import _g4, draw_bitonal

    img = draw_bitonal(seed)
    coded = _g4(img)
    if coded is None:
        raise SystemExit("Pillow was built without libtiff: no CCITT G4 coder")
    data, black_is_1 = coded
    entries = (b"/Width %d /Height %d /ColorSpace /DeviceGray /BitsPerComponent 1 "
               b"/Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d "
               b"/BlackIs1 %s >>" % (img.width, img.height, img.width, img.height,
                                     b"true" if black_is_1 else b"false"))
    return data, entries


def photo(seed: int, width: int = WIDTH, height: int = HEIGHT):
    """A synthetic photograph (RGB Pillow image): a 1/f^1.5 colour field, sharp shapes, grain."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    sw, sh = width // 2, height // 2
    fy = np.fft.fftfreq(sh)[:, None]
    fx = np.fft.rfftfreq(sw)[None, :]
    f = np.sqrt(fx * fx + fy * fy)
    f[0, 0] = 1.0
    planes = []
    for beta, amp in ((1.5, 45.0), (1.7, 22.0), (1.7, 22.0)):  # luma, then chroma (smoother)
        spec = (rng.standard_normal(f.shape) + 1j * rng.standard_normal(f.shape)) / f ** beta
        spec[0, 0] = 0
        field = np.fft.irfft2(spec, s=(sh, sw)).astype(np.float32)
        planes.append(128 + amp * field / (field.std() + 1e-9))
    img = Image.merge("YCbCr", [Image.fromarray(np.clip(p, 0, 255).astype(np.uint8))
                                for p in planes]).convert("RGB")
    shapes = Image.new("L", (sw, sh), 0)
    tint = Image.new("RGB", (sw, sh), 0)
    draw, tdraw = ImageDraw.Draw(shapes), ImageDraw.Draw(tint)
    for _ in range(int(rng.integers(6, 14))):
        x, y = int(rng.integers(0, sw)), int(rng.integers(0, sh))
        rx, ry = int(rng.integers(sw // 20, sw // 4)), int(rng.integers(sh // 20, sh // 4))
        box = (x - rx, y - ry, x + rx, y + ry)
        colour = tuple(int(c) for c in rng.integers(20, 235, 3))
        if rng.random() < 0.5:
            draw.ellipse(box, fill=200)
            tdraw.ellipse(box, fill=colour)
        else:
            pts = [(int(x + rx * np.cos(a)), int(y + ry * np.sin(a)))
                   for a in np.sort(rng.uniform(0, 2 * np.pi, 5))]
            draw.polygon(pts, fill=200)
            tdraw.polygon(pts, fill=colour)
    img = Image.composite(Image.blend(img, tint, 0.55), img, shapes)
    img = img.resize((width, height), Image.Resampling.BICUBIC)
    arr = np.asarray(img).astype(np.float32)
    arr += rng.standard_normal((height, width, 1), dtype=np.float32) * 3.0  # sensor grain
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def photo_page(seed: int) -> tuple[bytes, bytes]:
    img = photo(seed)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=PHOTO_QUALITY)
    entries = (b"/Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 "
               b"/Filter /DCTDecode" % img.size)
    return buf.getvalue(), entries


# --------------------------------------------------------------------------- files


def write(path: Path, pages: int, page: Callable[[int], tuple[bytes, bytes]], producer: str,
          seed: int = 0, log: Callable[[str], None] | None = None) -> Path:
    tmp = path.with_suffix(".part")
    pdf = StreamingPdf(tmp, producer)
    started = time.monotonic()
    for i in range(pages):
        data, entries = page(seed + i)
        pdf.add_image_page(data, entries)
        if log and (i + 1) % 25 == 0:
            log(f"  {path.name}: {i + 1}/{pages} pages, {time.monotonic() - started:.0f} s")
    pdf.close()
    tmp.replace(path)
    return path


def make(directory: str | Path, scan_pages: int = SCAN_PAGES, photo_pages: int = PHOTO_PAGES,
         log: Callable[[str], None] | None = None) -> list[Path]:
    """The generated files in ``directory`` (written when missing or out of date)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    wanted = [
        ("scan-300p-g4.pdf", scan_pages, g4_page, "bench/large_pdfs.py (synthetic G4 scan)"),
        ("photo-150p.pdf", photo_pages, photo_page, "bench/large_pdfs.py (synthetic photos)"),
    ]
    out = []
    for name, pages, page, producer in wanted:
        if pages <= 0:
            continue
        if pages != FILES[name][1]:
            name = name.replace(f"{FILES[name][1]}p", f"{pages}p")
        path = directory / name
        stamp = path.with_suffix(".done")
        expected = f"v{VERSION} pages {pages}"
        if not (path.exists() and stamp.exists() and stamp.read_text() == expected):
            if log:
                log(f"generating {path} ({pages} pages)")
            write(path, pages, page, producer, log=log)
            stamp.write_text(expected)
        out.append(path)
    return out


def category(name: str) -> str | None:
    """The bench category of a generated file's name, or None."""
    for known, (cat, pages) in FILES.items():
        stem = known.split("-", 1)[0]
        if name.startswith(stem + "-") and name.endswith(known.rsplit("-", 1)[1]):
            return cat
    return None


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory", type=Path)
    ap.add_argument("--scan-pages", type=int, default=SCAN_PAGES)
    ap.add_argument("--photo-pages", type=int, default=PHOTO_PAGES)
    args = ap.parse_args(argv)
    for path in make(args.directory, args.scan_pages, args.photo_pages, log=_log):
        print(f"{path}  {path.stat().st_size:,} B")
    return 0


if __name__ == "__main__":
    sys.exit(main())

