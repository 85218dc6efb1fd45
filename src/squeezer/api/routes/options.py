"""``GET /v1/options``: the formats, levels and options the engines take, from the model.

Generated from :func:`squeezer.engines.options.describe` (never written
again): the web page builds its controls from it, clients can discover what a
server supports, and a test holds it to the model.  No key is needed: it says
nothing about anyone's files.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter

router = APIRouter(tags=["options"])


@cache
def _description() -> dict[str, Any]:
    from squeezer.engines.options import describe

    return describe()


@router.get("/v1/options", summary="Formats, levels (with what each means) and every option")
async def options() -> dict[str, Any]:
    return _description()
