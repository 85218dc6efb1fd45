"""One entry point for every engine: the file's bytes pick the engine, never its name.

``compress_any(src, dst, options, limits=...)`` sniffs ``src``
(:func:`squeezer.engines.sniff.sniff_file`) and hands it to its family's
engine (:mod:`squeezer.engines.families`): a PDF to the PDF engine, an image
or SVG to the image engine; EPS/PostScript and anything else is refused with
:class:`~squeezer.engines.errors.UnsupportedFormatError`
(``unsupported_format``).  Bytes with no known signature go to the PDF engine,
whose recovery can rebuild a PDF with a damaged header; when it finds no PDF
there either, they are ``unsupported_format``, the code the API gives the same
bytes at upload.

Options are one :class:`~squeezer.engines.options.Options` for every engine;
the report gets its deprecation notices and one warning naming the options
given for a format the file is not (a batch of PDFs and JPEGs shares one set
of flags).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from squeezer.engines.errors import (
    DISK_FULL_ERRNOS,
    DISK_FULL_TEXTS,
    DamagedImageError,
    DamagedPdfError,
    DiskFullError,
    EngineError,
    MemoryLimitError,
    NotAPdfError,
    UnsupportedFormatError,
)
from squeezer.engines.families import Family, family_of
from squeezer.engines.files import input_size
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.options import Options
from squeezer.engines.report import RunReport
from squeezer.engines.sniff import UNKNOWN, Kind, sniff_file


def as_options(options: Mapping[str, Any] | Options | None) -> Options:
    """``options`` as the model (a mapping is validated: ``pydantic.ValidationError``)."""
    if isinstance(options, Options):
        return options
    return Options.model_validate(dict(options or {}))


def _family(src: Path) -> tuple[Kind, Family, bool]:
    """The file's kind and family, and whether the kind is only a guess (no signature)."""
    try:
        kind = sniff_file(src)
    except UnsupportedFormatError as exc:
        if exc.message != UNKNOWN:
            raise  # EPS/PostScript, gzip: refused outright
        return Kind("pdf"), family_of("pdf"), True  # qpdf's recovery decides (headerless PDF)
    return kind, family_of(kind.format), False


def compress_any(
    src: str | Path,
    dst: str | Path,
    options: Mapping[str, Any] | Options | None = None,
    *,
    limits: Limits | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Any:
    """Compress ``src`` into ``dst`` with the engine its bytes call for; return its report.

    ``options``: an :class:`Options` or a mapping validated into one.  The
    report is the engine's own (a :class:`~squeezer.engines.report.Report` for
    a PDF, an :class:`~squeezer.engines.image.ImageReport` with ``format_out``
    for an image).  The caller names ``dst``; for an image whose format may
    change, :func:`output_extension` gives the right extension before the run
    when it is known.
    """
    src = Path(src)
    chosen = as_options(options)
    limits = limits or DEFAULT_LIMITS
    input_size(src, limits.max_input_bytes)
    kind, family, guessed = _family(src)
    try:
        report: RunReport = family.compress()(src, dst, chosen, limits=limits,
                                               progress=progress)
    except NotAPdfError:
        if guessed:
            raise UnsupportedFormatError(UNKNOWN) from None
        raise
    except EngineError:
        raise
    except Exception as exc:
        named = library_error(exc, kind.format)
        if named is None:
            raise  # a bug: the caller reports internal_error and logs the traceback
        raise named from None
    report.warnings.extend(chosen.notices)
    ignored = chosen.not_for(family.groups)
    if ignored:
        report.warnings.append(f"options for other formats do not apply to this "
                               f"{kind.format.upper()} and were ignored: {', '.join(ignored)}")
    return report


def library_error(exc: BaseException, fmt: str = "pdf") -> EngineError | None:
    """The named error a library's exception stands for, or None for a bug of ours.

    Engines map what they expect where it happens; this is the net under them
    for what the libraries raise on input nobody foresaw (fuzzed files): a
    full disk, an allocation the memory cap refused, a file PDFium or qpdf
    cannot read, nesting deeper than the interpreter's stack.
    """
    text = str(exc)
    if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS \
            or any(marker in text for marker in DISK_FULL_TEXTS):
        return DiskFullError()
    if isinstance(exc, MemoryError) or any(marker in text for marker in (
            "bad_alloc", "Cannot allocate memory", "failed to map segment")):
        return MemoryLimitError("the file needs more memory than the cap allows")
    damaged = DamagedPdfError if fmt == "pdf" else DamagedImageError
    if isinstance(exc, RecursionError):
        return damaged("the file nests its objects too deeply to be read")
    if fmt == "pdf":
        import pikepdf
        from pypdfium2 import PdfiumError

        if isinstance(exc, PdfiumError):
            return DamagedPdfError(f"the PDF is damaged: PDFium cannot read it ({text})")
        if isinstance(exc, pikepdf.PdfError):
            from squeezer.engines.pdf.document import map_qpdf_error

            mapped = map_qpdf_error(exc)
            return mapped if isinstance(mapped, EngineError) else None
    return None


def output_extension(src: str | Path, options: Mapping[str, Any] | Options | None) -> str | None:
    """The extension (no dot) the output of ``src`` will have, or None when only the run can
    tell (an image's ``format: auto``).  Raises the sniffing errors (unsupported format)."""
    kind = sniff_file(Path(src))
    return family_of(kind.format).output_extension(kind, as_options(options))
