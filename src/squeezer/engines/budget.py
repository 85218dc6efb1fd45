"""Enforcement of :class:`~squeezer.engines.limits.Limits` during one run.

A :class:`Budget` is created per file and passed down to every step that does
heavy work, so each step can check the clock and account for the bytes and
pixels it is about to decode *before* decoding them (failing late loses work
and memory).  Native code (qpdf writing a file) cannot be interrupted from
Python; the hard wall-clock and memory caps for that live in the job runner,
which runs each engine call in a disposable child process.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from squeezer.engines.errors import (
    DecompressionLimitError,
    ImageTooLargeError,
    TimeLimitError,
    TooManyPagesError,
)
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.threads import thread_count

#: An image whose samples take at least this many bytes is decoded and worked on by one
#: thread of a run at a time (:meth:`Budget.large_image`).
LARGE_IMAGE_BYTES = 32 << 20


class Budget:
    """The remaining allowance of one compression run."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.started = time.monotonic()
        self.decoded_bytes = 0
        #: set once the document passed the pre-flight scan (target search builds again)
        self.scanned = False
        #: told the fraction of the current step's items done (set by the pipeline around a
        #: long step, which maps it into the run's progress: a job's card moves while a
        #: document's images are worked on, instead of sitting at one number)
        self.on_step: Callable[[float], None] | None = None
        #: the largest image (bytes of samples) :meth:`check_image` has seen
        self.largest_image = 0
        self._large = threading.Lock()

    def advance(self, done: int, total: int) -> None:
        """``done`` of the current step's ``total`` items are finished."""
        if self.on_step is not None and total > 0:
            self.on_step(min(1.0, done / total))

    @property
    def threads(self) -> int:
        """Threads a step of this run may use (:data:`Limits.max_threads`, 0 = one per core)."""
        return thread_count(self.limits.max_threads)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check_time(self) -> None:
        if self.limits.max_seconds and self.elapsed > self.limits.max_seconds:
            raise TimeLimitError(
                f"processing took longer than the limit of {self.limits.max_seconds:g} s"
            )

    def check_pages(self, pages: int) -> None:
        if self.limits.max_pages and pages > self.limits.max_pages:
            raise TooManyPagesError(
                f"the document has {pages} pages; the limit is {self.limits.max_pages}"
            )

    def check_image(self, width: int, height: int, bits_per_pixel: int = 8) -> None:
        """Refuse to decode a ``width`` x ``height`` image that exceeds the limits.

        This only checks; the document's total is accounted once, by the
        pre-flight scan, from each image's declared size.
        """
        pixels = int(width) * int(height)
        self.largest_image = max(self.largest_image, pixels * max(bits_per_pixel, 1) // 8)
        if self.limits.max_image_pixels and pixels > self.limits.max_image_pixels:
            raise ImageTooLargeError(
                f"an image of {width}x{height} pixels exceeds the limit of "
                f"{self.limits.max_image_pixels} pixels"
            )
        self.check_stream(pixels * max(bits_per_pixel, 1) // 8)

    @contextmanager
    def large_image(self, nbytes: int) -> Iterator[None]:
        """Hold the run's one place for work on a large image (of ``nbytes`` of samples)
        while the block runs; smaller ones go straight in.

        Why: the image and scan steps work on several images at once, and the reference
        reader renders pages beside them; one large image already takes its samples, a
        Pillow copy and a resampled one.  Two or three such pages at once (a 3-page
        600 dpi colour scan: 100 MB of samples each) put the process over its memory
        goal, where one at a time costs little time: a document's small images still
        run side by side.  Leaving, the memory the work freed goes back to the kernel.
        """
        if nbytes < LARGE_IMAGE_BYTES:
            yield
            return
        # Pillow allocates an image in blocks the heap serves and, set up for a process that
        # compresses (engines.malloc), keeps when freed: what earlier images left there
        # would stay resident beside a large image's arrays, and a large image's copies
        # beside the next one's
        from squeezer.engines.malloc import release_freed_memory

        with self._large:
            release_freed_memory()
            try:
                yield
            finally:
                release_freed_memory()

    def check_stream(self, nbytes: int) -> None:
        """Refuse one stream that decompresses to more than the per-stream limit."""
        if self.limits.max_stream_bytes and nbytes > self.limits.max_stream_bytes:
            raise DecompressionLimitError(
                f"a stream decompresses to {nbytes} bytes; the limit per stream is "
                f"{self.limits.max_stream_bytes}"
            )

    def consume(self, nbytes: int) -> None:
        """Account for ``nbytes`` of decompressed data, or refuse it."""
        self.check_stream(nbytes)
        self.decoded_bytes += nbytes
        if self.limits.max_document_bytes and self.decoded_bytes > self.limits.max_document_bytes:
            raise DecompressionLimitError(
                f"the document decompresses to more than {self.limits.max_document_bytes} "
                "bytes, the limit per document"
            )
