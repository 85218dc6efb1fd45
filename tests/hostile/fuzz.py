"""``make fuzz``: longer fuzzing than the suite can afford, bounded by time.

Two parts, each given ``--seconds`` (default 300):

* **mutants**: seeded mutants (:mod:`mutate`) of the corpus PDFs and images and
  of generated hostile files, each compressed in a job child exactly as the
  service runs it (:func:`squeezer.jobs.isolation.compress_isolated`, with a
  memory cap and a deadline).  A failure must be a named code: an
  ``internal_error`` (or a crash of the worker side) is a finding, printed with
  its file and seed so that ``mutate.mutant(source, seed)`` reproduces it.
* **atheris** (coverage-guided, libFuzzer) on Squeezer's own parsers of
  untrusted text and bytes: the URL check, file-name sanitising, bounded JSON,
  the codecs' header readers and the multipart parser.  Any exception other
  than the ones each parser documents is a finding.

Exit status 1 when anything was found.  Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

CORPUS = HERE.parents[1] / ".." / "shared" / "corpus"


def sources(limit_bytes: int = 1 << 20) -> list[Path]:
    """Small corpus files (mutating large ones costs time, finds the same bugs)."""
    found = []
    for folder in ("pdf", "wide"):
        for path in sorted((CORPUS / folder).glob("*.pdf")):
            if path.stat().st_size <= limit_bytes:
                found.append(path)
    return found


def run_mutants(seconds: float, start_seed: int, out: Path) -> list[dict]:
    import generate

    from squeezer.engines.errors import EngineError, ProcessingCrashedError
    from squeezer.engines.limits import Limits
    from squeezer.errors import SqueezerError
    from squeezer.jobs.isolation import ChildLimits, compress_isolated
    from mutate import mutant

    limits = Limits(max_seconds=60)
    child = ChildLimits(seconds=60, memory_bytes=2 << 30)
    pool = [(p.name, p.read_bytes()) for p in sources()]
    pool += [(name, data) for name, data in generate.hostile_files()]
    findings: list[dict] = []
    deadline = time.monotonic() + seconds
    seed, tried = start_seed, 0
    with tempfile.TemporaryDirectory(prefix="squeezer-fuzz-") as tmp:
        while time.monotonic() < deadline:
            name, data = pool[seed % len(pool)]
            src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
            src.write_bytes(mutant(data, seed))
            try:
                compress_isolated(src, dst, {}, limits, child)
                outcome = "ok"
            except ProcessingCrashedError as exc:  # (an EngineError, but a finding: the
                outcome = exc.code                   # child died, e.g. a library's exit())
                findings.append({"source": name, "seed": seed, "code": exc.code,
                                 "message": exc.message, "detail": None})
                print(f"FINDING {name} seed={seed}: {exc.code}: {exc.message}", flush=True)
            except EngineError as exc:
                outcome = exc.code
            except SqueezerError as exc:
                outcome = exc.code
                findings.append({"source": name, "seed": seed, "code": exc.code,
                                 "message": exc.message, "detail": exc.detail})
                print(f"FINDING {name} seed={seed}: {exc.code}: {exc.message}\n{exc.detail}",
                      flush=True)
            tried += 1
            print(f"{name} seed={seed}: {outcome}", flush=True)
            dst.unlink(missing_ok=True)
            seed += 1
    print(f"mutants: {tried} tried, {len(findings)} findings", flush=True)
    out.write_text(json.dumps(findings, indent=1))
    return findings


def run_atheris(seconds: float) -> int:
    """Fuzz our own parsers in a child process (atheris takes over the process)."""
    import subprocess

    code = subprocess.call([sys.executable, str(HERE / "fuzz_parsers.py"),
                            f"-max_total_time={int(seconds)}", "-rss_limit_mb=2048",
                            "-max_len=4096"])
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 300)))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_SEED", 0)))
    parser.add_argument("--only", choices=["mutants", "atheris"])
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings.json"))
    args = parser.parse_args()
    failed = False
    if args.only in (None, "mutants"):
        failed |= bool(run_mutants(args.seconds, args.seed, args.findings))
    if args.only in (None, "atheris"):
        failed |= run_atheris(args.seconds) != 0
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
