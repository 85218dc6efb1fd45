"""squeezer.client and `squeezer compress --server` against a real `squeezer serve` (the
`service` fixture): real HTTP, real PDFs, real worker, real PostgreSQL."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pdfgen
import pikepdf
import pytest
from servicefx import free_port

from squeezer.client import (
    AuthenticationError,
    Client,
    Conflict,
    ConnectionError,
    FileInfo,
    InputError,
    JobCancelled,
    JobFailed,
    RateLimitError,
    SqueezerError,
    UnsupportedType,
    ValidationError,
)

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "pdf"


@pytest.fixture(scope="module")
def client(service):
    with Client(service.url, service.key) as c:
        yield c


def pages(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        return len(pdf.pages)


def not_a_pdf(tmp_path: Path) -> Path:
    path = tmp_path / "notes.pdf"
    path.write_text("these are notes, not a PDF\n" * 20)
    return path


def no_partials(directory: Path) -> None:
    assert [p.name for p in directory.iterdir() if p.name.endswith(".part")] == []


# --- the library ----------------------------------------------------------------------------


def test_compress_roundtrip(client, fx, tmp_path):
    src = fx.uncompressed()
    result = client.compress(src, tmp_path / "small.pdf", preset="lossless")
    assert result.path == tmp_path / "small.pdf"
    assert result.input_bytes == src.stat().st_size
    assert result.output_bytes == result.path.stat().st_size < result.input_bytes
    assert result.saved_bytes == result.input_bytes - result.output_bytes
    assert result.report["pages"] == pages(src) == pages(result.path)
    assert result.job.succeeded and result.job.progress == 1.0
    assert [t.split() for t in pdfgen.page_texts(result.path)] == \
        [t.split() for t in pdfgen.page_texts(src)]
    assert oct(result.path.stat().st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    no_partials(tmp_path)


def test_typed_options_reach_the_engine(client, fx, tmp_path):
    from squeezer.engines.options import Options

    options = Options(level="low", pdf={"linearize": True, "dpi": 200})
    result = client.compress(fx.photo(), tmp_path / "typed.pdf", options=options)
    settings = result.report["settings"]
    assert (settings["level"], settings["linearize"], settings["dpi"]) == ("low", True, 200)
    assert result.job.options == {"level": "low", "pdf": {"dpi": 200, "linearize": True}}
    # keywords go on top of the model, the way the API's flat names do
    job = client.submit(fx.text(), options=options, remove_metadata=True)
    assert job.options == {"level": "low", "pdf": {"dpi": 200, "linearize": True},
                           "remove_metadata": True}


def test_default_output_is_beside_the_input(client, fx, tmp_path):
    src = tmp_path / "letter.pdf"
    src.write_bytes(fx.text().read_bytes())
    result = client.compress(src)
    assert result.path == tmp_path / "letter.compressed.pdf" and result.path.is_file()


def test_upload_submit_wait_download(client, tmp_path):
    src = CORPUS / "pikepdf__congress-gray.pdf"
    if not src.is_file():
        pytest.skip("the shared corpus is not here")
    info = client.upload(src)
    assert isinstance(info, FileInfo) and info.size == src.stat().st_size
    assert info.sha256 == hashlib.sha256(src.read_bytes()).hexdigest() and info.name == src.name
    seen: list[tuple[str, float]] = []
    job = client.submit(info, preset="low", remove_metadata=True)
    assert job.state in ("queued", "running", "succeeded") and job.options["preset"] == "low"
    job = client.wait(job.id, timeout=120, on_progress=lambda s, f: seen.append((s, f)))
    assert job.succeeded and job.result is not None and job.error is None
    assert job.result.input is not None and job.result.input.id == info.id
    out = client.download(job, tmp_path)  # a directory: the result's own name inside it
    assert out == tmp_path / job.result.output.name
    assert hashlib.sha256(out.read_bytes()).hexdigest() == job.result.output.sha256
    assert pages(out) == pages(src)
    assert all(stage in ("queued", "running") for stage, _ in seen)
    no_partials(tmp_path)


def test_wrong_key(service, fx):
    with Client(service.url, "sqz_" + "x" * 43) as bad:
        with pytest.raises(AuthenticationError) as caught:
            bad.upload(fx.text())
    err = caught.value
    assert (err.status, err.code) == (401, "unauthorized") and err.request_id
    assert "API key" in err.message


def test_not_a_pdf(client, tmp_path):
    src = not_a_pdf(tmp_path)
    with pytest.raises(UnsupportedType) as caught:
        client.compress(src, tmp_path / "out.pdf")
    assert (caught.value.status, caught.value.code) == (415, "unsupported_format")
    assert not (tmp_path / "out.pdf").exists()
    no_partials(tmp_path)


def test_failed_job_carries_the_engine_code(client, fx, tmp_path):
    src = fx.encrypted()
    with pytest.raises(JobFailed) as caught:
        client.compress(src, tmp_path / "out.pdf")
    assert caught.value.code == "password_required"
    assert caught.value.job.state == "failed" and caught.value.job.error.code == "password_required"
    assert not (tmp_path / "out.pdf").exists()
    result = client.compress(src, tmp_path / "out.pdf", password="user")
    assert result.report["pages"] == len(pdfgen.page_texts(src, password="user"))
    assert result.job.options["password"] == "********"  # never echoed back


def test_invalid_option(client, fx):
    with pytest.raises(ValidationError) as caught:
        client.submit(fx.text(), preset="tiny")
    assert caught.value.status == 422
    assert [e["field"] for e in caught.value.errors] == ["options.level"]


def test_missing_path_fails_before_any_request(fx, tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: any request would fail
    with Client(nowhere, "k", retries=0) as c:
        with pytest.raises(InputError) as caught:
            c.compress(tmp_path / "missing.pdf")
        assert caught.value.code == "file_not_found" and isinstance(caught.value,
                                                                    FileNotFoundError)
        with pytest.raises(InputError):
            c.submit(tmp_path)  # a directory
        with pytest.raises(InputError) as caught:
            c.compress(fx.text(), tmp_path / "no" / "such" / "dir.pdf")
        assert caught.value.code == "invalid_output"
        with pytest.raises(ConnectionError) as caught:
            c.upload(fx.text())
        assert caught.value.code == "server_unreachable" and caught.value.status is None


def test_a_uuid_is_a_file_id_even_beside_a_file_of_that_name(tmp_path, monkeypatch):
    """A ``uuid.UUID`` names an upload: it was handed to ``upload`` (a TypeError from
    ``Path(UUID)``) when a file in the working directory had its name."""
    file_id = uuid.uuid4()
    monkeypatch.chdir(tmp_path)
    (tmp_path / str(file_id)).write_bytes(b"%PDF-1.7\n")
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: the request is what fails
    with Client(nowhere, "k", retries=0) as c:
        with pytest.raises(ConnectionError) as caught:
            c.submit(file_id)
    assert caught.value.code == "server_unreachable"


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Serves a PDF's first bytes, then holds the connection until released."""

    release: threading.Event

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Type", "application/pdf")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        self.wfile.write(b"%PDF-1.7\n")
        self.wfile.flush()
        self.release.wait(60)

    def log_message(self, *args: object) -> None:
        pass


def test_cancel(client):
    release = threading.Event()
    handler = type("Handler", (_Trickle,), {"release": release})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job = client.submit(f"http://127.0.0.1:{server.server_port}/slow.pdf")
        assert job.state in ("queued", "running")
        cancelled = client.cancel(job)
        assert cancelled.state == "cancelled" and cancelled.error.code == "cancelled"
        with pytest.raises(JobCancelled):
            client.wait(job, timeout=10)
        assert client.wait(job, raise_on_failure=False).state == "cancelled"
        with pytest.raises(Conflict) as caught:
            client.cancel(job)
        assert caught.value.code == "job_ended"
        with pytest.raises(JobCancelled):
            client.download(job, "unused.pdf")
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def test_jobs_pages(client, fx):
    made = {client.submit(fx.tiny(), preset="lossless").id for _ in range(3)}
    listed = [job.id for job in client.jobs(page_size=2)]
    assert len(listed) == len(set(listed)) and made <= set(listed)
    for job_id in made:
        client.wait(job_id, timeout=120)
    succeeded = {job.id for job in client.jobs(state="succeeded", page_size=2)}
    assert made <= succeeded


def test_rate_limit_is_retried(service, fx):
    url = service.api(SQUEEZER_RATE_LIMIT="2", SQUEEZER_RATE_WINDOW_SECONDS="3")
    key = service.new_key("rate-limited")
    with Client(url, key, retries=0) as impatient:
        with pytest.raises(RateLimitError) as caught:
            for _ in range(20):  # some 3 s window sees a third request, however slow the machine
                impatient.me()
    assert caught.value.status == 429 and caught.value.retry_after is not None
    # a rolling window: a full current window must end and the previous one's weight decay,
    # so the wait is at most two window lengths
    assert 1 <= caught.value.retry_after <= 2 * 3
    with Client(url, key, retries=5) as patient:
        for _ in range(5):
            assert patient.me()["rate_limit"]["limit"] == 2


# --- squeezer compress --server -------------------------------------------------------------


def squeezer(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SQUEEZER_API_KEY"}
    if key:
        env["SQUEEZER_API_KEY"] = key
    return subprocess.run([sys.executable, "-m", "squeezer", "compress", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_cli_server_mode(service, fx, tmp_path):
    out = tmp_path / "out.pdf"
    done = squeezer(str(fx.uncompressed()), "-o", str(out), "--server", service.url,
                    "--api-key", service.key)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and out.stat().st_size < fx.uncompressed().stat().st_size
    assert "total: 1 file compressed" in done.stdout and done.stderr == ""

    bad = not_a_pdf(tmp_path)
    done = squeezer(str(bad), "--json", "--out-dir", str(tmp_path / "o"), "--server", service.url,
                    key=service.key)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {bad}: unsupported_format: unsupported file type ({bad.name}): "
        "send a PDF or an image (JPEG, PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP, SVG)"]
    assert '"code": "unsupported_format"' in done.stdout
    assert list((tmp_path / "o").iterdir()) == []


def test_cli_server_mode_batch(service, fx, tmp_path):
    """Several files in flight: the good ones are written, each bad one is one line."""
    srcs = [fx.text(), fx.tiny(), fx.encrypted(), tmp_path / "missing.pdf"]
    done = squeezer(*map(str, srcs), "--out-dir", str(tmp_path / "o"), "--jobs", "3",
                    "--server", service.url, key=service.key)
    assert done.returncode == 1
    lines = sorted(done.stderr.splitlines())
    assert len(lines) == 2
    assert lines[0].startswith(f"error: {srcs[2]}: password_required: ")
    assert lines[0].endswith("give --password")
    assert lines[1] == f"error: {srcs[3]}: file_not_found: no such file"
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted([srcs[0].name,
                                                                          srcs[1].name])


def test_cli_server_unreachable_or_refusing(service, fx, tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    done = squeezer(str(fx.text()), "-o", str(tmp_path / "x.pdf"), "--server", nowhere,
                    "--api-key", "k")
    assert done.returncode == 1 and not (tmp_path / "x.pdf").exists()
    lines = done.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: --server {nowhere}: server_unreachable: cannot reach ")

    done = squeezer(str(fx.text()), "--server", service.url, "--api-key", "sqz_wrong")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: --server {service.url}: unauthorized: missing or invalid API key; "
        "check --api-key or SQUEEZER_API_KEY"]

    done = squeezer(str(fx.text()), "--server", service.url)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "SQUEEZER_API_KEY" in done.stderr


def test_errors_are_one_hierarchy():
    for cls in (AuthenticationError, RateLimitError, ValidationError, UnsupportedType, JobFailed,
                ConnectionError, InputError, Conflict):
        assert issubclass(cls, SqueezerError)
    with pytest.raises(SqueezerError):
        Client("localhost:8000", "k")


def test_cli_server_mode_with_an_image(service, tmp_path):
    import numpy as np
    from PIL import Image

    src = tmp_path / "shot.png"
    pixels = np.random.default_rng(5).random((300, 400, 3)) * 60 + np.linspace(0, 180, 400)[
        None, :, None]
    Image.fromarray(pixels.astype("uint8")).save(src)
    done = squeezer(str(src), "--format", "webp", "--resize", "fit:200x200", "--server",
                    service.url, key=service.key)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "shot.compressed.webp"
    with Image.open(out) as img:
        assert img.format == "WEBP" and img.size == (200, 150)
    assert out.stat().st_size < src.stat().st_size
