"""Squeezer's image engine vs the usual single tools: bytes at equal SSIM, and time.

For every input, ``squeezer high`` (and ``medium``) gives one point: output bytes
and SSIM against the input's pixels (for an animation, the lowest over its frames).
PNG and GIF inputs are also compressed with ``SQUEEZER_QUANTIZER=pillow`` (Pillow's
median cut instead of libimagequant, the non-GPL path) for the licence trade-off.  Each peer is swept over its quality scale
(or run once when it has none), and the bytes it needs for an SSIM *at least*
Squeezer's are read off its curve (linear interpolation, as in
``jpeg_encoders.py``).  The best single tool for an image is the peer needing
the fewest bytes; the target of issue 6 is ``high`` <= 0.85 x that.

SSIM: :func:`squeezer.engines.image.quality.score` (luma SSIM, 7x7 window;
alpha-premultiplied luma and alpha for transparent images), the measure the
engine's floor uses.

Peers (each skipped with a note when absent): Pillow defaults (JPEG q75
optimize; PNG optimize), ``jpegoptim`` (``--max=N --strip-all
--all-progressive``, sweep), ``pngquant`` (``--quality 0-N --speed 1``, sweep,
dithered and ``--nofs``), ``optipng -o2``, ``gifsicle`` (``-O3``; ``-O3 --colors N``
and ``-O3 --lossy=N`` sweeps).  Debian: ``apt-get install jpegoptim pngquant
optipng gifsicle``.

Inputs: photographs extracted from ``../shared/corpus/pdf`` (as
``jpeg_encoders.py`` does, read in place) saved as JPEG q92 like a camera or a
CMS would, synthetic photos, and PNG graphics (line art, a UI screenshot, a
transparent logo, a photo saved as PNG), and generated animated GIFs (a ball over a
gradient, a blinking UI, a noisy photo pan) written by Pillow.

    .venv/bin/python bench/image_bench.py [--max-images N] [--side PX] [--out bench/results/image.md]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageSequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
from jpeg_encoders import bytes_at, corpus_images, synthetic_images

from squeezer.engines.image import compress
from squeezer.engines.options import Options
from squeezer.engines.image.quality import score

JPEG_SWEEP = list(range(30, 100, 5))
PNG_SWEEP = [20, 30, 40, 50, 60, 70, 80, 90, 100]
GIF_COLORS = [256, 128, 64, 32, 16]
GIF_LOSSY = [20, 40, 80, 120, 200]


def _load(data: bytes) -> Image.Image:
    im = Image.open(io.BytesIO(data))
    im.load()
    return im


def _frames(data: bytes) -> list[Image.Image]:
    im = Image.open(io.BytesIO(data))
    frames = [f.copy() for f in ImageSequence.Iterator(im)]
    mode = "RGBA" if any(_has_alpha(f) for f in frames) else "RGB"
    return [f.convert(mode) for f in frames]


def _score(reference: list[Image.Image], data: bytes) -> float:
    """The floor measure of ``data`` against the reference frames: the lowest over frames."""
    got = _frames(data)
    if len(got) != len(reference):
        return 0.0
    return min(score(r, g.convert(r.mode)) for r, g in zip(reference, got, strict=True))


def _run(cmd: list[str], data: bytes, suffix: str) -> tuple[bytes | None, float]:
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / f"in{suffix}"
        src.write_bytes(data)
        out = Path(tmp) / f"out{suffix}"
        argv = [a.replace("{in}", str(src)).replace("{out}", str(out)) for a in cmd]
        t = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False, timeout=300)
        seconds = time.perf_counter() - t
        target = out if out.exists() else src
        if proc.returncode not in (0, 98, 99):  # pngquant: 98/99 = quality not reached
            return None, seconds
        if proc.returncode in (98, 99) and not out.exists():
            return None, seconds
        return target.read_bytes(), seconds


def jpeg_peers() -> dict[str, object]:
    peers: dict[str, object] = {
        "pillow q75": lambda im, data: [_pil_jpeg(im, 75)],
        "pillow (sweep)": lambda im, data: [_pil_jpeg(im, q) for q in JPEG_SWEEP],
    }
    if shutil.which("jpegoptim"):
        peers["jpegoptim lossless"] = lambda im, data: [_run(
            ["jpegoptim", "--strip-all", "--all-progressive", "-q", "{in}"], data, ".jpg")]
        peers["jpegoptim --max (sweep)"] = lambda im, data: [_run(
            ["jpegoptim", f"--max={q}", "--strip-all", "--all-progressive", "-q", "{in}"],
            data, ".jpg") for q in JPEG_SWEEP]
    else:
        print("jpegoptim not installed; skipped", file=sys.stderr)
    return peers


def png_peers() -> dict[str, object]:
    peers: dict[str, object] = {"pillow optimize": lambda im, data: [_pil_png(im)]}
    if shutil.which("optipng"):
        peers["optipng -o2"] = lambda im, data: [_run(
            ["optipng", "-o2", "-quiet", "-strip", "all", "{in}"], data, ".png")]
    else:
        print("optipng not installed; skipped", file=sys.stderr)
    if shutil.which("pngquant"):
        peers["pngquant (sweep)"] = lambda im, data: [_run(
            ["pngquant", "--quality", f"0-{q}", "--speed", "1", "--strip", "--force",
             "--output", "{out}", "{in}"], data, ".png") for q in PNG_SWEEP]
        peers["pngquant --nofs (sweep)"] = lambda im, data: [_run(
            ["pngquant", "--quality", f"0-{q}", "--speed", "1", "--nofs", "--strip", "--force",
             "--output", "{out}", "{in}"], data, ".png") for q in PNG_SWEEP]
    else:
        print("pngquant not installed; skipped", file=sys.stderr)
    return peers


def gif_peers() -> dict[str, object]:
    peers: dict[str, object] = {}
    if shutil.which("gifsicle"):
        peers["gifsicle -O3"] = lambda im, data: [_run(
            ["gifsicle", "-O3", "--no-comments", "--no-names", "-o", "{out}", "{in}"],
            data, ".gif")]
        peers["gifsicle --colors (sweep)"] = lambda im, data: [_run(
            ["gifsicle", "-O3", f"--colors={n}", "-o", "{out}", "{in}"], data, ".gif")
            for n in GIF_COLORS]
        peers["gifsicle --lossy (sweep)"] = lambda im, data: [_run(
            ["gifsicle", "-O3", f"--lossy={n}", "-o", "{out}", "{in}"], data, ".gif")
            for n in GIF_LOSSY]
    else:
        print("gifsicle not installed; skipped", file=sys.stderr)
    return peers


def _pil_jpeg(im: Image.Image, q: int) -> tuple[bytes, float]:
    t = time.perf_counter()
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=q, optimize=True)
    return buf.getvalue(), time.perf_counter() - t


def _pil_png(im: Image.Image) -> tuple[bytes, float]:
    t = time.perf_counter()
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue(), time.perf_counter() - t


def png_inputs(side: int) -> list[tuple[str, Image.Image]]:
    w, h = side, side * 3 // 4
    art = Image.new("RGB", (w, h), "white")
    d = ImageDraw.Draw(art)
    for i in range(12):
        d.rectangle((20 + i * 40, 20 + i * 10, 120 + i * 40, 80 + i * 20),
                    outline=(i * 20, 60, 200 - i * 10), width=3)
        d.text((30 + i * 30, h - 60 + (i % 3) * 12), f"label {i}", fill=(0, 0, 0))
    ui = Image.new("RGB", (w, h), (245, 246, 248))
    d = ImageDraw.Draw(ui)
    d.rectangle((0, 0, w, 48), fill=(32, 92, 180))
    for r in range(8):
        d.rectangle((24, 70 + r * 44, w - 24, 104 + r * 44), fill="white", outline=(220, 220, 225))
        d.text((36, 80 + r * 44), f"Row {r}: some interface text, 12 px", fill=(40, 40, 40))
    y, x = np.mgrid[0:h, 0:w]
    grad = np.stack([x * 255 // w, y * 255 // h, 255 - x * 255 // w], -1).astype(np.uint8)
    ui.paste(Image.fromarray(grad[:120, :200]), (w - 230, h - 150))
    logo = Image.new("RGBA", (w // 2, w // 2), (0, 0, 0, 0))
    d = ImageDraw.Draw(logo)
    d.ellipse((10, 10, w // 2 - 10, w // 2 - 10), fill=(230, 80, 40, 255))
    d.ellipse((60, 60, w // 2 - 60, w // 2 - 60), fill=(255, 255, 255, 180))
    return [("png line art", art), ("png UI screenshot", ui), ("png transparent logo", logo),
            ("png photo", synthetic_images(side)[0][1])]


def gif_inputs(side: int) -> list[tuple[str, bytes]]:
    """Animated GIFs as Pillow writes them (its own palette per frame, changed rectangles)."""
    w, h = side // 2, side * 3 // 8
    y, x = np.mgrid[0:h, 0:w]
    grad = np.stack([x * 255 // w, y * 255 // h, 128 + 0 * x], -1).astype(np.uint8)
    ball = []
    for i in range(12):
        im = Image.fromarray(grad.copy())
        d = ImageDraw.Draw(im)
        d.ellipse((10 + i * w // 14, h // 3, 10 + i * w // 14 + h // 4, h // 3 + h // 4),
                  fill=(220, 40, 40))
        d.text((10, h - 24), f"frame {i}", fill=(0, 0, 0))
        ball.append(im)
    ui = []
    for i in range(8):
        im = Image.new("RGB", (w, h), (245, 246, 248))
        d = ImageDraw.Draw(im)
        d.rectangle((0, 0, w, 32), fill=(32, 92, 180))
        for r in range(5):
            d.rectangle((12, 44 + r * 36, w - 12, 72 + r * 36), fill="white",
                        outline=(220, 220, 225))
            d.text((20, 52 + r * 36), f"item {r}" + (" *" if r == i % 5 else ""),
                   fill=(40, 40, 40))
        d.ellipse((w - 40, 6, w - 20, 26), fill=(250, 200, 0) if i % 2 else (60, 200, 90))
        ui.append(im)
    photo = np.asarray(synthetic_images(side)[0][1])
    pan = [Image.fromarray(photo[i * 8:i * 8 + h, i * 12:i * 12 + w].copy()) for i in range(8)]
    out = []
    for label, frames in (("gif ball over gradient", ball), ("gif blinking UI", ui),
                          ("gif photo pan", pan)):
        buf = io.BytesIO()
        frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
        out.append((label, buf.getvalue()))
    return out


#: the image levels this bench names (the former ones) -> today's levels
_LEVEL_NOW = {"high": "medium", "medium": "low"}


def _squeeze(data: bytes, fmt: str, level: str, reference: list[Image.Image],
             quantizer: str | None = None) -> tuple[int, float, float, str]:
    previous = os.environ.pop("SQUEEZER_QUANTIZER", None)
    if quantizer:
        os.environ["SQUEEZER_QUANTIZER"] = quantizer
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / f"in.{fmt}"
            src.write_bytes(data)
            dst = Path(tmp) / f"out.{fmt}"
            t = time.perf_counter()
            # the columns keep the image engine's former level names: high is now medium
            report = compress(src, dst, Options(level=_LEVEL_NOW[level]))
            seconds = time.perf_counter() - t
            out = dst.read_bytes()
    finally:
        os.environ.pop("SQUEEZER_QUANTIZER", None)
        if previous is not None:
            os.environ["SQUEEZER_QUANTIZER"] = previous
    return (len(out), _score(reference, out), seconds,
            report.actions[-1] if report.actions else "original kept")


def measure(label: str, image: Image.Image | None, data: bytes, fmt: str,
            peers: dict[str, object], rows: list[dict[str, object]]) -> None:
    reference = _frames(data)
    ours = {level: _squeeze(data, fmt, level, reference) for level in ("high", "medium")}
    if fmt in ("png", "gif"):
        ours["pillow"] = _squeeze(data, fmt, "high", reference, "pillow")
    b_high, s_high, t_high, how = ours["high"]
    best_name, best_bytes, peer_cells = None, None, {}
    for name, run in peers.items():
        points = []
        for out, seconds in run(image, data):
            if out is None:
                continue
            points.append((_score(reference, out), len(out), seconds))
        if not points:
            continue
        needed = _needed(points, s_high)
        run_seconds = float(np.median([p[2] for p in points]))
        peer_cells[name] = (needed, run_seconds)
        if needed is not None and (best_bytes is None or needed < best_bytes):
            best_name, best_bytes = name, needed
    rows.append({"image": label, "format": fmt, "input": len(data), "high": b_high,
                 "high_ssim": s_high, "high_s": t_high, "how": how, "medium": ours["medium"][0],
                 "medium_ssim": ours["medium"][1], "best_peer": best_name,
                 "best_bytes": best_bytes, "peers": peer_cells, "pillow": ours.get("pillow")})
    ratio = f"{b_high / best_bytes:.3f}" if best_bytes else "-"
    print(f"# {label}: high {b_high} B (SSIM {s_high:.4f}, {t_high:.2f} s, {how}); best peer "
          f"{best_name} {best_bytes and int(best_bytes)} B; ratio {ratio}", flush=True)


def _has_alpha(im: Image.Image) -> bool:
    rgba = im.convert("RGBA")
    return rgba.getchannel("A").getextrema()[0] < 255


def _needed(points: list[tuple[float, int, float]], level: float) -> float | None:
    """Bytes this peer needs for SSIM >= ``level``: interpolated on its curve; for a single
    point, its bytes when it reaches the level."""
    passing = [n for s, n, _ in points if s >= level - 1e-9]
    if len(points) == 1:
        return float(passing[0]) if passing else None
    value = bytes_at([(s, n) for s, n, _ in points], level)
    if value is None:
        return float(min(passing)) if passing else None
    return min(value, float(min(passing))) if passing else value


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-images", type=int, default=6, help="corpus photos (plus 2 synthetic)")
    ap.add_argument("--side", type=int, default=768)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "image.md"))
    args = ap.parse_args()
    rows: list[dict[str, object]] = []
    started = time.perf_counter()
    jp = jpeg_peers()
    for label, img in corpus_images(args.max_images, args.side) + synthetic_images(args.side):
        buf = io.BytesIO()
        img.convert("RGB").save(buf, "JPEG", quality=92)
        measure(f"jpeg {label}", img, buf.getvalue(), "jpg", jp, rows)
    pp = png_peers()
    for label, img in png_inputs(args.side):
        buf = io.BytesIO()
        img.save(buf, "PNG", compress_level=6)
        measure(label, img, buf.getvalue(), "png", pp, rows)
    gp = gif_peers()
    for label, data in gif_inputs(args.side):
        measure(label, None, data, "gif", gp, rows)
    write_report(rows, Path(args.out), time.perf_counter() - started,
                 list(jp) + list(pp) + list(gp))


def _geo(values: list[float]) -> float:
    return float(np.exp(np.mean(np.log(values)))) if values else float("nan")


def write_report(rows: list[dict[str, object]], out: Path, seconds: float,
                 peers: list[str]) -> None:
    lines = ["# Image engine benchmark", "",
             (f"`bench/image_bench.py`, {len(rows)} images, {seconds:.0f} s, "
             f"{platform.machine()} / Python {platform.python_version()}, "
             f"{platform.node() and 'shared 2-core machine'}."), "",
             ("Bytes of `squeezer high` vs the fewest bytes any single peer needs for an SSIM "
             "at least as high (interpolated on the peer's quality sweep). ratio < 1: Squeezer "
             "smaller. Target: ratio <= 0.85."), "",
             ("| image | input B | high B | high SSIM | high s | medium B | medium SSIM | "
             "best peer | peer B at >= SSIM | ratio | how |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_format: dict[str, list[float]] = {}
    for r in rows:
        ratio = r["high"] / r["best_bytes"] if r["best_bytes"] else None
        if ratio:
            by_format.setdefault(str(r["format"]), []).append(ratio)
        lines.append(
            f"| {r['image']} | {r['input']} | {r['high']} | {r['high_ssim']:.4f} | "
            f"{r['high_s']:.2f} | {r['medium']} | {r['medium_ssim']:.4f} | {r['best_peer']} | "
            f"{int(r['best_bytes']) if r['best_bytes'] else '-'} | "
            f"{f'{ratio:.3f}' if ratio else '-'} | {r['how']} |")
    all_ratios = [x for v in by_format.values() for x in v]
    lines += ["", "Geometric mean of ratio (high / best single tool at >= SSIM):", ""]
    for fmt, values in by_format.items():
        lines.append(f"- {fmt}: {_geo(values):.3f} over {len(values)} images")
    still = [x for fmt, v in by_format.items() if fmt != "gif" for x in v]
    if len(still) != len(all_ratios):
        lines.append(f"- jpg + png: {_geo(still):.3f} over {len(still)} images")
    total = _geo(all_ratios)
    lines += [(f"- all: {total:.3f} over {len(all_ratios)} images — target 0.85: "
              f"{'PASS' if total <= 0.85 else 'MISS'}"), ""]
    pillow_rows = [r for r in rows if r.get("pillow")]
    if pillow_rows:
        lines += [("`high` with `SQUEEZER_QUANTIZER=pillow` (Pillow's median cut / fast octree "
                  "instead of libimagequant: no GPL code):"), "",
                  "| image | imagequant B | SSIM | pillow B | SSIM | pillow / imagequant | how |",
                  "|---|---|---|---|---|---|---|"]
        quotients = []
        for r in pillow_rows:
            pb, ps, _, phow = r["pillow"]
            quotients.append(pb / r["high"])
            lines.append(f"| {r['image']} | {r['high']} | {r['high_ssim']:.4f} | {pb} | "
                         f"{ps:.4f} | {pb / r['high']:.3f} | {phow} |")
        lines += ["", (f"Geometric mean pillow / imagequant: {_geo(quotients):.3f} over "
                  f"{len(quotients)} images."), ""]
    lines += ["Per-peer bytes needed at Squeezer-high's SSIM (and median seconds per run):", "",
              "| image | " + " | ".join(peers) + " |", "|---" * (len(peers) + 1) + "|"]
    for r in rows:
        cells = []
        for p in peers:
            cell = r["peers"].get(p)
            cells.append("" if cell is None else
                         f"{int(cell[0]) if cell[0] else 'never'} ({cell[1]:.2f} s)")
        lines.append(f"| {r['image']} | " + " | ".join(cells) + " |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
