"""JSON request bodies read with bounds: depth here, size in :mod:`squeezer.api.limits`.

``json.loads`` recurses once per nesting level: 20 000 ``[`` (40 KB, well under
any size limit) raise ``RecursionError``, which is no ``ValueError`` and
surfaced as a 500 on every route that parsed JSON itself.  :func:`loads` turns
that, and any document nested deeper than :data:`MAX_DEPTH` (which recursive
code after it, pydantic or our own key folding, could still choke on), into
the ``json.JSONDecodeError`` each caller already answers with its protocol's
"invalid JSON" error.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting of objects and arrays accepted in a request (real requests use 4).
MAX_DEPTH = 64


def depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts (iteratively: no recursion to exhaust)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


def loads(raw: str | bytes | bytearray, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` that raises ``json.JSONDecodeError`` (never ``RecursionError``) for
    documents nested deeper than ``max_depth``; ``UnicodeDecodeError`` as ``json.loads``."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", "", 0) from None
    if depth(value) > max_depth:
        raise json.JSONDecodeError(f"nested deeper than {max_depth} levels", "", 0)
    return value
