"""Where a synchronous ``POST /v1/compress`` spends its time, step by step.

The API benchmark (``api_bench.py``) measures the overhead as one number; this
splits it.  It needs timestamps from inside the API process and the worker,
which the service does not write, so the trace points live in a patch that is
applied for the run and removed after it::

    git apply bench/api_trace.patch
    .venv/bin/python bench/api_trace.py            # -> a markdown table on stdout
    git checkout src && rm src/squeezer/_trace.py

One client sends tiny one-page PDFs (level lossless, the PDF back in the
answer) one after another to a fresh ``squeezer serve --workers 2``; every
process appends ``time pid step`` lines to one file, and each step's time is
the gap since the step before it (the first ten requests are warm-up).
Environment variables reach the server, so ``SQUEEZER_CHILD_JOBS=1`` traces the
fresh-child-per-job setting.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import api_bench

#: what each trace point means (the time is that since the previous point)
STEPS = {
    "api.request": "client sends → route's dependencies start (HTTP parsing, routing)",
    "api.authed": "key lookup and rate-limit count (one statement)",
    "api.start": "route body starts",
    "api.stored": "multipart parsed, upload written and fsynced, file row inserted",
    "api.created": "options validated, job row + queue entry inserted (one transaction)",
    "w.begin": "NOTIFY → worker's Procrastinate fetch → our task starts",
    "w.started": "job marked running, input row read (one statement)",
    "w.input": "input located (local store: read in place)",
    "w.compressed": "engine in its child (thread hand-off, pipe, compression, report)",
    "w.stored": "result renamed into the store, fsynced",
    "w.succeeded": "job + result row written (one statement, NOTIFY)",
    "api.waited": "API's listener gets the NOTIFY, waiter wakes",
    "api.gotfile": "result file row read",
    "api.response": "response object made",
    "client.done": "bytes sent and read by the client",
}


def run(requests: int, trace: Path) -> list[list[tuple[float, str]]]:
    root = Path(tempfile.mkdtemp(prefix="sqz-trace-"))
    os.environ["SQZ_TRACE"] = str(trace)
    trace.unlink(missing_ok=True)
    server = api_bench.Server(root, 2)
    try:
        src = next(p for label, p in api_bench.make_inputs(root).items() if "tiny" in label)
        data = src.read_bytes()
        headers = {**server.headers, "Accept": "application/pdf"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            for _ in range(requests):
                with trace.open("a") as out:
                    out.write(f"{time.time():.6f} client client.send\n")
                answer = http.post("/v1/compress", data={"preset": "lossless"},
                                   files={"file": (src.name, data, "application/pdf")})
                with trace.open("a") as out:
                    out.write(f"{time.time():.6f} client client.done\n")
                answer.raise_for_status()
    finally:
        server.stop()
    found, current = [], None
    for line in trace.read_text().splitlines():
        stamp, _, step = line.split()[:3]
        if step == "client.send":
            current = [(float(stamp), step)]
        elif current is not None:
            current.append((float(stamp), step))
            if step == "client.done":
                found.append(current)
                current = None
    return found


def table(found: list[list[tuple[float, str]]], warmup: int = 10) -> str:
    gaps: dict[str, list[float]] = {}
    totals = []
    for steps in found[warmup:]:
        previous = steps[0][0]
        for stamp, step in steps[1:]:
            gaps.setdefault(step, []).append((stamp - previous) * 1000)
            previous = stamp
        totals.append((steps[-1][0] - steps[0][0]) * 1000)
    lines = [(f"{len(totals)} requests, whole request p50 {statistics.median(totals):.1f} ms, "
             f"load average at the end {os.getloadavg()[0]:.2f}"), "",
             "| step | what | p50 ms | p90 ms |", "|---|---|---:|---:|"]
    for step, what in STEPS.items():
        if step in gaps:
            values = gaps[step]
            lines.append(f"| `{step}` | {what} | {statistics.median(values):.2f} | "
                         f"{statistics.quantiles(values, n=10)[8]:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=110)
    parser.add_argument("--trace", type=Path, default=Path(tempfile.gettempdir()) / "sqz-trace.log")
    args = parser.parse_args()
    if not (Path(__file__).resolve().parents[1] / "src" / "squeezer" / "_trace.py").exists():
        raise SystemExit("apply the trace points first: git apply bench/api_trace.patch")
    print(table(run(args.requests, args.trace)))


if __name__ == "__main__":
    main()
