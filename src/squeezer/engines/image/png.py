"""PNG output: oxipng for lossless, libimagequant palettes for lossy, the fewer bytes wins.

Lossless: the input's own bytes through oxipng (``pyoxipng``: filter, bit depth,
colour type and palette reductions, libdeflate level 12), so a PNG input is
re-packed without a single pixel decoded and re-encoded; any other source is
first written by Pillow.  Lossy: the pixels quantised to at most 256 colours
by libimagequant (``imagequant``, the library behind pngquant; Pillow's own
build when it has one), Floyd-Steinberg dithered, then oxipng.  The palette
candidate is kept only when it holds the level's SSIM floor, and only when it
is smaller than the lossless one.

APNG: oxipng only re-packs the default image, so the animation chunks are kept;
frames are quantised one by one for the lossy candidate.
"""

from __future__ import annotations

import io

from PIL import Image, features

try:
    import oxipng as _oxipng
except ImportError:  # pragma: no cover - the dependency is declared
    _oxipng = None
try:
    import imagequant as _liq
except ImportError:  # pragma: no cover - the dependency is declared
    _liq = None

#: oxipng's preset level: 2 is its default; 3-4 measured <1 % smaller at 2x the time
OXIPNG_LEVEL = 2
_APNG_CHUNKS = [b"acTL", b"fcTL", b"fdAT"]


def oxipng(data: bytes, *, keep: list[bytes], animated: bool, optimize_alpha: bool) -> bytes:
    """``data`` through oxipng, keeping only the ancillary chunks in ``keep``; never larger."""
    if _oxipng is None:
        return data
    chunks = list(keep) + (_APNG_CHUNKS if animated else [])
    try:
        out = _oxipng.optimize_from_memory(
            data, level=OXIPNG_LEVEL, optimize_alpha=optimize_alpha,
            strip=_oxipng.StripChunks.keep(chunks) if chunks else _oxipng.StripChunks.all(),
        )
    except Exception:  # noqa: BLE001 - oxipng refusing a file leaves it as it is
        return data
    return out if len(out) < len(data) else data


def save(frames: list[Image.Image], durations: list[int], loop: int | None,
         exif: bytes | None, icc: bytes | None) -> bytes:
    buf = io.BytesIO()
    extra: dict = {}
    if exif:
        extra["exif"] = exif
    if icc:
        extra["icc_profile"] = icc
    if len(frames) > 1:
        frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], optimize=False,
                       duration=durations or 100, loop=loop or 0, compress_level=6, **extra)
    else:
        frames[0].save(buf, "PNG", compress_level=6, **extra)
    return buf.getvalue()


def keep_chunks(exif: bytes | None, icc: bytes | None) -> list[bytes]:
    return ([b"eXIf"] if exif else []) + ([b"iCCP"] if icc else [])


def quantize(image: Image.Image, quality: int, dither: float = 1.0) -> Image.Image | None:
    """A palette image of at most 256 colours at libimagequant ``quality`` (0-100), or None."""
    rgba = image.convert("RGBA")
    if _liq is not None:
        try:
            # the raw-bytes entry point: quantize_pil_image copies pixels in a Python loop
            data, palette = _liq.quantize_raw_rgba_bytes(
                rgba.tobytes(), rgba.width, rgba.height, dithering_level=dither,
                max_colors=256, min_quality=0, max_quality=quality)
            out = Image.frombytes("P", rgba.size, data, decoder_name="raw")
            out.putpalette(palette, rawmode="RGBA")
            return out
        except Exception:  # noqa: BLE001 - quantisation failing means no palette candidate
            return None
    if features.check("libimagequant"):
        return rgba.quantize(256, method=Image.Quantize.LIBIMAGEQUANT,
                             dither=Image.Dither.FLOYDSTEINBERG)
    return rgba.quantize(256, method=Image.Quantize.FASTOCTREE)


def palette_frame(image: Image.Image, quality: int) -> Image.Image | None:
    """The quantised frame in the mode a PNG/GIF writer needs (P with tRNS for alpha)."""
    quantized = quantize(image, quality)
    if quantized is None:
        return None
    if image.mode in ("RGB", "L"):
        quantized.info.pop("transparency", None)
    return quantized


def backend() -> str:
    if _liq is not None:
        return "imagequant"
    return "pillow-libimagequant" if features.check("libimagequant") else "pillow-octree"
