"""Checking a candidate output against its input before it is returned.

The engine never hands back a file it has not opened, counted, rendered and
read: the candidate must open in a second, independent PDF implementation
(PDFium, the renderer in Chrome), have the input's page count, render every
page, and yield the same text as the input on a sample of pages.  A failed
check makes the pipeline fall back to a safer candidate.
"""

from __future__ import annotations

import os
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pikepdf
import pypdfium2 as pdfium

from squeezer.engines import forks
from squeezer.engines.pdf.options import Settings
from squeezer.engines.pdf.pdfium_lock import LOCK

if TYPE_CHECKING:
    import numpy as np

#: Every page is text-checked up to this many pages; longer documents are sampled.
TEXT_SAMPLE_PAGES = 24
#: Scale for the "does every page render" pass (1.0 = 72 dpi); small keeps it fast.
RENDER_SCALE = 0.2
#: Pages compared visually, and the resolution they are compared at.
VISUAL_SAMPLE_PAGES = 4
VISUAL_DPI = 60


def visual_floor(settings: Settings) -> float:
    """Lowest acceptable SSIM of a sampled page at :data:`VISUAL_DPI`, by JPEG quality.

    A guard against a broken image transform (wrong colours, inverted masks,
    misplaced pixels), not a quality target: the levels sit well above it.
    With a per-image SSIM floor (``image_ssim``) JPEGs may go below the cap's
    quality, so the guard sits a little under that floor too (a page mixes
    images with exact text and is usually rendered smaller than the images'
    own resolution, so its SSIM is about the images' or higher).
    """
    if not settings.lossy_images:
        return 0.99
    quality = settings.image_quality
    floor = 0.95 if quality >= 85 else 0.90 if quality >= 70 else 0.85 if quality >= 50 else 0.75
    if settings.image_ssim is not None:
        floor = min(floor, settings.image_ssim - 0.05)
    return floor


@dataclass(frozen=True)
class Render:
    """A page rendered in gray: PDFium's bitmap bytes as they are (rows of ``stride`` bytes,
    ``channels`` bytes a pixel).

    Kept as bytes, not an array: two renders with equal bytes look the same, and for a
    document whose pages the engine only re-packed that settles the visual check without
    importing numpy or computing an SSIM.
    """

    data: bytes
    width: int
    height: int
    stride: int
    channels: int

    def same_as(self, other: Render) -> bool:
        return (self.width, self.height, self.stride, self.channels, self.data) == (
            other.width, other.height, other.stride, other.channels, other.data)

    def gray(self) -> np.ndarray:
        """The first channel as an H x W uint8 array (a copy)."""
        import numpy as np

        rows = np.frombuffer(self.data, np.uint8).reshape(self.height, self.stride)
        return np.ascontiguousarray(rows[:, : self.width * self.channels: self.channels])


def render_gray(page: pdfium.PdfPage, dpi: float = VISUAL_DPI) -> Render:
    bitmap = page.render(scale=dpi / 72, grayscale=True)
    try:
        return Render(bytes(bitmap.buffer), bitmap.width, bitmap.height, bitmap.stride,
                      bitmap.n_channels)
    finally:
        bitmap.close()


def similarity(reference: Render, render: Render) -> float:
    """SSIM of two renders of a page (1.0 without computing it when the bytes are equal)."""
    if reference.same_as(render):
        return 1.0
    from squeezer.engines.ssim import ssim

    return ssim(reference.gray(), render.gray())


def sample_pages(count: int, limit: int = TEXT_SAMPLE_PAGES) -> list[int]:
    """Page indexes to text-check: all of a short document, else first, last and spread."""
    if count <= limit:
        return list(range(count))
    head, tail = limit // 3, limit // 6
    spread = limit - head - tail
    middle = {head + (count - head - tail) * k // spread for k in range(spread)}
    return sorted(set(range(head)) | middle | set(range(count - tail, count)))


def page_text(page: pdfium.PdfPage) -> str:
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()


@dataclass
class Reference:
    """What must stay the same: page count and the text of sampled pages."""

    pages: int
    texts: dict[int, str] = field(default_factory=dict)
    renders: dict[int, Render] = field(default_factory=dict)

    @classmethod
    def of(cls, path: Path, password: str | None = None) -> Reference | None:
        """Read the reference from the input, or None when PDFium cannot open it.

        (qpdf repairs files PDFium rejects; those are checked by page count only.)
        The pipeline may run this on a thread of its own while it compresses, so
        PDFium's lock is taken page by page: the image step's 1-bit decodes wait
        for one page at most.
        """
        try:
            with LOCK:
                doc = pdfium.PdfDocument(str(path), password=password or None)
        except pdfium.PdfiumError:
            return None
        try:
            count = len(doc)
            ref = cls(pages=count)
            visual = set(sample_pages(count, VISUAL_SAMPLE_PAGES))
            for i in sample_pages(count):
                with LOCK:
                    try:
                        page = doc[i]
                    except pdfium.PdfiumError:
                        continue  # a page PDFium cannot load: nothing to compare it with
                    try:
                        ref.texts[i] = page_text(page)
                        if i in visual:
                            ref.renders[i] = render_gray(page)
                    finally:
                        page.close()
            return ref
        finally:
            with LOCK:
                doc.close()


@dataclass
class Verdict:
    ok: bool
    reason: str = ""


def check(candidate: Path, reference: Reference | None, expected_pages: int,
          password: str | None = None, compare_text: bool = True,
          min_similarity: float = 0.0, processes: int = 1) -> Verdict:
    """Open, count, render every page of, read, and look at ``candidate``.

    The output must open in qpdf as well as in PDFium: the two implementations
    are lenient about different things, and users' tools are built on both.
    ``processes`` > 1 shares the pages with forked helpers (:mod:`squeezer.engines.forks`):
    PDFium is not thread-safe, so a second core can only render in a process of its own.
    """
    try:
        with pikepdf.open(candidate, password=password or "") as pdf:
            if len(pdf.pages) != expected_pages:
                return Verdict(False, f"output has {len(pdf.pages)} pages in qpdf, "
                                      f"input has {expected_pages}")
    except (pikepdf.PdfError, pikepdf.PasswordError) as exc:
        return Verdict(False, f"output does not open in qpdf: {exc}")
    with LOCK:  # (nothing else runs by now; the lock keeps PDFium's one-caller rule explicit)
        return _check_in_pdfium(candidate, reference, expected_pages, password, compare_text,
                                min_similarity, processes)


#: Documents with fewer pages, or fewer bytes, than these are checked in this process alone:
#: forking and opening a second copy (about 10 ms) cost more than it saves (measured on the
#: corpus: 2 and 3 pages, and 9 to 16 pages of 11 to 30 KB, were slower forked).
FORK_PAGES = 4
FORK_BYTES = 64 << 10


def _check_in_pdfium(candidate: Path, reference: Reference | None, expected_pages: int,
                     password: str | None, compare_text: bool, min_similarity: float,
                     processes: int) -> Verdict:
    documents = _Documents(candidate, password)
    try:
        try:
            count = len(documents.here())
        except pdfium.PdfiumError as exc:
            return Verdict(False, f"output does not open in PDFium: {exc}")
        if count != expected_pages:
            return Verdict(False, f"output has {count} pages, input has {expected_pages}")

        def page_fault(i: int) -> str | None:
            try:
                doc = documents.here()  # (a helper's own copy is opened on its first page)
            except pdfium.PdfiumError as exc:
                return f"output does not open in PDFium: {exc}"
            return _page_fault(doc, i, reference, compare_text, min_similarity)

        small = count < FORK_PAGES or candidate.stat().st_size < FORK_BYTES
        share = 1 if small else processes
        with closing(forks.shared_map(page_fault, range(count), share,
                                      fork_guard=lambda: LOCK)) as faults:
            for fault in faults:
                if fault is not None:
                    return Verdict(False, fault)
        return Verdict(True)
    finally:
        documents.close()


class _Documents:
    """``candidate`` opened in PDFium once per process: a forked helper opens its own copy
    (a document opened before the fork reads through a file offset both processes share)."""

    def __init__(self, path: Path, password: str | None) -> None:
        self.path, self.password = path, password
        self.pid: int | None = None
        self.doc: pdfium.PdfDocument | None = None

    def here(self) -> pdfium.PdfDocument:
        if self.doc is None or self.pid != os.getpid():
            self.doc = pdfium.PdfDocument(str(self.path), password=self.password or None)
            self.pid = os.getpid()
        return self.doc

    def close(self) -> None:
        if self.doc is not None and self.pid == os.getpid():
            self.doc.close()


def _page_fault(doc: pdfium.PdfDocument, i: int, reference: Reference | None,
                compare_text: bool, min_similarity: float) -> str | None:
    """Why page ``i`` fails the check (it does not render, its text or look changed), or None."""
    try:
        page = doc[i]
    except pdfium.PdfiumError as exc:
        return f"page {i + 1} does not render: {exc}"
    try:
        compare_look = bool(min_similarity) and reference is not None and i in reference.renders
        if not compare_look:  # (a page compared below is rendered there)
            # that it renders is the check, not how smooth: images are scaled down
            # without filtering (10-30 % faster on image-heavy pages)
            bitmap = page.render(scale=RENDER_SCALE, no_smoothimage=True)
            bitmap.close()
        if (compare_text and reference is not None and i in reference.texts
                and page_text(page) != reference.texts[i]):
            return f"text of page {i + 1} changed"
        if compare_look and reference is not None:  # (it is: compare_look says so)
            score = similarity(reference.renders[i], render_gray(page))
            if score < min_similarity:
                return f"page {i + 1} looks different (SSIM {score:.3f} < {min_similarity})"
    except pdfium.PdfiumError as exc:
        return f"page {i + 1} does not render: {exc}"
    finally:
        page.close()
    return None
