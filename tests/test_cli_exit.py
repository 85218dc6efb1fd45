"""How the ``squeezer`` script starts and ends (issue 18: fixed costs of a cold run).

:func:`squeezer.cli.run` starts with Python's cyclic garbage collector off, turns it
back on (start-up's objects frozen) when the command runs, and ends a command that
finished normally without the interpreter's teardown.  What a normal exit does must
still happen: ``atexit`` functions run, output is flushed whole, the exit status is
the command's, and another thread still running is waited for.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

import pdfgen

from squeezer.cli import main


def _script(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          check=False,
                          timeout=120)


def test_compress_runs_atexit_flushes_its_output_and_collects_again(tmp_path: Path) -> None:
    src, dst, marker = tmp_path / "in.pdf", tmp_path / "out.pdf", tmp_path / "atexit"
    pdfgen.uncompressed_text_pdf(src, pages=2)
    code = (
        "import atexit, gc, sys\n"
        "from pathlib import Path\n"
        "from squeezer.engines.pdf import pipeline\n"
        "seen = {}\n"
        "real = pipeline.compress\n"
        "def probe(*a, **k):\n"
        "    seen['gc'] = gc.isenabled()\n"
        "    return real(*a, **k)\n"
        "pipeline.compress = probe\n"
        f"atexit.register(lambda: Path({str(marker)!r}).write_text(repr(seen['gc'])))\n"
        "sys.argv = ['squeezer'] + sys.argv[1:]\n"
        "from squeezer.cli import run\n"
        "run()\n"
    )
    proc = _script(code, "compress", str(src), "-o", str(dst), "--json")
    assert proc.returncode == 0, proc.stderr
    reports = json.loads(proc.stdout)  # the whole JSON made it out
    assert reports[0]["ok"] and reports[0]["report"]["output_bytes"] == dst.stat().st_size
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    assert marker.read_text() == "True"  # atexit ran, and the engine ran with the collector on


def test_a_failed_compress_keeps_its_exit_status_and_error_line(tmp_path: Path) -> None:
    code = "import sys\nsys.argv = ['squeezer'] + sys.argv[1:]\nfrom squeezer.cli import run\nrun()\n"
    proc = _script(code, "compress", str(tmp_path / "missing.pdf"), "-o", str(tmp_path / "o.pdf"))
    assert proc.returncode == 1
    assert "file_not_found" in proc.stderr


def test_a_thread_still_running_is_waited_for(tmp_path: Path) -> None:
    marker = tmp_path / "thread"
    code = (
        "import sys, threading, time\n"
        "from pathlib import Path\n"
        "def late():\n"
        "    time.sleep(0.5)\n"
        f"    Path({str(marker)!r}).write_text('done')\n"
        "threading.Thread(target=late).start()\n"
        "sys.argv = ['squeezer'] + sys.argv[1:]\n"
        "from squeezer.cli import run\n"
        "run()\n"
    )
    proc = _script(code, "compress", str(tmp_path / "missing.pdf"), "-o", str(tmp_path / "o.pdf"))
    assert proc.returncode == 1 and "file_not_found" in proc.stderr
    assert marker.read_text() == "done"


def test_main_in_process_leaves_the_callers_collector_alone(capsys) -> None:
    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    assert main(["options"]) == 0
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    assert "level" in capsys.readouterr().out


def _loader_probe(tmp_path: Path, env: dict[str, str]) -> dict:
    src, dst, marker = tmp_path / "in.pdf", tmp_path / "out.pdf", tmp_path / "probe.json"
    pdfgen.uncompressed_text_pdf(src, pages=1)
    code = (
        "import atexit, json, os, sys\n"
        "from pathlib import Path\n"
        "def probe():\n"
        "    loader = sys.modules.get('pydantic.plugin._loader')\n"
        f"    Path({str(marker)!r}).write_text(json.dumps({{\n"
        "        'metadata': 'importlib.metadata' in sys.modules,\n"
        "        'real_loader': hasattr(loader, 'entry_points'),\n"
        "        'blas': os.environ.get('OPENBLAS_NUM_THREADS')}))\n"
        "atexit.register(probe)\n"
        "sys.argv = ['squeezer'] + sys.argv[1:]\n"
        "from squeezer.cli import run\n"
        "run()\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, "compress", str(src), "-o", str(dst)],
                          capture_output=True, text=True, timeout=120, check=False, env=env)
    assert proc.returncode == 0, proc.stderr
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(src)
    return json.loads(marker.read_text())


def test_compress_does_not_look_for_pydantic_plugins_and_keeps_openblas_to_one_thread(tmp_path: Path) -> None:
    import os

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYDANTIC_DISABLE_PLUGINS", "OPENBLAS_NUM_THREADS")}
    assert _loader_probe(tmp_path, env) == {"metadata": False, "real_loader": False,
                                            "blas": "1"}
    # set to anything, the variable hands the decision back to pydantic; the user's OpenBLAS
    # threads stand
    env["PYDANTIC_DISABLE_PLUGINS"] = ""
    env["OPENBLAS_NUM_THREADS"] = "2"
    assert _loader_probe(tmp_path, env) == {"metadata": True, "real_loader": True, "blas": "2"}
