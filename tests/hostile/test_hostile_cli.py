"""The CLI against every hostile file: named codes, no traceback, no temp files, memory capped,
and disk full as ``disk_full`` with nothing partial left."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import generate
from invariants import leaks, temp_leftovers

#: the CLI's address-space cap in this test (SQUEEZER_CLI_MEMORY_BYTES)
CAP = 3 << 30


def _start(args: list[str], tmp: Path, **env: str) -> subprocess.Popen:
    """Start the CLI with ``tmp`` as its temporary directory, its output in files beside it."""
    with (tmp.parent / "cli.out").open("w") as out, (tmp.parent / "cli.err").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "squeezer", *args], stdout=out,
                                stderr=err, env={**os.environ, "TMPDIR": str(tmp), **env})


def _finish(proc: subprocess.Popen, tmp: Path) -> tuple[subprocess.CompletedProcess, int]:
    """Wait for the CLI (killed after 600 s); its peak resident size, the largest of the CLI
    and its children (wait4: this process's own figure, whatever other tests' processes
    used before it in this pytest worker)."""
    watchdog = threading.Timer(600, proc.kill)
    watchdog.start()
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    finally:
        watchdog.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    done = subprocess.CompletedProcess(proc.args, proc.returncode,
                                       (tmp.parent / "cli.out").read_text(),
                                       (tmp.parent / "cli.err").read_text())
    return done, usage.ru_maxrss * 1024


def _run(args: list[str], tmp: Path, **env: str) -> tuple[subprocess.CompletedProcess, int]:
    return _finish(_start(args, tmp, **env), tmp)


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


def _address_space_cap(pid: int) -> int | None:
    """The soft address-space limit of process ``pid`` as the kernel enforces it; None when
    unlimited or the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
            if line.startswith("Max address space") and line.split()[3] != "unlimited":
                return int(line.split()[3])
    except OSError:
        pass
    return None


def test_a_lying_jpeg_header_is_refused_before_any_decoding_under_the_cli_cap(tmp_path):
    """The image's dictionary says 64 x 64, its SOF 65 000 x 65 000 (12.7 GB decoded): the
    CLI, which had no cap, went to 5 GB in 5 s.  It is refused from the header, and
    ``squeezer compress`` runs under its own address-space cap (SQUEEZER_CLI_MEMORY_BYTES,
    which its worker processes inherit), read from the running process as the kernel
    enforces it."""
    tmp, out = tmp_path / "tmp", tmp_path / "out"
    tmp.mkdir()
    names = []
    for name in ("lying-jpeg.pdf", "lying.jpg"):
        (tmp_path / name).write_bytes(generate.HOSTILE_FILES[name][0]())
        names.append(str(tmp_path / name))
    cap = 1 << 30
    proc = _start(["compress", *names, "--jobs", "1", "--out-dir", str(out), "--json"], tmp,
                  SQUEEZER_CLI_MEMORY_BYTES=str(cap))
    seen = None
    while proc.poll() is None and seen is None:
        seen = _address_space_cap(proc.pid)
        time.sleep(0.005)
    done, peak = _finish(proc, tmp)
    stdout, stderr = done.stdout, done.stderr
    assert seen == cap, (seen, stderr[-2000:])
    assert done.returncode == 1, stderr[-2000:]
    for entry in json.loads(stdout):
        assert entry["error"]["code"] == "image_too_large", entry
        message = entry["error"]["message"]
        assert "4225000000" in message or "65000x65000" in message, message
    assert peak < cap and list(tmp.iterdir()) == []


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

    proc = subprocess.run([sys.executable, "-m", "squeezer", "compress", str(src), "-o", str(dst),
                           "--json"], capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "TMPDIR": str(tmp)})
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])
    entry = json.loads(proc.stdout)[0]
    assert entry["error"]["code"] == "disk_full", entry
    assert f"error: {src}: disk_full: " in proc.stderr
    assert list(tmp.iterdir()) == [] and list(dst.parent.iterdir()) == []
