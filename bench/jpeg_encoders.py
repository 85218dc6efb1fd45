"""Which JPEG encoder gives the fewest bytes at equal quality?  Bytes-vs-SSIM curves.

Quality numbers mean different things to different encoders (jpegli's 75 is not
libjpeg-turbo's 75), so each encoder is swept over its quality scale and, for a
few SSIM levels, the bytes it needs are interpolated on its own curve.  The
table gives those bytes relative to Pillow's default (libjpeg-turbo, 4:2:0,
Huffman-optimised), plus encode speed.

Images: photographic images extracted from the corpus (``../shared/corpus/pdf``,
read in place, never copied) and synthetic photos.  SSIM is the mean of the
per-channel SSIM of R, G and B (so chroma subsampling is not free), computed
with :mod:`squeezer.engines.ssim`.

    .venv/bin/python bench/jpeg_encoders.py [--max-images N] [--side PIXELS]
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
import pikepdf
from PIL import Image

from squeezer.engines.ssim import ssim

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"
LEVELS = (0.90, 0.93, 0.95, 0.97, 0.98)
QUALITIES = list(range(20, 100, 5))


def _pil(q: int, subsampling: int, progressive: bool = False) -> callable:
    def enc(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=q, optimize=True, progressive=progressive,
                 subsampling=subsampling)
        return buf.getvalue()
    return enc


def encoders() -> dict[str, callable]:
    found: dict[str, callable] = {
        "pillow 4:2:0": lambda img, q: _pil(q, 2)(img),
        "pillow 4:4:4": lambda img, q: _pil(q, 0)(img),
        "pillow 4:2:0 progressive": lambda img, q: _pil(q, 2, True)(img),
    }
    try:
        import mozjpeg_lossless_optimization as moz

        found["pillow 4:2:0 + mozjpeg-lossless"] = lambda img, q: moz.optimize(_pil(q, 2)(img))
        found["pillow 4:4:4 + mozjpeg-lossless"] = lambda img, q: moz.optimize(_pil(q, 0)(img))
    except ImportError:
        print("mozjpeg-lossless-optimization not installed; skipped", file=sys.stderr)
    try:
        import pyjpegli

        def jpegli(img: Image.Image, q: int) -> bytes:
            rgb = img.convert("RGB")
            return pyjpegli.encode(rgb.tobytes(), rgb.width, rgb.height, q)

        found["jpegli"] = jpegli
        if "pillow 4:2:0 + mozjpeg-lossless" in found:
            found["jpegli + mozjpeg-lossless"] = lambda img, q: moz.optimize(jpegli(img, q))
    except ImportError:
        print("pyjpegli not installed; skipped", file=sys.stderr)
    return found


def rgb_ssim(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([ssim(a[:, :, c], b[:, :, c]) for c in range(3)]))


def corpus_images(limit: int, side: int) -> list[tuple[str, Image.Image]]:
    """RGB photographs (DCT or Flate, >= 256 px a side) from the corpus, cropped to ``side``."""
    out: list[tuple[str, Image.Image]] = []
    for path in sorted(CORPUS.glob("*.pdf")):
        try:
            pdf = pikepdf.open(path)
        except Exception:  # noqa: BLE001, S112 - unreadable corpus files are not benchmarked
            continue
        with pdf:
            per_file = 0
            for obj in pdf.objects:
                if len(out) >= limit or per_file >= 2:
                    break
                if not isinstance(obj, pikepdf.Stream) or obj.get("/Subtype") != pikepdf.Name.Image:
                    continue
                if obj.get("/ColorSpace") not in (pikepdf.Name.DeviceRGB,) and not (
                        isinstance(obj.get("/ColorSpace"), pikepdf.Array)
                        and obj.ColorSpace[0] == pikepdf.Name.ICCBased
                        and int(obj.ColorSpace[1].get("/N", 0)) == 3):
                    continue
                if int(obj.get("/Width", 0)) < 256 or int(obj.get("/Height", 0)) < 256:
                    continue
                try:
                    img = pikepdf.PdfImage(obj).as_pil_image().convert("RGB")
                except Exception:  # noqa: BLE001, S112 - undecodable images are skipped
                    continue
                arr = np.asarray(img)
                if len(np.unique(arr[::8, ::8].reshape(-1, 3), axis=0)) < 2000:
                    continue  # flat graphics, not a photo
                w, h = img.size
                img = img.crop(((w - min(w, side)) // 2, (h - min(h, side)) // 2,
                                (w + min(w, side)) // 2, (h + min(h, side)) // 2))
                out.append((f"{path.stem[:28]}#{obj.objgen[0]}", img))
                per_file += 1
    return out


def synthetic_images(side: int) -> list[tuple[str, Image.Image]]:
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    smooth = np.stack([255 * x / side, 255 * y / side,
                       127 + 100 * np.sin(x / 40.0) * np.cos(y / 33.0)], -1)
    noisy = smooth + rng.normal(0, 6, smooth.shape)
    # a textured "photo": sums of random-phase sinusoids at many scales
    tex = np.zeros((side, side, 3), np.float32)
    for k in range(1, 7):
        f = 2.0 ** k / side
        for c in range(3):
            ph = rng.uniform(0, 6.28, 2)
            tex[:, :, c] += 60 / k * np.sin(2 * np.pi * f * x + ph[0]) * np.cos(2 * np.pi * f * y + ph[1])
    tex += 128 + rng.normal(0, 3, tex.shape)
    return [("synthetic gradient+noise", Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))),
            ("synthetic texture", Image.fromarray(np.clip(tex, 0, 255).astype(np.uint8)))]


def curve(enc: callable, img: Image.Image, ref: np.ndarray) -> tuple[list[tuple[float, int]], float]:
    points, seconds = [], 0.0
    for q in QUALITIES:
        t = time.perf_counter()
        data = enc(img, q)
        seconds += time.perf_counter() - t
        out = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        points.append((rgb_ssim(ref, out), len(data)))
    return sorted(points), seconds / len(QUALITIES)


def bytes_at(points: list[tuple[float, int]], level: float) -> float | None:
    """Bytes needed for SSIM ``level`` by linear interpolation on the (monotone-ised) curve."""
    best: list[tuple[float, int]] = []
    for s, n in sorted(points, key=lambda p: p[1]):
        if not best or s > best[-1][0]:
            best.append((s, n))
    for (s0, n0), (s1, n1) in pairwise(best):
        if s0 <= level <= s1:
            return n0 + (n1 - n0) * (level - s0) / (s1 - s0) if s1 > s0 else n0
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-images", type=int, default=8)
    ap.add_argument("--side", type=int, default=768)
    args = ap.parse_args()
    images = corpus_images(args.max_images, args.side) + synthetic_images(args.side)
    encs = encoders()
    names = list(encs)
    base = names[0]
    # ratio[name][level] -> list of bytes/base-bytes over images
    ratios: dict[str, dict[float, list[float]]] = {n: {lv: [] for lv in LEVELS} for n in names}
    speed: dict[str, list[float]] = {n: [] for n in names}
    for label, img in images:
        ref = np.asarray(img)
        curves = {}
        for name in names:
            pts, sec = curve(encs[name], img, ref)
            curves[name] = pts
            speed[name].append(sec / (img.width * img.height / 1e6))
        row = []
        for lv in LEVELS:
            b0 = bytes_at(curves[base], lv)
            for name in names:
                bn = bytes_at(curves[name], lv)
                if b0 and bn:
                    ratios[name][lv].append(bn / b0)
            row.append(f"{lv}:{b0 and int(b0)}")
        print(f"# {label} {img.size}  {base} bytes at SSIM " + " ".join(row), flush=True)
    print(f"\n{len(images)} images ({args.side}px crops); bytes at equal SSIM relative to "
          f"'{base}' (geometric mean over images; lower is better)\n")
    print("| encoder | " + " | ".join(f"SSIM {lv}" for lv in LEVELS) + " | ms/MP |")
    print("|---" * (len(LEVELS) + 2) + "|")
    for name in names:
        cells = []
        for lv in LEVELS:
            r = ratios[name][lv]
            cells.append(f"{np.exp(np.mean(np.log(r))):.3f} (n={len(r)})" if r else "-")
        print(f"| {name} | " + " | ".join(cells) + f" | {1000 * np.median(speed[name]):.0f} |")


if __name__ == "__main__":
    main()
