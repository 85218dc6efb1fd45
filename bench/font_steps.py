"""CPU seconds of each font step of the PDF pipeline, per file, and a hash of what they write.

The font steps (Type 1 -> CFF, CFF subset merging, TrueType and CID subsetting, layout tables)
run here alone on each document, as the pipeline runs them (after stream deduplication, with
the font descriptors typed): a step's cost is measured without the minutes of image work
around it, and two versions of the code can be compared file by file.  ``sha`` is the hash of
the document saved after the steps (``static_id``): equal hashes, equal output.

Usage (from the repository, the code under test on PYTHONPATH)::

    PYTHONPATH=src .venv/bin/python bench/font_steps.py OUT.json [--reps N] [FILES...]
    .venv/bin/python bench/font_steps.py --compare BEFORE.json AFTER.json

Without FILES: every PDF of ../shared/corpus/wide and ../shared/corpus/pdf.  ``--reps`` runs
each file N times and reports the mean (the first run of a process also imports fontTools).
``--compare`` prints the files whose output changed and each step's CPU before and after,
per category of the corpus' MANIFEST.tsv.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
STEPS = ("type1", "cffmerge", "subset", "cid", "tables")


def _categories() -> dict[str, str]:
    out: dict[str, str] = {}
    for manifest in (CORPUS / "wide" / "MANIFEST.tsv", CORPUS / "pdf" / "MANIFEST.tsv"):
        if manifest.is_file():
            with manifest.open() as f:
                for row in csv.DictReader(f, delimiter="\t"):
                    out[row["file"]] = row["category"]
    return out


def measure(files: list[str], reps: int) -> dict[str, dict]:
    import pikepdf

    from squeezer.engines.budget import Budget
    from squeezer.engines.limits import DEFAULT_LIMITS
    from squeezer.engines.pdf import cffmerge, cidfonts, fontfiles, fonts, fonttables, structure
    from squeezer.engines.report import Report

    limits = DEFAULT_LIMITS.model_copy(update={"max_threads": 1})
    steps = dict(zip(STEPS, (fontfiles.convert_type1, cffmerge.merge_subsets, fonts.subset_fonts,
                             cidfonts.subset_cid_fonts, fonttables.drop_layout_tables)))
    results: dict[str, dict] = {}
    for path in files:
        cpu = dict.fromkeys(STEPS, 0.0)
        digest = ""
        try:
            for _ in range(reps):
                pdf = pikepdf.open(path)
                budget, report = Budget(limits), Report(input_bytes=1)
                structure.deduplicate_streams(pdf, report)
                fonts.type_descriptors(pdf)
                for name, step in steps.items():
                    started = time.process_time()
                    step(pdf, budget, report)
                    cpu[name] += time.process_time() - started
                out = io.BytesIO()
                pdf.save(out, static_id=True)
                digest = hashlib.sha256(out.getvalue()).hexdigest()
        except Exception as exc:  # noqa: BLE001 - a damaged file: recorded, not measured
            results[Path(path).name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
            continue
        row = {name: round(seconds / reps, 4) for name, seconds in cpu.items()}
        results[Path(path).name] = {"sha": digest, **row}
        print(" ".join(f"{row[s]:6.3f}" for s in STEPS), Path(path).name, flush=True)
    return results


def compare(before: dict[str, dict], after: dict[str, dict]) -> None:
    categories = _categories()
    changed = [k for k in before if k in after and before[k].get("sha") != after[k].get("sha")]
    print("outputs changed:", ", ".join(changed) or "none")
    table: dict[str, list] = defaultdict(lambda: [0, defaultdict(float), defaultdict(float)])
    for name, row in before.items():
        if "sha" not in row or "sha" not in after.get(name, {}):
            continue
        entry = table[categories.get(name, "?")]
        entry[0] += 1
        for step in STEPS:
            entry[1][step] += row[step]
            entry[2][step] += after[name][step]
    print("| category | files | " + " | ".join(f"{s} before | after" for s in STEPS) + " |")
    print("|---|---:|" + "---:|---:|" * len(STEPS))
    totals = [0, defaultdict(float), defaultdict(float)]
    for category, (count, b, a) in sorted(table.items()):
        print(f"| {category} | {count} | "
              + " | ".join(f"{b[s]:.3f} | {a[s]:.3f}" for s in STEPS) + " |")
        totals[0] += count
        for s in STEPS:
            totals[1][s] += b[s]
            totals[2][s] += a[s]
    print(f"| all | {totals[0]} | "
          + " | ".join(f"{totals[1][s]:.3f} | {totals[2][s]:.3f}" for s in STEPS) + " |")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--compare"]:
        compare(*(json.loads(Path(p).read_text()) for p in argv[1:3]))
        return
    out, args, reps = argv[0], argv[1:], 1
    if args[:1] == ["--reps"]:
        reps, args = int(args[1]), args[2:]
    files = args or sorted(str(p) for d in ("wide", "pdf") for p in (CORPUS / d).glob("*.pdf"))
    results = measure(files, reps)
    Path(out).write_text(json.dumps(results, indent=1))
    print("total", " ".join(
        f"{s} {sum(r.get(s, 0) for r in results.values()):.3f}" for s in STEPS))


if __name__ == "__main__":
    main(sys.argv[1:])
