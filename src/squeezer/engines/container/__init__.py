"""The container engine: OOXML, ODF, EPUB, ZIP/JAR/APK, website bundles, tar, gzip, 7z.

See :mod:`squeezer.engines.container.pipeline` and docs/containers.md.
"""

from squeezer.engines.container.options import ArchiveOptions
from squeezer.engines.container.report import ContainerReport, MemberResult

__all__ = ["ArchiveOptions", "ContainerReport", "MemberResult", "compress"]


def compress(*args, **kwargs):
    """:func:`squeezer.engines.container.pipeline.compress` (imported on first use)."""
    from squeezer.engines.container.pipeline import compress as run

    return run(*args, **kwargs)
