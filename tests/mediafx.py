"""Small video and audio files for the media tests, made at test time with the wheel's ffmpeg.

Cut from the shared corpus (``../shared/corpus/video`` and ``/audio``) or synthesised
with ffmpeg's lavfi sources; a few seconds at most, so a medium-level search and encode
takes seconds.  Each is made once per session (per xdist worker) and must be treated as
read-only.  ``run`` here calls ffmpeg directly (lavfi sources are outside the engine's fence
on purpose: they are test generators, never engine input).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from pathlib import Path

from squeezer.engines.media import ffmpeg

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
VIDEO = CORPUS / "video"
AUDIO = CORPUS / "audio"


def run(*args: str) -> str:
    proc = subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", "-y",
                           "-loglevel", "error", *args], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stderr


def describe(path: Path) -> str:
    """ffmpeg's report of the file (for assertions independent of the engine's parser)."""
    proc = subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", "-i", str(path)],
                          capture_output=True, text=True, timeout=120)
    return proc.stderr


def decoded_frames(path: Path) -> int:
    """Video frames ffmpeg decodes from ``path`` (fails on a decode error)."""
    proc = subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", "-xerror",
                           "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-1000:]
    frames = re.findall(r"frame=\s*(\d+)", proc.stderr)
    return int(frames[-1]) if frames else 0


def pcm(path: Path) -> bytes:
    """The audio decoded to 16-bit PCM (for lossless comparisons)."""
    proc = subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", "-loglevel",
                           "error", "-i", str(path), "-map", "0:a:0", "-f", "s16le", "-"],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0
    return proc.stdout


class MediaFiles:
    """Lazily made media files in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, name: str) -> tuple[Path, bool]:
        path = self.root / name
        return path, path.exists()

    def surveillance(self) -> Path:
        """The first 2.5 s of a street camera's video (768x432 H.264, stream copy, no audio):
        sensor noise, so VMAF barely rises as the CRF falls."""
        path, done = self._path("surveillance.mp4")
        if not done:
            run("-i", str(VIDEO / "sample-videos__car-detection.mp4"), "-map", "0:v:0",
                "-c", "copy", "-t", "2.5", str(path))
        return path

    def film(self) -> Path:
        """2 s of Chaplin (real film), 320x180, H.264 at a high bitrate (CRF 12) and AAC 192k:
        what a phone or screen recorder writes, with room to compress."""
        path, done = self._path("film.mp4")
        if not done:
            run("-i", str(VIDEO / "moviepy__chaplin.mp4"), "-t", "2", "-vf", "scale=320:180",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-c:a", "aac",
                "-b:a", "192k", "-metadata", "title=Chaplin test", str(path))
        return path

    def unseekable(self) -> Path:
        """The first 10 s of a real 1280x720 4:4:4 H.264 clip (stream copy, no audio) whose
        IDR picture at 3.8 s still references earlier ones: decoded from the start it is
        clean, decoded from a seek past 3.8 s every picture is corrupt."""
        path, done = self._path("unseekable.mp4")
        if not done:
            run("-i", str(VIDEO / "imageio-test_images__cockatoo.mp4"), "-map", "0:v:0",
                "-c", "copy", "-t", "10", str(path))
        return path

    def easy_then_hard(self) -> Path:
        """2 s of flat gray, then 2 s of a test pattern under heavy moving noise (320x240,
        25 fps, H.264 at CRF 5): the two halves need very different rates."""
        path, done = self._path("easy-then-hard.mp4")
        if not done:
            run("-f", "lavfi", "-i", "color=c=gray:s=320x240:r=25:d=2",
                "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25:d=2,noise=alls=40:allf=t",
                "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "5", "-pix_fmt", "yuv420p",
                str(path))
        return path

    def hd(self) -> Path:
        """2 s of a 1280x720 test pattern at 25 fps, H.264 at CRF 10: enough frames to fill
        x264's lookahead, whose memory grows with the picture."""
        path, done = self._path("hd.mp4")
        if not done:
            run("-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25:duration=2",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-pix_fmt", "yuv420p",
                str(path))
        return path

    def rotated(self) -> Path:
        """:meth:`film` with a 90° display matrix (a phone held upright)."""
        path, done = self._path("rotated.mov")
        if not done:
            run("-display_rotation:v:0", "90", "-i", str(self.film()), "-c", "copy", str(path))
        return path

    def chapters_mkv(self) -> Path:
        return VIDEO / "androidx-media__sample_with_chapters.mkv"

    def subtitles_mkv(self) -> Path:
        return VIDEO / "androidx-media__sample_with_ass_subtitles.mkv"

    def hdr(self) -> Path:
        """1 s of 10-bit HEVC tagged HDR10 (BT.2020, PQ), 160x90."""
        path, done = self._path("hdr.mp4")
        if not done:
            run("-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25:duration=1",
                "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le",
                "-x265-params", "crf=8:log-level=error:colorprim=bt2020:transfer=smpte2084:"
                "colormatrix=bt2020nc", "-color_primaries", "bt2020", "-color_trc", "smpte2084",
                "-colorspace", "bt2020nc", "-tag:v", "hvc1", str(path))
        return path

    def tiny(self) -> Path:
        """A clip already squeezed to nothing (CRF 51): no level can make it smaller."""
        path, done = self._path("tiny.mp4")
        if not done:
            run("-f", "lavfi", "-i", "color=c=gray:size=160x90:rate=10:duration=1",
                "-c:v", "libx264", "-preset", "veryslow", "-crf", "51", "-movflags", "+faststart",
                str(path))
        return path

    def wav(self) -> Path:
        """3 s of a chord with some noise, stereo 44.1 kHz 16-bit PCM."""
        path, done = self._path("chord.wav")
        if not done:
            run("-f", "lavfi", "-i", "sine=frequency=330:duration=3:sample_rate=44100",
                "-f", "lavfi", "-i", "sine=frequency=495:duration=3:sample_rate=44100",
                "-f", "lavfi", "-i", "anoisesrc=duration=3:sample_rate=44100:amplitude=0.02",
                "-filter_complex", "[0][1][2]amix=inputs=3,aformat=channel_layouts=stereo",
                "-c:a", "pcm_s16le", str(path))
        return path

    def mp3(self) -> Path:
        """4 s of real music at 256 kbit/s with ID3 tags and a cover picture."""
        path, done = self._path("song.mp3")
        if not done:
            cover = self.root / "cover.png"
            run("-f", "lavfi", "-i", "color=c=orange:size=64x64", "-frames:v", "1", str(cover))
            run("-i", str(AUDIO / "learning-area__viper.mp3"), "-i", str(cover), "-t", "4",
                "-map", "0:a", "-map", "1:v", "-c:a", "libmp3lame", "-b:a", "256k",
                "-c:v", "png", "-disposition:v", "attached_pic", "-id3v2_version", "3",
                "-metadata", "title=Viper test", "-metadata", "artist=Squeezer", str(path))
        return path

    def audio_mp4(self) -> Path:
        """An MP4 (isom brand) with AAC audio and no video: sniffed as M4A from its tracks."""
        path, done = self._path("music.mp4")
        if not done:
            run("-i", str(AUDIO / "learning-area__viper.mp3"), "-t", "3", "-map", "0:a",
                "-c:a", "aac", "-b:a", "256k", "-brand", "isom", "-f", "mp4", str(path))
        return path

    def multitrack(self) -> Path:
        """2 s MP4 with two audio tracks (eng, fra), a text subtitle track, two chapters and a
        timecode: what the defaults must all keep through a re-encode."""
        path, done = self._path("multitrack.mp4")
        if not done:
            srt = self.root / "subs.srt"
            srt.write_text("1\n00:00:00,000 --> 00:00:01,000\nHello\n\n"
                           "2\n00:00:01,000 --> 00:00:02,000\nWorld\n")
            chapters = self.root / "chapters.txt"
            chapters.write_text(";FFMETADATA1\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1000\n"
                                "title=One\n[CHAPTER]\nTIMEBASE=1/1000\nSTART=1000\n"
                                "END=2000\ntitle=Two\n")
            run("-f", "lavfi", "-i", "testsrc2=size=320x180:rate=25:duration=2",
                "-f", "lavfi", "-i", "sine=frequency=440:duration=2",
                "-f", "lavfi", "-i", "sine=frequency=660:duration=2", "-i", str(srt),
                "-i", str(chapters), "-map", "0", "-map", "1", "-map", "2", "-map", "3",
                "-map_chapters", "4", "-c:v", "libx264", "-preset", "ultrafast", "-crf", "8",
                "-c:a", "aac", "-b:a", "256k", "-c:s", "mov_text",
                "-metadata:s:a:0", "language=eng", "-metadata:s:a:1", "language=fra",
                "-metadata:s:s:0", "language=eng", "-timecode", "01:02:03:04", str(path))
        return path

    # --- hostile files ---------------------------------------------------------------------

    def truncated_mp4(self) -> Path:
        """:meth:`film` cut at 60 %: the index (moov, written last) is gone."""
        path, done = self._path("truncated.mp4")
        if not done:
            data = self.film().read_bytes()
            assert data.find(b"moov") > len(data) * 0.6, "the fixture needs moov at the end"
            path.write_bytes(data[: int(len(data) * 0.6)])
        return path

    def absurd_avi(self) -> Path:
        """A 16x16 raw-video AVI whose headers claim 20000x20000 pixels (400 megapixels)."""
        path, done = self._path("absurd.avi")
        if not done:
            small = self.root / "small.avi"
            run("-f", "lavfi", "-i", "color=c=red:size=16x16:rate=5:duration=1",
                "-c:v", "rawvideo", "-pix_fmt", "bgr24", str(small))
            data = bytearray(small.read_bytes())
            at = data.find(b"strf") + 8  # BITMAPINFOHEADER: size, width, height (<0: top-down)
            size, width, height = struct.unpack("<Iii", data[at:at + 12])
            assert (size, width, abs(height)) == (40, 16, 16)
            data[at + 4:at + 12] = struct.pack("<ii", 20000, 20000 if height > 0 else -20000)
            avih = data.find(b"avih")
            data[avih + 8 + 32:avih + 8 + 40] = struct.pack("<II", 20000, 20000)
            path.write_bytes(bytes(data))
        return path

    def many_tracks(self, count: int = 1000) -> Path:
        """A Matroska file with ``count`` tiny audio tracks."""
        path, done = self._path(f"tracks-{count}.mka")
        if not done:
            maps = []
            for _ in range(count):
                maps += ["-map", "0:a"]
            run("-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.05", *maps,
                "-c:a", "pcm_s16le", str(path))
        return path

    def empty_video_track(self) -> Path:
        """A Matroska file whose video track has no frames (only its header)."""
        path, done = self._path("empty-track.mkv")
        if not done:
            run("-f", "lavfi", "-i", "testsrc2=size=64x64:rate=10", "-frames:v", "0",
                "-c:v", "libx264", str(path))
        return path

    def hls_in_avi(self) -> Path:
        """An AVI carrying an HLS playlist in a GAB2 subtitle chunk that lists a local file
        and a URL (the attack of CVE-2017-9993 and its relatives)."""
        path, done = self._path("playlist.avi")
        if not done:
            playlist = (b"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\nfile:///etc/passwd\n"
                        b"#EXTINF:1.0,\nhttp://127.0.0.1:9/x.ts\n#EXT-X-ENDLIST\n")
            path.write_bytes(_gab2_avi(playlist))
        return path

    def playlist(self) -> Path:
        path, done = self._path("list.m3u8")
        if not done:
            path.write_bytes(b"#EXTM3U\n#EXTINF:1.0,\nfile:///etc/passwd\n#EXT-X-ENDLIST\n")
        return path


def _chunk(tag: bytes, data: bytes) -> bytes:
    return tag + struct.pack("<I", len(data)) + data + (b"\x00" if len(data) % 2 else b"")


def _gab2_avi(payload: bytes, packets: int = 20) -> bytes:
    """An AVI with one text stream whose first chunk is a GAB2 subtitle file."""
    avih = struct.pack("<IIIIIIIIII4I", 40000, 0, 0, 0, packets, 0, 1, 0, 16, 16, 0, 0, 0, 0)
    strh = b"txts" + bytes(4) + struct.pack("<IHHIIIIIIII4h", 0, 0, 0, 0, 1, 25, 0, packets,
                                            0, 0, 0, 0, 0, 16, 16)
    strf = struct.pack("<IiiHHIIiiII", 40, 16, 16, 1, 24, 0, 0, 0, 0, 0, 0)
    strl = _chunk(b"LIST", b"strl" + _chunk(b"strh", strh) + _chunk(b"strf", strf))
    hdrl = _chunk(b"LIST", b"hdrl" + _chunk(b"avih", avih) + strl)
    gab2 = b"GAB2\x00\x02\x00" + bytes(10) + payload
    movi = _chunk(b"LIST", b"movi" + _chunk(b"00tx", gab2)
                  + b"".join(_chunk(b"00tx", bytes(8)) for _ in range(packets)))
    body = b"AVI " + hdrl + movi
    return b"RIFF" + struct.pack("<I", len(body)) + body


def ffmpegs_of(marker: str, *, under: int | None = None) -> list[int]:
    """Running (not zombie) ffmpeg processes whose command line mentions ``marker`` (and, with
    ``under``, that descend from that process)."""
    found = []
    exe = ffmpeg.executable()
    for pid in descendants(under) if under is not None else os.listdir("/proc"):
        if not str(pid).isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read().split(b"\x00")
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if args and args[0].decode() == exe and marker.encode() in b" ".join(args) \
                and state != "Z":
            found.append(int(pid))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, their children, ...)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(c) for c in f.read().split()]
            except OSError:
                continue
            found += children
            todo += children
    return found
