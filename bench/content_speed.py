"""CPU of the content-number step (``content.round_numbers``) inside ``compress()``.

Usage: PYTHONPATH=<tree>/src .venv/bin/python bench/content_speed.py OUT.json [--level L] FILES...

Compresses each file in-process (threads=1) and records, per file, the process CPU spent in
``round_numbers`` (wrapped with ``time.process_time``, no profiler) and in the whole
``compress()``.  Run it once with each source tree (e.g. main exported with ``git archive``
and a branch), in the same minutes, and compare the totals: that is how
``bench/results/pdf-content-speed.md`` was measured.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any

from squeezer.engines.limits import DEFAULT_LIMITS
from squeezer.engines.options import Options
from squeezer.engines.pdf import content
from squeezer.engines.pdf.pipeline import compress


def main() -> None:
    args = sys.argv[1:]
    out = args.pop(0)
    level = "medium"
    if args and args[0] == "--level":
        level = args[1]
        args = args[2:]
    limits = DEFAULT_LIMITS.model_copy(update={"max_threads": 1})
    step = [0.0]
    original = content.round_numbers

    def timed(*a: Any, **k: Any) -> int:
        start = time.process_time()
        try:
            return original(*a, **k)
        finally:
            step[0] += time.process_time() - start

    content.round_numbers = timed  # type: ignore[assignment]  # (the pipeline looks it up)
    results: dict[str, dict[str, float | str | None]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in args:
            step[0] = 0.0
            start = time.process_time()
            error = None
            try:
                compress(path, os.path.join(tmp, "out.pdf"), Options(level=level), limits=limits)
            except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
                error = f"{type(exc).__name__}: {exc}"[:200]
            results[os.path.basename(path)] = {"step": round(step[0], 4),
                                               "cpu": round(time.process_time() - start, 3),
                                               "error": error}
    with open(out, "w") as handle:
        json.dump(results, handle, indent=1)
    print(f"round_numbers cpu {sum(float(r['step'] or 0) for r in results.values()):.3f}, "
          f"compress cpu {sum(float(r['cpu'] or 0) for r in results.values()):.1f}")


if __name__ == "__main__":
    main()
