"""Compressor.app's /1.0 protocol (seed 001) over real HTTP against `squeezer serve`: the seed's
flows (upload, fetch, async + long polling, webhook, rate limit, errors) with its exact field
names, and external storage connectors against moto's S3 server on loopback."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time
import uuid
from typing import ClassVar

import httpx
import pikepdf
import psycopg
import pytest
from test_storage import BUCKET, s3_server  # noqa: F401 - the moto server fixture

from squeezer.jobs import webhook_signature

FILE_KEYS = {"name", "type", "format", "mime", "size", "sha1"}
ERROR_KEYS = {"success", "status", "id", "message"}


def assert_error(r: httpx.Response, status: int, message: str | None = None) -> dict:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) - {"errors"} == ERROR_KEYS, body
    assert body["success"] is False and body["status"] == status
    assert str(uuid.UUID(body["id"])) == body["id"]  # a dashed UUID, as the seed shows
    if message is not None:
        assert body["message"] == message
    assert "code" not in body  # never the native shape
    return body


@pytest.fixture(scope="module")
def api(service):
    with httpx.Client(base_url=service.url, auth=(service.key, ""), timeout=120) as client:
        yield client


def sha1(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def assert_result(body: dict, source: bytes, name: str) -> bytes:
    """The seed's result JSON, exactly; the downloaded output a valid, smaller PDF."""
    assert set(body) == {"success", "id", "url", "input", "output"}, body
    assert body["success"] is True and uuid.UUID(body["id"])
    assert set(body["input"]) == FILE_KEYS and set(body["output"]) == FILE_KEYS
    for part in (body["input"], body["output"]):
        assert part["type"] == "document" and part["format"] == "pdf"
        assert part["mime"] == "application/pdf"
        assert isinstance(part["size"], int) and len(part["sha1"]) == 40
    assert body["input"] == {"name": name, "type": "document", "format": "pdf",
                             "mime": "application/pdf", "size": len(source), "sha1": sha1(source)}
    out = httpx.get(body["url"], timeout=30)  # the temporary URL needs no key
    assert out.status_code == 200
    assert len(out.content) == body["output"]["size"] < len(source)
    assert sha1(out.content) == body["output"]["sha1"]
    with pikepdf.open(io.BytesIO(out.content)) as pdf:
        assert len(pdf.pages) >= 1
    return out.content


def test_quick_upload_example(api, fx):
    """`curl https://api.compressor.app/1.0/upload -u key: -F file=@…` — sync, held until done."""
    data = fx.photo().read_bytes()
    r = api.post("/1.0/upload", files={"file": ("photo.pdf", data, "application/pdf")})
    assert r.status_code == 200, r.text
    assert_result(r.json(), data, "photo.pdf")
    assert int(r.headers["x-ratelimit-limit"]) == 100_000
    assert 0 <= int(r.headers["x-ratelimit-remaining"]) < 100_000
    assert 0 < int(r.headers["x-ratelimit-reset"]) <= 900
    # the sha1 is computed once and cached: the same answer again from long polling
    again = api.get(f"/1.0/jobs/{r.json()['id']}")
    assert again.status_code == 200 and again.json()["output"] == r.json()["output"]


def test_options_as_a_json_part_and_as_fields(service, api, fx):
    data = fx.photo().read_bytes()
    r = api.post("/1.0/upload", files={"file": ("photo.pdf", data)},
                 data={"options": json.dumps({"compression": "ultra",
                                              "pdf": {"remove_metadata": True}})})
    assert r.status_code == 200, r.text
    job = httpx.get(f"{service.url}/v1/jobs/{r.json()['id']}",
                    headers={"x-api-key": service.key}).json()
    # compression=ultra: Compressor.app's strongest level, Squeezer's `high`
    assert job["options"] == {"level": "high", "remove_metadata": True}
    r = api.post("/1.0/upload", files={"file": ("photo.pdf", data)},
                 data={"compression": "high", "pdf.dpi": "100", "pdf[linearize]": "true"})
    assert r.status_code == 200, r.text
    job = httpx.get(f"{service.url}/v1/jobs/{r.json()['id']}",
                    headers={"x-api-key": service.key}).json()
    assert job["options"] == {"level": "medium", "dpi": 100, "linearize": True}


class _Source(http.server.BaseHTTPRequestHandler):
    pdf = b""
    posts: ClassVar[list[tuple[dict, bytes]]] = []

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(self.pdf)))
        self.end_headers()
        self.wfile.write(self.pdf)

    def do_POST(self):  # a webhook receiver
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).posts.append((dict(self.headers), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def local(fx):
    _Source.pdf = fx.photo().read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_quick_fetch_example(api, local):
    r = api.post("/1.0/fetch", json={"url": local + "/docs/document.pdf"})
    assert r.status_code == 200, r.text
    assert_result(r.json(), _Source.pdf, "document.pdf")
    refused = api.post("/1.0/fetch", json={"url": "http://169.254.169.254/latest/meta-data"})
    assert_error(refused, 400)


def _webhook_for(job_id: str, timeout: float = 30) -> tuple[dict, bytes]:
    deadline = time.monotonic() + timeout
    while True:
        found = [(h, b) for h, b in _Source.posts if job_id in b.decode()]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no webhook arrived"
        time.sleep(0.1)


def test_a_webhook_makes_it_async_then_long_polling_and_the_callback(service, api, local):
    r = api.post("/1.0/fetch", json={"url": local + "/a.pdf", "webhook": {"url": local + "/hook"}})
    assert r.status_code == 200, r.text
    ack = r.json()
    assert set(ack) == {"success", "id", "status"}
    assert ack["success"] is True and ack["status"] == "enqueued"
    done = api.get(f"/1.0/jobs/{ack['id']}", params={"wait": 60})
    assert done.status_code == 200, done.text
    assert_result(done.json(), _Source.pdf, "a.pdf")
    headers, body = _webhook_for(ack["id"])
    # the callback is Compressor.app's result JSON, exactly what long polling answers
    assert json.loads(body) == done.json()
    secret = httpx.get(f"{service.url}/v1/me", headers={"x-api-key": service.key}).json()[
        "webhook_secret"]
    webhook_signature.verify(secret, headers, body)


def test_an_async_upload_posts_the_result_json_to_the_webhook(service, api, fx, local):
    """`webhook` on an upload: the ack at once, then one signed POST of the result JSON."""
    data = fx.photo().read_bytes()
    r = api.post("/1.0/upload", files={"file": ("hooked.pdf", data)},
                 data={"webhook.url": local + "/upload-hook"})
    assert r.status_code == 200 and r.json()["status"] == "enqueued", r.text
    job_id = r.json()["id"]
    headers, body = _webhook_for(job_id, timeout=60)
    secret = httpx.get(f"{service.url}/v1/me", headers={"x-api-key": service.key}).json()[
        "webhook_secret"]
    webhook_signature.verify(secret, headers, body)
    posted = json.loads(body)
    assert_result(posted, data, "hooked.pdf")
    assert posted == api.get(f"/1.0/jobs/{job_id}").json()
    # the native view of the same job shows the format's effect nowhere but the webhook
    native = httpx.get(f"{service.url}/v1/jobs/{job_id}", headers={"x-api-key": service.key})
    assert native.json()["state"] == "succeeded"
    assert native.json()["result"]["stored_url"] is None


def test_inputs_above_the_sync_size_are_enqueued(service, fx):
    url = service.api(SQUEEZER_SYNC_MAX_BYTES="1000")
    data = fx.photo().read_bytes()
    with httpx.Client(base_url=url, auth=(service.key, ""), timeout=120) as client:
        r = client.post("/1.0/upload", files={"file": ("big.pdf", data)})
        assert r.status_code == 200 and r.json()["status"] == "enqueued", r.text
        done = client.get(f"/1.0/jobs/{r.json()['id']}", params={"wait": 60})
        assert_result(done.json(), data, "big.pdf")


def test_error_shapes(service, api, fx):
    pdf = fx.text().read_bytes()
    for auth in [(f"sqz_{'x' * 43}", ""), None]:
        r = httpx.post(service.url + "/1.0/upload", auth=auth, files={"file": ("a.pdf", pdf)})
        assert_error(r, 401)
    missing = assert_error(api.post("/1.0/upload", files={"other": (None, "x")}), 422,
                           "Validation failed for one or more parameters")
    assert missing["errors"] == [{"field": "file", "message": "required"}]
    with open(fx.encrypted(), "rb") as f:
        wrong = api.post("/1.0/upload", files={"file": ("locked.pdf", f)},
                         data={"pdf.password": "not-the-password"})
    assert "password" in assert_error(wrong, 422)["message"].lower()
    assert_error(api.post("/1.0/upload", files={"file": ("notes.txt", b"plain text, no PDF")}), 415)
    bad = assert_error(api.post("/1.0/upload", files={"file": ("a.pdf", pdf)},
                                data={"compression": "bogus", "pdf.dpi": "10"}), 422,
                       "Validation failed for one or more parameters")
    assert [e["field"] for e in bad["errors"]] == ["compression"]
    dpi = assert_error(api.post("/1.0/fetch", json={"url": "http://x.example/a.pdf",
                                                    "pdf": {"dpi": 10}}), 422)
    assert dpi["errors"] == [{"field": "pdf.dpi",
                              "message": "Input should be greater than or equal to 72"}]
    assert_error(api.post("/1.0/fetch", content=b"{nope", headers={"content-type": "application/json"}),
                 422, "Incoming request body does not contain a valid JSON data")
    assert_error(api.post("/1.0/fetch", json={"ur": "x"}), 422,
                 "Validation failed for one or more parameters")
    assert_error(api.get(f"/1.0/jobs/{uuid.uuid4()}"), 404)
    assert_error(api.get("/1.0/jobs/not-an-id"), 404)
    assert_error(api.get("/1.0/nothing-here"), 404)


def test_rate_limit_429_exactly_as_the_seed(service, fx):
    key = service.new_key("compressor-limited")
    url = service.api(SQUEEZER_RATE_LIMIT="2", SQUEEZER_RATE_WINDOW_SECONDS="600")
    for _ in range(2):
        ok = httpx.get(f"{url}/1.0/jobs/{uuid.uuid4()}", auth=(key, ""))
        assert ok.status_code == 404
    r = httpx.post(f"{url}/1.0/fetch", auth=(key, ""), json={"url": "http://x.example/a.pdf"})
    body = assert_error(r, 429)
    retry = int(r.headers["retry-after"])
    assert 0 < retry <= 2 * 600  # a rolling window: the full window ends, then decays
    assert body["message"] == f"Rate limit exceeded. Retry in {retry} seconds."
    assert r.headers["x-ratelimit-limit"] == "2" and r.headers["x-ratelimit-remaining"] == "0"
    assert int(r.headers["x-ratelimit-reset"]) == retry


# --- external storage connectors ----------------------------------------------------------

ACCESS_KEY = "AKIASQUEEZERCONNECTOR"
SECRET_KEY = "s3cr3t-Squeezer-connector-never-in-clear"


def test_a_connector_writes_the_result_to_s3(service, api, fx, s3_server):  # noqa: F811
    created = api.post("/1.0/connectors", json={
        "provider": "s3", "name": "moto-connector-name-in-clear", "credentials": {
            "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
            "region": "us-east-1", "endpoint": s3_server.endpoint}})
    assert created.status_code == 201, created.text
    connector = created.json()
    assert set(connector) == {"success", "id", "provider", "name", "created_at"}
    listed = api.get("/1.0/connectors")
    data = fx.photo().read_bytes()
    r = api.post("/1.0/upload", files={"file": ("report.pdf", data)}, data={"options": json.dumps(
        {"store": {"connector": connector["id"], "bucket": BUCKET, "path": "out/report.pdf"}})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["url"] == f"{s3_server.endpoint}/{BUCKET}/out/report.pdf"
    stored = s3_server.client.get_object(Bucket=BUCKET, Key="out/report.pdf")["Body"].read()
    assert sha1(stored) == body["output"]["sha1"] and len(stored) < len(data)
    with pikepdf.open(io.BytesIO(stored)) as pdf:
        assert len(pdf.pages) == 1
    # async (a webhook): written by the worker as part of the job: the object is in the
    # bucket by the time the job has succeeded, with no GET of ours to trigger it
    r = api.post("/1.0/upload", files={"file": ("second.pdf", data)}, data={
        "store.connector": connector["id"], "store.bucket": BUCKET, "store.path": "async/",
        "webhook.url": "http://127.0.0.1:9/never"})
    assert r.json()["status"] == "enqueued", r.text
    job_id = r.json()["id"]
    native = _native_when_ended(service, job_id)
    assert native["state"] == "succeeded", native
    assert native["result"]["stored_url"] == f"{s3_server.endpoint}/{BUCKET}/async/second.pdf"
    head = s3_server.client.head_object(Bucket=BUCKET, Key="async/second.pdf")
    assert head["ContentLength"] == native["result"]["output"]["size"]
    done = api.get(f"/1.0/jobs/{job_id}").json()
    assert done["url"] == native["result"]["stored_url"]
    assert done["output"]["size"] == head["ContentLength"]
    # the credentials are in no answer, and not in the database in clear
    for answer in (created, listed, r):
        assert ACCESS_KEY not in answer.text and SECRET_KEY not in answer.text
    with psycopg.connect(service.database_url) as conn:
        sealed, = conn.execute("select sealed from storage_connectors where id = %s",
                               (connector["id"],)).fetchone()
        row_text, = conn.execute("select t::text from storage_connectors t where id = %s",
                                 (connector["id"],)).fetchone()
        conn.execute("checkpoint")  # the table's pages on disk, not only in the WAL
    for secret in (ACCESS_KEY, SECRET_KEY):
        assert secret.encode() not in bytes(sealed) and secret not in row_text
    pgdata = service.data / "postgres"
    scanned, name_seen = 0, False
    for path in pgdata.rglob("*"):  # every byte PostgreSQL wrote: tables, indexes, WAL
        if path.is_file() and path.stat().st_size < 64 << 20:
            raw = path.read_bytes()
            assert SECRET_KEY.encode() not in raw and ACCESS_KEY.encode() not in raw, path
            scanned += 1
            name_seen = name_seen or b"moto-connector-name-in-clear" in raw
    assert scanned > 100 and name_seen  # the scan does see the table's clear columns
    assert SECRET_KEY not in (service.root / "serve.log").read_text(errors="replace")
    # another key cannot use or see it; deleting it makes it unusable
    other = service.new_key("compressor-other")
    assert httpx.get(service.url + "/1.0/connectors", auth=(other, "")).json()["connectors"] == []
    assert_error(api.delete(f"/1.0/connectors/{uuid.uuid4()}"), 404)
    assert api.delete(f"/1.0/connectors/{connector['id']}").status_code == 200
    gone = api.post("/1.0/fetch", json={"url": "http://127.0.0.1:9/a.pdf", "store": {
        "connector": connector["id"], "bucket": BUCKET}})
    assert_error(gone, 404)


def _native_when_ended(service, job_id: str, timeout: float = 60) -> dict:
    """The native job JSON once the job has ended, polled without ever calling /1.0."""
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{service.url}/v1/jobs/{job_id}",
                        headers={"x-api-key": service.key}).json()
        if job["state"] in ("succeeded", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def test_a_missing_bucket_fails_the_job_with_export_failed(service, api, fx, local,
                                                           s3_server):  # noqa: F811
    created = api.post("/1.0/connectors", json={"provider": "s3", "credentials": {
        "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY,
        "endpoint": s3_server.endpoint}})
    assert created.status_code == 201, created.text
    store = {"connector": created.json()["id"], "bucket": "no-such-bucket", "path": "x/"}
    r = api.post("/1.0/upload", files={"file": ("lost.pdf", fx.photo().read_bytes())},
                 data={"options": json.dumps({"store": store,
                                              "webhook": {"url": local + "/lost-hook"}})})
    assert r.json()["status"] == "enqueued", r.text
    job_id = r.json()["id"]
    native = _native_when_ended(service, job_id)
    assert native["state"] == "failed" and native["result"] is None, native
    assert native["error"]["code"] == "export_failed"
    message = native["error"]["message"]
    assert message.startswith("the result could not be written to s3 bucket 'no-such-bucket'")
    assert "x/lost.pdf" in message and "not found" in message, message
    assert ACCESS_KEY not in message and SECRET_KEY not in message
    # the vendor error shape from long polling, and the same body POSTed to the webhook
    failed = assert_error(api.get(f"/1.0/jobs/{job_id}"), 502, message)
    assert failed["id"] == job_id
    _, body = _webhook_for(job_id)
    assert json.loads(body) == failed
    # the temporary result was taken back: the job has no output
    with psycopg.connect(service.database_url) as conn:
        output, = conn.execute("select output_file_id from jobs where id = %s",
                               (job_id,)).fetchone()
        error, url = conn.execute("select error, url from job_exports where job_id = %s",
                                  (job_id,)).fetchone()
    assert output is None and url is None and error == message
    # a sync upload to the same target answers the failure at once, in the same shape
    sync = api.post("/1.0/upload", files={"file": ("lost.pdf", fx.photo().read_bytes())},
                    data={"options": json.dumps({"store": store})})
    again = assert_error(sync, 502)["message"]
    assert again.startswith("the result could not be written to s3 bucket 'no-such-bucket'")
    # a path the key rules refuse is a 422 before any work
    bad = assert_error(api.post("/1.0/upload", files={"file": ("a.pdf", fx.text().read_bytes())},
                                data={"options": json.dumps({"store": {**store,
                                                                       "path": "../etc"}})}), 422)
    assert bad["errors"][0]["field"] == "store.path"


def test_connector_validation(api):
    r = assert_error(api.post("/1.0/connectors", json={"provider": "ftp"}), 422,
                     "Validation failed for one or more parameters")
    assert r["errors"][0]["field"] == "provider"
    r = assert_error(api.post("/1.0/connectors", json={"provider": "r2", "credentials": {
        "access_key_id": "a", "secret_access_key": "b"}}), 422)
    assert r["errors"] == [{"field": "credentials.endpoint",
                            "message": "r2 connectors need the endpoint URL"}]
    internal = assert_error(api.post("/1.0/connectors", json={"provider": "s3", "credentials": {
        "access_key_id": "a", "secret_access_key": "b", "endpoint": "http://10.0.0.5:9000"}}), 422)
    assert internal["errors"][0]["field"] == "credentials.endpoint"


def test_an_image_with_compressor_image_options(api, tmp_path):
    """The seed's own example uploads a JPEG: `compression` and an `image` section apply."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    pixels = (rng.random((480, 640, 3)) * 50 + np.linspace(0, 180, 640)[None, :, None])
    buf = io.BytesIO()
    Image.fromarray(pixels.astype("uint8")).save(buf, format="JPEG", quality=95)
    source = buf.getvalue()
    r = api.post("/1.0/upload", files={"file": ("image.jpg", source, "image/jpeg")},
                 data={"compression": "ultra",
                       "image": json.dumps({"format": "webp",
                                            "resize": {"mode": "fit", "width": 320}})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"success", "id", "url", "input", "output"}
    assert body["input"] == {"name": "image.jpg", "type": "image", "format": "jpeg",
                             "mime": "image/jpeg", "size": len(source), "sha1": sha1(source)}
    assert {k: body["output"][k] for k in ("name", "type", "format", "mime")} == {
        "name": "image.webp", "type": "image", "format": "webp", "mime": "image/webp"}
    out = httpx.get(body["url"], timeout=30).content
    assert len(out) == body["output"]["size"] < len(source) and sha1(out) == body["output"]["sha1"]
    with Image.open(io.BytesIO(out)) as img:
        assert img.format == "WEBP" and img.size == (320, 240)
    bad = api.post("/1.0/upload", files={"file": ("image.jpg", source, "image/jpeg")},
                   data={"image": json.dumps({"resize": {"mode": "sideways"}})})
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "image.resize.mode"
