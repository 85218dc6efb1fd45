"""A service of its own, treated roughly: hostile files replayed against it, Slowloris, a
full disk, a stopped database; after each, the invariants and a healthy service.

One test on purpose: the service (its own PostgreSQL, and its temporary directory on
a 4 MiB tmpfs) is started once and the steps share it, in order, on one xdist worker.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import zlib
from pathlib import Path

import generate
import httpx
import psutil
import pytest
from invariants import assert_clean_answer, leaks, temp_leftovers, tiny_tmpfs

HEADER_TIMEOUT = 2
BODY_WINDOW = 2
STATEMENT_TIMEOUT = 2


@pytest.fixture(scope="module")
def chaos(tmp_path_factory):
    from servicefx import Service

    root = tmp_path_factory.mktemp("chaos")
    with tiny_tmpfs(root / "tmpfs") as tmpfs:
        if tmpfs is None:
            pytest.skip("cannot mount a tmpfs here (needs root): the disk-full service step")
        svc = Service(root, TMPDIR=str(tmpfs),
                      SQUEEZER_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
                      SQUEEZER_BODY_TIMEOUT_SECONDS=str(BODY_WINDOW),
                      SQUEEZER_MIN_UPLOAD_BYTES_PER_SECOND="1000",
                      SQUEEZER_MAX_JSON_BYTES="65536",
                      SQUEEZER_DATABASE_STATEMENT_TIMEOUT_SECONDS=str(STATEMENT_TIMEOUT),
                      SQUEEZER_JOB_MEMORY_BYTES=str(1536 << 20))
        try:
            yield svc, tmpfs
        finally:
            svc.stop()


def _healthy(svc, client: httpx.Client) -> None:
    """Invariant 3: the process answers and a benign file still compresses."""
    assert client.get("/healthz").status_code == 200
    r = client.post("/v1/compress", files={"file": ("ok.pdf", generate.text_page())})
    assert r.status_code == 200 and r.json()["state"] == "succeeded", r.text[:500]


def _scratch(tmpfs: Path) -> list[str]:
    """Squeezer's files in the service's temporary directory (job and child directories,
    partial files; multiprocessing's ``pymp-*`` and other libraries' lock files are theirs).

    A warm engine child parked for the next job owns an empty directory there: that is not
    a leftover.  A finished child's directory is removed by the pool's reaper thread, a
    moment after the job's answer, so the check waits a little for it."""
    def parked(name: str) -> bool:
        try:
            return (name.startswith("squeezer-child-") and (tmpfs / name).is_dir()
                    and not any((tmpfs / name).iterdir()))
        except FileNotFoundError:  # the reaper removed it between the listing and now
            return True

    def left() -> list[str]:
        return [name for name in temp_leftovers(tmpfs) if not parked(name)]

    deadline = time.monotonic() + 15
    while (found := left()) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_the_service_holds_under_hostile_files_slow_clients_a_full_disk_and_a_stopped_database(
        chaos):
    svc, tmpfs = chaos
    with httpx.Client(base_url=svc.url, timeout=120,
                      headers={"Authorization": f"Bearer {svc.key}"}) as client:
        _replay_hostile_files(client)
        assert _scratch(tmpfs) == []
        _healthy(svc, client)
        _slow_clients_are_cut(svc, client)
        _healthy(svc, client)
        _bodies_over_the_limit_are_413(client)
        _disk_full_is_disk_full(client, tmpfs)
        _healthy(svc, client)
        _a_stopped_database_is_503_at_once(svc, client)
        _healthy(svc, client)
        assert _scratch(tmpfs) == []


def _replay_hostile_files(client: httpx.Client) -> None:
    """Every hostile file through /v1/compress: a named outcome, no 5xx, no leak."""
    for name, data in generate.hostile_files():
        r = client.post("/v1/compress", files={"file": (name, data)})
        assert_clean_answer(r)
        body = r.json()
        outcome = "ok" if r.status_code == 200 else body.get("code")
        assert outcome in generate.expected(name), (name, r.status_code, body)
        if "job_id" in body:  # the failed job's JSON is as clean as the answer
            assert_clean_answer(client.get(f"/v1/jobs/{body['job_id']}"))


def _slow_clients_are_cut(svc, client: httpx.Client) -> None:
    """Slowloris (a header byte now and then) and a body at 1 byte/s are closed at their
    deadlines with 408, while other clients are served."""
    host, port = svc.url.split("//")[1].split(":")
    results: dict[str, bytes] = {}

    def drip(name: str, head: bytes, drip_bytes: bytes, count: int) -> None:
        with socket.create_connection((host, int(port))) as sock:
            sock.settimeout(HEADER_TIMEOUT + BODY_WINDOW + 20)
            sock.sendall(head)
            try:
                for _ in range(count):
                    sock.sendall(drip_bytes)
                    time.sleep(1.0)
            except OSError:
                pass
            try:
                results[name] = sock.recv(4096)
            except OSError:
                results[name] = b""

    auth = f"Authorization: Bearer {svc.key}\r\n".encode()
    threads = [threading.Thread(target=drip, args=(f"headers-{i}", b"GET /healthz HTTP/1.1\r\n",
                                                   b"X-a: b\r\n", 30)) for i in range(20)]
    threads.append(threading.Thread(target=drip, args=(
        "body", b"POST /v1/files HTTP/1.1\r\nHost: x\r\n" + auth
        + b"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n"
        + b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.pdf"\r\n\r\n'
        + b"%PDF-1.7\n", b"x", 30)))
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    assert client.get("/healthz").status_code == 200  # others are served meanwhile
    for thread in threads:
        thread.join(60)
    assert len(results) == len(threads)
    for name, answer in results.items():
        assert answer.startswith(b"HTTP/1.1 408 "), (name, answer[:200])
        assert not leaks(answer.decode("latin-1"))


def _bodies_over_the_limit_are_413(client: httpx.Client) -> None:
    big = b'{"input": {"url": "' + b"a" * 70000 + b'"}}'
    r = client.post("/v1/jobs", content=big, headers={"content-type": "application/json"})
    assert_clean_answer(r)
    assert r.status_code == 413 and r.json()["code"] == "too_large", r.text
    chunked = client.post("/v1/jobs", content=iter([big[i:i + 4096]
                                                    for i in range(0, len(big), 4096)]),
                          headers={"content-type": "application/json"})
    assert chunked.status_code == 413, chunked.text


def _disk_full_is_disk_full(client: httpx.Client, tmpfs: Path) -> None:
    """The job's result (at lossless, noise stays the input's 6 MiB) does not fit in the
    4 MiB temporary directory: the job fails with disk_full (not a traceback, not a retry
    loop), and nothing partial is left there.  (Local storage hands the engine the stored
    input itself, so the result is what needs the room.)"""
    noise = zlib.compress(os.urandom(6 << 20), 0)
    data = generate.one_image_page(generate.stream(
        b"/Type /XObject /Subtype /Image /Width 2048 /Height 1024 /ColorSpace /DeviceRGB "
        b"/BitsPerComponent 8 /Filter /FlateDecode", noise))
    r = client.post("/v1/compress", files={"file": ("big.pdf", data)}, data={"level": "lossless"})
    assert_clean_answer(r, allowed_5xx=(507,))
    assert r.status_code == 507 and r.json()["code"] == "disk_full", r.text[:500]
    assert "/tmp" not in r.text and _scratch(tmpfs) == []


def _a_stopped_database_is_503_at_once(svc, client: httpx.Client) -> None:
    """PostgreSQL stopped (SIGSTOP, every process of it): requests are answered 503 with
    Retry-After within the statement timeout, instead of hanging (the client gives up at the
    issue's 5 s); it recovers on SIGCONT."""
    postmaster = int((svc.data / "postgres" / "postmaster.pid").read_text().split()[0])
    processes = [psutil.Process(postmaster), *psutil.Process(postmaster).children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGSTOP)
    try:
        for _ in range(2):
            r = client.post("/v1/jobs", json={"input": {"url": "https://example.com/a.pdf"}},
                            timeout=5)
            assert_clean_answer(r, allowed_5xx=(503,))
            assert r.status_code == 503 and r.json()["code"] == "database_unavailable"
            assert int(r.headers["Retry-After"]) > 0
    finally:
        for process in processes:
            process.send_signal(signal.SIGCONT)
    deadline = time.monotonic() + 60
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "no recovery after SIGCONT"
        time.sleep(0.5)
