"""The container engine: OOXML, ODF, EPUB, ZIP/JAR/APK, website bundles, tar, gzip, 7z.

See :mod:`squeezer.engines.container.pipeline` and docs/containers.md.
"""

from typing import TYPE_CHECKING, Any

from squeezer.engines.container.options import ArchiveOptions

if TYPE_CHECKING:
    from squeezer.engines.container.report import ContainerReport, MemberResult

__all__ = ["ArchiveOptions", "ContainerReport", "MemberResult", "compress"]


def __getattr__(name: str) -> Any:
    if name in ("ContainerReport", "MemberResult"):
        # (the report's models are built on first use: a PDF's cold run never needs them,
        # issue 18)
        from squeezer.engines.container import report

        return getattr(report, name)
    raise AttributeError(f"module 'squeezer.engines.container' has no attribute {name!r}")


def compress(*args, **kwargs):
    """:func:`squeezer.engines.container.pipeline.compress` (imported on first use)."""
    from squeezer.engines.container.pipeline import compress as run

    return run(*args, **kwargs)
