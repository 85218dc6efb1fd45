"""The image pipeline: sniff, open under the limits, orient, resize, convert, encode, verify.

One call of :func:`compress` is one file.  Whatever happens, the destination
receives a complete result that is smaller than the input (or the input's own
bytes, with ``original_kept`` in the report, unless a resize or a conversion
was asked for, which is kept even when larger), or nothing at all and a named
:class:`~squeezer.engines.errors.EngineError` is raised.  Every lossy result is
measured against the pixels it encodes (after orientation, resizing and
flattening) and must keep the level's SSIM floor.
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from squeezer.engines.budget import Budget
from squeezer.engines.errors import EngineError, UnsupportedFormatError
from squeezer.engines.files import atomic_copy, input_size
from squeezer.engines.image import gif, jpeg, legacy, png, quality, resize, svg, webp_avif
from squeezer.engines.image.decode import (
    Decoded,
    decode,
    map_pillow_error,
    open_checked,
    pillow_limits,
)
from squeezer.engines.image.metadata import Kept, describe, is_srgb, kept_metadata, to_srgb
from squeezer.engines.image.options import ImageSettings, Keep, OutputFormat, resolve
from squeezer.engines.image.report import ImageReport
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.options import Options
from squeezer.engines.sniff import Kind, sniff_file

Progress = Callable[[float, str], None]

#: formats ``auto`` chooses among (AVIF only for still images: animated AVIF encodes slowly)
LOSSY = ("jpeg", "webp", "avif", "heic")


def engine_versions() -> dict[str, str]:
    import PIL
    from PIL import features

    versions = {"squeezer": __import__("squeezer").__version__, "pillow": PIL.__version__,
                "python": platform.python_version()}
    for name in ("webp", "avif", "jpg", "zlib"):
        version = features.version(name)
        if version:
            versions[{"jpg": "libjpeg-turbo"}.get(name, "lib" + name)] = version
    for module, label in (("pillow_heif", "pillow-heif"), ("oxipng", "pyoxipng"),
                          ("imagequant", "imagequant"), ("scour", "scour"),
                          ("pyjpegli", "pyjpegli"),
                          ("mozjpeg_lossless_optimization", "mozjpeg-lossless")):
        try:
            from importlib.metadata import version as dist_version

            versions[label] = dist_version({"oxipng": "pyoxipng",
                                            "mozjpeg_lossless_optimization":
                                            "mozjpeg-lossless-optimization",
                                            "pillow_heif": "pillow-heif"}.get(module, module))
        except Exception:  # noqa: BLE001, S112 - an optional library that is not there
            continue
    return versions


@dataclass
class Candidate:
    data: bytes
    format: str
    label: str
    quality: int | None = None
    ssim: float | None = None
    frames: list[Image.Image] | None = None  #: the pixels it encodes (for the report's size)


@dataclass
class Context:
    """Everything an encoder needs for one file."""

    source: bytes
    kind: Kind
    decoded: Decoded
    frames: list[Image.Image]
    settings: ImageSettings
    report: ImageReport
    budget: Budget
    changed: bool  #: resized, flattened or colour-converted
    kept: Kept

    @property
    def pixels_changed(self) -> bool:
        """Changed or re-oriented: no byte-level re-pack of the input."""
        return self.changed or self.decoded.orientation != 1

    def pixels_changed_except_orientation(self) -> bool:
        return self.changed

    @property
    def has_alpha(self) -> bool:
        return any(f.mode in ("RGBA", "LA") for f in self.frames)


def compress(
    src: str | Path,
    dst: str | Path,
    options: Options | None = None,
    *,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> ImageReport:
    """Compress the image at ``src`` into ``dst`` and report what was done.

    ``src`` and ``dst`` may be the same path; ``dst`` is replaced atomically.
    The output's format is ``report.format_out`` (the caller picks the file name).
    """
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    options = options or Options()
    limits = limits or DEFAULT_LIMITS
    notify = progress or (lambda fraction, stage: None)
    input_bytes = input_size(src, limits.max_input_bytes)
    kind = sniff_file(src)
    if kind.format == "pdf":
        raise UnsupportedFormatError("this is a PDF; the image engine takes images "
                                     "(squeezer.engines.compress_any picks the engine)")
    settings = resolve(options)
    report = ImageReport(input_bytes=input_bytes, format_in=kind.format,
                         target_size=settings.target_size,
                         settings=settings.model_dump(mode="json"),
                         engine_versions=engine_versions())
    budget = Budget(limits)
    source = src.read_bytes()
    notify(0.05, "reading")
    if kind.format == "svg":
        chosen = _svg(source, settings, report)
    else:
        with pillow_limits(limits.max_image_pixels):
            image = open_checked(src, kind, budget)
            try:
                decoded = decode(image, kind, budget)
                report.input = describe(image, decoded)
            finally:
                image.close()
            notify(0.2, "encoding")
            try:
                chosen = _raster(source, kind, decoded, settings, report, budget)
            except EngineError:
                raise
            except (OSError, ValueError, SyntaxError, MemoryError, Image.DecompressionBombError) as exc:
                raise map_pillow_error(exc) from None
    budget.check_time()
    notify(0.9, "writing")
    grown = chosen is None or len(chosen.data) >= input_bytes
    if grown and chosen is not None and report.requested_changes:
        if len(chosen.data) > input_bytes:
            report.warnings.append(
                f"the result is {len(chosen.data) - input_bytes} bytes larger than the input; "
                f"kept because these changes were requested: {', '.join(report.requested_changes)}")
    elif grown:
        report.original_kept = True
        if chosen is not None:
            report.warnings.append("the input was already smaller than any result; kept it")
        chosen = None
    with tempfile.TemporaryDirectory(prefix="squeezer-img-") as tmp:
        if chosen is None:
            if src.resolve() != dst.resolve():
                atomic_copy(src, dst)
            report.format_out = kind.format
            report.actions, report.quality, report.ssim = [], None, 1.0
            report.metadata_kept, report.metadata_removed = [], []
            if report.input is not None:
                report.width, report.height = report.input.width, report.input.height
                report.frames = report.input.frames
        else:
            out = Path(tmp) / "out"
            out.write_bytes(chosen.data)
            atomic_copy(out, dst)
            report.format_out = chosen.format
            report.quality, report.ssim = chosen.quality, (
                round(chosen.ssim, 5) if chosen.ssim is not None else None)
            report.actions.append(chosen.label)
            if chosen.frames:
                report.width, report.height = chosen.frames[0].size
                report.frames = len(chosen.frames)
    if report.target_size:
        report.target_reached = dst.stat().st_size <= report.target_size
    report.finish(dst.stat().st_size)
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    notify(1.0, "done")
    return report


# --- SVG -----------------------------------------------------------------------------------------


def _svg(source: bytes, settings: ImageSettings, report: ImageReport) -> Candidate | None:
    if settings.format not in (OutputFormat.keep, OutputFormat.auto):
        report.warnings.append(f"an SVG stays SVG (format {settings.format.value} ignored: "
                               "rasterising is not offered)")
    if settings.resize is not None:
        report.warnings.append("resize ignored for an SVG (it is resolution-independent)")
    data = svg.optimize(source, settings.svg_precision)
    try:
        svg.check(data)
    except Exception:  # noqa: BLE001 - a result that does not parse is not used
        report.warnings.append("the optimised SVG did not parse; kept the input")
        return None
    report.metadata_removed = ["comments", "editor metadata"]
    return Candidate(data, "svg", f"svg: scour, {settings.svg_precision} "
                     "significant digits", ssim=None)


# --- raster --------------------------------------------------------------------------------------


def _raster(source: bytes, kind: Kind, decoded: Decoded, settings: ImageSettings,
            report: ImageReport, budget: Budget) -> Candidate | None:
    frames = decoded.frames
    changed = False
    if decoded.orientation != 1:
        report.actions.append(f"exif orientation {decoded.orientation} applied")
    target = _target_format(kind, settings, decoded, report)
    if decoded.icc and Keep.icc not in settings.preserve and not is_srgb(decoded.icc):
        converted, done = to_srgb(frames, decoded.icc)
        if done:
            frames, changed = converted, True
            report.actions.append("converted from its ICC profile to sRGB")
    if settings.resize is not None:
        frames, described = resize.apply(frames, settings.resize)
        if described:
            report.actions.append(described)
            report.requested_changes.append("resize")
            changed = True
    if target in ("jpeg", "bmp", "heic") and any(f.mode in ("RGBA", "LA") for f in frames):
        frames = [_flatten(f, settings.background) for f in frames]
        report.actions.append(f"transparency flattened onto {settings.background}")
        changed = True
    if target in ("jpeg", "heic", "bmp") and len(frames) > 1:
        frames = frames[:1]
        report.warnings.append(f"{target.upper()} has no animation: only the first frame is kept")
    keep_icc = bool(decoded.icc) and not changed and not is_srgb(decoded.icc)
    ctx = Context(source=source, kind=kind, decoded=decoded, frames=frames, settings=settings,
                  report=report, budget=budget,
                  changed=changed, kept=Kept(None, None, [], []))
    ctx.kept = kept_metadata(decoded, settings.preserve, keep_icc=keep_icc)
    if keep_icc and Keep.icc not in settings.preserve:
        report.warnings.append("kept the non-sRGB ICC profile: without it colours would change")
    report.metadata_kept, report.metadata_removed = ctx.kept.kept, ctx.kept.removed
    if target == "auto":
        return _auto(ctx)
    return _encode(ctx, target)


def _target_format(kind: Kind, settings: ImageSettings, decoded: Decoded,
                   report: ImageReport) -> str:
    wanted = settings.format
    if wanted is OutputFormat.keep:
        return kind.format
    if wanted is OutputFormat.auto:
        report.requested_changes.append("convert")
        return "auto"
    if wanted.value != kind.format:
        report.requested_changes.append("convert")
    return wanted.value


def _flatten(frame: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    rgba = frame.convert("RGBA")
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas if frame.mode == "RGBA" else canvas.convert("L")


def _auto(ctx: Context) -> Candidate | None:
    animated = len(ctx.frames) > 1
    formats = ["webp"]
    if not animated:
        formats.append("avif")
        if not ctx.has_alpha:
            formats.append("jpeg")
    source = ctx.kind.format
    if source in ("png", "gif", "jpeg", "webp", "avif") and source not in formats and not (
            source == "jpeg" and ctx.has_alpha) and not (source == "png" and animated):
        formats.append(source)
    if (ctx.has_alpha or source in ("png", "gif")) and "png" not in formats and not animated:
        formats.append("png")
    best: Candidate | None = None
    for fmt in formats:
        ctx.budget.check_time()
        frames = ctx.frames
        if fmt == "jpeg" and any(f.mode in ("RGBA", "LA") for f in frames):
            continue
        candidate = _encode(ctx, fmt)
        if candidate is None:
            continue
        ctx.report.candidates[f"{fmt}"] = len(candidate.data)
        if best is None or len(candidate.data) < len(best.data):
            best = candidate
    if best is not None:
        ctx.report.actions.append(f"auto: {best.format} was the smallest of "
                                  f"{', '.join(ctx.report.candidates)}")
    return best


def _encode(ctx: Context, fmt: str) -> Candidate | None:
    ctx.budget.check_time()
    if fmt == "jpeg":
        return _jpeg(ctx)
    if fmt == "png":
        return _png(ctx)
    if fmt == "gif":
        return _gif(ctx)
    if fmt in ("webp", "avif", "heic"):
        return _modern(ctx, fmt)
    if fmt == "tiff":
        return Candidate(legacy.tiff(ctx.frames, ctx.kept.icc), "tiff",
                         "tiff: deflate (lossless)", ssim=1.0, frames=ctx.frames)
    if fmt == "bmp":
        data = legacy.bmp(ctx.frames[0])
        if data is None:
            if ctx.pixels_changed:
                buf = _save_plain(ctx.frames[0], "BMP")
                return Candidate(buf, "bmp", "bmp: uncompressed", ssim=1.0, frames=ctx.frames)
            return None
        return Candidate(data, "bmp", "bmp: 8-bit palette (lossless)", ssim=1.0,
                         frames=ctx.frames)
    raise UnsupportedFormatError(f"no encoder for {fmt}")  # pragma: no cover


def _save_plain(frame: Image.Image, fmt: str) -> bytes:
    import io

    buf = io.BytesIO()
    frame.save(buf, fmt)
    return buf.getvalue()


# --- JPEG ----------------------------------------------------------------------------------------


def _jpeg(ctx: Context) -> Candidate | None:
    s = ctx.settings
    image = ctx.frames[0]
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    candidates: list[Candidate] = []
    same_pixels = ctx.kind.format == "jpeg" and not ctx.pixels_changed_except_orientation()
    if same_pixels:
        kept = kept_metadata(ctx.decoded, s.preserve, keep_orientation=True,
                             keep_icc=ctx.kept.icc is not None)
        repacked = jpeg.with_metadata(jpeg.lossless_repack(ctx.source), kept.exif, kept.icc)
        candidates.append(Candidate(repacked, "jpeg", "jpeg: mozjpeg lossless re-pack",
                                    ssim=1.0, frames=ctx.frames))
    if s.lossy:
        cap = s.quality_cap
        if ctx.kind.format == "jpeg":
            cap = jpeg.source_quality_cap(ctx.decoded.jpeg_quality, cap)
        if s.target_size:
            q, data = _size_search(image, jpeg.encode, s.target_size, 20, cap)
            candidates.append(_jpeg_candidate(ctx, image, data, q, "jpegli"))
        elif s.ssim is None:
            candidates.append(_jpeg_candidate(ctx, image, jpeg.encode(image, cap), cap, "jpegli"))
        else:
            sample = quality.mosaic(image)
            encoders = (["4:2:0", "turbo", "turbo-lowchroma"] if image.mode == "RGB"
                        else ["4:2:0"])
            # the level's cap bounds the search; when the cap cannot hold the floor, qualities
            # above it (up to a JPEG source's own, else 95) are tried before the floor is given up
            ceiling = max(cap, min(95, ctx.decoded.jpeg_quality or 95))
            for encoder in encoders:

                def enc(img: Image.Image, q: int, encoder: str = encoder) -> bytes:
                    return jpeg.encode(img, q, encoder)

                q = quality.lowest_passing(image, enc, jpeg.decode, s.ssim,
                                           min(s.quality_floor, cap), cap, step=JPEG_STEP)
                if encoder == "turbo-lowchroma" and not jpeg.chroma_ok(
                        sample, enc(sample, q), s.ssim - CHROMA_SLACK):
                    continue  # the coarser chroma shows: no candidate
                if encoder == "4:2:0" and image.mode == "RGB" and not jpeg.chroma_ok(
                        sample, enc(sample, q), s.ssim - CHROMA_SLACK):
                    encoder = "4:4:4"  # saturated edges: no subsampling, and no second try

                    def enc(img: Image.Image, q: int, encoder: str = encoder) -> bytes:
                        return jpeg.encode(img, q, encoder)  # (encoder is now "4:4:4")

                    encoders = encoders[:1]
                q, data, got = quality.verified(image, enc, jpeg.decode, s.ssim, q, ceiling,
                                                step=1)  # one rung past the floor costs ~3 %
                name = {"4:2:0": "jpegli", "turbo": "libjpeg-turbo 4:2:0",
                        "4:4:4": "libjpeg-turbo 4:4:4",
                        "turbo-lowchroma": "libjpeg-turbo 4:2:0 coarse chroma"}[encoder]
                if got >= s.ssim:
                    candidates.append(_jpeg_candidate(ctx, image, data, q, name, got))
                elif not same_pixels and encoder in ("4:2:0", "4:4:4"):
                    # nothing else to offer (the input's own pixels cannot be re-packed)
                    candidates.append(_jpeg_candidate(ctx, image, data, q, name, got))
                    ctx.report.warnings.append(
                        f"SSIM {got:.3f} is below the level's floor {s.ssim} even at quality {q}")
                if len(encoders) == 1:
                    break
    elif not same_pixels:
        data = jpeg.with_metadata(jpeg.encode(image, 95 if ctx.kind.format != "jpeg" else
                                              (ctx.decoded.jpeg_quality or 95)),
                                  ctx.kept.exif, ctx.kept.icc)
        got = quality.score(image, jpeg.decode(data))
        candidates.append(Candidate(data, "jpeg", "jpeg: jpegli q95 (lossless asked, but the "
                                    "pixels changed)", quality=95, ssim=got, frames=[image]))
    return _smallest(ctx, candidates)


#: Distance between the JPEG qualities the search tries (finer than the PDF engine's 5: a
#: standalone image is one file, and overshooting the floor by a rung costs ~6 % of its bytes)
JPEG_STEP = 2
#: Chroma may fall this far below the luma floor before 4:4:4 is used (the eye resolves colour
#: at about half the detail of brightness; at 0 every coloured texture paid 40 % for 4:4:4)
CHROMA_SLACK = 0.05


def _jpeg_candidate(ctx: Context, image: Image.Image, data: bytes, q: int, encoder: str,
                    got: float | None = None) -> Candidate:
    if got is None:
        got = quality.score(image, jpeg.decode(data))
    if image.mode == "L" and encoder == "jpegli":
        encoder = "libjpeg-turbo"
    return Candidate(jpeg.with_metadata(data, ctx.kept.exif, ctx.kept.icc), "jpeg",
                     f"jpeg: {encoder} q{q} + mozjpeg re-pack", quality=q, ssim=got,
                     frames=[image])


def _smallest(ctx: Context, candidates: list[Candidate]) -> Candidate | None:
    candidates = [c for c in candidates if c is not None]
    if not candidates:
        return None
    if len(candidates) > 1:
        for c in candidates:
            ctx.report.candidates.setdefault(c.label, len(c.data))
    return min(candidates, key=lambda c: len(c.data))


def _size_search(image: Image.Image, enc: quality.Encoder, target: int, lowest: int,
                 cap: int) -> tuple[int, bytes]:
    """The highest quality in [lowest, cap] whose whole encode fits ``target`` (else ``lowest``)."""
    best = None
    lo, hi = lowest, cap
    data = enc(image, hi)
    if len(data) <= target:
        return hi, data
    while lo <= hi:
        mid = (lo + hi) // 2
        out = enc(image, mid)
        if len(out) <= target:
            best = (mid, out)
            lo = mid + 1
        else:
            hi = mid - 1
    return best if best is not None else (lowest, enc(image, lowest))


# --- PNG -----------------------------------------------------------------------------------------


def _png(ctx: Context) -> Candidate | None:
    s = ctx.settings
    frames = ctx.frames
    animated = len(frames) > 1
    keep = png.keep_chunks(ctx.kept.exif, ctx.kept.icc)
    candidates: list[Candidate] = []
    if ctx.kind.format == "png" and not ctx.pixels_changed and not ctx.kept.exif:
        data = png.oxipng(ctx.source, keep=[b"iCCP"] if ctx.kept.icc else [], animated=animated,
                          optimize_alpha=s.lossy)
        candidates.append(Candidate(data, "png", "png: oxipng (lossless)", ssim=1.0,
                                    frames=frames))
    else:
        raw = png.save(frames, ctx.decoded.durations, ctx.decoded.loop, ctx.kept.exif,
                       ctx.kept.icc)
        data = png.oxipng(raw, keep=keep, animated=animated, optimize_alpha=s.lossy)
        candidates.append(Candidate(data, "png", "png: oxipng (lossless)", ssim=1.0,
                                    frames=frames))
    if s.lossy:
        candidates += _png_palettes(ctx, keep)
        if not s.target_size and s.ssim is not None and not animated and not any(
                c.quality is not None for c in candidates):
            candidates += _png_posterized(ctx, keep)
    best = _smallest(ctx, candidates)
    if best is not None:
        best.data = png.final_pack(best.data, keep=keep, animated=animated,
                                   optimize_alpha=s.lossy)
    return best


#: palette dithering strengths tried: none first (graphics: fewer bytes, higher SSIM), then
#: Floyd-Steinberg (photographic areas: the floor at fewer colours)
PALETTE_DITHER = (0.0, 1.0)


def _png_palettes(ctx: Context, keep: list[bytes]) -> list[Candidate]:
    """Palette candidates: for each dithering strength, downwards from the level's palette
    quality while the floor holds (a UI screenshot keeps SSIM 0.99 at a fraction of the
    colours); one rung up when the level's own rung fails."""
    s = ctx.settings
    frames = ctx.frames
    animated = len(frames) > 1
    out: list[Candidate] = []
    for dither in PALETTE_DITHER:
        if s.target_size:
            ladder = [s.palette_quality, 60, 40, 20, 5]
        elif s.ssim is None:
            ladder = [s.palette_quality]
        else:
            ladder = [s.palette_quality] + [q for q in (s.palette_quality - 20,
                                                        s.palette_quality - 40,
                                                        s.palette_quality - 60) if q >= 10]
        for index, q in enumerate(ladder):
            ctx.budget.check_time()
            palette = gif.palette_frames(frames, q, dither)
            if palette is None:
                break
            got = _frames_score(frames, palette)
            if s.ssim is not None and got < s.ssim:
                if index == 0 and not s.target_size and q < 95:
                    ladder[1:] = [min(100, q + 15)]  # the level's rung failed: one higher
                    continue
                break  # lower rungs only lose more
            raw = png.save(palette, ctx.decoded.durations, ctx.decoded.loop, ctx.kept.exif,
                           ctx.kept.icc)
            data = png.oxipng(raw, keep=keep, animated=animated, optimize_alpha=True)
            how = "undithered" if dither == 0 else "dithered"
            out.append(Candidate(data, "png", f"png: {png.backend()} palette q{q} {how} + "
                                 "oxipng", quality=q, ssim=got, frames=frames))
            if (s.target_size and len(data) <= s.target_size) or q > s.palette_quality:
                break
    return out


def _png_posterized(ctx: Context, keep: list[bytes]) -> list[Candidate]:
    """A photograph no palette holds at the floor: truecolour rounded to the coarsest step that
    keeps the floor and that the image's own noise hides (no banding)."""
    s = ctx.settings
    if s.ssim is None:  # a fixed quality: no floor to keep (the caller checks this too)
        return []
    frame = ctx.frames[0]
    steps = png.posterize_steps(frame)
    for step in steps:
        ctx.budget.check_time()
        poster = png.posterize(frame, step)
        got = quality.score(frame, poster.convert(frame.mode) if frame.mode in ("RGB", "RGBA",
                                                                                "L") else poster)
        if got < s.ssim:
            continue
        raw = png.save([poster], [], None, ctx.kept.exif, ctx.kept.icc)
        data = png.oxipng(raw, keep=keep, animated=False, optimize_alpha=True)
        return [Candidate(data, "png", f"png: posterised to steps of {step} + oxipng",
                          quality=None, ssim=got, frames=[frame])]
    return []


def _frames_score(reference: list[Image.Image], result: list[Image.Image]) -> float:
    """The floor measure over the first and the middle frame (an animation's worst is rarely
    elsewhere, and every frame would cost a full SSIM each)."""
    picks = sorted({0, len(reference) // 2})
    return min(quality.score(reference[i], result[i].convert(
        "RGBA" if reference[i].mode == "RGBA" else reference[i].mode)) for i in picks)


# --- GIF -----------------------------------------------------------------------------------------


def _gif(ctx: Context) -> Candidate | None:
    s = ctx.settings
    frames = ctx.frames
    candidates: list[Candidate] = []
    durations = ctx.decoded.durations
    if ctx.pixels_changed or ctx.kind.format != "gif":
        palette = gif.palette_frames(frames, 100)
        if palette is not None:
            data = gif.save(palette, durations, ctx.decoded.loop)
            candidates.append(Candidate(data, "gif", "gif: palette per frame, frame "
                                        "differencing", ssim=_frames_score(frames, palette),
                                        frames=frames))
    else:
        data = gif.save(frames, durations, ctx.decoded.loop)
        if gif.frames_equal(data, frames):
            candidates.append(Candidate(data, "gif", "gif: frame differencing (lossless)",
                                        ssim=1.0, frames=frames))
    if s.lossy:
        candidates += _gif_palettes(ctx)
    return _smallest(ctx, candidates)


def _gif_palettes(ctx: Context) -> list[Candidate]:
    """Lossy GIF candidates: a shared palette (opaque animations) and per-frame palettes, each
    undithered then dithered, downwards from the level's palette quality while every frame
    keeps the floor; the undithered shared-palette ladder goes lowest (it wins most often)."""
    s = ctx.settings
    frames = ctx.frames
    pq = s.palette_quality
    out: list[Candidate] = []
    ways = [("shared palette", gif.shared_palette_frames, 0.0),
            ("palette per frame", gif.palette_frames, 0.0),
            ("shared palette", gif.shared_palette_frames, 1.0),
            ("palette per frame", gif.palette_frames, 1.0)]
    for index, (name, make, dither) in enumerate(ways):
        ladder = [pq] if s.ssim is None or index else [pq] + [
            q for q in (pq - 20, pq - 40, pq - 60) if q >= 10]
        for q in ladder:
            ctx.budget.check_time()
            palette = make(frames, q, dither)
            if palette is None:
                break
            got = gif.frames_score(frames, palette)
            if s.ssim is not None and got < s.ssim:
                break  # lower rungs only lose more
            data = gif.save(palette, ctx.decoded.durations, ctx.decoded.loop)
            how = "dithered" if dither else "undithered"
            out.append(Candidate(data, "gif", f"gif: {png.backend()} {name} q{q} {how}, "
                                 "frame differencing", quality=q, ssim=got, frames=frames))
            if s.target_size and len(data) <= s.target_size:
                return out
    return out


def _webp_lossless(data: bytes) -> bool:
    return b"VP8L" in data[12:64] or (b"VP8L" in data[:4096] and b"VP8 " not in data[:4096])


def _few_colors(image: Image.Image, limit: int = 4096) -> bool:
    """Line art, screenshots, logos: few distinct colours in a sample (lossless WebP wins)."""
    sample = quality.mosaic(image, 1 << 16)
    return sample.getcolors(limit) is not None


# --- WebP, AVIF, HEIC ----------------------------------------------------------------------------


_MODERN = {"webp": webp_avif.webp, "avif": webp_avif.avif, "heic": webp_avif.heic}


def _modern(ctx: Context, fmt: str) -> Candidate | None:
    s = ctx.settings
    write = _MODERN[fmt]
    frames = ctx.frames
    d = ctx.decoded
    exif, icc = ctx.kept.exif, ctx.kept.icc
    candidates: list[Candidate] = []
    if fmt == "webp" and ctx.kind.format == "webp" and not ctx.pixels_changed:
        stripped = webp_avif.strip_webp(ctx.source, keep_icc=icc is not None)
        if stripped is not None:
            candidates.append(Candidate(stripped, "webp", "webp: metadata chunks removed",
                                        ssim=1.0, frames=frames))
    lossy_source = ctx.kind.format in LOSSY and not (
        ctx.kind.format == "webp" and _webp_lossless(ctx.source))
    graphic = _few_colors(frames[0])
    if fmt == "webp" and not s.target_size and (graphic or (not s.lossy and not lossy_source)):
        data = write(frames, None, d.durations, d.loop, exif, icc)
        candidates.append(Candidate(data, "webp", "webp: lossless", ssim=1.0, frames=frames))
    if s.lossy:
        first = frames[0]

        def enc(img: Image.Image, q: int) -> bytes:
            return write([img], q, [], None, None, None)

        if s.target_size:
            q, _ = _size_search(first, lambda img, q: write(frames, q, d.durations, d.loop,
                                                            exif, icc) if img is first
                                else enc(img, q), s.target_size, 5, s.quality_cap)
        elif s.ssim is None:
            q = s.quality_cap
        else:
            cap = s.quality_cap
            if ctx.kind.format == "jpeg" and d.jpeg_quality:
                cap = min(100, max(cap, d.jpeg_quality))
            q = quality.bisect_passing(first, enc, webp_avif.decode, s.ssim, s.quality_floor, cap)
            if len(frames) == 1:
                q, _, _ = quality.verified(first, enc, webp_avif.decode, s.ssim, q, cap)
        data = write(frames, q, d.durations, d.loop, exif, icc)
        got = quality.score(first, webp_avif.decode(data).convert(first.mode))
        candidates.append(Candidate(data, fmt, f"{fmt}: q{q}", quality=q, ssim=got,
                                    frames=frames))
    elif ctx.kind.format == fmt == "avif" or ctx.kind.format == fmt == "heic":
        ctx.report.warnings.append(f"{fmt.upper()} has no lossless re-pack; kept the input")
    elif fmt != "webp" and ctx.kind.format != fmt:
        data = write(frames, None, d.durations, d.loop, exif, icc)
        got = quality.score(frames[0], webp_avif.decode(data).convert(frames[0].mode))
        candidates.append(Candidate(data, fmt, f"{fmt}: quality 100", quality=100, ssim=got,
                                    frames=frames))
    return _smallest(ctx, candidates)
