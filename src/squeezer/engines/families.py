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

from squeezer.engines.container.formats import FORMATS as CONTAINER_FORMATS
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
    #: ``module:Class`` of the engine's report (a :class:`~squeezer.engines.report.RunReport`
    #: whose ``kind`` is the family's name; reports cross process boundaries as JSON)
    report: str
    #: ``module:function`` giving the output's extension for ``(kind, options)`` before the
    #: run (None: only the run can tell); unset: the input's own extension
    extension: str | None = None

    def compress(self) -> Callable[..., Any]:
        compress: Callable[..., Any] = importlib.import_module(self.engine).compress
        return compress

    def report_model(self) -> type[Any]:
        module, _, name = self.report.partition(":")
        model: type[Any] = getattr(importlib.import_module(module), name)
        return model

    def output_extension(self, kind: Any, options: Any) -> str | None:
        if self.extension is None:
            extension: str | None = kind.extension
            return extension
        module, _, name = self.extension.partition(":")
        result: str | None = getattr(importlib.import_module(module), name)(kind, options)
        return result

    def level_summaries(self) -> dict[str, str]:
        table = importlib.import_module(self.levels_module).LEVELS
        return {level.value: table[level].summary for level in Level}

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "title": self.title, "groups": sorted(self.groups),
                "formats": list(self.formats), "levels": self.level_summaries()}


FAMILIES: tuple[Family, ...] = (
    Family("pdf", "PDF documents", frozenset({"pdf"}), ("pdf",),
           "squeezer.engines.pdf.pipeline", "squeezer.engines.pdf.options",
           "squeezer.engines.report:Report"),
    Family("image", "Images", frozenset({"image"}),
           ("jpeg", "png", "gif", "webp", "avif", "heic", "tiff", "bmp", "svg"),
           "squeezer.engines.image.pipeline", "squeezer.engines.image.options",
           "squeezer.engines.image.report:ImageReport",
           "squeezer.engines.image.options:output_extension"),
    # a video's audio tracks follow the audio group; a file with no moving picture goes
    # from one engine to the other (its report's kind says which ran)
    Family("video", "Video", frozenset({"video", "audio"}),
           ("mp4", "mov", "m4v", "3gp", "mkv", "webm", "avi", "mpegts", "ogv"),
           "squeezer.engines.video.pipeline", "squeezer.engines.video.options",
           "squeezer.engines.video.report:VideoReport",
           "squeezer.engines.video.options:output_extension"),
    Family("audio", "Audio", frozenset({"audio"}),
           ("mp3", "aac", "m4a", "wav", "flac", "ogg", "opus", "aiff", "mka", "weba"),
           "squeezer.engines.audio.pipeline", "squeezer.engines.audio.options",
           "squeezer.engines.audio.report:AudioReport",
           "squeezer.engines.audio.options:output_extension"),
    # members go to their own engines, so every group applies (video/audio once installed)
    Family("archive", "Documents, e-books, archives and website bundles",
           frozenset({"archive", "image", "pdf", "video", "audio"}),
           tuple(CONTAINER_FORMATS),
           "squeezer.engines.container.pipeline", "squeezer.engines.container.options",
           "squeezer.engines.container.report:ContainerReport"),
)


def family_named(name: str) -> Family:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(name)


def report_from_json(data: dict[str, Any]) -> Any:
    """A report sent across a process boundary, as its family's model (``kind`` says which;
    a PDF report has none)."""
    return family_named(str(data.get("kind") or "pdf")).report_model().model_validate(data)


def family_of(fmt: str) -> Family:
    """The family of a sniffed format (``KeyError`` for a format no engine takes)."""
    for family in FAMILIES:
        if fmt in family.formats:
            return family
    raise KeyError(fmt)
