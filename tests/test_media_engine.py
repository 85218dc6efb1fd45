"""The video and audio engines on real clips (cut from the corpus) and synthesised ones: what
each level does, the options, what the defaults keep, and that every output is smaller (or the
input's own bytes) and decodes."""

from __future__ import annotations

import pytest
from mediafx import AUDIO, VIDEO, decoded_frames, describe, pcm, run

from squeezer.engines.dispatch import compress_any
from squeezer.engines.media.probe import probe
from squeezer.engines.options import Options
from squeezer.engines.sniff import sniff_file


def test_every_corpus_file_is_sniffed_into_its_family():
    from squeezer.engines.families import family_of

    for folder, family in ((VIDEO, {"video"}), (AUDIO, {"audio", "video"})):
        for path in sorted(folder.iterdir()):
            if path.suffix == ".tsv":
                continue
            kind = sniff_file(path)
            assert family_of(kind.format).name in family, (path.name, kind)
    # an MP4 whose tracks are all sound is audio, found from its moov, not its brand
    assert sniff_file(AUDIO / "shaka-player__audio_en_2c_128k_aac.mp4").format == "m4a"


def test_medium_searches_a_crf_that_keeps_the_vmaf_floor(media, tmp_path):
    src = media.film()
    seen: list[tuple[float, str]] = []
    report = compress_any(src, tmp_path / "out.mp4", {"level": "medium"},
                          progress=lambda f, s: seen.append((f, s)))
    assert report.kind == "video" and report.method == "encode"
    assert report.output_bytes < report.input_bytes
    assert (tmp_path / "out.mp4").stat().st_size == report.output_bytes
    # the report a result card needs: CRF, sampled VMAF at or above the floor, codecs, size
    assert report.crf is not None and report.search and report.vmaf_floor == 95
    assert report.vmaf >= 95 and report.vmaf_sampled_frames > 0
    assert report.search[-1].crf == report.crf or any(a.crf == report.crf
                                                      for a in report.search)
    assert (report.width, report.height) == (320, 180)
    assert report.video_codec_in == "h264" and report.video_codec_out == "h264"
    assert report.audio_codecs_out == ["aac"]
    # decodes end to end, same frames, same duration within a frame
    assert decoded_frames(tmp_path / "out.mp4") == decoded_frames(src)
    assert abs(report.duration - report.input.duration) <= 0.04
    # progress went forward through the stages and ended at 1
    assert [s for _, s in seen][0] == "reading" and seen[-1] == (1.0, "done")
    assert {"searching", "encoding", "verifying"} <= {s for _, s in seen}
    assert all(b[0] >= a[0] - 1e-9 for a, b in zip(seen, seen[1:], strict=False))


def test_lossless_remuxes_and_keeps_chapters_subtitles_and_every_stream(media, tmp_path):
    for src in (media.chapters_mkv(), media.subtitles_mkv()):
        out = tmp_path / f"{src.stem}.mkv"
        report = compress_any(src, out, {"level": "lossless"})
        assert report.method in ("remux", "original")
        assert report.output_bytes <= report.input_bytes
        before, after = probe(src, "matroska"), probe(out, "matroska")
        assert [s.kind for s in after.streams] == [s.kind for s in before.streams]
        assert [s.codec for s in after.streams] == [s.codec for s in before.streams]
        assert after.chapters == before.chapters
        assert abs(after.duration - before.duration) < 0.05
    assert probe(media.chapters_mkv(), "matroska").chapters == 2
    assert "Subtitle: ass" in describe(tmp_path / "androidx-media__sample_with_ass_subtitles.mkv")


def test_a_reencode_keeps_every_audio_track_subtitles_chapters_and_timecode(media, tmp_path):
    src = media.multitrack()
    out = tmp_path / "multi.mp4"
    report = compress_any(src, out, {"video": {"crf": 30}})
    assert report.method == "encode" and report.output_bytes < report.input_bytes
    after = probe(out, "mov")
    assert [(a.codec, a.language) for a in after.audio] == [("aac", "eng"), ("aac", "fra")]
    assert [(s.codec, s.language) for s in after.of("subtitle")] == [("mov_text", "eng")]
    assert after.chapters == 2
    assert after.video[0].tags.get("timecode") == "01:02:03:04"
    # the timecode and chapter tracks are written again, not "left out"
    assert not any("left out" in a for a in report.actions), report.actions


def test_the_automatic_container_is_not_reported_as_a_requested_conversion(media, tmp_path):
    """A MOV comes out as MP4 by default: our choice, so the report does not list "convert"
    among the changes the user asked for (the page said "Removed as you asked: convert");
    a container the user names is such a change."""
    mov = tmp_path / "film.mov"
    run("-i", str(media.film()), "-c", "copy", "-f", "mov", str(mov))
    auto = compress_any(mov, tmp_path / "auto.mp4", {"video": {"crf": 35}})
    assert (auto.format_in, auto.format_out) == ("mov", "mp4")
    assert "convert" not in auto.requested_changes
    named = compress_any(mov, tmp_path / "named.mp4", {"video": {"crf": 35, "container": "mp4"}})
    assert named.format_out == "mp4" and "convert" in named.requested_changes


def test_fixed_crf_keeps_rotation_and_metadata(media, tmp_path):
    out = tmp_path / "rotated.mp4"
    report = compress_any(media.rotated(), out, {"video": {"crf": 30}})
    assert report.crf == 30 and not report.search and report.format_out == "mp4"
    stream = probe(out, "mov").video[0]
    assert stream.rotation in (90.0, -90.0)
    assert stream.display_size == (180, 320) == (report.width, report.height)
    assert "Chaplin test" in describe(out)  # the title tag went along


def test_resize_modes(media, tmp_path):
    out = tmp_path / "small.mp4"
    report = compress_any(media.film(), out, {"video": {"crf": 28, "resize": "auto:160x"}})
    assert (report.width, report.height) == (160, 90)
    assert probe(out, "mov").video[0].display_size == (160, 90)
    assert "resize" in report.requested_changes
    report = compress_any(media.rotated(), tmp_path / "square.mp4",
                          {"video": {"crf": 28, "resize": {"mode": "fill", "width": 100,
                                                           "height": 100}}})
    assert (report.width, report.height) == (100, 100)
    report = compress_any(media.film(), tmp_path / "tall.mp4",
                          {"video": {"crf": 28, "resize": "exact:100x140",
                                     "trim_start": 0.5, "trim_end": 1.5, "max_fps": 10}})
    assert (report.width, report.height) == (100, 140)
    assert abs(report.duration - 1.0) <= 0.11 and report.fps == 10
    assert decoded_frames(tmp_path / "tall.mp4") == 10


def test_crop_box_crop_and_scale_modes(media, tmp_path):
    report = compress_any(media.film(), tmp_path / "box.mp4",
                          {"video": {"crf": 30, "crop": "200x100+60+40"}})
    assert (report.width, report.height) == (200, 100)
    report = compress_any(media.film(), tmp_path / "window.mp4",
                          {"video": {"crf": 30, "resize": "crop:120x120"}})
    assert (report.width, report.height) == (120, 120)
    report = compress_any(media.film(), tmp_path / "scaled.mp4",
                          {"video": {"crf": 30, "resize": "scale:x90"}})
    assert (report.width, report.height) == (160, 90)
    assert probe(tmp_path / "scaled.mp4", "mov").video[0].display_size == (160, 90)
    # through the CRF search, on a turned picture: the samples are cut as stored, like the
    # output (they were turned first, and the crop did not fit them: media_invalid)
    report = compress_any(media.rotated(), tmp_path / "turned.mp4",
                          {"video": {"crop": "200x100+60+40"}})
    assert report.crf is not None and report.vmaf >= 95
    assert (report.width, report.height) == (100, 200)


def test_a_trim_between_frames_and_inside_a_subtitle_starts_at_zero(media, tmp_path):
    # 0.37 s falls between two frames and inside the first subtitle event (0-0.5 s): the
    # output must still last the asked span, keep its streams and start at zero
    src = media.subtitles_mkv()
    out = tmp_path / "cut.mkv"
    report = compress_any(src, out, {"video": {"crf": 36, "trim_start": 0.37,
                                               "trim_end": 1.0}})
    assert abs(report.duration - 0.63) <= 1 / 60 + 0.01
    after = probe(out, "matroska")
    assert [s.kind for s in after.streams] == [s.kind for s in probe(src, "matroska").streams]
    assert "start 0.3" not in describe(out)
    assert decoded_frames(out) > 0


def test_the_seed_validation_of_video_resize():
    with pytest.raises(ValueError) as err:
        Options.model_validate({"video": {"resize": {"mode": "auto"}}})
    (error,) = err.value.errors()
    assert error["loc"] == ("video", "resize")
    assert error["msg"].endswith(
        "When mode='auto', at least one of 'width' or 'height' must be specified.")


def test_hdr_stays_hdr(media, tmp_path):
    out = tmp_path / "hdr.mp4"
    report = compress_any(media.hdr(), out, {"video": {"crf": 30}})
    assert report.video_codec_out == "hevc"
    stream = probe(out, "mov").video[0]
    assert stream.color_transfer == "smpte2084" and stream.color_primaries == "bt2020"
    assert stream.pix_fmt == "yuv420p10le"


def test_a_file_no_level_can_shrink_keeps_its_bytes(media, tmp_path):
    src = media.tiny()
    out = tmp_path / "tiny.mp4"
    report = compress_any(src, out, {"level": "high"})
    assert report.original_kept and report.method == "original"
    assert out.read_bytes() == src.read_bytes()
    assert report.output_bytes == report.input_bytes


def test_lossless_audio_is_flac_with_every_sample(media, tmp_path):
    src = media.wav()
    out = tmp_path / "chord.flac"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.kind == "audio" and report.format_out == "flac" and report.method == "flac"
    assert report.output_bytes < report.input_bytes
    assert pcm(out) == pcm(src)


def test_medium_audio_keeps_mp3_tags_and_cover(media, tmp_path):
    src = media.mp3()
    out = tmp_path / "song.mp3"
    report = compress_any(src, out, {"level": "medium"})
    assert report.format_out == "mp3" and report.codec_out == "mp3"
    assert report.output_bytes <= 0.6 * report.input_bytes
    assert report.cover_art and report.tags_kept
    text = describe(out)
    assert "Viper test" in text and "attached pic" in text
    stripped = compress_any(src, tmp_path / "bare.mp3", {"level": "medium",
                                                         "remove_metadata": True})
    text = describe(tmp_path / "bare.mp3")
    assert "Viper test" not in text and "attached pic" not in text
    assert stripped.output_bytes < report.output_bytes


def test_audio_codec_choice_and_pcm_to_aac(media, tmp_path):
    report = compress_any(media.wav(), tmp_path / "chord.m4a", {"level": "medium"})
    assert report.format_out == "m4a" and report.codec_out == "aac"
    assert report.output_bytes < report.input_bytes / 5
    report = compress_any(media.wav(), tmp_path / "chord.opus",
                          {"audio": {"codec": "opus", "bitrate": 64}})
    assert report.format_out == "opus" and report.codec_out == "opus"
    assert abs(report.duration - 3.0) < 0.06


def test_a_lossy_input_above_128k_gets_at_most_055_of_its_rate(media, tmp_path):
    src = tmp_path / "192k.mp3"
    run("-i", str(AUDIO / "learning-area__viper.mp3"), "-t", "4", "-map", "0:a",
        "-c:a", "libmp3lame", "-b:a", "192k", str(src))
    report = compress_any(src, tmp_path / "out.mp3", {"level": "medium"})
    # the level's 112 kbit/s (56 per channel) would be 0.58 of the input's 192
    assert "at 106 kbit/s" in report.actions[-1], report.actions
    assert report.output_bytes <= 0.6 * report.input_bytes
    # low keeps the level's rate (224 kbit/s: above the input's, so not re-encoded); an
    # asked bitrate is the bitrate
    low = compress_any(src, tmp_path / "low.mp3", {"level": "low"})
    assert low.method in ("original", "remux"), low.actions
    asked = compress_any(src, tmp_path / "asked.mp3", {"audio": {"bitrate": 128}})
    assert "at 128 kbit/s" in asked.actions[-1], asked.actions


def test_an_mp4_without_video_goes_to_the_audio_engine(media, tmp_path):
    report = compress_any(media.audio_mp4(), tmp_path / "music.m4a", {"level": "medium"})
    assert report.kind == "audio" and report.codec_out == "aac"
    assert report.output_bytes < report.input_bytes


def test_bitrate_two_pass_and_audio_options_in_a_video(media, tmp_path):
    out = tmp_path / "abr.mkv"
    report = compress_any(media.film(), out, {
        "video": {"bitrate": 300, "two_pass": True, "container": "mkv"},
        "audio": {"codec": "opus", "bitrate": 48}})
    assert report.format_out == "mkv" and report.audio_codecs_out == ["opus"]
    assert report.crf is None and not report.search
    # two passes land near the asked average (300 kbit/s of video over 2 s, plus opus)
    assert 40_000 < report.output_bytes < 110_000
    assert decoded_frames(out) == decoded_frames(media.film())
    silent = compress_any(media.film(), tmp_path / "silent.mp4",
                          {"video": {"crf": 30, "remove_audio": True}})
    assert silent.audio_codecs_out == [] and "Audio:" not in describe(tmp_path / "silent.mp4")


def test_the_probe_reads_ffmpegs_own_report():
    from squeezer.engines.media.probe import parse

    text = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'file:/x/a.mp4':
  Metadata:
    major_brand     : qt
    title           : Holiday
  Duration: 00:01:02.55, start: 0.000000, bitrate: 10289 kb/s
  Chapters:
    Chapter #0:0: start 0.000000, end 1.999000
  Stream #0:0[0x1](und): Video: hevc (Main 10) (hvc1 / 0x31637668), yuv420p10le(tv, bt2020nc/bt2020/arib-std-b67), 1920x1080, 8413 kb/s, 28.03 fps, 29.97 tbr, 600 tbn (default)
    Metadata:
      handler_name    : Core Media Video
    Side data:
      DOVI configuration record: version: 1.0, profile: 8, level: 4
      Display Matrix: rotation of -90.00 degrees
  Stream #0:1[0x2](eng): Audio: eac3 (ec-3 / 0x332D6365), 48000 Hz, 5.1(side), fltp, 256 kb/s (default)
  Stream #0:2: Video: mjpeg (Baseline), yuvj420p(pc, bt470bg/unknown/unknown), 500x500 [SAR 1:1 DAR 1:1], 90k tbr, 90k tbn (attached pic)
  Stream #0:3: Subtitle: ass (ssa) (default)
At least one output file must be specified
"""
    info = parse(text)
    assert info is not None and info.container.startswith("mov")
    assert (info.duration, info.bitrate, info.chapters) == (62.55, 10289000, 1)
    assert info.tags["title"] == "Holiday"
    video, audio, cover, sub = info.streams
    assert (video.codec, video.profile, video.width, video.height) == ("hevc", "Main 10", 1920,
                                                                       1080)
    assert (video.color_transfer, video.color_primaries, video.color_space) == (
        "arib-std-b67", "bt2020", "bt2020nc")
    assert video.hdr and video.dolby_vision and video.rotation == -90.0
    assert video.display_size == (1080, 1920) and video.bit_depth == 10
    assert (audio.codec, audio.channels, audio.sample_rate, audio.language) == ("eac3", 6,
                                                                               48000, "eng")
    assert cover.attached_pic and not cover.is_video and info.video == [video]
    assert sub.kind == "subtitle" and sub.codec == "ass"


def test_ffmpeg_runs_report_progress_even_between_its_progress_blocks(media, monkeypatch):
    """ffmpeg writes a progress block every PROGRESS_PERIOD; while it opens, seeks or is slowed
    by a loaded machine, the run says its last fraction again every HEARTBEAT, so a job's
    progress never pauses for long (issue 16: at least every 2 s)."""
    import time

    from squeezer.engines.media import ffmpeg

    monkeypatch.setattr(ffmpeg, "PROGRESS_PERIOD", 30.0)  # no block before the end
    monkeypatch.setattr(ffmpeg, "HEARTBEAT", 0.3)
    stamps: list[tuple[float, float]] = []
    started = time.monotonic()
    # read at the clip's own speed: 2 s of film take 2 s whatever the machine
    ffmpeg.run(["-re", *ffmpeg.input_args(media.film(), None), "-f", "null", "-"],
               duration=2.0, progress=lambda f: stamps.append((time.monotonic(), f)),
               deadline=started + 60)
    times = [started] + [t for t, _ in stamps]
    assert len(stamps) >= 3 and stamps[0][1] == 0.0
    # far under the 30 s between blocks (a loaded CI machine may wake the loop late)
    assert max(b - a for a, b in zip(times, times[1:], strict=False)) < 1.5
    assert [f for _, f in stamps] == sorted(f for _, f in stamps)


def test_samples_of_a_stream_that_cannot_be_decoded_from_a_seek_are_cut_from_the_start(
        media, tmp_path):
    """A real clip's later IDR picture still references earlier ones: every picture decoded
    after a seek is corrupt, so every sample scored VMAF 46-54 against an equally corrupt
    reference and the search ran to the lowest CRF.  The corrupt seek is seen in ffmpeg's
    log and the samples are cut from a decode that starts at the beginning."""
    from squeezer.engines.media import ffmpeg
    from squeezer.engines.video.search import broken_seek

    src = media.unseekable()
    seeked = ffmpeg.run([*ffmpeg.input_args(src, "mov", extra=["-ss", "4.25", "-t", "1.5"]),
                         "-f", "null", "-"], what="decoding")
    assert broken_seek(seeked.log)
    whole = ffmpeg.run([*ffmpeg.input_args(src, "mov"), "-f", "null", "-"], what="decoding")
    assert not broken_seek(whole.log)
    report = compress_any(src, tmp_path / "out.mp4", {"level": "medium"})
    first = report.search[0]
    assert first.crf == 23 and first.vmaf > 90, report.search


def test_a_trimmed_videos_samples_come_from_inside_the_trim(media, tmp_path):
    """The search's samples seek with ``-ss`` before ``-i``; a trim's own ``-ss`` came first,
    and ffmpeg keeps the last value given, so a trimmed video was sampled from before its
    trim: here the flat half, whose rate says nothing of the noisy half that is encoded."""
    src = media.easy_then_hard()
    hard = compress_any(src, tmp_path / "hard.mp4",
                        {"level": "medium", "video": {"trim_start": 2.0}})
    easy = compress_any(src, tmp_path / "easy.mp4",
                        {"level": "medium", "video": {"trim_end": 2.0}})
    assert hard.search[0].crf == easy.search[0].crf == 23
    assert hard.search[0].kbit_per_second > 20 * easy.search[0].kbit_per_second, \
        (hard.search, easy.search)


def test_a_trim_that_starts_where_the_video_cannot_be_decoded_from(media, tmp_path):
    """A trim starting at 4.5 s of the clip above: a seek there gives corrupt pictures, so the
    output began with garbage whatever CRF was chosen.  Read from the beginning, its first
    frames are the source's own, frame for frame (against the source cut by time)."""
    from mediafx import run

    src = media.unseekable()
    out = tmp_path / "trimmed.mp4"
    report = compress_any(src, out, {"level": "medium",
                                     "video": {"crf": 18, "trim_start": 4.5, "trim_end": 6.5}})
    assert any("read from the beginning" in a for a in report.actions), report.actions
    reference = tmp_path / "reference.mkv"
    run("-i", str(src), "-vf", "trim=start=4.5:duration=2,setpts=PTS-STARTPTS", "-c:v",
        "ffv1", str(reference))
    stats = tmp_path / "psnr.log"
    run("-i", str(out), "-i", str(reference), "-lavfi", f"[0:v][1:v]psnr=stats_file={stats}",
        "-f", "null", "-")
    frames = [float(line.split("psnr_avg:")[1].split()[0])
              for line in stats.read_text().splitlines() if "psnr_avg:" in line]
    assert len(frames) == 40 and min(frames) > 30, frames[:5]  # 2 s at 20 fps


def test_lossless_float_pcm_is_flac_only_when_flac_holds_every_sample(media, tmp_path):
    """FLAC stores integers of at most 24 bits: a 32-bit float WAV of a real loop had 627,000
    of its 661,500 samples changed (by up to 1.2e-7) on the way through FLAC at ``lossless``.
    Such a file is kept as it is, and says why; a float WAV whose samples are 16-bit values
    (a 16-bit recording converted) still becomes FLAC, decoding to the same floats."""
    from mediafx import run

    fine = tmp_path / "fine.wav"
    run("-f", "lavfi", "-i", "sine=frequency=440:duration=2:sample_rate=44100,volume=0.3",
        "-c:a", "pcm_f32le", str(fine))
    report = compress_any(fine, tmp_path / "fine.out", {"level": "lossless"})
    assert report.original_kept and report.output_bytes == fine.stat().st_size
    assert "FLAC cannot hold these pcm_f32le samples exactly" in report.actions[-1]

    coarse = tmp_path / "coarse.wav"
    run("-i", str(media.wav()), "-c:a", "pcm_f32le", str(coarse))
    out = tmp_path / "coarse.flac"
    report = compress_any(coarse, out, {"level": "lossless"})
    assert report.codec_out == "flac" and report.output_bytes < coarse.stat().st_size / 2
    floats = []
    for path in (coarse, out):
        raw = tmp_path / f"{path.stem}.f32"
        run("-i", str(path), "-f", "f32le", str(raw))
        floats.append(raw.read_bytes())
    assert floats[0] == floats[1]
