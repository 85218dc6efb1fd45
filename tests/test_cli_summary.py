"""``squeezer compress``'s summary on a plain stdout is written without rich (issue 18: rich's
import and table layout cost a cold run ~25 ms), as the very text rich writes there."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from squeezer.cli import compress as cli

REPORT = {"input_bytes": 102852, "output_bytes": 51800, "elapsed_seconds": 0.234, "pages": 1,
          "kind": "pdf"}


def _ok(**changes: object) -> dict:
    return {"ok": True, "report": {**REPORT, **changes}}


def _failed(code: str) -> dict:
    return {"ok": False, "error": {"code": code, "message": "..."}}


def _rich_text(jobs: list[cli.Job], results: dict, elapsed: float) -> str:
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, highlight=False, width=cli.PLAIN_WIDTH, color_system=None)
    cli.print_summary(console, jobs, results, elapsed)
    return buffer.getvalue().replace("→", "->")  # (a StringIO console says ascii)


def _plain_text(jobs: list[cli.Job], results: dict, elapsed: float, capsys) -> str:
    capsys.readouterr()
    cli.print_summary(None, jobs, results, elapsed)
    return capsys.readouterr().out.replace("→", "->")


def _batch(tmp_path: Path, names: list[str], outcomes: list[dict]) -> tuple[list, dict]:
    jobs = []
    for i, name in enumerate(names):
        src = tmp_path / f"{i}.pdf"
        src.write_bytes(b"%PDF-1.4\n" + b"x" * (1000 * i))
        jobs.append(cli.Job(i, name, src, tmp_path / f"{i}.out.pdf"))
    return jobs, dict(enumerate(outcomes))


@pytest.mark.parametrize("names", [
    ["a.pdf"],
    ["docs/report.pdf", "scans/very-long-name-of-a-scanned-contract-2024.pdf", "x.pdf", "y.png"],
    ["[bold]odd[/bold].pdf", "plain.pdf", "z.pdf", "w.png"],  # markup: rich writes it
    ["café.pdf", "plain.pdf", "z.pdf", "w.png"],  # not ASCII: rich writes it
    ["a:smile:b.pdf", "plain.pdf", "z.pdf", "w.png"],  # an emoji code: rich writes it
    ["d/" * 120 + "long.pdf", "plain.pdf", "z.pdf", "w.png"],  # wider than the page: folded
])
def test_the_plain_summary_is_the_text_rich_writes(tmp_path: Path, capsys, names) -> None:
    outcomes = [
        _ok(),
        _ok(pages=12, original_kept=True, warnings=["w1", "w2"], elapsed_seconds=12.34,
            scan_pages=[{"method": "mrc"}, {"method": "bitonal"}, {"method": "mrc"}]),
        _failed("password_required"),
        _ok(kind="image", width=800, height=600, input_bytes=5_000_000, output_bytes=1_234_567),
    ][:len(names)]
    jobs, results = _batch(tmp_path, names, outcomes)
    for elapsed in (0.31, 75.0):
        assert _plain_text(jobs, results, elapsed, capsys) == _rich_text(jobs, results, elapsed)


def test_a_batch_that_all_failed(tmp_path: Path, capsys) -> None:
    jobs, results = _batch(tmp_path, ["a.pdf", "b.pdf"],
                           [_failed("file_not_found"), _failed("damaged_pdf")])
    text = _plain_text(jobs, results, 1.0, capsys)
    assert text == _rich_text(jobs, results, 1.0)
    assert text.splitlines()[-1] == "total: 2 failed, none compressed"
    assert "failed: damaged_pdf" in text.splitlines()[3]


def test_plain_output_loads_no_rich(tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    import pdfgen

    src, dst = tmp_path / "in.pdf", tmp_path / "out.pdf"
    pdfgen.uncompressed_text_pdf(src, pages=1)
    code = (
        "import json, sys\n"
        "from squeezer.cli import main\n"
        f"code = main(['compress', {str(src)!r}, '-o', {str(dst)!r}])\n"
        "print(json.dumps({'code': code, 'rich': 'rich' in sys.modules}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    lines = proc.stdout.splitlines()
    assert json.loads(lines[-1]) == {"code": 0, "rich": False}
    assert lines[0].split() == ["file", "extent", "before", "after", "saved", "time", "note"]
    assert lines[2].startswith(str(src)) and lines[3].startswith("total: 1 file compressed")
