"""The CLI against every hostile file: named codes, no traceback, no temp files, memory capped,
and disk full as ``disk_full`` with nothing partial left."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import generate
from invariants import leaks, temp_leftovers

#: the CLI's address-space cap in this test (SQUEEZER_CLI_MEMORY_BYTES)
CAP = 3 << 30


def _run(args: list[str], tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, int]:
    """Run the CLI; its peak resident size (the largest of the CLI and its children)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-m", "squeezer", *args], capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "TMPDIR": str(tmp), **env})
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return proc, max(peak, before) * 1024


def test_every_hostile_file_gets_a_named_outcome_from_the_cli(tmp_path):
    src, out, tmp = tmp_path / "in", tmp_path / "out", tmp_path / "tmp"
    for d in (src, out, tmp):
        d.mkdir()
    names = []
    for name, data in generate.hostile_files():
        (src / name).write_bytes(data)
        names.append(str(src / name))
    proc, peak = _run(["compress", *names, "--out-dir", str(out), "--json"], tmp,
                      SQUEEZER_CLI_MEMORY_BYTES=str(CAP))
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    entries = json.loads(proc.stdout)
    assert len(entries) == len(names)
    for entry in entries:
        name = Path(entry["input"]).name
        outcome = "ok" if entry["ok"] else entry["error"]["code"]
        assert outcome in generate.expected(name), (name, entry.get("error"))
    # the user's own paths may appear in CLI lines; nothing else of the machine may
    found = leaks(proc.stdout + proc.stderr, allowed=(str(src), str(out)))
    assert not found, (found, proc.stderr[-2000:])
    assert temp_leftovers(tmp) == [] and list(tmp.iterdir()) == []
    assert not [p.name for p in out.iterdir() if p.name.endswith(".part")]
    assert not list(tmp_path.parent.rglob("escaped-by-traversal*"))  # (zip-traversal.zip)
    assert peak < CAP, f"peak resident size {peak >> 20} MiB over the cap"


def test_a_lying_jpeg_header_is_refused_before_any_decoding(tmp_path):
    """The image's dictionary says 64 x 64, its SOF 65 000 x 65 000 (12.7 GB decoded)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    for name in ("lying-jpeg.pdf", "lying.jpg"):
        path = tmp_path / name
        path.write_bytes(generate.HOSTILE_FILES[name][0]())
        proc, peak = _run(["compress", str(path), "-o", str(tmp_path / ("out-" + name)),
                           "--json"], tmp, SQUEEZER_CLI_MEMORY_BYTES=str(1 << 30))
        entry = json.loads(proc.stdout)[0]
        assert proc.returncode == 1 and entry["error"]["code"] == "image_too_large", entry
        assert "4225000000" in entry["error"]["message"] or "65000x65000" in entry["error"]["message"]
        assert peak < 1 << 30


def test_the_cli_runs_under_its_memory_cap(tmp_path, fx):
    """``squeezer compress`` caps its own address space (and so its worker processes'):
    the kernel refuses any allocation past SQUEEZER_CLI_MEMORY_BYTES, which the engines
    report as memory_limit.  Read from the running process, as the kernel enforces it."""
    import time

    cap = 3 << 30
    proc = subprocess.Popen([sys.executable, "-m", "squeezer", "compress", str(fx.photo()),
                             "--jobs", "1", "-o", str(tmp_path / "o.pdf"), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "SQUEEZER_CLI_MEMORY_BYTES": str(cap)})
    seen = None
    while proc.poll() is None and seen is None:
        try:
            for line in Path(f"/proc/{proc.pid}/limits").read_text().splitlines():
                if line.startswith("Max address space") and line.split()[3] != "unlimited":
                    seen = int(line.split()[3])
        except OSError:
            break
        time.sleep(0.02)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    assert seen == cap


def test_disk_full_is_disk_full_with_nothing_partial_left(tmp_path):
    """Under a file-size limit (RLIMIT_FSIZE, as ``ulimit -f``) every write past it fails with
    EFBIG: qpdf used to abort the process (exit 134, no JSON, its temp dir left)."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    src = tmp_path / "big.pdf"
    src.write_bytes(generate.one_image_page(generate.stream(
        b"/Type /XObject /Subtype /Image /Width 1000 /Height 1000 /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /FlateDecode",
        __import__("zlib").compress(os.urandom(3_000_000), 1))))
    dst = tmp_path / "out" / "big.pdf"
    dst.parent.mkdir()

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run([sys.executable, "-m", "squeezer", "compress", str(src), "-o", str(dst),
                           "--json"], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "TMPDIR": str(tmp)})
    del before
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    entry = json.loads(proc.stdout)[0]
    assert entry["error"]["code"] == "disk_full", entry
    assert f"error: {src}: disk_full: " in proc.stderr
    assert list(tmp.iterdir()) == [] and list(dst.parent.iterdir()) == []
