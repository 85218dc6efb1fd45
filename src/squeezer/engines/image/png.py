"""PNG output: oxipng for lossless, palettes or posterised colour for lossy, fewest bytes wins.

Lossless: the input's own bytes through oxipng (``pyoxipng``: filter, bit depth,
colour type and palette reductions, libdeflate), so a PNG input is re-packed
without a single pixel decoded and re-encoded; any other source is first
written by Pillow.  Candidates are compared at oxipng level 2; the one kept is
packed again at :data:`FINAL_LEVEL` (up to :data:`FINAL_MAX_BYTES` and
:data:`FINAL_MAX_RAW`) and, when small, with zopfli
(``bench/image_bench.py``: level 4 is 1-20 % smaller than 2 on palette images,
zopfli another 3-7 % on images under :data:`ZOPFLI_MAX_BYTES`).

Lossy, each under the level's SSIM floor (the caller measures):

- palettes of at most 256 colours by libimagequant (``imagequant``, the library
  behind pngquant; Pillow's own build when it has one; Pillow's median-cut
  when neither is installed or ``SQUEEZER_QUANTIZER=pillow`` asks for the
  non-GPL path), at a ladder of qualities, **undithered and dithered**:
  dithering costs bytes on graphics (a UI screenshot: 4.6 KB dithered vs 2.0 KB
  undithered at a higher SSIM), so both are tried;
- for photographs that no palette can hold at the floor, truecolour posterised
  to a coarser step per channel (:func:`posterize`), only as coarse as the
  image's own noise in its smoothest areas hides (:func:`smooth_noise`; no
  banding on clean gradients, which SSIM alone would let through).

APNG: oxipng only re-packs the default image, so the animation chunks are kept;
frames are quantised one by one for the lossy candidate.
"""

from __future__ import annotations

import io
import zlib

import numpy as np
from PIL import Image, features

from squeezer.engines import runtime
from squeezer.engines.image.decode import uses_alpha

try:
    import oxipng as _oxipng
except ImportError:  # pragma: no cover - the dependency is declared
    _oxipng = None  # type: ignore[assignment]  # (a module or None: mypy has no such type)
try:
    from imagequant._libimagequant import ffi as _ffi
    from imagequant._libimagequant import lib as _liq
except ImportError:  # pragma: no cover - the dependency is declared
    _ffi = _liq = None

#: oxipng's preset level while candidates are compared (its default; fast)
OXIPNG_LEVEL = 2
#: the level the chosen result is packed at (bench: 1-20 % smaller than 2 on palette images,
#: 0.3 s for 0.4 megapixel; 6 was no smaller than 4).  Measured again for issue 19's speed
#: target on a 0.7 Mpx screenshot's palette: level 4 saved 2.7 % for 5x level 2's time,
#: zopfli 2.4 % more for 17x; on a 0.3 Mpx photo palette level 4 was 3 % *larger* than 2
FINAL_LEVEL = 4
#: (the lossy levels keep level 2's result: level 4's time grows with the pixels, not the
#: bytes; a 1024 x 768 slide of 31 KB took 3.0 s at level 4 against 0.5 s at 2 for 4.3 %,
#: and a 0.26 Mpx gray+alpha image came out 0.1 % *larger*)
#: zopfli, at the lossless level only, for results up to this big (3-7 % smaller on graphics;
#: a 57 KB screenshot took 24.6 s for 2.7 %)
ZOPFLI_MAX_BYTES = 32 * 1024
#: ... and only for images of at most this many filtered bytes (:func:`raw_bytes`): zopfli's
#: time grows with what it deflates, not with what it writes.  On 45 PNGs of the document
#: corpora, 250 KB of rows took 0.65-0.8 s for 3-7 %; 1024 x 768 slides (2.4 MB of rows,
#: results of 24-31 KB) 9-13 s each for 4-6 %, which made them take 11-15 s at ``lossless``,
#: and 514 KB of a chart's rows 5 s (zopfli is slowest on long repeats)
ZOPFLI_MAX_RAW = 256 * 1024
#: the lossless level's final pack only for results up to this big (a 1 MB photo: 0.3 %
#: smaller for 2 s)
FINAL_MAX_BYTES = 256 * 1024
#: ... and of at most this many filtered bytes (level 4 took 1.6-2.8 s on the 2.4 MB slides
#: for 2-9 %; 2876 x 2875 pixels of a slide background took 18 s in all)
FINAL_MAX_RAW = 4 * 1024 * 1024
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


def final_pack(data: bytes, *, keep: list[bytes], animated: bool, optimize_alpha: bool,
               lossless: bool = True) -> bytes:
    """The chosen PNG packed harder: oxipng :data:`FINAL_LEVEL`, then (lossless level) zopfli
    when small; bounded so that a packer is not re-run where it costs seconds for 2 %."""
    raw = raw_bytes(data)
    if _oxipng is None or not lossless or len(data) > FINAL_MAX_BYTES or raw > FINAL_MAX_RAW:
        return data
    chunks = list(keep) + (_APNG_CHUNKS if animated else [])
    strip = _oxipng.StripChunks.keep(chunks) if chunks else _oxipng.StripChunks.all()
    best = data
    try:
        best = min(best, _oxipng.optimize_from_memory(
            data, level=FINAL_LEVEL, optimize_alpha=optimize_alpha, strip=strip), key=len)
        if lossless and len(best) <= ZOPFLI_MAX_BYTES and raw <= ZOPFLI_MAX_RAW:
            best = min(best, _oxipng.optimize_from_memory(
                best, level=2, optimize_alpha=optimize_alpha, strip=strip,
                deflate=_oxipng.Deflaters.zopfli(5)), key=len)
    except Exception:  # noqa: BLE001 - oxipng refusing a file leaves it as it is
        return best
    return best


def raw_bytes(data: bytes) -> int:
    """The bytes a PNG's deflate stream holds once inflated (its filtered rows, one filter
    byte each), from its header; a huge number when there is no readable header."""
    if len(data) < 29 or data[12:16] != b"IHDR":
        return 1 << 62
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    depth, colour = data[24], data[25]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}.get(colour, 4)
    return height * (1 + (width * channels * depth + 7) // 8)


def save(frames: list[Image.Image], durations: list[int], loop: int | None,
         exif: bytes | None, icc: bytes | None, compress_level: int = 6) -> bytes:
    """The frames as a PNG for oxipng to pack.  ``compress_level`` 1 where Pillow's deflate
    cannot beat oxipng's anyway (a posterised photo: 0.085 s at 6, 0.03 s at 1, the same
    bytes after oxipng)."""
    buf = io.BytesIO()
    extra: dict = {}
    if exif:
        extra["exif"] = exif
    if icc:
        extra["icc_profile"] = icc
    if len(frames) > 1:
        frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], optimize=False,
                       duration=durations or 100, loop=loop or 0,
                       compress_level=compress_level, **extra)
    else:
        frames[0].save(buf, "PNG", compress_level=compress_level, **extra)
    return buf.getvalue()


def many_colors(frames: list[Image.Image]) -> bool:
    """Whether any frame has more than 256 colours (a palette cannot hold it losslessly)."""
    return any(f.getcolors(256) is None for f in frames)


def keep_chunks(exif: bytes | None, icc: bytes | None) -> list[bytes]:
    return ([b"eXIf"] if exif else []) + ([b"iCCP"] if icc else [])


def quantizer() -> str:
    """``imagequant`` (libimagequant, GPL-3), ``pillow-libimagequant`` or ``pillow`` (median cut,
    no GPL code); ``SQUEEZER_QUANTIZER=pillow`` (:mod:`squeezer.engines.runtime`) picks the
    last whatever is installed."""
    if runtime.current.quantizer == "pillow":
        return "pillow"
    if _liq is not None:
        return "imagequant"
    return "pillow-libimagequant" if features.check("libimagequant") else "pillow"


def quantize(image: Image.Image, quality: int, dither: float = 1.0,
             colors: int = 256) -> Image.Image | None:
    """A palette image of at most ``colors`` colours at libimagequant ``quality`` (0-100), or
    None.  ``dither``: Floyd-Steinberg strength, 0 (none) to 1."""
    rgba = image.convert("RGBA")
    backend = quantizer()
    if backend == "imagequant":
        return _imagequant(rgba, quality, dither, colors)
    if backend == "pillow-libimagequant":
        return rgba.quantize(colors, method=Image.Quantize.LIBIMAGEQUANT,
                             dither=Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE)
    return pillow_quantize(rgba, _pillow_colors(quality, colors), dither)


def _pillow_colors(quality: int, colors: int) -> int:
    """Pillow's quantizers take a colour count, not a quality: the same ladder as colours."""
    return max(2, min(colors, 16 if quality <= 20 else 32 if quality <= 40 else
                      64 if quality <= 60 else 128 if quality <= 80 else 256))


def pillow_quantize(rgba: Image.Image, colors: int, dither: float) -> Image.Image:
    """Pillow's own quantizers (no libimagequant): median cut for opaque images, fast octree
    (the only one of Pillow's that keeps alpha) for transparent ones."""
    flag = Image.Dither.FLOYDSTEINBERG if dither else Image.Dither.NONE
    if uses_alpha(rgba):
        return rgba.quantize(colors, method=Image.Quantize.FASTOCTREE, dither=flag)
    return rgba.convert("RGB").quantize(colors, method=Image.Quantize.MEDIANCUT, dither=flag)


def _imagequant(rgba: Image.Image, quality: int, dither: float,
                colors: int) -> Image.Image | None:
    """libimagequant through the ``imagequant`` wheel's C bindings: the calls of its
    ``quantize_raw_rgba_bytes``, with ``liq_set_max_colors`` and the dithering level."""
    w, h = rgba.size
    attr = _liq.liq_attr_create()
    image = result = None
    try:
        _liq.liq_set_max_colors(attr, colors)
        _liq.liq_set_quality(attr, 0, quality)
        pixels = rgba.tobytes()
        image = _liq.liq_image_create_rgba(attr, pixels, w, h, 0)
        out = _ffi.new("liq_result**")
        if _liq.liq_image_quantize(image, attr, out) != _liq.LIQ_OK:
            return None
        result = out[0]
        _liq.liq_set_dithering_level(result, float(dither))
        buf = _ffi.new("char[]", w * h)
        if _liq.liq_write_remapped_image(result, image, buf, w * h) != _liq.LIQ_OK:
            return None
        pal = _liq.liq_get_palette(result)
        palette: list[int] = []
        for i in range(pal.count):
            c = pal.entries[i]
            palette += [c.r, c.g, c.b, c.a]
        quantized = Image.frombytes("P", (w, h), _ffi.buffer(buf, w * h)[:])
        quantized.putpalette(palette, rawmode="RGBA")
        return quantized
    except Exception:  # noqa: BLE001 - quantisation failing means no palette candidate
        return None
    finally:
        if result is not None:
            _liq.liq_result_destroy(result)
        if image is not None:
            _liq.liq_image_destroy(image)
        _liq.liq_attr_destroy(attr)


def posterize(image: Image.Image, step: int) -> Image.Image:
    """Each colour channel rounded to a multiple of ``step`` (alpha untouched): fewer distinct
    values, so smaller filtered rows for deflate.  Truecolour, not a palette."""
    mode = image.mode
    rgba = np.asarray(image.convert("RGBA" if mode in ("RGBA", "LA", "P") else
                                    "L" if mode == "L" else "RGB")).copy()
    colour = rgba[..., :3] if rgba.ndim == 3 else rgba
    rounded = (colour.astype(np.int16) + step // 2) // step * step
    colour[...] = np.clip(rounded, 0, 255).astype(np.uint8)
    return Image.fromarray(rgba)


def smooth_noise(image: Image.Image, block: int = 16, percentile: float = 10) -> float:
    """Luma noise (sigma, in levels) in the image's smoothest areas: Immerkaer's Laplacian
    estimate per ``block`` square, the ``percentile``-th smoothest block.  Rounding to a step
    below about twice this is dithered by the image's own noise; above it, gradients band.

    Only opaque blocks count: a cut-out photo's transparent surround is flat (one hidden
    colour), and as its smoothest blocks it read as a noiseless image (a 0.86 Mpx product
    shot in a PPTX, 59 % transparent: 0.0, so never posterised, kept lossless at 717 KB)."""
    luma = np.asarray(image.convert("L"), dtype=np.float32)
    if luma.shape[0] < block + 2 or luma.shape[1] < block + 2:
        return 0.0
    opaque = None
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        alpha = np.asarray(image.convert("RGBA"))[..., 3]
        if alpha.min() < 255:
            opaque = alpha[1:-1, 1:-1] == 255
    lap = (luma[:-2, :-2] - 2 * luma[:-2, 1:-1] + luma[:-2, 2:] - 2 * luma[1:-1, :-2]
           + 4 * luma[1:-1, 1:-1] - 2 * luma[1:-1, 2:] + luma[2:, :-2] - 2 * luma[2:, 1:-1]
           + luma[2:, 2:])
    a = np.abs(lap)
    h, w = (a.shape[0] // block) * block, (a.shape[1] // block) * block
    blocks = a[:h, :w].reshape(h // block, block, w // block, block).mean(axis=(1, 3))
    if opaque is not None:
        solid = opaque[:h, :w].reshape(h // block, block, w // block, block).all(axis=(1, 3))
        if not solid.any():
            return 0.0
        blocks = blocks[solid]
    return float(np.percentile(blocks, percentile) * np.sqrt(np.pi / 2) / 6)


#: posterisation steps tried, coarsest first; a step is allowed up to 2 x the smooth noise
POSTERIZE_STEPS = (8, 7, 6, 5, 4, 3, 2)


def posterize_steps(image: Image.Image) -> list[int]:
    """The steps :func:`posterize` may use on ``image`` without visible banding."""
    limit = 2 * smooth_noise(image)
    return [s for s in POSTERIZE_STEPS if s <= limit]


#: the step tried on an image too clean for :func:`posterize_steps`: rounding to even values
#: moves a channel by at most one level of 255, below what anyone sees and too small for a
#: band edge (the SSIMULACRA2 floor and the banding check still decide); renders and
#: gradients whose lowest bit is noise-like then lose it (a slide's 1.5 Mpx render 310 -> 231
#: KB), when :func:`lowest_bit_pays` says it will
FINEST_STEP = 2
#: :func:`lowest_bit_pays` when the sample's rows, filtered and deflated, shrink to this share
#: (43 real PNGs no palette held: those at 0.95 or less gained 5-26 % in the end; the
#: screenshots at 1.0 gained 0-0.5 % for twice the time)
LOWEST_BIT_GAIN = 0.95
#: the SSIMULACRA2 score dropping the lowest bit must keep (those 16 kept 94-97; a dark ramp
#: fell to 85.0, a visible change for 2.6 % of its bytes)
LOWEST_BIT_SCORE = 90.0


def lowest_bit_pays(sample: Image.Image) -> bool:
    """Whether dropping the lowest bit of each channel shrinks ``sample`` enough to be worth a
    full-size posterise and oxipng: estimated with the Sub filter and fast deflate."""
    before = _sub_deflated(np.asarray(sample))
    after = _sub_deflated(np.asarray(posterize(sample, FINEST_STEP)))
    return after <= LOWEST_BIT_GAIN * before


def _sub_deflated(pixels: np.ndarray) -> int:
    rows = pixels.astype(np.int16)
    filtered = (np.diff(rows, axis=1, prepend=0) % 256).astype(np.uint8)
    return len(zlib.compress(filtered.tobytes(), 1))


def palette_frame(image: Image.Image, quality: int, dither: float = 1.0,
                  colors: int = 256) -> Image.Image | None:
    """The quantised frame in the mode a PNG/GIF writer needs (P with tRNS for alpha)."""
    quantized = quantize(image, quality, dither, colors)
    if quantized is None:
        return None
    if image.mode in ("RGB", "L"):
        quantized.info.pop("transparency", None)
    return quantized


def palette_full(image: Image.Image) -> bool:
    """Whether a quantised frame's palette has all 256 entries."""
    if image.mode != "P" or image.palette is None:
        return False
    return len(image.palette.palette) >= 256 * len(image.palette.mode)


def backend() -> str:
    return {"pillow": "pillow-mediancut"}.get(quantizer(), quantizer())
