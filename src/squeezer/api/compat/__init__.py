"""The vendor protocols: one module per seed protocol, each a thin translation onto the
native jobs, storage and engine (``squeezer.api.jobflow``), never a second pipeline.

Every module here that defines a ``router`` (a FastAPI ``APIRouter`` with its own
prefix and error shape) is mounted by :func:`routers`; see docs/compat.md.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found
