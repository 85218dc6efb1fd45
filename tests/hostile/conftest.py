"""The hostile suite's fixtures: the generator on the path, a canary, a chaos service."""

from __future__ import annotations

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
