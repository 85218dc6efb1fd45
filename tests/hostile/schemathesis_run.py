"""``make schemathesis``: schemathesis over the OpenAPI of a fresh ``squeezer serve``.

Starts a service of its own (embedded PostgreSQL, one worker), runs ``st run``
with every check but one, and exits with schemathesis' status (0: no
findings).  The one check left out is ``positive_data_acceptance``: it expects
every schema-valid request to be accepted, and Squeezer refuses schema-valid
requests on purpose (a URL the SSRF policy refuses, a cursor it did not make),
which no schema can express.  ``--max-examples`` (default 5) bounds the run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    args, extra = parser.parse_known_args()
    from servicefx import Service

    with tempfile.TemporaryDirectory(prefix="schemathesis-") as root:
        svc = Service(Path(root))
        try:
            st = Path(sys.executable).with_name("st")
            return subprocess.call([
                str(st), "run", f"{svc.url}/openapi.json", "--checks", "all",
                "--exclude-checks", "positive_data_acceptance",
                "-H", f"Authorization: Bearer {svc.key}",
                "-H", f"X-PassportPDF-API-Key: {svc.key}",
                "--max-examples", str(args.max_examples), "--seed", str(args.seed),
                "--request-timeout", "60", "--continue-on-failure", *extra],
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
        finally:
            svc.stop()


if __name__ == "__main__":
    raise SystemExit(main())
