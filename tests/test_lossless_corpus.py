"""``lossless`` renders every page of every corpus file pixel-identical (issue 18, item 9).

Each file of ``../shared/corpus/pdf`` and ``../shared/corpus/wide`` is compressed at
``lossless`` and every page of input and output is rendered by PDFium in colour (form
fields drawn) at a modest scale, then compared exactly: any changed pixel fails.  The
smallest short file of each manifest category runs on every test run; the rest
(about 180 files) with ``--run-slow``.  Files every engine refuses (a password is needed, damage nothing reads)
must be refused with a named error.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pdfgen
import pytest

from squeezer.engines.errors import EngineError
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress

pytestmark = pytest.mark.corpus

#: 0.5 = 36 dpi: every page in well under a second, and an image changed anywhere still
#: changes pixels (the Matte bug moved 838 of them on a slide rendered this small)
SCALE = 0.5
#: Each category's smallest file of at most this many pages and bytes runs every time.
SAMPLE_PAGES = 10
SAMPLE_BYTES = 300_000


def _files() -> list:
    params = []
    for folder in (pdfgen.CORPUS, pdfgen.WIDE):
        manifest = folder / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with open(manifest, newline="", encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f, delimiter="\t") if (folder / r["file"]).is_file()]
        smallest: dict[str, str] = {}
        for row in sorted(rows, key=lambda r: int(r["bytes"])):
            pages = int(row["pages"] or 0)
            if 0 < pages <= SAMPLE_PAGES and int(row["bytes"]) <= SAMPLE_BYTES:
                smallest.setdefault(row["category"], row["file"])
        for row in rows:
            marks = () if smallest.get(row["category"]) == row["file"] else (pytest.mark.slow,)
            params.append(pytest.param(folder / row["file"], marks=marks,
                                       id=f"{folder.name}/{row['file'].removesuffix('.pdf')}"))
    return params or [pytest.param(None, marks=pytest.mark.skip(reason="no corpus"))]


def _render(doc, index: int) -> np.ndarray:
    page = doc[index]
    bitmap = page.render(scale=SCALE, may_draw_forms=True)
    pixels = np.array(bitmap.to_numpy(), copy=True)
    bitmap.close()
    page.close()
    return pixels


@pytest.mark.parametrize("src", _files())
def test_lossless_renders_every_page_pixel_identical(src: Path, tmp_path):
    dst = tmp_path / "out.pdf"
    try:
        report = compress(src, dst, Options(level="lossless"))
    except EngineError:
        import pypdfium2 as pdfium

        with pytest.raises(pdfium.PdfiumError):  # refused only when PDFium cannot read it
            pdfium.PdfDocument(str(src))
        return
    if report.original_kept:
        return
    before, after = pdfgen.open_pdfium(src), pdfgen.open_pdfium(dst)
    try:
        assert len(after) == len(before)
        changed = [i for i in range(len(before))
                   if not np.array_equal(_render(before, i), _render(after, i))]
    finally:
        before.close()
        after.close()
    assert changed == [], f"pages {changed[:10]} of {len(before)} render differently"
