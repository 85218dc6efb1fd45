"""The service as an operator runs it: `squeezer serve` on S3 storage (moto's S3 server on
loopback), a worker SIGKILLed in the middle of a job, and a clean SIGTERM shutdown."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pdfgen
import pikepdf
import pytest
from servicefx import Service
from test_storage import BUCKET, s3_server  # noqa: F401 - the moto server fixture


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return found


def _worker_pids(service: Service) -> list[int]:
    pids = []
    for child in _children(service.server.proc.pid):
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in cmdline:
            pids.append(child)
    return pids


@pytest.fixture(scope="module")
def s3_service(tmp_path_factory, s3_server):  # noqa: F811 - the imported fixture
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        os.environ.pop(name, None)
    svc = Service(tmp_path_factory.mktemp("s3service"),
                  SQUEEZER_STORAGE_URL=f"s3://{BUCKET}/service",
                  SQUEEZER_S3_ENDPOINT=s3_server.endpoint,
                  AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_REGION="us-east-1")
    yield svc
    assert svc.stop() == 0, svc.server.tail()
    assert "squeezer: stopped" in svc.server.tail()


def test_the_service_keeps_its_blobs_in_s3(s3_service, s3_server, fx, tmp_path):  # noqa: F811
    with s3_service.client() as client, open(fx.photo(), "rb") as f:
        r = client.post("/v1/compress", files={"file": ("photo.pdf", f)})
        assert r.status_code == 200, r.text
        job = r.json()
        keys = {o["Key"] for o in s3_server.client.list_objects_v2(
            Bucket=BUCKET, Prefix="service/").get("Contents", [])}
        assert f"service/uploads/{job['input']['file_id']}" in keys
        assert f"service/results/{job['id']}/out.pdf" in keys
        assert not (s3_service.data / "blobs").exists()  # nothing went to the local disk
        out = tmp_path / "out.pdf"
        out.write_bytes(httpx.get(job["result"]["download_url"]).content)
        with pikepdf.open(out) as pdf:
            assert len(pdf.pages) == 1
        assert out.stat().st_size == job["result"]["output"]["size"] < fx.photo().stat().st_size


def test_a_job_survives_its_worker_being_killed(s3_service, tmp_path):
    big = tmp_path / "big.pdf"
    pdfgen.photo_pdf(big, width=7000, height=5000)  # several seconds of engine work
    with s3_service.client() as client:
        with open(big, "rb") as f:
            file_id = client.post("/v1/files", files={"file": ("big.pdf", f)}).json()["id"]
        job_id = client.post("/v1/jobs", json={"input": {"file_id": file_id},
                                               "options": {"preset": "high"}}).json()["id"]
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job_id}").json()["state"] != "running":
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.1)
        victims = _worker_pids(s3_service)
        assert victims, "no worker process found"
        for pid in victims:
            os.killpg(pid, signal.SIGKILL)  # the worker and its engine process
        assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "running"  # orphaned, not lost
        job = client.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
        while job["state"] == "running" and time.monotonic() < deadline + 120:
            job = client.get(f"/v1/jobs/{job_id}", params={"wait": 60}).json()
        assert job["state"] == "succeeded", job
        assert job["attempts"] == 2  # run once more by the restarted worker, and only once
        assert job["result"]["output"]["size"] < big.stat().st_size
        assert _worker_pids(s3_service) and set(_worker_pids(s3_service)).isdisjoint(victims)
