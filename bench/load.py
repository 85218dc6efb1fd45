#!/usr/bin/env python
"""Load test of a multi-process deployment (``deploy/local-cluster``): jobs/s and latency.

A bounded asyncio client on loopback drives the cluster's two API processes
(round robin) with a mix of operations, at rising arrival rates, and stops by
itself.  Each operation is timed from its first byte sent to its result being
available:

- ``sync``: ``POST /v1/compress`` with a tiny PDF (multipart) — the answer is the result;
- ``poll``: upload (``POST /v1/files``) a 1 MB PDF or an image, ``POST /v1/jobs``, then
  long polls (``GET /v1/jobs/{id}?wait=20``) until it ends;
- ``url``: a job whose input is fetched by URL from a file server in this process;
- ``webhook``: a job with a webhook to a receiver in this process: done when it is called;
- ``large``: a 30 MB PDF (one per rate step: the cluster's big-file path).

Then, with ``--queue N``: N jobs queued with no worker running (enqueue rate,
``/metrics`` and ``GET /v1/jobs/{id}`` latency at that depth), workers
started, and how fast they pick up and drain from the deep queue.

    nice -n 10 .venv/bin/python bench/load.py --workers 1,2,3 --rates 2,4,8 --queue 10000
    nice -n 10 .venv/bin/python bench/load.py --workers 2 --rates 2 --step-seconds 20  # quick

Writes ``bench/results/load.md`` (and ``.json``).  Numbers are as measured on the machine
the cluster shares with everything else (see the machine line); compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
CLUSTER = ROOT / "deploy" / "local-cluster"
MAX_IN_FLIGHT = 64
#: operation mix per arrival (weights)
MIX = {"sync": 45, "poll": 20, "url": 15, "webhook": 15, "image": 5}


# --- inputs and the local file server / webhook receiver ----------------------------------


def make_inputs(root: Path) -> dict[str, Path]:
    import numpy as np
    import pdfgen
    from PIL import Image

    files = {"tiny": root / "tiny.pdf", "1mb": root / "one-mb.pdf", "30mb": root / "thirty.pdf",
             "png": root / "photo.png"}
    pdfgen.text_pdf(files["tiny"], pages=1, lines=5)
    pdfgen.photo_pdf(files["1mb"], width=1400, height=1000)
    pixels = (np.random.default_rng(1).random((300, 400, 3)) * 90 + 80).astype("uint8")
    Image.fromarray(pixels).save(files["png"])
    _big_pdf(files["30mb"], 30 << 20)
    return files


def _big_pdf(path: Path, size: int) -> None:
    """A ~``size`` PDF: pages of uncompressed noise images (the engine re-encodes them)."""
    import numpy as np
    import pikepdf

    pdf = pikepdf.new()
    rng = np.random.default_rng(3)
    per_page = 1200 * 900 * 3
    for _ in range(max(1, size // per_page)):
        pixels = (rng.random((900, 1200, 3)) * 60 + 100).astype("uint8")
        image = pikepdf.Stream(pdf, pixels.tobytes(), Type=pikepdf.Name.XObject,
                               Subtype=pikepdf.Name.Image, Width=1200, Height=900,
                               ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=[0, 0, 612, 459],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
            Contents=pdf.make_stream(b"q 612 0 0 459 0 0 cm /Im0 Do Q"))
        pdf.pages.append(pikepdf.Page(page))
    pdf.save(path, compress_streams=False)


class Peers:
    """A file server (``GET /<name>``) and a webhook receiver (``POST /hook``) on loopback."""

    def __init__(self, files: dict[str, Path]) -> None:
        self.files = files
        self.hooks: dict[str, list[str]] = defaultdict(list)  # job id -> webhook-ids
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        peers = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                path = peers.files.get(self.path.strip("/"))
                if path is None:
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Type", "application/pdf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    job_id = json.loads(body).get("id", "")
                except ValueError:
                    job_id = ""
                with peers.lock:
                    peers.hooks[job_id].append(self.headers.get("webhook-id", ""))
                    peers.arrived.setdefault(job_id, time.monotonic())
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


# --- the cluster ----------------------------------------------------------------------------


class Cluster:
    def __init__(self, root: Path, workers: int) -> None:
        self.root = root
        env = {**os.environ, "PYTHON": sys.executable, "SQUEEZER_RATE_LIMIT": "0",
               "SQUEEZER_STALLED_SECONDS": "10", "SQUEEZER_SWEEP_SECONDS": "5"}
        self.env = env
        out = subprocess.run([str(CLUSTER), "up", "--dir", str(root), "--workers", str(workers)],
                             env=env, capture_output=True, text=True, timeout=600)
        if out.returncode:
            raise SystemExit(f"local-cluster up failed:\n{out.stdout}\n{out.stderr[-3000:]}")
        self.apis = re.findall(r"^api: (\S+)$", out.stdout, re.MULTILINE)
        proxy = re.search(r"^proxy: (\S+)$", out.stdout, re.MULTILINE)
        #: haproxy in front of the APIs, when deploy/local-cluster started one
        self.proxy = proxy.group(1) if proxy else None
        #: where clients send requests: the proxy, or the API processes in turn
        self.entry = [self.proxy] if self.proxy else self.apis
        self.key = re.search(r"^key: (\S+)$", out.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
        self.state = json.loads((root / "cluster.json").read_text())

    def reload(self) -> None:
        self.state = json.loads((self.root / "cluster.json").read_text())

    def add_workers(self, count: int) -> None:
        subprocess.run([str(CLUSTER), "add-worker", "--dir", str(self.root), "--count",
                        str(count)], env=self.env, check=True, capture_output=True)
        self.reload()

    def down(self) -> None:
        subprocess.run([str(CLUSTER), "down", "--dir", str(self.root)], env=self.env,
                       capture_output=True, timeout=600)

    def pids(self, kind: str) -> list[int]:
        return [p["pid"] for p in self.state["processes"] if p.get("kind") == kind]


# --- operations -----------------------------------------------------------------------------


@dataclass
class Result:
    kind: str
    ok: bool
    seconds: float
    status: str = ""  # the failing HTTP status or error code
    job_id: str = ""


@dataclass
class Client:
    apis: list[str]
    key: str
    files: dict[str, Path]
    peers: Peers
    http: httpx.AsyncClient = field(init=False)
    turn: int = 0
    #: job ids the service accepted (201/202/200), for the faults' "nothing lost" check
    accepted: dict[str, str] = field(default_factory=dict)
    #: what the client saw before retrying: connection failures, 503s with/without Retry-After
    events: Counter = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(headers={"Authorization": f"Bearer {self.key}"},
                                      timeout=httpx.Timeout(120, connect=5),
                                      limits=httpx.Limits(max_connections=MAX_IN_FLIGHT * 2))
        self.blobs = {name: path.read_bytes() for name, path in self.files.items()}

    def api(self) -> str:
        self.turn += 1
        return self.apis[self.turn % len(self.apis)]

    async def request(self, method: str, path: str, **kw) -> httpx.Response:
        """One request, retried on another API process when this one does not answer or
        answers 503 (what a load balancer does); at most 30 s of retrying."""
        deadline = time.monotonic() + 30
        while True:
            base = self.api()
            try:
                r = await self.http.request(method, base + path, **kw)
            except httpx.TransportError as exc:
                self.events[f"connection: {type(exc).__name__}"] += 1
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)
                continue
            if r.status_code >= 500:
                retry = "with Retry-After" if r.headers.get("retry-after") else "no Retry-After"
                self.events[f"{r.status_code} {retry}"] += 1
            if r.status_code == 503 and time.monotonic() < deadline:
                await asyncio.sleep(min(5.0, float(r.headers.get("retry-after", "1") or 1)))
                continue
            return r

    async def run(self, kind: str) -> Result:
        started = time.monotonic()
        try:
            job_id = await getattr(self, "_" + kind)()
            return Result(kind, True, time.monotonic() - started, job_id=job_id or "")
        except OpError as exc:
            return Result(kind, False, time.monotonic() - started, exc.status, exc.job_id)
        except httpx.HTTPError as exc:
            return Result(kind, False, time.monotonic() - started, type(exc).__name__)

    async def _sync(self) -> str:
        # an Idempotency-Key: a POST retried on the other API process is the same request
        r = await self.request("POST", "/v1/compress",
                               files={"file": ("tiny.pdf", self.blobs["tiny"], "application/pdf")},
                               headers={"Idempotency-Key": uuid.uuid4().hex})
        if r.status_code == 202:
            return await self._poll_job(r.json()["id"])
        if r.status_code != 200:
            raise OpError(str(r.status_code))
        self.accepted[r.json()["id"]] = "sync"
        return r.json()["id"]

    async def _upload(self, name: str) -> str:
        r = await self.request("POST", "/v1/files",
                               files={"file": (self.files[name].name, self.blobs[name])})
        if r.status_code != 201:
            raise OpError(str(r.status_code))
        return r.json()["id"]

    async def _submit(self, body: dict, kind: str = "job") -> str:
        r = await self.request("POST", "/v1/jobs", json=body,
                               headers={"Idempotency-Key": uuid.uuid4().hex})
        if r.status_code not in (200, 201, 202):
            raise OpError(str(r.status_code))
        job_id = r.json()["id"]
        self.accepted[job_id] = kind
        return job_id

    async def _poll_job(self, job_id: str, limit: float = 600) -> str:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            r = await self.request("GET", f"/v1/jobs/{job_id}", params={"wait": 20})
            if r.status_code != 200:
                raise OpError(str(r.status_code), job_id)
            state = r.json()["state"]
            if state == "succeeded":
                return job_id
            if state in ("failed", "cancelled"):
                raise OpError((r.json().get("error") or {}).get("code", state), job_id)
        raise OpError("timeout", job_id)

    async def _poll(self) -> str:
        file_id = await self._upload("1mb")
        return await self._poll_job(await self._submit({"input": {"file_id": file_id}}))

    async def _image(self) -> str:
        file_id = await self._upload("png")
        return await self._poll_job(await self._submit({"input": {"file_id": file_id}}))

    async def _large(self) -> str:
        file_id = await self._upload("30mb")
        return await self._poll_job(await self._submit({"input": {"file_id": file_id}}), 1800)

    async def _url(self) -> str:
        name = random.choice(["tiny", "1mb"])
        return await self._poll_job(await self._submit(
            {"input": {"url": f"{self.peers.url}/{name}"}}))

    async def _webhook(self) -> str:
        file_id = await self._upload("tiny")
        job_id = await self._submit({"input": {"file_id": file_id},
                                     "webhook": {"url": self.peers.url + "/hook"}}, "webhook")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            if job_id in self.peers.arrived:
                return job_id
            await asyncio.sleep(0.05)
        raise OpError("webhook_timeout", job_id)


class OpError(Exception):
    def __init__(self, status: str, job_id: str = "") -> None:
        super().__init__(status)
        self.status, self.job_id = status, job_id


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def rate_step(client: Client, rate: float, seconds: float, large: bool) -> dict:
    """Arrivals at ``rate``/s for ``seconds`` (Poisson), at most MAX_IN_FLIGHT at once; waits
    for every started operation (bounded by the operations' own deadlines)."""
    kinds, weights = zip(*MIX.items(), strict=True)
    tasks: list[asyncio.Task[Result]] = []
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    shed = 0

    async def one(kind: str) -> Result:
        async with gate:
            return await client.run(kind)

    started = time.monotonic()
    if large:
        tasks.append(asyncio.create_task(one("large")))
    while time.monotonic() - started < seconds:
        await asyncio.sleep(random.expovariate(rate))
        if gate.locked() and len(tasks) - sum(t.done() for t in tasks) > 2 * MAX_IN_FLIGHT:
            shed += 1
            continue
        tasks.append(asyncio.create_task(one(random.choices(kinds, weights)[0])))
    results = await asyncio.gather(*tasks)
    wall = time.monotonic() - started
    done = [r for r in results if r.ok]
    small = [r.seconds for r in done if r.kind != "large"]
    return {
        "rate": rate, "offered": len(results), "shed": shed, "ok": len(done),
        "failed": len(results) - len(done), "wall": wall,
        "jobs_per_s": len(done) / wall,
        "p50": pct(small, .5), "p95": pct(small, .95), "p99": pct(small, .99),
        "by_kind": {k: {"n": len(v), "p50": pct(v, .5), "p95": pct(v, .95)}
                    for k, v in _group(done).items()},
        "errors": dict(Counter(r.status for r in results if not r.ok)),
    }


def _group(results: list[Result]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in results:
        out[r.kind].append(r.seconds)
    return out


# --- the deep queue ---------------------------------------------------------------------------


async def deep_queue(cluster: Cluster, client: Client, n: int, workers: int) -> dict:
    """``n`` jobs queued with no worker, then ``workers`` started: enqueue, reads, pickup."""
    file_id = await client._upload("tiny")
    gate = asyncio.Semaphore(32)
    ids: list[str] = []

    async def submit() -> None:
        async with gate:
            ids.append(await client._submit({"input": {"file_id": file_id}}))

    started = time.monotonic()
    await asyncio.gather(*(submit() for _ in range(n)))
    enqueue_s = time.monotonic() - started

    async def timed(path: str, **kw) -> float:
        t = time.monotonic()
        r = await client.request("GET", path, **kw)
        assert r.status_code == 200, r.text
        return time.monotonic() - t

    metrics = [await timed("/metrics") for _ in range(10)]
    reads = [await timed(f"/v1/jobs/{random.choice(ids)}") for _ in range(30)]
    depth = _queue_depth(await (await client.request("GET", "/metrics")).aread())

    cluster.add_workers(workers)
    t0 = time.monotonic()
    first = None
    finished: list[tuple[float, int]] = []
    while time.monotonic() - t0 < 150:
        await asyncio.sleep(2)
        text = (await client.request("GET", "/metrics")).text
        done = _state(text, "succeeded") + _state(text, "failed")
        if first is None and (done or _state(text, "running")):
            first = time.monotonic() - t0
        finished.append((time.monotonic() - t0, done))
    # drain rate over the window after the first pickup (the workers' start-up excluded)
    window = [(t, d) for t, d in finished if first is not None and t >= first + 10]
    rate = ((window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
            if len(window) >= 2 and window[-1][0] > window[0][0] else 0.0)
    return {"jobs": n, "enqueue_s": enqueue_s, "enqueue_rate": n / enqueue_s,
            "depth": depth, "metrics_p50": pct(metrics, .5) * 1000,
            "metrics_p95": pct(metrics, .95) * 1000, "read_p50": pct(reads, .5) * 1000,
            "read_p95": pct(reads, .95) * 1000, "first_pickup_s": first,
            "drain_rate": rate, "workers": workers, "drained": finished[-1][1] if finished else 0}


def _state(metrics: str, state: str) -> int:
    m = re.search(rf'^squeezer_jobs{{state="{state}"}} (\d+)', metrics, re.MULTILINE)
    return int(m.group(1)) if m else 0


def _queue_depth(metrics: bytes) -> int:
    m = re.search(rb"^squeezer_queue_depth (\d+)", metrics, re.MULTILINE)
    return int(m.group(1)) if m else -1


# --- main ---------------------------------------------------------------------------------------


async def run_load(args: argparse.Namespace, files: dict[str, Path], peers: Peers,
                   tmp: Path) -> tuple[list[dict], dict | None]:
    rows: list[dict] = []
    for workers in args.workers:
        print(f"cluster with {workers} worker(s)", flush=True)
        cluster = Cluster(tmp / f"cluster-{workers}", workers)
        args.front = " behind haproxy" if cluster.proxy else " (the client alternates)"
        try:
            client = Client(cluster.entry, cluster.key, files, peers)
            for i, rate in enumerate(args.rates):
                row = await rate_step(client, rate, args.step_seconds, large=i == len(args.rates) - 1)
                row["workers"] = workers
                rows.append(row)
                print(f"  {rate:g}/s offered: {row['ok']}/{row['offered']} ok, "
                      f"{row['jobs_per_s']:.2f} jobs/s, p50 {row['p50']:.2f} s p95 "
                      f"{row['p95']:.2f} s p99 {row['p99']:.2f} s, errors {row['errors']}",
                      flush=True)
            await client.http.aclose()
        finally:
            cluster.down()
    deep = None
    if args.queue:
        print(f"deep queue: {args.queue} jobs", flush=True)
        cluster = Cluster(tmp / "cluster-queue", 0)
        try:
            client = Client(cluster.entry, cluster.key, files, peers)
            deep = await deep_queue(cluster, client, args.queue, max(args.workers))
            print(f"  {deep}", flush=True)
            await client.http.aclose()
        finally:
            cluster.down()
    return rows, deep


def machine() -> str:
    cpu = "?"
    with open("/proc/cpuinfo") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True, check=False).stdout.strip()
    return f"{os.cpu_count()} CPUs ({cpu}), load average at start {load}, commit {commit}"


def report(args: argparse.Namespace, rows: list[dict], deep: dict | None, about: str,
           started: str) -> str:
    out = ["# Load test: deploy/local-cluster", "",
           (f"`bench/load.py` run {started} on {about}. The cluster: Debian PostgreSQL 15, "
            f"moto's S3 server, 2 API processes{args.front}, N worker processes, all on this "
            "machine with the client; the machine is shared with other work, so compare rows "
            "of this run, not absolute numbers with other runs."), "",
           (f"Arrivals are Poisson at the offered rate for {args.step_seconds:g} s per step "
            f"(at most {MAX_IN_FLIGHT} operations in flight); mix "
            + ", ".join(f"{k} {v} %" for k, v in MIX.items())
            + "; the last step of each cluster adds one 30 MB PDF. Latency: first byte sent "
              "to result available (sync: the answer; poll/url/image: the long poll that sees "
              "it end; webhook: the delivery), 30 MB excluded."), "",
           "| workers | offered /s | operations | ok | failed | jobs/s done | p50 s | p95 s "
           "| p99 s | errors |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        out.append(f"| {r['workers']} | {r['rate']:g} | {r['offered']} | {r['ok']} | "
                   f"{r['failed']} | {r['jobs_per_s']:.2f} | {r['p50']:.2f} | {r['p95']:.2f} | "
                   f"{r['p99']:.2f} | {r['errors'] or ''} |")
    out += ["", "Per operation (p50 / p95 s):", "",
            "| workers | offered /s | " + " | ".join([*MIX, "large"]) + " |",
            "|---:|---:|" + "---:|" * (len(MIX) + 1)]
    for r in rows:
        cells = []
        for kind in [*MIX, "large"]:
            k = r["by_kind"].get(kind)
            cells.append(f"{k['p50']:.2f} / {k['p95']:.2f} (n={k['n']})" if k else "")
        out.append(f"| {r['workers']} | {r['rate']:g} | " + " | ".join(cells) + " |")
    if deep:
        out += ["", f"## {deep['jobs']} queued jobs", "",
                (f"{deep['jobs']} tiny-PDF jobs submitted through the APIs (`POST /v1/jobs`, "
                 f"32 at once) with no worker running, then {deep['workers']} workers "
                 "started."), "",
                "| enqueued/s | queue depth seen | /metrics p50 / p95 ms | GET job p50 / p95 ms "
                "| first pickup after workers start (s) | drain jobs/s (from the deep queue) |",
                "|---:|---:|---:|---:|---:|---:|",
                f"| {deep['enqueue_rate']:.0f} | {deep['depth']} | {deep['metrics_p50']:.0f} / "
                f"{deep['metrics_p95']:.0f} | {deep['read_p50']:.0f} / {deep['read_p95']:.0f} | "
                f"{_seconds(deep['first_pickup_s'])} | {deep['drain_rate']:.2f} |"]
    return "\n".join(out) + "\n"


def _seconds(value: float | None) -> str:
    return "none" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="1,2,3",
                        type=lambda s: [int(x) for x in s.split(",")])
    parser.add_argument("--rates", default="2,4,8",
                        type=lambda s: [float(x) for x in s.split(",")])
    parser.add_argument("--step-seconds", type=float, default=40.0)
    parser.add_argument("--queue", type=int, default=0, help="jobs for the deep-queue run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.md")
    args = parser.parse_args()
    args.front = ""
    random.seed(7)
    about = machine()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"load: {about}", flush=True)
    with tempfile.TemporaryDirectory(prefix="squeezer-load-") as tmp_name:
        tmp = Path(tmp_name)
        files = make_inputs(tmp)
        peers = Peers(files)
        try:
            rows, deep = asyncio.run(run_load(args, files, peers, tmp))
        finally:
            peers.close()
            with contextlib.suppress(Exception):
                for d in tmp.glob("cluster-*"):
                    subprocess.run([str(CLUSTER), "down", "--dir", str(d)], capture_output=True,
                                   check=False)
    text = report(args, rows, deep, about, started)
    args.out.write_text(text)
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "deep": deep},
                                                        indent=1, default=str))
    print(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
