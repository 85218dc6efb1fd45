"""ffmpeg arguments for each audio codec (used for audio files and a video's audio tracks).

libopus (constrained VBR, ``-application audio``), ffmpeg's native AAC-LC (the wheel has
no libfdk-aac; ffmpeg's own is its recommended AAC encoder), LAME for MP3
(CBR at the level's rate, joint stereo) and FLAC at compression level 12
(ffmpeg's highest: the smallest FLAC, still decoded at full speed).
"""

from __future__ import annotations

#: ffmpeg encoder of each codec
ENCODER = {"opus": "libopus", "aac": "aac", "mp3": "libmp3lame", "flac": "flac"}
#: sample rates each encoder takes (the nearest one at or above the input's is used)
RATES = {"opus": (48000,),
         "mp3": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
         "aac": (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200,
                 96000),
         "flac": ()}
#: codecs whose streams are already efficient: kept when their rate is at most the target's
EFFICIENT = {"aac", "opus", "mp3", "ac3", "eac3", "vorbis"}
#: layouts libopus cannot take as they are: these are remapped to the nearest it can
_OPUS_SAFE_CHANNELS = (1, 2, 3, 4, 5, 6, 7, 8)


def sample_rate(codec: str, rate: int) -> int | None:
    """The output sample rate for an input at ``rate`` (None: keep it)."""
    allowed = RATES[codec]
    if not allowed or rate in allowed:
        return None
    if len(allowed) == 1:
        return allowed[0]
    below = [r for r in allowed if r <= rate]
    return below[-1] if below else allowed[0]


def audio_args(codec: str, kbps: int | None, *, index: int | None = None, rate: int = 0,
               channels: int = 2) -> list[str]:
    """Output arguments for one audio stream (``index``: the output audio stream's number,
    None for all)."""
    spec = "" if index is None else f":{index}"
    args = [f"-c:a{spec}", ENCODER[codec]]
    if codec == "flac":
        args += [f"-compression_level{spec}", "12"]
    elif kbps is not None:
        args += [f"-b:a{spec}", f"{kbps}k"]
    if codec == "opus":
        # constrained VBR: the level's rate is what the file gets (unconstrained VBR overshot
        # by 30 % on dense surround music)
        args += [f"-vbr{spec}", "constrained", f"-application{spec}", "audio"]
        if channels > 8:
            args += [f"-ac{spec}", "8"]
        elif channels in (3, 4, 5, 6, 7, 8):
            args += [f"-mapping_family{spec}", "1"]
    if codec == "mp3":
        if channels > 2:
            args += [f"-ac{spec}", "2"]
        args += [f"-joint_stereo{spec}", "1"]
    if codec == "aac" and channels > 8:
        args += [f"-ac{spec}", "8"]
    new_rate = sample_rate(codec, rate) if rate else None
    if new_rate:
        args += [f"-ar{spec}", str(new_rate)]
    return args


def has_lfe(layout: str) -> bool:
    """Whether a channel layout name has a low-frequency channel (5.1, 7.1, 2.1, …)."""
    return layout.split("(")[0].endswith(".1") or layout.split("(")[0].endswith((".1.2", ".1.4"))
