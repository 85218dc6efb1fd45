"""One error base: every failure code is declared once, with its HTTP status, by a class.

The code → status table every door answers with is generated from the
classes; a code used anywhere that no class declares is a failure here, never
a silent 422 at run time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from squeezer.errors import SqueezerError, error_classes, error_from_code, status_of

SRC = Path(__file__).resolve().parents[1] / "src" / "squeezer"
#: HTTP-level codes of the API's own answers (routing, auth, validation): not failures of work
HTTP_CODES = {"bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed",
              "conflict", "gone", "length_required", "too_large", "unsupported_media_type",
              "range_not_satisfiable", "invalid_request", "rate_limited", "internal_error",
              "unavailable", "invalid_json", "error"}


def _declared_in_source() -> set[str]:
    """Every ``code = "..."`` class attribute in the server's source (the client's own
    errors are the client's), and every code a job is failed with by name."""
    found: set[str] = set()
    attribute = re.compile(r"""^\s+code = ["']([a-z0-9_]+)["']""", re.MULTILINE)
    ended = re.compile(r"""_end\(services, app, conn, job, ["']([a-z0-9_]+)["']""")
    for path in SRC.rglob("*.py"):
        if path.name != "client.py":
            text = path.read_text()
            found.update(attribute.findall(text) + ended.findall(text))
    return found


def test_every_code_in_the_source_has_a_class_and_a_status():
    table = error_classes()  # raises when one code has two statuses
    missing = sorted(_declared_in_source() - set(table) - HTTP_CODES)
    assert missing == [], f"codes with no SqueezerError class (so no status): {missing}"
    assert all(issubclass(cls, SqueezerError) for cls in table.values())
    assert all(100 <= cls.http_status <= 599 for cls in table.values())


def test_statuses_come_from_the_classes():
    assert status_of("unsupported_format") == 415
    assert status_of("input_too_large") == 413
    assert status_of("pdf_invalid") == 422
    assert status_of("input_gone") == 410
    assert status_of("cancelled") == 409
    assert status_of("export_failed") == 502
    assert status_of("database_unavailable") == 503
    assert status_of("no_such_code_anywhere") == 500  # a bug, not a silent 422
    error = error_from_code("password_required", "give the password")
    assert (error.code, error.http_status, error.message) == (
        "password_required", 422, "give the password")
    assert error_from_code("what", "x").code == "internal_error"
    assert error_classes()["storage_unavailable"].retryable


def test_the_cli_and_the_api_give_the_same_code_for_the_same_file(tmp_path, service):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    junk = tmp_path / "notes.pdf"
    junk.write_bytes(b"just some words, no PDF at all\n" * 20)
    for path in (empty, junk):
        proc = subprocess.run([sys.executable, "-m", "squeezer", "compress", str(path), "-o",
                               str(tmp_path / "out.bin")], capture_output=True, text=True,
                              env={**os.environ, "TMPDIR": str(tmp_path)}, timeout=120)
        assert proc.returncode == 1
        assert f"error: {path}: unsupported_format: " in proc.stderr, proc.stderr
        with path.open("rb") as f:
            r = httpx.post(service.url + "/v1/files", files={"file": (path.name, f)},
                           headers={"x-api-key": service.key}, timeout=60)
        assert (r.status_code, r.json()["code"]) == (415, "unsupported_format")
