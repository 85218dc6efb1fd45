"""GIF output: frame differencing and palette reduction.

Pillow's GIF writer stores each frame after the first as the rectangle that
changed (``optimize`` also drops unused palette entries).  Lossless: the
decoded frames written again, kept only when every frame decodes to the same
pixels.  Lossy (the pipeline keeps the smallest that holds the level's floor on
the frames it scores and keeps every frame's transparency):

- one palette shared by every frame (:func:`shared_palette_frames`; opaque
  animations): libimagequant's palette of a montage of the frames, each frame
  remapped to it, so pixels that do not move keep the same index and the
  changed rectangle stays small (a generated 8-frame gradient animation: 35 %
  smaller than the input at SSIM 0.968, where per-frame palettes were not
  smaller at all);
- a palette per frame (:func:`palette_frames`, frames with transparency);
- each undithered (first) and dithered, downwards from the level's palette
  quality: dithering noise costs LZW bytes and shows on smooth areas.

Transparency: a palette with alpha (libimagequant quantises RGBA) is written with one
transparent index per frame (:func:`binary_alpha`); the pipeline measures every candidate
by decoding the written bytes again, so a frame that lost its transparency fails the floor.

Making unchanged pixels transparent inside the changed rectangle was measured
too and left out: after the shared palette it added 0.3-1 % (Pillow already
crops each frame to the rectangle that changed).

Pillow's writer always starts LZW at 8-bit codes, whatever the colour table's
size; :func:`min_code_size` re-codes each frame at the smallest code size its
colour table allows (a 6-colour UI animation: codes of 4 bits, not 9), with
Pillow's own LZW encoder, and keeps the result only when it decodes to the
same frames.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFile, ImageSequence

from squeezer.engines.image import png


def save(frames: list[Image.Image], durations: list[int], loop: int | None) -> bytes:
    """The frames as a GIF (palette frames with alpha become one transparent index each)."""
    frames = [binary_alpha(f) for f in frames]
    buf = io.BytesIO()
    extra: dict = {"optimize": True}
    if len(frames) > 1:
        extra.update(save_all=True, append_images=frames[1:], duration=durations or 100,
                     loop=0 if loop is None else loop, disposal=1 if not _alpha(frames) else 2)
    frames[0].save(buf, "GIF", **extra)
    data = buf.getvalue()
    smaller = min_code_size(data)
    if smaller is not data and _same_frames(data, smaller):
        return smaller
    return data


def _sub_blocks(data: bytes, pos: int) -> int:
    """The offset just past the sub-blocks starting at ``pos`` (after their 0 terminator)."""
    while True:
        n = data[pos]
        pos += 1 + n
        if n == 0:
            return pos


def _table_bits(flags: int) -> int:
    return (flags & 7) + 1


def min_code_size(data: bytes) -> bytes:
    """``data`` with every frame's LZW data re-coded at the smallest minimum code size its
    colour table allows (2 to 8 bits); ``data`` itself when nothing is smaller or the file is
    not the plain GIF89a/87a Pillow writes."""
    try:
        if data[:3] != b"GIF" or len(data) < 13:
            return data
        flags = data[10]
        global_bits = _table_bits(flags) if flags & 0x80 else None
        pos = 13 + (3 << global_bits if global_bits else 0)
        global_table = data[13:pos]
        out = [data[:pos]]
        changed = False
        while pos < len(data):
            kind = data[pos]
            if kind == 0x3B:
                out.append(data[pos:])
                break
            if kind == 0x21:
                end = _sub_blocks(data, pos + 2)
                out.append(data[pos:end])
                pos = end
                continue
            if kind != 0x2C:
                return data
            desc = data[pos:pos + 10]
            w = int.from_bytes(desc[5:7], "little")
            h = int.from_bytes(desc[7:9], "little")
            iflags = desc[9]
            start = pos + 10
            if iflags & 0x80:
                bits = _table_bits(iflags)
                table = data[start:start + (3 << bits)]
                start += 3 << bits
            elif global_bits:
                bits, table = global_bits, global_table
            else:
                return data
            code_size = data[start]
            end = _sub_blocks(data, start + 1)
            wanted = max(2, bits)
            recoded = None
            if wanted < code_size and w and h:
                recoded = _recode(table, bits, w, h, iflags & 0x40, data[start:end], wanted)
            if recoded is not None and len(recoded) < end - start:
                out.append(data[pos:start] + recoded)
                changed = True
            else:
                out.append(data[pos:end])
            pos = end
        return b"".join(out) if changed else data
    except (IndexError, OSError, ValueError, SyntaxError):
        return data


def _recode(table: bytes, bits: int, w: int, h: int, interlaced: int, lzw: bytes,
            code_size: int) -> bytes | None:
    """One frame's LZW data (its code-size byte first) decoded by Pillow and encoded again at
    ``code_size``."""
    single = (b"GIF89a" + w.to_bytes(2, "little") + h.to_bytes(2, "little")
              + bytes([0x80 | (bits - 1), 0, 0]) + table + b"," + bytes(4)
              + w.to_bytes(2, "little") + h.to_bytes(2, "little") + bytes([interlaced])
              + lzw + b";")
    with Image.open(io.BytesIO(single)) as frame:
        frame.load()
        indices = np.asarray(frame if frame.mode in ("P", "L") else frame.convert("P"))
    if indices.shape != (h, w) or int(indices.max()) >= 1 << code_size:
        return None
    image = Image.fromarray(indices.astype(np.uint8), "L")
    buf = io.BytesIO()
    image.encoderconfig = (code_size, 1 if interlaced else 0)
    ImageFile._save(image, buf, [ImageFile._Tile("gif", (0, 0, w, h), 0, "L")])
    return bytes([code_size]) + buf.getvalue() + b"\x00"


def _same_frames(a: bytes, b: bytes) -> bool:
    try:
        x, y = Image.open(io.BytesIO(a)), Image.open(io.BytesIO(b))
        fx, fy = list(ImageSequence.Iterator(x)), list(ImageSequence.Iterator(y))
        if len(fx) != len(fy):
            return False
        for p, q in zip(fx, fy, strict=True):
            if p.info.get("duration") != q.info.get("duration"):
                return False
            if not np.array_equal(np.asarray(p.convert("RGBA")), np.asarray(q.convert("RGBA"))):
                return False
        return True
    except Exception:  # noqa: BLE001 - a file that does not decode is not the same
        return False


def binary_alpha(frame: Image.Image) -> Image.Image:
    """A palette frame whose palette carries alpha (libimagequant's) as GIF can store it: the
    entries under alpha 128 all become one transparent index (GIF has no partial alpha).
    Without this Pillow writes the colours and drops the alpha: a transparent animation
    came out opaque on a dark background."""
    if frame.mode != "P" or frame.palette is None or frame.palette.mode != "RGBA":
        return frame
    entries = np.frombuffer(frame.palette.tobytes(), np.uint8).reshape(-1, 4)
    clear = np.flatnonzero(entries[:, 3] < 128)
    out = frame.copy()
    out.putpalette(entries[:, :3].tobytes(), rawmode="RGB")
    out.info.pop("transparency", None)
    if len(clear):
        lut = np.arange(256, dtype=np.uint8)
        lut[clear] = clear[0]
        out = Image.fromarray(lut[np.asarray(frame)], "P")
        out.putpalette(entries[:, :3].tobytes(), rawmode="RGB")
        out.info["transparency"] = int(clear[0])
    return out


def _alpha(frames: list[Image.Image]) -> bool:
    return any(f.mode == "RGBA" or "transparency" in f.info for f in frames)


def palette_frames(frames: list[Image.Image], quality: int,
                   dither: float = 1.0) -> list[Image.Image] | None:
    out = []
    for frame in frames:
        quantized = png.palette_frame(frame, quality, dither)
        if quantized is None:
            return None
        out.append(quantized)
    return out


#: the montage a shared palette is built from: at most this many pixels (frames sampled)
SHARED_PALETTE_PIXELS = 4_000_000


def shared_palette_frames(frames: list[Image.Image], quality: int,
                          dither: float = 0.0) -> list[Image.Image] | None:
    """Every frame remapped to one palette (libimagequant on a montage of the frames, or
    Pillow's median cut on the non-GPL path); None for frames with transparency."""
    if any(f.mode in ("RGBA", "LA", "PA") or "transparency" in f.info for f in frames):
        return None
    rgb = [f.convert("RGB") for f in frames]
    w, h = rgb[0].size
    stride = max(1, -(-len(rgb) * w * h // SHARED_PALETTE_PIXELS))
    picked = rgb[::stride]
    montage = Image.new("RGB", (w, h * len(picked)))
    for i, frame in enumerate(picked):
        montage.paste(frame, (0, i * h))
    palette = png.quantize(montage, quality, 0.0)
    if palette is None:
        return None
    target = Image.new("P", (1, 1))
    target.putpalette(palette.getpalette("RGB") or [0, 0, 0])
    flag = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    return [frame.quantize(palette=target, dither=flag) for frame in rgb]


def frames_equal(data: bytes, frames: list[Image.Image]) -> bool:
    """Whether the GIF ``data`` decodes to exactly ``frames`` (as RGBA)."""
    try:
        image = Image.open(io.BytesIO(data))
        decoded = [f.convert("RGBA") for f in ImageSequence.Iterator(image)]
    except Exception:  # noqa: BLE001
        return False
    if len(decoded) != len(frames):
        return False
    for a, b in zip(decoded, frames, strict=True):
        x, y = np.asarray(a), np.asarray(b.convert("RGBA"))
        if x.shape != y.shape:
            return False
        visible = (x[..., 3] > 0) | (y[..., 3] > 0)
        if not np.array_equal(x[visible], y[visible]):
            return False
    return True


def decode_frames(data: bytes) -> list[Image.Image]:
    """Every frame of a written GIF as the whole picture a browser shows (disposal applied)."""
    image = Image.open(io.BytesIO(data))
    return [f.convert("RGBA") for f in ImageSequence.Iterator(image)]
