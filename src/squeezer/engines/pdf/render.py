"""One page of a PDF as a PNG, rendered by PDFium: what the web page's before/after preview shows.

Pure engine code (file in, PNG bytes out, named errors); the service runs it in
a disposable child under hard limits (:mod:`squeezer.jobs.preview`), because
the file is untrusted and PDFium is native code that can crash.
"""

from __future__ import annotations

import io
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image

from squeezer.engines.errors import (
    DamagedPdfError,
    InvalidPasswordError,
    PageOutOfRangeError,
    PasswordRequiredError,
    RenderFailedError,
)

#: Widest preview served (pixels); the height is capped at this multiple of the width.
MAX_WIDTH = 1600
MAX_ASPECT = 3.0


def render_page_png(path: str | Path, page_number: int = 1, width: int = 600,
                    password: str | None = None) -> bytes:
    """The PNG of page ``page_number`` (1-based), ``width`` pixels wide (at most
    :data:`MAX_WIDTH`, and at most :data:`MAX_ASPECT` times as tall)."""
    width = max(16, min(int(width), MAX_WIDTH))
    try:
        doc = pdfium.PdfDocument(str(path), password=password or None)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
            if password:
                raise InvalidPasswordError("the password does not open this PDF") from None
            raise PasswordRequiredError("this PDF needs a password to open") from None
        raise DamagedPdfError("PDFium cannot open this file") from None
    try:
        count = len(doc)
        if not 1 <= page_number <= count:
            raise PageOutOfRangeError(f"the document has {count} page(s)")
        page = doc[page_number - 1]
        try:
            w_pt, h_pt = page.get_size()
            if w_pt <= 0 or h_pt <= 0:
                raise DamagedPdfError("the page has no size")
            scale = min(width / w_pt, width * MAX_ASPECT / h_pt)
            bitmap = page.render(scale=scale, may_draw_forms=True)
            try:
                image: Image.Image = bitmap.to_pil()
            finally:
                bitmap.close()
        except pdfium.PdfiumError as exc:
            raise RenderFailedError(f"PDFium could not render the page: {exc}") from None
        finally:
            page.close()
    finally:
        doc.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()
