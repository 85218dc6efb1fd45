"""The container engine: office documents, e-books, archives and website bundles.

One call of :func:`compress` is one file.  The destination receives a complete
container that passed verification and is smaller than the input, or the
input's own bytes (``original_kept`` in the report: a signed package, nothing
to gain, or an output that failed a check), or nothing at all and a named
:class:`~squeezer.engines.errors.EngineError` is raised (a damaged or hostile
archive, a limit hit).  Everything the run writes lives in one temporary
directory that is removed when it ends; members are never written under their
own names, so no name in an archive can reach outside it.

Containers inside containers are compressed by the same code one level deeper
(:func:`nested`), sharing the run's limits (:mod:`~squeezer.engines.container.budget`).
"""

from __future__ import annotations

import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from squeezer.engines.container import formats
from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.container.members import Context
from squeezer.engines.container.options import ArchiveSettings, resolve
from squeezer.engines.container.report import MAX_MEMBER_ROWS, ContainerReport, MemberResult
from squeezer.engines.container.verify import VerificationFailed
from squeezer.engines.errors import UnsupportedFormatError
from squeezer.engines.files import atomic_copy, input_size
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.options import Options
from squeezer.engines.sniff import sniff_file

Progress = Callable[[float, str], None]


def engine_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {"squeezer": __import__("squeezer").__version__,
                "python": platform.python_version()}
    for dist in ("deflate", "zopfli", "lxml", "python-docx", "python-pptx", "openpyxl", "odfpy",
                 "minify-html", "rcssmin", "rjsmin", "py7zr", "zstandard", "brotli",
                 "mozjpeg-lossless-optimization", "pyoxipng", "fonttools"):
        try:
            versions[dist] = version(dist)
        except PackageNotFoundError:
            continue
    return versions


def compress(
    src: str | Path,
    dst: str | Path,
    options: Options | None = None,
    *,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> ContainerReport:
    """Compress the container at ``src`` into ``dst`` and report what was done, member by member.

    ``src`` and ``dst`` may be the same path; ``dst`` is replaced atomically.
    """
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    options = options or Options()
    limits = limits or DEFAULT_LIMITS
    notify = progress or (lambda fraction, stage: None)
    input_bytes = input_size(src, limits.max_input_bytes)
    fmt = sniff_file(src).format
    if not formats.is_container(fmt):
        raise UnsupportedFormatError(f"this is a {fmt.upper()}, not a container "
                                     "(squeezer.engines.compress_any picks the engine)")
    settings = resolve(options)
    report = ContainerReport(input_bytes=input_bytes, format_in=fmt, format_out=fmt,
                             settings=settings.model_dump(mode="json"),
                             engine_versions=engine_versions())
    budget = ArchiveBudget(limits)
    notify(0.02, "reading")
    with tempfile.TemporaryDirectory(prefix="squeezer-arc-") as tmp:
        scratch = Path(tmp)
        out = scratch / "out"
        made = _run(src, out, fmt, options, settings, budget, report, scratch, notify)
        report.nested_depth = budget.max_depth
        if made and out.stat().st_size >= input_bytes and not report.requested_changes:
            made = False
            report.warnings.append("the container was already smaller than any result; "
                                   "kept it")
        if made:
            atomic_copy(out, dst)
        else:
            report.original_kept = True
            if src.resolve() != dst.resolve():
                atomic_copy(src, dst)
            for row in report.members:
                row.bytes_after, row.size_after = row.bytes_before, row.size_before
    report.members_total = len(report.members)
    _trim(report)
    report.totals()
    report.finish(dst.stat().st_size)
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    notify(1.0, "done")
    return report


def _run(src: Path, out: Path, fmt: str, options: Options, settings: ArchiveSettings,
         budget: ArchiveBudget, report: ContainerReport, scratch: Path,
         notify: Progress) -> bool:
    """Compress one container (top level or nested) into ``out``; False: keep the input."""
    budget.enter()
    try:
        ctx = Context(options, settings, budget, scratch,
                      lambda s, d: nested(s, d, options, settings, budget, scratch, report))
        rules = formats.family(fmt)
        try:
            if rules in ("ooxml", "odf", "epub", "zip"):
                from squeezer.engines.container import zipjob

                return zipjob.run(src, out, fmt, ctx, report, notify)
            if rules in ("tar", "single"):
                from squeezer.engines.container import tarball

                return tarball.run(src, out, fmt, ctx, report, notify)
            from squeezer.engines.container import sevenz

            return sevenz.run(src, out, ctx, report, notify)
        except VerificationFailed as exc:
            report.warnings.append(f"the output failed verification and was not used: {exc}")
            return False
    finally:
        budget.leave()


def nested(src: Path, dst: Path, options: Options, settings: ArchiveSettings,
           budget: ArchiveBudget, scratch: Path,
           parent: ContainerReport) -> tuple[list[MemberResult], str, bool]:
    """A container inside a container: ``(its member rows, its format, kept as it was)``."""
    fmt = sniff_file(src).format
    report = ContainerReport(input_bytes=src.stat().st_size, format_in=fmt, format_out=fmt)
    with tempfile.TemporaryDirectory(dir=scratch) as tmp:
        made = _run(src, dst, fmt, options, settings, budget, report, Path(tmp),
                    lambda f, s: None)
    parent.warnings.extend(f"{src.name}: {w}" for w in report.warnings)
    return report.members, fmt, not made


def _trim(report: ContainerReport) -> None:
    if len(report.members) > MAX_MEMBER_ROWS:
        report.warnings.append(f"{len(report.members)} members: the report lists the "
                               f"{MAX_MEMBER_ROWS} largest")
        report.members = sorted(report.members, key=lambda m: -m.bytes_before)[:MAX_MEMBER_ROWS]
