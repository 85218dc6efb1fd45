"""First pages of office documents drawn by LibreOffice, before and after, compared by SSIM.

The readers in :mod:`~squeezer.engines.container.verify` prove the text and
structure survived; only a renderer shows that the pictures still appear where
and as they did (a broken relationship, a cropped or missing image, a changed
layout).  LibreOffice headless is optional (Debian ``libreoffice-core`` and its
``-writer``/``-calc``/``-impress`` parts): when ``soffice`` is on the ``PATH``,
an office document that went through a lossy level is converted to PDF before
and after in one ``soffice`` call with a private profile in the run's scratch
directory, page 1 is drawn by pdfium at :data:`DPI` in grey, and an SSIM under
:data:`MIN_SSIM` keeps the input.  Without LibreOffice, or when it fails or
times out, nothing is claimed and the report says the render check did not run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import numpy as np

#: pixels per inch of the compared renders: enough to see a missing or moved picture, cheap
DPI = 60
#: below this the output's first page is not the input's (lossy images at 110 dpi stay > 0.97)
MIN_SSIM = 0.9
#: seconds LibreOffice may take for both conversions (its first start builds a profile)
TIMEOUT = 180.0
#: the extension LibreOffice's type detection wants for each format
_EXT = {"docm": "docm", "dotx": "dotx", "xlsm": "xlsm", "pptm": "pptm", "ppsx": "ppsx",
        "potx": "potx"}


def soffice() -> str | None:
    """LibreOffice's command, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def compare(fmt: str, before: Path, after: Path, scratch: Path,
            timeout: float = TIMEOUT) -> float | None:
    """SSIM of the first pages of ``before`` and ``after`` (0.0 when their sizes differ), or
    None when LibreOffice is missing or could not draw either."""
    command = soffice()
    if command is None:
        return None
    work = scratch / "render"
    work.mkdir(exist_ok=True)
    ext = _EXT.get(fmt, fmt)
    names = []
    for label, path in (("before", before), ("after", after)):
        link = work / f"{label}.{ext}"
        link.unlink(missing_ok=True)
        os.symlink(path.resolve(), link)
        names.append(str(link))
    args = [command, f"-env:UserInstallation=file://{work / 'profile'}", "--headless",
            "--norestore", "--nolockcheck", "--convert-to", "pdf", "--outdir", str(work),
            *names]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    finally:
        _kill_group(proc.pid)  # the launcher's children too, also after a clean exit
        proc.wait()
    pages = [_first_page(work / "before.pdf"), _first_page(work / "after.pdf")]
    if pages[0] is None or pages[1] is None:
        return None
    if pages[0].shape != pages[1].shape:
        return 0.0
    from squeezer.engines.ssim import ssim

    return float(ssim(pages[0].astype(np.float32), pages[1].astype(np.float32)))


def _kill_group(pid: int) -> None:
    """LibreOffice's launcher starts ``soffice.bin`` in the same session: end them all."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _first_page(pdf: Path) -> np.ndarray | None:
    if not pdf.is_file():
        return None
    import pypdfium2

    try:
        doc = pypdfium2.PdfDocument(str(pdf))
        try:
            if len(doc) == 0:
                return None
            image = doc[0].render(scale=DPI / 72).to_pil().convert("L")
            return np.asarray(image)
        finally:
            doc.close()
    except pypdfium2.PdfiumError:
        return None
