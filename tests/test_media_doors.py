"""Video and audio through every door: the CLI (compress with its outputs named by the result,
analyze), the native API (upload, job with progress, download), the Python client and
Compressor.app's /1.0 (its ``video.*`` options, its 422 on ``video.resize``, result types)."""

from __future__ import annotations

import http.server
import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from mediafx import decoded_frames, describe, ffmpegs_of, run

from squeezer.client import Client, JobCancelled


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "squeezer", *map(str, args)],
                          capture_output=True, text=True, timeout=600, cwd=cwd)


# --- CLI ---------------------------------------------------------------------------------------


def test_cli_compresses_a_mov_into_an_mp4_named_after_the_result(media, tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    src = folder / "clip.mov"
    shutil.copy(media.rotated(), src)
    proc = cli("compress", src, "--video-crf", "30", "--json")
    assert proc.returncode == 0, proc.stderr
    (entry,) = json.loads(proc.stdout)
    out = folder / "clip.compressed.mp4"
    assert entry["ok"] and entry["output"] == str(out)
    assert entry["report"]["kind"] == "video" and entry["report"]["format_out"] == "mp4"
    assert out.stat().st_size == entry["report"]["output_bytes"] < src.stat().st_size
    assert decoded_frames(out) == decoded_frames(src)
    assert sorted(p.name for p in folder.iterdir()) == ["clip.compressed.mp4", "clip.mov"]


def test_cli_errors_for_media(media, tmp_path):
    bad = cli("compress", media.truncated_mp4(), "-o", tmp_path / "x.mp4")
    assert bad.returncode == 1
    assert bad.stderr.strip().endswith("media_invalid: the MP4/MOV file is truncated: its "
                                       "index (moov box) is missing")
    usage = cli("compress", media.film(), "--video-resize", "auto:x", "-o", tmp_path / "y.mp4")
    assert usage.returncode == 2 and "--video-resize auto:x: when mode='auto', at least one " \
        "of 'width' or 'height' must be specified." in usage.stderr
    late = cli("compress", media.film(), "--video-trim-start", "9", "-o", tmp_path / "z.mp4")
    assert late.returncode == 1
    assert late.stderr.strip().endswith("invalid_input: video.trim_start 9 s is at or past "
                                        "the end of the 2.00 s video")
    assert not any((tmp_path / n).exists() for n in ("x.mp4", "y.mp4", "z.mp4"))


def test_cli_analyze_media_and_json(media):
    proc = cli("analyze", media.film(), "--json")
    assert proc.returncode == 0, proc.stderr
    a = json.loads(proc.stdout)
    assert a["kind"] == "video" and a["media"]["format"] == "mp4"
    assert [s["type"] for s in a["media"]["streams"]] == ["video", "audio"]
    assert a["bytes"]["video"] > a["bytes"]["audio"] > 0
    assert sum(a["bytes"].values()) == a["file_bytes"]
    levels = {e["level"]: e for e in a["estimates"]}
    assert list(levels) == ["lossless", "low", "medium", "high", "extreme"]
    assert levels["medium"]["crf"] is not None and levels["medium"]["bytes"] > 0
    assert levels["extreme"]["bytes"] <= levels["low"]["bytes"]
    text = cli("analyze", media.mp3(), "--no-estimate")
    assert text.returncode == 0, text.stderr
    assert "Streams" in text.stdout and "mp3" in text.stdout and "cover picture" in text.stdout


# --- native API and the Python client ------------------------------------------------------------


@pytest.fixture(scope="module")
def api(service):
    with service.client() as client:
        yield client


def test_api_job_with_progress_and_download(api, media, tmp_path):
    with media.film().open("rb") as f:
        uploaded = api.post("/v1/files", files={"file": ("film.mp4", f)}).json()
    assert uploaded["mime"] == "video/mp4"
    job = api.post("/v1/jobs", json={"input": {"file_id": uploaded["id"]},
                                     "options": {"level": "medium",
                                                 "video": {"max_fps": 20}}}).json()
    seen = set()
    deadline = time.monotonic() + 300
    while True:
        state = api.get(f"/v1/jobs/{job['id']}").json()
        seen.add(round(state["progress"], 2))
        if state["state"] in ("succeeded", "failed", "cancelled"):
            break
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert state["state"] == "succeeded", state
    # progress is a fraction that ends at 1 (a quiet machine finishes this 2 s clip between
    # two polls: that the engine's progress reaches a running job is checked on a longer clip
    # in test_client_progress_long_poll_and_cancel_stops_ffmpeg)
    assert all(0 <= p <= 1 for p in seen) and state["progress"] == 1.0, seen
    result = state["result"]
    report = result["report"]
    assert report["kind"] == "video" and report["fps"] == 20 and report["crf"] is not None
    assert report["vmaf"] >= 95 and report["duration"] > 1.9
    assert result["output"]["mime"] == "video/mp4"
    assert result["output"]["name"] == "film.compressed.mp4"
    data = httpx.get(result["download_url"], timeout=60).content
    assert len(data) == result["output"]["size"] < uploaded["size"]
    out = tmp_path / "out.mp4"
    out.write_bytes(data)
    assert decoded_frames(out) == 40
    bad = api.post("/v1/jobs", json={"input": {"file_id": uploaded["id"]},
                                     "options": {"video": {"resize": {"mode": "auto"}}}})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{
        "field": "options.video.resize",
        "message": "When mode='auto', at least one of 'width' or 'height' must be specified."}]


def test_client_compresses_audio(service, media, tmp_path):
    src = tmp_path / "chord.wav"
    shutil.copy(media.wav(), src)
    with Client(service.url, service.key) as client:
        result = client.compress(src, tmp_path / "chord.flac", level="lossless")
    out = tmp_path / "chord.flac"
    assert out.stat().st_size == result.output_bytes < src.stat().st_size
    assert "Audio: flac" in describe(out)


def test_client_progress_long_poll_and_cancel_stops_ffmpeg(service, media, tmp_path):
    src = tmp_path / "film.mp4"
    shutil.copy(media.film(), src)
    seen: list[tuple[str, float]] = []
    with Client(service.url, service.key) as client:
        job = client.submit(src, level="high", on_progress=lambda s, f: seen.append((s, f)))
        done = client.wait(job, timeout=300, on_progress=lambda s, f: seen.append((s, f)))
        assert done.succeeded and done.result is not None
        assert done.result.report["kind"] == "video" and done.result.report["vmaf"] >= 93
        assert ("uploading", 1.0) in seen
        out = client.download(done, tmp_path / "out.mp4")
        assert decoded_frames(out) == decoded_frames(src)
        # a longer clip, so that its search is running when the job is cancelled
        longer = tmp_path / "longer.mp4"
        run("-stream_loop", "9", "-i", str(src), "-c", "copy", str(longer))
        job = client.submit(longer, level="low")
        # generous bounds: they only matter on a machine loaded far past its two cores (this
        # test failed once at load average ~25, its output lost), never on a healthy one
        # the engine's own progress reaches the client while ffmpeg runs (on the 2 s film a
        # quiet machine finished between two long polls, so it is watched on this one)
        deadline = time.monotonic() + 300
        moving = False
        while not (moving and ffmpegs_of("", under=service.server.proc.pid)):
            job = client.get_job(job, wait=0.2)
            moving = moving or (job.state == "running" and 0 < job.progress < 1)
            assert not job.ended and time.monotonic() < deadline, job
        client.cancel(job)
        with pytest.raises(JobCancelled):
            client.wait(job, timeout=180)
        stopped = time.monotonic() + 60  # the worker looks for a cancel every ~0.5 s
        while ffmpegs_of("", under=service.server.proc.pid) and time.monotonic() < stopped:
            time.sleep(0.05)
        left = ffmpegs_of("", under=service.server.proc.pid)
        assert left == [], [Path(f"/proc/{p}/cmdline").read_bytes() for p in left]


class _Clip(http.server.BaseHTTPRequestHandler):
    data = b""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "video/mp4")
        self.send_header("Content-Length", str(len(self.data)))
        self.end_headers()
        self.wfile.write(self.data)

    def log_message(self, *args: object) -> None:
        pass


# --- Compressor.app ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compressor(service):
    with httpx.Client(base_url=service.url, auth=(service.key, ""), timeout=300) as client:
        yield client


def test_compressor_video_options_and_the_seed_422(compressor, media):
    data = media.film().read_bytes()
    r = compressor.post("/1.0/upload", files={"file": ("film.mp4", data)},
                        data={"options": json.dumps({"compression": "high",
                                                     "video": {"crf": 30,
                                                               "resize": {"mode": "auto",
                                                                          "width": 160}}})})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] is True
    assert body["input"]["type"] == "video" and body["input"]["format"] == "mp4"
    assert body["output"]["type"] == "video" and body["output"]["mime"] == "video/mp4"
    out = httpx.get(body["url"], timeout=60).content
    assert len(out) == body["output"]["size"] < len(data)
    bad = compressor.post("/1.0/upload", files={"file": ("film.mp4", data)},
                          data={"options": json.dumps({"video": {"resize": {"mode": "auto"}}})})
    assert bad.status_code == 422
    assert bad.json()["errors"] == [{
        "field": "video.resize",
        "message": "When mode='auto', at least one of 'width' or 'height' must be specified."}]
    assert bad.json()["message"] == "Validation failed for one or more parameters"


def test_compressor_audio_upload(compressor, media):
    data = media.mp3().read_bytes()
    r = compressor.post("/1.0/upload", files={"file": ("song.mp3", data)})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["output"]["type"] == "audio" and body["output"]["mime"] == "audio/mpeg"
    assert body["output"]["size"] < len(data)


def test_compressor_fetch_with_video_options(compressor, media):
    _Clip.data = media.film().read_bytes()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Clip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/clips/film.mp4"
        r = compressor.post("/1.0/fetch", json={
            "url": url, "video": {"crf": 32, "resize": {"mode": "fit", "width": 160,
                                                        "height": 160}}})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["output"]["type"] == "video" and body["output"]["mime"] == "video/mp4"
        out = httpx.get(body["url"], timeout=60).content
        assert len(out) == body["output"]["size"] < len(_Clip.data)
        bad = compressor.post("/1.0/fetch", json={
            "url": url, "video": {"resize": {"mode": "auto"}}})
        assert bad.status_code == 422
        assert bad.json()["errors"] == [{
            "field": "video.resize",
            "message": "When mode='auto', at least one of 'width' or 'height' must be specified."}]
    finally:
        server.shutdown()
