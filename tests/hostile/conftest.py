"""The hostile suite's fixtures: the generator on the path, a canary, a chaos service."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from invariants import Canary  # noqa: E402


@pytest.fixture
def canary():
    listener = Canary()
    yield listener
    listener.close()


@contextlib.contextmanager
def tiny_tmpfs(path: Path, size: str = "4m"):
    """A small tmpfs at ``path`` (root only); None when it cannot be mounted here."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "tmpfs", str(path)],
        capture_output=True).returncode == 0
    try:
        yield path if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
