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
    """The frames as a GIF (palette frames with alpha become one transparent index each):
    :func:`pack` for opaque frames, else Pillow's writer."""
    frames = [binary_alpha(f) for f in frames]
    packed = pack(frames, durations, loop)
    if packed is not None:
        return packed
    buf = io.BytesIO()
    extra: dict = {"optimize": True}
    if len(frames) > 1:
        extra.update(save_all=True, append_images=frames[1:], duration=durations or 100,
                     disposal=1 if not _alpha(frames) else 2)
        if loop is not None:  # no NETSCAPE block: the animation plays once, as the source did
            extra["loop"] = loop
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


# --- our own writer: transparency differencing and colour tables of the colours used ------------

#: a frame's changed rectangle is written twice (every pixel, and the unchanged ones as the
#: transparent index) with each of these tables, and the smallest is kept
_LOCAL, _GLOBAL = "local", "global"


def pack(frames: list[Image.Image], durations: list[int], loop: int | None) -> bytes | None:
    """An opaque animation (or still) written the way ``gifsicle -O3`` does, in numpy and
    Pillow's LZW encoder: each frame after the first is the rectangle that changed, with
    every pixel that did not change inside it as a transparent index (long runs of one code
    for LZW) when that is smaller, and a colour table holding only the colours the rectangle
    uses (3 x 2^k bytes and k-bit codes, not 256 entries and 8-bit codes), or the first
    frame's table when that is smaller.  Frames are never disposed (each is drawn over the
    last), so a pixel that does not change costs almost nothing; a frame identical to the
    last is one pixel (Pillow merges it into the last, changing the frame count).

    Pillow's writer crops each frame to its changed rectangle but keeps
    256-entry tables and codes every pixel in it: a ball moving over a gradient was 96 KB
    there and 73 KB from gifsicle.  None when a frame has transparency or a rectangle needs
    more than 256 colours (the caller keeps Pillow's result)."""
    if not frames or any(f.mode in ("RGBA", "LA", "PA") or "transparency" in f.info
                         for f in frames):
        return None
    arrays = [_packed_rgb(f) for f in frames]
    h, w = arrays[0].shape
    delays = [int(d) for d in durations] if durations else [100] * len(arrays)
    delays += [delays[-1] if delays else 100] * (len(arrays) - len(delays))
    kept, times = arrays, delays
    first_colours = np.unique(arrays[0])
    if len(first_colours) > 256:
        return None
    global_bits = max(1, int(len(first_colours) - 1).bit_length())
    global_table = _table_bytes(first_colours, global_bits)
    out = [b"GIF89a", w.to_bytes(2, "little"), h.to_bytes(2, "little"),
           bytes([0x80 | 0x70 | (global_bits - 1), 0, 0]), global_table]
    if len(kept) > 1 and loop is not None:  # none: the animation plays once, as the source did
        out.append(b"\x21\xff\x0bNETSCAPE2.0\x03\x01" + loop.to_bytes(2, "little") + b"\x00")
    previous: np.ndarray | None = None
    for array, delay in zip(kept, times, strict=True):
        block = _frame_block(array, previous, first_colours, global_bits,
                             delay if len(kept) > 1 else None)
        if block is None:
            return None
        out.append(block)
        previous = array
    out.append(b";")
    return b"".join(out)


def _packed_rgb(frame: Image.Image) -> np.ndarray:
    """The frame's colours as one 24-bit integer per pixel (H x W uint32)."""
    a = np.asarray(frame.convert("RGB")).astype(np.uint32)
    return (a[..., 0] << 16) | (a[..., 1] << 8) | a[..., 2]


def _table_bytes(colours: np.ndarray, bits: int) -> bytes:
    """A GIF colour table of 2^bits entries: ``colours`` (packed RGB) then black."""
    table = np.zeros((1 << bits, 3), np.uint8)
    n = len(colours)
    table[:n, 0] = colours >> 16
    table[:n, 1] = (colours >> 8) & 0xFF
    table[:n, 2] = colours & 0xFF
    return table.tobytes()


def _lzw(indices: np.ndarray, bits: int) -> bytes:
    """The image data of one frame (code size byte, sub-blocks, terminator) by Pillow's LZW
    encoder at the smallest code size a ``bits``-bit table allows."""
    code_size = max(2, bits)
    h, w = indices.shape
    image = Image.fromarray(np.ascontiguousarray(indices, dtype=np.uint8), "L")
    buf = io.BytesIO()
    image.encoderconfig = (code_size, 0)
    ImageFile._save(image, buf, [ImageFile._Tile("gif", (0, 0, w, h), 0, "L")])
    return bytes([code_size]) + buf.getvalue() + b"\x00"


def _frame_block(array: np.ndarray, previous: np.ndarray | None, global_colours: np.ndarray,
                 global_bits: int, delay: int | None) -> bytes | None:
    """One frame's control extension, descriptor, table and data: the smallest of the ways
    (every pixel or the changed ones, local or global table) that can code it."""
    if previous is None:
        top, left, region, changed = 0, 0, array, None
    else:
        diff = array != previous
        rows, cols = np.flatnonzero(diff.any(axis=1)), np.flatnonzero(diff.any(axis=0))
        if len(rows):
            top, bottom, left, right = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        else:  # the same picture again: one pixel, so that the frame (and its delay) stays
            top, bottom, left, right = 0, 1, 0, 1
        region = array[top:bottom, left:right]
        changed = diff[top:bottom, left:right] if len(rows) else None
    rh, rw = region.shape
    best: bytes | None = None
    for transparent in ((False,) if changed is None or changed.all() else (False, True)):
        coded = region[changed] if transparent else region.ravel()
        used = np.unique(coded)
        for table in (_LOCAL, _GLOBAL):
            if table == _GLOBAL:
                position = np.searchsorted(global_colours, used)
                position[position >= len(global_colours)] = 0
                if not np.array_equal(global_colours[position], used):
                    continue
                colours, bits = global_colours, global_bits
                clear = len(colours)
                if transparent and clear >= 1 << bits:
                    continue
            else:
                colours = used
                clear = len(colours)
                slots = clear + (1 if transparent else 0)
                if slots > 256:
                    continue
                bits = max(1, int(slots - 1).bit_length())
            indices = np.searchsorted(colours, region).astype(np.uint8)
            if changed is not None and transparent:
                indices[~changed] = clear
            control = b""
            if delay is not None or transparent:
                flags = (1 << 2) | (1 if transparent else 0)  # disposal 1: keep, drawn over
                control = (b"\x21\xf9\x04" + bytes([flags])
                           + round((delay or 0) / 10).to_bytes(2, "little")
                           + bytes([clear if transparent else 0]) + b"\x00")
            descriptor = (b"," + int(left).to_bytes(2, "little") + int(top).to_bytes(2, "little")
                          + rw.to_bytes(2, "little") + rh.to_bytes(2, "little"))
            if table == _LOCAL:
                descriptor += bytes([0x80 | (bits - 1)]) + _table_bytes(colours, bits)
            else:
                descriptor += b"\x00"
            block = control + descriptor + _lzw(indices, bits)
            if best is None or len(block) < len(best):
                best = block
    return best
