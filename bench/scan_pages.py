#!/usr/bin/env python3
"""Synthetic 300 dpi US-letter scan pages, and how fast Squeezer compresses them.

``make_pages(directory, n)`` writes ``n`` one-page PDFs (2550 × 3300 px drawn over the whole
612 × 792 pt page), cycling through three kinds of scan:

- ``gray``: lines of text on a slightly tinted paper, blurred like a scanner's optics, with
  gaussian noise; 8-bit gray JPEG (Pillow, quality 90);
- ``color``: the same on yellowish paper, plus a red, slightly rotated stamp circle and a
  photo-like patch of smooth gradients and noise; RGB JPEG (quality 90);
- ``bitonal``: text thresholded to 1 bit with a few specks; CCITT G4 (Pillow's libtiff) or,
  without libtiff, Flate.

``time_compress(paths, preset, jobs)`` compresses them with
``squeezer.engines.pdf.compress(src, dst, Options(level=...))`` in a
``multiprocessing.Pool`` of ``jobs`` processes (warmed up first, so interpreter start-up and
imports are not timed) and reports pages per second over the batch.

``bench/pdf_bench.py`` runs this for its scan speed target; on its own::

    .venv/bin/python bench/scan_pages.py                    # 6 pages, preset high, 2 processes
    .venv/bin/python bench/scan_pages.py --pages 12 --jobs 2 --preset medium
    .venv/bin/python bench/scan_pages.py --dir /tmp/scans --no-time   # only write the PDFs
"""

from __future__ import annotations

import argparse
import io
import json
import math
import multiprocessing
import os
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

#: US letter at 300 dpi.
WIDTH, HEIGHT = 2550, 3300
PAGE_PT = (612, 792)
DPI = 300
KINDS = ("gray", "color", "bitonal")
JPEG_QUALITY = 90

_TEXT = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "invoice payment account received statement balance total amount period customer "
    "agreement section pursuant thereof hereinafter schedule annex registered office"
)
WORDS = _TEXT.split()


# --------------------------------------------------------------------------- drawing


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    except (TypeError, OSError, ImportError):
        return ImageFont.load_default()


def _text(draw, rng: random.Random, ink, avoid: tuple[int, int, int, int] | None = None) -> None:
    """Fill the page with a heading and paragraphs of pseudo text between 0.5 in margins.

    Lines crossing the ``avoid`` box (x0, y0, x1, y1) stop short of it.
    """
    margin = 150
    heading, body = _font(72), _font(40)
    y = margin
    draw.text(
        (margin, y), "STATEMENT OF ACCOUNT  No. " + str(rng.randint(1000, 9999)), ink, heading
    )
    y += 130
    line_h = 56
    while y + line_h < HEIGHT - margin:
        right = WIDTH - margin
        if avoid and y + line_h > avoid[1] and y < avoid[3]:
            right = avoid[0] - 40
        words, x = [], margin
        while True:
            w = rng.choice(WORDS)
            width = draw.textlength(w + " ", font=body)
            if x + width > right:
                break
            words.append(w)
            x += width
        if rng.random() < 0.12:  # a paragraph's short last line
            words = words[: max(1, len(words) // 3)]
        draw.text((margin, y), " ".join(words), ink, body)
        y += line_h
        if rng.random() < 0.08:
            y += line_h // 2  # paragraph break


def _scan_noise(arr, rng_np, sigma: float):
    import numpy as np

    noise = rng_np.standard_normal(arr.shape, dtype=np.float32) * sigma
    return np.clip(arr.astype(np.float32) + noise, 0, 255).astype(np.uint8)


def draw_gray(seed: int = 0):
    """A gray text page: tinted paper, slightly blurred text, gaussian noise (mode ``L``)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng, rng_np = random.Random(seed), np.random.default_rng(seed)
    img = Image.new("L", (WIDTH, HEIGHT), 255)
    _text(ImageDraw.Draw(img), rng, 25)
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    arr = np.asarray(img, dtype=np.float32) * (238 / 255)  # paper tint: white prints as 238
    return Image.fromarray(_scan_noise(arr, rng_np, 4.0), "L")


def draw_color(seed: int = 0):
    """A colour page: text on yellowish paper, a red stamp, a photo-like patch (mode ``RGB``)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng, rng_np = random.Random(seed), np.random.default_rng(seed)
    photo = (1350, 700, 2400, 1500)  # x0, y0, x1, y1
    img = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    _text(ImageDraw.Draw(img), rng, (30, 30, 48), avoid=photo)
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    arr = np.asarray(img, dtype=np.float32) * (np.array([246, 240, 224], np.float32) / 255)

    # photo-like patch: smooth gradients and blobs, softened, plus grain
    pw, ph = photo[2] - photo[0], photo[3] - photo[1]
    yy, xx = np.mgrid[0:ph, 0:pw].astype(np.float32)
    r = 120 + 100 * np.sin(xx / pw * math.pi) * np.cos(yy / ph * 1.3)
    g = 90 + 80 * np.exp(-(((xx - 0.3 * pw) ** 2 + (yy - 0.6 * ph) ** 2) / (0.08 * pw * pw)))
    b = 60 + 140 * (yy / ph) + 20 * np.sin(xx / 37.0) * np.sin(yy / 53.0)
    patch = np.stack([r, g + 0.3 * r, b], axis=-1)
    patch += rng_np.standard_normal(patch.shape, dtype=np.float32) * 10
    patch = np.asarray(
        Image.fromarray(np.clip(patch, 0, 255).astype(np.uint8), "RGB").filter(
            ImageFilter.GaussianBlur(1.5)
        ),
        dtype=np.float32,
    )
    arr[photo[1] : photo[3], photo[0] : photo[2]] = patch

    # red stamp: a ring with a word in it, rotated a little, blended over the page
    size = 560
    stamp = Image.new("L", (size, size), 0)
    sd = ImageDraw.Draw(stamp)
    sd.ellipse((20, 20, size - 20, size - 20), outline=255, width=16)
    sd.ellipse((70, 70, size - 70, size - 70), outline=255, width=6)
    font = _font(84)
    word = "RECEIVED"
    tw = sd.textlength(word, font=font)
    sd.text(((size - tw) / 2, size / 2 - 50), word, 255, font)
    stamp = stamp.rotate(rng.uniform(-18, 18), resample=Image.Resampling.BICUBIC)
    alpha = np.asarray(stamp, dtype=np.float32)[..., None] / 255 * 0.85
    sx, sy = 1700, 2550
    region = arr[sy : sy + size, sx : sx + size]
    arr[sy : sy + size, sx : sx + size] = (
        region * (1 - alpha) + np.array([200, 28, 40], np.float32) * alpha
    )
    return Image.fromarray(_scan_noise(arr, rng_np, 4.0), "RGB")


def draw_bitonal(seed: int = 0):
    """A 1-bit text page with a few specks (mode ``1``)."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng, rng_np = random.Random(seed), np.random.default_rng(seed)
    img = Image.new("L", (WIDTH, HEIGHT), 255)
    _text(ImageDraw.Draw(img), rng, 0)
    img = img.filter(ImageFilter.GaussianBlur(0.8))
    arr = _scan_noise(np.asarray(img), rng_np, 12.0)
    bits = arr >= 128
    ys = rng_np.integers(0, HEIGHT - 3, 400)
    xs = rng_np.integers(0, WIDTH - 3, 400)
    for y, x in zip(ys.tolist(), xs.tolist()):
        bits[y : y + 2, x : x + 2] = False  # specks of dust
    return Image.fromarray(bits)  # bool array -> mode "1"


DRAW = {"gray": draw_gray, "color": draw_color, "bitonal": draw_bitonal}


# --------------------------------------------------------------------------- PDF


def _g4(img) -> tuple[bytes, bool] | None:
    """CCITT G4 data of a mode-``1`` image and its /BlackIs1, or None without libtiff."""
    from PIL import Image, features

    if not features.check("libtiff"):
        return None
    buf = io.BytesIO()
    img.save(buf, "TIFF", compression="group4", tiffinfo={278: img.height})  # one strip
    data = buf.getvalue()
    tif = Image.open(io.BytesIO(data))
    offsets, counts = tif.tag_v2[273], tif.tag_v2[279]
    if isinstance(offsets, tuple):
        if len(offsets) != 1:
            return None
        offsets, counts = offsets[0], counts[0]
    # libtiff's fax coder writes the sample bits as they are; with Pillow's MinIsBlack
    # (photometric 1) a 1 bit is white, which PDF's CCITTFaxDecode calls /BlackIs1 true.
    black_is_1 = tif.tag_v2.get(262, 1) == 1
    return data[offsets : offsets + counts], black_is_1


def image_pdf(img, dst: Path) -> str:
    """Write ``img`` drawn over a whole US-letter page; return the image's filter."""
    import pikepdf

    pdf = pikepdf.new()
    w, h = img.size
    extra: dict[str, Any] = {}
    if img.mode == "1":
        g4 = _g4(img)
        if g4:
            data, black_is_1 = g4
            extra = {
                "Filter": pikepdf.Name.CCITTFaxDecode,
                "DecodeParms": pikepdf.Dictionary(K=-1, Columns=w, Rows=h, BlackIs1=black_is_1),
            }
        else:  # PIL packs rows MSB first, 0 = black, as PDF's 1-bit DeviceGray does
            data = zlib.compress(img.tobytes(), 9)
            extra = {"Filter": pikepdf.Name.FlateDecode}
        colorspace, bpc = pikepdf.Name.DeviceGray, 1
    else:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=JPEG_QUALITY, dpi=(DPI, DPI))
        data = buf.getvalue()
        extra = {"Filter": pikepdf.Name.DCTDecode}
        colorspace = pikepdf.Name.DeviceRGB if img.mode == "RGB" else pikepdf.Name.DeviceGray
        bpc = 8
    image = pikepdf.Stream(pdf, data)
    image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
    image.Width, image.Height = w, h
    image.ColorSpace, image.BitsPerComponent = colorspace, bpc
    for key, value in extra.items():
        image[f"/{key}"] = value
    page = pdf.add_blank_page(page_size=PAGE_PT)
    page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
    page.Contents = pdf.make_stream(f"q {PAGE_PT[0]} 0 0 {PAGE_PT[1]} 0 0 cm /Im0 Do Q".encode())
    pdf.docinfo["/Producer"] = "bench/scan_pages.py (synthetic scan)"
    pdf.save(dst)
    return str(extra["Filter"])


def make_pages(directory: str | Path, n: int = 6, seed: int = 0) -> list[dict[str, Any]]:
    """Write ``n`` one-page scan PDFs into ``directory``, cycling gray, color, bitonal."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pages = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        path = directory / f"scan-{i + 1:02d}-{kind}.pdf"
        filt = image_pdf(DRAW[kind](seed + i), path)
        pages.append(
            {
                "file": path.name,
                "path": str(path),
                "kind": kind,
                "filter": filt,
                "bytes": path.stat().st_size,
            }
        )
    return pages


# --------------------------------------------------------------------------- timing


def _init_worker() -> None:
    import squeezer.engines.pdf  # noqa: F401 - imported before the clock starts
    from squeezer.engines.malloc import keep_freed_memory

    keep_freed_memory()  # as the CLI's `compress` and the service's job children do


def _ready(_: int) -> int:
    time.sleep(0.2)  # long enough that every worker takes one of these
    return os.getpid()


def _compress_one(task: tuple[str, str, str, int]) -> dict[str, Any]:
    from squeezer.engines.limits import Limits
    from squeezer.engines.options import Options
    from squeezer.engines.pdf import compress

    src, dst, preset, threads = task
    started = time.perf_counter()
    try:
        report = compress(src, dst, Options(level=preset), limits=Limits(max_threads=threads))
    except Exception as exc:  # noqa: BLE001 - reported as data
        return {
            "file": Path(src).name,
            "ok": False,
            "seconds": time.perf_counter() - started,
            "error": f"{type(exc).__name__}: {exc}"[:300],
        }
    seconds = time.perf_counter() - started
    out = Path(dst)
    return {
        "file": Path(src).name,
        "ok": True,
        "seconds": round(seconds, 3),
        "pages": getattr(report, "pages", None),
        "out_bytes": out.stat().st_size if out.exists() else None,
        "original_kept": getattr(report, "original_kept", None),
        "pages_classified": getattr(report, "pages_classified", None),
        "pid": os.getpid(),
    }


def time_compress(
    pages: list[dict[str, Any]],
    preset: str = "high",
    jobs: int = 2,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Compress ``pages`` (from ``make_pages``) in a Pool of ``jobs``; pages per second."""
    out_dir = Path(out_dir or Path(pages[0]["path"]).parent / "out")
    out_dir.mkdir(parents=True, exist_ok=True)
    # as `squeezer compress --jobs N` does: the cores are shared between the files in flight
    from squeezer.engines.threads import per_file

    threads = per_file(jobs)
    tasks = [(p["path"], str(out_dir / p["file"]), preset, threads) for p in pages]
    _init_worker()  # a forked worker then starts with the engine imported
    with multiprocessing.Pool(jobs, initializer=_init_worker) as pool:
        pool.map(_ready, range(jobs), chunksize=1)
        started = time.perf_counter()
        results = list(pool.imap_unordered(_compress_one, tasks, chunksize=1))
        wall = time.perf_counter() - started
    by_file = {r["file"]: r for r in results}
    files = []
    for p in pages:
        r = by_file[p["file"]]
        files.append({**{k: v for k, v in p.items() if k != "path"}, **r})
    ok = [f for f in files if f["ok"]]
    n_pages = sum(f.get("pages") or 1 for f in ok)
    per_kind = {}
    for kind in KINDS:
        secs = [f["seconds"] for f in ok if f["kind"] == kind]
        if secs:
            per_kind[kind] = round(sum(secs) / len(secs), 3)
    return {
        "preset": preset,
        "jobs": jobs,
        "cpus": os.cpu_count(),
        "page": f"{WIDTH}x{HEIGHT} px, US letter at {DPI} dpi",
        "pages": len(pages),
        "pages_ok": n_pages,
        "failures": len(files) - len(ok),
        "wall_seconds": round(wall, 3),
        "pages_per_second": round(n_pages / wall, 3) if wall > 0 else None,
        "compress_seconds": round(sum(f["seconds"] for f in files), 3),
        "mean_seconds_by_kind": per_kind,
        "in_bytes": sum(f["bytes"] for f in files),
        "out_bytes": sum(f.get("out_bytes") or 0 for f in ok),
        "files": files,
    }


def run(
    n: int = 6,
    preset: str = "high",
    jobs: int = 2,
    directory: str | Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate ``n`` pages (in ``directory`` or a temporary one) and time them."""
    with tempfile.TemporaryDirectory(prefix="squeezer-scan-pages-") as tmp:
        where = Path(directory) if directory else Path(tmp)
        t0 = time.perf_counter()
        pages = make_pages(where, n, seed)
        made = time.perf_counter() - t0
        result = time_compress(pages, preset, jobs, where / "out")
        result["generate_seconds"] = round(made, 2)
        return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=6, help="pages to generate (default 6)")
    ap.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    ap.add_argument("--preset", default="high", help="Squeezer preset (default high)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", type=Path, help="keep the PDFs (and out/) here, not in a temp dir")
    ap.add_argument("--no-time", action="store_true", help="only generate the PDFs (needs --dir)")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON line")
    args = ap.parse_args(argv)
    if args.pages < 1:
        ap.error("--pages must be at least 1")
    if args.no_time:
        if not args.dir:
            ap.error("--no-time needs --dir")
        for p in make_pages(args.dir, args.pages, args.seed):
            print(f"{p['path']}  {p['kind']:<8} {p['filter']:<16} {p['bytes']:>10,} B")
        return 0
    result = run(args.pages, args.preset, args.jobs, args.dir, args.seed)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"{result['pages']} synthetic pages ({result['page']}), preset {result['preset']}, "
        f"Pool of {result['jobs']} on {result['cpus']} CPUs"
    )
    for f in result["files"]:
        if f["ok"]:
            print(
                f"  {f['file']:<24} {f['filter']:<16} {f['bytes']:>10,} B -> "
                f"{f['out_bytes'] or 0:>10,} B  {f['seconds']:6.2f} s  {f['pages_classified']}"
                + ("  (original kept)" if f.get("original_kept") else "")
            )
        else:
            print(f"  {f['file']:<24} FAILED {f['error']}")
    print(
        f"{result['pages_per_second']} pages/s ({result['pages_ok']} pages in "
        f"{result['wall_seconds']} s wall; {result['compress_seconds']} s of compress() in all; "
        f"generated in {result['generate_seconds']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
