"""Squeezer's container engine vs re-packers and a by-hand lossy baseline, side by side in one run.

Corpora: ``../shared/corpus/docs/``, ``archives/`` and ``web/`` (their
MANIFEST.tsv).  For every file, in one run on the same machine:

- ``squeezer`` at ``lossless`` and ``medium`` (``--levels`` for more), through
  :func:`squeezer.engines.dispatch.compress_any`;
- ``advzip -z -4`` (Debian advancecomp; zopfli-class deflate) and
  ``7z -tzip -mx=9`` (p7zip: extract, re-zip) as re-packers (ZIP-based files);
- Leanify: not packaged by Debian nor on PyPI (noted in the results);
- by hand, the way people do it: unzip, ``jpegoptim --max=75``, ``pngquant``
  (``--skip-if-larger``), ``optipng -o2``, ``zip -9`` (``mimetype`` first and
  stored when there is one).

Measured: bytes; files grown; broken files (the ZIP reads back with CRCs, an
OOXML/ODF opens in its reader with the input's text, an EPUB passes epubcheck
when installed, else the OPF checks; a tar reads); for ``lossless``, that every
member's content is the input's (images: the same pixels; XML: the same
infoset once ignorable whitespace is set aside; anything else: the same
bytes); first-page render SSIM of OOXML/ODF documents through LibreOffice
headless (``soffice --convert-to pdf``, page 1 at 60 dpi) for ``medium`` and the
by-hand baseline; wall time (run with ``nice``; compare times within one run).

    nice -n 5 .venv/bin/python bench/container_bench.py [--levels lossless,medium]
        [--only NAME] [--out bench/results/containers.md]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
CATEGORIES = ("docs", "archives", "web")
sys.path.insert(0, str(ROOT / "src"))

from squeezer.engines.container.kinds import IMAGES, member_kind  # noqa: E402
from squeezer.engines.container.verify import same_document  # noqa: E402
from squeezer.engines.dispatch import compress_any  # noqa: E402
from squeezer.engines.sniff import sniff_file  # noqa: E402

EPUBCHECK = False
ZIPLIKE = ("zip", "jar", "apk", "epub", "docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "odt",
           "ods", "odp", "odg", "cbz")


def corpus(only: str | None) -> list[tuple[str, Path]]:
    files = []
    for cat in CATEGORIES:
        manifest = CORPUS / cat / "MANIFEST.tsv"
        if not manifest.is_file():
            continue
        with open(manifest) as f:
            for row in csv.DictReader(f, delimiter="\t"):
                path = CORPUS / cat / row["file"]
                if path.is_file() and (only is None or only in row["file"]):
                    files.append((cat, path))
    # smallest first, across categories: an interrupted run still covers every category
    return sorted(files, key=lambda f: f[1].stat().st_size)


def timed(fn: Any, *args: Any) -> tuple[Any, float]:
    t = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t


def cpu_now() -> float:
    """CPU seconds of this process (all threads) and its waited-for children: on a shared
    machine the wall time measures the neighbours, the CPU time measures the work."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime + _live_children_cpu()


def _live_children_cpu() -> float:
    """CPU seconds of this process's children that are still running: the mozjpeg re-pack
    helpers stay alive between files, so RUSAGE_CHILDREN never sees their work."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for task in Path("/proc/self/task").iterdir():
        try:
            pids = (task / "children").read_text().split()
        except OSError:
            continue
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


# --- the peers ----------------------------------------------------------------------------


def advzip(src: Path, work: Path) -> Path | None:
    if not shutil.which("advzip"):
        return None
    out = work / f"advzip{src.suffix}"
    shutil.copyfile(src, out)
    out.chmod(0o644)
    proc = subprocess.run(["advzip", "-z", "-4", "-q", str(out)], capture_output=True)
    return out if proc.returncode == 0 else None


def _unzip(src: Path, folder: Path) -> bool:
    proc = subprocess.run(["7z", "x", "-y", f"-o{folder}", str(src)], capture_output=True)
    return proc.returncode == 0


def _zip_folder(folder: Path, out: Path, tool: str) -> bool:
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    first = ["mimetype"] if "mimetype" in files else []
    rest = [f for f in files if f != "mimetype"]
    if tool == "7z":
        if first:
            subprocess.run(["7z", "a", "-tzip", "-mx=0", str(out), *first], cwd=folder,
                           capture_output=True)
        proc = subprocess.run(["7z", "a", "-tzip", "-mx=9", str(out), *rest], cwd=folder,
                              capture_output=True)
        return proc.returncode == 0
    if first:
        subprocess.run(["zip", "-q", "-X", "-0", str(out), *first], cwd=folder)
    proc = subprocess.run(["zip", "-q", "-X", "-9", str(out), *rest], cwd=folder)
    return proc.returncode == 0


def sevenzip(src: Path, work: Path) -> Path | None:
    if not shutil.which("7z"):
        return None
    folder = work / "7z-tree"
    out = work / f"7z{src.suffix}"
    if not _unzip(src, folder) or not _zip_folder(folder, out, "7z"):
        return None
    return out


def by_hand(src: Path, work: Path) -> Path | None:
    """unzip -> jpegoptim --max=75, pngquant, optipng -o2 -> zip -9."""
    folder = work / "hand-tree"
    out = work / f"hand{src.suffix}"
    if not _unzip(src, folder):
        return None
    jpegs = [str(p) for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg")]
    pngs = [str(p) for p in folder.rglob("*") if p.suffix.lower() == ".png"]
    if jpegs and shutil.which("jpegoptim"):
        subprocess.run(["jpegoptim", "-q", "--max=75", *jpegs], capture_output=True)
    if pngs and shutil.which("pngquant"):
        for png in pngs:
            subprocess.run(["pngquant", "--force", "--skip-if-larger", "--ext", ".png", png],
                           capture_output=True)
    if pngs and shutil.which("optipng"):
        subprocess.run(["optipng", "-quiet", "-o2", *pngs], capture_output=True)
    return out if _zip_folder(folder, out, "zip") else None


# --- checks -------------------------------------------------------------------------------------


def broken(src: Path, out: Path, fmt: str) -> str | None:
    """Why ``out`` is broken, or None."""
    try:
        if fmt in ("tar", "tar.gz", "tar.xz", "tar.zst", "7z", "gz"):
            if fmt.startswith("tar"):
                import tarfile

                with tarfile.open(out) as tf:
                    for m in tf.getmembers():
                        if m.isreg():
                            tf.extractfile(m).read()
            return None
        with zipfile.ZipFile(out) as zf:
            for info in zf.infolist():
                if info.compress_type in (0, 8, 12, 14) and not info.flag_bits & 1:
                    zf.read(info)
        if fmt == "epub":
            return _epub_broken(src, out)
        if fmt in ("docx", "xlsx", "pptx", "docm", "xlsm", "pptm", "odt", "ods", "odp", "odg"):
            before = _parts(src)
            after = _parts(out)
            if not same_document(fmt, src, before, out, after)[2]:
                return "content differs or does not open"
    except Exception as exc:  # noqa: BLE001 - any failure is a broken file
        return f"{type(exc).__name__}: {exc}"[:120]
    return None


def _epubcheck() -> list[str] | None:
    """epubcheck, when installed and asked for (--epubcheck: Java is slow on a loaded machine;
    the tests run it on every EPUB they write)."""
    if not EPUBCHECK:
        return None
    found = shutil.which("epubcheck")
    if not found:
        return None
    real = os.path.realpath(found)
    return ["java", "-jar", real] if real.endswith(".jar") else [real]


def _epub_broken(src: Path, out: Path) -> str | None:
    """More epubcheck errors than the input had (or, without epubcheck, our OPF checks)."""
    command = _epubcheck()
    if command:
        before, after = epubcheck_errors(src), epubcheck_errors(out)
        return f"epubcheck: {after} errors, the input {before}" if (after or 0) > (
            before or 0) else None
    from squeezer.engines.container import epub

    with zipfile.ZipFile(out) as zf:
        first = zf.infolist()[0]
        parts = {i.filename: zf.read(i) for i in zf.infolist() if not i.is_dir()}
        epub.check(parts, first.filename, first.compress_type == 0, bool(first.extra))
    return None


def epubcheck_errors(path: Path) -> int | None:
    """epubcheck's error count for a book (the input's own count is the baseline)."""
    command = _epubcheck()
    if not command:
        return None
    proc = subprocess.run([*command, "-q", "-e", str(path)], capture_output=True, text=True,
                          timeout=300)
    return sum(1 for ln in (proc.stdout + proc.stderr).splitlines()
               if ln.startswith(("ERROR", "FATAL")))


_EPUBCHECK_CACHE: dict[Path, int | None] = {}


def _parts(path: Path) -> dict[str, bytes | None]:
    with zipfile.ZipFile(path) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()
                if not i.is_dir() and i.compress_type in (0, 8)}


def content_identical(src: Path, out: Path, fmt: str) -> str | None:
    """For lossless: why some member's content differs, or None."""
    if fmt.startswith("tar") or fmt in ("7z", "gz"):
        return None
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(out) as b:
        names_b = {i.filename for i in b.infolist()}
        for info in a.infolist():
            if info.is_dir() or info.compress_type not in (0, 8) or info.flag_bits & 1:
                continue
            if info.filename not in names_b:
                return f"{info.filename} missing"
            x, y = a.read(info), b.read(info.filename)
            if x == y:
                continue
            why = _same_content(info.filename, x, y)
            if why:
                return why
    return None


def _same_content(name: str, x: bytes, y: bytes) -> str | None:
    kind = member_kind(name, x[:4096])
    if kind in IMAGES and kind != "svg":
        try:
            ia, ib = Image.open(io.BytesIO(x)), Image.open(io.BytesIO(y))
            ia.load()
            ib.load()
            # oxipng may store the same pixels in another colour type (RGBA -> RGB when every
            # pixel is opaque, truecolour -> palette): compare the pixels, not the encoding
            if ia.size != ib.size or not np.array_equal(np.asarray(ia.convert("RGBA")),
                                                        np.asarray(ib.convert("RGBA"))):
                return f"{name}: pixels differ"
            return None
        except Exception as exc:  # noqa: BLE001
            return f"{name}: {exc}"
    if kind in ("xml", "xhtml"):
        from lxml import etree

        parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False)
        try:
            ca = etree.tostring(etree.fromstring(x, parser), method="c14n")
            cb = etree.tostring(etree.fromstring(y, parser), method="c14n")
        except etree.XMLSyntaxError as exc:
            return f"{name}: {exc}"
        return None if ca == cb else f"{name}: XML differs"
    if kind == "json":
        return None if json.loads(x) == json.loads(y) else f"{name}: JSON differs"
    if kind == "pdf":
        import pypdfium2

        pa, pb = pypdfium2.PdfDocument(x), pypdfium2.PdfDocument(y)
        if len(pa) != len(pb):
            return f"{name}: page count differs"
        return None
    if kind in ("zip", "docx", "xlsx", "pptx", "odt", "epub", "jar"):
        with tempfile.TemporaryDirectory() as tmp:
            pa, pb = Path(tmp) / "a", Path(tmp) / "b"
            pa.write_bytes(x)
            pb.write_bytes(y)
            return content_identical(pa, pb, kind)
    return f"{name}: bytes differ ({kind})"


# --- renders --------------------------------------------------------------------------------


def first_page(path: Path, work: Path) -> np.ndarray | None:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        return None
    out_dir = work / f"render-{path.stem}"
    out_dir.mkdir(exist_ok=True)
    profile = work / "lo-profile"
    try:
        subprocess.run([soffice, f"-env:UserInstallation=file://{profile}", "--headless",
                        "--convert-to", "pdf", "--outdir", str(out_dir), str(path)],
                       capture_output=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None
    pdfs = list(out_dir.glob("*.pdf"))
    if not pdfs:
        return None
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(pdfs[0]))
    image = doc[0].render(scale=60 / 72).to_pil().convert("L")
    return np.asarray(image)


def render_ssim(a: np.ndarray | None, b: np.ndarray | None) -> float | None:
    if a is None or b is None:
        return None
    if a.shape != b.shape:
        return 0.0
    from squeezer.engines.ssim import ssim

    return float(ssim(a.astype(np.float32), b.astype(np.float32)))


# --- the run ----------------------------------------------------------------------------------


CACHE = ROOT / "bench" / ".cache" / "containers"
#: Bump when the way peers are measured changes, so cached peer results are redone.
PEER_VERSION = "1"


def _digest(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()[:24]


def _original_render(src: Path, digest: str, work: Path) -> np.ndarray | None:
    """The input's first page, rendered once and kept on disk by content (LibreOffice is the
    slowest step of the run)."""
    cached = CACHE / "renders" / f"{digest}.npy"
    if cached.is_file():
        return np.load(cached)
    miss = cached.with_suffix(".none")
    if miss.is_file():
        return None
    image = first_page(src, work)
    cached.parent.mkdir(parents=True, exist_ok=True)
    if image is None:
        miss.write_text("")
    else:
        np.save(cached, image)
    return image


def peer_results(src: Path, fmt: str, digest: str, original: np.ndarray | None,
                 work: Path) -> dict[str, Any]:
    """advzip, 7z and the by-hand baseline on one file, cached on disk by (input, peer): the
    peers do not change between runs of Squeezer, and advzip -4 is the slowest thing here."""
    results: dict[str, Any] = {}
    for name, peer in (("advzip -4", advzip), ("7z -mx=9", sevenzip), ("by hand", by_hand)):
        key = name.split()[0]
        cached = CACHE / "peers" / f"{digest}-{key}-v{PEER_VERSION}.json"
        if cached.is_file():
            results[name] = {**json.loads(cached.read_text()), "cached": True}
            continue
        out, seconds = timed(peer, src, work)
        if out is None or not out.is_file():
            res: dict[str, Any] = {"error": "failed"}
        else:
            res = {"bytes": out.stat().st_size, "seconds": round(seconds, 2),
                   "broken": broken(src, out, fmt)}
            if name == "by hand" and original is not None:
                res["ssim"] = render_ssim(original, first_page(out, work))
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text(json.dumps(res))
        results[name] = res
    return results


RENDERED = ("docx", "xlsx", "pptx", "odt", "ods", "odp")


def run_file(cat: str, src: Path, levels: list[str], renders: bool,
             peers_only: bool = False,
             peers: dict[str, Any] | None = None) -> dict[str, Any]:
    fmt = sniff_file(src).format
    digest = _digest(src)
    row: dict[str, Any] = {"category": cat, "file": src.name, "format": fmt,
                           "bytes": src.stat().st_size, "results": {}}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        original_render = _original_render(src, digest, work) if renders and fmt in (
            RENDERED) else None
        if peers is not None:
            row["results"].update(peers)
        elif fmt in ZIPLIKE:
            row["results"].update(peer_results(src, fmt, digest, original_render, work))
        if peers_only:
            return row
        for level in levels:
            out = work / f"squeezer-{level}{src.suffix}"
            cpu = cpu_now()
            try:
                report, seconds = timed(compress_any, src, out, {"level": level})
            except Exception as exc:  # noqa: BLE001 - a failure is a result too
                row["results"][f"squeezer {level}"] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            res = {"bytes": out.stat().st_size, "seconds": round(seconds, 2),
                   "cpu_seconds": round(cpu_now() - cpu, 2),
                   "broken": broken(src, out, fmt), "kept": report.original_kept}
            if level == "lossless":
                res["content"] = content_identical(src, out, fmt)
            if original_render is not None and level != "lossless":
                res["ssim"] = render_ssim(original_render, first_page(out, work))
            row["results"][f"squeezer {level}"] = res
    return row


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--levels", default="lossless,medium")
    parser.add_argument("--only")
    parser.add_argument("--no-render", action="store_true")
    parser.add_argument("--peers-only", action="store_true",
                        help="only fill the peer cache (bench/.cache/containers/)")
    parser.add_argument("--reverse", action="store_true", help="largest files first")
    parser.add_argument("--lock", help="a name shared by parallel runs: each file is run by one")
    parser.add_argument("--report-only", metavar="MINUTES",
                        help="write the tables of the --resume rows (the runs' wall time)")
    parser.add_argument("--resume", help="keep the rows of these earlier JSONs (comma-separated) "
                        "and run the rest")
    parser.add_argument("--peers-from", metavar="JSON",
                        help="take the peers' rows from this earlier JSON instead of running "
                        "them (advzip -4 takes hours); the squeezer levels run again")
    parser.add_argument("--epubcheck", action="store_true",
                        help="check EPUB outputs with epubcheck (else the OPF checks)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results" / "containers.json"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "containers.md"))
    args = parser.parse_args()
    levels = args.levels.split(",")
    global EPUBCHECK
    EPUBCHECK = args.epubcheck
    rows = []
    done: set[str] = set()
    for earlier in (args.resume or "").split(","):
        if earlier and Path(earlier).is_file():
            rows += [r for r in json.loads(Path(earlier).read_text()) if r["file"] not in done]
            done = {r["file"] for r in rows}
    if args.report_only:
        minutes = float(args.report_only)
        Path(args.json).write_text(json.dumps(rows, indent=1))
        Path(args.out).write_text(report(rows, levels, minutes * 60))
        return
    peers: dict[str, dict[str, Any]] = {}
    if args.peers_from:
        for r in json.loads(Path(args.peers_from).read_text()):
            peers[r["file"]] = {k: v for k, v in r["results"].items()
                                if not k.startswith("squeezer ")}
    started = time.perf_counter()
    files = corpus(args.only)
    if args.reverse:
        files.reverse()
    for cat, src in files:
        if src.name in done:
            continue
        if args.peers_only or args.lock:  # several runs may share the work: one takes a file
            lock = CACHE / (args.lock or "locks") / src.name
            lock.parent.mkdir(parents=True, exist_ok=True)
            try:
                lock.touch(exist_ok=False)
            except FileExistsError:
                continue
        row = run_file(cat, src, levels, not args.no_render, args.peers_only,
                       peers.get(src.name) if args.peers_from else None)
        if args.peers_only:
            print(json.dumps({"file": src.name, **{k: v.get("bytes") for k, v in
                                                   row["results"].items()}}), flush=True)
            continue
        rows.append(row)
        brief = {k: (v.get("bytes"), v.get("seconds"), v.get("broken"), v.get("ssim"))
                 for k, v in row["results"].items()}
        print(json.dumps({"file": src.name, "bytes": row["bytes"], **brief}), flush=True)
        # after every file: an interrupted run leaves its tables so far
        Path(args.json).write_text(json.dumps(rows, indent=1))
        Path(args.out).write_text(report(rows, levels, time.perf_counter() - started))


def _fmt(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def _get(row: dict[str, Any], name: str, key: str) -> Any:
    return row["results"].get(name, {}).get(key)


_SIGNATURE_NAMES = ("_xmlsignatures/", "META-INF/documentsignatures.xml",
                    "META-INF/macrosignatures.xml", "META-INF/signatures.xml")


def signed_input(path: Path) -> bool:
    """A signed package (JAR/APK v1 signature files, an APK v2+ signing block, OOXML, ODF or
    EPUB signatures): any re-pack invalidates it, so Squeezer returns it byte-identical."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    if any(n.startswith("META-INF/") and n.upper().endswith((".SF", ".RSA", ".DSA", ".EC"))
           or n.startswith(_SIGNATURE_NAMES) for n in names):
        return True
    return b"APK Sig Block 42" in path.read_bytes()


def mark_signed(rows: list[dict[str, Any]]) -> list[str]:
    """Peers that re-packed a signed package broke its signature: counted as broken (their
    bytes show as "-"); returns those files."""
    signed = []
    for r in rows:
        path = CORPUS / r["category"] / r["file"]
        if not path.is_file() or not signed_input(path):
            continue
        for name in ("advzip -4", "7z -mx=9", "by hand"):
            res = r["results"].get(name)
            if res and res.get("bytes") not in (None, r["bytes"]) and not res.get("broken"):
                res["broken"] = "signature invalidated (the input is signed)"
                if r["file"] not in signed:
                    signed.append(r["file"])
    return signed


def report(rows: list[dict[str, Any]], levels: list[str], elapsed: float) -> str:
    signed = mark_signed(rows)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines = ["# Containers: squeezer vs re-packers and a by-hand lossy baseline", "",
             f"One run, `nice`, {len(rows)} files, {elapsed / 60:.1f} min, load average "
             f"{load:.1f} on {os.cpu_count()} cores at the end (the machine is shared: compare "
             "times within this run, not across runs).  Leanify: not packaged by Debian nor on "
             "PyPI, so not run.  `bench/container_bench.py` wrote this file.", ""]
    head = len(lines)
    summary: list[str] = []
    grown = 0
    broken_ours = 0
    for cat in CATEGORIES:
        part = [r for r in rows if r["category"] == cat]
        if not part:
            continue
        if "lossless" in levels:
            lines += [f"## {cat}: lossless", "",
                      "| file | input | advzip -4 | 7z -mx=9 | squeezer lossless | x best "
                      "re-packer | content | broken | s (squeezer / advzip) | squeezer CPU-s |",
                      "|---|---:|---:|---:|---:|---:|---|---|---:|---:|"]
            tot_in = tot_ours = tot_best = 0
            t_ours = t_adv = t_cpu = 0.0
            for r in part:
                ours = _get(r, "squeezer lossless", "bytes")
                adv = _get(r, "advzip -4", "bytes") if not _get(r, "advzip -4", "broken") else None
                sz = _get(r, "7z -mx=9", "bytes") if not _get(r, "7z -mx=9", "broken") else None
                best = min([b for b in (adv, sz, r["bytes"]) if b is not None])
                ratio = f"{ours / best:.3f}" if ours else "-"
                content = _get(r, "squeezer lossless", "content")
                bad = _get(r, "squeezer lossless", "broken")
                if ours:
                    tot_in += r["bytes"]
                    tot_ours += ours
                    tot_best += best
                    t_ours += _get(r, "squeezer lossless", "seconds") or 0
                    t_cpu += _get(r, "squeezer lossless", "cpu_seconds") or 0
                    t_adv += _get(r, "advzip -4", "seconds") or 0
                    grown += ours > r["bytes"]
                    broken_ours += bool(bad)
                err = _get(r, "squeezer lossless", "error")
                lines.append(
                    f"| {r['file']} | {_fmt(r['bytes'])} | {_fmt(adv)} | {_fmt(sz)} | "
                    f"{_fmt(ours) if not err else 'error: ' + err[:40]} | {ratio} | "
                    f"{'same' if not content else content[:40]} | {bad or 'no'} | "
                    f"{_get(r, 'squeezer lossless', 'seconds')} / "
                    f"{_get(r, 'advzip -4', 'seconds') or '-'} | "
                    f"{_get(r, 'squeezer lossless', 'cpu_seconds')} |")
            if tot_best:
                lines.append(f"| **total** | {_fmt(tot_in)} | | | {_fmt(tot_ours)} | "
                             f"**{tot_ours / tot_best:.3f}** | | | {t_ours:.0f} / {t_adv:.0f} | "
                             f"{t_cpu:.1f} |")
                summary.append(f"- {cat}, lossless: {tot_ours / tot_best:.3f} x the best "
                               f"re-packer's bytes per file (target <= 0.9); "
                               f"{tot_in / max(t_ours, 1e-9) / 1e6:.2f} MB/s of input on the "
                               f"loaded machine, {tot_in / max(t_cpu, 1e-9) / 1e6:.2f} MB per "
                               "CPU-second (x 2 on two idle cores when members run in "
                               "parallel; target >= 20 MB/s)")
            lines.append("")
        lossy = [lv for lv in levels if lv != "lossless"]
        for level in lossy:
            name = f"squeezer {level}"
            lines += [f"## {cat}: {level}", "",
                      f"| file | input | by hand | {name} | x by hand | render SSIM (ours / by "
                      "hand) | broken (ours / by hand) |",
                      "|---|---:|---:|---:|---:|---|---|"]
            tot_ours = tot_hand = 0
            ssim_worse = 0
            for r in part:
                ours = _get(r, name, "bytes")
                hand = _get(r, "by hand", "bytes")
                s_ours, s_hand = _get(r, name, "ssim"), _get(r, "by hand", "ssim")
                bad_hand = _get(r, "by hand", "broken")
                if ours:
                    grown += ours > r["bytes"]
                    broken_ours += bool(_get(r, name, "broken"))
                if ours and hand and not bad_hand:
                    tot_ours += ours
                    tot_hand += hand
                    if s_ours is not None and s_hand is not None and s_ours < s_hand - 1e-4:
                        ssim_worse += 1
                ratio = f"{ours / hand:.3f}" if ours and hand else "-"
                sss = (f"{s_ours:.4f}" if s_ours is not None else "-") + " / " + (
                    f"{s_hand:.4f}" if s_hand is not None else "-")
                lines.append(f"| {r['file']} | {_fmt(r['bytes'])} | {_fmt(hand)} | "
                             f"{_fmt(ours)} | {ratio} | {sss} | "
                             f"{_get(r, name, 'broken') or 'no'} / {(bad_hand or 'no')[:50]} |")
            if tot_hand:
                lines.append(f"| **total** (files the by-hand baseline did not break) | | "
                             f"{_fmt(tot_hand)} | {_fmt(tot_ours)} | "
                             f"**{tot_ours / tot_hand:.3f}** | {ssim_worse} files below | |")
                summary.append(f"- {cat}, {level}: {tot_ours / tot_hand:.3f} x the by-hand "
                               f"baseline's bytes (target <= 0.6 at medium); {ssim_worse} files "
                               "with a lower render SSIM than the baseline's")
            lines.append("")
    summary.append(f"- files grown: {grown}; squeezer outputs broken: {broken_ours}")
    if signed:
        summary.append("- signed packages the peers re-packed (their signature invalidated, so "
                       "counted as broken; Squeezer returns them byte-identical unless "
                       "`archive.drop_signatures`): " + ", ".join(signed))
    ran = {r["file"] for r in rows}
    missing = [f"{cat}/{p.name}" for cat, p in corpus(None) if p.name not in ran]
    if missing:
        summary.append(f"- corpus files not in these tables (run stopped at its deadline, or "
                       f"left out by --only): {len(missing)}: "
                       + ", ".join(missing))
    return "\n".join(lines[:head] + ["## Summary", ""] + summary + [""] + lines[head:]) + "\n"


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    main()
