"""``squeezer --help`` loads no subcommand: the start-up cost stays the interpreter's own.

Speed itself is measured in bench/ (never timed here); what is tested is the
structure that keeps it fast: which modules a bare ``--help`` imports.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("squeezer.cli.compress", "squeezer.cli.service", "squeezer.engines", "pydantic",
         "numpy", "pikepdf", "asyncio", "multiprocessing", "concurrent.futures", "httpx")

PROBE = """
import contextlib, io, json, sys
from squeezer.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps(sorted(sys.modules)))
"""


def loaded(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          timeout=60, check=True)
    return set(json.loads(proc.stdout.splitlines()[-1]))


def test_bare_help_imports_no_subcommand_and_no_engine():
    modules = loaded("--help")
    assert not [m for m in HEAVY if m in modules], [m for m in HEAVY if m in modules]


def test_a_subcommand_loads_only_its_own_module():
    modules = loaded("options", "--help")
    assert "squeezer.cli.info" in modules
    assert "squeezer.cli.service" not in modules and "squeezer.cli.compress" not in modules
