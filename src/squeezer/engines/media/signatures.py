"""Video and audio formats from their first bytes (the media part of :mod:`squeezer.engines.sniff`).

Signatures from each container's specification: ISO-BMFF ``ftyp`` major
brands (MP4, MOV, M4V, M4A, 3GP) and bare QuickTime atoms, the EBML header's
DocType (Matroska, WebM) with the track types of its ``Tracks`` element when
they are within the bytes read (audio-only Matroska is ``mka``/``weba``),
RIFF ``AVI ``/``WAVE``, ``FORM`` ``AIFF``/``AIFC``, ``fLaC``, Ogg's first
packet (Vorbis, Opus, FLAC, Theora), MPEG-TS sync bytes every 188 (or 192)
bytes, MPEG audio frame headers (after an ID3v2 tag) and ADTS AAC.

A header cannot always say whether an MP4 holds video: ``m4a`` needs its
brand (or, from a file, a ``moov`` whose tracks are all sound:
:func:`mp4_has_video`), else it is ``mp4`` and the video engine hands a file
with no video to the audio engine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

#: format -> (extension, media type, ffmpeg demuxer)
FORMATS: dict[str, tuple[str, str, str]] = {
    "mp4": ("mp4", "video/mp4", "mov"),
    "mov": ("mov", "video/quicktime", "mov"),
    "m4v": ("m4v", "video/x-m4v", "mov"),
    "3gp": ("3gp", "video/3gpp", "mov"),
    "mkv": ("mkv", "video/x-matroska", "matroska"),
    "webm": ("webm", "video/webm", "matroska"),
    "avi": ("avi", "video/x-msvideo", "avi"),
    "mpegts": ("ts", "video/mp2t", "mpegts"),
    "ogv": ("ogv", "video/ogg", "ogg"),
    "mp3": ("mp3", "audio/mpeg", "mp3"),
    "aac": ("aac", "audio/aac", "aac"),
    "m4a": ("m4a", "audio/mp4", "mov"),
    "wav": ("wav", "audio/wav", "wav"),
    "flac": ("flac", "audio/flac", "flac"),
    "ogg": ("ogg", "audio/ogg", "ogg"),
    "opus": ("opus", "audio/opus", "ogg"),
    "aiff": ("aiff", "audio/aiff", "aiff"),
    "mka": ("mka", "audio/x-matroska", "matroska"),
    "weba": ("weba", "audio/webm", "matroska"),
}
VIDEO_FORMATS = ("mp4", "mov", "m4v", "3gp", "mkv", "webm", "avi", "mpegts", "ogv")
AUDIO_FORMATS = ("mp3", "aac", "m4a", "wav", "flac", "ogg", "opus", "aiff", "mka", "weba")
#: extensions users already use for a format
ALIASES = {"mpegts": {"ts", "m2ts", "mts"}, "aiff": {"aif", "aiff", "aifc"},
           "3gp": {"3gp", "3g2"}, "m4a": {"m4a", "m4b"}, "ogg": {"ogg", "oga"},
           "mp4": {"mp4", "m4v"}, "mka": {"mka", "mkv"}, "weba": {"weba", "webm"}}

_MOV_ATOMS = {b"moov", b"mdat", b"wide", b"pnot", b"skip", b"free"}
_AUDIO_BRANDS = {b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B "}


def demuxer(fmt: str) -> str:
    return FORMATS[fmt][2]


#: text files that make ffmpeg open other files or URLs: refused before anything reads them
PLAYLISTS = (b"#EXTM3U", b"ffconcat version", b"[playlist]")
PLAYLIST_MESSAGE = ("playlists and manifests (HLS, DASH, concat lists) are refused: they make a "
                    "player open other files and URLs; send the media file itself")


def is_playlist(head: bytes) -> bool:
    """An HLS/concat/PLS playlist or a DASH manifest (``<MPD``), by its first bytes."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(PLAYLISTS):
        return True
    return text.startswith(b"<?xml") and b"<MPD" in text[:1024] or text.startswith(b"<MPD")


def sniff_media(head: bytes) -> str | None:
    """The media format of a file starting with ``head``, or None for no media signature."""
    if head[4:8] == b"ftyp":
        major = head[8:12]
        if major in _AUDIO_BRANDS:
            return "m4a"
        if major == b"qt  ":
            return "mov"
        if major.startswith(b"M4V"):
            return "m4v"
        if major.startswith(b"3g"):
            return "3gp"
        return "mp4"
    if head[4:8] in _MOV_ATOMS and len(head) >= 16 and int.from_bytes(head[:4], "big") >= 8:
        return "mov"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return _matroska(head)
    if head[:4] in (b"RIFF", b"RF64", b"BW64") and len(head) >= 12:
        if head[8:12] == b"AVI ":
            return "avi"
        if head[8:12] == b"WAVE":
            return "wav"
        return None
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if head.startswith(b"OggS"):
        return _ogg(head)
    if _transport_stream(head):
        return "mpegts"
    body = _skip_id3(head)
    if not body and head.startswith(b"ID3"):
        return "mp3"  # a tag longer than the bytes read (cover art): ID3v2 is MP3's
    if body.startswith(b"fLaC"):
        return "flac"
    if len(body) >= 4 and body[0] == 0xFF and body[1] & 0xE0 == 0xE0:
        if body[1] & 0x06 == 0 and body[1] & 0xF0 == 0xF0:
            return "aac" if _adts(body) else None
        if _mpeg_audio(body):
            return "mp3"
    return None


def _skip_id3(head: bytes) -> bytes:
    if head.startswith(b"ID3") and len(head) >= 10:
        size = 0
        for byte in head[6:10]:
            size = (size << 7) | (byte & 0x7F)
        return head[10 + size:]
    return head


def _mpeg_audio(b: bytes) -> bool:
    version = (b[1] >> 3) & 3
    layer = (b[1] >> 1) & 3
    bitrate = b[2] >> 4
    rate = (b[2] >> 2) & 3
    return version != 1 and layer != 0 and bitrate not in (0, 15) and rate != 3


def _adts(b: bytes) -> bool:
    return (b[2] >> 2) & 0x0F < 13  # a valid sampling-frequency index


def _transport_stream(head: bytes) -> bool:
    for step, offset in ((188, 0), (192, 4)):
        if len(head) >= offset + 3 * step and all(
                head[offset + i * step] == 0x47 for i in range(min(8, (len(head) - offset)
                                                                    // step))):
            return True
    return False


def _ogg(head: bytes) -> str | None:
    # the first page's segment table, then its first packet
    if len(head) < 28:
        return None
    segments = head[26]
    packet = head[27 + segments:27 + segments + 16]
    if packet.startswith(b"OpusHead"):
        return "opus"
    if packet.startswith((b"\x01vorbis", b"\x7fFLAC", b"Speex   ")):
        return "ogg"
    if packet.startswith((b"\x80theora", b"\x01video")):
        return "ogv"
    return "ogg"


# --- Matroska: just enough EBML to read the DocType and the track types -----------------------

_SEGMENT, _TRACKS, _TRACK_ENTRY, _TRACK_TYPE, _DOCTYPE = 0x18538067, 0x1654AE6B, 0xAE, 0x83, 0x4282
_CLUSTER = 0x1F43B675


def _vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int] | None:
    if pos >= len(data):
        return None
    first = data[pos]
    length = 1
    while length <= 8 and not first & (0x80 >> (length - 1)):
        length += 1
    if length > 8 or pos + length > len(data):
        return None
    value = first if keep_marker else first & (0xFF >> length)
    for byte in data[pos + 1:pos + length]:
        value = (value << 8) | byte
    if not keep_marker and value == (1 << (7 * length)) - 1:
        value = -1  # unknown size
    return value, pos + length


def _elements(data: bytes, pos: int, end: int) -> Iterator[tuple[int, int, int]]:
    """``(id, start, stop)`` of each EBML element between ``pos`` and ``end``."""
    while pos < end:
        ident = _vint(data, pos, True)
        if ident is None:
            return
        size = _vint(data, ident[1], False)
        if size is None:
            return
        start = size[1]
        stop = end if size[0] < 0 else min(end, start + size[0])
        yield ident[0], start, stop
        if size[0] < 0:
            return
        pos = stop


def _matroska(head: bytes) -> str:
    doctype = "matroska"
    types: set[int] = set()
    for ident, start, stop in _elements(head, 0, len(head)):
        if ident == 0x1A45DFA3:
            for child, s, e in _elements(head, start, stop):
                if child == _DOCTYPE:
                    doctype = head[s:e].decode("ascii", "replace").strip("\x00")
        elif ident == _SEGMENT:
            for child, s, e in _elements(head, start, stop):
                if child == _CLUSTER:
                    break
                if child == _TRACKS:
                    for entry, es, ee in _elements(head, s, e):
                        if entry == _TRACK_ENTRY:
                            for field, fs, fe in _elements(head, es, ee):
                                if field == _TRACK_TYPE and fe > fs:
                                    types.add(head[fe - 1])
    webm = doctype == "webm"
    if types and 1 not in types and 2 in types:
        return "weba" if webm else "mka"
    return "webm" if webm else "mkv"


# --- MP4 from a file: is there a video track at all? -----------------------------------------

def mp4_has_video(path: Path, limit: int = 64 << 20) -> bool | None:
    """Whether the ``moov`` of an ISO-BMFF file has a video (``vide``) track; None when the
    file has no readable ``moov`` within its first boxes (the engine then finds out)."""
    try:
        with open(path, "rb") as f:
            size = path.stat().st_size
            pos = 0
            for _ in range(1000):
                f.seek(pos)
                header = f.read(16)
                if len(header) < 8:
                    return None
                box = int.from_bytes(header[:4], "big")
                kind = header[4:8]
                offset = 8
                if box == 1:
                    box, offset = int.from_bytes(header[8:16], "big"), 16
                elif box == 0:
                    box = size - pos
                if box < offset:
                    return None
                if kind == b"moov":
                    if box > limit:
                        return None
                    f.seek(pos + offset)
                    moov = f.read(box - offset)
                    handlers = _handlers(moov)
                    return b"vide" in handlers if handlers else None
                pos += box
    except OSError:
        return None
    return None


def _handlers(moov: bytes) -> set[bytes]:
    found = set()
    at = moov.find(b"hdlr")
    while at >= 0 and at + 16 <= len(moov):
        found.add(moov[at + 12:at + 16])
        at = moov.find(b"hdlr", at + 4)
    return found


# --- AVI: embedded subtitle files -------------------------------------------------------------

_GAB2 = b"GAB2\x00\x02\x00"


def avi_embeds_files(path: Path, block: int = 1 << 20) -> bool:
    """Whether an AVI carries a GAB2 chunk: a whole subtitle *file* inside the AVI, which
    ffmpeg probes and opens as a format of its own (the "HLS playlist inside an AVI" attack
    reads local files or URLs through it).  Such AVIs are refused outright."""
    with open(path, "rb") as f:
        tail = b""
        while True:
            data = f.read(block)
            if not data:
                return False
            if _GAB2 in tail + data:
                return True
            tail = data[-len(_GAB2):]
