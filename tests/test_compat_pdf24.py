"""The PDF24 backend protocol (seed 000) over real HTTP against `squeezer serve`: the seed's
four calls replayed with real PDFs, exact field names and types, several files as one job
and one ZIP, the option mapping, and every error in PDF24's shape (never Squeezer's)."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import httpx
import pdfgen
import pikepdf
import pytest

STATUS_KEYS = {"state", "command", "count", "charset", "service", "creationTime",
               "processing.startTime", "processing.heartbeat", "param.dpi",
               "param.imageQuality", "param.mode", "param.colorModel"}
FILE_KEYS = {"in.name", "in.size", "in.file", "state", "out.file", "out.name", "out.size"}
SEED_OPTIONS = {"dpi": 144, "imageQuality": 75, "mode": "normal", "colorModel": ""}


@pytest.fixture(scope="module")
def pdf24(service):
    """A client of the PDF24 backend: base URL changed, Squeezer's key in a header."""
    with httpx.Client(base_url=service.url + "/pdf24", timeout=120,
                      headers={"x-api-key": service.key}) as client:
        yield client


def upload(client, *paths_or_parts):
    files = []
    for i, item in enumerate(paths_or_parts):
        name, data = (item.name, item.read_bytes()) if hasattr(item, "read_bytes") else item
        files.append((f"file{i}", (name, data, "application/pdf")))
    return client.post("client.php", params={"action": "upload"}, files=files)


def compress(client, uploaded, **options):
    body = {"files": uploaded, **SEED_OPTIONS, **options}
    return client.post("client.php", params={"action": "compressPdf"},
                       content=json.dumps(body),
                       headers={"Content-Type": "application/json; charset=UTF-8"})


def wait_done(client, job_id, timeout=60):
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = client.get("client.php", params={"action": "getStatus", "jobId": job_id})
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"jobId", "status", "job"} and body["jobId"] == job_id
        assert all(isinstance(v, str) for v in body["job"].values()), body["job"]
        seen.append(body["status"])
        if body["status"] in ("done", "failed"):
            assert set(seen) <= {"waiting", "working", body["status"]}, seen
            return body
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} not done in {timeout} s: {seen[-3:]}")


def download(client, job_id):
    return client.get("client.php", params={"mode": "download", "action": "downloadJobResult",
                                            "jobId": job_id})


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "code"} and body["code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    return body


def assert_smaller_pdf(data: bytes, source) -> None:
    with pikepdf.open(io.BytesIO(data)) as out, pikepdf.open(source) as original:
        assert len(out.pages) == len(original.pages)
    assert len(data) < source.stat().st_size


def test_seed_flow_one_file(pdf24, fx, service):
    source = fx.uncompressed()
    r = upload(pdf24, ("Wireframe Compress PDF.pdf", source.read_bytes()))
    assert r.status_code == 200, r.text
    uploaded = r.json()
    assert isinstance(uploaded, list) and len(uploaded) == 1
    entry = uploaded[0]
    assert set(entry) == {"file", "size", "name", "ctime", "host"}
    assert re.fullmatch(r"upload_[0-9a-f]{32}\.pdf", entry["file"])
    assert entry["size"] == source.stat().st_size and isinstance(entry["size"], int)
    assert entry["name"] == "Wireframe Compress PDF.pdf"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", entry["ctime"])
    assert entry["host"] == service.url.removeprefix("http://")

    r = compress(pdf24, uploaded)
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"jobId"}
    job_id = r.json()["jobId"]
    assert re.fullmatch(r"compressPdf_[0-9a-f]{32}", job_id)

    status = wait_done(pdf24, job_id)
    assert status["status"] == "done", status
    job = status["job"]
    assert STATUS_KEYS | {"out.file", "out.name", "out.size"} | {f"0.{k}" for k in FILE_KEYS} \
        <= set(job)
    assert job["state"] == "3" and job["0.state"] == "3" and job["count"] == "1"
    assert job["command"] == "compressPdf"
    assert (job["param.dpi"], job["param.imageQuality"], job["param.mode"],
            job["param.colorModel"]) == ("144", "75", "normal", "")
    assert job["0.in.file"] == entry["file"] and job["0.in.size"] == str(entry["size"])
    assert job["0.in.name"] == job["out.name"] == job["0.out.name"] == entry["name"]
    for name in ("creationTime", "processing.startTime", "processing.heartbeat"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d GMT", job[name]), name

    result = download(pdf24, job_id)
    assert result.status_code == 200
    assert result.headers["content-type"] == "application/pdf"
    assert 'filename="Wireframe Compress PDF.pdf"' in result.headers["content-disposition"]
    assert str(len(result.content)) == job["out.size"] == job["0.out.size"]
    assert_smaller_pdf(result.content, source)


def test_several_files_are_one_job_and_one_zip(pdf24, fx):
    first, second = fx.uncompressed(), fx.text()
    r = upload(pdf24, ("a.pdf", first.read_bytes()), ("b.pdf", second.read_bytes()),
               ("a.pdf", first.read_bytes()))
    assert r.status_code == 200, r.text
    uploaded = r.json()
    assert [u["name"] for u in uploaded] == ["a.pdf", "b.pdf", "a.pdf"]
    assert len({u["file"] for u in uploaded}) == 3
    job_id = compress(pdf24, uploaded).json()["jobId"]
    assert re.fullmatch(r"compressPdf_[0-9a-f]{96}", job_id)
    status = wait_done(pdf24, job_id)
    assert status["status"] == "done", status
    job = status["job"]
    assert job["count"] == "3" and job["out.name"] == "compressed.zip"
    assert [job[f"{i}.out.name"] for i in range(3)] == ["a.pdf", "b.pdf", "a (2).pdf"]

    result = download(pdf24, job_id)
    assert result.status_code == 200 and result.headers["content-type"] == "application/zip"
    assert result.headers["content-length"] == job["out.size"] == str(len(result.content))
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == ["a.pdf", "b.pdf", "a (2).pdf"]
        for i, (name, source) in enumerate(zip(archive.namelist(), [first, second, first])):
            data = archive.read(name)
            assert str(len(data)) == job[f"{i}.out.size"]
            with pikepdf.open(io.BytesIO(data)) as out, pikepdf.open(source) as original:
                assert len(out.pages) == len(original.pages)
    assert archive.getinfo("a.pdf").file_size < first.stat().st_size


def test_options_map_onto_the_engine(pdf24, tmp_path):
    source = tmp_path / "colour.pdf"
    pdfgen.photo_pdf(source, width=900, height=600)
    uploaded = upload(pdf24, source).json()
    job_id = compress(pdf24, uploaded, dpi=72, imageQuality=40, colorModel="gray").json()["jobId"]
    status = wait_done(pdf24, job_id)
    assert status["status"] == "done", status
    assert (status["job"]["param.dpi"], status["job"]["param.imageQuality"],
            status["job"]["param.colorModel"]) == ("72", "40", "gray")
    result = download(pdf24, job_id)
    assert_smaller_pdf(result.content, source)
    with pikepdf.open(io.BytesIO(result.content)) as out:
        images = list(out.pages[0].get_images().values())
        assert images and all(img.ColorSpace == "/DeviceGray" for img in images)


def test_errors_come_in_pdf24_shape(pdf24, fx, service, tmp_path):
    source = fx.uncompressed()
    for headers in ({}, {"x-api-key": "sqz_" + "x" * 43}):
        r = httpx.post(service.url + "/pdf24/client.php?action=upload", headers=headers,
                       files={"file": ("a.pdf", source.read_bytes())})
        assert_error(r, 401, "unauthorized")
    # a non-PDF input
    assert_error(upload(pdf24, ("notes.pdf", b"hello, not a pdf")), 415, "unsupported_format")
    assert_error(pdf24.post("client.php", params={"action": "upload"}), 415,
                 "unsupported_media_type")
    uploaded = upload(pdf24, source).json()
    # bad parameters
    assert "mode" in assert_error(compress(pdf24, uploaded, mode="turbo"), 422,
                                  "invalid_parameter")["error"]
    assert "dpi" in assert_error(compress(pdf24, uploaded, dpi=10), 422,
                                 "invalid_parameter")["error"]
    assert_error(compress(pdf24, uploaded, imageQuality="high"), 422, "invalid_parameter")
    assert_error(compress(pdf24, uploaded, colorModel="cmyk"), 422, "invalid_parameter")
    assert_error(pdf24.post("client.php", params={"action": "compressPdf"}, content=b"{nope",
                            headers={"Content-Type": "application/json"}), 400, "invalid_json")
    assert_error(pdf24.post("client.php", params={"action": "frobnicate"}), 400,
                 "unknown_action")
    assert_error(pdf24.get("client.php", params={"action": "compressPdf"}), 405,
                 "method_not_allowed")
    # missing files
    assert_error(compress(pdf24, []), 422, "missing_file")
    missing = [{**uploaded[0], "file": "upload_" + "0" * 32 + ".pdf"}]
    assert_error(compress(pdf24, missing), 404, "missing_file")
    other = httpx.Client(base_url=service.url + "/pdf24", headers={
        "Authorization": f"Bearer {service.new_key('pdf24-other')}"})
    assert_error(compress(other, uploaded), 404, "missing_file")  # another key's upload
    job_id = compress(pdf24, uploaded).json()["jobId"]
    assert_error(other.get("client.php", params={"action": "getStatus", "jobId": job_id}),
                 404, "not_found")
    assert_error(pdf24.get("client.php", params={"action": "getStatus", "jobId": "compressPdf_1"}),
                 404, "unknown_job")
    # a PDF that needs a password (PDF24 has no password parameter): the job fails
    locked = upload(pdf24, fx.encrypted()).json()
    failed_id = compress(pdf24, locked).json()["jobId"]
    status = wait_done(pdf24, failed_id)
    assert status["status"] == "failed" and status["job"]["0.state"] == "4"
    assert status["job"]["0.errorCode"] == "password_required" and status["job"]["error"]
    assert "out.file" not in status["job"]
    assert_error(download(pdf24, failed_id), 409, "not_done")
    wait_done(pdf24, job_id)
