"""``squeezer compress`` as users run it: a real process, real PDFs, exit codes, files on disk.

Every test starts ``python -m squeezer`` as a subprocess with its system temp
directory pointed at the test's private scratch directory, so the autouse
``engine_tmp`` fixture also catches temporary files the CLI leaves behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pdfgen
import pikepdf
import pytest

from squeezer import __version__
from squeezer.engines.options import Options
from squeezer.engines.pdf.options import PdfOptions, resolve

TRACEBACK = "Traceback"


def squeezer(*args: object, cwd: Path, tmp: Path, env: dict[str, str] | None = None,
             timeout: float = 120) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "TMPDIR": str(tmp), **(env or {})}
    environ.pop("COLUMNS", None)
    return subprocess.run(
        [sys.executable, "-m", "squeezer", *map(str, args)],
        cwd=cwd, env=environ, capture_output=True, text=True, timeout=timeout, check=False,
    )


@pytest.fixture
def cli(tmp_path: Path, engine_tmp: Path):
    """Run the CLI in a fresh working directory ``tmp_path / "work"``."""
    work = tmp_path / "work"
    work.mkdir()

    def run(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None):
        return squeezer(*args, cwd=cwd or work, tmp=engine_tmp, env=env)

    run.dir = work  # type: ignore[attr-defined]
    return run


def put(src: Path, directory: Path, name: str) -> Path:
    """A writable copy of a fixture under a chosen name."""
    directory.mkdir(parents=True, exist_ok=True)
    dst = directory / name
    shutil.copyfile(src, dst)
    return dst


def stderr_lines(proc: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in proc.stderr.splitlines() if line.strip()]


def pages_of(path: Path, password: str = "") -> int:
    with pikepdf.open(path, password=password) as pdf:
        return len(pdf.pages)


def not_a_pdf(directory: Path, name: str = "notes.pdf") -> Path:
    path = directory / name
    path.write_text("these are my notes, not a PDF\n" * 20)
    return path


def test_version(cli):
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"squeezer {__version__}"


def test_default_output_name_next_to_input(cli, fx):
    src = put(fx.uncompressed(), cli.dir, "report.pdf")
    before = pdfgen.sha256(src)
    proc = cli("compress", "report.pdf")
    assert proc.returncode == 0, proc.stderr
    out = cli.dir / "report.compressed.pdf"
    assert out.is_file()
    assert pdfgen.sha256(src) == before, "the input was modified"
    assert pages_of(out) == pages_of(src)
    assert out.stat().st_size < src.stat().st_size
    assert sorted(p.name for p in cli.dir.iterdir()) == ["report.compressed.pdf", "report.pdf"]
    # the summary table names the file and totals the batch; nothing on stderr
    assert "report.pdf" in proc.stdout
    assert "total:" in proc.stdout
    assert proc.stderr == ""
    # plain text when stdout is not a terminal: no escape sequences
    assert "\x1b[" not in proc.stdout


def test_output_option(cli, fx):
    src = put(fx.text(), cli.dir, "in.pdf")
    (cli.dir / "sub").mkdir()
    proc = cli("compress", src, "-o", "sub/small.pdf", "--preset", "lossless")
    assert proc.returncode == 0, proc.stderr
    assert pages_of(cli.dir / "sub" / "small.pdf") == 3
    assert not (cli.dir / "in.compressed.pdf").exists()


def test_out_dir_is_created_and_json_matches_files(cli, fx):
    a = put(fx.uncompressed(), cli.dir, "a.pdf")
    b = put(fx.text(), cli.dir, "b.pdf")
    proc = cli("compress", "a.pdf", "b.pdf", "--out-dir", "small/deeper", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    entries = json.loads(proc.stdout)  # nothing but the JSON array on stdout
    assert [e["input"] for e in entries] == ["a.pdf", "b.pdf"]
    for entry, src in zip(entries, (a, b), strict=True):
        assert entry["ok"] is True
        out = cli.dir / entry["output"]
        assert out == cli.dir / "small" / "deeper" / src.name
        report = entry["report"]
        assert report["input_bytes"] == src.stat().st_size
        assert report["output_bytes"] == out.stat().st_size
        assert report["ratio"] == round(report["output_bytes"] / report["input_bytes"], 6)
        assert report["output_bytes"] <= report["input_bytes"]
        assert report["pages"] == pages_of(out)
        assert "password" not in report["settings"]


def test_options_reach_the_engine(cli, fx):
    src = put(fx.metadata(), cli.dir, "meta.pdf")
    proc = cli("compress", src, "--json", "--preset", "high", "--dpi", "100", "--quality", "50",
               "--gray", "--remove-metadata")
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(proc.stdout)[0]["report"]["settings"]
    assert settings["dpi"] == 100
    assert settings["image_quality"] == 50
    assert settings["color_model"] == "gray"
    assert settings["remove_metadata"] is True
    with pikepdf.open(cli.dir / "meta.compressed.pdf") as pdf:
        assert "/Metadata" not in pdf.Root
    proc = cli("compress", src, "--json", "--target-size", "1.5MiB", "-o", "target.pdf")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)[0]["report"]
    assert report["target_size"] == 1_572_864 and report["target_reached"] is True


def text_scan_pdf(path: Path, color: bool = False) -> Path:
    """One letter page that is a 150 dpi JPEG "scan" of text lines on paper: gray, or with blue
    ink and a tinted band when ``color`` (a case for MRC)."""
    import numpy as np
    from pikepdf import Dictionary

    ink = pdfgen.bitonal_array(2550, 3300)[::2, ::2]
    noise = np.random.default_rng(0).normal(0, 4, ink.shape)
    img = np.clip(np.where(ink, 40, 232) + noise, 0, 255).astype(np.uint8)
    if color:
        rgb = np.stack([img, img, img], axis=-1)
        rgb[..., 2] = np.where(ink, 160, rgb[..., 2])
        rgb[:200] = (200, 230, 250)
        img = rgb
    pdf = pikepdf.new()
    image = pdfgen.image_stream(pdf, img, encoding="jpeg", quality=90)
    pdfgen.add_page(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do Q\n",
                    Dictionary(XObject=Dictionary(Im0=image)))
    pdf.save(path)
    return path


SCAN_KNOBS = ("mrc", "mrc_background_dpi", "mrc_preserve_smoothing", "bitonal_threshold",
              "char_repair", "jbig2", "scan_bitonal")


def scan_settings(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(proc.stdout)[0]["report"]["settings"]
    return {k: settings[k] for k in SCAN_KNOBS}


def test_scan_options_reach_the_engine(cli, fx):
    src = put(fx.text(), cli.dir, "in.pdf")
    # without the flags: each preset's own scan settings (scan_bitonal in medium, high and
    # extreme; MRC in high and extreme, its background at 100 and 75 dpi)
    for preset in ("low", "medium", "high", "extreme"):
        proc = cli("compress", src, "--json", "-o", f"{preset}.pdf", "--preset", preset)
        resolved = resolve(Options(level=preset)).model_dump(mode="json")
        assert scan_settings(proc) == {k: resolved[k] for k in SCAN_KNOBS}, preset
        assert scan_settings(proc)["mrc"] is (preset in ("high", "extreme"))
    assert scan_settings(cli("compress", src, "--json", "-o", "x.pdf", "--preset", "extreme")
                         )["mrc_background_dpi"] == 75
    # --no-mrc turns the preset's MRC off; every other knob as given
    assert scan_settings(cli("compress", src, "--json", "-o", "n.pdf", "--preset", "high",
                             "--no-mrc"))["mrc"] is False
    proc = cli("compress", src, "--json", "-o", "all.pdf", "--mrc", "--mrc-background-dpi", "150",
               "--mrc-preserve-smoothing", "--bitonal-threshold", "140", "--char-repair",
               "--jbig2")
    assert scan_settings(proc) == {
        "mrc": True, "mrc_background_dpi": 150, "mrc_preserve_smoothing": True,
        "bitonal_threshold": 140, "char_repair": True, "jbig2": True, "scan_bitonal": True}
    assert scan_settings(cli("compress", src, "--json", "-o", "g4.pdf", "--no-jbig2")
                         )["jbig2"] is False


def test_bad_scan_option_values_are_one_line_usage_errors(cli, fx):
    put(fx.text(), cli.dir, "in.pdf")
    for args, message in (
        (["--mrc-background-dpi", "10"], "--mrc-background-dpi 10: must be between 50 and 600"),
        (["--bitonal-threshold", "255"], "--bitonal-threshold 255: must be between 1 and 254"),
        (["--mrc-background-dpi", "many"],
         "argument --mrc-background-dpi: invalid int value: 'many'"),
    ):
        proc = cli("compress", "in.pdf", *args)
        assert proc.returncode == 2, proc.stderr
        expected = f"squeezer compress: error: {message} (see squeezer compress --help)"
        assert stderr_lines(proc) == [expected]
        assert proc.stdout == ""
    assert [p.name for p in cli.dir.iterdir()] == ["in.pdf"]


def test_scan_pages_in_the_json_and_the_table(cli):
    gray = text_scan_pdf(cli.dir / "gray.pdf")
    color = text_scan_pdf(cli.dir / "color.pdf", color=True)
    proc = cli("compress", gray, color, "--preset", "high", "--out-dir", "j", "--json")
    assert proc.returncode == 0, proc.stderr
    notes = []
    for entry in json.loads(proc.stdout):
        report = entry["report"]
        assert report["pages_classified"] == {"scan": 1, "vector": 0}
        [page] = report["scan_pages"]
        assert page["page"] == 1 and page["method"] in ("mrc", "bitonal", "plain")
        if page["method"] != "plain":
            notes.append(f"1 scan page (1 {page['method']})")
    table = cli("compress", gray, color, "--preset", "high", "--out-dir", "t")
    assert table.returncode == 0, table.stderr
    for note in notes:
        assert note in table.stdout


def test_scan_note():
    from squeezer.cli.compress import _scan_note

    assert _scan_note([]) == ""
    assert _scan_note([{"method": "plain"}, {"method": "plain"}]) == ""
    pages = [{"method": "mrc"}, {"method": "plain"}, {"method": "bitonal"}, {"method": "mrc"}]
    assert _scan_note(pages) == "4 scan pages (2 mrc, 1 bitonal, 1 plain)"


def test_the_summary_says_each_family_in_its_own_unit():
    """The summary's extent column: pages, pixels, a running time or members (it said
    ``0x0`` for archives and audio)."""
    from squeezer.cli.compress import _extent

    assert _extent({"pages": 1}) == "1 page"
    assert _extent({"kind": "pdf", "pages": 12}) == "12 pages"
    assert _extent({"kind": "image", "width": 800, "height": 600}) == "800x600"
    assert _extent({"kind": "video", "width": 1920, "height": 1080, "duration": 62.4}) == "1920x1080 1:02"
    assert _extent({"kind": "audio", "duration": 185.0}) == "3:05"
    assert _extent({"kind": "archive", "members_total": 44, "members": []}) == "44 members"
    assert _extent({"kind": "archive", "members_total": 0, "members": [{}]}) == "1 member"
    assert _extent({"kind": "image"}) == ""


def test_scan_options_go_to_the_server(cli, fx, service):
    src = put(fx.text(), cli.dir, "in.pdf")
    proc = cli("compress", src, "--json", "-o", "s.pdf", "--server", service.url,
               "--api-key", service.key, "--preset", "high", "--no-mrc",
               "--mrc-background-dpi", "200", "--char-repair", "--bitonal-threshold", "100",
               "--no-jbig2")
    assert scan_settings(proc) == {
        "mrc": False, "mrc_background_dpi": 200, "mrc_preserve_smoothing": False,
        "bitonal_threshold": 100, "char_repair": True, "jbig2": False, "scan_bitonal": True}
    with service.client() as client:
        job = client.get("/v1/jobs", params={"limit": 1}).json()["data"][0]
    # what differs from the defaults is sent, nested (and the level, always)
    expected = {"level": "high", "pdf": {"mrc": False, "mrc_background_dpi": 200,
                "char_repair": True, "bitonal_threshold": 100, "jbig2": False}}
    if not PdfOptions.model_fields["jbig2"].default:
        del expected["pdf"]["jbig2"]
    assert job["options"] == expected


def test_input_is_never_overwritten_without_in_place(cli, fx):
    src = put(fx.uncompressed(), cli.dir, "doc.pdf")
    before = pdfgen.sha256(src)
    same = (["-o", "doc.pdf"], ["-o", str(src)], ["--out-dir", "."], ["--out-dir", str(cli.dir)])
    for args in same:
        proc = cli("compress", "doc.pdf", *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(stderr_lines(proc)) == 1 and "refusing to overwrite" in proc.stderr
        assert TRACEBACK not in proc.stderr
        assert pdfgen.sha256(src) == before
    # an output that would land on another input of the same batch is refused as well
    put(fx.text(), cli.dir, "doc.compressed.pdf")
    proc = cli("compress", "doc.pdf", "doc.compressed.pdf")
    assert proc.returncode == 2
    assert "doc.compressed.pdf" in proc.stderr
    assert pdfgen.sha256(src) == before
    assert sorted(p.name for p in cli.dir.iterdir()) == ["doc.compressed.pdf", "doc.pdf"]


def test_in_place(cli, fx):
    src = put(fx.uncompressed(), cli.dir, "doc.pdf")
    original = put(fx.uncompressed(), cli.dir.parent, "original.pdf")
    os.chmod(src, 0o640)
    proc = cli("compress", "doc.pdf", "--in-place", "--json")
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(proc.stdout)
    assert entry["output"] == "doc.pdf"
    assert src.stat().st_size == entry["report"]["output_bytes"] < original.stat().st_size
    assert pages_of(src) == pages_of(original)
    assert src.stat().st_mode & 0o777 == 0o640, "in-place keeps the file's permissions"
    assert [p.name for p in cli.dir.iterdir()] == ["doc.pdf"], "no partial or extra files"


def test_failures_are_one_line_each_and_the_batch_goes_on(cli, fx):
    put(fx.uncompressed(), cli.dir, "good.pdf")
    put(fx.broken_xref(), cli.dir, "repaired.pdf")
    not_a_pdf(cli.dir)
    put(fx.encrypted(), cli.dir, "secret.pdf")
    proc = cli("compress", "good.pdf", "notes.pdf", "missing.pdf", "secret.pdf", "repaired.pdf",
               "--password", "wrong")
    assert proc.returncode == 1
    assert TRACEBACK not in proc.stderr
    lines = stderr_lines(proc)
    assert len(lines) == 3, proc.stderr
    assert lines[0].startswith("error: notes.pdf: unsupported_format: ")
    assert lines[1].startswith("error: missing.pdf: file_not_found: ")
    assert lines[2].startswith("error: secret.pdf: invalid_password: ")
    # the others were compressed, the failures left nothing behind
    assert pages_of(cli.dir / "good.compressed.pdf") == 2
    assert pages_of(cli.dir / "repaired.compressed.pdf") == 3
    assert sorted(p.name for p in cli.dir.iterdir()) == sorted(
        ["good.pdf", "good.compressed.pdf", "notes.pdf", "secret.pdf", "repaired.pdf",
         "repaired.compressed.pdf"])
    # the summary lists every file, failures with their code
    for name in ("good.pdf", "repaired.pdf", "notes.pdf", "missing.pdf", "secret.pdf"):
        assert name in proc.stdout
    assert "failed: unsupported_format" in proc.stdout
    assert "3 failed" in proc.stdout


def test_encrypted_input_needs_the_password(cli, fx):
    put(fx.encrypted(), cli.dir, "secret.pdf")
    proc = cli("compress", "secret.pdf", "--json")
    assert proc.returncode == 1
    [line] = stderr_lines(proc)
    assert line.startswith("error: secret.pdf: password_required: ") and "--password" in line
    [entry] = json.loads(proc.stdout)
    assert entry == {"input": "secret.pdf", "ok": False,
                     "error": {"code": "password_required", "message": entry["error"]["message"]}}
    proc = cli("compress", "secret.pdf", "--password", "user")
    assert proc.returncode == 0, proc.stderr
    assert pages_of(cli.dir / "secret.compressed.pdf", password="user") == 2


def test_limits_come_from_the_environment(cli, fx):
    put(fx.text(), cli.dir, "three.pdf")
    proc = cli("compress", "three.pdf", env={"SQUEEZER_MAX_PAGES": "2"})
    assert proc.returncode == 1
    [line] = stderr_lines(proc)
    assert line.startswith("error: three.pdf: too_many_pages: ")
    assert not (cli.dir / "three.compressed.pdf").exists()
    proc = cli("compress", "three.pdf", env={"SQUEEZER_MAX_PAGES": "lots"})
    assert proc.returncode == 2
    assert "SQUEEZER_MAX_PAGES" in proc.stderr and TRACEBACK not in proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--quality", "0"],
        ["--quality", "101"],
        ["--dpi", "10"],
        ["--dpi", "ten"],
        ["--mrc-background-dpi", "10"],
        ["--mrc-background-dpi", "601"],
        ["--bitonal-threshold", "0"],
        ["--bitonal-threshold", "x"],
        ["--target-size", "abc"],
        ["--target-size", "0"],
        ["--jobs", "0"],
        ["--preset", "tiny"],
        ["--gray", "--bitonal"],
        ["--in-place", "-o", "x.pdf"],
        ["--in-place", "--out-dir", "d"],
        ["-o", "x.pdf", "--out-dir", "d"],
        ["--no-such-flag"],
    ],
)
def test_usage_errors(cli, fx, args):
    put(fx.text(), cli.dir, "in.pdf")
    proc = cli("compress", "in.pdf", *args)
    assert proc.returncode == 2
    lines = stderr_lines(proc)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("squeezer compress: error: ")
    assert TRACEBACK not in proc.stderr and "validation error" not in proc.stderr
    assert proc.stdout == ""
    assert [p.name for p in cli.dir.iterdir()] == ["in.pdf"], "nothing may be written"


def test_o_with_two_inputs_is_a_usage_error(cli, fx):
    put(fx.text(), cli.dir, "a.pdf")
    put(fx.text(), cli.dir, "b.pdf")
    proc = cli("compress", "a.pdf", "b.pdf", "-o", "out.pdf")
    assert proc.returncode == 2
    assert "exactly one input" in proc.stderr
    assert sorted(p.name for p in cli.dir.iterdir()) == ["a.pdf", "b.pdf"]


def test_two_inputs_with_one_output_name_fail_before_any_work(cli, fx):
    put(fx.text(), cli.dir / "x", "a.pdf")
    put(fx.text(), cli.dir / "y", "a.pdf")
    proc = cli("compress", "x/a.pdf", "y/a.pdf", "--out-dir", "out")
    assert proc.returncode == 2
    assert "x/a.pdf and y/a.pdf would both be written to" in proc.stderr
    assert not (cli.dir / "out").exists()
    proc = cli("compress", "x/a.pdf", "x/../x/a.pdf")
    assert proc.returncode == 2
    assert not (cli.dir / "x" / "a.compressed.pdf").exists()


def test_jobs_2_gives_the_same_outputs(cli, fx):
    names = []
    for name, fixture in (("one.pdf", fx.uncompressed()), ("two.pdf", fx.text()),
                          ("three.pdf", fx.broken_xref())):
        put(fixture, cli.dir, name)
        names.append(name)
    not_a_pdf(cli.dir, "four.pdf")
    sequential = cli("compress", *names, "--out-dir", "seq", "--json")
    assert sequential.returncode == 0, sequential.stderr
    parallel = cli("compress", *names, "four.pdf", "--out-dir", "par", "--jobs", "2", "--json")
    assert parallel.returncode == 1
    assert TRACEBACK not in parallel.stderr
    assert stderr_lines(parallel) == [stderr_lines(parallel)[0]]
    assert stderr_lines(parallel)[0].startswith("error: four.pdf: unsupported_format: ")
    entries = json.loads(parallel.stdout)
    assert [e["input"] for e in entries] == [*names, "four.pdf"]
    assert [e["ok"] for e in entries] == [True, True, True, False]
    for name in names:
        assert pdfgen.sha256(cli.dir / "par" / name) == pdfgen.sha256(cli.dir / "seq" / name)
    assert sorted(p.name for p in (cli.dir / "par").iterdir()) == sorted(names)


def test_table_without_json_in_parallel(cli, fx):
    for name in ("p1.pdf", "p2.pdf"):
        put(fx.uncompressed(), cli.dir, name)
    proc = cli("compress", "p1.pdf", "p2.pdf", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "p1.pdf" in proc.stdout and "p2.pdf" in proc.stdout
    assert "total: 2 files compressed" in proc.stdout


def test_parallel_workers_start_under_a_temporary_directory_too_long_for_a_socket(
        cli, fx, tmp_path):
    """The worker pool's forkserver listens on a UNIX socket (at most 107 bytes of path)
    made under TMPDIR: Python 3.11 failed with "AF_UNIX path too long" under a deep one."""
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    for name in ("p1.pdf", "p2.pdf"):
        put(fx.uncompressed(), cli.dir, name)
    proc = squeezer("compress", "p1.pdf", "p2.pdf", "--jobs", "2", "--json", cwd=cli.dir,
                    tmp=deep)
    assert proc.returncode == 0, proc.stderr
    assert [entry["ok"] for entry in json.loads(proc.stdout)] == [True, True]
    assert list(deep.iterdir()) == []  # nothing left in the user's temporary directory


def _wait_for(predicate, timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.parametrize("jobs, how", [("1", "ctrl-c"), ("2", "ctrl-c"), ("2", "kill")])
def test_ctrl_c_stops_cleanly(tmp_path, engine_tmp, fx, jobs, how):
    """Ctrl-C (SIGINT to the process group, as a terminal sends it) ends the batch with 130;
    ``kill`` (SIGTERM to the CLI alone) cleans up the same way and ends with 143."""
    work = tmp_path / "work"
    names = []
    for i in range(40):
        put(fx.uncompressed(), work, f"doc{i:02}.pdf")
        names.append(f"doc{i:02}.pdf")
    environ = {**os.environ, "TMPDIR": str(engine_tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "squeezer", "compress", *names, "--out-dir", "out", "--jobs", jobs],
        cwd=work, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    out = work / "out"
    try:
        assert _wait_for(lambda: out.is_dir() and any(out.glob("doc*.pdf"))), "nothing was written"
        if how == "ctrl-c":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.terminate()
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if proc.returncode == 0:
        pytest.skip("the batch finished before the signal arrived")
    if how == "ctrl-c":
        assert proc.returncode == 130, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted"
    else:
        assert proc.returncode == 128 + signal.SIGTERM, stderr
        assert stderr.strip().splitlines()[-1] == "interrupted (SIGTERM)"
    assert TRACEBACK not in stderr
    written = sorted(p.name for p in out.iterdir())
    assert all(name.endswith(".pdf") and not name.startswith(".") for name in written), written
    assert len(written) < len(names)
    for name in written:
        assert pages_of(out / name) == 2, f"{name} is not a complete PDF"


def _children(pid: int, deep: bool = False) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    if deep:
        found += [grandchild for child in found for grandchild in _children(child)]
    return found


def _is_worker(pid: int) -> bool:
    """A --jobs worker: forked by the CLI's forkserver (or, without one, a spawned process)."""
    with contextlib.suppress(OSError):
        if "spawn_main" in Path(f"/proc/{pid}/cmdline").read_text():
            return True
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        return "forkserver" in Path(f"/proc/{parent}/cmdline").read_text()
    return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find workers")
def test_a_crashed_worker_costs_no_file(tmp_path, engine_tmp, fx):
    """A worker dying (as on a native crash) breaks the pool; every file is still compressed."""
    work = tmp_path / "work"
    names = [put(fx.uncompressed(), work, f"doc{i:02}.pdf").name for i in range(12)]
    environ = {**os.environ, "TMPDIR": str(engine_tmp)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "squeezer", "compress", *names, "--out-dir", "out", "--jobs", "2",
         "--json"],
        cwd=work, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    out = work / "out"
    try:
        assert _wait_for(lambda: out.is_dir() and any(out.glob("doc*.pdf"))), "nothing was written"
        workers = [pid for pid in _children(proc.pid, deep=True)
                   if _is_worker(pid)]
        assert workers
        os.kill(workers[0], signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    assert TRACEBACK not in stderr
    assert all(entry["ok"] for entry in json.loads(stdout))
    assert sorted(p.name for p in out.iterdir()) == names


@pytest.mark.corpus
def test_corpus_files(cli):
    names = ["pikepdf__congress-gray.pdf", "pdfjs__issue17069.pdf"]
    paths = [pdfgen.CORPUS / name for name in names]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"corpus not present ({pdfgen.CORPUS})")
    proc = cli("compress", *paths, "--out-dir", "out", "--json", "--jobs", "2")
    assert proc.returncode == 0, proc.stderr
    for entry, src in zip(json.loads(proc.stdout), paths, strict=True):
        out = cli.dir / "out" / src.name
        assert entry["ok"] and Path(entry["output"]) == Path("out") / src.name
        assert entry["report"]["input_bytes"] == src.stat().st_size
        assert entry["report"]["output_bytes"] == out.stat().st_size <= src.stat().st_size
        assert pages_of(out) == pages_of(src)
