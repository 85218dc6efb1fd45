"""One member's content through the engine its bytes call for.

- JPEG and PNG at ``lossless``: re-packed without decoding a pixel (mozjpeg's
  lossless transcoding keeping every marker; oxipng keeping every chunk unless
  metadata removal was asked); BMP and TIFF become PNG (same pixels) where the
  container lets references follow a new name.
- Images above ``lossless``: the image engine at the requested level, brought
  down to :attr:`~squeezer.engines.container.options.ArchiveLevel.display_dpi`
  of the size the document shows them at; a photo stored as PNG is also tried as
  a JPEG where the container can rename it.
- PDFs: the PDF engine; video and audio: their engine when one is installed
  (through :func:`squeezer.engines.dispatch.compress_any`), kept only when the
  format is unchanged.
- Containers inside containers: this engine again, one level deeper, sharing the
  run's limits.
- XML package parts, JSON, website HTML/CSS/JS, EPUB fonts: see
  :mod:`~squeezer.engines.container.textmin`,
  :mod:`~squeezer.engines.container.website`,
  :mod:`~squeezer.engines.container.fonts`.

A member's result is used only when it is smaller; anything an engine refuses
leaves the member as it was, with the reason in its report row.
"""

from __future__ import annotations

import io
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezer.engines.container import textmin
from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.container.options import ArchiveSettings
from squeezer.engines.container.report import MemberResult
from squeezer.engines.errors import EngineError, LimitExceededError
from squeezer.engines.options import Options

#: member types the image engine takes
ENGINE_IMAGES = {"jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "bmp", "svg"}
#: types whose bytes are already entropy-coded (deflating them again gains little)
PACKED = {"jpeg", "png", "gif", "webp", "avif", "heic", "font", "media", "pdf", "zip", "jar",
          "apk", "docx", "xlsx", "pptx", "epub", "odt", "ods", "odp", "gz", "xz", "zst", "7z",
          "tar.gz", "tar.xz", "tar.zst", "tar.bz2"}


@dataclass
class Job:
    """One member to optimise, with what its container knows about it."""

    name: str
    kind: str
    data: bytes
    #: the largest size the document shows it at, in inches (width, height)
    display: tuple[float, float] | None = None
    #: longest side allowed (EPUB images), in pixels
    max_side: int | None = None
    #: the container can follow a renamed member (OOXML relationships, ODF manifest)
    may_rename: bool = False
    #: XML whitespace may go; the names of the mixed-content elements to leave alone
    xml_mixed: frozenset[str] | None = None
    json_ok: bool = False  #: JSON whitespace may go
    minify: bool = False  #: website HTML/CSS/JS minification
    #: characters the book uses (font subsetting), None: no subsetting
    chars: set[int] | None = None
    #: the obfuscation key of an OOXML embedded font (None: a plain font)
    font_key: bytes | None = None


@dataclass
class Outcome:
    data: bytes | None = None  #: new content (None: unchanged)
    kind: str = ""  #: the content's type after (jpeg for a PNG photo made a JPEG)
    action: str = "recompressed"
    nested: list[MemberResult] = field(default_factory=list)
    warning: str | None = None


@dataclass
class Context:
    """What every member of one run shares."""

    options: Options
    settings: ArchiveSettings
    budget: ArchiveBudget
    scratch: Path
    #: compress a nested container: (src, dst, options) -> (report rows, format_out)
    nested: Callable[[Path, Path], Any]


def optimise(job: Job, ctx: Context) -> Outcome:
    """The best content for ``job`` (see the module docstring); never raises an engine's
    refusal, only the run's own limits."""
    ctx.budget.check_time()
    try:
        return _optimise(job, ctx)
    except LimitExceededError:
        raise
    except EngineError as exc:
        return Outcome(action=f"kept: {exc.code}", warning=f"{job.name}: {exc.message}")


def _optimise(job: Job, ctx: Context) -> Outcome:
    s = ctx.settings
    kind = job.kind
    if kind in ENGINE_IMAGES:
        if not s.lossy and kind in ("jpeg", "png"):
            return _lossless_image(job, ctx)
        if kind in ("bmp", "tiff") and job.may_rename and not s.lossy:
            return _to_png(job)
        if s.lossy:
            return _image_engine(job, ctx)
        return Outcome(action="kept")
    if kind == "xml" and job.xml_mixed is not None:
        out = textmin.xml_whitespace(job.data, job.xml_mixed)
        return Outcome(out, "xml", "whitespace dropped") if out else Outcome(action="recompressed")
    if kind == "json" and job.json_ok:
        out = textmin.json_whitespace(job.data)
        return Outcome(out, "json", "whitespace dropped") if out else Outcome(action="recompressed")
    if kind in ("html", "css", "js") and job.minify:
        from squeezer.engines.container import website

        out = website.minify(kind, job.data)
        return Outcome(out, kind, "minified") if out else Outcome(action="recompressed")
    if job.chars is not None and (kind == "font" or job.font_key is not None):
        from squeezer.engines.container import fonts

        if job.font_key is not None:
            plain = fonts.subset(fonts.deobfuscate(job.data, job.font_key), job.chars)
            out = fonts.deobfuscate(plain, job.font_key) if plain else None
        else:
            out = fonts.subset(job.data, job.chars)
        return Outcome(out, kind, "subset") if out else Outcome(action="recompressed")
    return Outcome(action="recompressed")


# --- images --------------------------------------------------------------------------------


def _lossless_image(job: Job, ctx: Context) -> Outcome:
    strip = ctx.settings.remove_metadata
    if job.kind == "jpeg":
        from squeezer.engines import mozjpeg

        out = mozjpeg.repack(job.data, markers="icc" if strip else "all")
        if out is None:
            return Outcome(action="kept: not a readable JPEG")
        if len(out) < len(job.data) and _adobe(out) == _adobe(job.data):
            return Outcome(out, "jpeg", "jpeg: re-packed losslessly (mozjpeg)")
        return Outcome(action="kept: already optimal")
    try:
        out = repack_png(job.data, strip)
    except Exception:  # noqa: BLE001 - oxipng refusing a PNG leaves it as it is
        return Outcome(action="kept: oxipng refused it")
    if len(out) < len(job.data):
        return Outcome(out, "png", "png: re-packed losslessly (oxipng)")
    return Outcome(action="kept: already optimal")


def repack_png(data: bytes, strip: bool = False) -> bytes:
    """``data`` re-packed by oxipng, at an effort chosen by how dense its pixels are
    (:func:`png_effort`); raises what oxipng raises."""
    import oxipng

    strip_chunks = oxipng.StripChunks.safe() if strip else oxipng.StripChunks.none()
    if png_effort(data) == "full":
        return oxipng.optimize_from_memory(data, level=2, strip=strip_chunks)
    filters = [getattr(oxipng.RowFilter, name) for name in PNG_FAST_FILTERS]
    return oxipng.optimize_from_memory(
        data, level=2, filter=filters, deflate=oxipng.Deflaters.libdeflater(PNG_FAST_LEVEL),
        strip=strip_chunks)


#: oxipng's time goes into deflating the raw pixels (libdeflate 11 at ``-o2``), not into
#: choosing row filters, so it grows with the pixel count, while what it saves grows with the
#: PNG's size.  On every other PNG of the three corpora (377 files, 7.69 MB; issue 17):
#: ``-o2`` 5,101,752 B in 21.4 CPU-s; filters NoOp and BigEnt with libdeflate 9, 5,456,523 B
#: in 7.0 s; ``-o2`` only where the PNG holds more than :data:`PNG_DENSE` bytes per raw pixel
#: byte, 5,336,469 B in 8.5 s.  Images at most that dense (screenshots, drawings: 249 of the
#: 377, 86 % of ``-o2``'s time) gained 7.8 % from ``-o2`` at 18 KB per extra CPU-second; the
#: denser ones 2-6 % at 36-195 KB per CPU-second.  On a third of the docs corpus's sparse PNGs
#: (117, 2.93 MB) NoOp alone beat NoOp+BigEnt (the fast trial picks BigEnt where the final
#: deflate does worse with it): 1,693,392 B in 1.0 s vs 1,697,047 B in 3.4 s (libdeflate 9);
#: libdeflate 10 and 11 gave 1,636,547 B in 3.6 s and 1,567,886 B in 7.6 s.
PNG_FAST_FILTERS = ("NoOp",)
#: libdeflate's level for the pixels of a PNG re-packed fast
PNG_FAST_LEVEL = 9
#: compressed bytes per raw (unfiltered, uncompressed) pixel byte above which ``-o2`` runs
PNG_DENSE = 0.1


def png_effort(data: bytes) -> str:
    """``"full"`` (oxipng ``-o2``) for a PNG whose pixels are dense, ``"fast"`` for one that
    compresses over :data:`PNG_DENSE` times (see there), from its IHDR alone."""
    from squeezer.engines.image.png import raw_bytes

    if len(data) < 33 or data[12:16] != b"IHDR":
        return "full"
    raw = raw_bytes(data)
    return "full" if raw == 0 or len(data) > PNG_DENSE * raw else "fast"


def _adobe(data: bytes) -> tuple[bool, int | None]:
    from squeezer.engines.pdf.jpeg import adobe_marker

    return adobe_marker(data)


def _to_png(job: Job) -> Outcome:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(job.data)) as im:
            if getattr(im, "n_frames", 1) != 1 or im.mode not in ("1", "L", "LA", "P", "RGB",
                                                                    "RGBA"):
                return Outcome(action="kept")
            buf = io.BytesIO()
            im.save(buf, "PNG", optimize=True)
    except (OSError, ValueError, Image.DecompressionBombError):
        return Outcome(action="kept: not readable")
    out = repack_png(buf.getvalue())
    if len(out) < len(job.data):
        return Outcome(out, "png", f"{job.kind} -> png (same pixels)")
    return Outcome(action="kept")


#: an image is brought down to its display box only when that keeps at most this share of its
#: width (or height): smaller cuts blur for little gain and often grow palette PNGs
MIN_SHRINK = 0.85


def _target_box(job: Job, ctx: Context, size: tuple[int, int]) -> tuple[int, int] | None:
    """The pixel box the image is brought down to, or None to keep its size."""
    width, height = size
    box: tuple[int, int] | None = None
    dpi = ctx.settings.display_dpi
    if job.display and dpi:
        w_in, h_in = job.display
        box = (max(1, math.ceil(w_in * dpi)), max(1, math.ceil(h_in * dpi)))
    if job.max_side:
        side = job.max_side
        box = (min(box[0], side), min(box[1], side)) if box else (side, side)
    if box is None or (width <= box[0] and height <= box[1]):
        return None
    if min(box[0] / width, box[1] / height) > MIN_SHRINK:
        return None  # a few percent fewer pixels: resampling costs more than it saves
    return box


def _image_size(data: bytes, *, look: bool = False,
                max_pixels: int = 0) -> tuple[int, int, bool] | None:
    """(width, height, has transparency), or None.  The header says whether the image has an
    alpha channel; with ``look`` the pixels say whether any is not opaque (screenshots and
    renders saved as RGBA with every pixel opaque are photos a JPEG can hold: a 1 MB slide
    picture, 0.87 MB after oxipng, had been kept as PNG for its unused alpha).  Not over
    ``max_pixels`` (the image engine refuses those with its own error)."""
    from PIL import Image

    from squeezer.engines.image.decode import uses_alpha

    try:
        with Image.open(io.BytesIO(data)) as im:
            alpha = im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info
            too_big = bool(max_pixels) and im.size[0] * im.size[1] > max_pixels
            if alpha and look and not too_big and not getattr(im, "is_animated", False):
                alpha = uses_alpha(im if im.mode in ("RGBA", "LA") else im.convert("RGBA"))
            return im.size[0], im.size[1], alpha
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def _run_image(data: bytes, kind: str, ctx: Context, box: tuple[int, int] | None,
               fmt: str = "keep") -> tuple[bytes, Any] | None:
    """The image engine on ``data``; None when it refuses this attempt (an encoder failing on
    the JPEG conversion must not cost the member the result of another attempt)."""
    try:
        return _image_attempt(data, kind, ctx, box, fmt)
    except LimitExceededError:
        raise
    except EngineError:
        return None


def _image_attempt(data: bytes, kind: str, ctx: Context, box: tuple[int, int] | None,
                   fmt: str) -> tuple[bytes, Any]:
    from squeezer.engines.dispatch import compress_any

    image: dict[str, Any] = ctx.options.image.model_dump(mode="json", exclude_unset=True)
    image["format"] = fmt
    image.pop("resize", None)
    if box is not None:
        image["resize"] = {"mode": "fit", "width": box[0], "height": box[1]}
    options = ctx.options.model_copy(update={"image": type(ctx.options.image).model_validate(
        image)})
    with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
        src = Path(tmp) / f"in.{kind}"
        dst = Path(tmp) / "out"
        src.write_bytes(data)
        report = compress_any(src, dst, options, limits=_member_limits(ctx))
        return dst.read_bytes(), report


def _member_limits(ctx: Context) -> Any:
    """The run's limits for a member's engine, with the wall clock that is left."""
    limits = ctx.budget.limits
    if limits.max_seconds:
        left = max(1.0, limits.max_seconds - ctx.budget.clock.elapsed)
        return limits.model_copy(update={"max_seconds": left, "max_threads": 1})
    return limits.model_copy(update={"max_threads": 1})


def _image_engine(job: Job, ctx: Context) -> Outcome:
    convertible = job.kind in ("png", "bmp", "tiff") and job.may_rename and \
        ctx.settings.convert_photos
    info = _image_size(job.data, look=convertible, max_pixels=ctx.budget.limits.max_image_pixels
                       ) if job.kind != "svg" else None
    box = _target_box(job, ctx, info[:2]) if info else None
    result = _run_image(job.data, job.kind, ctx, box)
    best: tuple[bytes, str, str] | None = None
    if result is not None:
        data, report = result
        if report.format_out == job.kind and len(data) < len(job.data):
            best = (data, job.kind, _describe(report, box))
    if best is None and box is not None:
        # resampling a drawing adds colours its palette had not (a 465 px PNG shown at 415 px
        # grew from 22 to 31 KB): the same level at the image's own size
        result = _run_image(job.data, job.kind, ctx, None)
        if result is not None and result[1].format_out == job.kind and \
                len(result[0]) < len(job.data):
            best = (result[0], job.kind, _describe(result[1], None))
    if convertible and info is not None and not info[2]:
        converted = _run_image(job.data, job.kind, ctx, box, fmt="jpeg")
        if converted is not None:
            data, report = converted
            current = len(best[0]) if best else len(job.data)
            # a new name and content type only for a clear gain (a drawing stays PNG)
            if report.format_out == "jpeg" and len(data) < 0.7 * current:
                best = (data, "jpeg", f"{job.kind} photo -> " + _describe(report, box))
    if best is None and job.kind in ("jpeg", "png"):
        return _lossless_image(job, ctx)  # never less than lossless gives
    if best is None:
        return Outcome(action="kept: no smaller result")
    return Outcome(best[0], best[1], best[2])


def _describe(report: Any, box: tuple[int, int] | None) -> str:
    parts = [a for a in getattr(report, "actions", []) if a]
    text = "; ".join(parts[-2:]) if parts else f"image: {report.format_out}"
    if box is not None and not any("resized" in p for p in parts):
        text += f" (fit {box[0]}x{box[1]})"
    return text


# --- PDFs, media and nested containers (run one at a time, in the caller's thread) ----------


def optimise_serial(job: Job, ctx: Context) -> Outcome:
    """PDFs, video/audio and nested containers: engines that use their own processes and
    threads, so they run one member at a time."""
    ctx.budget.check_time()
    try:
        if job.kind in NESTED_KINDS:
            return _nested(job, ctx)
        return _engine(job, ctx)
    except LimitExceededError:
        raise
    except EngineError as exc:
        return Outcome(action=f"kept: {exc.code}", warning=f"{job.name}: {exc.message}")


def _engine(job: Job, ctx: Context) -> Outcome:
    from squeezer.engines.dispatch import compress_any
    from squeezer.engines.sniff import EXTENSIONS

    with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
        src = Path(tmp) / f"in.{EXTENSIONS.get(job.kind, 'bin')}"
        dst = Path(tmp) / "out"
        src.write_bytes(job.data)
        report = compress_any(src, dst, ctx.options, limits=_member_limits(ctx))
        out = dst.read_bytes()
    fmt = getattr(report, "format_out", "") or ("pdf" if job.kind == "pdf" else "")
    if fmt and fmt != job.kind:
        return Outcome(action=f"kept: its engine made a {fmt}")
    if len(out) >= len(job.data):
        return Outcome(action="kept: no smaller result")
    return Outcome(out, job.kind, f"{job.kind} engine, level {ctx.settings.level.value}")


def serial_kind(kind: str) -> bool:
    """Members optimised one at a time: PDFs, containers, and formats of other families."""
    if kind == "pdf" or kind in NESTED_KINDS:
        return True
    from squeezer.engines.families import family_of

    try:
        family = family_of(kind)
    except KeyError:
        return False
    return family.name not in ("image", "archive", "pdf")


def _nested(job: Job, ctx: Context) -> Outcome:
    if not ctx.settings.recurse:
        return Outcome(action="kept: nested archives not recursed (archive.recurse off)")
    from squeezer.engines.sniff import EXTENSIONS

    with tempfile.TemporaryDirectory(dir=ctx.scratch) as tmp:
        src = Path(tmp) / f"in.{EXTENSIONS.get(job.kind, 'bin')}"
        dst = Path(tmp) / "out"
        src.write_bytes(job.data)
        rows, fmt, kept = ctx.nested(src, dst)
        out = dst.read_bytes()
    if kept or len(out) >= len(job.data):
        return Outcome(action="kept: no smaller result", nested=rows)
    return Outcome(out, job.kind, f"{fmt}: compressed recursively", nested=rows)


NESTED_KINDS = {"zip", "jar", "docx", "docm", "dotx", "xlsx", "xlsm", "xltx", "pptx", "pptm",
                "ppsx", "potx", "odt", "ods", "odp", "odg", "ott", "ots", "otp", "epub",
                "tar", "tar.gz", "tar.xz", "tar.zst", "tar.bz2", "gz", "xz", "zst"}
