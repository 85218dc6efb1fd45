"""Searching quality and resolution for the largest result under a target size."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from squeezer.engines.budget import Budget
from squeezer.engines.pdf.options import MIN_DPI, MIN_QUALITY, Settings
from squeezer.engines.report import Report

#: Candidate (dpi, quality) pairs from mild to the floor; sizes shrink along the ladder.
LADDER: list[tuple[int | None, int]] = [
    (None, 100),  # lossless
    (300, 85),
    (200, 80),
    (150, 75),
    (150, 60),
    (120, 50),
    (100, 42),
    (85, 36),
    (MIN_DPI, MIN_QUALITY),
]


def _settings_for(base: Settings, step: tuple[int | None, int]) -> Settings:
    dpi, quality = step
    if dpi is None:
        return base.model_copy(update={"lossy_images": False, "dpi": None, "image_quality": 100,
                                       "image_ssim": None})
    # each step is a fixed quality: sizes must shrink along the ladder for the bisection
    return base.model_copy(update={"lossy_images": True, "dpi": dpi, "image_quality": quality,
                                   "image_ssim": None})


def search_target_size(
    src: Path,
    settings: Settings,
    budget: Budget,
    report: Report,
    work: Path,
    notify: Callable[[float, str], None],
    build: Callable[..., Path],
) -> tuple[Path, Settings]:
    """Binary-search :data:`LADDER` for the mildest step whose output fits the target.

    Sizes are monotone along the ladder in practice, so a bisection needs about
    four builds.  When even the floor does not fit, the smallest result is
    returned and ``report.target_reached`` is False.
    """
    target = settings.target_size or 0
    lo, hi = 0, len(LADDER) - 1
    best_fit: tuple[int, Path] | None = None
    smallest: tuple[int, int, Path] | None = None
    tries = 0
    stats: dict[int, dict[str, object]] = {}
    while lo <= hi:
        mid = (lo + hi) // 2
        tries += 1
        notify(min(0.1 + 0.2 * tries, 0.85), f"target size: try {tries}")
        out = build(src, _settings_for(settings, LADDER[mid]), budget, report,
                    work / f"target-{mid}.pdf", lambda f, s: None)
        stats[mid] = _stats_of(report)
        size = out.stat().st_size
        if smallest is None or size < smallest[0]:
            smallest = (size, mid, out)
        if size <= target:
            best_fit = (mid, out)
            hi = mid - 1
        else:
            lo = mid + 1
    if best_fit is not None:
        report.target_reached = True
        _restore(report, stats[best_fit[0]])
        return best_fit[1], _record(report, settings, LADDER[best_fit[0]])
    report.target_reached = False
    report.warnings.append(
        f"target size {target} bytes not reachable without going below "
        f"{MIN_DPI} dpi / quality {MIN_QUALITY}; returned the smallest result"
    )
    assert smallest is not None
    _restore(report, stats[smallest[1]])
    return smallest[2], _record(report, settings, LADDER[smallest[1]])


#: Report fields each build rewrites; the chosen build's values must be the ones reported.
BUILD_FIELDS = ("images", "steps", "fonts_deduplicated", "requested_changes")


def _stats_of(report: Report) -> dict[str, object]:
    return {name: copy.deepcopy(getattr(report, name)) for name in BUILD_FIELDS}


def _restore(report: Report, stats: dict[str, object]) -> None:
    for name, value in stats.items():
        setattr(report, name, value)


def _record(report: Report, base: Settings, step: tuple[int | None, int]) -> Settings:
    """Note the step used in the report and return its settings."""
    used = _settings_for(base, step)
    report.settings.update(used.model_dump(
        mode="json", include={"lossy_images", "dpi", "image_quality", "image_ssim"}))
    return used
