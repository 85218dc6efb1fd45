"""Blob store: the same behaviour on a local directory and on a real S3-protocol server.

The S3 half runs against moto's standalone server on a loopback port (started
once per session); it is skipped, with the reason, only when moto is not
installed. Both halves check real outcomes: bytes and sha256 round-trip,
nothing left behind by an aborted upload, named errors, bounded memory.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from squeezer.storage import (
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    InvalidKey,
    InvalidRange,
    LocalBlobStore,
    StorageConfigError,
    StorageError,
    StorageFull,
    StorageSettings,
    StorageUnavailable,
    open_store,
    validate_key,
    validate_prefix,
)
from squeezer.storage._translate import translate

SRC = Path(__file__).resolve().parents[1] / "src"
BUCKET = "squeezer-test"
MB = 1 << 20


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def chunks_of(data: bytes, size: int = 64 * 1024):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def zeros(total: int, size: int = 64 * 1024):
    chunk = bytes(size)
    for _ in range(total // size):
        yield chunk


async def collect(aiter) -> bytes:
    return b"".join([chunk async for chunk in aiter])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- backends ------------------------------------------------------------------


@dataclass
class S3Server:
    endpoint: str
    client: Any  # boto3 S3 client, to look behind the store's back


@pytest.fixture(scope="session")
def s3_server():
    server_mod = pytest.importorskip(
        "moto.server", reason="S3 tests need moto's standalone server: pip install 'moto[server]'"
    )
    boto3 = pytest.importorskip("boto3", reason="S3 tests need boto3 (installed with moto)")
    port = free_port()
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=BUCKET)
    yield S3Server(endpoint, client)
    server.stop()


def s3_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT",
        "AWS_ENDPOINT_URL_S3",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


def fast_settings(endpoint: str | None) -> StorageSettings:
    return StorageSettings(
        s3_endpoint=endpoint, connect_timeout=1, retries=2, retry_timeout=2
    )


@dataclass
class Backend:
    kind: str
    store: BlobStore
    prefix: str = ""
    server: S3Server | None = None
    root: Path | None = None
    extra: dict = field(default_factory=dict)

    def leftovers(self) -> list[str]:
        """Traces of unfinished writes: temp files, or open multipart uploads."""
        if self.kind == "local":
            partial = self.root / ".partial"
            return sorted(p.name for p in partial.iterdir()) if partial.exists() else []
        uploads = self.server.client.list_multipart_uploads(Bucket=BUCKET, Prefix=self.prefix)
        return [u["Key"] for u in uploads.get("Uploads", [])]

    def raw_keys(self) -> list[str]:
        """Every object/file in the backend, looked at without the store."""
        if self.kind == "local":
            return sorted(
                str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file()
            )
        listing = self.server.client.list_objects_v2(Bucket=BUCKET, Prefix=self.prefix + "/")
        return sorted(o["Key"][len(self.prefix) + 1 :] for o in listing.get("Contents", []))


@pytest.fixture(params=["local", "s3"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    if request.param == "local":
        store = open_store(None, tmp_path / "data")
        assert isinstance(store, LocalBlobStore)
        return Backend("local", store, root=tmp_path / "data" / "blobs")
    server = request.getfixturevalue("s3_server")
    s3_env(monkeypatch)
    prefix = f"t-{uuid.uuid4().hex}"
    store = open_store(f"s3://{BUCKET}/{prefix}", tmp_path, fast_settings(server.endpoint))
    return Backend("s3", store, prefix=prefix, server=server)


# -- round trips -------------------------------------------------------------------


def test_put_file_and_get_to_file_roundtrip_20mb(backend: Backend, tmp_path: Path) -> None:
    data = os.urandom(20 * MB + 12345)  # not a multiple of the part size
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    stored = run(backend.store.put_file("uploads/abc-123", src))
    assert (stored.size, stored.sha256) == (len(data), digest)
    info = run(backend.store.head("uploads/abc-123"))
    assert info.size == len(data)
    assert run(backend.store.exists("uploads/abc-123"))

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = out_dir / "result.bin"
    dest.write_bytes(b"old content")
    got = run(backend.store.get_to_file("uploads/abc-123", dest))
    assert (got.size, got.sha256) == (len(data), digest)
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == digest
    assert sorted(p.name for p in out_dir.iterdir()) == ["result.bin"]  # no temp file left
    assert backend.leftovers() == []


def test_put_stream_counts_and_hashes(backend: Backend) -> None:
    data = os.urandom(3 * MB + 7)
    stored = run(
        backend.store.put_stream("uploads/s1", chunks_of(data, 100_003), max_bytes=len(data))
    )
    assert (stored.size, stored.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert run(collect(backend.store.stream("uploads/s1"))) == data


def test_empty_blob(backend: Backend) -> None:
    async def nothing():
        for chunk in (b"", b""):
            yield chunk

    stored = run(backend.store.put_stream("uploads/empty", nothing()))
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert run(backend.store.head("uploads/empty")).size == 0
    assert run(collect(backend.store.stream("uploads/empty"))) == b""


def test_overwrite_replaces_whole_blob(backend: Backend) -> None:
    run(backend.store.put_stream("results/j1/out.pdf", chunks_of(b"a" * 5000)))
    run(backend.store.put_stream("results/j1/out.pdf", chunks_of(b"b" * 10)))
    assert run(collect(backend.store.stream("results/j1/out.pdf"))) == b"b" * 10


# -- limits and aborted uploads ----------------------------------------------------


def test_max_bytes_aborts_and_leaves_nothing(backend: Backend) -> None:
    key = "uploads/too-big"
    sent = []

    async def source():
        for _ in range(30):  # 30 MB, well past the 9 MB limit and a multipart part
            sent.append(1)
            yield bytes(MB)

    with pytest.raises(BlobTooLarge) as info:
        run(backend.store.put_stream(key, source(), max_bytes=9 * MB))
    assert info.value.code == "blob_too_large" and info.value.max_bytes == 9 * MB
    assert len(sent) == 10  # stopped reading at the first chunk over the limit
    assert not run(backend.store.exists(key))
    assert backend.raw_keys() == []
    assert backend.leftovers() == []


def test_max_bytes_exact_limit_is_accepted(backend: Backend) -> None:
    stored = run(backend.store.put_stream("uploads/exact", chunks_of(b"x" * 1000), max_bytes=1000))
    assert stored.size == 1000


def test_aborted_overwrite_keeps_old_blob(backend: Backend) -> None:
    run(backend.store.put_stream("uploads/keep", chunks_of(b"old")))
    with pytest.raises(BlobTooLarge):
        run(backend.store.put_stream("uploads/keep", zeros(2 * MB), max_bytes=MB))
    assert run(collect(backend.store.stream("uploads/keep"))) == b"old"
    assert backend.leftovers() == []


def test_source_error_propagates_unchanged(backend: Backend) -> None:
    class ClientGone(Exception):
        pass

    async def source():
        yield bytes(MB)
        raise ClientGone("client disconnected")

    with pytest.raises(ClientGone):
        run(backend.store.put_stream("uploads/gone", source()))
    assert not run(backend.store.exists("uploads/gone"))
    assert backend.leftovers() == []


def test_cancelled_upload_leaves_nothing(backend: Backend) -> None:
    """A caller that gives up (timeout, shutdown) mid-upload: the multipart
    upload is aborted, not left behind, and nothing appears at the key."""

    async def slow_source():
        for _ in range(100):
            yield os.urandom(MB)
            await asyncio.sleep(0.01)

    async def give_up():
        await asyncio.wait_for(backend.store.put_stream("uploads/cancelled", slow_source()), 0.3)

    with pytest.raises(asyncio.TimeoutError):
        run(give_up())
    assert not run(backend.store.exists("uploads/cancelled"))
    assert backend.raw_keys() == []
    assert backend.leftovers() == []


# -- reads ---------------------------------------------------------------------------


def test_range_reads(backend: Backend) -> None:
    data = bytes(range(256)) * 40  # 10240 bytes
    run(backend.store.put_stream("results/r/out.pdf", chunks_of(data)))

    async def read(start: int, end: int | None):
        reader = await backend.store.open_range("results/r/out.pdf", start, end)
        return reader.start, reader.end, reader.size, await collect(reader)

    assert run(read(0, 10)) == (0, 10, len(data), data[:10])
    assert run(read(5000, 5001)) == (5000, 5001, len(data), data[5000:5001])
    assert run(read(10000, None)) == (10000, len(data), len(data), data[10000:])
    assert run(read(10000, 99999)) == (10000, len(data), len(data), data[10000:])  # clamped
    for start in (len(data), len(data) + 100):
        with pytest.raises(InvalidRange) as info:
            run(read(start, None))
        assert info.value.size == len(data) and info.value.code == "range_not_satisfiable"
    with pytest.raises(ValueError):
        run(read(10, 5))


def test_stream_chunks(backend: Backend) -> None:
    data = os.urandom(3 * MB)
    run(backend.store.put_stream("results/s/out.pdf", chunks_of(data, MB)))
    chunks = run(collect_list(backend.store.stream("results/s/out.pdf", chunk_size=256 * 1024)))
    assert b"".join(chunks) == data
    assert max(len(c) for c in chunks) <= 2 * MB  # streamed in pieces, not one buffer


async def collect_list(aiter) -> list[bytes]:
    return [chunk async for chunk in aiter]


def test_missing_key(backend: Backend, tmp_path: Path) -> None:
    dest = tmp_path / "dest.bin"
    dest.write_bytes(b"keep me")
    with pytest.raises(BlobNotFound) as info:
        run(backend.store.head("uploads/nope"))
    assert info.value.code == "blob_not_found" and not info.value.retryable
    with pytest.raises(BlobNotFound):
        run(backend.store.open_range("uploads/nope", 0, 10))
    with pytest.raises(BlobNotFound):
        run(collect(backend.store.stream("uploads/nope")))
    with pytest.raises(BlobNotFound):
        run(backend.store.get_to_file("uploads/nope", dest))
    assert dest.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dest")) == []
    assert not run(backend.store.exists("uploads/nope"))


# -- deletes -------------------------------------------------------------------------


def test_delete_is_idempotent(backend: Backend) -> None:
    run(backend.store.delete("uploads/never-existed"))
    run(backend.store.put_stream("uploads/d", chunks_of(b"x")))
    run(backend.store.delete("uploads/d"))
    assert not run(backend.store.exists("uploads/d"))
    run(backend.store.delete("uploads/d"))
    assert backend.raw_keys() == []


def test_delete_prefix_matches_whole_segments(backend: Backend) -> None:
    for key in (
        "results/job1/out.pdf",
        "results/job1/pages/p1.png",
        "results/job10/out.pdf",
        "results/job1x",
    ):
        run(backend.store.put_stream(key, chunks_of(key.encode())))
    assert run(backend.store.delete_prefix("results/job1")) == 2
    assert backend.raw_keys() == ["results/job10/out.pdf", "results/job1x"]
    assert run(backend.store.delete_prefix("results/job1/")) == 0  # again: nothing left, no error
    if backend.kind == "local":
        assert not (backend.root / "results" / "job1").exists()  # empty directories cleaned up


# -- keys ----------------------------------------------------------------------------

BAD_KEYS = [
    "",
    "/etc/passwd",
    "../../../etc/passwd",
    "uploads/../../x",
    "uploads/./x",
    "..",
    ".",
    "uploads//x",
    "..\\..\\x",
    "uploads\\x",
    "uploads/x\x00y",
    "uploads/\nx",
    "uploads/.hidden",
    "uploads/x#1",
    "uploads/über",
    "uploads/a b",
    "uploads/%2e%2e",
    "a" * 300,
    "a/" * 600 + "a",
    None,
    b"uploads/x",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=lambda k: repr(k)[:30])
def test_bad_keys_are_refused(backend: Backend, key: Any, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"data")
    store = backend.store
    calls = [
        lambda: store.put_file(key, src),
        lambda: store.put_stream(key, chunks_of(b"data")),
        lambda: store.get_to_file(key, tmp_path / "out.bin"),
        lambda: store.open_range(key, 0, 1),
        lambda: store.head(key),
        lambda: store.exists(key),
        lambda: store.delete(key),
        lambda: store.delete_prefix(key),
        lambda: store.signed_url(key, 60),
    ]
    for call in calls:
        with pytest.raises(InvalidKey) as info:
            run(call())
        assert info.value.code == "invalid_key"
    assert backend.raw_keys() == []
    assert not (tmp_path / "out.bin").exists()


def test_good_keys_are_accepted(backend: Backend) -> None:
    for key in (
        "uploads/0b9f3c1e-2d4a-4e8a-9a53-6c1f1d1e2f3a",
        "results/job-42/out.pdf",
        "x",
        "a_b/c.d-e",
    ):
        run(backend.store.put_stream(key, chunks_of(b"1")))
        assert run(backend.store.head(key)).size == 1


def test_prefix_validation_refuses_everything() -> None:
    for prefix in ("", "/", "//", "../x"):
        with pytest.raises(InvalidKey):
            validate_prefix(prefix)
    assert validate_prefix("results/job1/") == "results/job1"
    with pytest.raises(InvalidKey):
        validate_key("results/job1/")  # a key, unlike a prefix, has no trailing slash


# -- signed URLs -----------------------------------------------------------------------


def test_signed_url(backend: Backend) -> None:
    data = os.urandom(100_000)
    run(backend.store.put_stream("results/sig/out.pdf", chunks_of(data)))
    url = run(backend.store.signed_url("results/sig/out.pdf", timedelta(seconds=90)))
    if backend.kind == "local":
        assert url is None  # the API serves local blobs itself
        return
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == data
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-Expires"] == ["90"]
    signed_at = datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - signed_at).total_seconds()) < 300
    assert query["X-Amz-Signature"][0]
    # moto does not enforce X-Amz-Expires, so expiry is checked through the
    # signed parameters above; real S3/MinIO answer 403 once they lapse.
    with pytest.raises(ValueError):
        run(backend.store.signed_url("results/sig/out.pdf", timedelta(days=8)))
    with pytest.raises(ValueError):
        run(backend.store.signed_url("results/sig/out.pdf", 0))


# -- outages -----------------------------------------------------------------------------


def test_s3_down_is_storage_unavailable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port: every operation fails with the retryable 503 error, quickly
    (connect refused, 2 retries with 100-200 ms backoff)."""
    s3_env(monkeypatch)
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    store = open_store(f"s3://{BUCKET}/down", tmp_path, fast_settings(endpoint))
    src = tmp_path / "src.bin"
    src.write_bytes(b"x" * 1000)
    calls = [
        lambda: store.head("uploads/x"),
        lambda: store.exists("uploads/x"),
        lambda: store.open_range("uploads/x", 0, 10),
        lambda: store.get_to_file("uploads/x", tmp_path / "out.bin"),
        lambda: store.put_file("uploads/x", src),
        lambda: store.put_stream("uploads/x", chunks_of(b"abc")),
        lambda: store.delete("uploads/x"),
        lambda: store.delete_prefix("uploads"),
    ]
    for call in calls:
        with pytest.raises(StorageUnavailable) as info:
            run(call())
        assert info.value.retryable and info.value.code == "storage_unavailable"
    assert not (tmp_path / "out.bin").exists()
    # Signing needs no network: the URL can still be made.
    assert run(store.signed_url("uploads/x", 60)).startswith(endpoint)


def test_missing_bucket_is_storage_unavailable(s3_server: S3Server, tmp_path, monkeypatch) -> None:
    s3_env(monkeypatch)
    store = open_store("s3://no-such-bucket/p", tmp_path, fast_settings(s3_server.endpoint))
    with pytest.raises(StorageUnavailable):
        run(store.put_stream("uploads/x", chunks_of(b"abc")))


def test_error_translation() -> None:
    from obstore import exceptions as oe

    assert isinstance(
        translate(OSError(errno.ENOSPC, "No space left"), op="put", key="k"), StorageFull
    )
    assert isinstance(
        translate(OSError(errno.EFBIG, "File too large"), op="put", key="k"), StorageFull
    )
    full = oe.GenericError("Generic LocalFileSystem error: No space left on device (os error 28)")
    assert isinstance(translate(full, op="put", key="k"), StorageFull)
    down = oe.GenericError(
        "Generic S3 error: Error performing HEAD http://h/b/k - HTTP error: error sending request"
    )
    assert isinstance(translate(down, op="head", key="k"), StorageUnavailable)
    server = oe.GenericError(
        "Generic S3 error: Server returned non-2xx status code: 503 Service Unavailable"
    )
    assert isinstance(translate(server, op="head", key="k"), StorageUnavailable)
    assert isinstance(
        translate(oe.PermissionDeniedError("403"), op="head", key="k"), StorageUnavailable
    )
    assert isinstance(
        translate(oe.UnauthenticatedError("401"), op="head", key="k"), StorageUnavailable
    )
    assert isinstance(translate(FileNotFoundError("gone"), op="head", key="k"), BlobNotFound)
    assert isinstance(
        translate(FileNotFoundError("NoSuchBucket"), op="put_stream", key="k"), StorageUnavailable
    )
    other = translate(oe.GenericError("something new"), op="head", key="k")
    assert type(other) is StorageError and not other.retryable


# -- configuration ---------------------------------------------------------------------------


def test_open_store_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s3_env(monkeypatch)
    assert open_store(None, tmp_path).root == tmp_path / "blobs"
    assert open_store("", tmp_path).root == tmp_path / "blobs"
    assert open_store("elsewhere", tmp_path).root == tmp_path / "elsewhere"
    assert open_store(str(tmp_path / "abs"), tmp_path).root == tmp_path / "abs"
    assert open_store((tmp_path / "u").as_uri(), tmp_path).root == tmp_path / "u"
    s3 = open_store(
        "s3://bucket/some/prefix", tmp_path, StorageSettings(s3_endpoint="http://127.0.0.1:9")
    )
    assert type(s3) is BlobStore and s3.url == "s3://bucket/some/prefix"
    for bad in (
        "ftp://host/x",
        "s3://",
        "s3://key:secret@bucket/p",
        "s3://bucket/p?x=1",
        "file://host/x",
    ):
        with pytest.raises(StorageConfigError):
            open_store(bad, tmp_path)
    with pytest.raises(StorageConfigError):
        open_store("s3://bucket/p", tmp_path, StorageSettings(s3_endpoint="ftp://127.0.0.1"))


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SQUEEZER_S3_ENDPOINT", "http://minio:9000")
    monkeypatch.setenv("SQUEEZER_STORAGE_RETRIES", "5")
    from squeezer.config import Config

    settings = Config().storage
    assert settings.s3_endpoint == "http://minio:9000" and settings.retries == 5


# -- local directory guarantees ----------------------------------------------------------

CHILD_PRELUDE = """
import asyncio, json, os, resource, signal, sys, time
from datetime import timedelta
from pathlib import Path
from squeezer.storage import StorageSettings, open_store
"""


def run_child(
    script: str, *args: str, env: dict | None = None, timeout: float = 60
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONPATH": str(SRC), **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", CHILD_PRELUDE + textwrap.dedent(script), *args],
        check=False,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


def test_local_write_is_invisible_until_complete(tmp_path: Path) -> None:
    store = open_store(None, tmp_path)
    seen: list[bool] = []

    async def source():
        for _ in range(3):
            yield bytes(2 * MB)
            seen.append(store.path_of("uploads/slow").exists())

    run(store.put_stream("uploads/slow", source()))
    assert seen == [False, False, False]
    assert store.path_of("uploads/slow").stat().st_size == 6 * MB


def test_local_crash_leaves_no_partial_blob(tmp_path: Path) -> None:
    """SIGKILL in the middle of an upload: nothing at the key; the leftover is
    swept by ``sweep_partials``."""
    marker = tmp_path / "marker"
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            CHILD_PRELUDE
            + textwrap.dedent(
                """
                store = open_store(None, Path(sys.argv[1]))
                async def source():
                    yield bytes(3 << 20)
                    yield bytes(3 << 20)
                    Path(sys.argv[2]).write_text("mid-upload")
                    await asyncio.sleep(60)
                    yield b"never"
                asyncio.run(store.put_stream("uploads/crash", source()))
                """
            ),
            str(tmp_path),
            str(marker),
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), "the child never reached the middle of its upload"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    store = open_store(None, tmp_path)
    assert not run(store.exists("uploads/crash"))
    assert not store.path_of("uploads/crash").exists()
    assert len(list(store.partial_dir.iterdir())) == 1
    assert (
        run(store.sweep_partials(timedelta(hours=1))) == 0
    )  # too young: maybe still being written
    assert run(store.sweep_partials(timedelta(0))) == 1
    assert list(store.partial_dir.iterdir()) == []


def test_local_disk_full_is_storage_full(tmp_path: Path) -> None:
    """RLIMIT_FSIZE makes writes fail with EFBIG, as a full disk would with ENOSPC."""
    result = run_child(
        """
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        store = open_store(None, Path(sys.argv[1]))
        resource.setrlimit(resource.RLIMIT_FSIZE, (4 << 20, 4 << 20))
        async def source():
            for _ in range(10):
                yield bytes(1 << 20)
        try:
            asyncio.run(store.put_stream("results/j/out.pdf", source()))
        except Exception as exc:
            print(json.dumps({"type": type(exc).__name__, "retryable": exc.retryable, "code": exc.code}))
        """,
        str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "type": "StorageFull",
        "retryable": True,
        "code": "storage_full",
    }
    store = open_store(None, tmp_path)
    assert not store.path_of("results/j/out.pdf").exists()
    assert list(store.partial_dir.iterdir()) == []


# -- memory ---------------------------------------------------------------------------------


def test_200mb_uploads_keep_memory_bounded(backend: Backend, tmp_path: Path) -> None:
    """A 200 MB put_stream, then a 96 MB put_file, in a fresh process: peak RSS
    grows by well under 60 MB. (The file is smaller only to spare moto, which
    keeps every object in the test process's memory; 96 MB is still 12 parts.)"""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak RSS is read from /proc/self/status (Linux)")
    url = "" if backend.kind == "local" else f"s3://{BUCKET}/{backend.prefix}"
    data_dir = str(backend.root.parent) if backend.kind == "local" else "/nonexistent"
    endpoint = backend.server.endpoint if backend.server else ""
    result = run_child(
        """
        def peak_mb():
            # VmHWM, not ru_maxrss: the latter survives exec, so a child of a
            # big pytest process would inherit its parent's peak.
            with open("/proc/self/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        async def zeros(total):
            # A fresh object per chunk, as a network source gives: a repeated
            # object would let a zero-copy uploader hide its buffering.
            for i in range(total // (64 << 10)):
                yield i.to_bytes(8, "little") * 8192
        async def main():
            settings = StorageSettings(s3_endpoint=sys.argv[3] or None)
            store = open_store(sys.argv[1] or None, Path(sys.argv[2]), settings)
            await store.put_stream("mem/warmup", zeros(64 << 10))  # start runtime and pools
            base = peak_mb()
            stored = await store.put_stream("mem/big", zeros(200 << 20))
            stream_growth = peak_mb() - base
            sparse = Path(sys.argv[4]) / "sparse-96mb.bin"
            with open(sparse, "wb") as f:
                f.truncate(96 << 20)  # reads as zeros, costs no disk
            from_file = await store.put_file("mem/file", sparse)
            sparse.unlink()
            print(json.dumps({"sizes": [stored.size, from_file.size], "base_mb": round(base, 1),
                              "stream_growth_mb": round(stream_growth, 1),
                              "file_growth_mb": round(peak_mb() - base, 1)}))
            await store.delete_prefix("mem")
        asyncio.run(main())
        sys.stdout.flush()
        os._exit(0)  # obstore 0.12 can abort during interpreter teardown; the work is done
        """,
        url,
        data_dir,
        endpoint,
        str(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    print(f"{backend.kind}: {report}")
    assert report["sizes"] == [200 << 20, 96 << 20]
    assert report["stream_growth_mb"] < 60 and report["file_growth_mb"] < 60, report
