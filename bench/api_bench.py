#!/usr/bin/env python
"""HTTP service benchmark: API overhead, memory during a 1 GB upload, queue throughput.

Starts its own ``squeezer serve`` (temporary data directory, embedded
PostgreSQL, ``--workers N``) on a free port and measures:

(a) ``POST /v1/compress`` (multipart in, ``Accept: application/pdf``, the PDF
    back) against calling ``squeezer.engines.pdf.compress`` in-process on the
    same file and preset: p50/p95 latency with one client (overhead = the
    difference of the p50s) and requests/s with ``--concurrency`` clients.
    Files: a tiny one-page text PDF and a ~100 KB image PDF, preset lossless,
    so that the engine's own time does not hide the service's.
(b) the API process's resident memory (``VmRSS`` of the ``squeezer serve``
    process, which runs uvicorn; workers are separate processes) sampled every
    50 ms while a 1 GB multipart body, generated on the fly, streams to
    ``POST /v1/files``, and while it is downloaded back.
(c) the time to enqueue ``--jobs`` jobs (``squeezer.jobs.queue.submit_compress``
    straight against the database, several connections at once) and for the
    workers to drain them (each job a real compression of the tiny PDF in an
    isolated child process: the cheapest real job, not a no-op).

Prints a table per part and writes ``bench/results/api.md``.  Run by hand:

    .venv/bin/python bench/api_bench.py                       # everything (~10-15 min on 2 cores)
    .venv/bin/python bench/api_bench.py --parts a --requests 100
    .venv/bin/python bench/api_bench.py --parts c --jobs 2000 --out /tmp/api.md
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "pdf"
sys.path.insert(0, str(ROOT / "tests"))

TARGETS = {"overhead_ms": 10.0, "rps": 50.0, "rss_mb": 200.0}


# --- the server ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``squeezer serve`` in a temporary data directory; ``url``, ``key``, ``pid``."""

    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "SQUEEZER_DATA_DIR": str(self.data),
               "SQUEEZER_MAX_UPLOAD_BYTES": str(2 << 30)}
        env.pop("SQUEEZER_DATABASE_URL", None)
        self.stdout = (root / "serve.out").open("wb")
        self.stderr = (root / "serve.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "squeezer", "serve", "--port", str(self.port),
             "--workers", str(workers), "--no-access-log", "--log-level", "warning"],
            env=env, stdout=self.stdout, stderr=self.stderr, start_new_session=True)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"squeezer serve exited: {(root / 'serve.log').read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise SystemExit("squeezer serve did not become ready in 120 s")
        match = re.search(r"(sqz_[A-Za-z0-9_-]{43})", (root / "serve.out").read_text())
        assert match, "no first-start key printed"
        self.key = match.group(1)
        self.headers = {"Authorization": f"Bearer {self.key}"}

    def database_url(self):
        from squeezer.db import open_database

        return open_database(None, self.data)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds of the process and of its reaped children)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[1]), sum(int(x) for x in fields[11:15]) / tick


def _kind(pid: int) -> str:
    """Which part of the service a process is, from its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return "gone"
    text = b" ".join(argv)
    if b"postgres" in argv[0]:
        return "PostgreSQL"
    if b"forkserver" in text or b"resource_tracker" in text:
        return "engine children (forkserver)"
    if b" worker" in text:
        return "workers"
    return "API (uvicorn)"


def service_cpu(server: Server) -> dict[str, float]:
    """CPU seconds used so far by the service, by part: ``squeezer serve`` (the API) and
    everything below it (workers, forkserver, engine children) plus the embedded
    PostgreSQL's processes.  (A process's reaped children count with it.)

    Unlike wall-clock latency this hardly moves with other people's load on a shared machine,
    so CPU ms per request is the number to compare between runs.
    """
    roots = {server.pid}
    pidfile = server.data / "postgres" / "postmaster.pid"
    if pidfile.is_file():
        roots.add(int(pidfile.read_text().split()[0]))
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (st := _stat(int(entry))) is not None:
            stats[int(entry)] = st
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total: dict[str, float] = {}
    todo, seen = list(roots), set()
    while todo:
        pid = todo.pop()
        if pid in seen or pid not in stats:
            continue
        seen.add(pid)
        kind = _kind(pid)
        total[kind] = total.get(kind, 0.0) + stats[pid][1]
        todo += children.get(pid, [])
    return total


def _minus(after: dict[str, float], before: dict[str, float], n: int) -> dict[str, float]:
    return {k: (v - before.get(k, 0.0)) / n for k, v in after.items()}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The peak (and samples) of a process's VmRSS, read every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss_mb(self.pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak(self) -> float:
        return max(self.samples, default=0.0)


# --- inputs -------------------------------------------------------------------------------


def make_inputs(root: Path) -> dict[str, Path]:
    import pdfgen

    tiny = root / "tiny.pdf"
    pdfgen.text_pdf(tiny, pages=1, lines=5)
    inputs = {"tiny text PDF": tiny}
    medium = CORPUS / "pikepdf__congress-gray.pdf"
    if not medium.is_file():  # ~100 KB: a small grayscale photo page
        medium = root / "medium.pdf"
        pdfgen.photo_pdf(medium, width=600, height=450)
    inputs["~100 KB image PDF"] = medium
    return inputs


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- (a) sync compressions ------------------------------------------------------------------


def direct_times(src: Path, out: Path, n: int) -> tuple[list[float], float]:
    """Wall seconds of each in-process compression, and the CPU seconds of one (mean)."""
    from squeezer.engines.options import Options
    from squeezer.engines.pdf import compress

    options = Options(level="lossless")
    for _ in range(3):
        compress(src, out, options)
    times = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        compress(src, out, options)
        times.append(time.perf_counter() - started)
    return times, (time.process_time() - cpu) / n


def api_times(server: Server, src: Path, n: int, concurrency: int) -> tuple[list[float], float]:
    """``n`` requests from ``concurrency`` clients; per-request seconds and the wall time."""
    data = src.read_bytes()
    per_client = [n // concurrency + (1 if i < n % concurrency else 0) for i in range(concurrency)]

    def client(count: int) -> list[float]:
        times = []
        with httpx.Client(base_url=server.url, headers={**server.headers,
                                                        "Accept": "application/pdf"},
                          timeout=120) as http:
            for _ in range(count):
                started = time.perf_counter()
                r = http.post("/v1/compress", files={"file": (src.name, data, "application/pdf")},
                              data={"preset": "lossless"})
                times.append(time.perf_counter() - started)
                if r.status_code != 200 or not r.content.startswith(b"%PDF"):
                    raise SystemExit(f"POST /v1/compress: {r.status_code} {r.text[:300]}")
        return times

    client(3)  # warm-up: connections, the workers' first engine import
    started = time.perf_counter()
    with futures.ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(client, per_client))
    wall = time.perf_counter() - started
    return [t for r in results for t in r], wall


def part_a(server: Server, root: Path, requests: int, concurrency: int,
           only: str = "") -> list[dict]:
    rows = []
    for label, src in make_inputs(root).items():
        if only and only not in label:
            continue
        direct, direct_cpu = direct_times(src, root / "direct-out.pdf", max(20, requests // 4))
        single, _ = api_times(server, src, max(20, requests // 4), 1)
        before = service_cpu(server)
        many, wall = api_times(server, src, requests, concurrency)
        parts = _minus(service_cpu(server), before, len(many))
        cpu = sum(parts.values())
        rows.append({
            "file": f"{label} ({src.stat().st_size / 1000:.1f} kB)",
            "direct_p50": statistics.median(direct) * 1000, "direct_p95": pct(direct, .95) * 1000,
            "api1_p50": statistics.median(single) * 1000, "api1_p95": pct(single, .95) * 1000,
            "overhead": (statistics.median(single) - statistics.median(direct)) * 1000,
            "apiN_p50": statistics.median(many) * 1000, "apiN_p95": pct(many, .95) * 1000,
            "rps": len(many) / wall, "direct_rps": 1 / statistics.median(direct),
            "cpu_ms": cpu * 1000, "direct_cpu_ms": direct_cpu * 1000,
            "cpu_rps": (os.cpu_count() or 1) / cpu if cpu else 0.0,
            "cpu_parts": {k: v * 1000 for k, v in parts.items()},
        })
        print(f"  {rows[-1]['file']}: overhead {rows[-1]['overhead']:.1f} ms p50, "
              f"{rows[-1]['rps']:.1f} req/s at concurrency {concurrency}, "
              f"{rows[-1]['cpu_ms']:.1f} CPU ms per request (engine alone "
              f"{rows[-1]['direct_cpu_ms']:.1f})", flush=True)
    return rows


# --- (b) memory during a 1 GB upload ------------------------------------------------------


def multipart_body(size: int, boundary: str) -> tuple[Iterator[bytes], int]:
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"big.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").encode()
    pdf_head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk = b"\0" * (1 << 20)

    def body() -> Iterator[bytes]:
        yield head + pdf_head
        left = size - len(pdf_head)
        while left > 0:
            piece = chunk if left >= len(chunk) else chunk[:left]
            left -= len(piece)
            yield piece
        yield tail

    return body(), len(head) + size + len(tail)


def part_b(server: Server, size: int) -> dict:
    boundary = uuid.uuid4().hex
    body, length = multipart_body(size, boundary)
    baseline = rss_mb(server.pid)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=600) as http:
        with RssSampler(server.pid) as up:
            started = time.perf_counter()
            r = http.post("/v1/files", content=body, headers={
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                "Content-Length": str(length)})
            upload_s = time.perf_counter() - started
        if r.status_code != 201 or r.json()["size"] != size:
            raise SystemExit(f"POST /v1/files: {r.status_code} {r.text[:300]}")
        file_id = r.json()["id"]
        with RssSampler(server.pid) as down:
            started = time.perf_counter()
            got = 0
            with http.stream("GET", f"/v1/files/{file_id}/content") as resp:
                for piece in resp.iter_raw(1 << 20):
                    got += len(piece)
            download_s = time.perf_counter() - started
        http.delete(f"/v1/files/{file_id}")
    assert got == size, (got, size)
    row = {"size_mb": size / 1e6, "baseline": baseline, "upload_peak": up.peak,
           "upload_s": upload_s, "upload_mbs": size / 1e6 / upload_s,
           "download_peak": down.peak, "download_s": download_s,
           "download_mbs": size / 1e6 / download_s, "samples": len(up.samples)}
    print(f"  upload {row['upload_mbs']:.0f} MB/s, API RSS {baseline:.0f} -> peak "
          f"{row['upload_peak']:.0f} MB; download peak {row['download_peak']:.0f} MB", flush=True)
    return row


# --- (c) enqueue and drain ------------------------------------------------------------------


async def _enqueue(url: str, key_id: uuid.UUID, file_id: uuid.UUID, n: int,
                   connections: int) -> float:
    import psycopg

    from squeezer.jobs.queue import make_app, submit_compress

    app = make_app(url)
    async with app.open_async():
        conns = [await psycopg.AsyncConnection.connect(url, autocommit=True)
                 for _ in range(connections)]

        async def submit_many(conn, count: int) -> None:
            for _ in range(count):
                await submit_compress(app, conn, key_id=key_id, input_file_id=file_id,
                                      input_name="tiny.pdf", options={"preset": "lossless"},
                                      ttl=timedelta(hours=2))

        shares = [n // connections + (1 if i < n % connections else 0)
                  for i in range(connections)]
        started = time.perf_counter()
        await asyncio.gather(*(submit_many(c, k) for c, k in zip(conns, shares, strict=True)))
        elapsed = time.perf_counter() - started
        for conn in conns:
            await conn.close()
    return elapsed


def _counts(url: str) -> dict[str, int]:
    import psycopg

    with psycopg.connect(url) as conn:
        return dict(conn.execute("select state, count(*) from jobs group by state").fetchall())


def part_c(server: Server, root: Path, n: int, workers: int, timeout: float) -> dict:
    import pdfgen

    tiny = root / "queue-tiny.pdf"
    pdfgen.text_pdf(tiny, pages=1, lines=5)
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=60) as http:
        key_id = uuid.UUID(http.get("/v1/me").json()["id"])
        file_id = uuid.UUID(http.post("/v1/files", files={
            "file": ("tiny.pdf", tiny.read_bytes(), "application/pdf")}).json()["id"])
    db = server.database_url()
    try:
        before = _counts(db.url)
        done_before = before.get("succeeded", 0) + before.get("failed", 0)
        enqueue_s = asyncio.run(_enqueue(db.url, key_id, file_id, n, connections=4))
        print(f"  enqueued {n} jobs in {enqueue_s:.1f} s", flush=True)
        started = time.perf_counter()
        last_print = started
        while True:
            counts = _counts(db.url)
            finished = counts.get("succeeded", 0) + counts.get("failed", 0) - done_before
            waiting = counts.get("queued", 0) + counts.get("running", 0)
            now = time.perf_counter()
            if not waiting or now - started > timeout:
                break
            if now - last_print > 30:
                print(f"    {finished} done, {waiting} to go, "
                      f"{finished / (now - started):.1f} jobs/s", flush=True)
                last_print = now
            time.sleep(1.0)
        drain_s = time.perf_counter() - started
    finally:
        db.close()
    row = {"jobs": n, "enqueue_s": enqueue_s, "enqueue_rate": n / enqueue_s,
           "drained": finished, "drain_s": drain_s, "drain_rate": finished / drain_s,
           "failed": counts.get("failed", 0) - before.get("failed", 0), "left": waiting,
           "workers": workers}
    print(f"  drained {finished} in {drain_s:.0f} s ({row['drain_rate']:.1f} jobs/s), "
          f"{row['failed']} failed, {waiting} left", flush=True)
    return row


# --- the report ---------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return (f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, "
            f"load average at start {load}, commit {commit}")


def ok(flag: bool) -> str:
    return "yes" if flag else "**no**"


def report(args: argparse.Namespace, a: list[dict] | None, b: dict | None, c: dict | None,
           started: str, about: str) -> str:
    out = ["# API benchmark", "",
           f"`bench/api_bench.py` run {started} on {about}; `squeezer serve --workers "
           f"{args.workers}` with the embedded PostgreSQL, everything on the same machine "
           "(client, API, workers, database). The machine is shared with other people's test "
           "runs, so absolute numbers are noisy; rerun on an idle machine before quoting them.",
           ""]
    if a:
        out += ["## (a) Synchronous compressions: `POST /v1/compress` vs the engine in-process",
                "",
                f"Preset lossless, `Accept: application/pdf` (the PDF comes back in the same "
                f"answer). Latency with 1 client; throughput with {args.concurrency} clients, "
                f"{args.requests} requests. Overhead = API p50 − direct p50 "
                f"(target ≤ {TARGETS['overhead_ms']:.0f} ms); throughput target ≥ "
                f"{TARGETS['rps']:.0f} req/s.", "",
                "| file | direct p50 / p95 ms | API p50 / p95 ms (1 client) | overhead p50 ms | "
                f"API p50 / p95 ms ({args.concurrency} clients) | req/s | direct files/s (1 core) "
                "| targets met |",
                "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in a:
            met = r["overhead"] <= TARGETS["overhead_ms"] and r["rps"] >= TARGETS["rps"]
            out.append(f"| {r['file']} | {r['direct_p50']:.1f} / {r['direct_p95']:.1f} | "
                       f"{r['api1_p50']:.1f} / {r['api1_p95']:.1f} | {r['overhead']:.1f} | "
                       f"{r['apiN_p50']:.1f} / {r['apiN_p95']:.1f} | {r['rps']:.1f} | "
                       f"{r['direct_rps']:.1f} | {ok(met)} |")
        out += ["", "CPU per request: every process of the service (API, workers, forkserver, "
                "engine children, PostgreSQL) during the throughput run, divided by the "
                "requests; it moves far less with other load on the machine than latency "
                "does. Requests/s on idle cores = cores / CPU per request.", "",
                "| file | service CPU ms / request | engine alone CPU ms | service − engine | "
                f"req/s if {os.cpu_count()} idle cores |",
                "|---|---:|---:|---:|---:|"]
        for r in a:
            out.append(f"| {r['file']} | {r['cpu_ms']:.1f} | {r['direct_cpu_ms']:.1f} | "
                       f"{r['cpu_ms'] - r['direct_cpu_ms']:.1f} | {r['cpu_rps']:.0f} |")
        kinds = sorted({k for r in a for k in r["cpu_parts"]})
        out += ["", "Where the CPU goes (ms per request, by process):", "",
                "| file | " + " | ".join(kinds) + " |", "|---|" + "---:|" * len(kinds)]
        for r in a:
            out.append(f"| {r['file']} | "
                       + " | ".join(f"{r['cpu_parts'].get(k, 0.0):.1f}" for k in kinds) + " |")
        out.append("")
    if b:
        out += ["## (b) API memory while a 1 GB upload streams to `POST /v1/files`", "",
                f"VmRSS of the API process (`squeezer serve`, which runs uvicorn; workers are "
                f"other processes) sampled every 50 ms; target peak < {TARGETS['rss_mb']:.0f} MB.",
                "",
                "| body | RSS before | peak during upload | upload MB/s | peak during download "
                "| download MB/s | target met |",
                "|---:|---:|---:|---:|---:|---:|---|",
                f"| {b['size_mb']:.0f} MB | {b['baseline']:.0f} MB | {b['upload_peak']:.0f} MB | "
                f"{b['upload_mbs']:.0f} | {b['download_peak']:.0f} MB | {b['download_mbs']:.0f} | "
                f"{ok(b['upload_peak'] < TARGETS['rss_mb'])} |", ""]
    if c:
        out += ["## (c) Enqueue and drain", "",
                f"{c['jobs']} jobs enqueued with `squeezer.jobs.queue.submit_compress` (job row "
                "and queue entry in one transaction each, 4 connections); drained by "
                f"{c['workers']} worker processes, each job a real lossless compression of a "
                "1-page text PDF in an isolated child process.", "",
                "| jobs | enqueue s | enqueued/s | drained | drain s | drained jobs/s | failed "
                "| left when stopped |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|",
                f"| {c['jobs']} | {c['enqueue_s']:.1f} | {c['enqueue_rate']:.0f} | {c['drained']} "
                f"| {c['drain_s']:.0f} | {c['drain_rate']:.1f} | {c['failed']} | {c['left']} |",
                ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="abc", help="which parts to run (default abc)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--requests", type=int, default=200, help="(a) requests per file")
    parser.add_argument("--concurrency", type=int, default=4, help="(a) clients at once")
    parser.add_argument("--only", default="", help="(a) only the files whose label has this "
                        "(e.g. tiny)")
    parser.add_argument("--upload-bytes", type=int, default=1 << 30, help="(b) body size")
    parser.add_argument("--jobs", type=int, default=10_000, help="(c) jobs to enqueue")
    parser.add_argument("--drain-timeout", type=float, default=1800, help="(c) seconds")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "api.md")
    args = parser.parse_args()

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    about = machine()
    print(f"api_bench: {about}", flush=True)
    with tempfile.TemporaryDirectory(prefix="squeezer-api-bench-") as tmp:
        root = Path(tmp)
        server = Server(root, args.workers)
        a = b = c = None
        try:
            if "a" in args.parts:
                print("(a) sync compressions", flush=True)
                a = part_a(server, root, args.requests, args.concurrency, args.only)
            if "b" in args.parts:
                print("(b) 1 GB upload", flush=True)
                b = part_b(server, args.upload_bytes)
            if "c" in args.parts:
                print(f"(c) enqueue and drain {args.jobs} jobs", flush=True)
                c = part_c(server, root, args.jobs, args.workers, args.drain_timeout)
        finally:
            server.stop()
    text = report(args, a, b, c, started, about)
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
