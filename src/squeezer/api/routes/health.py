"""``/healthz``, ``/readyz`` and ``/metrics``: for load balancers, orchestrators and Prometheus.

``/healthz`` says the process answers; ``/readyz`` says it can do work (the
database answers, the blob store answers, and at least one worker has
heart-beaten recently) and names what is missing with a 503; ``/metrics``
is the Prometheus text format, computed from the database so that every API
process reports the same cluster-wide numbers.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from squeezer.api.state import ApiServices, services
from squeezer.db import jobs as rows

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict:
    return {"status": "ok"}


async def _live_workers(svc: ApiServices) -> int:
    """Worker *processes* with a recent heartbeat (each runs several Procrastinate workers,
    :data:`~squeezer.jobs.worker.QUEUE_WORKERS_PER_PROCESS`, each with a heartbeat row)."""
    from squeezer.jobs.worker import QUEUE_WORKERS_PER_PROCESS

    async with svc.connection() as conn:
        cur = await conn.execute(
            "select count(*) from procrastinate_workers "
            "where last_heartbeat > now() - make_interval(secs => %s)",
            (svc.config.workers.stalled_seconds,),
        )
        row = await cur.fetchone()
    rows = int(row[0]) if row else 0
    return -(-rows // QUEUE_WORKERS_PER_PROCESS)


@router.get("/readyz", summary="The database, the blob store and a worker are there")
async def readyz(svc: ApiServices = Depends(services)) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        async with svc.connection() as conn:
            await conn.execute("select 1")
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        await svc.store.exists("health/probe")
        checks["storage"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["storage"] = f"unavailable: {type(exc).__name__}"
    if checks["database"] == "ok":
        try:
            workers = await _live_workers(svc)
            checks["workers"] = "ok" if workers else "no worker heartbeat"
        except Exception as exc:  # noqa: BLE001
            checks["workers"] = f"unknown: {type(exc).__name__}"
    else:
        checks["workers"] = "unknown: no database"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"status": "ready" if ready else "not ready", "checks": checks},
                        status_code=200 if ready else 503)


def _line(name: str, value: float, labels: dict[str, str] | None = None) -> str:
    label = ""
    if labels:
        label = "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    return f"{name}{label} {value:g}"


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def metrics(svc: ApiServices = Depends(services)) -> PlainTextResponse:
    async with svc.connection() as conn:
        by_state = await rows.counts_by_state(conn)
        cur = await conn.execute(
            """select count(*), coalesce(sum(extract(epoch from finished_at - started_at)), 0),
                      coalesce(sum((report->>'input_bytes')::bigint), 0),
                      coalesce(sum((report->>'output_bytes')::bigint), 0)
               from jobs where state = 'succeeded' and started_at is not null""")
        done, seconds, bytes_in, bytes_out = await cur.fetchone() or (0, 0, 0, 0)
        cur = await conn.execute(
            "select count(*) from procrastinate_jobs where status = 'todo'")
        depth = (await cur.fetchone() or (0,))[0]
        workers = await _live_workers(svc)
    out = ["# HELP squeezer_jobs Jobs by state.", "# TYPE squeezer_jobs gauge"]
    out += [_line("squeezer_jobs", n, {"state": state}) for state, n in by_state.items()]
    out += ["# HELP squeezer_job_duration_seconds Run time of succeeded jobs.",
            "# TYPE squeezer_job_duration_seconds summary",
            _line("squeezer_job_duration_seconds_count", done),
            _line("squeezer_job_duration_seconds_sum", float(seconds)),
            "# HELP squeezer_bytes_in_total Input bytes of succeeded jobs.",
            "# TYPE squeezer_bytes_in_total counter", _line("squeezer_bytes_in_total", bytes_in),
            "# HELP squeezer_bytes_out_total Output bytes of succeeded jobs.",
            "# TYPE squeezer_bytes_out_total counter",
            _line("squeezer_bytes_out_total", bytes_out),
            "# HELP squeezer_queue_depth Queue entries waiting for a worker.",
            "# TYPE squeezer_queue_depth gauge", _line("squeezer_queue_depth", depth),
            "# HELP squeezer_workers Workers with a recent heartbeat.",
            "# TYPE squeezer_workers gauge", _line("squeezer_workers", workers)]
    return PlainTextResponse("\n".join(out) + "\n",
                             media_type="text/plain; version=0.0.4; charset=utf-8")
