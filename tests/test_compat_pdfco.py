"""PDF.co's /v1/pdf/optimize and /v1/job/check (seeds 002, 003) over real HTTP against
`squeezer serve`: the seed's own Python sample run unmodified but for its three settings,
sync and async answers with exact fields, all five job statuses, the stable output link
(404 until the result exists, no key needed), and every error in PDF.co's shape."""

from __future__ import annotations

import http.server
import io
import re
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import httpx
import pikepdf
import pytest

SAMPLE = Path(__file__).parent / "data" / "pdfco_sample.py"
SEED = Path(__file__).parents[2] / "shared" / "seeds" / "003_20d16a4f89c48979.txt"
SYNC_KEYS = {"url", "pageCount", "error", "status", "name", "credits", "remainingCredits",
             "duration", "outputLinkValidTill", "jobId"}
CHECK_KEYS = {"status", "message", "jobId", "credits", "remainingCredits", "duration"}


class _Source(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    delay: ClassVar[dict[str, float]] = {}

    def do_GET(self):
        path = self.path.split("?")[0]
        if path not in self.files:
            self.send_error(404)
            return
        time.sleep(self.delay.get(path, 0))
        data = self.files[path]
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/pdf")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a cancelled job's fetch hangs up

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def source(fx):
    """Source files on 127.0.0.1 (allowlisted for fetching in the test service)."""
    _Source.files = {
        "/sample.pdf": fx.uncompressed().read_bytes(),
        "/slow.pdf": fx.uncompressed().read_bytes(),
        "/locked.pdf": fx.encrypted().read_bytes(),
        "/notes.pdf": b"plain text, not a PDF\n" * 20,
    }
    _Source.delay = {"/slow.pdf": 3.0}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Source)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def pdfco(service):
    with httpx.Client(base_url=service.url + "/v1", timeout=120,
                      headers={"x-api-key": service.key}) as client:
        yield client


def assert_error(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "status", "message"}, body
    assert body["error"] is True and body["status"] == status
    assert isinstance(body["message"], str) and body["message"]
    return body["message"]


def assert_smaller_pdf(data: bytes, original: Path) -> None:
    with pikepdf.open(io.BytesIO(data)) as out, pikepdf.open(original) as source:
        assert len(out.pages) == len(source.pages)
    assert len(data) < original.stat().st_size


def check(pdfco, job_id, **extra):
    r = pdfco.get("job/check", params={"jobid": job_id, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(pdfco, job_id, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = check(pdfco, job_id)
        if body["status"] != "working":
            return body
        time.sleep(0.2)
    raise AssertionError(f"{job_id} still working after {timeout} s")


def test_the_seed_sample_runs_unmodified(service, source, fx, tmp_path):
    code = SAMPLE.read_text()
    if SEED.exists():  # the copy is the seed's code block, byte for byte
        seed = SEED.read_text()
        start = seed.index("```\n", seed.index("OptimizePdfFromUrlAsynchronously.py")) + 4
        assert code == seed[start:seed.index("\n```", start)] + "\n"
    settings = {"API_KEY": service.key, "BASE_URL": service.url + "/v1",
                "SourceFileURL": source + "/sample.pdf"}
    for name, value in settings.items():
        code, n = re.subn(rf'^{name} = ".*"$', f"{name} = {value!r}", code, flags=re.MULTILINE)
        assert n == 1, name
    script = tmp_path / "sample.py"
    script.write_text(code)
    run = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert ": success" in run.stdout, run.stdout
    saved = tmp_path / ".\\result.pdf"  # the sample's DestinationFile, as a POSIX file name
    assert saved.exists(), run.stdout
    assert_smaller_pdf(saved.read_bytes(), fx.uncompressed())


def test_sync_optimize_answers_with_the_result(pdfco, source, fx):
    r = pdfco.post("pdf/optimize", json={"url": source + "/sample.pdf", "async": False,
                                         "name": "small.pdf", "expiration": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == SYNC_KEYS
    assert body["error"] is False and body["status"] == 200 and body["name"] == "small.pdf"
    assert body["pageCount"] == 2
    for name in ("credits", "remainingCredits", "duration", "pageCount"):
        assert isinstance(body[name], int) and not isinstance(body[name], bool), name
    till = datetime.strptime(body["outputLinkValidTill"], "%Y-%m-%dT%H:%M:%S.0000000Z")
    till = till.replace(tzinfo=UTC)
    assert timedelta(minutes=4) < till - datetime.now(UTC) <= timedelta(minutes=5)
    result = httpx.get(body["url"], timeout=30)  # no key: the link is the credential
    assert result.status_code == 200
    assert_smaller_pdf(result.content, fx.uncompressed())


def test_form_encoded_with_profiles(pdfco, source, fx):
    r = pdfco.post("pdf/optimize", data={
        "url": "cache:" + source + "/sample.pdf", "async": "false", "password": "",
        "profiles": '{"JPEGQuality": 40, "ResampleImages": true, "ResamplingResolution": 96,'
                    ' "GrayscaleImages": true, "remove_metadata": true}'})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "sample.pdf"
    job = httpx.get(f"{pdfco.base_url.scheme}://{pdfco.base_url.netloc.decode()}/v1/jobs/"
                    f"{uuid.UUID(r.json()['jobId'].split('--')[0])}",
                    headers=pdfco.headers).json()
    assert {k: job["options"][k] for k in ("image_quality", "dpi", "color_model",
                                           "remove_metadata")} == {
        "image_quality": 40, "dpi": 96, "color_model": "gray", "remove_metadata": True}


def test_async_link_is_404_until_the_result_exists(pdfco, source, fx):
    r = pdfco.post("pdf/optimize", data={"url": source + "/slow.pdf", "async": "True",
                                         "name": "later.pdf"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == SYNC_KEYS and body["error"] is False and body["pageCount"] == 0
    assert re.fullmatch(r"[0-9A-F]{32}--60", body["jobId"])
    early = httpx.get(body["url"], timeout=30)
    assert_error(early, 404)
    assert check(pdfco, body["jobId"])["status"] == "working"
    posted = pdfco.post("job/check", json={"jobid": body["jobId"]})
    assert posted.status_code == 200 and posted.json()["status"] == "working"
    assert set(posted.json()) == CHECK_KEYS
    done = wait_status(pdfco, body["jobId"])
    assert done["status"] == "success" and done["message"] == "Success"
    assert set(done) == CHECK_KEYS | {"url", "pageCount"}
    assert done["url"] == body["url"]  # the link the optimize answer promised
    assert isinstance(done["duration"], int) and done["duration"] > 0
    result = httpx.get(body["url"], timeout=30)
    assert result.status_code == 200 and result.headers["content-type"] == "application/pdf"
    assert_smaller_pdf(result.content, fx.uncompressed())
    tampered = body["url"].replace("signature=", "signature=0")
    assert_error(httpx.get(tampered, timeout=30), 403)


def test_job_check_statuses(pdfco, service, source):
    unknown = uuid.uuid4().hex.upper() + "--60"
    assert check(pdfco, unknown)["status"] == "working"  # PDF.co: "in work or does not exist"
    assert check(pdfco, unknown, force="true")["status"] == "unknown"
    forced = pdfco.post("job/check", json={"jobId": "nonsense", "force": True})
    assert forced.status_code == 200 and forced.json()["status"] == "unknown"

    slow = pdfco.post("pdf/optimize", json={"url": source + "/slow.pdf", "async": True}).json()
    native_id = uuid.UUID(slow["jobId"].split("--")[0])
    with service.client() as native:  # PDF.co has no cancel call; the native API does
        assert native.delete(f"/v1/jobs/{native_id}").status_code == 200
    aborted = wait_status(pdfco, slow["jobId"])
    assert aborted["status"] == "aborted" and "url" not in aborted

    locked = pdfco.post("pdf/optimize", json={"url": source + "/locked.pdf", "async": True,
                                              "password": "wrong"}).json()
    failed = wait_status(pdfco, locked["jobId"])
    assert failed["status"] == "failed" and "password" in failed["message"].lower()

    other = httpx.Client(base_url=service.url + "/v1",
                         headers={"x-api-key": service.new_key("pdfco-other")})
    r = other.get("job/check", params={"jobid": locked["jobId"], "force": "true"})
    assert r.json()["status"] == "unknown"  # another key's job does not exist for this key


def test_errors_come_in_pdfco_shape(pdfco, service, source):
    url = service.url + "/v1/pdf/optimize"
    assert_error(httpx.post(url, data={"url": source + "/sample.pdf"}), 401)
    assert_error(httpx.post(url, data={"url": source + "/sample.pdf"},
                            headers={"x-api-key": "sqz_" + "y" * 43}), 401)
    assert_error(httpx.get(service.url + "/v1/job/check?jobid=x"), 401)
    assert "url" in assert_error(pdfco.post("pdf/optimize", data={"async": "false"}), 400)
    # a missing source file, a non-PDF, a wrong password: synchronous failures are 400s
    assert_error(pdfco.post("pdf/optimize", data={"url": source + "/gone.pdf"}), 400)
    assert_error(pdfco.post("pdf/optimize", data={"url": source + "/notes.pdf"}), 400)
    message = assert_error(pdfco.post("pdf/optimize", data={"url": source + "/locked.pdf",
                                                            "password": "wrong"}), 400)
    assert "password" in message.lower()
    # bad parameters
    for bad in ({"expiration": "soon"}, {"async": "maybe"}, {"pages": "1-3"},
                {"profiles": "{not json"}, {"profiles": '{"JPEGQuality": 500}'},
                {"profiles": '{"NoSuchKnob": 1}'}):
        assert_error(pdfco.post("pdf/optimize", data={"url": source + "/sample.pdf", **bad}),
                     400)
    assert_error(pdfco.post("pdf/optimize", content=b"{oops",
                            headers={"Content-Type": "application/json"}), 400)
    assert_error(pdfco.get("job/check"), 400)
    # the SSRF policy applies: only 127.0.0.1 is allowlisted in the test service
    assert_error(pdfco.post("pdf/optimize", data={"url": "http://10.1.2.3/a.pdf"}), 400)
    # the native /v1 routes are untouched
    with service.client() as native:
        assert native.get("/v1/me").json()["prefix"]


def test_sync_timeout_is_a_405_and_the_rate_limit_a_429(service, source):
    url = service.api(SQUEEZER_SYNC_WAIT_SECONDS="0.5", SQUEEZER_RATE_LIMIT="3")
    headers = {"x-api-key": service.new_key("pdfco-limited")}
    r = httpx.post(url + "/v1/pdf/optimize", data={"url": source + "/slow.pdf"},
                   headers=headers, timeout=60)
    assert "async" in assert_error(r, 405)
    check = httpx.get(url + "/v1/job/check", params={"jobid": "x"}, headers=headers)
    assert check.json()["remainingCredits"] == 1  # the rate limit stands in for credits
    httpx.get(url + "/v1/job/check", params={"jobid": "x"}, headers=headers)
    limited = httpx.get(url + "/v1/job/check", params={"jobid": "x"}, headers=headers)
    assert_error(limited, 429)
    assert int(limited.headers["retry-after"]) > 0
