"""Hostile video and audio: each gets its named error, promptly, with no output and nothing
left in the temp dir (the ``engine_tmp`` fixture checks that after every test), and ffmpeg
never outlives a killed job child."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from mediafx import VIDEO, ffmpegs_of

from squeezer.engines.dispatch import compress_any
from squeezer.engines.errors import EngineError
from squeezer.engines.limits import Limits
from squeezer.engines.media import ffmpeg


def refused(src: Path, tmp_path: Path, code: str, limits: Limits | None = None,
            options: dict | None = None) -> EngineError:
    out = tmp_path / "out.bin"
    started = time.monotonic()
    with pytest.raises(EngineError) as err:
        compress_any(src, out, options or {"level": "medium"}, limits=limits)
    assert err.value.code == code, err.value.message
    assert time.monotonic() - started < 120
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]
    return err.value


def test_truncated_mp4_without_moov(media, tmp_path):
    err = refused(media.truncated_mp4(), tmp_path, "media_invalid")
    assert "moov" in err.message


def test_absurd_dimensions(media, tmp_path):
    err = refused(media.absurd_avi(), tmp_path, "video_too_large")
    assert "20000x20000" in err.message


def test_a_thousand_tracks(media, tmp_path):
    err = refused(media.many_tracks(), tmp_path, "too_many_streams")
    assert "1000 streams" in err.message


def test_a_video_track_with_no_frames(media, tmp_path):
    refused(media.empty_video_track(), tmp_path, "media_invalid")


def test_hls_playlist_inside_an_avi_is_refused(media, tmp_path):
    err = refused(media.hls_in_avi(), tmp_path, "media_refused")
    assert "refused" in err.message


def test_a_playlist_itself_is_not_a_supported_file(media, tmp_path):
    refused(media.playlist(), tmp_path, "unsupported_format")


def test_the_fence_refuses_nested_formats_and_protocols_even_past_our_own_check(media,
                                                                               tmp_path):
    """ffmpeg itself, with the fence's arguments, will not follow a playlist to the file it
    lists (which it plays without the fence), nor open a URL."""
    from squeezer.engines.errors import MediaRefusedError

    playlist = tmp_path / "list.m3u8"
    segment = VIDEO / "shaka-player__hls-ts-h265_0.ts"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:12\n#EXTINF:12.0,\n"
                        f"{segment}\n#EXT-X-ENDLIST\n")
    open_door = ffmpeg.run(["-i", str(playlist), "-f", "null", "-"], check=False,
                           deadline=time.monotonic() + 60)
    assert open_door.ok and open_door.progress.frame > 0  # the attack works without the fence
    with pytest.raises(EngineError):
        ffmpeg.run(ffmpeg.input_args(playlist, None) + ["-f", "null", "-"],
                   deadline=time.monotonic() + 60)
    with pytest.raises(MediaRefusedError):
        ffmpeg.run(["-protocol_whitelist", ffmpeg.PROTOCOLS, "-i", "http://127.0.0.1:9/a.mp4",
                    "-f", "null", "-"], deadline=time.monotonic() + 60)


def test_limits_are_enforced(media, tmp_path):
    refused(media.film(), tmp_path, "media_too_long", Limits(max_media_seconds=1))
    refused(media.film(), tmp_path, "too_many_frames", Limits(max_video_frames=10))
    refused(media.film(), tmp_path, "video_too_large", Limits(max_video_pixels=1000))
    # a fixed-CRF encode of the 2 s film can finish inside 0.5 s on a quiet machine: the search
    # (no crf given) makes and scores samples first, far beyond this deadline on any machine
    refused(media.film(), tmp_path, "timeout",
            Limits(max_seconds=0.3, max_seconds_per_media_second=0))


def test_ffmpeg_memory_cap_is_a_memory_error(media, tmp_path):
    refused(media.film(), tmp_path, "memory_limit", Limits(max_media_memory_bytes=8 << 20),
            {"video": {"crf": 30}})


def test_a_cancelled_job_takes_ffmpeg_with_it(media, tmp_path):
    """The job child is killed by its worker (SIGKILL); PR_SET_PDEATHSIG ends its ffmpeg."""
    from squeezer.jobs.isolation import JobCancelled, compress_isolated

    src = tmp_path / "cancel-me.mp4"
    src.write_bytes(media.film().read_bytes())
    stages: list[str] = []

    def stop() -> bool:
        return "encoding" in stages or "searching" in stages

    started = time.monotonic()
    with pytest.raises(JobCancelled):
        compress_isolated(src, tmp_path / "out.mp4", {"level": "low"}, Limits(),
                          progress=lambda f, s: stages.append(s), should_stop=stop)
    deadline = time.monotonic() + 1.0
    while ffmpegs_of(str(src)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ffmpegs_of(str(src)) == []
    assert time.monotonic() - started < 120
    assert not (tmp_path / "out.mp4").exists()
