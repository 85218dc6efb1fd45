"""Opening (and repairing) untrusted PDFs with qpdf, mapping every failure to a named error.

qpdf's recovery rebuilds broken cross-reference tables and damaged object
streams the way PDF readers do, so anything a reader opens, we open.  What it
cannot open becomes one of :class:`NotAPdfError`, :class:`DamagedPdfError`,
:class:`PasswordRequiredError` or :class:`InvalidPasswordError`, never a raw
pikepdf exception.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pikepdf

from squeezer.engines.errors import (
    DamagedPdfError,
    DecompressionLimitError,
    InvalidPasswordError,
    NotAPdfError,
    PasswordRequiredError,
)
from squeezer.engines.limits import Limits

#: PDF readers accept the header anywhere in the first kilobyte.
HEADER_WINDOW = 1024


def looks_like_pdf(path: Path) -> bool:
    """True when ``%PDF-`` appears in the first kilobyte, as readers require."""
    with open(path, "rb") as f:
        return b"%PDF-" in f.read(HEADER_WINDOW)


def apply_qpdf_limits(limits: Limits) -> None:
    """Bound qpdf's own decoders, which are unbounded by default.

    The settings are process-wide; every engine call sets them from its limits
    before opening anything, so the latest caller's limits are in force.
    """
    per_stream = limits.max_stream_bytes or 0
    pikepdf.settings.set_qpdf_limits(
        flate_max_memory=per_stream,
        png_max_memory=per_stream,
        run_length_max_memory=per_stream,
        tiff_max_memory=per_stream,
        dct_max_memory=per_stream,
    )


def open_document(path: Path, password: str | None = None) -> pikepdf.Pdf:
    """Open ``path`` with recovery enabled, or raise a named error."""
    if not looks_like_pdf(path):
        raise NotAPdfError("the file is not a PDF (no %PDF- header in its first kilobyte)")
    try:
        return pikepdf.open(path, password=password or "", attempt_recovery=True)
    except pikepdf.PasswordError:
        if password:
            raise InvalidPasswordError("the password does not open this PDF") from None
        raise PasswordRequiredError("this PDF is encrypted: a password is required") from None
    except pikepdf.PdfError as exc:
        raise map_qpdf_error(exc) from None
    except (RuntimeError, ValueError) as exc:  # qpdf logic errors surface as these
        raise DamagedPdfError(f"the PDF is damaged beyond repair: {exc}") from None


def map_qpdf_error(exc: Exception) -> Exception:
    """Turn a qpdf failure into the named error it stands for."""
    text = str(exc)
    if "memory limit" in text.lower() or "limit exceeded" in text.lower():
        return DecompressionLimitError(f"a stream exceeds the decompression limit: {text}")
    return DamagedPdfError(f"the PDF is damaged beyond repair: {text}")


@contextlib.contextmanager
def opened(path: Path, password: str | None = None) -> Iterator[pikepdf.Pdf]:
    pdf = open_document(path, password)
    try:
        yield pdf
    finally:
        pdf.close()
