"""Embedded files: PDFs and images inside a PDF are compressed by their own engines.

An attachment (``/Type /EmbeddedFile``: the files of the ``/EmbeddedFiles`` name
tree, file attachment annotations, PDF/A-3 associated files) is a file of its
own that qpdf only deflates.  Those that are PDFs or images go through
:func:`squeezer.engines.compress_any`: a PDF at the document's preset (it is a
document like the one holding it), an image at the image engine's ``lossless``
level (JPEGs re-packed with the same coefficients, PNGs re-deflated: an
attached photo is a file the user keeps, not a picture on a page; and the
image engine's perceptual search took 37-106 s on one 279 KB photo), each
result checked and never larger by that engine's own rules, replacing the
attachment when smaller; the file specification's ``/Params``
(``/Size``, ``/CheckSum``) then describe the new bytes.  Everything else (XML,
audio, video, archives) keeps its bytes and is deflated when that is smaller.

Not touched: signed or encrypted PDFs (a signature covers the bytes), files an
engine refuses, and anything nested deeper than :data:`MAX_DEPTH` (a PDF
attached to a PDF attached to this one is compressed, one more level is not).
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import time
from pathlib import Path

import pikepdf
from pikepdf import Dictionary, Name, Stream

from squeezer.engines import libdeflate
from squeezer.engines.budget import Budget
from squeezer.engines.errors import EngineError
from squeezer.engines.pdf.options import Settings
from squeezer.engines.report import Report

log = logging.getLogger(__name__)

#: How deep attachments of attachments are compressed.
MAX_DEPTH = 2
#: Attachments smaller than this are only deflated (an engine run costs more than they hold).
MIN_BYTES = 16 << 10
#: Seconds of the file's time budget an attachment's engine run must have left to start.
MIN_SECONDS_LEFT = 5.0
_DEPTH: contextvars.ContextVar[int] = contextvars.ContextVar("squeezer_attachment_depth",
                                                             default=0)


def compress_embedded(pdf: pikepdf.Pdf, settings: Settings, budget: Budget, report: Report,
                      work: Path) -> None:
    """Compress every embedded PDF and image of ``pdf`` with its engine; deflate the rest."""
    files = [obj for obj in pdf.objects
             if isinstance(obj, Stream) and obj.stream_dict.get("/Type") == Name.EmbeddedFile]
    saved = 0
    for number, stream in enumerate(files):
        budget.check_time()
        try:
            data = stream.read_bytes()
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            continue
        before = len(stream.read_raw_bytes())
        smaller = _by_engine(data, settings, budget, work / f"attachment-{number}")
        if smaller is not None:
            data = smaller
        packed = libdeflate.compress(data)
        if len(packed) >= before and smaller is None:
            continue
        stream.write(packed, filter=Name.FlateDecode)
        if smaller is not None:
            params = stream.stream_dict.get("/Params")
            if not isinstance(params, Dictionary):
                params = stream.stream_dict.Params = Dictionary()
            params.Size = len(data)
            params.CheckSum = pikepdf.String(hashlib.md5(data).digest())  # (the spec's checksum)
        saved += before - len(packed)
    if saved:
        report.steps["attachments"] = report.steps.get("attachments", 0) + saved


def _by_engine(data: bytes, settings: Settings, budget: Budget, base: Path) -> bytes | None:
    """``data`` compressed by the engine for its format, or None (not smaller, not ours)."""
    from squeezer.engines import compress_any
    from squeezer.engines.sniff import sniff

    depth = _DEPTH.get()
    if depth >= MAX_DEPTH or len(data) < MIN_BYTES:
        return None
    try:
        kind = sniff(data[:4096])
    except EngineError:
        return None
    if kind.format not in ("pdf", "jpeg", "png", "gif", "webp", "tiff", "bmp"):
        return None
    if kind.format == "pdf" and _protected(data):
        return None
    limits = budget.limits
    if limits.max_seconds:
        left = limits.max_seconds - budget.elapsed
        if left < MIN_SECONDS_LEFT:
            return None
        limits = limits.model_copy(update={"max_seconds": left})
    src, dst = base.with_suffix(".in"), base.with_suffix(".out")
    src.write_bytes(data)
    token = _DEPTH.set(depth + 1)
    started = time.monotonic()
    try:
        level = settings.level if kind.format == "pdf" else "lossless"
        compress_any(src, dst, {"level": level}, limits=limits)
        result = dst.read_bytes()
    except EngineError as exc:
        log.debug("attachment kept: %s", exc)
        return None
    finally:
        _DEPTH.reset(token)
        src.unlink(missing_ok=True)
        dst.unlink(missing_ok=True)
    log.debug("attachment %s: %d -> %d bytes in %.2f s", kind.format, len(data), len(result),
              time.monotonic() - started)
    return result if len(result) < len(data) else None


def _protected(data: bytes) -> bool:
    """True for a PDF that is encrypted or signed (its bytes must stay as they are)."""
    import io

    try:
        with pikepdf.open(io.BytesIO(data)) as pdf:
            if pdf.is_encrypted:
                return True
            acroform = pdf.Root.get("/AcroForm")
            if isinstance(acroform, Dictionary) and int(acroform.get("/SigFlags", 0)) & 1:
                return True
            return "/Perms" in pdf.Root
    except (pikepdf.PdfError, pikepdf.PasswordError, ValueError, TypeError):
        return True  # (unreadable: leave it to the reader)
