"""Imported by the engine's forkserver: run the engine once, so every child starts warm.

Each job's engine (PDF or image) runs in a fresh child forked from one server process
(:mod:`squeezer.jobs.isolation`).  The first compression in a process pays
for lazy work — PDFium's initialisation, codec and font-tool imports, Pillow
plugins — about 20 ms, which a small synchronous request would pay every
time.  Doing it here, once, before any fork, hands every child the warm state
for free (copy-on-write).  Failure is harmless: children are then just cold.
"""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path


def _tiny_pdf(path: Path) -> None:
    import pikepdf
    from PIL import Image

    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(
        Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type1, BaseFont=pikepdf.Name.Helvetica))
    image = Image.effect_noise((64, 64), 40).convert("RGB")
    xobject = pikepdf.Stream(pdf, image.tobytes(), Type=pikepdf.Name.XObject,
                             Subtype=pikepdf.Name.Image, Width=64, Height=64,
                             ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
    content = b"BT /F1 12 Tf 72 720 Td (warm) Tj ET q 64 0 0 64 72 600 cm /Im0 Do Q"
    page = pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 792],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font),
                                     XObject=pikepdf.Dictionary(Im0=xobject)),
        Contents=pdf.make_stream(content))
    pdf.pages.append(pikepdf.Page(page))
    pdf.save(path)


#: the warm-up document, kept for :func:`rewarm` in each child
SAMPLE = b""


def warm() -> None:
    global SAMPLE
    from squeezer.engines.dispatch import compress_any

    with (contextlib.suppress(Exception),
          tempfile.TemporaryDirectory(prefix="squeezer-warm-") as tmp):
        src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out"
        _tiny_pdf(src)
        SAMPLE = src.read_bytes()
        for level in ("lossless", "medium"):
            compress_any(src, dst, {"level": level})
        # the JBIG2 coder is compiled on first use (from the shipped IR, ~0.1 s; numba: ~1 s)
        import numpy as np

        from squeezer.engines.pdf import jbig2

        if jbig2.available():
            jbig2.encode_generic(np.zeros((16, 16), bool))
        # Not the image engine: its encoders (oxipng) start thread pools, and a child forked
        # from a process with running pool threads deadlocks on its first use of the pool.
        # Importing it (the preload list) is safe and is most of its cold cost.


def rewarm() -> None:
    """In a freshly forked child parked for a job (:mod:`squeezer.jobs.prefork`): one small
    compression, so that the pages every compression touches are copied (copy-on-write) now,
    before the job; its first compression otherwise takes about twice as long as the next."""
    from squeezer.engines.dispatch import compress_any

    if not SAMPLE:
        return
    with tempfile.TemporaryDirectory(prefix="squeezer-warm-") as tmp:
        src, dst = Path(tmp) / "in.pdf", Path(tmp) / "out"
        src.write_bytes(SAMPLE)
        compress_any(src, dst, {"level": "lossless"})


def freeze() -> None:
    """Move everything imported and warmed so far out of the collector's sight: a child's
    garbage collections then never walk (and so never copy-on-write) the forkserver's objects."""
    import gc

    gc.collect()
    gc.freeze()


warm()
freeze()
