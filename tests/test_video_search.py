"""The CRF search's economy: few short samples, and no chase of a floor grain puts out of reach."""

from __future__ import annotations

import itertools

from mediafx import decoded_frames

from squeezer.engines.dispatch import compress_any
from squeezer.engines.video.search import MAX_SAMPLE_SECONDS, Scene, plan, subsample


def test_samples_are_a_few_short_scenes_spread_over_the_video():
    scenes = plan(600.0)
    assert len(scenes) == 8
    assert abs(sum(s.length for s in scenes) - MAX_SAMPLE_SECONDS) < 0.01
    assert scenes[0].start > 0 and scenes[-1].start + scenes[-1].length < 600.0
    assert all(b.start > a.start + a.length for a, b in itertools.pairwise(scenes))
    # a short clip: its middle 1.5 s; a shorter one whole
    assert plan(2.5) == [Scene(0.5, 1.5)]
    assert plan(1.6) == [Scene(0.0, 0.0)]
    # VMAF scores every frame of a tiny sample, every 2nd to 5th of larger ones
    assert (subsample(15), subsample(37), subsample(64), subsample(720)) == (1, 2, 4, 5)


def _x264_settings(path) -> bytes:
    """The settings string x264 writes into the stream (its SEI)."""
    data = path.read_bytes()
    start = data.find(b"options: ")
    assert start >= 0
    return data[start:data.find(b"\x00", start)]


def test_grainy_video_stops_short_of_a_floor_that_would_double_its_bytes(media, tmp_path):
    src = media.surveillance()
    out = tmp_path / "out.mp4"
    report = compress_any(src, out, {"level": "medium"})
    assert report.method == "encode" and report.output_bytes < report.input_bytes
    # the floor was out of reach at a sane cost: said so, with the VMAF measured on the samples
    # (chasing 95 took this clip to CRF 17 and 3.3 x x264 crf 23's bytes)
    assert report.vmaf < 95 and report.crf >= 20
    assert any("was not reached" in w and f"CRF {report.crf}" in w for w in report.warnings)
    assert decoded_frames(out) == decoded_frames(src)
    # held to a VMAF floor, x264 runs with variance AQ and no psychovisual tuning (-tune ssim);
    # a CRF given by the caller keeps x264's defaults
    assert b" aq=2:" in _x264_settings(out) and b" psy=0 " in _x264_settings(out)
    fixed = tmp_path / "fixed.mp4"
    compress_any(src, fixed, {"level": "medium", "video": {"crf": 23}})
    assert b" aq=1:" in _x264_settings(fixed) and b" psy=1 " in _x264_settings(fixed)
