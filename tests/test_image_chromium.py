"""Issue 19's round trips as a browser shows them: source and output drawn by Chromium.

Each kind of image that has gone wrong somewhere (16-bit, gray+alpha, palette+tRNS with
partial transparency, EXIF orientation, APNG, animated WebP, transparent GIF) is compressed at
the default level, then Chromium draws the source and the output: a still through an ``<img>``
(so EXIF orientation and the browser's own 16-bit and tRNS handling apply), an animation frame
by frame through WebCodecs' ``ImageDecoder`` (the frames as composited for display, with
their durations).  Every drawing is made over a white and over a black background, so lost or
changed transparency shows as a difference, and the output must be within the level's floor
of the source on both: SSIMULACRA2 of what Chromium drew, and the alpha coverage exactly.
One browser serves the whole module (about 2 s to start).
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from squeezer.engines.image import compress
from squeezer.engines.image.options import LEVELS
from squeezer.engines.image.quality import score
from squeezer.engines.level import Level
from squeezer.engines.options import Options

#: the default level's floor, less a little for Chromium's own resampling of 16-bit input
FLOOR = LEVELS[Level.medium].score - 2.0

#: draws every frame of each URL over white and over black; returns PNG data URLs
DRAW = """async ([url, animated]) => {
  const draw = (source, w, h) => ['#fff', '#000'].map(bg => {
    const c = document.createElement('canvas');
    c.width = w; c.height = h;
    const g = c.getContext('2d');
    g.fillStyle = bg; g.fillRect(0, 0, w, h); g.drawImage(source, 0, 0);
    return c.toDataURL('image/png');
  });
  if (!animated) {
    const img = new Image();
    img.src = url;
    await img.decode();
    return [{duration: null, drawn: draw(img, img.naturalWidth, img.naturalHeight)}];
  }
  const type = url.endsWith('.webp') ? 'image/webp'
             : url.endsWith('.gif') ? 'image/gif' : 'image/png';
  const dec = new ImageDecoder({data: await (await fetch(url)).arrayBuffer(), type});
  await dec.tracks.ready;
  const out = [];
  for (let i = 0; i < dec.tracks.selectedTrack.frameCount; i++) {
    const f = (await dec.decode({frameIndex: i})).image;
    out.push({duration: f.duration, drawn: draw(f, f.displayWidth, f.displayHeight)});
    f.close();
  }
  dec.close();
  return out;
}"""


# --- the inputs ----------------------------------------------------------------------------------


def _png16_rgba(rgba: np.ndarray) -> bytes:
    """A 16-bit RGBA PNG (colour type 6, depth 16), which Pillow cannot write."""
    h, w, _ = rgba.shape
    raw = b"".join(b"\0" + rgba[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def _frames(n: int) -> list[Image.Image]:
    """A ball crossing a transparent field over a textured opaque strip (where a lossy
    encoding pays), a half-transparent band below it."""
    rng = np.random.default_rng(19)
    out = []
    for i in range(n):
        im = Image.new("RGBA", (128, 96), (0, 0, 0, 0))
        strip = rng.integers(90, 170, (12, 128, 3)).astype(np.uint8)
        im.paste(Image.fromarray(strip).convert("RGBA"), (0, 0))
        d = ImageDraw.Draw(im)
        d.ellipse((8 + i * 10, 16, 48 + i * 10, 56), fill=(220, 40, 40, 255))
        d.rectangle((0, 72, 127, 95), fill=(30, 120, 200, 160))
        out.append(im)
    return out


def _sources(tmp: Path) -> Iterator[tuple[str, Path, bool]]:
    yy, xx = np.mgrid[0:96, 0:128].astype(np.float64)
    path = tmp / "deep-gray.png"
    Image.fromarray((xx * 500 + yy * 20).astype(np.uint16)).save(path, "PNG")
    yield "16-bit gray", path, False
    grain = np.random.default_rng(19).normal(0, 1500, (96, 128))  # a photo's noise: lossy wins
    rgba = np.stack([xx * 510 + grain, yy * 680 - grain, 65535 - xx * 400 + grain,
                     65535 - np.hypot(xx - 64, yy - 48) * 1100], -1)
    path = tmp / "deep-rgba.png"
    path.write_bytes(_png16_rgba(np.clip(rgba, 0, 65535).astype(np.uint16)))
    yield "16-bit RGBA", path, False
    la = Image.new("LA", (128, 96), (0, 0))
    d = ImageDraw.Draw(la)
    for r in range(40, 0, -4):
        d.ellipse((64 - r, 48 - r, 64 + r, 48 + r), fill=(255 - r * 4, 255 - r * 5))
    path = tmp / "gray-alpha.png"
    la.save(path, "PNG")
    yield "gray+alpha", path, False
    pal = Image.new("P", (128, 96), 0)
    pal.putpalette([0, 0, 0, 250, 60, 20, 20, 90, 200, 250, 220, 0] + [0] * 756)
    d = ImageDraw.Draw(pal)
    d.rectangle((16, 16, 112, 80), fill=1)
    d.line((0, 0, 127, 95), fill=2, width=6)
    d.ellipse((40, 30, 90, 70), fill=3)
    path = tmp / "trns.png"
    pal.save(path, "PNG", transparency=bytes([0, 255, 128, 64]))
    yield "palette+tRNS", path, False
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise
    photo = np.stack([xx * 2, yy * 2 + 40, 255 - xx * 2], -1).astype(np.uint8)
    photo[10:30, 10:60] = (250, 250, 40)  # a mark in one corner, so a wrong turn shows
    path = tmp / "oriented.jpg"
    Image.fromarray(photo).save(path, "JPEG", quality=95, exif=exif.tobytes())
    yield "EXIF orientation", path, False
    frames = _frames(5)
    durations = [60, 120, 180, 120, 60]
    path = tmp / "anim.png"
    frames[0].save(path, "PNG", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, disposal=1)
    yield "APNG", path, True
    path = tmp / "anim.webp"
    frames[0].save(path, "WEBP", save_all=True, append_images=frames[1:], duration=durations,
                   loop=0, lossless=True)
    yield "animated WebP", path, True
    binary = [Image.fromarray(np.where(np.asarray(f)[..., 3:] > 200, np.asarray(f), 0)
                              .astype(np.uint8), "RGBA") for f in frames]
    path = tmp / "anim.gif"
    binary[0].save(path, "GIF", save_all=True, append_images=binary[1:], duration=durations,
                   loop=0, disposal=2)
    yield "transparent GIF", path, True


# --- Chromium ------------------------------------------------------------------------------------


def _shown(page: Any, path: Path, animated: bool) -> list[tuple[float | None, list[np.ndarray]]]:
    """Each frame as Chromium shows it: its duration (ms) and its drawings over white, black."""
    got = page.evaluate(DRAW, [path.as_uri(), animated])
    out = []
    for frame in got:
        drawn = [np.asarray(Image.open(io.BytesIO(base64.b64decode(u.split(",", 1)[1])))
                            .convert("RGB")) for u in frame["drawn"]]
        duration = None if frame["duration"] is None else frame["duration"] / 1000
        out.append((duration, drawn))
    return out


def test_round_trips_look_the_same_in_chromium(chromium: Any, tmp_path: Path) -> None:
    page = chromium.new_page()
    blank = tmp_path / "blank.html"
    blank.write_text("<html><body></body></html>")
    page.goto(blank.as_uri())  # file:// pages may fetch file:// images
    failures = []
    for label, src, animated in _sources(tmp_path):
        out = tmp_path / f"out-{src.name}"
        report = compress(src, out, Options())
        before, after = _shown(page, src, animated), _shown(page, out, animated)
        assert len(before) > 0 and (len(before) > 1) == animated, label
        if len(after) != len(before) or report.frames != len(before):
            failures.append(f"{label}: {len(before)} frames shown, {len(after)} after "
                            f"(report {report.frames})")
            continue
        for i, ((d0, (w0, k0)), (d1, (w1, k1))) in enumerate(zip(before, after, strict=True)):
            if d0 != d1:
                failures.append(f"{label} frame {i}: {d0} ms shown, {d1} ms after")
            if w0.shape != w1.shape:
                failures.append(f"{label} frame {i}: {w0.shape[:2]} shown, {w1.shape[:2]} after")
                continue
            # the background shows through the same pixels, as much (alpha coverage)
            cover0 = w0.astype(np.int16) - k0
            cover1 = w1.astype(np.int16) - k1
            if np.abs(cover0 - cover1).max() > 24 or np.abs(cover0 - cover1).mean() > 2:
                failures.append(f"{label} frame {i}: transparency differs (max "
                                f"{np.abs(cover0 - cover1).max()}, mean "
                                f"{np.abs(cover0 - cover1).mean():.2f} levels)")
            for bg, a, b in (("white", w0, w1), ("black", k0, k1)):
                s = score(Image.fromarray(a), Image.fromarray(b))
                if s < FLOOR:
                    failures.append(f"{label} frame {i} over {bg}: SSIMULACRA2 {s:.1f} "
                                    f"< {FLOOR:.1f}")
    page.close()
    assert not failures, "\n".join(failures)
