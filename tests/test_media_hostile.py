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
    # VP9: no estimate refuses it before ffmpeg starts (x264 and x265 have one, below)
    refused(media.film(), tmp_path, "memory_limit", Limits(max_media_memory_bytes=8 << 20),
            {"video": {"crf": 30, "codec": "vp9"}})


def test_x264_running_out_of_memory_is_a_memory_error():
    """x264 reports a failed allocation in its own words and exits with status 187: that is
    the memory limit, not a damaged file (a 4K video was reported as ``media_invalid``)."""
    result = ffmpeg.Result(187, "x264 [error]: malloc of size 26999616 failed\n"
                           "[vost#0:0/libx264] Error while encoding a frame\n", ffmpeg.Progress(),
                           1.0)
    assert ffmpeg.failure(result, "encoding").code == "memory_limit"


def test_large_frames_are_encoded_with_leaner_settings_under_the_memory_limit(media, tmp_path):
    """x264's lookahead and frame threads hold whole frames: with its preset's settings a 4K
    video needed 1.9 GB and failed under the 1.5 GiB cap of the time.  Under a cap that those
    settings exceed (shown first, on the same 720p clip), the encode picks a shorter
    lookahead and fewer threads, says so, and delivers every frame."""
    from squeezer.engines.errors import MemoryLimitError
    from squeezer.engines.video.encoders import video_args
    from squeezer.engines.video.options import VideoCodec

    src = media.hd()
    cap = 400 << 20
    with pytest.raises(MemoryLimitError):
        ffmpeg.run([*ffmpeg.input_args(src, "mov"), *video_args(VideoCodec.h264, crf=23),
                    "-f", "matroska", "-y", ffmpeg.url(tmp_path / "default.mkv")],
                   memory_bytes=cap, what="encoding")
    out = tmp_path / "out.mp4"
    report = compress_any(src, out, {"level": "medium"},
                          limits=Limits(max_media_memory_bytes=cap))
    assert any("lookahead of 20 frames" in a for a in report.actions), report.actions
    assert report.output_bytes < src.stat().st_size
    from mediafx import decoded_frames
    assert decoded_frames(out) == 50


def test_an_encode_the_memory_limit_cannot_hold_is_refused_before_it_starts(media, tmp_path):
    err = refused(media.hd(), tmp_path, "memory_limit", Limits(max_media_memory_bytes=150 << 20))
    assert "1280x720" in err.message and "video.resize" in err.message


def test_leaner_settings_are_tried_until_none_is_left():
    from squeezer.engines.errors import MemoryLimitError
    from squeezer.engines.video.encoders import MEMORY_STEPS
    from squeezer.engines.video.options import VideoCodec
    from squeezer.engines.video.search import leaner

    tried: list[int] = []

    def runs_out_above_step_2(step: int) -> None:
        tried.append(step)
        if step < 2:
            raise MemoryLimitError("out")

    assert leaner(VideoCodec.h264, 0, runs_out_above_step_2) == 2 and tried == [0, 1, 2]

    def always_out(step: int) -> None:
        tried.append(step)
        raise MemoryLimitError("out")

    tried.clear()
    with pytest.raises(MemoryLimitError):
        leaner(VideoCodec.h265, 1, always_out)
    assert tried == list(range(1, len(MEMORY_STEPS)))
    tried.clear()
    with pytest.raises(MemoryLimitError):
        leaner(VideoCodec.vp9, 0, always_out)  # no leaner VP9 settings: not retried
    assert tried == [0]


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
