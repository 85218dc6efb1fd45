"""Containers through every door: the CLI (compress and analyze), the native API and its Python
client, and Compressor.app's /1.0 upload and fetch, on real documents and archives."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
import zipfile
from pathlib import Path

import httpx
import pytest
import test_cli
from containerfx import corpus_file, docx, png_bytes, photo

cli = test_cli.cli  # the fixture, shared


def docx_paragraphs(data: bytes) -> list[str]:
    import docx as python_docx

    return [p.text for p in python_docx.Document(io.BytesIO(data)).paragraphs]


def small_tar_gz(path: Path) -> Path:
    with tarfile.open(path, "w:gz", compresslevel=1) as tf:
        for name, data in (("pkg/a.txt", b"alpha\n" * 500), ("pkg/pic.png",
                                                              png_bytes(photo(200, 150), 0))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def test_cli_compresses_documents_books_and_archives_in_one_batch(cli, engine_tmp: Path) -> None:
    docx(cli.dir / "letter.docx", picture=png_bytes(photo(600, 400)))
    (cli.dir / "book.epub").write_bytes(
        corpus_file("docs", "unstructured__winter-sports.epub").read_bytes())
    small_tar_gz(cli.dir / "src.tar.gz")
    # (the LibreOffice render check has its own test; here it would only add minutes)
    # three containers and their images in one process: more than the fixture's 2 minutes
    # when the machine is shared
    proc = test_cli.squeezer("compress", "letter.docx", "book.epub", "src.tar.gz", "--level",
                             "low", "--json", "--no-archive-render-check", cwd=cli.dir,
                             tmp=engine_tmp, timeout=900)
    assert proc.returncode == 0, proc.stderr
    entries = {e["input"]: e for e in json.loads(proc.stdout)}
    assert entries["letter.docx"]["output"] == "letter.compressed.docx"
    assert entries["book.epub"]["output"] == "book.compressed.epub"
    assert entries["src.tar.gz"]["output"] == "src.tar.compressed.gz"
    for entry in entries.values():
        report = entry["report"]
        assert entry["ok"] and report["kind"] == "archive", entry
        assert report["output_bytes"] <= report["input_bytes"]
        assert report["members"] and {"name", "type", "bytes_before", "bytes_after",
                                      "action"} <= set(report["members"][0])
    out = (cli.dir / "letter.compressed.docx").read_bytes()
    assert docx_paragraphs(out) == docx_paragraphs((cli.dir / "letter.docx").read_bytes())
    help_text = cli("compress", "--help").stdout
    assert "--archive-drop-signatures" in help_text and "--archive-precompress" in help_text


def test_cli_errors_for_hostile_archives_are_one_line(cli) -> None:
    from containerfx import raw_zip

    (cli.dir / "slip.zip").write_bytes(raw_zip([(b"../../evil.sh", b"echo hi\n" * 10, 8)]))
    proc = cli("compress", "slip.zip")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: slip.zip: archive_unsafe:")
    assert "Traceback" not in proc.stderr
    assert not (cli.dir / "slip.compressed.zip").exists()


def test_cli_analyze_shows_bytes_by_member_type(cli) -> None:
    src = corpus_file("docs", "python-docx__having-images.docx")
    (cli.dir / "doc.docx").write_bytes(src.read_bytes())
    proc = cli("analyze", "doc.docx", "--json", "--no-estimate")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["kind"] == "archive" and result["format"] == "docx"
    assert result["container"] == "ooxml" and result["members"] == 20
    types = {t["type"]: t for t in result["by_type"]}
    assert {"png", "jpeg", "xml"} <= set(types)
    assert sum(t["bytes_before"] for t in result["by_type"]) <= src.stat().st_size
    assert result["largest"][0]["type"] == "png"
    text = cli("analyze", "doc.docx", "--no-estimate").stdout
    assert "Where the bytes are (by member type)" in text and "word/media/image2.png" in text


@pytest.fixture(scope="module")
def client(service):
    from squeezer.client import Client

    with Client(service.url, service.key) as c:
        yield c


def test_client_and_native_api_compress_a_document(client, tmp_path: Path) -> None:
    src = docx(tmp_path / "memo.docx", picture=png_bytes(photo(500, 400)))
    result = client.compress(src, tmp_path / "memo.small.docx", level="medium")
    assert result.output_bytes < result.input_bytes
    assert result.report["kind"] == "archive" and result.report["format_out"] == "docx"
    assert any(m["type"] in ("png", "jpeg") for m in result.report["members"])
    assert docx_paragraphs(result.path.read_bytes()) == docx_paragraphs(src.read_bytes())
    assert result.job.result.output.name.endswith(".compressed.docx")


class _Files(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args: object) -> None:
        pass


def test_compressor_app_upload_and_fetch_of_archives(service, tmp_path: Path) -> None:
    book = corpus_file("docs", "unstructured__winter-sports.epub").read_bytes()
    with httpx.Client(base_url=service.url, auth=(service.key, ""), timeout=300) as api:
        r = api.post("/1.0/upload", files={"file": ("book.epub", book, "application/epub+zip")},
                     data={"compression": "high", "archive": json.dumps({"recurse": True})})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["input"]["format"] == "epub" and body["input"]["mime"] == "application/epub+zip"
        assert body["output"]["name"] == "book.epub" and body["output"]["format"] == "epub"
        out = httpx.get(body["url"], timeout=60).content
        assert len(out) == body["output"]["size"] < len(book)
        assert hashlib.sha1(out).hexdigest() == body["output"]["sha1"]
        with zipfile.ZipFile(io.BytesIO(out)) as z:
            assert z.infolist()[0].filename == "mimetype" and z.testzip() is None
        bad = api.post("/1.0/upload", files={"file": ("book.epub", book, "application/epub+zip")},
                       data={"archive": json.dumps({"display_dpi": 5})})
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "archive.display_dpi"

        _Files.body = small_tar_gz(tmp_path / "src.tar.gz").read_bytes()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/dl/src.tar.gz"
            r = api.post("/1.0/fetch", json={"url": url, "compression": "lossless"})
        finally:
            server.shutdown()
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["output"]["format"] == "tar.gz" and body["output"]["size"] < len(_Files.body)
        assert body["output"]["name"] == "src.tar.gz"  # the two-part extension kept whole
        out = httpx.get(body["url"], timeout=60).content
        with tarfile.open(fileobj=io.BytesIO(out)) as tf:
            assert tf.extractfile("pkg/a.txt").read() == b"alpha\n" * 500
