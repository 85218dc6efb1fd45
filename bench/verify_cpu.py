"""CPU of the PDF engine's verification per corpus category, next to the whole compression.

Usage: PYTHONPATH=src python bench/verify_cpu.py OUT.json [FILES...]
(without FILES: every PDF of /work/shared/corpus/wide and /work/shared/corpus/pdf).

Each file is compressed in this process at ``--level medium`` with one thread (so the
reference is read on the caller's thread, and the check forks no helper), and the CPU
spent in :func:`verify.check` (the candidate: qpdf and PDFium open, every page loaded and
rendered, sampled pages read and compared) and in :meth:`verify.Reference.of` (the input's
sampled pages read and rendered) is summed per file and per MANIFEST.tsv category.
"""

from __future__ import annotations

import collections
import csv
import glob
import json
import os
import sys
import tempfile
import time
from typing import Any

from squeezer.engines.limits import DEFAULT_LIMITS
from squeezer.engines.options import Options
from squeezer.engines.pdf import pipeline, verify

CORPUS = "/work/shared/corpus"


def main() -> None:
    out, files = sys.argv[1], sys.argv[2:] or sorted(
        glob.glob(f"{CORPUS}/wide/*.pdf") + glob.glob(f"{CORPUS}/pdf/*.pdf"))
    spent: dict[str, float] = collections.defaultdict(float)
    check, reference_of = verify.check, verify.Reference.of.__func__  # type: ignore[attr-defined]

    def timed_check(*args: Any, **kwargs: Any) -> verify.Verdict:
        started = time.process_time()
        try:
            return check(*args, **kwargs)
        finally:
            spent["check"] += time.process_time() - started

    def timed_reference(cls: type, *args: Any, **kwargs: Any) -> verify.Reference | None:
        started = time.process_time()
        try:
            return reference_of(cls, *args, **kwargs)
        finally:
            spent["reference"] += time.process_time() - started

    verify.check = timed_check
    verify.Reference.of = classmethod(timed_reference)  # type: ignore[method-assign,assignment]
    category = {}
    for manifest in glob.glob(f"{CORPUS}/*/MANIFEST.tsv"):
        with open(manifest, newline="") as rows:
            for row in csv.DictReader(rows, delimiter="\t"):
                category[row["file"]] = row["category"]
    limits = DEFAULT_LIMITS.model_copy(update={"max_threads": 1})
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for path in files:
            spent.clear()
            started = time.process_time()
            try:
                pipeline.compress(path, os.path.join(tmp, "out.pdf"), Options(level="medium"),
                                  limits=limits)
            except Exception as exc:  # noqa: BLE001 - a refused file still spent its CPU
                print(f"{os.path.basename(path)}: {exc}", file=sys.stderr)
            name = os.path.basename(path)
            results[name] = {"total": time.process_time() - started, "check": spent["check"],
                             "reference": spent["reference"], "category": category.get(name, "?")}
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
    table: dict[str, list[float]] = collections.defaultdict(lambda: [0, 0.0, 0.0, 0.0])
    for r in results.values():
        t = table[r["category"]]
        t[0] += 1
        t[1] += r["total"]
        t[2] += r["check"]
        t[3] += r["reference"]
    table["ALL"] = [len(results)] + [sum(t[i] for t in list(table.values())) for i in (1, 2, 3)]
    print("| category | files | total (s) | check (s) | reference (s) | verify share |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, (n, total, checked, ref) in sorted(table.items(), key=lambda kv: kv[0] == "ALL"):
        print(f"| {name} | {n:.0f} | {total:.2f} | {checked:.2f} | {ref:.2f} | "
              f"{100 * (checked + ref) / total:.1f} % |")


if __name__ == "__main__":
    main()
