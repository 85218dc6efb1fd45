"""The engine's start-up: what a cold process compressing a PDF imports (issue 18, item 7).

A small text PDF must not pay for the image codecs: each test runs a fresh
interpreter and looks at ``sys.modules`` afterwards (no timing: speed is in
``bench/``).  (``squeezer --help`` is tests/test_startup.py's.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pdfgen
import pikepdf

#: Heavy modules a text-only document never needs.
HEAVY = ("numpy", "PIL.Image", "fontTools.ttLib", "llvmlite", "numba", "scipy")


def _fresh(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints a JSON object as its last line."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_the_cli_loads_no_engine_library() -> None:
    loaded = _fresh(
        "import sys, json\n"
        "import squeezer.cli\n"
        "print(json.dumps([m for m in ('numpy', 'pikepdf', 'pypdfium2', 'PIL.Image')"
        " if m in sys.modules]))\n"
    )
    assert loaded == []


def test_a_text_pdf_is_compressed_without_numpy_pillow_or_fonttools(tmp_path: Path) -> None:
    src, dst = tmp_path / "text.pdf", tmp_path / "out.pdf"
    pdfgen.uncompressed_text_pdf(src, pages=3)
    result = _fresh(
        "import sys, json\n"
        "from squeezer.engines.options import Options\n"
        "from squeezer.engines.pdf import compress\n"
        f"report = compress({str(src)!r}, {str(dst)!r}, Options(level='medium'))\n"
        "print(json.dumps({'saved': report.input_bytes - report.output_bytes,\n"
        f"                  'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    assert result["saved"] > 0  # it did compress (and verify) the document
    assert result["loaded"] == []
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_a_pdf_with_a_photo_still_gets_the_image_step(tmp_path: Path) -> None:
    src, dst = tmp_path / "photo.pdf", tmp_path / "out.pdf"
    pdfgen.photo_pdf(src, width=800, height=600, encoding="flate")
    result = _fresh(
        "import sys, json\n"
        "from squeezer.engines.options import Options\n"
        "from squeezer.engines.pdf import compress\n"
        f"report = compress({str(src)!r}, {str(dst)!r}, Options(level='medium'))\n"
        "print(json.dumps({'jpeg': report.images.to_jpeg, 'numpy': 'numpy' in sys.modules}))\n"
    )
    assert result == {"jpeg": 1, "numpy": True}


def test_a_cli_compress_of_a_word_pdf_reads_no_configuration_and_no_numpy(tmp_path: Path) -> None:
    """Word's TrueType subsets are counted from their tables (no numpy) and lose their layout
    tables by a table rewrite (no fontTools, issue 18); with no
    ``SQUEEZER_*`` variable the defaults are used without importing the configuration, and the
    default memory cap still applies; ``--json`` off a terminal loads no rich."""
    src, dst = pdfgen.corpus_file("docling__right_to_left_01.pdf"), tmp_path / "out.pdf"
    code = (
        "import contextlib, io, json, resource, sys\n"
        "from squeezer.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    code = main(['compress', {str(src)!r}, '-o', {str(dst)!r}, '--json'])\n"
        "print(json.dumps({'code': code, 'cap': resource.getrlimit(resource.RLIMIT_AS)[0],\n"
        "    'loaded': [m for m in ('numpy', 'squeezer.config', 'pydantic_settings', 'rich',"
        "                           'fontTools.ttLib', 'multiprocessing',"
        "                           'squeezer.engines.image.report')"
        " if m in sys.modules]}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SQUEEZER_")
           and k not in ("FORCE_COLOR", "TTY_COMPATIBLE")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True, env=env)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"code": 0, "cap": 4 << 30, "loaded": []}
    assert dst.stat().st_size < src.stat().st_size
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)


def test_a_latex_pdf_type1_fonts_convert_without_numpy(tmp_path: Path) -> None:
    """Type 1 programs of a LaTeX paper are decrypted without importing numpy (issue 18)."""
    src = pdfgen.corpus_file("pdfminer__naacl06-shinyama.pdf")
    dst = tmp_path / "out.pdf"
    result = _fresh(
        "import sys, json\n"
        "from squeezer.engines.options import Options\n"
        "from squeezer.engines.pdf import compress\n"
        f"report = compress({str(src)!r}, {str(dst)!r}, Options(level='lossless'))\n"
        "print(json.dumps({'warnings': report.warnings, 'kept': report.original_kept,\n"
        "                  'numpy': 'numpy' in sys.modules}))\n"
    )
    assert result == {"warnings": [], "kept": False, "numpy": False}
    with pikepdf.open(dst) as pdf:
        assert not any(isinstance(o, pikepdf.Dictionary) and "/FontFile" in o
                       for o in pdf.objects)  # every Type 1 program became CFF
