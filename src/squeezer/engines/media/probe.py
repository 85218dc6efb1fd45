"""What a media file holds, read from ffmpeg's own description of its input.

The wheel ships ffmpeg without ffprobe, so the streams are read from the
report ffmpeg prints when it opens an input (``Input #0 … Stream #0:1 …``),
the format every ffmpeg wrapper parses.  The parser is strict about what it
needs (stream kinds, codecs, dimensions, rates, durations) and tolerant about
the rest: an unknown field is skipped, never guessed.  PyAV was not used: it
would link ffmpeg's demuxers into our process, and a hostile file is exactly
what must not run there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from squeezer.engines.errors import DamagedMediaError, VideoTooLargeError
from squeezer.engines.media import ffmpeg

_INPUT = re.compile(r"^Input #0, (.+?), from ")
_DURATION = re.compile(r"^\s*Duration: (N/A|[\d:.]+)(?:, start: (-?[\d.]+))?(?:, bitrate: (\d+) kb/s)?")
_STREAM = re.compile(r"^\s*Stream #0:(\d+)(?:\[0x[0-9a-fA-F]+\])?(?:\(([^)]*)\))?: "
                     r"(Video|Audio|Subtitle|Data|Attachment): (.*)$")
_CHAPTER = re.compile(r"^\s*Chapter #0:\d+: start (-?[\d.]+), end (-?[\d.]+)")
_TAG = re.compile(r"^(\s*)([^:]+?)\s*: (.*)$")
_DISPOSITION = re.compile(r"\((default|attached pic|forced|dub|original|comment|lyrics|karaoke|"
                          r"hearing impaired|visual impaired|clean effects|captions|descriptions|"
                          r"metadata|dependent|still image)\)")
_INVALID_SIZE = re.compile(r"Picture size (\d+)x(\d+) is invalid")
_ROTATION = re.compile(r"rotation of (-?[\d.]+) degrees")
_LAYOUT_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "3.0": 3, "3.0(back)": 3, "4.0": 4,
                    "quad": 4, "quad(side)": 4, "3.1": 4, "5.0": 5, "5.0(side)": 5, "4.1": 5,
                    "5.1": 6, "5.1(side)": 6, "6.0": 6, "6.0(front)": 6, "hexagonal": 6,
                    "6.1": 7, "6.1(back)": 7, "6.1(front)": 7, "7.0": 7, "7.0(front)": 7,
                    "7.1": 8, "7.1(wide)": 8, "7.1(wide-side)": 8, "7.1(top)": 8,
                    "octagonal": 8, "downmix": 2, "22.2": 24, "5.1.2": 8, "5.1.4": 10,
                    "7.1.2": 10, "7.1.4": 12, "7.2.3": 12, "9.1.4": 14, "hexadecagonal": 16}
#: what the pixel format's parentheses say besides colour (field order, unknown)
_FIELD_ORDERS = ("progressive", "top first", "bottom first", "top coded first (swapped)",
                 "bottom coded first (swapped)", "unknown")
#: transfer characteristics of HDR video
HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}


@dataclass
class Stream:
    """One stream (track) of the input, as ffmpeg describes it."""

    index: int
    kind: str  #: video, audio, subtitle, data, attachment
    codec: str
    profile: str = ""
    language: str = ""
    width: int = 0
    height: int = 0
    pix_fmt: str = ""
    color_range: str = ""
    color_space: str = ""
    color_primaries: str = ""
    color_transfer: str = ""
    fps: float = 0.0
    bitrate: int = 0  #: bits per second, when the container states it
    sample_rate: int = 0
    channels: int = 0
    channel_layout: str = ""
    sample_fmt: str = ""
    rotation: float = 0.0
    dolby_vision: bool = False
    start: float = 0.0
    dispositions: list[str] = field(default_factory=list)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def attached_pic(self) -> bool:
        """Cover art: a picture stored as a one-frame video stream."""
        return "attached pic" in self.dispositions

    @property
    def is_video(self) -> bool:
        """A moving picture (cover art is not)."""
        return self.kind == "video" and not self.attached_pic

    @property
    def hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    @property
    def bit_depth(self) -> int:
        m = re.search(r"p(\d+)(?:le|be)$", self.pix_fmt)
        return int(m.group(1)) if m else 8

    @property
    def display_size(self) -> tuple[int, int]:
        """Width and height as shown (a 90° rotation swaps them)."""
        if round(abs(self.rotation)) % 180 == 90:
            return self.height, self.width
        return self.width, self.height

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"index": self.index, "type": self.kind, "codec": self.codec}
        for name in ("profile", "language", "pix_fmt", "color_transfer", "channel_layout"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        if self.kind == "video":
            out.update(width=self.width, height=self.height, fps=round(self.fps, 3))
            if self.rotation:
                out["rotation"] = self.rotation
            if self.hdr:
                out["hdr"] = True
            if self.dolby_vision:
                out["dolby_vision"] = True
        if self.kind == "audio":
            out.update(sample_rate=self.sample_rate, channels=self.channels)
        if self.bitrate:
            out["bitrate"] = self.bitrate
        if self.dispositions:
            out["dispositions"] = list(self.dispositions)
        return out


@dataclass
class MediaInfo:
    """A media file: its container, duration and streams."""

    container: str  #: ffmpeg's demuxer name (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``)
    duration: float  #: seconds (0 when the container does not say)
    start: float = 0.0
    bitrate: int = 0  #: overall, bits per second
    streams: list[Stream] = field(default_factory=list)
    chapters: int = 0
    tags: dict[str, str] = field(default_factory=dict)

    def of(self, kind: str) -> list[Stream]:
        return [s for s in self.streams if s.kind == kind]

    @property
    def video(self) -> list[Stream]:
        """The moving-picture streams (cover art excluded)."""
        return [s for s in self.streams if s.is_video]

    @property
    def audio(self) -> list[Stream]:
        return self.of("audio")

    @property
    def covers(self) -> list[Stream]:
        return [s for s in self.streams if s.attached_pic]

    def as_json(self) -> dict[str, Any]:
        return {"container": self.container, "duration": round(self.duration, 3),
                "bitrate": self.bitrate, "chapters": self.chapters,
                "streams": [s.as_json() for s in self.streams]}


def probe(path: str | Path, demuxer: str | None, *, deadline: float | None = None,
          max_pixels: int = 0) -> MediaInfo:
    """Open ``path`` with ffmpeg (inside its fence) and read what it holds.

    Raises :class:`DamagedMediaError` when ffmpeg cannot open it, and what
    :func:`squeezer.engines.media.ffmpeg.run` raises (refused nested opens,
    the time limit).
    """
    result = ffmpeg.run([*ffmpeg.input_args(path, demuxer, max_pixels=max_pixels)],
                        deadline=deadline, loglevel="info", check=False, what="reading the file",
                        keep_log=4 << 20)
    absurd = _INVALID_SIZE.search(result.log)
    if absurd:  # ffmpeg's own sanity check refused the frame size: report what was claimed
        raise VideoTooLargeError(f"the video claims {absurd.group(1)}x{absurd.group(2)} pixels "
                                 "a frame, more than any decoder accepts")
    info = parse(result.log)
    if info is None:
        raise ffmpeg.failure(result, "reading the file")
    return info


def parse(text: str) -> MediaInfo | None:
    """The :class:`MediaInfo` in ffmpeg's description of input #0 (None: there is none)."""
    lines = text.splitlines()
    info: MediaInfo | None = None
    current: Stream | None = None
    section = ""  # "metadata", "side", "chapters" (what indented lines belong to)
    section_indent = 0
    for line in lines:
        m = _INPUT.match(line)
        if m:
            info = MediaInfo(container=m.group(1), duration=0.0)
            current, section = None, ""
            continue
        if info is None:
            continue
        if not line.startswith(" "):
            if line.startswith(("Input #", "Output #", "Stream mapping")):
                break
            continue
        indent = len(line) - len(line.lstrip(" "))
        stripped = line.strip()
        m = _DURATION.match(line)
        if m:
            info.duration = _clock(m.group(1))
            info.start = float(m.group(2) or 0)
            info.bitrate = int(m.group(3) or 0) * 1000
            section = ""
            continue
        m = _STREAM.match(line)
        if m:
            current = _stream(int(m.group(1)), m.group(2) or "", m.group(3).lower(), m.group(4))
            info.streams.append(current)
            section = ""
            continue
        m = _CHAPTER.match(line)
        if m:
            info.chapters += 1
            continue
        if stripped in ("Metadata:", "Side data:", "Chapters:"):
            section = {"Metadata:": "metadata", "Side data:": "side",
                       "Chapters:": "chapters"}[stripped]
            section_indent = indent
            if indent <= 2:
                current = None if section != "chapters" else current
            continue
        if indent <= section_indent:
            section = ""
        if section == "metadata":
            t = _TAG.match(line)
            if t:
                key, value = t.group(2).strip(), t.group(3).strip()
                target = current.tags if current is not None else info.tags
                target.setdefault(key, value)
        elif section == "side" and current is not None:
            r = _ROTATION.search(stripped)
            if r:
                current.rotation = float(r.group(1))
            if stripped.startswith("DOVI configuration"):
                current.dolby_vision = True
    return info


def _clock(text: str) -> float:
    if text == "N/A":
        return 0.0
    seconds = 0.0
    for part in text.split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def _split(text: str) -> list[str]:
    """Comma-separated parts, ignoring commas inside parentheses and brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def _stream(index: int, language: str, kind: str, body: str) -> Stream:
    dispositions = _DISPOSITION.findall(body)
    body = _DISPOSITION.sub("", body).strip()
    parts = _split(body)
    head = parts[0] if parts else ""
    codec = head.split(" ", 1)[0]
    groups = re.findall(r"\(([^()]*)\)", head)
    profiles = [g for g in groups if " / " not in g and not g.startswith("lib")
                and not g.endswith(("float", "fixed"))]
    stream = Stream(index=index, kind=kind, codec=codec, profile=profiles[-1] if profiles else "",
                    language="" if language in ("und", "") else language,
                    dispositions=dispositions)
    for part in parts[1:]:
        if kind == "video" and not stream.pix_fmt and re.match(r"^[a-z][a-z0-9_]*(\(|$)", part) \
                and not part.endswith(("fps", "tbr", "tbn", "tbc")):
            _pixel_format(stream, part)
        elif m := re.match(r"^(\d+)x(\d+)", part):
            stream.width, stream.height = int(m.group(1)), int(m.group(2))
        elif m := re.match(r"^([\d.]+)(k?) fps$", part):
            stream.fps = float(m.group(1)) * (1000 if m.group(2) else 1)
        elif m := re.match(r"^([\d.]+)(k?) tbr$", part):
            tbr = float(m.group(1)) * (1000 if m.group(2) else 1)
            if not stream.fps or stream.fps > 4 * tbr:  # "1k fps" of variable-rate Matroska
                stream.fps = tbr
        elif m := re.match(r"^(\d+) kb/s$", part):
            stream.bitrate = int(m.group(1)) * 1000
        elif m := re.match(r"^(\d+) Hz$", part):
            stream.sample_rate = int(m.group(1))
        elif m := re.match(r"^start (-?[\d.]+)$", part):
            stream.start = float(m.group(1))
        elif kind == "audio" and not stream.channel_layout and (
                part in _LAYOUT_CHANNELS or re.match(r"^\d+ channels", part)):
            stream.channel_layout = part
            c = re.match(r"^(\d+) channels", part)
            stream.channels = int(c.group(1)) if c else _LAYOUT_CHANNELS[part]
        elif kind == "audio" and stream.channel_layout and not stream.sample_fmt:
            stream.sample_fmt = part.split(" ", 1)[0]
    return stream


def _pixel_format(stream: Stream, part: str) -> None:
    m = re.match(r"^([a-z0-9_]+)(?:\((.*)\))?$", part)
    if not m:
        return
    stream.pix_fmt = m.group(1)
    for item in (m.group(2) or "").split(","):
        item = item.strip()
        if item in ("tv", "pc"):
            stream.color_range = item
        elif "/" in item:
            space, primaries, transfer = (item.split("/") + ["", ""])[:3]
            space, primaries, transfer = (v if v != "unknown" else ""
                                          for v in (space, primaries, transfer))
            stream.color_space, stream.color_primaries, stream.color_transfer = \
                space, primaries, transfer
        elif item and item not in _FIELD_ORDERS \
                and not item.startswith(("left", "center", "topleft", "top", "bottom")):
            stream.color_space = stream.color_primaries = stream.color_transfer = item


def require(info: MediaInfo) -> None:
    """A file ffmpeg opened but that has nothing to work on is damaged (named error)."""
    if not info.streams:
        raise DamagedMediaError("the file has no video or audio streams")
