"""The one compression-level vocabulary every engine, door and vendor mapping speaks.

``lossless``, ``low``, ``medium`` (the default), ``high`` and ``extreme``: a
level says how much loss the caller accepts, not how any one format gets
there.  Each engine keeps its own table of what a level means for its format
next to its code (``engines/pdf/options.py``, ``engines/image/options.py``, …),
with a one-line summary per level that the CLI, ``GET /v1/options`` and the
web page show.

Older requests named the image levels ``lossless|medium|high|ultra``;
``ultra`` is accepted for one release as a deprecated alias of ``extreme``
(:data:`DEPRECATED_LEVELS`), with a warning in the report.
"""

from __future__ import annotations

from enum import Enum


class Level(str, Enum):
    lossless = "lossless"
    low = "low"
    medium = "medium"
    high = "high"
    extreme = "extreme"


DEFAULT_LEVEL = Level.medium

#: level names accepted for one release, and the level each stands for
DEPRECATED_LEVELS: dict[str, Level] = {"ultra": Level.extreme}


def level_of(value: object) -> Level:
    """A :class:`Level` from its name (case-insensitive) or a deprecated alias.

    Raises ``ValueError`` naming the accepted names for anything else.
    """
    if isinstance(value, Level):
        return value
    text = str(getattr(value, "value", value)).strip().lower()
    if text in DEPRECATED_LEVELS:
        return DEPRECATED_LEVELS[text]
    try:
        return Level(text)
    except ValueError:
        names = ", ".join(level.value for level in Level)
        raise ValueError(f"not a level: {value!r} (use one of {names})") from None
