"""The native API v1 over real HTTP against a running `squeezer serve` (embedded PostgreSQL,
a real worker), with real PDFs: statuses and JSON bodies are asserted exactly."""

from __future__ import annotations

import concurrent.futures
import http.server
import io
import threading
import time
import uuid

import httpx
import pdfgen
import pikepdf
import pytest

ERROR_KEYS = {"success", "status", "id", "code", "message"}


def assert_error(response: httpx.Response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) - {"errors", "job_id"} == ERROR_KEYS
    assert body["success"] is False and body["status"] == status and body["code"] == code
    assert body["id"] == response.headers["x-request-id"] and len(body["id"]) == 32
    assert body["message"]
    return body


@pytest.fixture(scope="module")
def api(service):
    with service.client() as client:
        yield client


@pytest.fixture(scope="module")
def text_pdf(fx):
    return fx.uncompressed()


def upload(api, path, name=None):
    with open(path, "rb") as f:
        r = api.post("/v1/files", files={"file": (name or path.name, f, "application/pdf")})
    assert r.status_code == 201, r.text
    return r.json()


def test_upload_describes_the_stored_file(api, text_pdf):
    import hashlib

    body = upload(api, text_pdf, name="../../etc/Quarterly report.pdf")
    data = text_pdf.read_bytes()
    assert set(body) == {"id", "name", "size", "mime", "sha256", "created_at", "expires_at"}
    assert body["name"] == "Quarterly report.pdf"  # no directories, ever
    assert body["size"] == len(data) and body["mime"] == "application/pdf"
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    assert api.get(f"/v1/files/{body['id']}").json() == body
    content = api.get(f"/v1/files/{body['id']}/content")
    assert content.status_code == 200 and content.content == data
    assert content.headers["content-disposition"] == (
        "attachment; filename=\"Quarterly report.pdf\"; filename*=UTF-8''Quarterly%20report.pdf")


def test_range_requests(api, text_pdf):
    file_id = upload(api, text_pdf)["id"]
    data = text_pdf.read_bytes()
    part = api.get(f"/v1/files/{file_id}/content", headers={"Range": "bytes=5-14"})
    assert part.status_code == 206 and part.content == data[5:15]
    assert part.headers["content-range"] == f"bytes 5-14/{len(data)}"
    tail = api.get(f"/v1/files/{file_id}/content", headers={"Range": "bytes=-7"})
    assert tail.status_code == 206 and tail.content == data[-7:]
    bad = api.get(f"/v1/files/{file_id}/content", headers={"Range": f"bytes={len(data)}-"})
    assert_error(bad, 416, "range_not_satisfiable")
    assert bad.headers["content-range"] == f"bytes */{len(data)}"


def test_roundtrip_upload_job_download(api, text_pdf, tmp_path):
    file_id = upload(api, text_pdf)["id"]
    r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "options": {"preset": "lossless"},
                                   "wait": 60})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "succeeded" and job["progress"] == 1.0 and job["error"] is None
    result = job["result"]
    assert result["input"]["file_id"] == file_id
    assert result["output"]["size"] < result["input"]["size"]
    assert result["saved_bytes"] == result["input"]["size"] - result["output"]["size"]
    assert result["report"]["pages"] == 2
    # the signed link works without any key
    dl = httpx.get(result["download_url"], timeout=30)
    assert dl.status_code == 200 and len(dl.content) == result["output"]["size"]
    out = tmp_path / "out.pdf"
    out.write_bytes(dl.content)
    with pikepdf.open(out) as pdf:
        assert len(pdf.pages) == 2
    assert pdfgen.page_texts(out) == pdfgen.page_texts(text_pdf)
    # and a forged one does not
    forged = result["download_url"].replace("signature=", "signature=0")
    assert_error(httpx.get(forged), 403, "invalid_signature")


def test_compress_answers_with_the_pdf_itself(api, fx):
    with open(fx.photo(), "rb") as f:
        r = api.post("/v1/compress", files={"file": ("photo.pdf", f)},
                     data={"preset": "high"}, headers={"Accept": "application/pdf"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.content.startswith(b"%PDF-")
    assert int(r.headers["x-squeezer-output-size"]) == len(r.content)
    assert len(r.content) < int(r.headers["x-squeezer-input-size"])
    with pikepdf.open(io.BytesIO(r.content)) as pdf:
        assert len(pdf.pages) == 1


def test_compress_switches_to_async_above_the_sync_size(service, fx):
    url = service.api(SQUEEZER_SYNC_MAX_BYTES="1000")
    with httpx.Client(base_url=url, headers={"x-api-key": service.key}, timeout=60) as client:
        with open(fx.text(), "rb") as f:
            r = client.post("/v1/compress", files={"file": ("t.pdf", f)})
        assert r.status_code == 202, r.text
        job = r.json()
        assert job["state"] in ("queued", "running") and job["result"] is None
        assert r.headers["location"] == f"/v1/jobs/{job['id']}"
        done = client.get(f"/v1/jobs/{job['id']}", params={"wait": 60}).json()
        assert done["state"] == "succeeded"


def test_long_polling_holds_until_the_job_ends(api, fx):
    file_id = upload(api, fx.photo())["id"]
    job = api.post("/v1/jobs", json={"input": {"file_id": file_id}}).json()
    assert job["state"] == "queued"
    started = time.monotonic()
    done = api.get(f"/v1/jobs/{job['id']}", params={"wait": 60}).json()
    assert done["state"] == "succeeded" and done["result"]["output"]["size"] > 0
    assert time.monotonic() - started < 60
    # a short wait on a finished job returns at once
    assert api.get(f"/v1/jobs/{job['id']}", params={"wait": 30}).json()["state"] == "succeeded"


def test_listing_is_paginated_and_filtered(service):
    key = service.new_key("listing")
    with service.client(key) as client:
        ids = []
        data = b"%PDF-1.4\n" + b"%" * 2000  # a PDF header and nothing else
        for i in range(3):
            f = client.post("/v1/files", files={"file": (f"{i}.pdf", data)}).json()
            ids.append(client.post("/v1/jobs", json={"input": {"file_id": f["id"]}}).json()["id"])
        page = client.get("/v1/jobs", params={"limit": 2}).json()
        assert [j["id"] for j in page["data"]] == ids[::-1][:2]
        rest = client.get("/v1/jobs", params={"limit": 2, "cursor": page["next_cursor"]}).json()
        assert [j["id"] for j in rest["data"]] == ids[:1] and rest["next_cursor"] is None
        for job_id in ids:
            client.get(f"/v1/jobs/{job_id}", params={"wait": 30})
        failed = client.get("/v1/jobs", params={"state": "failed"}).json()["data"]
        assert sorted(j["id"] for j in failed) == sorted(ids)  # not real PDFs
        assert {j["error"]["code"] for j in failed} == {"pdf_invalid"}
        assert_error(client.get("/v1/jobs", params={"state": "done"}), 422, "invalid_request")


def test_idempotency_key_returns_the_first_job(api, text_pdf):
    file_id = upload(api, text_pdf)["id"]
    body = {"input": {"file_id": file_id}, "options": {"preset": "low"}}
    key = {"Idempotency-Key": uuid.uuid4().hex}
    first = api.post("/v1/jobs", json=body, headers=key)
    again = api.post("/v1/jobs", json=body, headers=key)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    other = api.post("/v1/jobs", json={**body, "options": {"preset": "high"}}, headers=key)
    assert_error(other, 409, "idempotency_conflict")


def test_one_key_never_sees_another_keys_things(service, api, text_pdf):
    file_id = upload(api, text_pdf)["id"]
    job_id = api.post("/v1/jobs", json={"input": {"file_id": file_id}}).json()["id"]
    with service.client(service.new_key("stranger")) as stranger:
        mine = assert_error(stranger.get(f"/v1/files/{file_id}"), 404, "not_found")
        missing = assert_error(stranger.get(f"/v1/files/{uuid.uuid4()}"), 404, "not_found")
        assert mine["message"] == missing["message"]
        assert_error(stranger.get(f"/v1/files/{file_id}/content"), 404, "not_found")
        assert_error(stranger.delete(f"/v1/files/{file_id}"), 404, "not_found")
        assert_error(stranger.get(f"/v1/jobs/{job_id}"), 404, "not_found")
        assert_error(stranger.delete(f"/v1/jobs/{job_id}"), 404, "not_found")
        r = stranger.post("/v1/jobs", json={"input": {"file_id": file_id}})
        assert_error(r, 404, "not_found")
        assert stranger.get("/v1/jobs").json()["data"] == []


@pytest.mark.parametrize("headers", [
    {}, {"Authorization": "Bearer nope"}, {"Authorization": "Bearer sqz_" + "A" * 43},
    {"x-api-key": "sqz_" + "b" * 43}, {"Authorization": "Basic !!!"},
])
def test_bad_keys_get_one_identical_401(service, headers):
    r = httpx.get(service.url + "/v1/jobs", headers=headers)
    body = assert_error(r, 401, "unauthorized")
    assert body["message"] == "missing or invalid API key"
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_key_forms_and_revocation(service):
    import base64
    import subprocess
    import sys

    key = service.new_key("revocable")
    basic = base64.b64encode(f"{key}:".encode()).decode()
    for headers in ({"Authorization": f"Bearer {key}"}, {"Authorization": f"Basic {basic}"},
                    {"x-api-key": key}):
        assert httpx.get(service.url + "/v1/me", headers=headers).json()["prefix"] == key[:12]
    env = {**service.env, "SQUEEZER_DATABASE_URL": service.database_url}
    subprocess.run([sys.executable, "-m", "squeezer", "keys", "revoke", key[:12]], env=env,
                   check=True, capture_output=True)
    assert_error(httpx.get(service.url + "/v1/me", headers={"x-api-key": key}), 401,
                 "unauthorized")


def test_rate_limit_is_shared_and_answers_429(service):
    key = service.new_key("limited")
    url = service.api(SQUEEZER_RATE_LIMIT="3", SQUEEZER_RATE_WINDOW_SECONDS="600")
    other = service.api(SQUEEZER_RATE_LIMIT="3", SQUEEZER_RATE_WINDOW_SECONDS="600")
    headers = {"x-api-key": key}
    seen = [httpx.get(u + "/v1/jobs", headers=headers) for u in (url, other, url)]
    assert [r.status_code for r in seen] == [200, 200, 200]
    assert [r.headers["x-ratelimit-remaining"] for r in seen] == ["2", "1", "0"]
    assert all(r.headers["x-ratelimit-limit"] == "3" for r in seen)
    blocked = httpx.get(other + "/v1/jobs", headers=headers)
    body = assert_error(blocked, 429, "rate_limited")
    assert 0 < int(blocked.headers["retry-after"]) <= 600
    assert int(blocked.headers["x-ratelimit-reset"]) == int(blocked.headers["retry-after"])
    assert blocked.headers["x-ratelimit-remaining"] == "0" and "600 s" in body["message"]


def test_error_bodies(service, api, text_pdf):
    assert_error(api.post("/v1/files", files={"file": ("x.txt", b"hello, not a pdf")}), 415,
                 "unsupported_format")
    assert_error(api.post("/v1/files", content=b"raw", headers={"content-type": "text/plain"}),
                 415, "unsupported_media_type")
    body = assert_error(api.post("/v1/files", files={"other": ("a.pdf", b"%PDF-1.4")}), 422,
                        "invalid_request")
    assert body["errors"] == [{"field": "other", "message": "unexpected file"}]
    body = assert_error(api.post("/v1/files", data={"name": "x"}, files={}), 415,
                        "unsupported_media_type")  # a plain form: no multipart at all
    nothing = api.post("/v1/files", files={"preset": (None, "high")})
    assert assert_error(nothing, 422, "invalid_request")["errors"] == [
        {"field": "file", "message": "required"}]
    bad_json = api.post("/v1/jobs", content=b"{not json",
                        headers={"content-type": "application/json"})
    assert assert_error(bad_json, 422, "invalid_json")["errors"] == [
        {"field": "body", "message": "invalid JSON"}]
    file_id = upload(api, text_pdf)["id"]
    r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "options": {"dpi": 10}})
    errors = assert_error(r, 422, "invalid_request")["errors"]
    assert errors == [{"field": "options.pdf.dpi",
                       "message": "Input should be greater than or equal to 72"}]
    r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "options": {"colour": "x"}})
    assert assert_error(r, 422, "invalid_request")["errors"][0]["field"] == "options.colour"
    assert_error(api.get(f"/v1/jobs/{uuid.uuid4()}"), 404, "not_found")
    assert_error(api.get("/v1/jobs/not-a-uuid"), 422, "invalid_request")
    assert_error(api.get("/v1/nothing-here"), 404, "not_found")
    small = service.api(SQUEEZER_MAX_UPLOAD_BYTES="2000")
    r = httpx.post(small + "/v1/files", headers={"x-api-key": service.key},
                   files={"file": ("big.pdf", b"%PDF-1.4\n" + b"0" * 50_000)})
    assert_error(r, 413, "too_large")


def test_a_failed_sync_compress_says_why(api, fx):
    with open(fx.encrypted(), "rb") as f:
        r = api.post("/v1/compress", files={"file": ("locked.pdf", f)})
    body = assert_error(r, 422, "password_required")
    job = api.get(f"/v1/jobs/{body['job_id']}").json()
    assert job["state"] == "failed" and job["error"]["code"] == "password_required"
    with open(fx.encrypted(), "rb") as f:
        ok = api.post("/v1/compress", files={"file": ("locked.pdf", f)},
                      data={"options": '{"password": "user"}'})
    assert ok.status_code == 200 and ok.json()["options"]["password"] == "********"


def test_a_colour_scan_becomes_mrc_through_the_service(api, tmp_path):
    """The scan step runs in the job's isolated engine process (numba's JBIG2 coder
    included) and its per-page report reaches the API."""
    import scanfixtures

    src = scanfixtures.scan_pdf(tmp_path / "scan.pdf", kind="color", size_in=(4, 3),
                                stamp=True, ocr_layer=True)
    with open(src, "rb") as f:
        r = api.post("/v1/compress", files={"file": ("scan.pdf", f)}, data={"preset": "high"})
    assert r.status_code == 200, r.text
    report = r.json()["result"]["report"]
    assert report["pages_classified"] == {"scan": 1, "vector": 0}
    page = report["scan_pages"][0]
    assert (page["content"], page["method"], page["codec"], page["ocr_layer"]) == (
        "color_text", "mrc", "jbig2", True)
    assert report["output_bytes"] < 0.2 * report["input_bytes"]


def test_scan_options_as_form_fields_and_json(api, fx):
    """The scan knobs are ordinary engine options: form fields (strings) and JSON alike."""
    with open(fx.text(), "rb") as f:
        r = api.post("/v1/compress", files={"file": ("t.pdf", f)},
                     data={"preset": "high", "mrc": "false", "mrc_background_dpi": "150",
                           "char_repair": "true", "bitonal_threshold": "128"})
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["options"] == {"preset": "high", "mrc": False, "mrc_background_dpi": 150,
                              "char_repair": True, "bitonal_threshold": 128}
    settings = job["result"]["report"]["settings"]
    assert (settings["mrc"], settings["mrc_background_dpi"], settings["char_repair"],
            settings["bitonal_threshold"]) == (False, 150, True, 128)
    assert "scan_pages" in job["result"]["report"]
    file_id = upload(api, fx.text())["id"]
    r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "wait": 30, "options": {
        "mrc": True, "mrc_preserve_smoothing": True, "jbig2": False}})
    assert r.status_code == 201, r.text
    settings = r.json()["result"]["report"]["settings"]
    assert (settings["mrc"], settings["mrc_preserve_smoothing"], settings["jbig2"]) == (
        True, True, False)
    for bad in ({"mrc_background_dpi": 10}, {"bitonal_threshold": 255}, {"mrc": "sometimes"}):
        r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "options": bad})
        errors = assert_error(r, 422, "invalid_request")["errors"]
        assert [e["field"] for e in errors] == [f"options.pdf.{next(iter(bad))}"]


def test_delete_file_then_410(api, text_pdf):
    file_id = upload(api, text_pdf)["id"]
    assert api.delete(f"/v1/files/{file_id}").status_code == 204
    assert_error(api.get(f"/v1/files/{file_id}"), 410, "gone")
    assert_error(api.get(f"/v1/files/{file_id}/content"), 410, "gone")


def test_expiry_removes_files_from_database_and_store(service, text_pdf):
    url = service.api(SQUEEZER_FILE_TTL_SECONDS="2")
    with httpx.Client(base_url=url, headers={"x-api-key": service.key}, timeout=60) as client:
        with open(text_pdf, "rb") as f:
            file_id = client.post("/v1/files", files={"file": ("t.pdf", f)}).json()["id"]
        blob = service.data / "blobs" / "uploads" / file_id
        assert blob.exists()
        time.sleep(2.5)
        assert_error(client.get(f"/v1/files/{file_id}"), 410, "gone")
        deadline = time.monotonic() + 30  # the workers' sweep runs every second here
        while blob.exists():
            assert time.monotonic() < deadline, "the sweep never deleted the expired blob"
            time.sleep(0.3)


class _Source(http.server.BaseHTTPRequestHandler):
    pdf = b""
    hits: list[str] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://10.0.0.1/secret.pdf")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", str(len(self.pdf)))
        self.end_headers()
        self.wfile.write(self.pdf)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def source(text_pdf):
    _Source.pdf = text_pdf.read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_by_url_from_an_allowlisted_server(api, source):
    r = api.post("/v1/jobs", json={"input": {"url": source + "/files/doc.pdf"}, "wait": 60})
    assert r.status_code == 201, r.text
    job = r.json()
    assert job["state"] == "succeeded", job
    assert job["input"]["url"] == source + "/files/doc.pdf"
    assert job["result"]["output"]["size"] < job["result"]["input"]["size"]


@pytest.mark.parametrize("url", [
    "http://10.1.2.3/a.pdf", "http://169.254.169.254/latest/meta-data", "http://[::1]:8080/a.pdf",
    "http://127.0.0.2/a.pdf", "http://[::ffff:192.168.0.1]/a.pdf", "http://100.64.0.1/a.pdf",
    "file:///etc/passwd", "gopher://127.0.0.1/", "http://0x7f000002/", "http://2130706434/",
])
def test_internal_urls_are_refused_at_once(api, url):
    before = len(_Source.hits)
    r = api.post("/v1/jobs", json={"input": {"url": url}})
    assert_error(r, 400, "url_not_allowed")
    assert len(_Source.hits) == before


def test_a_redirect_into_the_network_fails_the_job(api, source):
    job = api.post("/v1/jobs", json={"input": {"url": source + "/redirect"}, "wait": 60}).json()
    assert job["state"] == "failed"
    assert job["error"]["code"] == "url_not_allowed" and "10.0.0.1" in job["error"]["message"]


def test_twenty_concurrent_uploads(service, text_pdf):
    data = text_pdf.read_bytes()

    def one(i):
        with service.client() as client:
            return client.post("/v1/files", files={"file": (f"c{i}.pdf", data)})

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    assert [r.status_code for r in answers] == [201] * 20
    bodies = [r.json() for r in answers]
    assert len({b["id"] for b in bodies}) == 20
    assert {b["size"] for b in bodies} == {len(data)}


def test_health_readiness_and_metrics(service):
    assert httpx.get(service.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(service.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "storage": "ok",
                                                          "workers": "ok"}}
    text = httpx.get(service.url + "/metrics").text
    assert 'squeezer_jobs{state="succeeded"}' in text and "squeezer_queue_depth" in text
    assert httpx.get(service.url + "/openapi.json").json()["info"]["title"] == "Squeezer"


def test_invalid_compress_options_leave_no_upload_behind(service, api, text_pdf):
    with open(text_pdf, "rb") as f:
        r = api.post("/v1/compress", files={"file": ("t.pdf", f)}, data={"dpi": "5"})
    assert assert_error(r, 422, "invalid_request")["errors"][0]["field"] == "options.pdf.dpi"
    uploads = service.data / "blobs" / "uploads"
    before = set(uploads.iterdir())
    with open(text_pdf, "rb") as f:
        api.post("/v1/compress", files={"file": ("t.pdf", f)}, data={"wait": "soon"})
    assert set(uploads.iterdir()) == before


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[tuple[dict, bytes]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_a_webhook_carries_the_signed_job(api, fx):
    import json

    from squeezer.jobs.webhook_signature import verify

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        hook = f"http://127.0.0.1:{server.server_address[1]}/hook"
        file_id = upload(api, fx.text())["id"]
        r = api.post("/v1/jobs", json={"input": {"file_id": file_id}, "webhook": {"url": hook}})
        job_id = r.json()["id"]
        assert r.json()["webhook"] == {"url": hook, "deliveries": []}
        deadline = time.monotonic() + 60
        while not _Receiver.received:
            assert time.monotonic() < deadline, "no webhook arrived"
            time.sleep(0.1)
        headers, body = _Receiver.received[0]
        secret = api.get("/v1/me").json()["webhook_secret"]
        verify(secret, headers, body)  # raises when the signature does not match
        sent = json.loads(body)
        job = api.get(f"/v1/jobs/{job_id}").json()
        assert sent["id"] == job_id and sent["state"] == "succeeded"
        assert {k: v for k, v in sent.items() if k != "webhook"} == {
            k: v for k, v in job.items() if k != "webhook"}
        deliveries = job["webhook"]["deliveries"]
        while not deliveries:  # the worker records the delivery after the receiver answered
            assert time.monotonic() < deadline, "the delivery was never recorded"
            time.sleep(0.1)
            deliveries = api.get(f"/v1/jobs/{job_id}").json()["webhook"]["deliveries"]
        assert [(d["attempt"], d["status"], d["error"]) for d in deliveries] == [(1, 204, None)]
    finally:
        server.shutdown()


def test_cancel_a_running_job(api, tmp_path):
    big = tmp_path / "big.pdf"
    pdfgen.photo_pdf(big, width=7000, height=5000)
    file_id = upload(api, big)["id"]
    job_id = api.post("/v1/jobs", json={"input": {"file_id": file_id},
                                        "options": {"preset": "high"}}).json()["id"]
    deadline = time.monotonic() + 60
    while api.get(f"/v1/jobs/{job_id}").json()["state"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    r = api.delete(f"/v1/jobs/{job_id}")
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["state"] == "cancelled" and job["result"] is None
    assert job["error"] == {"code": "cancelled", "message": "cancelled by the client"}
    time.sleep(2)  # the worker notices within a second and leaves no result
    again = api.get(f"/v1/jobs/{job_id}").json()
    assert again["state"] == "cancelled" and again["result"] is None
    assert_error(api.delete(f"/v1/jobs/{job_id}"), 409, "job_ended")


def test_compress_with_an_idempotency_key_runs_once(api, text_pdf):
    key = {"Idempotency-Key": uuid.uuid4().hex}
    answers = []
    for _ in range(2):
        with open(text_pdf, "rb") as f:
            answers.append(api.post("/v1/compress", files={"file": ("t.pdf", f)},
                                    data={"preset": "low"}, headers=key))
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    with open(text_pdf, "rb") as f:
        other = api.post("/v1/compress", files={"file": ("t.pdf", f)}, data={"preset": "high"},
                         headers=key)
    assert_error(other, 409, "idempotency_conflict")


def test_a_blob_store_outage_is_a_503(service, text_pdf):
    """An object store that does not answer: uploads get a 503 JSON body, /readyz names it."""
    url = service.api(SQUEEZER_STORAGE_URL="s3://nowhere/x",
                      SQUEEZER_S3_ENDPOINT="http://127.0.0.1:9",
                      AWS_ACCESS_KEY_ID="x", AWS_SECRET_ACCESS_KEY="x", AWS_REGION="us-east-1",
                      SQUEEZER_STORAGE_RETRIES="0", SQUEEZER_STORAGE_CONNECT_TIMEOUT="1",
                      SQUEEZER_STORAGE_RETRY_TIMEOUT="1")
    with open(text_pdf, "rb") as f:
        r = httpx.post(url + "/v1/files", headers={"x-api-key": service.key},
                       files={"file": ("t.pdf", f)}, timeout=60)
    assert_error(r, 503, "storage_unavailable")
    assert r.headers["retry-after"] == "5"
    ready = httpx.get(url + "/readyz", timeout=60)
    assert ready.status_code == 503
    assert ready.json()["checks"]["storage"].startswith("unavailable")
    assert ready.json()["checks"]["database"] == "ok"


def _photo_png(path, width=640, height=480):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 200, width)[None, :, None]
    pixels = (rng.random((height, width, 3)) * 40 + ramp).astype("uint8")
    Image.fromarray(pixels).save(path)
    return path


def test_images_go_through_the_image_engine(api, tmp_path):
    from PIL import Image

    png = _photo_png(tmp_path / "holiday.png")
    uploaded = upload(api, png)
    assert uploaded["mime"] == "image/png"
    r = api.post("/v1/jobs", json={"input": {"file_id": uploaded["id"]}, "wait": 60,
                                   "options": {"format": "webp",
                                               "resize": {"mode": "fit", "width": 320,
                                                          "height": 320}}})
    job = r.json()
    assert job["state"] == "succeeded", job
    out = job["result"]["output"]
    assert (out["name"], out["mime"]) == ("holiday.compressed.webp", "image/webp")
    assert job["result"]["report"]["kind"] == "image"
    data = httpx.get(job["result"]["download_url"]).content
    assert len(data) == out["size"] < png.stat().st_size
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "WEBP" and img.size == (320, 240)
    # the PDF-only knobs are refused by name, image ones by value
    bad = api.post("/v1/jobs", json={"input": {"file_id": uploaded["id"]},
                                     "options": {"format": "bmp-ish"}})
    assert assert_error(bad, 422, "invalid_request")["errors"][0]["field"] == "options.image.format"


def test_eps_and_unknown_bytes_are_refused(api):
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n"
    assert_error(api.post("/v1/files", files={"file": ("x.eps", eps)}), 415, "unsupported_format")
    assert_error(api.post("/v1/files", files={"file": ("x.jpg", b"\x00" * 64)}), 415,
                 "unsupported_format")
