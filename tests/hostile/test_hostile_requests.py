"""Hostile requests against the running service: every route answers 4xx in its protocol's
shape, with no traceback or server path, and never connects to a forbidden address."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid

import generate
import httpx
import psycopg
import pytest
from invariants import assert_clean_answer

#: the keys of each protocol's error body (the native one has "code" too)
SHAPES = {"/1.0/": {"success", "status", "id", "message"},
          "/v1/pdf/": {"error", "status", "message"}, "/v1/job/": {"error", "status", "message"},
          "/pdf24/": {"error", "code"}, "/api/": {"Error", "RemainingTokens"}}


def assert_protocol_error(response: httpx.Response, allowed_5xx: tuple[int, ...] = ()) -> dict:
    """A 4xx (PassportPDF: 200 with an Error) in the error shape of the route's protocol."""
    assert_clean_answer(response, allowed_5xx)
    path = response.request.url.path
    body = response.json()
    expected = next((keys for prefix, keys in SHAPES.items() if path.startswith(prefix)),
                    {"success", "status", "id", "code", "message"})
    if path.startswith("/api/"):
        assert response.status_code == 200 and body["Error"] is not None, body
    else:
        assert 400 <= response.status_code < 500 or response.status_code in allowed_5xx, (
            path, response.status_code, body)
    assert expected <= set(body), (path, body)
    return body


@pytest.fixture(scope="module")
def client(service):
    with httpx.Client(base_url=service.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def documented(client):
    """``check(response)``: the answer's status is in the OpenAPI document for its operation,
    with the error schema of its protocol (21 statuses were "undocumented" to schemathesis)."""
    import re

    spec = client.get("/openapi.json").json()
    table = [(re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(t)) + "$"), ops)
             for t, ops in spec["paths"].items()]

    def check(response: httpx.Response) -> None:
        path, method = response.request.url.path, response.request.method.lower()
        operations = next(ops for pattern, ops in table if pattern.match(path))
        answer = operations[method]["responses"].get(str(response.status_code))
        assert answer is not None, (method, path, response.status_code, "undocumented")
        if response.status_code >= 400:
            ref = answer["content"]["application/json"]["schema"]["$ref"]
            schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
            assert set(schema["required"]) <= set(response.json()), (path, ref, response.text)

    return check


def test_deep_json_and_oversized_bodies_are_4xx_on_every_route(service, client, documented):
    """20 000 nested arrays raised RecursionError (500) on the vendor routes; a 300 MB body
    grew the API to 1.3 GB.  Both are a 4xx in each protocol's own shape now."""
    too_big = b'{"url": "' + b"a" * ((1 << 20) + 10) + b'"}'
    for method, path, headers in generate.json_routes(service.key):
        for body in (generate.DEEP_JSON, b'{"url": "http://[::1', too_big, b"\xff\xfe{"):
            r = client.request(method, path, content=body,
                             headers={**headers, "content-type": "application/json"})
            answer = assert_protocol_error(r)
            documented(r)
            if body is too_big and not path.endswith("/DocumentLoad"):  # (carries a file)
                status = answer.get("status") or r.status_code
                if path.startswith("/api/"):
                    assert answer["Error"]["ExtResultStatus"] == "too_large"
                else:
                    assert status == 413 or (path.startswith(("/v1/pdf", "/v1/job"))
                                             and r.status_code == 400), (path, r.text[:300])


def test_urls_that_point_inside_are_refused_with_no_connection(service, client, canary,
                                                               documented):
    """Internal literals, broken brackets, schemes, userinfo, encodings: every URL-taking
    route refuses them at submit time, in its protocol's shape, and nothing connects."""
    headers = {"Authorization": f"Bearer {service.key}", "x-api-key": service.key,
               "X-PassportPDF-API-Key": service.key}
    for template in generate.BAD_URLS:
        url = template.format(canary=canary.port)
        for path, body, _ in generate.url_bodies(url):
            r = client.post(path, json=body, headers=headers)
            if path == "/v1/compress" and r.status_code in (200, 202):
                pytest.fail(f"{url!r} accepted by {path}: {r.text[:300]}")
            assert_protocol_error(r)
            documented(r)
    time.sleep(0.5)
    assert canary.hits == []


def test_a_page_tree_cycle_is_pdf_invalid_everywhere_without_a_traceback(service, client):
    """It failed as internal_error with the whole traceback in the 500 body of
    /v1/compress, the job JSON and the webhook body."""
    hooks: list[bytes] = []
    receiver = _receiver(hooks)
    data = generate.page_tree_cycle()
    auth = {"Authorization": f"Bearer {service.key}"}
    sync = client.post("/v1/compress", files={"file": ("cycle.pdf", data)}, headers=auth)
    assert_clean_answer(sync)
    assert sync.status_code == 422 and sync.json()["code"] == "pdf_invalid", sync.text
    job = client.get(f"/v1/jobs/{sync.json()['job_id']}", headers=auth)
    assert_clean_answer(job)
    assert job.json()["error"]["code"] == "pdf_invalid"
    # asynchronous, with a webhook, through Compressor.app too
    hooked = client.post("/1.0/upload", files={"file": ("cycle.pdf", data)}, auth=(service.key, ""),
                       data={"webhook.url": f"http://127.0.0.1:{receiver.server_port}/hook"})
    assert_clean_answer(hooked)
    deadline = time.monotonic() + 60
    while not hooks and time.monotonic() < deadline:
        time.sleep(0.2)
    receiver.shutdown()
    assert hooks, "no webhook"
    body = json.loads(hooks[0])
    assert body["success"] is False and "Traceback" not in hooks[0].decode()
    assert_clean_answer(client.get(f"/1.0/jobs/{hooked.json()['id']}", auth=(service.key, "")))


def test_error_messages_name_the_users_file_never_a_server_path(service, client):
    """qpdf quotes the file it opened (the job's scratch copy, or the store's path): the
    answer and the job JSON name the file as the client uploaded it instead."""
    auth = {"Authorization": f"Bearer {service.key}"}
    broken = b"%PDF-1.7\n%garbage, no objects and no trailer\n"
    r = client.post("/v1/compress", files={"file": ("Quarterly report.pdf", broken)},
                    headers=auth)
    assert_clean_answer(r)
    assert r.status_code == 422 and r.json()["code"] == "pdf_invalid", r.text
    assert "Quarterly report.pdf: unable to find trailer" in r.json()["message"], r.text
    job = client.get(f"/v1/jobs/{r.json()['job_id']}", headers=auth)
    assert_clean_answer(job)
    assert "Quarterly report.pdf" in job.json()["error"]["message"], job.text


def _receiver(seen: list[bytes], status: int = 200) -> http.server.ThreadingHTTPServer:
    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# --- storage connectors: the SSRF vectors ---------------------------------------------------

S3 = {"access_key_id": "AKIAHOSTILE", "secret_access_key": "hostile-secret"}


def test_connector_fields_that_name_other_hosts_are_refused(service, client, canary):
    """An S3 region of ``x@HOST:PORT/#``, an Azure account of ``x@HOST:PORT/`` or
    ``HOST:PORT#`` and a GCS key with its own ``gcs_base_url`` made the worker connect to
    forbidden addresses.  Each field is held to its provider's grammar: 422, no connection."""
    target = f"127.0.0.2:{canary.port}"
    auth = (service.key, "")
    cases = [
        ({"provider": "s3", "credentials": {**S3, "region": f"x@{target}/#"}}, "region"),
        ({"provider": "azure", "credentials": {"account_name": f"x@{target}/",
                                               "account_key": "a2V5"}}, "account_name"),
        ({"provider": "azure", "credentials": {"account_name": f"{target}#",
                                               "account_key": "a2V5"}}, "account_name"),
        ({"provider": "gcs", "credentials": {"service_account_key": {
            "type": "service_account", "client_email": "a@b.iam.gserviceaccount.com",
            "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
            "gcs_base_url": f"http://{target}"}}}, "service_account_key"),
        ({"provider": "minio", "credentials": {**S3, "endpoint": f"http://{target}"}},
         "endpoint"),
        ({"provider": "minio", "credentials": {**S3, "endpoint": f"http://{target}/x?y#z"}},
         "endpoint"),
    ]
    for body, field in cases:
        r = client.post("/1.0/connectors", json=body, auth=auth)
        answer = assert_protocol_error(r)
        assert r.status_code == 422 and answer["errors"][0]["field"] == f"credentials.{field}", \
            answer
    time.sleep(0.5)
    assert canary.hits == []


def test_a_redirecting_endpoint_never_gets_the_signed_request_elsewhere(service, client, canary,
                                                                         fx):
    """An S3 endpoint answering 307 redirected the signed request (its AWS4-HMAC-SHA256
    header) to a forbidden address.  Every connection of a connector store goes through the
    pinning proxy: no redirect is followed, and the job fails with export_failed."""
    hops: list[str] = []

    class Redirect(http.server.BaseHTTPRequestHandler):
        def _any(self) -> None:
            hops.append(self.command)
            self.send_response(307)
            self.send_header("Location", f"http://127.0.0.2:{canary.port}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_PUT = do_POST = do_GET = do_HEAD = _any

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        auth = (service.key, "")
        created = client.post("/1.0/connectors", auth=auth, json={"provider": "minio", "credentials": {
            **S3, "endpoint": f"http://127.0.0.1:{server.server_port}"}})
        assert created.status_code == 201, created.text
        r = client.post("/1.0/upload", auth=auth, files={"file": ("a.pdf", fx.text().read_bytes())},
                      data={"options": json.dumps({"store": {
                          "connector": created.json()["id"], "bucket": "bucket"}})})
        # export_failed is 502 by design (docs/compat.md): the client's own endpoint failed
        answer = assert_protocol_error(r, allowed_5xx=(502,))
        assert r.status_code == 502 and "redirect" in answer["message"], answer
    finally:
        server.shutdown()
    assert hops, "the endpoint was never asked"
    assert canary.hits == []


def test_a_stored_connector_is_checked_again_when_used(service, client, canary, fx):
    """Rows sealed before the grammars (or by another version) are validated by the worker
    too: a hostile region fails the export without any connection."""
    from squeezer.storage import connectors

    key_id = uuid.UUID(client.get("/v1/me", headers={"x-api-key": service.key}).json()["id"])
    signing_key = (service.data / "secret_key").read_text().strip().encode()
    connector_id = uuid.uuid4()
    sealed = connectors.seal(signing_key, connector_id, key_id, {
        **S3, "region": f"x@127.0.0.2:{canary.port}/#"})
    with psycopg.connect(service.database_url, autocommit=True) as conn:
        conn.execute("insert into storage_connectors (id, key_id, provider, name, sealed) "
                     "values (%s, %s, 's3', 'legacy', %s)", (connector_id, key_id, sealed))
    auth = (service.key, "")
    r = client.post("/1.0/upload", auth=auth, files={"file": ("a.pdf", fx.text().read_bytes())},
                  data={"options": json.dumps({"store": {"connector": str(connector_id),
                                                         "bucket": "bucket"}})})
    answer = assert_protocol_error(r, allowed_5xx=(502,))
    assert "region" in json.dumps(answer), answer
    time.sleep(0.5)
    assert canary.hits == []


# --- the seed protocols, as their documents say -----------------------------------------------


def test_seed_protocol_details(service, client, fx):
    key = service.key
    # PDF.co: seed 002's curl example sends raw JSON as a form (curl -d, no Content-Type)
    r = client.post("/v1/job/check", content=b'{"jobid": "00000000000000000000000000000000--60"}',
                  headers={"x-api-key": key, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 200 and r.json()["status"] == "working", r.text
    # Compressor.app: a type error is a type error; X-RateLimit-* on 401 and invalid JSON
    r = client.post("/1.0/fetch", json={"url": 5}, auth=(key, ""))
    assert r.json()["errors"] == [{"field": "url", "message": "must be a string, not a number"}]
    for r in (client.post("/1.0/fetch", content=b"{", auth=(key, "")),
              client.post("/1.0/fetch", content=b"{", headers={"content-type": "application/json"},
                        auth=(key, "")),
              client.post("/1.0/fetch", json={}, auth=("sqz_not_a_key", ""))):
        assert r.status_code in (401, 422), r.text
        for name in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset"):
            assert r.headers[name].isdigit(), (r.status_code, dict(r.headers))
    # PassportPDF: an unknown key has no tokens while the server counts requests
    r = client.post("/api/document/DocumentClose", json={"FileId": "x"},
                  headers={"X-PassportPDF-API-Key": "nope"})
    assert r.json()["Error"]["ResultCode"] == "InvalidAPIKey" and r.json()["RemainingTokens"] == 0
    # /metrics: worker processes, not Procrastinate's two workers per process
    metrics = client.get("/metrics").text
    assert "\nsqueezer_workers 1\n" in metrics, metrics
    # PDF24: the job map carries client.ip, referrer, resultType and lang
    uploaded = client.post("/pdf24/client.php?action=upload", headers={"x-api-key": key},
                         files={"file": ("a.pdf", fx.text().read_bytes())}).json()
    job = client.post("/pdf24/client.php?action=compressPdf", headers={"x-api-key": key},
                    json={"files": uploaded, "dpi": 144, "imageQuality": 75,
                          "mode": "normal"}).json()["jobId"]
    status = client.get("/pdf24/client.php", params={"action": "getStatus", "jobId": job},
                      headers={"x-api-key": key, "Referer": "https://tools.pdf24.org/",
                               "Accept-Language": "de-DE,de;q=0.9"}).json()
    assert {status["job"][k] for k in ("client.ip", "referrer", "resultType", "lang")} == {
        "127.0.0.1", "https://tools.pdf24.org/", "2", "de"}
