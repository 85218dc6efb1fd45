"""``squeezer demo``: compress the project's own sample PDF, so a fresh install shows what it does.

``make run`` calls it.  The sample is drawn by :mod:`squeezer.samples` (nothing
is downloaded and nothing beside the checkout is needed), compressed by the
same ``squeezer compress`` a user runs, and the last line says where the
result is.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from squeezer.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    _stderr_line,
    command,
    human_bytes,
    saved_percent,
)


def _demo_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out-dir", default="out", metavar="DIR",
                   help="where the sample and its compressed copy go (default ./out)")
    p.add_argument("--level", default=None,
                   help="compression level (default: the options model's default, medium)")


@command("demo", arguments=_demo_arguments,
         description="Make a sample PDF (a photo stored losslessly at 300 dpi, a chart and "
         "text) in --out-dir, compress it with `squeezer compress`, and print the result's "
         "path. Needs nothing beside the installation.")
def run_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.cli.base import main
    from squeezer.samples import sample_pdf

    out = Path(args.out_dir)
    try:
        src = sample_pdf(out / "sample.pdf")
    except OSError as exc:
        _stderr_line(f"error: --out-dir {out}: {exc.strerror or exc}")
        return EXIT_FAILED
    dst = out / "sample.compressed.pdf"
    print(f"Made a sample PDF: {src} ({human_bytes(src.stat().st_size)}, 2 pages)", flush=True)
    argv = ["compress", str(src), "-o", str(dst)]
    if args.level:
        argv += ["--level", args.level]
    code = main(argv)
    if code != EXIT_OK or not dst.exists():
        return code or EXIT_FAILED
    before, after = src.stat().st_size, dst.stat().st_size
    print(f"\nResult: {dst.resolve()}  ({human_bytes(before)} -> {human_bytes(after)}, "
          f"{saved_percent(before, after)} smaller)")
    print("Next: squeezer compress YOUR.pdf, or `make serve` for the web page.")
    return EXIT_OK
