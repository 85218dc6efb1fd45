"""Building blocks of the options model (:mod:`squeezer.engines.options`).

Kept apart from the model so that each engine's option group
(``engines/pdf/options.py``, ``engines/image/options.py``, …) can use them
without importing the model that gathers every group.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)


def parse_size(value: Any) -> Any:
    """Accept ``2000000``, ``"2MB"``, ``"500k"``, ``"1.5 MiB"`` as byte counts."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value)
    m = _SIZE_RE.match(str(value))
    if not m:
        raise ValueError(f"not a size: {value!r} (use bytes, or e.g. 500KB, 2MB)")
    number, unit = float(m.group(1)), (m.group(2) or "").lower()
    prefix = unit[:1] if unit[:1] in "kmgt" else ""
    step = 1024 if "i" in unit else 1000
    factor = step ** ("kmgt".index(prefix) + 1) if prefix else 1
    return int(number * factor)


#: a byte count written as a number or as ``500KB``, ``2MB``, ``1.5MiB``
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(gt=0, json_schema_extra={
    "x-syntax": "SIZE"})]


class OptionGroup(BaseModel):
    """One format's options: a group of :class:`~squeezer.engines.options.Options`.

    ``flat``: the group's field names are also accepted at the top level of a
    request (``dpi`` for ``pdf.dpi``): the PDF and image options were flat
    before the model had groups, and clients still send them so.  Groups added
    later are nested only.  ``title`` heads the group in ``--help`` and the docs.
    """

    model_config = ConfigDict(extra="forbid")

    title: ClassVar[str] = ""
    flat: ClassVar[bool] = False
