#!/usr/bin/env python3
"""Benchmark Squeezer's PDF presets against Ghostscript, ocrmypdf's optimizer and qpdf.

For every PDF of the corpora (``../shared/corpus/wide`` and ``../shared/corpus/pdf`` by
default, plus two generated large files, ``bench/large_pdfs.py``) each tool runs as one cold
process per file with a timeout (Squeezer as ``squeezer compress``, start-up included), while
the peak memory of its whole process tree is sampled; the output is measured for bytes, page
count and rendered quality (SSIM of up to 5 evenly sampled pages rendered at 100 dpi in
grayscale with pypdfium2, input render against output render).  Results go to
``bench/results/pdf.md`` (tables, per-category tables, targets) and ``bench/results/pdf.json``
(raw).  Peer results are cached in ``bench/.cache/`` keyed by (tool, file sha256, tool
version), so a re-run after an engine change only re-runs Squeezer.  Scanned files (MANIFEST
category ``scan_*``) also get a scans table, squeezer-high vs gs /ebook (and ocrmypdf on
bitonal scans), with a speed run on synthetic pages from ``bench/scan_pages.py``.  See
``bench/README.md``.

Run with the project's venv:  ``.venv/bin/python bench/pdf_bench.py [--quick] [--category scan]``.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import fnmatch
import hashlib
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
#: The corpora of a full run: the wide real-world set (issue 18) and the original one.
DEFAULT_CORPORA = [SHARED_CORPUS / "wide", SHARED_CORPUS / "pdf"]
CACHE = HERE / ".cache"
#: Where bench/large_pdfs.py writes the generated large files (a 300-page G4 scan, a
#: 175 MB photo PDF) that a full run adds to the corpora.
GENERATED = CACHE / "generated"
#: Tool runs on a generated large file get this many times --timeout.
LARGE_TIMEOUT_FACTOR = 4
PEER_VENV = HERE / ".peers" / "venv"

#: Bump when the way results are measured changes, so cached peer results are redone.
MEASURE_VERSION = 4
DPI = 100
SAMPLE_PAGES = 5
#: A page whose render would exceed this many pixels is rendered at a lower scale
#: (the same scale for input and output), so hostile page sizes cannot exhaust memory.
MAX_RENDER_PIXELS = 16_000_000
SSIM_OK = 0.95
#: Peak memory of the whole process tree of one file's run (issue 18).
MEMORY_TARGET_MB = 400
#: A cold `squeezer compress` of a ~100 KB text PDF, seconds of wall time (issue 18).
STARTUP_TARGET_S = 0.4
LOSSLESS_SSIM = 0.9999  # pixel-identical renders give exactly 1.0; allow float noise

#: Categories of scanned documents in MANIFEST.tsv start with this (scans table, issue 5).
SCAN_PREFIX = "scan_"
#: The scan speed target: pages per second of squeezer-high on 300 dpi letter pages, 2 cores.
SCAN_PAGES_PER_S = 2.0
SCAN_JOBS = 2

PRESETS = ["lossless", "low", "medium", "high", "extreme"]
SQUEEZER_TOOLS = [f"squeezer-{p}" for p in PRESETS]
PEER_TOOLS = ["gs-ebook", "gs-screen", "gs-printer", "ocrmypdf", "qpdf"]
ALL_TOOLS = SQUEEZER_TOOLS + PEER_TOOLS
GROUPS = {
    "squeezer": SQUEEZER_TOOLS,
    "peers": PEER_TOOLS,
    "gs": ["gs-ebook", "gs-screen", "gs-printer"],
    "all": ALL_TOOLS,
}

#: Representative files for --quick: a photo, a bitonal scan, a text paper, a color scan,
#: an encrypted file.  Falls back to the smallest files when these are missing.
QUICK_FILES = [
    "pdfcpu__mountain.pdf",
    "pdfcpu__Wonderwall.pdf",
    "pdfjs__tracemonkey.pdf",
    "pymupdf__test_4034.pdf",
    "pdfjs__issue17069.pdf",
]


# --------------------------------------------------------------------------- workers
# Hidden subcommands run in child processes, so that a crash or a hang in pdfium or in
# the engine costs one measurement, never the whole run.


def _open_pdfium(path: str):
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)  # an empty user password is tried by default
    try:
        pdf.init_forms()  # draw form fields as a viewer would
    except Exception:  # noqa: BLE001, S110 - forms are optional for rendering
        pass
    return pdf


def _render(pdf, index: int, scale: float | None):
    import numpy as np

    page = pdf[index]
    try:
        if scale is None:
            w, h = page.get_size()
            scale = DPI / 72
            if w * h * scale * scale > MAX_RENDER_PIXELS:
                scale = (MAX_RENDER_PIXELS / max(w * h, 1.0)) ** 0.5
        bitmap = page.render(scale=scale, grayscale=True, may_draw_forms=True)
        arr = np.array(bitmap.to_numpy(), copy=True)
    finally:
        page.close()
    if arr.ndim == 3:
        arr = arr[:, :, 0]
    return arr.astype(np.uint8), scale


def sample_indices(n: int, k: int = SAMPLE_PAGES) -> list[int]:
    """Up to ``k`` page indices spread evenly over ``n`` pages, first and last included."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def structure(path: str, pdf, indices: list[int]) -> dict[str, Any]:
    """What a reader relies on besides pixels: text, form fields, XFA, links, bookmarks, tags.

    SSIM cannot see a dropped form field, link or text layer (or XFA content, which pdfium
    does not render), so outputs are also compared on these counts.
    """
    info: dict[str, Any] = {"text_chars": 0}
    for i in indices:
        if i >= len(pdf):
            continue
        page = pdf[i]
        try:
            textpage = page.get_textpage()
            info["text_chars"] += textpage.count_chars()
            textpage.close()
        except Exception:  # noqa: BLE001, S110 - a page without a text layer
            pass
        finally:
            page.close()
    try:
        import pikepdf

        with pikepdf.open(path, password="") as doc:
            root = doc.Root
            acro = root.get("/AcroForm")
            info["xfa"] = bool(acro is not None and "/XFA" in acro)
            info["tagged"] = "/StructTreeRoot" in root  # logical structure, for accessibility
            info["form_fields"] = _count_tree(
                acro.get("/Fields") if acro is not None else None, "/Kids"
            )
            links = annots = 0
            for page in doc.pages:
                for annot in page.obj.get("/Annots") or []:
                    try:
                        sub = str(annot.get("/Subtype"))
                    except Exception:  # noqa: BLE001, S112 - a damaged annotation
                        continue
                    if sub == "/Link":
                        links += 1
                    elif sub not in ("/Widget", "/Popup"):
                        annots += 1
            info["links"], info["annotations"] = links, annots
            outlines = root.get("/Outlines")
            info["bookmarks"] = _count_outlines(outlines.get("/First")) if outlines else 0
    except Exception as exc:  # noqa: BLE001 - a damaged file: no structure counts
        info["structure_error"] = f"{type(exc).__name__}: {exc}"[:200]
    return info


def _count_tree(nodes, kids_key: str, limit: int = 100_000) -> int:
    """Terminal nodes of a /Kids tree (form fields), robust to loops."""
    if nodes is None:
        return 0
    count, seen, stack = 0, set(), list(nodes)
    while stack and len(seen) < limit:
        node = stack.pop()
        key = node.objgen if node.objgen != (0, 0) else id(node)
        if key in seen:
            continue
        seen.add(key)
        kids = node.get(kids_key) if hasattr(node, "get") else None
        if kids is not None and len(kids) and any("/T" in k for k in kids if hasattr(k, "keys")):
            stack.extend(kids)
        else:
            count += 1
    return count


def _count_outlines(item, limit: int = 100_000) -> int:
    count, seen, stack = 0, set(), [item] if item is not None else []
    while stack and count < limit:
        node = stack.pop()
        if node is None or node.objgen in seen:
            continue
        seen.add(node.objgen)
        count += 1
        for key in ("/First", "/Next"):
            if key in node:
                stack.append(node[key])
    return count


def worker_render(src: str, npz: str) -> dict[str, Any]:
    import numpy as np

    pdf = _open_pdfium(src)
    n = len(pdf)
    indices = sample_indices(n)
    arrays, scales = {}, []
    for i in indices:
        arr, scale = _render(pdf, i, None)
        arrays[f"p{i}"] = arr
        scales.append(scale)
    tmp = npz + ".tmp.npz"
    np.savez_compressed(tmp, indices=np.array(indices), scales=np.array(scales), **arrays)
    os.replace(tmp, npz)
    return {"pages": n, "indices": indices, "structure": structure(src, pdf, indices)}


def _compare(a, b) -> tuple[float, str | None]:
    from squeezer.engines.ssim import ssim

    if a.shape == b.shape:
        return ssim(a, b), None
    (ha, wa), (hb, wb) = a.shape, b.shape
    if abs(ha - hb) <= 2 and abs(wa - wb) <= 2:  # rounding of a fractional page size
        return ssim(a, b), None
    if abs(ha / wa - hb / wb) <= 0.01 * (ha / wa):  # same page, other size: rescale
        import numpy as np
        from PIL import Image

        b2 = np.asarray(Image.fromarray(b).resize((wa, ha), Image.Resampling.BILINEAR))
        return ssim(a, b2), f"resized {wb}x{hb}->{wa}x{ha}"
    return 0.0, f"page geometry changed {wa}x{ha}->{wb}x{hb}"


def worker_measure(out: str, npz: str) -> dict[str, Any]:
    import numpy as np

    ref = np.load(npz)
    pdf = _open_pdfium(out)
    n = len(pdf)
    values, notes = [], []
    for i, scale in zip(ref["indices"].tolist(), ref["scales"].tolist()):
        if i >= n:
            continue
        arr, _ = _render(pdf, i, scale)
        value, note = _compare(ref[f"p{i}"], arr)
        values.append(round(value, 5))
        if note:
            notes.append(f"p{i + 1}: {note}")
    return {
        "pages": n,
        "ssim": values,
        "notes": notes,
        "structure": structure(out, pdf, ref["indices"].tolist()),
    }


def squeezer_command(tool: str, src: Path, dst: Path) -> list[str]:
    """A cold ``squeezer compress`` of one file: what a user runs, start-up included."""
    script = Path(sys.executable).parent / "squeezer"
    base = [str(script)] if script.exists() else [sys.executable, "-m", "squeezer"]
    return [*base, "compress", str(src), "-o", str(dst), "--level", tool.split("-", 1)[1],
            "--json"]


def squeezer_result(run: dict[str, Any]) -> dict[str, Any]:
    """The CLI's ``--json`` entry for the one file: {ok, report} or {ok: False, error}."""
    try:
        entries = json.loads(run["stdout"])
        entry = entries[0]
    except (ValueError, LookupError, TypeError):
        tail = _tail(run["stderr"]) or f"exit code {run['rc']}, no JSON"
        return {"ok": False, "error": f"squeezer died (rc {run['rc']}): {tail}"}
    if not entry.get("ok"):
        err = entry.get("error") or {}
        return {"ok": False, "error": f"{err.get('code')}: {err.get('message')}"}
    return {"ok": True, "report": entry.get("report") or {}}


#: What :class:`TreeMemory` adds to a run's result.
MEMORY_KEYS = ("peak_pss_mb", "peak_rss_sum_mb", "peak_processes")


WORKERS = {"_render": worker_render, "_measure": worker_measure}


def run_worker(argv: list[str]) -> int:
    name, args = argv[0], argv[1:]
    try:
        result = WORKERS[name](*args)
    except Exception as exc:  # noqa: BLE001 - reported to the parent as data
        print(json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))
        return 1
    result.setdefault("ok", True)
    print(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- processes

_running: set[subprocess.Popen] = set()
_running_lock = threading.Lock()


#: How often the memory of a measured process tree is sampled.
MEMORY_INTERVAL = 0.02


def _session_pids(sid: int) -> list[int]:
    """The processes of session ``sid``: a tool started with ``start_new_session`` and every
    process it forks or starts (unless one of them makes a session of its own)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of ``pid`` in KiB, from smaps_rollup; (0, 0) when it is gone."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith(b"Rss:"):
                    rss = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return pss, rss


class TreeMemory:
    """Peak memory of a process tree (a session), sampled every :data:`MEMORY_INTERVAL` s.

    *PSS* (proportional set size) splits each shared page between the processes that map
    it, so the sum over the tree is what the tree costs the machine: a forked helper's
    copy-on-write pages and the shared libraries count once.  The plain sum of *RSS* counts
    them once per process (an upper bound), recorded beside it.  Linux only; elsewhere
    both stay None.
    """

    def __init__(self, sid: int) -> None:
        self.sid = sid
        self.peak_pss = self.peak_rss = 0
        self.peak_procs = 0
        self.stop = threading.Event()
        self.ok = os.path.exists("/proc/self/smaps_rollup")
        self.thread = threading.Thread(target=self._run, daemon=True)
        if self.ok:
            self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.sample()
            self.stop.wait(MEMORY_INTERVAL)

    def sample(self) -> None:
        pids = _session_pids(self.sid)
        pss = rss = 0
        for pid in pids:
            p, r = _memory_kb(pid)
            pss, rss = pss + p, rss + r
        self.peak_pss = max(self.peak_pss, pss)
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, len(pids))

    def finish(self) -> dict[str, Any]:
        self.stop.set()
        if self.ok:
            self.thread.join()
            return {
                "peak_pss_mb": round(self.peak_pss / 1024, 1),
                "peak_rss_sum_mb": round(self.peak_rss / 1024, 1),
                "peak_processes": self.peak_procs,
            }
        return {"peak_pss_mb": None, "peak_rss_sum_mb": None, "peak_processes": None}


class _Popen(subprocess.Popen):
    """A Popen that reaps its child with ``wait4``: the CPU seconds of the whole process tree
    (the child and every descendant it waited for), which on a shared machine say more about
    a tool's cost than its wall time."""

    rusage: Any = None

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:  # (CPython's hook)
        try:
            pid, sts, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid == self.pid:
            self.rusage = usage
        return pid, sts


def run_cmd(
    cmd: list[str], timeout: float, memory: bool = False, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run ``cmd`` in its own process group; kill the whole group on timeout.

    ``memory``: sample the peak memory of the whole process tree (:class:`TreeMemory`).
    """
    started = time.perf_counter()
    proc = _Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env=env,
    )
    watch = TreeMemory(proc.pid) if memory else None
    with _running_lock:
        _running.add(proc)
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(proc)
        out, err = proc.communicate()
    finally:
        with _running_lock:
            _running.discard(proc)
    seconds = time.perf_counter() - started
    if watch is not None:
        _reap_session(proc.pid)
    result = {
        "rc": proc.returncode,
        "seconds": seconds,
        "timed_out": timed_out,
        "cpu_seconds": None if proc.rusage is None
        else round(proc.rusage.ru_utime + proc.rusage.ru_stime, 3),
        "stdout": out.decode("utf-8", "replace"),
        "stderr": err.decode("utf-8", "replace"),
    }
    if watch is not None:
        result.update(watch.finish())
    return result


def _reap_session(sid: int) -> None:
    """Kill what a finished tool left running in its session (a tool must not outlive its run)."""
    try:
        os.killpg(sid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_running() -> None:
    with _running_lock:
        for proc in list(_running):
            _kill(proc)


def call_worker(args: list[str], timeout: float) -> dict[str, Any]:
    res = run_cmd([sys.executable, str(Path(__file__).resolve()), *args], timeout)
    if res["timed_out"]:
        return {"ok": False, "error": f"timeout after {timeout:.0f} s", "wall": res["seconds"]}
    lines = [ln for ln in res["stdout"].splitlines() if ln.startswith("{")]
    if not lines:
        tail = _tail(res["stderr"]) or f"exit code {res['rc']}"
        return {
            "ok": False,
            "error": f"worker died (rc {res['rc']}): {tail}",
            "wall": res["seconds"],
        }
    data = json.loads(lines[-1])
    data["wall"] = res["seconds"]
    return data


def _tail(text: str, limit: int = 300) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[-limit:]


# --------------------------------------------------------------------------- tools


def _version(cmd: list[str]) -> str | None:
    try:
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text and out.returncode == 0 else None


def find_ocrmypdf() -> str | None:
    local = PEER_VENV / "bin" / "ocrmypdf"
    return str(local) if local.exists() else shutil.which("ocrmypdf")


def git_state() -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "src"],
            check=False,
            capture_output=True,
            text=True,
            timeout=30,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return f"{head}{' + uncommitted changes in src/' if dirty else ''}" if head else "unknown"


def engine_dir() -> Path:
    """Where the engine that runs lives (``PYTHONPATH`` may point at another checkout)."""
    probe = "import squeezer.engines, os; print(os.path.dirname(squeezer.engines.__file__))"
    where = _version([sys.executable, "-c", probe])
    return Path(where) if where else REPO / "src" / "squeezer" / "engines"


def source_fingerprint() -> str:
    """Hash of the engine's Python sources, to tell whether the engine changed during a run."""
    h = hashlib.sha256()
    root = engine_dir()
    for path in sorted(root.rglob("*.py")):
        try:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        except OSError:
            continue
    return h.hexdigest()[:12]


def compile_squeezer() -> None:
    """Byte-compile the squeezer package, as ``pip install`` does: a cold ``squeezer compress``
    then measures an installed Squeezer, not Python compiling ~80 modules from source (which
    every run repeats in an editable checkout under ``PYTHONDONTWRITEBYTECODE``)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(engine_dir().parent)],
                   check=False, capture_output=True)


def package_fingerprint() -> str:
    """Hash of the whole squeezer package's Python sources (the CLI included): a Squeezer
    result cached under it (``--resume``) is what a fresh run of those sources measures."""
    h = hashlib.sha256()
    root = engine_dir().parent
    for path in sorted(root.rglob("*.py")):
        try:
            h.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        except OSError:
            continue
    return h.hexdigest()[:12]


def detect_tools() -> tuple[dict[str, str], dict[str, str]]:
    """Return (versions of available tools, reasons of missing ones)."""
    versions: dict[str, str] = {}
    missing: dict[str, str] = {}
    probe = "import squeezer, pikepdf, pypdfium2, numpy; print(squeezer.__version__)"
    sq = _version([sys.executable, "-c", probe])
    if sq:
        for t in SQUEEZER_TOOLS:
            versions[t] = sq
    else:
        for t in SQUEEZER_TOOLS:
            missing[t] = f"squeezer not importable by {sys.executable}"
    gs = shutil.which("gs") and _version(["gs", "--version"])
    for t in ("gs-ebook", "gs-screen", "gs-printer"):
        if gs:
            versions[t] = f"gs {gs}"
        else:
            missing[t] = "Ghostscript (gs) not installed: run bench/setup_peers.sh"
    qpdf = shutil.which("qpdf") and _version(["qpdf", "--version"])
    if qpdf:
        versions["qpdf"] = qpdf
    else:
        missing["qpdf"] = "qpdf not installed: run bench/setup_peers.sh"
    ocr = find_ocrmypdf()
    ocr_v = ocr and _version([ocr, "--version"])
    if ocr_v and gs:
        pngquant = shutil.which("pngquant") and _version(["pngquant", "--version"])
        jbig2 = "jbig2enc" if shutil.which("jbig2") else "no jbig2enc"
        versions["ocrmypdf"] = (
            f"ocrmypdf {ocr_v} (gs {gs}, pngquant {pngquant or 'missing'}, {jbig2})"
        )
    elif ocr_v:
        missing["ocrmypdf"] = "ocrmypdf needs Ghostscript: run bench/setup_peers.sh"
    else:
        missing["ocrmypdf"] = "ocrmypdf not installed: run bench/setup_peers.sh"
    return versions, missing


def peer_command(tool: str, src: Path, dst: Path) -> list[str]:
    if tool.startswith("gs-"):
        return [
            "gs",
            "-dNOPAUSE",
            "-dBATCH",
            "-dSAFER",
            "-sDEVICE=pdfwrite",
            "-dCompatibilityLevel=1.5",
            "-q",
            f"-dPDFSETTINGS=/{tool[3:]}",
            f"-sOutputFile={dst}",
            str(src),
        ]
    if tool == "ocrmypdf":
        # --ocr-engine none: optimise only, never OCR a page (tesseract is still probed);
        # --output-type pdf: no PDF/A conversion.
        return [
            find_ocrmypdf() or "ocrmypdf",
            "--skip-text",
            "--ocr-engine",
            "none",
            "--optimize",
            "3",
            "--output-type",
            "pdf",
            "--quiet",
            str(src),
            str(dst),
        ]
    if tool == "qpdf":
        return [
            "qpdf",
            "--object-streams=generate",
            "--recompress-flate",
            "--compression-level=9",
            str(src),
            str(dst),
        ]
    raise ValueError(tool)


def peer_succeeded(tool: str, rc: int) -> bool:
    if tool == "qpdf":
        return rc in (0, 3)  # 3: succeeded with warnings
    return rc == 0


# --------------------------------------------------------------------------- one file


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(tool: str, digest: str, version: str, timeout: float) -> str:
    blob = json.dumps(
        [
            tool,
            digest,
            version,
            MEASURE_VERSION,
            DPI,
            SAMPLE_PAGES,
            timeout,
            (squeezer_command if tool in SQUEEZER_TOOLS else peer_command)(
                tool, Path("IN"), Path("OUT"))[1:-2],
        ]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def blank_pages(npz: Path) -> list[int]:
    """Sampled input pages that render (almost) all white: SSIM says little about them."""
    import numpy as np

    with np.load(npz) as ref:
        return [int(i) + 1 for i in ref["indices"].tolist() if (ref[f"p{i}"] >= 250).mean() > 0.999]


class Bench:
    def __init__(self, args: argparse.Namespace, tools: list[str], versions: dict[str, str]):
        self.args = args
        self.tools = tools
        self.versions = versions
        self.print_lock = threading.Lock()
        #: Squeezer's own results are cached by this (its whole package's sources), for --resume
        self.squeezer_sources = package_fingerprint() if args.resume else ""

    def timeout_for(self, path: Path) -> float:
        """Seconds a tool may take on ``path``: more for the generated large files."""
        if path.parent.resolve() == GENERATED.resolve():
            return self.args.timeout * LARGE_TIMEOUT_FACTOR
        return self.args.timeout

    def log(self, msg: str) -> None:
        with self.print_lock:
            print(msg, file=sys.stderr, flush=True)

    def reference(self, path: Path, digest: str) -> dict[str, Any]:
        """Render the input's sample pages once (cached on disk by content)."""
        base = CACHE / "renders" / f"{digest}-{DPI}dpi-{SAMPLE_PAGES}p-v{MEASURE_VERSION}"
        meta = base.with_suffix(".json")
        npz = base.with_suffix(".npz")
        if meta.exists() and npz.exists():
            ref = json.loads(meta.read_text())
            if "blank_pages" not in ref:
                ref["blank_pages"] = blank_pages(npz)
            return ref
        base.parent.mkdir(parents=True, exist_ok=True)
        data = call_worker(["_render", str(path), str(npz)], self.timeout_for(path))
        ref = {
            "ok": bool(data.get("ok")),
            "pages": data.get("pages"),
            "indices": data.get("indices"),
            "error": data.get("error"),
            "npz": str(npz),
            "structure": data.get("structure") or {},
        }
        if ref["ok"]:
            ref["blank_pages"] = blank_pages(npz)
            meta.write_text(json.dumps(ref))
        return ref

    def run_tool(self, tool: str, path: Path, digest: str, ref: dict[str, Any]) -> dict[str, Any]:
        in_bytes = path.stat().st_size
        out = CACHE / "outputs" / tool / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        out.unlink(missing_ok=True)
        res: dict[str, Any] = {
            "tool": tool,
            "ok": False,
            "error": None,
            "bytes": None,
            "ratio": None,
            "seconds": None,
            "process_seconds": None,
            "pages_in": ref.get("pages"),
            "pages_out": None,
            "ssim_mean": None,
            "ssim_min": None,
            "ssim_pages": [],
            "grown": False,
            "pages_lost": False,
            "structure_lost": [],
            "notes": [],
            "cached": False,
        }
        timeout = self.timeout_for(path)
        if tool.startswith("squeezer-"):
            run = run_cmd(squeezer_command(tool, path, out), timeout, memory=True)
            res["seconds"] = res["process_seconds"] = round(run["seconds"], 3)
            res["cpu_seconds"] = run.get("cpu_seconds")
            res.update({k: run.get(k) for k in MEMORY_KEYS})
            if run["timed_out"]:
                res["error"] = f"timeout after {timeout:.0f} s"
                return res
            data = squeezer_result(run)
            if not data.get("ok"):
                res["error"] = data.get("error") or "failed"
                return res
            report = data.get("report", {})
            res["compress_seconds"] = report.get("elapsed_seconds")
            res["squeezer"] = {
                k: v
                for k, v in report.items()
                if k in ("pages", "original_kept", "warnings", "steps", "images", "target_reached")
            }
            if report.get("original_kept"):
                res["notes"].append("original kept")
            res["notes"] += [f"warning: {w}" for w in report.get("warnings", [])][:3]
        else:
            run = run_cmd(peer_command(tool, path, out), timeout, memory=True)
            res["seconds"] = res["process_seconds"] = round(run["seconds"], 3)
            res["cpu_seconds"] = run.get("cpu_seconds")
            res.update({k: run.get(k) for k in MEMORY_KEYS})
            if run["timed_out"]:
                res["error"] = f"timeout after {timeout:.0f} s"
                return res
            if not peer_succeeded(tool, run["rc"]):
                res["error"] = f"exit {run['rc']}: {_tail(run['stderr'] + run['stdout'])}"
                return res
            if run["rc"] != 0:
                res["notes"].append(f"exit {run['rc']} (warnings)")
        if not out.exists() or out.stat().st_size == 0:
            res["error"] = "no output written"
            return res
        res["bytes"] = out.stat().st_size
        res["ratio"] = round(res["bytes"] / in_bytes, 4) if in_bytes else None
        res["grown"] = res["bytes"] > in_bytes
        if not ref.get("ok"):
            res["ok"] = True
            res["notes"].append("input not renderable: no SSIM")
            return res
        m = call_worker(["_measure", str(out), ref["npz"]], timeout)
        if not m.get("ok"):
            res["error"] = f"output unreadable: {m.get('error')}"
            return res
        res["ok"] = True
        res["pages_out"] = m["pages"]
        res["pages_lost"] = m["pages"] < (ref["pages"] or 0)
        if m["pages"] != ref["pages"]:
            res["notes"].append(f"pages {ref['pages']} -> {m['pages']}")
        if m["ssim"]:
            res["ssim_pages"] = m["ssim"]
            res["ssim_mean"] = round(statistics.fmean(m["ssim"]), 4)
            res["ssim_min"] = round(min(m["ssim"]), 4)
        res["notes"] += m.get("notes", [])
        res["structure"] = m.get("structure") or {}
        res["structure_lost"] = structure_lost(ref.get("structure") or {}, res["structure"])
        if not self.args.keep_outputs:
            out.unlink(missing_ok=True)
        return res

    def retime(self, tool: str, path: Path, res: dict[str, Any]) -> None:
        """Run a cached peer again for its time and memory only (its bytes and SSIM are the
        cache's: the same command on the same file), so that its seconds are measured beside
        Squeezer's in this run."""
        out = CACHE / "outputs" / tool / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        run = run_cmd(peer_command(tool, path, out), self.timeout_for(path), memory=True)
        out.unlink(missing_ok=True)
        if run["timed_out"] or not peer_succeeded(tool, run["rc"]):
            return  # (the cached timing stays)
        res["seconds"] = res["process_seconds"] = round(run["seconds"], 3)
        res["cpu_seconds"] = run.get("cpu_seconds")
        res.update({k: run.get(k) for k in MEMORY_KEYS})
        res["retimed"] = True

    def bench_file(self, path: Path, category: str) -> dict[str, Any]:
        digest = sha256(path)
        ref = self.reference(path, digest)
        entry: dict[str, Any] = {
            "file": path.name,
            "category": category,
            "sha256": digest,
            "bytes": path.stat().st_size,
            "pages": ref.get("pages"),
            "render_error": ref.get("error"),
            "blank_pages": ref.get("blank_pages") or [],
            "structure": ref.get("structure") or {},
            "results": {},
        }
        fresh = False  # a Squeezer result measured now: cached peers are retimed beside it
        for tool in self.tools:
            earlier = getattr(self.args, "earlier", None)
            rerun_now = tool in (self.args.rerun or "").split(",")
            if earlier is not None and tool in PEER_TOOLS and not rerun_now:
                found = earlier.results.get((digest, tool))
                if found is not None:
                    entry["results"][tool] = {**found, "cached": True, "earlier_run": True}
                    self.log(f"  {path.name:<52} {tool:<17} {_brief(found)} (earlier run)")
                    continue
            cached_path = None
            if tool in PEER_TOOLS or self.args.resume:
                version = self.versions[tool]
                if tool in SQUEEZER_TOOLS:  # --resume: the same sources give the same result
                    version = f"{version}+{self.squeezer_sources}"
                key = cache_key(tool, digest, version, self.args.timeout)
                cached_path = CACHE / "results" / tool / f"{key}.json"
                rerun = (self.args.no_cache and tool in PEER_TOOLS) \
                    or tool in (self.args.rerun or "").split(",")
                if not rerun and cached_path.exists():
                    res = json.loads(cached_path.read_text())
                    res["cached"] = True
                    if fresh and tool in (self.args.retime or "").split(",") and res.get("ok"):
                        self.retime(tool, path, res)
                        cached_path.write_text(json.dumps({**res, "cached": False}))
                    entry["results"][tool] = res
                    self.log(f"  {path.name:<52} {tool:<17} {_brief(res)} (cached)")
                    continue
            try:
                res = self.run_tool(tool, path, digest, ref)
            except Exception as exc:  # noqa: BLE001 - the harness itself must keep going
                res = {
                    "tool": tool,
                    "ok": False,
                    "error": f"harness: {exc!r}",
                    "seconds": None,
                    "notes": [],
                }
            entry["results"][tool] = res
            fresh = fresh or tool in SQUEEZER_TOOLS
            self.log(f"  {path.name:<52} {tool:<17} {_brief(res)}")
            if cached_path is not None:
                cached_path.parent.mkdir(parents=True, exist_ok=True)
                cached_path.write_text(json.dumps(res))
        return entry


@dataclass
class EarlierPeers:
    """Peer results of an earlier run (``--peers-from``), by (file sha256, tool)."""

    versions: dict[str, str]
    results: dict[tuple[str, str], dict[str, Any]]
    started: str | None


def load_earlier_peers(path: Path) -> EarlierPeers:
    """Read an earlier run's JSON; only peers measured at this run's DPI and sample pages."""
    data = json.loads(path.read_text())
    if data.get("dpi") != DPI or data.get("sample_pages") != SAMPLE_PAGES:
        raise SystemExit(f"error: {path} was measured at another DPI or sample of pages")
    machine = data.get("machine") or {}
    names = {"gs-ebook": "gs", "gs-screen": "gs", "gs-printer": "gs", "qpdf": "qpdf",
             "ocrmypdf": "ocrmypdf"}
    versions = {t: f"{machine[k]} (earlier run)" for t, k in names.items()
                if t in data.get("tools", []) and machine.get(k) not in (None, "missing")}
    results = {(f["sha256"], t): r for f in data.get("files", [])
               for t, r in f.get("results", {}).items() if t in PEER_TOOLS}
    return EarlierPeers(versions, results, data.get("started"))


def _brief(res: dict[str, Any]) -> str:
    if not res.get("ok"):
        return f"FAIL {res.get('error')}"[:120]
    ssim = "-" if res.get("ssim_min") is None else f"{res['ssim_min']:.3f}"
    return f"{res['bytes']:>9} B  ratio {res['ratio']:.3f}  minSSIM {ssim}  {res['seconds']:.2f} s"


# --------------------------------------------------------------------------- analysis


def structure_lost(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What the output lost that the input had (empty when nothing, or when unknown)."""
    lost = []
    if before.get("xfa") and after.get("xfa") is False:
        lost.append("XFA dropped")
    if before.get("tagged") and after.get("tagged") is False:
        lost.append("tags (structure tree) dropped")
    for key, label in (
        ("form_fields", "form fields"),
        ("links", "links"),
        ("annotations", "annotations"),
        ("bookmarks", "bookmarks"),
    ):
        a, b = before.get(key), after.get(key)
        if a and b is not None and b < a:
            lost.append(f"{label} {a}->{b}")
    a, b = before.get("text_chars") or 0, after.get("text_chars")
    if a >= 20 and b is not None and b < 0.9 * a:
        lost.append(f"text chars {a}->{b}")
    return lost


def qualifies(res: dict[str, Any] | None, pages_in: int | None, strict: bool = False) -> bool:
    """A peer output counts for the envelope: ok, every page kept, min SSIM >= 0.95.

    ``strict`` also asks that no form field, XFA, tag tree, link, annotation, bookmark or text
    was lost.
    """
    return bool(
        res
        and res.get("ok")
        and pages_in
        and res.get("pages_out") == pages_in
        and res.get("ssim_min") is not None
        and res["ssim_min"] >= SSIM_OK
        and not (strict and res.get("structure_lost"))
    )


def envelope(entry: dict[str, Any], strict: bool = False) -> tuple[int, str]:
    best, who = entry["bytes"], "input"
    for tool in PEER_TOOLS:
        res = entry["results"].get(tool)
        if qualifies(res, entry["pages"], strict) and res["bytes"] < best:
            best, who = res["bytes"], tool
    return best, who


def delivered(entry: dict[str, Any], tool: str) -> int:
    """Bytes a user ends up with: the output when ok and smaller, else the input."""
    res = entry["results"].get(tool)
    if res and res.get("ok") and res.get("bytes") is not None:
        return min(res["bytes"], entry["bytes"])
    return entry["bytes"]


def aggregate(entries: list[dict[str, Any]], tools: list[str]) -> dict[str, dict[str, Any]]:
    agg = {}
    for tool in tools:
        rs = [(e, e["results"][tool]) for e in entries if tool in e["results"]]
        ok = [(e, r) for e, r in rs if r.get("ok")]
        ssims = [r["ssim_mean"] for _, r in ok if r.get("ssim_mean") is not None]
        mins = [r["ssim_min"] for _, r in ok if r.get("ssim_min") is not None]
        sum_in = sum(e["bytes"] for e, _ in ok)
        sum_out = sum(r["bytes"] for _, r in ok)
        agg[tool] = {
            "files": len(rs),
            "ok": len(ok),
            "sum_in": sum_in,
            "sum_out": sum_out,
            "ratio_total": round(sum_out / sum_in, 4) if sum_in else None,
            "ratio_median": round(statistics.median(r["ratio"] for _, r in ok), 4) if ok else None,
            "ssim_mean": round(statistics.fmean(ssims), 4) if ssims else None,
            "ssim_min": round(min(mins), 4) if mins else None,
            "seconds": round(sum(r.get("seconds") or 0.0 for _, r in rs), 2),
            "process_seconds": round(sum(r.get("process_seconds") or 0.0 for _, r in rs), 2),
            "compress_seconds": round(sum(r.get("compress_seconds") or 0.0 for _, r in rs), 2),
            "peak_pss_mb": max((r.get("peak_pss_mb") or 0.0 for _, r in rs), default=None),
            "peak_rss_sum_mb": max((r.get("peak_rss_sum_mb") or 0.0 for _, r in rs), default=None),
            "failures": len(rs) - len(ok),
            "grown": sum(1 for _, r in ok if r.get("grown")),
            "pages_lost": sum(1 for _, r in ok if r.get("pages_lost")),
            "structure_lost": sum(1 for _, r in ok if r.get("structure_lost")),
            "below_095": sum(
                1 for _, r in ok if r.get("ssim_min") is not None and r["ssim_min"] < SSIM_OK
            ),
        }
    return agg


def targets(entries: list[dict[str, Any]], tools: list[str], missing: dict[str, str]) -> list[dict]:
    out = []
    has = set(tools)
    peers_run = [t for t in PEER_TOOLS if t in has]
    if "squeezer-medium" in has and peers_run:
        env = sum(envelope(e)[0] for e in entries)
        med = sum(delivered(e, "squeezer-medium") for e in entries)
        note = (
            ""
            if len(peers_run) == len(PEER_TOOLS)
            else f" (envelope of {', '.join(peers_run)} only)"
        )
        out.append(
            {
                "target": "size: sum(medium) <= 0.75 x sum(envelope)",
                "measured": f"{med:,} B vs 0.75 x {env:,} = {int(0.75 * env):,} B "
                f"(medium/envelope = {med / env:.3f}){note}",
                "pass": med <= 0.75 * env,
            }
        )
        strict = sum(envelope(e, strict=True)[0] for e in entries)
        out.append(
            {
                "target": "(info) size vs the strict envelope (peers that also kept forms, "
                "XFA, tags, links, annotations, bookmarks, text)",
                "measured": f"{med:,} B vs 0.75 x {strict:,} = {int(0.75 * strict):,} B "
                f"(medium/strict envelope = {med / strict:.3f})",
                "pass": med <= 0.75 * strict,
            }
        )
    if "squeezer-medium" in has:
        bad = [
            e["file"]
            for e in entries
            if not (
                e["results"]["squeezer-medium"].get("ok")
                and e["results"]["squeezer-medium"].get("ssim_min") is not None
                and e["results"]["squeezer-medium"]["ssim_min"] >= SSIM_OK
                and not e["results"]["squeezer-medium"].get("pages_lost")
            )
        ]
        lost = [
            f"{e['file']} ({', '.join(e['results']['squeezer-medium']['structure_lost'])})"
            for e in entries
            if e["results"]["squeezer-medium"].get("structure_lost")
        ]
        out.append(
            {
                "target": "quality: every medium file min SSIM >= 0.95, all pages kept",
                "measured": "all files"
                if not bad
                else f"{len(bad)} file(s) short: {', '.join(bad)}",
                "pass": not bad,
            }
        )
        out.append(
            {
                "target": "structure: medium keeps forms, XFA, tags, links, annotations, "
                "bookmarks, text",
                "measured": "all files" if not lost else f"lost in {'; '.join(lost)}",
                "pass": not lost,
            }
        )
    if "squeezer-lossless" in has and "qpdf" in has:
        ll = sum(delivered(e, "squeezer-lossless") for e in entries)
        qp = sum(delivered(e, "qpdf") for e in entries)
        out.append(
            {
                "target": "lossless bytes: sum(lossless) <= sum(qpdf)",
                "measured": f"{ll:,} B vs {qp:,} B (lossless/qpdf = {ll / qp:.3f})",
                "pass": ll <= qp,
            }
        )
    if "squeezer-lossless" in has:
        bad = [
            e["file"]
            for e in entries
            if not (
                e["results"]["squeezer-lossless"].get("ok")
                and (e["results"]["squeezer-lossless"].get("ssim_min") or 0) >= LOSSLESS_SSIM
            )
        ]
        out.append(
            {
                "target": "lossless quality: every file SSIM = 1.0 (>= 0.9999)",
                "measured": "all files"
                if not bad
                else f"{len(bad)} file(s) short: {', '.join(bad)}",
                "pass": not bad,
            }
        )
    if "squeezer-medium" in has and "gs-ebook" in has:
        med = sum(e["results"]["squeezer-medium"].get("seconds") or 0 for e in entries)
        inner = sum(e["results"]["squeezer-medium"].get("compress_seconds") or 0 for e in entries)
        gs = sum(e["results"]["gs-ebook"].get("seconds") or 0 for e in entries)
        out.append(
            {
                "target": "speed: total wall seconds medium <= 0.5 x gs /ebook (one cold "
                "process per file, start-up included for both)",
                "measured": f"{med:.1f} s vs 0.5 x {gs:.1f} = {0.5 * gs:.1f} s "
                f"(medium/gs = {med / gs:.2f}; of which inside the engine's compress() "
                f"{inner:.1f} s)"
                if gs
                else "gs took no time?",
                "pass": bool(gs) and med <= 0.5 * gs,
            }
        )
        both = [
            (e["results"]["squeezer-medium"].get("cpu_seconds"),
             e["results"]["gs-ebook"].get("cpu_seconds"))
            for e in entries
        ]
        both = [(m, g) for m, g in both if m is not None and g is not None]
        if both:
            med_cpu, gs_cpu = sum(m for m, _ in both), sum(g for _, g in both)
            out.append(
                {
                    "target": "(info) speed in CPU seconds of the whole process tree (user + "
                    "system; what the wall clock measures on a quiet machine), medium vs "
                    "0.5 x gs /ebook",
                    "measured": f"{med_cpu:.1f} s vs 0.5 x {gs_cpu:.1f} = {0.5 * gs_cpu:.1f} s "
                    f"(medium/gs = {med_cpu / gs_cpu:.2f}; {len(both)} files timed so)"
                    if gs_cpu else "gs took no time?",
                    "pass": bool(gs_cpu) and med_cpu <= 0.5 * gs_cpu,
                }
            )
    if "squeezer-medium" in has:
        peaks = [
            (e["results"]["squeezer-medium"].get("peak_pss_mb") or 0.0, e["file"])
            for e in entries
        ]
        worst, who = max(peaks, default=(0.0, "-"))
        over = [f for mb, f in peaks if mb > MEMORY_TARGET_MB]
        rss = max(
            (e["results"]["squeezer-medium"].get("peak_rss_sum_mb") or 0.0 for e in entries),
            default=0.0,
        )
        out.append(
            {
                "target": f"memory: peak of the whole process tree <= {MEMORY_TARGET_MB} MB on "
                "every file (medium; PSS summed over the tree)",
                "measured": f"largest {worst:.0f} MB on {who}"
                + (f"; over on {', '.join(over)}" if over else "")
                + f" (plain RSS summed over the tree: largest {rss:.0f} MB)",
                "pass": bool(peaks) and not over,
            }
        )
        failed = [
            e["file"]
            for e in entries
            if not e["results"]["squeezer-medium"].get("ok")
            and any(qualifies(e["results"].get(t), e["pages"]) for t in PEER_TOOLS)
        ]
        out.append(
            {
                "target": "failures: medium fails no file that a peer turns into a valid PDF "
                "with every page and SSIM >= 0.95",
                "measured": "none" if not failed else ", ".join(failed),
                "pass": not failed,
            }
        )
    return out


# --------------------------------------------------------------------------- categories


def category_rows(entries: list[dict[str, Any]], tools: list[str]) -> list[dict[str, Any]]:
    """Per category (and Σ): medium against the envelope, quality, time against gs /ebook,
    peak memory, and every tool's Σ delivered / Σ input, so a class of documents that
    regresses shows."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(str(e.get("category") or "?"), []).append(e)
    ordered = sorted(groups.items()) + [("**all**", entries)]
    rows = []
    for cat, es in ordered:
        row: dict[str, Any] = {
            "category": cat,
            "files": len(es),
            "bytes": sum(e["bytes"] for e in es),
            "tools": {},
        }
        for tool in tools:
            rs = [e["results"].get(tool) or {} for e in es]
            row["tools"][tool] = {
                "ratio": round(sum(delivered(e, tool) for e in es) / row["bytes"], 4)
                if row["bytes"]
                else None,
                "seconds": round(sum(r.get("seconds") or 0.0 for r in rs), 2),
                "failures": sum(1 for r in rs if not r.get("ok")),
                "below_095": sum(
                    1 for r in rs if r.get("ok") and (r.get("ssim_min") or 0.0) < SSIM_OK
                ),
                "ssim_min": min((r["ssim_min"] for r in rs if r.get("ssim_min") is not None),
                                default=None),
                "peak_pss_mb": max((r.get("peak_pss_mb") or 0.0 for r in rs), default=None),
            }
        if "squeezer-medium" in tools:
            env = sum(envelope(e)[0] for e in es)
            strict = sum(envelope(e, strict=True)[0] for e in es)
            med = sum(delivered(e, "squeezer-medium") for e in es)
            row.update(
                envelope=env,
                strict_envelope=strict,
                medium=med,
                medium_over_envelope=round(med / env, 4) if env else None,
                medium_over_strict=round(med / strict, 4) if strict else None,
            )
        rows.append(row)
    return rows


def write_categories(L: list[str], rows: list[dict[str, Any]], tools: list[str]) -> None:
    if "squeezer-medium" in tools:
        L.append("## Per category: medium against the envelope, gs /ebook's time, memory\n")
        L.append(
            "Categories from the corpora's MANIFEST.tsv (`generated_*`: bench/large_pdfs.py). "
            "Bytes as delivered (a failure or a grown output counts at the input's size). "
            "medium s and gs s: wall seconds of one cold process per file. peak MB: the "
            "largest peak of the whole process tree over the category's files (PSS).\n"
        )
        has_gs = "gs-ebook" in tools
        L.append(
            "| category | files | input KiB | envelope KiB | medium KiB | medium/envelope | "
            "medium/strict | medium min SSIM | <0.95 | failures | medium s | gs /ebook s | "
            "medium/gs | medium peak MB | gs /ebook peak MB |"
        )
        L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            m = r["tools"]["squeezer-medium"]
            g = r["tools"].get("gs-ebook") or {}
            ratio = m["seconds"] / g["seconds"] if has_gs and g.get("seconds") else None
            L.append(
                f"| {r['category']} | {r['files']} | {_kb(r['bytes'])} | {_kb(r['envelope'])} | "
                f"{_kb(r['medium'])} | {_f(r['medium_over_envelope'])} | "
                f"{_f(r['medium_over_strict'])} | {_f(m['ssim_min'], '{:.4f}')} | "
                f"{m['below_095']} | {m['failures']} | {m['seconds']:.1f} | "
                f"{_f(g.get('seconds'), '{:.1f}')} | {_f(ratio, '{:.2f}')} | "
                f"{_f(m['peak_pss_mb'], '{:.0f}')} | {_f(g.get('peak_pss_mb'), '{:.0f}')} |"
            )
        L.append("")
    L.append("## Per category: Σ delivered / Σ input per tool\n")
    L.append("| category | files | " + " | ".join(tools) + " |")
    L.append("|---|---:|" + "---:|" * len(tools))
    for r in rows:
        L.append(
            f"| {r['category']} | {r['files']} | "
            + " | ".join(_f(r["tools"][t]["ratio"]) for t in tools)
            + " |"
        )
    L.append("")


# --------------------------------------------------------------------------- start-up


def pick_startup_file(files: list[Path], cats: dict[str, str]) -> Path | None:
    """The text PDF (category ``text_fonts``) nearest 100 KB, for the start-up target."""
    text = [f for f in files if cats.get(f.name) == "text_fonts"]
    if not text:
        return None
    return min(text, key=lambda f: abs(f.stat().st_size - 100_000))


def measure_startup(path: Path, runs: int, timeout: float) -> dict[str, Any]:
    """Cold `squeezer compress` of ``path`` ``runs`` times (median wall), beside
    `python -c pass`, `squeezer --help` and gs /ebook on the same file."""
    import tempfile

    out: dict[str, Any] = {"file": path.name, "bytes": path.stat().st_size, "runs": runs}
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        dst = Path(tmp) / "out.pdf"
        cmds = {
            "python": [sys.executable, "-c", "pass"],
            "squeezer-medium": squeezer_command("squeezer-medium", path, dst),
            "squeezer --help": squeezer_command("squeezer-medium", path, dst)[:1] + ["--help"],
        }
        if shutil.which("gs"):
            cmds["gs-ebook"] = peer_command("gs-ebook", path, dst)
        for name, cmd in cmds.items():
            walls, cpus = [], []
            for _ in range(runs):
                dst.unlink(missing_ok=True)
                # CPU seconds (user + system) of the process tree: on a shared machine the
                # wall clock mostly measures the others' load
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                run = run_cmd(cmd, timeout)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                if run["rc"] != 0 or run["timed_out"]:
                    out[name] = {"error": _tail(run["stderr"]) or f"exit {run['rc']}"}
                    break
                walls.append(run["seconds"])
                cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            else:
                out[name] = {
                    "median": round(statistics.median(walls), 3),
                    "min": round(min(walls), 3),
                    "runs": [round(w, 3) for w in walls],
                    "cpu_median": round(statistics.median(cpus), 3),
                }
    return out


def startup_target(startup: dict[str, Any]) -> dict[str, Any]:
    sq = startup.get("squeezer-medium") or {}
    target = (
        f"start-up: a cold `squeezer compress` of a ~100 KB text PDF <= {STARTUP_TARGET_S} s wall "
        f"({startup['file']}, {startup['bytes'] / 1000:.0f} KB, median of {startup['runs']})"
    )
    if "median" not in sq:
        return {"target": target, "measured": f"failed: {sq.get('error')}", "pass": False}
    others = ", ".join(
        f"{k} {v['median']:.3f} s" + (f" ({v['cpu_median']:.3f} s CPU)" if "cpu_median" in v else "")
        for k, v in startup.items()
        if isinstance(v, dict) and "median" in v and k != "squeezer-medium"
    )
    cpu = f", CPU {sq['cpu_median']:.3f} s" if "cpu_median" in sq else ""
    return {
        "target": target,
        "measured": f"{sq['median']:.3f} s (min {sq['min']:.3f}{cpu}); same machine: {others}",
        "pass": sq["median"] <= STARTUP_TARGET_S,
    }


# --------------------------------------------------------------------------- scans


def is_scan(entry: dict[str, Any]) -> bool:
    return str(entry.get("category") or "").startswith(SCAN_PREFIX)


def scan_rows(entries: list[dict[str, Any]], tools: list[str]) -> list[dict[str, Any]]:
    """One row per scanned file: squeezer-high against gs /ebook (and ocrmypdf's bytes).

    SSIM of both tools is taken on the same sampled pages: ``worker_measure`` skips only the
    sampled pages past an output's last page, so each tool's list is a prefix of the same
    sampled page indices and the first k values of both lists are the same k pages.
    """
    rows = []
    for e in entries:
        if not is_scan(e):
            continue
        res = {t: e["results"].get(t) or {} for t in ("squeezer-high", "gs-ebook", "ocrmypdf")}
        hi, gs = res["squeezer-high"], res["gs-ebook"]
        sh = list(hi.get("ssim_pages") or []) if hi.get("ok") else []
        sg = list(gs.get("ssim_pages") or []) if gs.get("ok") else []
        notes = []
        if sh and sg and len(sh) != len(sg):
            k = min(len(sh), len(sg))
            sh, sg = sh[:k], sg[:k]
            notes.append(f"SSIM over the first {k} sampled pages (an output lost pages)")
        for tool, r in res.items():
            if tool in tools and not r.get("ok"):
                notes.append(f"{tool} failed: {r.get('error')}")
        if (hi.get("squeezer") or {}).get("original_kept"):
            notes.append("high kept the original")
        nbytes = {t: (r.get("bytes") if r.get("ok") else None) for t, r in res.items()}
        pages = e.get("pages")
        secs = (hi.get("compress_seconds") or hi.get("seconds")) if hi.get("ok") else None
        hb, gb = nbytes["squeezer-high"], nbytes["gs-ebook"]
        rows.append(
            {
                "file": e["file"],
                "category": e["category"],
                "pages": pages,
                "bytes": e["bytes"],
                "high_bytes": hb,
                "gs_ebook_bytes": gb,
                "ocrmypdf_bytes": nbytes["ocrmypdf"],
                "high_over_gs_ebook": round(hb / gb, 4) if hb and gb else None,
                "ssim_pages": max(len(sh), len(sg)),
                "high_ssim_min": round(min(sh), 4) if sh else None,
                "high_ssim_mean": round(statistics.fmean(sh), 4) if sh else None,
                "gs_ebook_ssim_min": round(min(sg), 4) if sg else None,
                "gs_ebook_ssim_mean": round(statistics.fmean(sg), 4) if sg else None,
                "high_seconds": secs,
                "high_pages_per_second": round(pages / secs, 3) if pages and secs else None,
                "notes": notes,
            }
        )
    return rows


def scan_totals(
    entries: list[dict[str, Any]], rows: list[dict[str, Any]], tools: list[str]
) -> dict[str, Any]:
    """Sums over the scanned files; bytes as delivered (failures, growth: the input's size)."""
    scans = [e for e in entries if is_scan(e)]
    has = set(tools)

    def total(tool: str) -> int | None:
        return sum(delivered(e, tool) for e in scans) if tool in has else None

    def pick(key: str) -> list[float]:
        return [r[key] for r in rows if r[key] is not None]

    hi, gs = total("squeezer-high"), total("gs-ebook")
    timed = [r for r in rows if r["high_seconds"] and r["pages"]]
    secs = sum(r["high_seconds"] for r in timed)
    pages = sum(r["pages"] for r in timed)
    return {
        "files": len(rows),
        "pages": sum(r["pages"] or 0 for r in rows),
        "bytes": sum(r["bytes"] for r in rows),
        "high_bytes": hi,
        "gs_ebook_bytes": gs,
        "ocrmypdf_bytes": total("ocrmypdf"),
        "high_over_gs_ebook": round(hi / gs, 4) if hi is not None and gs else None,
        "high_ssim_min": min(pick("high_ssim_min"), default=None),
        "high_ssim_mean": round(statistics.fmean(pick("high_ssim_mean")), 4)
        if pick("high_ssim_mean")
        else None,
        "gs_ebook_ssim_min": min(pick("gs_ebook_ssim_min"), default=None),
        "gs_ebook_ssim_mean": round(statistics.fmean(pick("gs_ebook_ssim_mean")), 4)
        if pick("gs_ebook_ssim_mean")
        else None,
        "high_seconds": round(secs, 3) if timed else None,
        "high_pages_per_second": round(pages / secs, 3) if secs else None,
    }


def ocrmypdf_optimize_note(versions: dict[str, str]) -> str:
    """How the bench runs ocrmypdf, for the bitonal target's text (-O3 or not, JBIG2 or not)."""
    cmd = peer_command("ocrmypdf", Path("IN"), Path("OUT"))
    level = cmd[cmd.index("--optimize") + 1] if "--optimize" in cmd[:-1] else None
    if level == "3":
        note = "ocrmypdf runs `--optimize 3` (optimizer only: `--ocr-engine none`)"
    else:
        note = (
            f"**note: the bench runs ocrmypdf with `--optimize {level}`, not -O3**"
            if level
            else "**note: the bench runs ocrmypdf without `--optimize` (its default, -O1)**"
        )
    if "no jbig2enc" in versions.get("ocrmypdf", ""):
        note += ", without jbig2enc (so no JBIG2)"
    return note


def run_synthetic(pages: int, timeout: float) -> dict[str, Any]:
    """bench/scan_pages.py in a child process: ``pages`` synthetic pages, squeezer-high, Pool 2."""
    cmd = [
        sys.executable,
        str(HERE / "scan_pages.py"),
        "--pages",
        str(pages),
        "--jobs",
        str(SCAN_JOBS),
        "--preset",
        "high",
        "--json",
    ]
    run = run_cmd(cmd, timeout)
    if run["timed_out"]:
        return {"error": f"timeout after {timeout:.0f} s"}
    lines = [ln for ln in run["stdout"].splitlines() if ln.startswith("{")]
    if run["rc"] != 0 or not lines:
        return {"error": f"exit {run['rc']}: {_tail(run['stderr']) or 'no output'}"}
    return json.loads(lines[-1])


def scan_targets(
    entries: list[dict[str, Any]],
    totals: dict[str, Any],
    rows: list[dict[str, Any]],
    tools: list[str],
    versions: dict[str, str],
    synthetic: dict[str, Any] | None,
    jobs: int,
) -> list[dict[str, Any]]:
    out = []
    has = set(tools)
    scans = [e for e in entries if is_scan(e)]
    if "squeezer-high" in has and "gs-ebook" in has and scans:
        hi, gs = totals["high_bytes"], totals["gs_ebook_bytes"]
        both = [
            r
            for r in rows
            if r["high_ssim_mean"] is not None and r["gs_ebook_ssim_mean"] is not None
        ]
        short = [r for r in both if r["high_ssim_mean"] < r["gs_ebook_ssim_mean"]]
        high_failed = [r["file"] for r in rows if r["high_bytes"] is None]
        measured = (
            f"{hi:,} B vs 0.5 x {gs:,} = {int(0.5 * gs):,} B "
            f"(high/gs-ebook = {hi / gs:.3f}); mean SSIM high >= gs-ebook's on "
            f"{len(both) - len(short)}/{len(both)} files"
        )
        if short:
            measured += (
                " (short: "
                + ", ".join(
                    f"{r['file']} {r['high_ssim_mean']:.4f} < {r['gs_ebook_ssim_mean']:.4f}"
                    for r in short
                )
                + ")"
            )
        if len(both) < len(rows):
            measured += f"; {len(rows) - len(both)} file(s) without both SSIMs"
        if high_failed:
            measured += f"; high failed on {', '.join(high_failed)} (counted at input size)"
        out.append(
            {
                "target": "scans: sum(high) <= 0.5 x sum(gs /ebook), with mean SSIM >= gs "
                "/ebook's on the same pages, per file",
                "measured": measured,
                "pass": bool(gs) and hi <= 0.5 * gs and not short and not high_failed,
            }
        )
    bitonal = [e for e in scans if e["category"] == "scan_bitonal"]
    if "squeezer-high" in has and "ocrmypdf" in has and bitonal:
        hi = sum(delivered(e, "squeezer-high") for e in bitonal)
        oc = sum(delivered(e, "ocrmypdf") for e in bitonal)
        failed = [e["file"] for e in bitonal if not e["results"]["ocrmypdf"].get("ok")]
        measured = (
            f"{hi:,} B vs 0.8 x {oc:,} = {int(0.8 * oc):,} B (high/ocrmypdf = {hi / oc:.3f}) "
            f"over {len(bitonal)} scan_bitonal files; {ocrmypdf_optimize_note(versions)}"
        )
        if failed:
            measured += f"; ocrmypdf failed on {', '.join(failed)} (counted at input size)"
        out.append(
            {
                "target": "bitonal scans: sum(high) <= 0.8 x sum(ocrmypdf -O3)",
                "measured": measured,
                "pass": bool(oc) and hi <= 0.8 * oc,
            }
        )
    if synthetic is not None:
        target = (
            f"scan speed: >= {SCAN_PAGES_PER_S:g} pages/s on 300 dpi letter pages on 2 cores "
            f"(squeezer-high, synthetic pages, Pool of {SCAN_JOBS})"
        )
        if synthetic.get("error"):
            out.append(
                {"target": target, "measured": f"run failed: {synthetic['error']}", "pass": False}
            )
        else:
            pps = synthetic.get("pages_per_second") or 0.0
            kinds = ", ".join(
                f"{k} {v:.2f}" for k, v in (synthetic.get("mean_seconds_by_kind") or {}).items()
            )
            kept = sum(1 for f in synthetic["files"] if f.get("original_kept"))
            measured = (
                f"{pps:.2f} pages/s ({synthetic['pages_ok']} pages of {synthetic['page']} in "
                f"{synthetic['wall_seconds']:.2f} s wall; mean s per page: {kinds})"
            )
            if kept:
                measured += f"; original kept on {kept} page(s)"
            if synthetic.get("failures"):
                measured += f"; {synthetic['failures']} page(s) failed"
            if synthetic.get("cpus") != 2:
                measured += f"; this machine has {synthetic.get('cpus')} CPUs"
            out.append(
                {
                    "target": target,
                    "measured": measured,
                    "pass": pps >= SCAN_PAGES_PER_S and not synthetic.get("failures"),
                }
            )
    if "squeezer-high" in has and totals.get("high_pages_per_second"):
        out.append(
            {
                "target": "(info) scan speed over the scanned corpus files: squeezer-high "
                f">= {SCAN_PAGES_PER_S:g} pages/s (one file per process, --jobs {jobs}; "
                "not all 300 dpi letter)",
                "measured": f"{totals['high_pages_per_second']:.2f} pages/s "
                f"({totals['pages']} pages in {totals['high_seconds']:.2f} s of compress())",
                "pass": totals["high_pages_per_second"] >= SCAN_PAGES_PER_S,
            }
        )
    return out


def scans_section(
    args: argparse.Namespace,
    entries: list[dict[str, Any]],
    tools: list[str],
    versions: dict[str, str],
) -> dict[str, Any] | None:
    """The scans table's data (issue 5), or None when no scanned file was benchmarked."""
    if not any(is_scan(e) for e in entries) or "squeezer-high" not in tools:
        return None
    rows = scan_rows(entries, tools)
    totals = scan_totals(entries, rows, tools)
    synthetic = None
    if args.scan_pages > 0:
        print(
            f"synthetic scan pages: {args.scan_pages} x 300 dpi letter, squeezer-high, "
            f"Pool of {SCAN_JOBS}",
            file=sys.stderr,
        )
        synthetic = run_synthetic(args.scan_pages, args.timeout + 30 * args.scan_pages)
        print(
            f"  {synthetic.get('error') or str(synthetic.get('pages_per_second')) + ' pages/s'}",
            file=sys.stderr,
        )
    return {
        "files": rows,
        "totals": totals,
        "synthetic": synthetic,
        "targets": scan_targets(entries, totals, rows, tools, versions, synthetic, args.jobs),
    }


# --------------------------------------------------------------------------- output


def machine_info(versions: dict[str, str], missing: dict[str, str]) -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    probe = (
        "import pikepdf, pypdfium2, PIL;print("
        "f'pikepdf {pikepdf.__version__} (libqpdf {pikepdf.__libqpdf_version__}),"
        " pypdfium2 {pypdfium2.version.PYPDFIUM_INFO} / pdfium "
        "{pypdfium2.version.PDFIUM_INFO}, Pillow {PIL.__version__}')"
    )
    libs = _version([sys.executable, "-c", probe])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory": mem,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "squeezer": f"{versions.get('squeezer-medium', 'missing')} (git {git_state()})",
        "libraries": libs,
        "gs": versions.get("gs-ebook", "missing"),
        "qpdf": versions.get("qpdf", "missing"),
        "ocrmypdf": versions.get("ocrmypdf", "missing"),
        "skipped_tools": missing,
    }


def _f(x: Any, fmt: str = "{:.3f}") -> str:
    return "–" if x is None else fmt.format(x)


def _kb(n: int | None) -> str:
    return "–" if n is None else f"{n / 1024:,.0f}"


def _input_note(e: dict[str, Any]) -> str:
    notes = []
    if e.get("render_error"):
        notes.append(f"not renderable: {e['render_error']}")
    if e.get("blank_pages"):
        notes.append(f"sampled pages rendering blank: {e['blank_pages']}")
    st = e.get("structure") or {}
    have = [
        f"{k.replace('_', ' ')} {v}"
        for k, v in st.items()
        if k in ("form_fields", "links", "annotations", "bookmarks") and v
    ]
    if st.get("xfa"):
        have.append("XFA")
    if st.get("tagged"):
        have.append("tagged")
    if have:
        notes.append("has " + ", ".join(have))
    return "; ".join(notes).replace("|", "/")[:240]


def write_scans(L: list[str], data: dict[str, Any]) -> None:
    """The scans section (issue 5): per scanned file, targets, the synthetic pages."""
    sc = data["scans"]
    rows, tot = sc["files"], sc["totals"]
    L.append("## Scanned documents: squeezer-high vs gs /ebook\n")
    L.append(
        f"The {tot['files']} files whose category starts with `{SCAN_PREFIX}` "
        f"({tot['pages']} pages). SSIM: min and mean over the sampled pages (up to "
        f"{data['sample_pages']}, {data['dpi']} dpi), the same pages for both tools. "
        "high/gs = high bytes / gs-ebook bytes. pages/s = pages / high's `compress()` seconds "
        "(one file at a time in a fresh process). Σ row: bytes as delivered (a failure or a "
        "grown output counts at the input's size), min of the mins, mean of the per-file "
        "means, pages/s = Σ pages / Σ seconds.\n"
    )
    L.append(
        "| file | category | pages | input B | high B | gs-ebook B | ocrmypdf B | high/gs | "
        "high min SSIM | high mean SSIM | gs min SSIM | gs mean SSIM | SSIM pages | high s | "
        "high pages/s | notes |"
    )
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    f4 = "{:.4f}"
    for r in rows:
        note = "; ".join(r["notes"]).replace("|", "/").replace("\n", " ")[:200]
        L.append(
            f"| {r['file']} | {r['category']} | {r['pages'] or '–'} | {r['bytes']:,} | "
            f"{_f(r['high_bytes'], '{:,}')} | {_f(r['gs_ebook_bytes'], '{:,}')} | "
            f"{_f(r['ocrmypdf_bytes'], '{:,}')} | {_f(r['high_over_gs_ebook'])} | "
            f"{_f(r['high_ssim_min'], f4)} | {_f(r['high_ssim_mean'], f4)} | "
            f"{_f(r['gs_ebook_ssim_min'], f4)} | {_f(r['gs_ebook_ssim_mean'], f4)} | "
            f"{r['ssim_pages'] or '–'} | {_f(r['high_seconds'], '{:.2f}')} | "
            f"{_f(r['high_pages_per_second'], '{:.2f}')} | {note} |"
        )
    L.append(
        f"| **Σ** | | {tot['pages']} | {tot['bytes']:,} | {_f(tot['high_bytes'], '{:,}')} | "
        f"{_f(tot['gs_ebook_bytes'], '{:,}')} | {_f(tot['ocrmypdf_bytes'], '{:,}')} | "
        f"{_f(tot['high_over_gs_ebook'])} | {_f(tot['high_ssim_min'], f4)} | "
        f"{_f(tot['high_ssim_mean'], f4)} | {_f(tot['gs_ebook_ssim_min'], f4)} | "
        f"{_f(tot['gs_ebook_ssim_mean'], f4)} | | {_f(tot['high_seconds'], '{:.2f}')} | "
        f"{_f(tot['high_pages_per_second'], '{:.2f}')} | |"
    )
    L.append("")
    if sc["targets"]:
        L.append("### Scan targets\n")
        L.append("| target | measured | |")
        L.append("|---|---|---|")
        for t in sc["targets"]:
            L.append(f"| {t['target']} | {t['measured']} | **{'PASS' if t['pass'] else 'MISS'}** |")
        L.append("")
    syn = sc.get("synthetic")
    if syn is None:
        L.append("Synthetic scan pages: not run (`--scan-pages 0`).\n")
    elif syn.get("error"):
        L.append(f"Synthetic scan pages: **failed**: {syn['error']}\n".replace("|", "/"))
    else:
        L.append("### Synthetic scan pages\n")
        L.append(
            f"`bench/scan_pages.py`: {syn['pages']} pages of {syn['page']} (gray and colour: "
            "JPEG q90; bitonal: CCITT G4), compressed with squeezer-high in a "
            f"`multiprocessing.Pool` of {syn['jobs']} on {syn['cpus']} CPUs: "
            f"**{_f(syn['pages_per_second'], '{:.2f}')} pages/s** ({syn['wall_seconds']:.2f} s "
            f"wall, {syn['compress_seconds']:.2f} s of `compress()` in all).\n"
        )
        L.append("| file | kind | input filter | input B | high B | seconds | classified | notes |")
        L.append("|---|---|---|---:|---:|---:|---|---|")
        for f in syn["files"]:
            cls = ", ".join(f"{k} {v}" for k, v in (f.get("pages_classified") or {}).items())
            notes = "original kept" if f.get("original_kept") else ""
            if not f.get("ok"):
                notes = f"**failed**: {f.get('error')}".replace("|", "/")
            L.append(
                f"| {f['file']} | {f['kind']} | {f['filter']} | {f['bytes']:,} | "
                f"{_f(f.get('out_bytes'), '{:,}')} | {_f(f.get('seconds'), '{:.2f}')} | "
                f"{cls} | {notes} |"
            )
        L.append("")


def write_markdown(path: Path, data: dict[str, Any]) -> None:
    entries, tools, agg = data["files"], data["tools"], data["aggregate"]
    m = data["machine"]
    L: list[str] = []
    L.append("# PDF benchmark\n")
    L.append(
        f"Generated by `bench/pdf_bench.py` on {data['started']} "
        f"({len(entries)} files from `{data['corpus']}`, {data['elapsed']:.0f} s in total, "
        f"--jobs {data['jobs']}). See `bench/README.md` for what each column means.\n"
    )
    if data.get("label"):
        L.append(f"**{data['label']}** (engine from `{data.get('engine_dir')}`)\n")
    L.append("## Machine\n")
    L.append(f"- CPU: {m['cpus']} × {m['cpu_model']}; memory {m['memory']}; {m['platform']}")
    L.append(f"- Python {m['python']}; Squeezer {m['squeezer']}")
    L.append(f"- {m['libraries']}")
    L.append(f"- Ghostscript: {m['gs']}; qpdf: {m['qpdf']}; ocrmypdf: {m['ocrmypdf']}")
    src = data.get("engine_source") or {}
    if src:
        if src["start"] == src["end"]:
            L.append(f"- engine sources (src/squeezer/engines/**.py) fingerprint {src['start']}")
        else:
            L.append(
                f"- **Squeezer's sources changed during the run** ({src['start']} -> "
                f"{src['end']}): its results mix engine versions; run again"
            )
    la = data.get("load_average") or {}
    if la:
        busy = max(la["start"][0], la["end"][0]) > (m["cpus"] or 1)
        L.append(
            f"- Load average (1/5/15 min) at start {la['start']}, at end {la['end']}"
            + (f": above {m['cpus']}, the machine was shared and timings are noisy" if busy else "")
        )
    if data.get("cached_peer_results"):
        L.append(
            f"- {data['cached_peer_results']} peer results came from the cache "
            "(`bench/.cache/results/`): their seconds were measured in an earlier run; "
            "use `--no-cache` on a quiet machine for a like-for-like speed comparison"
        )
    earlier = data.get("earlier_peer_results") or {}
    if earlier.get("count"):
        L.append(
            f"- **{earlier['count']} peer results were taken from an earlier run** "
            f"(`--peers-from {earlier['from']}`, started {earlier['started']}), not run now: "
            "their bytes and SSIM are that run's, and so are their seconds (measured on that "
            "run's machine load): compare Squeezer's CPU seconds with theirs with care"
        )
    if data.get("retimed_peer_results"):
        L.append(
            f"- {data['retimed_peer_results']} cached peer results were timed again (`--retime`) "
            "beside Squeezer's runs: their bytes and SSIM are the cache's, their seconds this run's"
        )
    if data.get("resumed_squeezer_results"):
        L.append(
            f"- {data['resumed_squeezer_results']} Squeezer results came from an interrupted "
            "run of the same sources (`--resume`)"
        )
    for tool, why in m["skipped_tools"].items():
        L.append(f"- **skipped {tool}**: {why}")
    L.append("")
    L.append("## Aggregate\n")
    L.append(
        "| tool | files ok | Σout/Σin | median ratio | mean SSIM | min SSIM | "
        "SSIM<0.95 | total s | peak MB | failures | grown | pages lost | structure lost |"
    )
    L.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for tool in tools:
        a = agg[tool]
        L.append(
            f"| {tool} | {a['ok']}/{a['files']} | {_f(a['ratio_total'])} | "
            f"{_f(a['ratio_median'])} | {_f(a['ssim_mean'], '{:.4f}')} | "
            f"{_f(a['ssim_min'], '{:.4f}')} | {a['below_095']} | {a['seconds']:.1f} | "
            f"{_f(a.get('peak_pss_mb'), '{:.0f}')} | "
            f"{a['failures']} | {a['grown']} | {a['pages_lost']} | {a['structure_lost']} |"
        )
    L.append("")
    L.append(
        "Σout/Σin, median ratio and SSIM are over the files the tool handled (ok); "
        "total s is over every attempt (failures included; timeouts count their "
        f"{data['timeout']:.0f} s): wall seconds of one cold process per file for every tool "
        "(Squeezer: `squeezer compress FILE -o OUT --level L --json`, start-up included). "
        "peak MB: the largest peak memory of the tool's whole process tree over the files "
        "(PSS summed over the tree, sampled every 20 ms).\n"
    )
    if data["targets"]:
        L.append("## Targets\n")
        L.append("| target | measured | |")
        L.append("|---|---|---|")
        for t in data["targets"]:
            L.append(f"| {t['target']} | {t['measured']} | **{'PASS' if t['pass'] else 'MISS'}** |")
        L.append("")
    if data.get("categories"):
        write_categories(L, data["categories"], tools)
    if data.get("scans"):
        write_scans(L, data)
    if "squeezer-medium" in tools and any(t in tools for t in PEER_TOOLS):
        L.append("## Squeezer medium vs the envelope, per file\n")
        L.append(
            "Envelope: the smallest peer output that kept every page with min SSIM ≥ 0.95 "
            "(or the input). Sorted worst first (medium/envelope descending).\n"
        )
        L.append(
            "| file | category | input KiB | envelope KiB | by | medium KiB | "
            "medium/envelope | medium min SSIM | medium s | gs /ebook s | medium peak MB | "
            "strict envelope |"
        )
        L.append("|---|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
        rows = []
        for e in entries:
            env, who = envelope(e)
            med = e["results"]["squeezer-medium"]
            dl = delivered(e, "squeezer-medium")
            rows.append((dl / env if env else 0, e, env, who, med, dl))
        for frac, e, env, who, med, dl in sorted(rows, key=lambda r: -r[0]):
            senv, swho = envelope(e, strict=True)
            strict = (
                "same"
                if (senv, swho) == (env, who)
                else f"{_kb(senv)} KiB by {swho} (medium/strict {dl / senv:.2f})"
            )
            gs = e["results"].get("gs-ebook", {})
            flag = "" if med.get("ok") else " (failed: input)"
            if e.get("blank_pages") and len(e["blank_pages"]) == len(
                sample_indices(e["pages"] or 0)
            ):
                who += " (input renders blank: SSIM uninformative)"
            L.append(
                f"| {e['file']} | {e['category']} | {_kb(e['bytes'])} | {_kb(env)} | "
                f"{who} | {_kb(dl)}{flag} | {frac:.2f} | "
                f"{_f(med.get('ssim_min'), '{:.4f}')} | {_f(med.get('seconds'), '{:.2f}')} | "
                f"{_f(gs.get('seconds'), '{:.2f}')} | {_f(med.get('peak_pss_mb'), '{:.0f}')} | "
                f"{strict} |"
            )
        L.append("")
    L.append("## Ratio and min SSIM per file and tool\n")
    L.append(
        "Each cell: output/input ratio · min SSIM (✗ = failure, ↑ = grew, "
        "⚠ = pages lost or SSIM < 0.95, § = forms/XFA/tags/links/annotations/bookmarks/text "
        "lost).\n"
    )
    L.append("| file | KiB | pages | " + " | ".join(tools) + " |")
    L.append("|---|---:|---:|" + "---|" * len(tools))
    for e in entries:
        cells = []
        for tool in tools:
            r = e["results"].get(tool, {})
            if not r.get("ok"):
                cells.append("✗")
                continue
            mark = (
                ("↑" if r.get("grown") else "")
                + (
                    "⚠"
                    if r.get("pages_lost")
                    or (r.get("ssim_min") is not None and r["ssim_min"] < SSIM_OK)
                    else ""
                )
                + ("§" if r.get("structure_lost") else "")
            )
            cells.append(f"{r['ratio']:.3f} · {_f(r.get('ssim_min'), '{:.3f}')}{mark}")
        L.append(
            f"| {e['file']} | {_kb(e['bytes'])} | {e['pages'] or '–'} | " + " | ".join(cells) + " |"
        )
    L.append("")
    L.append("## Per file and tool, in detail\n")
    L.append(
        "| file | tool | bytes | ratio | mean SSIM | min SSIM | seconds | peak MB | pages out "
        "| notes |"
    )
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for e in entries:
        L.append(
            f"| **{e['file']}** | input ({e['category']}) | {e['bytes']:,} | 1 | | | | | "
            f"{e['pages'] or '–'} | {_input_note(e)} |"
        )
        for tool in tools:
            r = e["results"].get(tool, {})
            notes = list(r.get("notes") or [])
            if r.get("structure_lost"):
                notes.insert(0, "lost: " + ", ".join(r["structure_lost"]))
            if r.get("error"):
                notes.insert(0, f"**failed**: {r['error']}")
            if r.get("cached"):
                notes.append("cached")
            note = "; ".join(notes).replace("|", "/").replace("\n", " ")[:240]
            L.append(
                f"| | {tool} | {_f(r.get('bytes'), '{:,}')} | {_f(r.get('ratio'))} | "
                f"{_f(r.get('ssim_mean'), '{:.4f}')} | {_f(r.get('ssim_min'), '{:.4f}')} | "
                f"{_f(r.get('seconds'), '{:.2f}')} | {_f(r.get('peak_pss_mb'), '{:.0f}')} | "
                f"{_f(r.get('pages_out'), '{}')} | "
                f"{note} |"
            )
    L.append("")
    path.write_text("\n".join(L))


# --------------------------------------------------------------------------- main


def load_manifest(corpus: Path) -> dict[str, str]:
    manifest = corpus / "MANIFEST.tsv"
    cats: dict[str, str] = {}
    if manifest.exists():
        lines = manifest.read_text().splitlines()
        if lines:
            head = lines[0].split("\t")
            fi, ci = head.index("file"), head.index("category")
            for line in lines[1:]:
                cols = line.split("\t")
                if len(cols) > max(fi, ci):
                    cats[cols[fi]] = cols[ci]
    return cats


def select_tools(spec: str | None) -> list[str]:
    if not spec:
        return list(ALL_TOOLS)
    chosen: list[str] = []
    for name in (s.strip() for s in spec.split(",") if s.strip()):
        names = GROUPS.get(name) or ([f"squeezer-{name}"] if name in PRESETS else [name])
        for n in names:
            if n not in ALL_TOOLS:
                raise SystemExit(
                    f"unknown tool {name!r}; choose from {', '.join(ALL_TOOLS)} "
                    f"or groups {', '.join(GROUPS)}"
                )
            if n not in chosen:
                chosen.append(n)
    return [t for t in ALL_TOOLS if t in chosen]


def select_files(
    corpora: list[Path],
    patterns: str | None,
    quick: bool,
    categories: str | None = None,
    cats: dict[str, str] | None = None,
    extra: list[Path] | None = None,
) -> list[Path]:
    """The corpus PDFs matching ``patterns`` (file names) and ``categories`` (prefixes).

    ``extra``: more files (the generated large ones), after the corpora's.
    """
    files: list[Path] = []
    seen: set[str] = set()
    for corpus in corpora:
        for p in sorted(corpus.glob("*.pdf")):
            if p.is_file() and p.name not in seen:  # results are keyed by file name
                seen.add(p.name)
                files.append(p)
    files += [p for p in extra or [] if p.name not in seen]
    if categories:
        prefixes = [c.strip() for c in categories.split(",") if c.strip()]
        cats = cats or {}
        files = [f for f in files if any(cats.get(f.name, "?").startswith(c) for c in prefixes)]
    if patterns:
        pats = [p.strip() for p in patterns.split(",") if p.strip()]
        files = [
            f
            for f in files
            if any(
                fnmatch.fnmatch(f.name, p) or fnmatch.fnmatch(f.stem, p) or p in f.name
                for p in pats
            )
        ]
    if quick:
        picked = [f for f in files if f.name in QUICK_FILES]
        files = picked or sorted(files, key=lambda f: f.stat().st_size)[:5]
    return files


def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--corpus",
        type=Path,
        action="append",
        help="directory of PDFs, with an optional MANIFEST.tsv of categories; repeat for "
        "several (default: " + ", ".join(str(c) for c in DEFAULT_CORPORA) + ")",
    )
    ap.add_argument(
        "--large",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add the generated large files of bench/large_pdfs.py (a 300-page 300 dpi G4 scan, "
        "a 175 MB 150-page photo PDF; made once into bench/.cache/generated/); default: on "
        "when no --files, --category or --quick narrows the run",
    )
    ap.add_argument(
        "--startup-runs",
        type=int,
        default=5,
        help="cold `squeezer compress` runs of the small text PDF for the start-up target "
        "(median; 0 skips)",
    )
    ap.add_argument("--files", help="comma-separated globs/substrings of file names to keep")
    ap.add_argument(
        "--category",
        help="comma-separated prefixes of MANIFEST.tsv categories to keep "
        "(e.g. 'scan' for scan_bitonal, scan_color and scan_gray)",
    )
    ap.add_argument(
        "--tools",
        help="comma-separated tools or groups: "
        + ", ".join(ALL_TOOLS)
        + "; groups: "
        + ", ".join(GROUPS)
        + "; a bare preset name means squeezer-<preset>",
    )
    ap.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="files benchmarked in parallel (default 1, so timings are honest)",
    )
    ap.add_argument(
        "--quick",
        action="store_true",
        help=f"only {len(QUICK_FILES)} representative files, for development",
    )
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per tool run")
    ap.add_argument(
        "--scan-pages",
        type=int,
        default=6,
        help="synthetic 300 dpi letter scan pages (bench/scan_pages.py) timed with squeezer-high "
        "in a Pool of 2 for the scans table's speed target, when scanned files are selected "
        "(default 6; 0 skips)",
    )
    ap.add_argument("--no-cache", action="store_true", help="re-run peers even when cached")
    ap.add_argument(
        "--rerun",
        help="comma-separated peers re-run even when cached or given by --peers-from (e.g. "
        "gs-ebook, so that the speed target compares timings of one run while the other peers' "
        "bytes come from the cache or the earlier run)",
    )
    ap.add_argument(
        "--retime",
        help="comma-separated peers whose cached results are timed again (their command run "
        "once more, for wall and CPU seconds and memory only; bytes and SSIM stay cached)",
    )
    ap.add_argument(
        "--shard",
        help="K/N: only every N-th selected file from the K-th (0-based), to spread one run "
        "over several processes whose results --resume then assembles",
    )
    ap.add_argument(
        "--reverse",
        action="store_true",
        help="the files in reverse order (a second process on the same --shard, with --resume, "
        "works from the other end)",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="reuse Squeezer results cached by an earlier (interrupted) run of the same sources "
        "(keyed by file and the squeezer package's source hash), and cache new ones",
    )
    ap.add_argument(
        "--peers-from",
        type=Path,
        help="take each peer's result (bytes, SSIM, seconds, memory) from an earlier run's JSON "
        "(bench/results/pdf.json), matched by the file's sha256, instead of running the peer: "
        "for a Squeezer-only re-run on a machine without the peers or their cache; the report "
        "says so, and the peers' seconds are that run's",
    )
    ap.add_argument("--label", help="a line for the report's header (e.g. which engine ran)")
    ap.add_argument(
        "--keep-outputs",
        action="store_true",
        help="keep every output PDF in bench/.cache/outputs/<tool>/",
    )
    ap.add_argument(
        "--out",
        type=Path,
        help="markdown path (default bench/results/pdf.md "
        "for a full run, bench/.cache/pdf-partial.md otherwise); JSON beside it",
    )
    return ap.parse_args(argv)


def main(argv: list[str]) -> int:
    if argv and argv[0] in WORKERS:
        return run_worker(argv)
    args = parse_args(argv)
    corpora = [c.resolve() for c in (args.corpus or DEFAULT_CORPORA)]
    for corpus in corpora:
        if not corpus.is_dir():
            print(f"error: no corpus directory {corpus}", file=sys.stderr)
            return 2
    wanted = select_tools(args.tools)
    versions, missing = detect_tools()
    if args.peers_from:
        earlier = load_earlier_peers(args.peers_from)
        for tool in PEER_TOOLS:
            if tool in earlier.versions and tool in wanted:
                versions[tool] = earlier.versions[tool]
                missing.pop(tool, None)
        args.earlier = earlier
    tools = [t for t in wanted if t in versions]
    skipped = {t: why for t, why in missing.items() if t in wanted}
    for tool, why in skipped.items():
        print(f"note: skipping {tool}: {why}", file=sys.stderr)
    if not tools:
        print("error: no tool available", file=sys.stderr)
        return 2
    cats: dict[str, str] = {}
    for corpus in reversed(corpora):  # the first corpus names a file's category
        cats.update(load_manifest(corpus))
    narrowed = bool(args.quick or args.files or args.category)
    large: list[Path] = []
    if args.large if args.large is not None else not narrowed:
        import large_pdfs

        large = large_pdfs.make(GENERATED, log=lambda m: print(m, file=sys.stderr, flush=True))
        for path in large:
            cats[path.name] = large_pdfs.category(path.name) or "generated"
    files = select_files(corpora, args.files, args.quick, args.category, cats, large)
    if args.shard:
        k, n = (int(x) for x in args.shard.split("/"))
        files = files[k::n]
    if args.reverse:
        files.reverse()
    if not files:
        print("error: no PDF selected", file=sys.stderr)
        return 2
    full = not (narrowed or args.tools or args.corpus or args.large is False)
    md = args.out or (HERE / "results" / "pdf.md" if full else CACHE / "pdf-partial.md")
    md.parent.mkdir(parents=True, exist_ok=True)
    if any(t in SQUEEZER_TOOLS for t in tools):
        compile_squeezer()
    bench = Bench(args, tools, versions)
    print(f"{len(files)} files × {len(tools)} tools, --jobs {args.jobs}", file=sys.stderr)
    started = dt.datetime.now(dt.UTC)
    load_before = os.getloadavg()
    source_before = source_fingerprint()
    t0 = time.perf_counter()
    entries: dict[str, dict[str, Any]] = {}
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(bench.bench_file, f, cats.get(f.name, "?")): f for f in files}
            for fut in concurrent.futures.as_completed(futures):
                entries[futures[fut].name] = fut.result()
    except KeyboardInterrupt:
        kill_running()
        print("interrupted", file=sys.stderr)
        return 130
    ordered = [entries[f.name] for f in files]
    scans = scans_section(args, ordered, tools, versions)
    startup = None
    startup_file = pick_startup_file(files, cats)
    if args.startup_runs > 0 and "squeezer-medium" in tools and startup_file is not None:
        print(f"start-up: {args.startup_runs} cold runs on {startup_file.name}", file=sys.stderr)
        startup = measure_startup(startup_file, args.startup_runs, args.timeout)
    all_targets = targets(ordered, tools, skipped)
    if startup is not None:
        all_targets.append(startup_target(startup))
    data = {
        "started": started.strftime("%Y-%m-%d %H:%M UTC"),
        "elapsed": time.perf_counter() - t0,
        "label": args.label,
        "engine_dir": str(engine_dir()),
        "corpus": ", ".join(os.path.relpath(c, REPO) for c in corpora)
        + (f" + {len(large)} generated large files" if large else ""),
        "jobs": args.jobs,
        "timeout": args.timeout,
        "dpi": DPI,
        "sample_pages": SAMPLE_PAGES,
        "tools": tools,
        "machine": machine_info(versions, skipped),
        "load_average": {
            "start": [round(x, 2) for x in load_before],
            "end": [round(x, 2) for x in os.getloadavg()],
        },
        "engine_source": {"start": source_before, "end": source_fingerprint()},
        "cached_peer_results": sum(
            1 for e in ordered for t, r in e["results"].items()
            if r.get("cached") and not r.get("retimed") and not r.get("earlier_run")
            and t in PEER_TOOLS
        ),
        "retimed_peer_results": sum(
            1 for e in ordered for t, r in e["results"].items()
            if r.get("retimed") and not r.get("earlier_run") and t in PEER_TOOLS
        ),
        "earlier_peer_results": {
            "count": sum(1 for e in ordered for t, r in e["results"].items()
                         if r.get("earlier_run") and t in PEER_TOOLS),
            "from": str(args.peers_from) if args.peers_from else None,
            "started": getattr(getattr(args, "earlier", None), "started", None),
        },
        "resumed_squeezer_results": sum(
            1 for e in ordered for t, r in e["results"].items()
            if r.get("cached") and t in SQUEEZER_TOOLS
        ),
        "aggregate": aggregate(ordered, tools),
        "targets": all_targets,
        "startup": startup,
        "categories": category_rows(ordered, tools),
        "envelope": {e["file"]: dict(zip(("bytes", "by"), envelope(e))) for e in ordered},
        "scans": scans,
        "files": ordered,
    }
    md.with_suffix(".json").write_text(json.dumps(data, indent=1))
    write_markdown(md, data)
    print(f"\nwrote {md} and {md.with_suffix('.json')}", file=sys.stderr)
    if data["engine_source"]["start"] != data["engine_source"]["end"]:
        print("warning: Squeezer's sources changed during the run; run again", file=sys.stderr)
    for t in data["targets"] + ((scans or {}).get("targets") or []):
        print(f"{'PASS' if t['pass'] else 'MISS'}  {t['target']}: {t['measured']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
