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
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
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
    """The libraries' versions, for the report (a copy: the report may be changed)."""
    return dict(_versions())


@lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    """Read once per process: the package metadata look-ups cost 40 ms, a tenth of an image."""
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
    score: float | None = None  #: SSIMULACRA2 against the pixels it encodes (None: not measured)
    banding: float | None = None
    frames: list[Image.Image] | None = None  #: the pixels it encodes (for the report's size)
    #: frames the written file has (None: as many as ``frames``)
    frame_count: int | None = None


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
    #: the frames' reference halves of the floor measure, built once per frame (by index)
    checks: dict[int, quality.Check] = field(default_factory=dict)
    _sample: tuple[Image.Image, quality.Reference] | None = None

    @property
    def pixels_changed(self) -> bool:
        """Changed or re-oriented: no byte-level re-pack of the input."""
        return self.changed or self.decoded.orientation != 1

    def pixels_changed_except_orientation(self) -> bool:
        return self.changed

    @property
    def has_alpha(self) -> bool:
        return any(f.mode in ("RGBA", "LA") for f in self.frames)

    def check(self, index: int) -> quality.Check:
        """Frame ``index``'s reference half of the floor measure, built once."""
        check = self.checks.get(index)
        if check is None:
            check = self.checks[index] = quality.Check(self.frames[index])
        return check

    def sample(self) -> tuple[Image.Image, quality.Reference]:
        """The first frame's search sample and its reference half, built once for every
        search on it (the palette ladders, undithered and dithered, and the posterisation
        steps each built their own: 20-40 ms apiece)."""
        if self._sample is None:
            image = quality.sample(self.frames[0])
            self._sample = (image, quality.Reference(image))
        return self._sample


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
            report.actions, report.quality, report.score = [], None, 100.0
            report.metadata_kept, report.metadata_removed = [], []
            if report.input is not None:
                report.width, report.height = report.input.width, report.input.height
                report.frames = report.input.frames
        else:
            out = Path(tmp) / "out"
            out.write_bytes(chosen.data)
            atomic_copy(out, dst)
            report.format_out = chosen.format
            report.quality = chosen.quality
            report.score = round(chosen.score, 2) if chosen.score is not None else None
            report.banding = (round(chosen.banding, 4) if chosen.banding is not None
                              else None)
            report.actions.append(chosen.label)
            if chosen.frames:
                report.width, report.height = chosen.frames[0].size
                report.frames = chosen.frame_count or len(chosen.frames)
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
                     "significant digits", score=None)


# --- raster --------------------------------------------------------------------------------------


def _raster(source: bytes, kind: Kind, decoded: Decoded, settings: ImageSettings,
            report: ImageReport, budget: Budget) -> Candidate | None:
    frames = decoded.frames
    changed = False
    if decoded.orientation != 1:
        report.actions.append(f"exif orientation {decoded.orientation} applied")
    if decoded.converted:
        report.actions.append(decoded.converted)
        changed = True
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
                         "tiff: deflate (lossless)", score=100.0, frames=ctx.frames)
    if fmt == "bmp":
        data = legacy.bmp(ctx.frames[0])
        if data is None:
            if ctx.pixels_changed:
                buf = _save_plain(ctx.frames[0], "BMP")
                return Candidate(buf, "bmp", "bmp: uncompressed", score=100.0, frames=ctx.frames)
            return None
        return Candidate(data, "bmp", "bmp: 8-bit palette (lossless)", score=100.0,
                         frames=ctx.frames)
    raise UnsupportedFormatError(f"no encoder for {fmt}")  # pragma: no cover


def _save_plain(frame: Image.Image, fmt: str) -> bytes:
    import io

    buf = io.BytesIO()
    frame.save(buf, fmt)
    return buf.getvalue()


# --- JPEG ----------------------------------------------------------------------------------------


def _floor(s: ImageSettings) -> quality.Floor | None:
    return None if s.score is None else quality.Floor(s.score, s.banding)


def _jpeg(ctx: Context) -> Candidate | None:
    s = ctx.settings
    image = ctx.frames[0]
    if image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    encoded = image.convert("L") if image.mode == "RGB" and jpeg.is_gray(image) else image
    candidates: list[Candidate] = []
    same_pixels = ctx.kind.format == "jpeg" and not ctx.pixels_changed_except_orientation()
    floor = _floor(s)
    #: only the 4:4:4 fallback held the floor: a source whose 4:2:0 re-encodes fall short is
    #: often near its floor already, and its re-pack (which drops metadata too) can be the
    #: smaller (a 9.2 KB re-pack at 100 against 4:4:4 q73's 9.5 KB at 85.7)
    fallback = False
    if s.lossy:
        cap = s.quality_cap
        if ctx.kind.format == "jpeg":
            cap = jpeg.source_quality_cap(ctx.decoded.jpeg_quality, cap)
        if s.target_size:
            q, data = _size_search(encoded, jpeg.encode, s.target_size, 20, cap)
            candidates.append(_jpeg_candidate(ctx, image, data, q, "jpegli"))
        elif floor is None:
            candidates.append(_jpeg_candidate(ctx, image, jpeg.encode(encoded, cap), cap,
                                              "jpegli"))
        else:
            found, fallback = _jpeg_search(ctx, image, encoded, floor, cap, same_pixels)
            candidates += found
    elif not same_pixels:
        q = 95 if ctx.kind.format != "jpeg" else (ctx.decoded.jpeg_quality or 95)
        candidates.append(_jpeg_candidate(ctx, image, jpeg.encode(encoded, q), q, "jpegli",
                                          note=" (lossless asked, but the pixels changed)"))
    smallest = min((len(c.data) for c in candidates), default=len(ctx.source))
    if same_pixels and (fallback or smallest > REPACK_CANNOT_WIN * len(ctx.source)):
        # mozjpeg's lossless re-pack saves 2-10 % of a JPEG: below that it cannot win, and
        # it costs as much as the whole search on a large photo
        kept = kept_metadata(ctx.decoded, s.preserve, keep_orientation=True,
                             keep_icc=ctx.kept.icc is not None)
        repacked = jpeg.with_metadata(jpeg.lossless_repack(ctx.source), kept.exif, kept.icc)
        candidates.append(Candidate(repacked, "jpeg", "jpeg: mozjpeg lossless re-pack",
                                    score=100.0, banding=0.0, frames=ctx.frames))
    return _smallest(ctx, candidates)


#: SSIMULACRA2 points one quality step of jpegli 4:2:0 (and libjpeg-turbo gray) buys near the
#: default floor: 0.9-1.3 on the bench's 25 photos and gradients between q84 and q92.  With it
#: the secant's first step lands nearer: 98 -> 84 probes on those 25 (each search's answer
#: the same, replayed on their measured score curves)
JPEG_SLOPE = 1.2
#: 4:4:4 (libjpeg-turbo) is tried when jpegli 4:2:0 needs at least this quality: on colour
#: detail (red fruit, flowers) 4:2:0 can reach a high floor only at high quality, where
#: 4:4:4 was 0.6-6 % smaller; below it 4:2:0 was 10-60 % smaller on every bench photo.
#: Trying it doubles an image's time, so only where it can win by more than a little.
FULL_CHROMA_FROM = 90


def _jpeg_search(ctx: Context, image: Image.Image, encoded: Image.Image, floor: quality.Floor,
                 cap: int, same_pixels: bool) -> tuple[list[Candidate], bool]:
    """The lowest quality whose result keeps the floor, for jpegli 4:2:0 (or gray) and, where
    it needs a high quality or cannot keep the floor at all, libjpeg-turbo 4:4:4.  When the
    level's cap cannot hold the floor, qualities above it (up to a JPEG source's own, else
    95) are tried first.  Also whether the candidate is that fallback (4:2:0 held nothing)."""
    s = ctx.settings
    ceiling = max(cap, min(95, ctx.decoded.jpeg_quality or 95))
    start = min(ceiling, s.quality_start)
    out: list[Candidate] = []
    short: Candidate | None = None  #: 4:2:0's best try when it cannot keep the floor
    fallback = False  #: 4:4:4 holds the floor where 4:2:0 held nothing
    chroma_bytes = 0  #: bytes of the 4:2:0 search's chosen probe
    reference: quality.Reference | None = None  #: the probes' pixels, for both searches
    ways = ["4:2:0"] if encoded.mode == "L" else ["4:2:0", "4:4:4"]
    for way in ways:
        ctx.budget.check_time()

        def enc(img: Image.Image, q: int, way: str = way) -> bytes:
            return jpeg.encode(img if way == "4:4:4" else
                               (img.convert("L") if encoded.mode == "L" else img), q, way,
                               repack=False)

        if way == "4:4:4" and out and (out[0].quality or 0) < FULL_CHROMA_FROM:
            break
        if way == "4:4:4":
            # 4:4:4 needs about what 4:2:0 needed; where 4:2:0 fell short of the floor even at
            # the ceiling (fine colour detail: red type on a map, coloured symbols), 4:4:4
            # is the way left (two q99 RGB JPEGs of a photo book: 82.5 at 4:2:0 q95, 86.0 at
            # 4:4:4 q88, 0.44 x their bytes)
            start = (out[0].quality or start) if out else ceiling
        found = quality.search(image, enc, jpeg.decode, floor, min(s.quality_floor, cap),
                               ceiling, start=start, reference=reference,
                               slope=JPEG_SLOPE if way == "4:2:0" else quality.SLOPE)
        reference = found.reference
        if way == "4:2:0":
            chroma_bytes = found.probe_bytes
        elif out and found.probe_bytes >= chroma_bytes:
            # on the same pixels libjpeg-turbo's 4:4:4 is no smaller than jpegli's 4:2:0, and
            # mozjpeg's re-pack takes more off jpegli's (8.7 % against 4.4 % on a 2.5 Mpx
            # photo): it cannot win, so neither the whole image nor its re-pack is written
            break
        if found.data is not None:
            q, data, got = found.quality, found.data, found.measure
        else:  # searched on the check sample's tiles: the whole image, checked there
            q, data, got = quality.verified(image, enc, jpeg.decode, floor, found.quality,
                                            ceiling, step=1, reference=found.reference)
        data = jpeg.repacked(data)
        name = "libjpeg-turbo 4:4:4" if way == "4:4:4" else (
            "libjpeg-turbo gray" if encoded.mode == "L" else "jpegli")
        if way == "4:4:4" and not out and same_pixels and \
                len(data) > REPACK_CANNOT_WIN * len(ctx.source):
            # the fallback only where it clearly beats the lossless re-pack: a q65 source
            # held the floor only at 4:4:4 q65, 3 % under its re-pack, for 85 points of 100
            break
        if floor.holds(got):
            fallback = way == "4:4:4" and not out
            out.append(_jpeg_candidate(ctx, image, data, q, name, got))
        elif way == "4:2:0" and not same_pixels:
            short = _jpeg_candidate(ctx, image, data, q, name, got)
    if not out and short is not None:
        # nothing else to offer (the input's own pixels cannot be re-packed)
        out.append(short)
        ctx.report.warnings.append(
            f"SSIMULACRA2 {short.score:.1f} is below the level's floor {floor.score:g} even "
            f"at quality {short.quality}")
    return out, fallback


#: a lossy result under this fraction of the input JPEG: its lossless re-pack is not tried
REPACK_CANNOT_WIN = 0.8


def _jpeg_candidate(ctx: Context, image: Image.Image, data: bytes, q: int, encoder: str,
                    got: quality.Measure | None = None, note: str = "") -> Candidate:
    if got is None:
        got = quality.measure(image, jpeg.decode(data))
    if encoder == "jpegli" and jpeg.components(data) == 1:
        encoder = "libjpeg-turbo gray"
    return Candidate(jpeg.with_metadata(data, ctx.kept.exif, ctx.kept.icc), "jpeg",
                     f"jpeg: {encoder} q{q} + mozjpeg re-pack{note}", quality=q,
                     score=got.score, banding=got.banding, frames=[image])


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
    if s.lossy:
        candidates += _png_palettes(ctx, keep)
    if s.lossy and not s.target_size and s.score is not None and not animated and not any(
            c.quality is not None for c in candidates):
        candidates += _png_posterized(ctx, keep)
    # the lossless candidate, unless a palette holds the floor on an image of more than 256
    # colours: truecolour cannot be smaller than that palette (oxipng on a 0.7 Mpx
    # screenshot: 0.4 s for 80 KB against the palette's 40 KB); nor than the same truecolour
    # rounded to coarser steps (a 0.6 Mpx photo: 1.10 MB lossless, 0.60 MB posterised, 0.2 s)
    if not candidates or not png.many_colors(frames):
        if ctx.kind.format == "png" and not ctx.pixels_changed and not ctx.kept.exif:
            data = png.oxipng(ctx.source, keep=[b"iCCP"] if ctx.kept.icc else [],
                              animated=animated, optimize_alpha=s.lossy)
        else:
            raw = png.save(frames, ctx.decoded.durations, ctx.decoded.loop, ctx.kept.exif,
                           ctx.kept.icc)
            data = png.oxipng(raw, keep=keep, animated=animated, optimize_alpha=s.lossy)
        candidates.append(Candidate(data, "png", "png: oxipng (lossless)", score=100.0,
                                    banding=0.0, frames=frames))
    best = _smallest(ctx, candidates)
    if best is not None:
        best.data = png.final_pack(best.data, keep=keep, animated=animated,
                                   optimize_alpha=s.lossy, lossless=not s.lossy)
    return best


#: palette dithering strengths tried: none first (graphics: fewer bytes, no dither noise),
#: then Floyd-Steinberg (photographic areas: the floor at fewer colours), only when the
#: undithered palette fails at the level's own rung
PALETTE_DITHER = (0.0, 1.0)


def _palette_ladder(s: ImageSettings) -> list[int]:
    if s.target_size:
        return [s.palette_quality, 60, 40, 20, 5]
    if s.score is None:
        return [s.palette_quality]
    # the level's rung and those below it, and above it the rungs a higher level starts at
    # (so that a level never falls back to lossless where a gentler level found a palette)
    below = [s.palette_quality - d for d in (0, 20, 40, 60) if s.palette_quality - d >= 10]
    return sorted({*below, *(q for q in (90, 100) if q > s.palette_quality)}, reverse=True)


def _png_palettes(ctx: Context, keep: list[bytes]) -> list[Candidate]:
    """Palette candidates, searched on the sample: for each dithering strength, downwards from
    the level's palette quality while the floor holds; the rung found is then quantised on
    the whole image and checked there (one rung up when the whole falls short)."""
    s = ctx.settings
    frames = ctx.frames
    animated = len(frames) > 1
    floor = _floor(s)
    out: list[Candidate] = []
    ladder = _palette_ladder(s)
    for dither in PALETTE_DITHER:
        ctx.budget.check_time()
        rungs = ladder
        if floor is not None and not s.target_size:
            rungs = _sampled_rungs(ctx, ladder, s.palette_quality, dither, floor)
            if not rungs:
                continue  # this dithering cannot hold the floor even at the top rung
        for q in rungs:
            ctx.budget.check_time()
            palette = gif.palette_frames(frames, q, dither)
            if palette is None:
                break
            got = _frames_measure(ctx, palette, floor)
            if floor is not None and not floor.holds(got):
                if all(png.palette_full(p) for p in palette):
                    break  # every colour already used: a higher quality gives the same
                continue  # the whole image is harder than its sample: the next rung is higher
            raw = png.save(palette, ctx.decoded.durations, ctx.decoded.loop, ctx.kept.exif,
                           ctx.kept.icc)
            data = png.oxipng(raw, keep=keep, animated=animated, optimize_alpha=True)
            how = "undithered" if dither == 0 else "dithered"
            out.append(Candidate(data, "png", f"png: {png.backend()} palette q{q} {how} + "
                                 "oxipng", quality=q, score=got.score, banding=got.banding,
                                 frames=frames))
            if floor is not None or (s.target_size and len(data) <= s.target_size):
                break
        if out and dither == 0.0:
            break  # an undithered palette holds: a dithered one costs more bytes
    return out


def _sampled_rungs(ctx: Context, ladder: list[int], start: int, dither: float,
                   floor: quality.Floor) -> list[int]:
    """The rungs worth trying on the whole image (``ladder`` descending): from ``start``,
    down while the sample keeps the floor, or up until it does; then between the rung found
    and the failing one below it, halved to :data:`PALETTE_STEP`; the quality found, the rung
    and every one above it (in case the whole is harder); [] when even the top fails."""
    sample_image, reference = ctx.sample()

    full = False  #: the last palette that failed used all 256 colours

    def passes_at(q: int) -> bool:
        nonlocal full
        quantized = png.palette_frame(sample_image, q, dither)
        held = (quantized is not None and floor.holds(reference.measure(quantized, floor))
                and not _alpha_lost(sample_image, quantized))
        full = not held and quantized is not None and png.palette_full(quantized)
        return held

    def passes(index: int) -> bool:
        return passes_at(ladder[index])

    index = ladder.index(start) if start in ladder else 0
    if passes(index):
        while index + 1 < len(ladder) and passes(index + 1):
            index += 1
    else:
        # a failing palette of all 256 colours: libimagequant cannot add one at a higher
        # quality, and gives the same palette (a photo: 72.3 at 70, 90 and 100)
        while index > 0 and not full and not passes(index - 1):
            index -= 1
        if full:
            return []
        if index == 0:
            return []
        index -= 1
    # every rung above too: a sample can flatter the whole by more than one rung (a 1024 x 768
    # slide: 87 at q70 on its sample, 73 / 82 / 96 at q70 / 90 / 100 on the whole, so two rungs
    # left it lossless at 31 KB against 22 KB for the q100 palette)
    rungs = [ladder[i] for i in range(index, -1, -1)]
    if index + 1 < len(ladder):
        fine = _between(ladder[index + 1], ladder[index], passes_at)
        if fine != ladder[index]:
            rungs.insert(0, fine)
    return rungs


#: the finest palette quality step a search refines to (the ladder's rungs are 20 apart: an
#: icon held the floor at 55, not 50, and took 7206 B at the rung of 70 against 6057 B at 55;
#: a chart GIF 5646 B at 90 against 4745 B at 75)
PALETTE_STEP = 5


def _between(failing: int, passing: int, passes: Callable[[int], bool]) -> int:
    """The lowest quality on a :data:`PALETTE_STEP` grid above ``failing`` that ``passes``,
    by halving the gap (two probes for a gap of 20)."""
    while passing - failing > PALETTE_STEP:
        mid = (failing + passing) // 2 // PALETTE_STEP * PALETTE_STEP
        if mid <= failing:
            mid = failing + PALETTE_STEP
        if mid >= passing:
            break
        if passes(mid):
            passing = mid
        else:
            failing = mid
    return passing


def _png_posterized(ctx: Context, keep: list[bytes]) -> list[Candidate]:
    """A photograph no palette holds at the floor: truecolour rounded to the coarsest step that
    keeps the floor (SSIMULACRA2 and the banding check) and that the image's own noise hides."""
    s = ctx.settings
    floor = _floor(s)
    frame = ctx.frames[0]
    if floor is None:
        return []
    steps = png.posterize_steps(frame)
    sample_image, reference = ctx.sample()
    if not steps and png.lowest_bit_pays(sample_image):
        steps = [png.FINEST_STEP]
        # meant to be invisible: a score that drops near the floor says it is not (a dark
        # teal ramp, 100 -> 85.0 for 2.6 % of its bytes)
        floor = quality.Floor(max(floor.score, png.LOWEST_BIT_SCORE), floor.banding)
    if not steps:
        return []
    for step in steps:
        ctx.budget.check_time()
        if not floor.holds(reference.measure(png.posterize(sample_image, step), floor)):
            continue
        poster = png.posterize(frame, step)
        got = ctx.check(0).measure(poster)
        if not floor.holds(got):
            continue
        raw = png.save([poster], [], None, ctx.kept.exif, ctx.kept.icc, compress_level=1)
        data = png.oxipng(raw, keep=keep, animated=False, optimize_alpha=True)
        return [Candidate(data, "png", f"png: posterised to steps of {step} + oxipng",
                          quality=None, score=got.score, banding=got.banding, frames=[frame])]
    return []


#: frames of an animation a lossy candidate is scored on (evenly spread, first and last
#: included); every frame's transparency (:func:`_alpha_lost`) and the frame count are
#: checked on every frame
SCORED_FRAMES = 8


def _frames_measure(ctx: Context, result: list[Image.Image],
                    floor: quality.Floor | None = None) -> quality.Measure:
    """The worst floor measure of ``result`` against ``ctx.frames`` over up to
    :data:`SCORED_FRAMES` frames, and -1000 when the result loses a frame or any frame's
    transparency (:func:`_alpha_lost`).  With a ``floor``, the first frame that fails it
    ends the count (its measure is returned: the candidate is out whatever the others
    score)."""
    reference = ctx.frames
    if len(result) != len(reference):
        return quality.Measure(-1000.0, 1.0)
    n = len(reference)
    picks = sorted({round(i * (n - 1) / max(1, SCORED_FRAMES - 1))
                    for i in range(min(n, SCORED_FRAMES))})
    worst = quality.PERFECT
    for i in picks:
        got = ctx.check(i).measure(result[i], floor)
        worst = min(worst, got)
        if floor is not None and not floor.holds(got):
            return worst
    if any(_alpha_lost(a, b) for a, b in zip(reference, result, strict=True)):
        worst = min(worst, quality.Measure(-1000.0, 1.0))
    return worst


#: alpha at most this is transparent, at least 255 minus it opaque: a pixel clearly one or
#: the other in the source must stay on its side of 128 (half-transparent edge pixels are
#: left to SSIMULACRA2, which sees them over a dark and a light background)
CLEAR_ALPHA = 63


def _alpha(frame: Image.Image) -> np.ndarray | None:
    """The frame's alpha plane, or None when it has no transparency."""
    if frame.mode not in ("RGBA", "LA", "PA", "P") or (
            frame.mode == "P" and "transparency" not in frame.info
            and frame.palette is not None and frame.palette.mode != "RGBA"):
        return None
    return np.asarray(frame.convert("RGBA").getchannel("A"))


def _alpha_lost(reference: Image.Image, result: Image.Image) -> bool:
    """Whether ``result`` turned a clearly transparent pixel of ``reference`` opaque or a
    clearly opaque one transparent (alpha across 128), or lost its transparency.  An exact
    mask at 128 had failed every palette of anti-aliased logos (an edge pixel of 126 became
    130) and left them lossless at 1.3-1.5 x pngquant's bytes at a higher score."""
    want = _alpha(reference)
    got = _alpha(result)
    if want is None:
        return got is not None and int(got.min()) < 128
    if got is None:
        return int(want.min()) <= CLEAR_ALPHA
    return bool(((want <= CLEAR_ALPHA) & (got >= 128)).any()
                or ((want >= 255 - CLEAR_ALPHA) & (got < 128)).any())


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
            candidates.append(_gif_candidate(ctx, data, "gif: palette per frame, frame "
                                             "differencing", None))
    else:
        # pack's frames are the input's by construction (tests/test_image_gif.py); Pillow's
        # writer quantises RGB frames, so its result is compared
        packed = gif.pack(frames, durations, ctx.decoded.loop)
        exact = packed is not None
        data = packed if packed is not None else gif.save(frames, durations, ctx.decoded.loop)
        if exact or gif.frames_equal(data, frames):
            candidates.append(Candidate(data, "gif", "gif: frame differencing (lossless)",
                                        score=100.0, banding=0.0, frames=frames,
                                        frame_count=len(frames)))
    if s.lossy:
        candidates += _gif_palettes(ctx, min((len(c.data) for c in candidates), default=None))
    return _smallest(ctx, [c for c in candidates if c is not None])


def _gif_candidate(ctx: Context, data: bytes, label: str, q: int | None,
                   floor: quality.Floor | None = None) -> Candidate:
    """A written GIF, measured as a browser would show it: its bytes decoded again."""
    frames = ctx.frames
    decoded = gif.decode_frames(data)
    got = _frames_measure(ctx, decoded, floor)
    return Candidate(data, "gif", label, quality=q, score=got.score, banding=got.banding,
                     frames=frames, frame_count=len(decoded))


def _gif_palettes(ctx: Context, smallest: int | None = None) -> list[Candidate]:
    """Lossy GIF candidates: a shared palette (opaque animations) and per-frame palettes, each
    undithered then dithered, downwards from the level's palette quality while the written
    file, decoded again, keeps the floor on every scored frame (and every frame's
    transparency); the undithered shared-palette ladder goes lowest (it wins most often).

    A written file not smaller than ``smallest`` (the lossless candidate) or than a candidate
    already found is not measured: the fewest bytes win, so it could not be kept."""
    s = ctx.settings
    fewest = smallest
    pq = s.palette_quality
    floor = _floor(s)
    out: list[Candidate] = []
    ways = [("shared palette", gif.shared_palette_frames, 0.0),
            ("palette per frame", gif.palette_frames, 0.0),
            ("shared palette", gif.shared_palette_frames, 1.0),
            ("palette per frame", gif.palette_frames, 1.0)]
    if len(ctx.frames) == 1:
        # one frame: nothing to share, and libimagequant's own remapping beats Pillow's
        # nearest-colour one onto the same palette (a chart GIF held the floor at 75, 4745 B,
        # where the shared way needed 85, 5547 B)
        ways = [w for w in ways if w[1] is gif.palette_frames]
    settled = False  #: an undithered palette was written and was larger than the best
    searched = 0  #: the way that walks the ladder (the next when the shared palette has none)
    for index, (name, make, dither) in enumerate(ways):
        how = "dithered" if dither else "undithered"
        made: dict[int, list[Image.Image]] = {}  #: palettes whose first frame holds
        missing = False  #: this way makes no palette for these frames

        def first_holds(q: int, make: Callable[..., list[Image.Image] | None] = make,
                        dither: float = dither, made: dict[int, list[Image.Image]] = made
                        ) -> bool:
            nonlocal missing
            ctx.budget.check_time()
            palette = _first_frame_holds(ctx, make, q, dither, floor)
            if palette is None:
                missing = True
            if palette is None or palette is False:
                return False
            made[q] = palette
            return True

        ladder = [pq] if floor is None or index != searched else [pq] + [
            q for q in (pq - 20, pq - 40, pq - 60) if q >= 10]
        lowest: int | None = None  #: the lowest rung whose first frame held
        failed: int | None = None
        for q in ladder:
            if not first_holds(q):
                failed = None if missing else q
                break
            lowest = q
        if missing and not made and index == searched:
            searched += 1  # frames with transparency: the palette per frame walks the ladder
        if lowest is not None and failed is not None and not s.target_size:
            _between(failed, lowest, first_holds)
        # the whole file written and measured from the lowest quality up, until one holds
        for q in sorted(made):
            data = gif.save(made[q], ctx.decoded.durations, ctx.decoded.loop)
            if fewest is not None and len(data) >= fewest and not s.target_size:
                settled = True
                break  # cannot win, nor can a higher quality's larger file
            candidate = _gif_candidate(ctx, data, f"gif: {png.backend()} {name} q{q} {how}, "
                                       "frame differencing", q, floor)
            if floor is not None and not floor.holds(quality.Measure(candidate.score or 0,
                                                                     candidate.banding or 0)):
                continue  # a later frame fails: the next quality up
            out.append(candidate)
            fewest = len(data) if fewest is None else min(fewest, len(data))
            if s.target_size and len(data) <= s.target_size:
                return out
            break
        if (out or settled) and index >= 1:
            break  # an undithered candidate holds: dithering only adds noise and bytes
    return out

def _first_frame_holds(ctx: Context, make: Callable[..., list[Image.Image] | None], q: int,
                       dither: float, floor: quality.Floor | None
                       ) -> list[Image.Image] | None | Literal[False]:
    """The palette frames of one GIF way, or False when its first frame, as a decoder will
    show it, already fails the floor (it is the first frame :func:`_frames_measure` scores):
    a failing way then costs no GIF written and decoded again, and a palette per frame only
    one frame quantised (on a gradient animation every way failed: 0.6 s spent writing and
    decoding files that could not be kept)."""
    frames = ctx.frames
    per_frame = make is gif.palette_frames
    first = make(frames[:1], q, dither) if per_frame else make(frames, q, dither)
    if first is None:
        return None
    if floor is not None and not floor.holds(ctx.check(0).measure(gif.binary_alpha(first[0]),
                                                                  floor)):
        return False
    if not per_frame or len(frames) == 1:
        return first
    rest = make(frames[1:], q, dither)
    return None if rest is None else first + rest


def _webp_lossless(data: bytes) -> bool:
    return b"VP8L" in data[12:64] or (b"VP8L" in data[:4096] and b"VP8 " not in data[:4096])


def _few_colors(image: Image.Image, limit: int = 4096) -> bool:
    """Line art, screenshots, logos: few distinct colours in a sample (lossless WebP wins)."""
    return quality.sample(image, 1 << 16).getcolors(limit) is not None


# --- WebP, AVIF, HEIC ----------------------------------------------------------------------------


_MODERN = {"webp": webp_avif.webp, "avif": webp_avif.avif, "heic": webp_avif.heic}
#: the highest quality a WebP/AVIF/HEIC search goes to when the level's cap fails the floor
MODERN_CEILING = 95
#: SSIMULACRA2 points a search's fast probe at the ceiling may miss the floor by and the
#: result still be written at full effort (libwebp's method 6 scores within a point of 4)
HOPELESS = 1.0


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
                                        score=100.0, frames=frames))
    lossy_source = ctx.kind.format in LOSSY and not (
        ctx.kind.format == "webp" and _webp_lossless(ctx.source))
    graphic = _few_colors(frames[0])
    if fmt == "webp" and not s.target_size and (graphic or (not s.lossy and not lossy_source)):
        lossless = write(frames, None, d.durations, d.loop, exif, icc)
        candidates.append(Candidate(lossless, "webp", "webp: lossless", score=100.0,
                                    frames=frames))
    if s.lossy:
        first = frames[0]
        data: bytes | None = None
        got = quality.PERFECT
        hopeless = False

        def enc(img: Image.Image, q: int) -> bytes:
            return write([img], q, [], None, None, None)

        if s.target_size:
            q, _ = _size_search(first, lambda img, q: write(frames, q, d.durations, d.loop,
                                                            exif, icc) if img is first
                                else enc(img, q), s.target_size, 5, s.quality_cap)
        elif s.score is None:
            q = s.quality_cap
        else:
            floor = quality.Floor(s.score, s.banding)
            # like the JPEG search: when the level's cap cannot hold the floor, qualities
            # above it (up to 95) are tried before the floor is given up
            ceiling = max(s.quality_cap, MODERN_CEILING)

            def probe_enc(img: Image.Image, q: int) -> bytes:
                return write([img], q, [], None, None, None, fast=True)

            found = quality.search(first, probe_enc, webp_avif.decode, floor,
                                   min(s.quality_floor, s.quality_cap), ceiling,
                                   start=min(s.quality_start, s.quality_cap))
            q = found.quality
            if fmt == "webp" and q >= ceiling and found.measure.score < floor.score - HOPELESS:
                # even the ceiling's probe is far below the floor: the slow writer would not
                # change that (an RGBA logo: method 6 spent 1.5 s on its alpha plane for a
                # result that was then thrown away)
                hopeless = True
            elif len(frames) == 1:  # the whole image written as it will be, and checked

                def written(img: Image.Image, q: int) -> bytes:
                    return write([img], q, d.durations, d.loop, exif, icc)

                q, data, got = quality.verified(first, written, webp_avif.decode, floor, q,
                                                ceiling, step=1, reference=found.reference)
        if data is None and not hopeless:
            # an animated WebP at libwebp's method 4: method 6 spent 19x the time (its alpha
            # plane's exhaustive lossless search, per frame) for the same bytes on the bench's
            # transparent animation
            data = write(frames, q, d.durations, d.loop, exif, icc,
                         fast=fmt == "webp" and len(frames) > 1)
            got = _written_measure(ctx, data)
        kept_floor = _floor(s)
        if data is None:
            if not any(c.score == 100.0 for c in candidates):
                data = write(frames, None, d.durations, d.loop, exif, icc)
                candidates.append(Candidate(data, "webp", "webp: lossless (no lossy quality "
                                            "held the floor)", score=100.0, frames=frames))
        elif kept_floor is None or kept_floor.holds(got):
            candidates.append(Candidate(data, fmt, f"{fmt}: q{q}", quality=q, score=got.score,
                                        banding=got.banding, frames=frames))
        elif fmt == "webp" and not any(c.score == 100.0 for c in candidates):
            # lossy WebP cannot hold the floor (alpha edges, fine graphics): lossless WebP
            data = write(frames, None, d.durations, d.loop, exif, icc)
            candidates.append(Candidate(data, "webp", "webp: lossless (no lossy quality "
                                        "held the floor)", score=100.0, frames=frames))
        elif not candidates:
            candidates.append(Candidate(data, fmt, f"{fmt}: q{q}", quality=q, score=got.score,
                                        banding=got.banding, frames=frames))
            ctx.report.warnings.append(
                f"SSIMULACRA2 {got.score:.1f} is below the level's floor {s.score:g} even at "
                f"quality {q}")
    elif ctx.kind.format == fmt == "avif" or ctx.kind.format == fmt == "heic":
        ctx.report.warnings.append(f"{fmt.upper()} has no lossless re-pack; kept the input")
    elif fmt != "webp" and ctx.kind.format != fmt:
        data = write(frames, None, d.durations, d.loop, exif, icc)
        got = _written_measure(ctx, data)
        candidates.append(Candidate(data, fmt, f"{fmt}: quality 100", quality=100,
                                    score=got.score, banding=got.banding, frames=frames))
    return _smallest(ctx, candidates)


def _written_measure(ctx: Context, data: bytes) -> quality.Measure:
    """The floor measure of a written WebP/AVIF/HEIC, decoded again (every frame of an
    animation, as :func:`_frames_measure` scores them)."""
    return _frames_measure(ctx, webp_avif.decode_frames(data))
