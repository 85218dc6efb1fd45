"""``squeezer analyze`` for containers: where the bytes are, by member type, and what each level gives.

The breakdown is the member table of a ``lossless`` run (every member read and
typed by its bytes, under the same limits as a compression); the estimate runs
the engine at every level on a scratch copy, so it is exact for this file and
takes as long as five compressions (``--no-estimate`` runs only the first).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from pydantic import BaseModel, Field

from squeezer.engines.container.report import TypeTotal
from squeezer.engines.level import Level
from squeezer.engines.limits import DEFAULT_LIMITS, Limits


class MemberInfo(BaseModel):
    name: str
    type: str
    stored_bytes: int
    size: int


class LevelEstimate(BaseModel):
    level: str
    bytes: int | None = None
    ratio: float | None = None
    kept: bool = False
    error: str | None = None


class ContainerAnalysis(BaseModel):
    kind: str = "archive"
    file_bytes: int
    format: str
    container: str = ""
    members: int = 0
    expanded_bytes: int = 0
    by_type: list[TypeTotal] = Field(default_factory=list)
    largest: list[MemberInfo] = Field(default_factory=list)
    signed: bool = False
    estimates: list[LevelEstimate] | None = None
    estimate_seconds: float = 0.0
    warnings: list[str] = Field(default_factory=list)


def analyze(path: Path, *, limits: Limits | None = None, estimate: bool = True,
            top: int = 15) -> ContainerAnalysis:
    from squeezer.engines.container.pipeline import compress
    from squeezer.engines.options import Options
    from squeezer.engines.sniff import sniff_file

    limits = limits or DEFAULT_LIMITS
    fmt = sniff_file(path).format
    result = ContainerAnalysis(file_bytes=path.stat().st_size, format=fmt)
    with tempfile.TemporaryDirectory(prefix="squeezer-analyze-") as tmp:
        # a lossless run with every member as it is would be an estimate too; the
        # breakdown comes from the lossless run's own member rows
        started = time.monotonic()
        levels = list(Level) if estimate else [Level.lossless]
        for level in levels:
            out = Path(tmp) / f"{level.value}.out"
            try:
                report = compress(path, out, Options(level=level), limits=limits)
            except Exception as exc:
                if level is Level.lossless:
                    raise
                result.estimates = (result.estimates or []) + [
                    LevelEstimate(level=level.value, error=getattr(exc, "code", type(exc).__name__))]
                continue
            if level is Level.lossless:
                result.container = report.container
                result.signed = report.signed
                result.members = report.members_total
                result.expanded_bytes = sum(m.size_before for m in report.members)
                totals: dict[str, TypeTotal] = {}
                for m in report.members:
                    t = totals.setdefault(m.type, TypeTotal(type=m.type, count=0,
                                                            bytes_before=0, bytes_after=0))
                    t.count += 1
                    t.bytes_before += m.bytes_before
                    t.bytes_after += m.size_before  # expanded, for the table
                result.by_type = sorted(totals.values(), key=lambda t: -t.bytes_before)
                result.largest = [MemberInfo(name=m.name, type=m.type,
                                             stored_bytes=m.bytes_before, size=m.size_before)
                                  for m in sorted(report.members,
                                                  key=lambda m: -m.bytes_before)[:top]]
                result.warnings = list(report.warnings)
            if estimate:
                result.estimates = (result.estimates or []) + [LevelEstimate(
                    level=level.value, bytes=report.output_bytes, ratio=report.ratio,
                    kept=report.original_kept)]
        result.estimate_seconds = round(time.monotonic() - started, 2)
    return result
