"""Direct-to-bucket transfers (api/routes/direct.py) against moto's S3 server: a file is
uploaded to a presigned URL, compressed, and its result downloaded from a presigned URL,
without the bytes passing through the API."""

from __future__ import annotations

import time
import uuid

import httpx
import pdfgen
import pikepdf
import pytest
from servicefx import Service, free_port

from squeezer.api.errors import ApiError
from squeezer.api.routes.direct import make_token, read_token

BUCKET = "direct"


@pytest.fixture(scope="module")
def s3():
    server_mod = pytest.importorskip("moto.server", reason="needs moto's standalone server")
    boto3 = pytest.importorskip("boto3", reason="needs boto3 (installed with moto)")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    yield endpoint, client
    server.stop()


@pytest.fixture(scope="module")
def service(s3, tmp_path_factory):
    endpoint, _ = s3
    svc = Service(tmp_path_factory.mktemp("direct"),
                  SQUEEZER_STORAGE_URL=f"s3://{BUCKET}/blobs", SQUEEZER_S3_ENDPOINT=endpoint,
                  AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                  AWS_REGION="us-east-1", SQUEEZER_DIRECT_MIN_BYTES="1000")
    yield svc
    svc.stop()


def test_upload_to_the_bucket_compress_and_download_from_it(service, s3, tmp_path):
    endpoint, bucket = s3
    src = tmp_path / "in.pdf"
    pdfgen.text_pdf(src, pages=4, lines=40)
    data = src.read_bytes()
    with service.client() as api:
        start = api.post("/v1/uploads", json={"name": "report.pdf", "size": len(data)})
        assert start.status_code == 201, start.text
        grant = start.json()
        assert grant["method"] == "PUT" and grant["url"].startswith(endpoint)
        # before the bytes are there, completing is refused
        early = api.post("/v1/uploads/complete", json={"token": grant["token"]})
        assert early.status_code == 409 and early.json()["code"] == "upload_missing"
        put = httpx.put(grant["url"], content=data, timeout=60)
        assert put.status_code == 200, put.text
        done = api.post("/v1/uploads/complete", json={"token": grant["token"]})
        assert done.status_code == 201, done.text
        file = done.json()
        assert file["id"] == grant["file_id"] and file["size"] == len(data)
        assert file["name"] == "report.pdf" and file["mime"] == "application/pdf"
        # a retried completion gives the same file
        again = api.post("/v1/uploads/complete", json={"token": grant["token"]})
        assert again.status_code == 201 and again.json()["id"] == file["id"]

        job = api.post("/v1/jobs", json={"input": {"file_id": file["id"]},
                                         "options": {"level": "lossless"}, "wait": 60}).json()
        deadline = time.monotonic() + 120
        while job["state"] in ("queued", "running") and time.monotonic() < deadline:
            job = api.get(f"/v1/jobs/{job['id']}", params={"wait": 20}).json()
        assert job["state"] == "succeeded", job
        # the worker read the bytes, so the input's hash is known now
        assert len(job["result"]["input"]["sha256"]) == 64

        output = job["result"]["output"]
        content = api.get(f"/v1/files/{output['file_id']}/content")
        assert content.status_code == 307
        location = content.headers["location"]
        assert location.startswith(f"{endpoint}/{BUCKET}/blobs/results/")
        got = httpx.get(location, timeout=60)
        assert got.status_code == 200 and len(got.content) == output["size"]
        # the signed link in the job JSON redirects the same way
        signed = httpx.get(job["result"]["download_url"], timeout=60)
        assert signed.status_code == 307 and signed.headers["location"].startswith(endpoint)
        out = tmp_path / "out.pdf"
        out.write_bytes(got.content)
        with pikepdf.open(out) as pdf:
            assert len(pdf.pages) == 4
        assert output["size"] <= len(data)


def test_a_direct_upload_is_checked_like_any_upload(service, s3):
    endpoint, bucket = s3
    with service.client() as api:
        grant = api.post("/v1/uploads", json={"name": "notes.txt"}).json()
        assert httpx.put(grant["url"], content=b"just text, no engine takes it",
                         timeout=60).status_code == 200
        refused = api.post("/v1/uploads/complete", json={"token": grant["token"]})
        assert refused.status_code == 415 and refused.json()["code"] == "unsupported_format"
        listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"blobs/uploads/{grant['file_id']}")
        assert listed.get("KeyCount", 0) == 0  # the refused blob is gone
        # another key cannot complete someone else's upload
        other = service.new_key("other")
        grant = api.post("/v1/uploads", json={"name": "a.pdf"}).json()
        with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {other}"},
                          timeout=60) as stranger:
            r = stranger.post("/v1/uploads/complete", json={"token": grant["token"]})
        assert r.status_code == 422 and r.json()["code"] == "invalid_token"
        too_big = api.post("/v1/uploads", json={"name": "a.pdf", "size": 1 << 40})
        assert too_big.status_code == 413


def test_tokens_are_tamper_evident():
    secret = b"k" * 32
    token = make_token(secret, uuid.uuid4(), uuid.uuid4(), "a.pdf", 2_000_000_000)
    assert read_token(secret, token)["n"] == "a.pdf"
    body, _, mac = token.partition(".")
    for forged in (token[:-1] + ("0" if token[-1] != "0" else "1"), body + "x." + mac,
                   "garbage", ""):
        with pytest.raises(ApiError):
            read_token(secret, forged)
    with pytest.raises(ApiError):
        read_token(b"another secret" * 3, token)


def test_local_storage_keeps_streaming(tmp_path):
    """The local default cannot presign: uploads are refused with a pointer to /v1/files."""
    import asyncio

    from squeezer.storage import open_store
    from squeezer.storage.settings import StorageSettings

    store = open_store(None, tmp_path, StorageSettings())
    assert not store.can_sign
    assert asyncio.run(store.signed_url("uploads/x", 60, method="PUT")) is None
