"""The file families Squeezer compresses, and which engine and option groups serve each.

One row per family: the dispatcher (:mod:`squeezer.engines.dispatch`) sends a
sniffed file to its family's engine, the report warns about option groups the
family does not read, and ``GET /v1/options`` lists the families with what
each level means for them.  Engines are imported only when a file needs them
(``squeezer --help`` must not pay for the PDF pipeline).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from squeezer.engines.level import Level


@dataclass(frozen=True)
class Family:
    name: str  #: ``pdf``, ``image``, …
    title: str  #: for people
    #: the option groups the family's engine reads (besides the common options)
    groups: frozenset[str]
    #: the sniffed formats (``squeezer.engines.sniff`` names) that belong to it
    formats: tuple[str, ...]
    #: the module with the engine's ``compress(src, dst, options, *, limits, progress)``
    engine: str
    #: the module whose ``LEVELS`` table says what each level means for the family
    levels_module: str

    def compress(self) -> Callable[..., Any]:
        compress: Callable[..., Any] = importlib.import_module(self.engine).compress
        return compress

    def level_summaries(self) -> dict[str, str]:
        table = importlib.import_module(self.levels_module).LEVELS
        return {level.value: table[level].summary for level in Level}

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "groups": sorted(self.groups),
                "formats": list(self.formats), "levels": self.level_summaries()}


FAMILIES: tuple[Family, ...] = (
    Family("pdf", "PDF documents", frozenset({"pdf"}), ("pdf",),
           "squeezer.engines.pdf.pipeline", "squeezer.engines.pdf.options"),
    Family("image", "Images", frozenset({"image"}),
           ("jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "bmp", "svg"),
           "squeezer.engines.image.pipeline", "squeezer.engines.image.options"),
)


def family_of(fmt: str) -> Family:
    """The family of a sniffed format (``KeyError`` for a format no engine takes)."""
    for family in FAMILIES:
        if fmt in family.formats:
            return family
    raise KeyError(fmt)
