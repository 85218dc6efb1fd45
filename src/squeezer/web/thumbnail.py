"""One page of a stored PDF as a PNG, rendered by PDFium in a disposable child process.

The web page's before/after preview needs a picture of the first page of the
upload and of the result.  The input is untrusted (it is whatever was
uploaded), and PDFium is native code that cannot be interrupted from Python
and can crash, so the render runs the way the engine's jobs do
(:mod:`squeezer.jobs.isolation`): in a child forked from a ``forkserver``,
under an address-space cap, watched for resident memory and killed at a
deadline.  The API process only waits (in a thread) and turns every way the
child can end into a :class:`PreviewError` with a code.

Only this module (PDFium and Pillow) is loaded in the child: importing the
API there would cost more than the render.
"""

from __future__ import annotations

import io
import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image

from squeezer.jobs.isolation import PRELOAD, supervise

#: Widest preview served (pixels); the height is capped at this multiple of the width.
MAX_WIDTH = 1600
MAX_ASPECT = 3.0
#: Wall-clock seconds one render may take, and the memory it may use.
RENDER_SECONDS = 20.0
RENDER_MEMORY_BYTES = 768 << 20
ADDRESS_SPACE_FACTOR = 4


class PreviewError(Exception):
    """A render that did not produce a PNG; ``code`` names why (as the engine's codes do)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RenderLimits:
    seconds: float = RENDER_SECONDS
    memory_bytes: int = RENDER_MEMORY_BYTES


def _render(path: str, page_number: int, width: int, password: str | None) -> bytes:
    """The PNG of page ``page_number`` (1-based) at ``width`` pixels (runs in the child)."""
    try:
        doc = pdfium.PdfDocument(path, password=password or None)
    except pdfium.PdfiumError as exc:
        if getattr(exc, "err_code", None) == pdfium.raw.FPDF_ERR_PASSWORD:
            if password:
                raise PreviewError("invalid_password", "the password does not open this PDF")
            raise PreviewError("password_required", "this PDF needs a password to open")
        raise PreviewError("pdf_invalid", "PDFium cannot open this file") from None
    try:
        count = len(doc)
        if not 1 <= page_number <= count:
            raise PreviewError("page_out_of_range", f"the document has {count} page(s)")
        page = doc[page_number - 1]
        try:
            w_pt, h_pt = page.get_size()
            if w_pt <= 0 or h_pt <= 0:
                raise PreviewError("pdf_invalid", "the page has no size")
            scale = min(width / w_pt, width * MAX_ASPECT / h_pt)
            bitmap = page.render(scale=scale, may_draw_forms=True)
            try:
                image: Image.Image = bitmap.to_pil()
            finally:
                bitmap.close()
        finally:
            page.close()
    finally:
        doc.close()
    out = io.BytesIO()
    image.convert("RGB").save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def _child(conn: Connection, path: str, page_number: int, width: int, password: str | None,
           memory_bytes: int) -> None:
    try:
        if memory_bytes:
            cap = memory_bytes * ADDRESS_SPACE_FACTOR
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        conn.send(("ok", _render(path, page_number, width, password)))
    except PreviewError as exc:
        conn.send(("error", exc.code, exc.message))
    except MemoryError:
        conn.send(("error", "memory_limit", "the page needs more memory than a preview may use"))
    except BaseException as exc:  # noqa: BLE001 - everything crosses the pipe as a named error
        conn.send(("error", "preview_failed", f"{type(exc).__name__}: {exc}"[:300]))
    finally:
        conn.close()


def _context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    # One forkserver per process serves every user of the context, with the preload list
    # of whoever starts it first: name the engine's too (squeezer.jobs.isolation), so that
    # a process that also runs engine jobs (a test run) keeps its children warm either way.
    ctx.set_forkserver_preload([*PRELOAD, "squeezer.web.thumbnail"])
    return ctx


def render_page_png(path: str | Path, page_number: int = 1, width: int = 600,
                    password: str | None = None, limits: RenderLimits | None = None) -> bytes:
    """Render one page in a child process under ``limits``; blocking (call it in a thread)."""
    limits = limits or RenderLimits()
    width = max(16, min(int(width), MAX_WIDTH))
    run = supervise(_context(), _child, (str(path), page_number, width, password,
                                         limits.memory_bytes),
                    seconds=limits.seconds, memory_bytes=limits.memory_bytes)
    outcome, ended = run.outcome, run.ended
    if ended == "timeout":
        raise PreviewError("timeout", f"the page took longer than {limits.seconds:g} s to render")
    if ended == "memory":
        raise PreviewError("memory_limit", "the page needs more memory than a preview may use")
    if outcome is None:
        raise PreviewError("processing_crashed", f"the renderer {run.how} without an answer")
    if outcome[0] == "ok":
        return outcome[1]
    raise PreviewError(outcome[1], outcome[2])

