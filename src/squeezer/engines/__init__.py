"""Pure compression engines: file in, file out, options, report.

Nothing in this package may import the service layers (api, db, jobs, storage):
the CLI's ``compress`` and the job workers both call these functions directly.
Attributes are imported on first use, so that reading the options model does
not load every engine.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Options", "compress_any"]


def __getattr__(name: str) -> Any:
    if name == "compress_any":
        from squeezer.engines.dispatch import compress_any

        return compress_any
    if name == "Options":
        from squeezer.engines.options import Options

        return Options
    raise AttributeError(f"module 'squeezer.engines' has no attribute {name!r}")
