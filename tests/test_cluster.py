"""The multi-process deployment: ``deploy/local-cluster`` (external PostgreSQL, an S3 server,
2 API and 3 worker processes sharing nothing but the network) runs jobs through both APIs.

Bringing the cluster up takes 20-60 s (PostgreSQL's initdb, six Python processes), so this
runs only when asked: ``make cluster-test`` (or ``SQUEEZER_CLUSTER_TESTS=1``).  It needs
Debian's ``postgresql`` package; without it the test is skipped with the reason.
"""

from __future__ import annotations

import glob
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pdfgen
import pikepdf
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "local-cluster"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.environ.get("SQUEEZER_CLUSTER_TESTS") != "1",
                       reason="starts a whole cluster (~1 min): make cluster-test"),
    pytest.mark.skipif(not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                       reason="needs Debian's postgresql package"),
]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster") / "c"
    env = {**os.environ, "PYTHON": sys.executable}
    up = subprocess.run([str(SCRIPT), "up", "--dir", str(root)], env=env, capture_output=True,
                        text=True, timeout=300)
    state = json.loads((root / "cluster.json").read_text()) if (root / "cluster.json").exists() \
        else {}
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        apis = re.findall(r"^api: (\S+)$", up.stdout, re.MULTILINE)
        key = re.search(r"^key: (sqz_\S+)$", up.stdout, re.MULTILINE)
        assert len(apis) == 2 and key, up.stdout
        proxy = re.search(r"^proxy: (\S+)$", up.stdout, re.MULTILINE)
        yield {"apis": apis, "key": key.group(1), "root": root, "state": state,
               "proxy": proxy.group(1) if proxy else None}
    finally:
        down = subprocess.run([str(SCRIPT), "down", "--dir", str(root)], env=env,
                              capture_output=True, text=True, timeout=300)
        pids = [p["pid"] for p in state.get("processes", [])]
        assert down.returncode == 0, down.stderr
        # nothing it started is left running
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in pids if _alive(pid)]
        assert not root.exists()


def test_jobs_run_through_both_apis_on_postgres_and_s3(cluster, tmp_path):
    src = tmp_path / "in.pdf"
    pdfgen.text_pdf(src, pages=3, lines=30)
    headers = {"Authorization": f"Bearer {cluster['key']}"}
    first, second = (httpx.Client(base_url=url, headers=headers, timeout=120)
                     for url in cluster["apis"])
    with first, second:
        # synchronous, through each API
        for api in (first, second):
            r = api.post("/v1/compress", files={"file": ("in.pdf", src.read_bytes())},
                         headers={"Accept": "application/pdf"})
            assert r.status_code == 200, r.text
            out = tmp_path / "sync.pdf"
            out.write_bytes(r.content)
            with pikepdf.open(out) as pdf:
                assert len(pdf.pages) == 3
            assert len(r.content) <= src.stat().st_size
        # asynchronous: uploaded to one API, queued there, watched and fetched through the other
        ids = []
        for _ in range(4):
            up = second.post("/v1/files", files={"file": ("in.pdf", src.read_bytes())})
            assert up.status_code == 201, up.text
            job = second.post("/v1/jobs", json={"input": {"file_id": up.json()["id"]},
                                                "options": {"level": "medium"}})
            assert job.status_code in (200, 201, 202), job.text
            ids.append(job.json()["id"])
        for job_id in ids:
            deadline = time.monotonic() + 120
            while True:
                body = first.get(f"/v1/jobs/{job_id}", params={"wait": 20}).json()
                if body["state"] not in ("queued", "running") or time.monotonic() > deadline:
                    break
            assert body["state"] == "succeeded", body
            result = first.get(f"/v1/files/{body['result']['output']['file_id']}/content")
            assert result.status_code == 200
            assert result.content.startswith(b"%PDF")
            assert len(result.content) == body["result"]["output"]["size"]
        metrics = second.get("/metrics").text
        assert 'squeezer_jobs{state="succeeded"}' in metrics
    if cluster["proxy"]:  # haproxy in front (when installed): links name it, not an API port
        with httpx.Client(base_url=cluster["proxy"], headers=headers, timeout=120) as front:
            r = front.post("/v1/compress", files={"file": ("in.pdf", src.read_bytes())},
                           headers={"Accept": "application/json"})
            assert r.status_code == 200, r.text
            link = r.json()["result"]["download_url"]
            assert link.startswith(cluster["proxy"] + "/v1/downloads/"), link
            got = front.get(link.removeprefix(cluster["proxy"]))
            assert got.status_code == 200 and got.content.startswith(b"%PDF")
    # the blobs are in the bucket, not on any process's disk
    import boto3

    s3 = boto3.client("s3", endpoint_url=cluster["state"]["s3"]["endpoint"],
                      aws_access_key_id="x", aws_secret_access_key="x", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="squeezer").get("Contents", [])]
    assert sum(k.startswith("blobs/results/") for k in keys) >= 6
    for name in ("api1", "api2", "worker1", "worker2", "worker3"):
        data = cluster["root"] / name / "data"
        assert not (data / "blobs").exists() and not (data / "postgres").exists()
