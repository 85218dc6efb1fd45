#!/usr/bin/env python
"""Faults under load on ``deploy/local-cluster`` (``make chaos``): nothing accepted is lost.

A steady mixed load (bench/load.py's client: sync compressions, uploads with long
polls, fetch-by-URL, webhooks) runs against a 2-API, 3-worker cluster while, one
after another with a quiet spell between them:

1. a worker is killed with SIGKILL (it had a job in flight, most likely), and a new one started;
2. an API process is killed with SIGKILL, and started again 5 s later;
3. the reverse proxy in front of the APIs (haproxy, when installed) is killed with SIGKILL,
   and started again 5 s later;
4. PostgreSQL restarts (``pg_ctl restart -m fast``: every connection is cut);
5. the bucket stops answering for 30 s (the S3 server is SIGSTOPped, then continued);
6. a worker's temporary directory fills up (a 2 MB tmpfs, when this machine lets us mount one).

Then the client waits for every job the service accepted to end, and checks: every
accepted job ended (none lost), succeeded or failed with a named code; no job
has two webhook delivery ids or two result blobs; every request got an answer,
or a 503 with Retry-After, or a refused connection that a retry served.  The
client sends everything to the proxy (or, without one, to the API processes in
turn) and retries a refused connection or a 503 for up to 30 s with the same
Idempotency-Key.  Jobs that never ended are described from the database in the
report, and the cluster's logs are kept in ``--keep-logs`` when the run fails.  Writes ``bench/results/chaos.md``.

    nice -n 10 .venv/bin/python bench/chaos.py [--rate 3] [--quiet 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load

ROOT = load.ROOT
MIX = {"sync": 40, "poll": 20, "url": 15, "webhook": 25}


async def steady(client: load.Client, rate: float, stop: asyncio.Event,
                 results: list[load.Result]) -> None:
    kinds, weights = zip(*MIX.items(), strict=True)
    gate = asyncio.Semaphore(load.MAX_IN_FLIGHT)
    tasks = []

    async def one(kind: str) -> None:
        async with gate:
            results.append(await client.run(kind))

    while not stop.is_set():
        await asyncio.sleep(random.expovariate(rate))
        tasks.append(asyncio.create_task(one(random.choices(kinds, weights)[0])))
    await asyncio.gather(*tasks)


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False)


async def faults(cluster: load.Cluster, quiet: float, log: list[tuple[str, str]]) -> None:
    script = str(load.CLUSTER)
    d = str(cluster.root)

    def note(what: str, outcome: str = "done") -> None:
        log.append((what, outcome))
        print(f"  fault: {what}: {outcome}", flush=True)

    async def kill_and_restart(name: str, killed: str, restarted: str,
                               group: bool = False) -> None:
        """kill -9 the cluster's process ``name`` (its whole group: ``group``), then restart it."""
        process = next((p for p in cluster.state["processes"] if p["name"] == name), None)
        if process is None:
            return
        await asyncio.sleep(quiet)
        (os.killpg if group else os.kill)(process["pid"], signal.SIGKILL)
        note(killed)
        await asyncio.sleep(5)
        _run(script, "restart", name, "--dir", d)
        cluster.reload()
        note(restarted)

    await kill_and_restart("worker1", "kill -9 worker1 (and its engine children)",
                           "worker1 started again", group=True)
    await kill_and_restart("api1", "kill -9 api1", "api1 started again")
    await kill_and_restart("proxy", "kill -9 the reverse proxy (haproxy)",
                           "reverse proxy started again")

    await asyncio.sleep(quiet)
    pg = cluster.state["postgres"]
    started = time.monotonic()
    out = _run(*(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []),
               str(Path(pg["bindir"]) / "pg_ctl"), "-D", pg["data"], "-m", "fast", "-w",
               "-l", str(cluster.root / "logs" / "postgres.log"), "restart")
    note("PostgreSQL fast restart", f"exit {out.returncode}, {time.monotonic() - started:.1f} s")

    await asyncio.sleep(quiet)
    s3 = next(p for p in cluster.state["processes"] if p["name"] == "s3")
    os.kill(s3["pid"], signal.SIGSTOP)
    note("bucket stopped (SIGSTOP of the S3 server)")
    await asyncio.sleep(30)
    os.kill(s3["pid"], signal.SIGCONT)
    note("bucket back after 30 s")

    await asyncio.sleep(quiet)
    worker = next(p for p in cluster.state["processes"] if p["name"] == "worker2")
    tmp = Path(worker["cwd"]) / "tmp"
    mounted = _run("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(tmp))
    if mounted.returncode:
        note("temporary disk full", f"not run: cannot mount a tmpfs here ({mounted.stderr.strip()})")
    else:
        # restarted onto the empty tmpfs first: Python's tempfile passes over a TMPDIR it
        # cannot write at start (and uses /tmp), so the disk must fill under a running worker
        _run(script, "restart", "worker2", "--dir", d)
        cluster.reload()
        await asyncio.sleep(25)
        with contextlib.suppress(OSError), (tmp / "filler").open("wb") as filler:
            while True:
                filler.write(b"\0" * 65536)
        note("worker2's temporary disk full (2 MB tmpfs, filled under the running worker)")
        await asyncio.sleep(max(quiet, 45))
        worker = next(p for p in cluster.state["processes"] if p["name"] == "worker2")
        os.killpg(worker["pid"], signal.SIGKILL)
        _run("umount", "-l", str(tmp))
        _run(script, "restart", "worker2", "--dir", d)
        cluster.reload()
        note("worker2's temporary disk freed (worker restarted)")
    await asyncio.sleep(quiet)


async def verify(client: load.Client, peers: load.Peers, cluster: load.Cluster,
                 timeout: float) -> dict:
    """Wait for every accepted job to end; count outcomes, lost jobs and duplicates."""
    states: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    pending = set(client.accepted)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            r = await client.request("GET", f"/v1/jobs/{job_id}")
            if r.status_code != 200:
                states[job_id] = f"http {r.status_code}"
                pending.discard(job_id)
                continue
            body = r.json()
            if body["state"] in ("succeeded", "failed", "cancelled"):
                states[job_id] = body["state"] if body["state"] != "failed" else \
                    f"failed: {(body.get('error') or {}).get('code')}"
                pending.discard(job_id)
        if pending:
            await asyncio.sleep(2)
    await asyncio.sleep(5)  # late webhook deliveries
    hooks = {j: ids for j, ids in peers.hooks.items() if j in client.accepted}
    two_ids = sum(len(set(ids)) > 1 for ids in hooks.values())
    redelivered = sum(len(ids) > 1 for ids in hooks.values())
    webhook_jobs = [j for j, kind in client.accepted.items() if kind == "webhook"]
    # result blobs per job in the bucket (a job that ran twice must still have one)
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster.state["s3"]["endpoint"],
                      aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    per_job: Counter = Counter()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="squeezer",
                                                              Prefix="blobs/results/"):
        for obj in page.get("Contents", []):
            per_job[obj["Key"].split("/")[2]] += 1
    return {"accepted": len(client.accepted), "ended": Counter(states.values()),
            "lost": len(pending), "lost_rows": await _describe(cluster, sorted(pending)), "webhook_jobs": len(webhook_jobs),
            "webhooks_missing": sum(j not in hooks for j in webhook_jobs if
                                    states.get(j) == "succeeded"),
            "two_delivery_ids": two_ids, "redelivered_same_id": redelivered,
            "jobs_with_two_results": sum(n > 1 for n in per_job.values())}


async def _describe(cluster: load.Cluster, job_ids: list[str]) -> list[str]:
    """What the database says about jobs that never ended: their row and queue entries."""
    if not job_ids:
        return []
    import psycopg

    out = []
    async with await psycopg.AsyncConnection.connect(cluster.state["db_url"],
                                                     autocommit=True) as conn:
        for job_id in job_ids:
            row = await (await conn.execute(
                "select state, attempts, error_code, created_at, started_at from jobs "
                "where id = %s", (job_id,))).fetchone()
            queue = await (await conn.execute(
                "select p.id, p.status, p.attempts, (select string_agg(e.type::text, ',' "
                "order by e.at) from procrastinate_events e where e.job_id = p.id) "
                "from procrastinate_jobs p where p.args->>'job_id' = %s", (job_id,))).fetchall()
            out.append(f"{job_id}: row {row}; queue {queue}")
    return out


async def main_async(args: argparse.Namespace, tmp: Path) -> tuple[dict, list, list, Counter]:
    files = load.make_inputs(tmp)
    peers = load.Peers(files)
    cluster = load.Cluster(tmp / "cluster", 3)
    summary = None
    try:
        client = load.Client(cluster.entry, cluster.key, files, peers)
        results: list[load.Result] = []
        stop = asyncio.Event()
        log: list[tuple[str, str]] = []
        traffic = asyncio.create_task(steady(client, args.rate, stop, results))
        await faults(cluster, args.quiet, log)
        stop.set()
        await traffic
        summary = await verify(client, peers, cluster, args.drain)
        # what the service did to get there (jobs.queue.resume_orphans, retry_stalled)
        logs = "".join(f.read_text(errors="replace") for f in (cluster.root / "logs").glob("*.log"))
        summary["orphans_resumed"] = logs.count("its queue entry ended but the job did not")
        await client.http.aclose()
        return summary, log, results, client.events
    finally:
        if summary is None or summary["lost"] and args.keep_logs:
            shutil.rmtree(args.keep_logs, ignore_errors=True)
            shutil.copytree(cluster.root / "logs", args.keep_logs, dirs_exist_ok=True)
        cluster.down()
        peers.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=3.0, help="operations per second")
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds between faults")
    parser.add_argument("--drain", type=float, default=600.0, help="seconds to wait at the end")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "chaos.md")
    parser.add_argument("--keep-logs", type=Path, default=Path("/tmp/squeezer-chaos-logs"),
                        help="where the cluster's logs are copied when a job was lost")
    args = parser.parse_args()
    random.seed(11)
    about = load.machine()
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"chaos: {about}", flush=True)
    with tempfile.TemporaryDirectory(prefix="squeezer-chaos-") as name:
        summary, log, results, events = asyncio.run(main_async(args, Path(name)))
    ok = [r for r in results if r.ok]
    failed = Counter(r.status for r in results if not r.ok)
    passed = (summary["lost"] == 0 and summary["two_delivery_ids"] == 0
              and summary["jobs_with_two_results"] == 0 and summary["webhooks_missing"] == 0)
    lines = ["# Faults under load (make chaos)", "",
             (f"`bench/chaos.py` run {started} on {about}: a 2-API, 3-worker "
              f"`deploy/local-cluster`, {args.rate:g} operations/s ("
              + ", ".join(f"{k} {v} %" for k, v in MIX.items())
              + f"), faults {args.quiet:g} s apart. The client sends every request to "
                "haproxy in front of the two API processes and retries a refused connection "
                "or a 503 for up to 30 s with the same Idempotency-Key."),
             "", "| fault | outcome |", "|---|---|"]
    lines += [f"| {what} | {outcome} |" for what, outcome in log]
    lines += ["", "| check | result |", "|---|---|",
              f"| operations started / completed ok | {len(results)} / {len(ok)} |",
              f"| operations failed (client side, by reason) | {dict(failed) or 'none'} |",
              f"| jobs accepted by the service | {summary['accepted']} |",
              f"| accepted jobs, final states | {dict(summary['ended'])} |",
              f"| accepted jobs never finished (lost) | {summary['lost']} |",
              f"| webhook jobs / succeeded without a delivery | {summary['webhook_jobs']} / "
              f"{summary['webhooks_missing']} |",
              f"| jobs with two webhook delivery ids | {summary['two_delivery_ids']} |",
              f"| jobs whose one delivery id arrived more than once (retries) | "
              f"{summary['redelivered_same_id']} |",
              f"| jobs with two result blobs | {summary['jobs_with_two_results']} |",
              ("| jobs the sweep found with their queue entry ended (queued again) | "
               f"{summary['orphans_resumed']} |"),
              f"| what clients saw before a retry | {dict(events) or 'nothing'} |",
              f"| verdict | {'pass' if passed else '**fail**'} |", ""]
    if summary["lost_rows"]:
        lines += ["Jobs that never ended, as the database has them (row: state, attempts, "
                  "error, created, started; queue: id, status, attempts, events):", ""]
        lines += [f"- `{line}`" for line in summary["lost_rows"]] + [""]
    ok_lat = sorted(r.seconds for r in ok)
    if ok_lat:
        lines += [f"Latency of completed operations through the faults: p50 "
                  f"{load.pct(ok_lat, .5):.2f} s, p95 {load.pct(ok_lat, .95):.2f} s, max "
                  f"{ok_lat[-1]:.2f} s.", ""]
    text = "\n".join(lines)
    args.out.write_text(text)
    print(text)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
