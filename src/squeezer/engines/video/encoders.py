"""ffmpeg arguments for each video codec, and what a CRF means for each.

The CRF search (:mod:`~squeezer.engines.video.search`) works on the x264
scale (0-51; 23 is x264's default); each codec maps it onto its own:
x265 is about 4-5 steps lower in bitrate at the same number (x265's default 28
is roughly x264's 23), SVT-AV1 and libvpx-vp9 use 0-63.  ``video.crf`` is in
the codec's own scale.

Presets: x264 and x265 ``medium`` (ffmpeg's default, the speed a careful
user gets), SVT-AV1 preset 8 and libvpx-vp9 ``-deadline good -cpu-used 4``
(comparable speed on two cores; docs/video.md).

Memory: x264's and x265's lookahead and frame threads each hold whole frames, so
their memory grows with the picture: x264 ``medium`` on a 4K (8.3 Mpx) video
peaked at 1.9 GB and failed under the default 1.5 GiB cap, where 1080p needs
0.5 GB.  :data:`MEMORY_STEPS` trade some bytes or speed for memory;
:func:`memory_step` picks the first that the frame size fits under the cap, and
the pipeline steps further down when ffmpeg still runs out.
"""

from __future__ import annotations

from dataclasses import dataclass

from squeezer.engines.video.options import VideoCodec

#: ffmpeg encoder of each codec
ENCODER = {VideoCodec.h264: "libx264", VideoCodec.h265: "libx265", VideoCodec.av1: "libsvtav1",
           VideoCodec.vp9: "libvpx-vp9"}
#: the codec names ffmpeg reports for a stream of each
CODEC_NAME = {VideoCodec.h264: "h264", VideoCodec.h265: "hevc", VideoCodec.av1: "av1",
              VideoCodec.vp9: "vp9"}
#: the highest CRF of each codec's own scale
CRF_LIMIT = {VideoCodec.h264: 51, VideoCodec.h265: 51, VideoCodec.av1: 63, VideoCodec.vp9: 63}


@dataclass(frozen=True)
class MemoryStep:
    """x264/x265 settings that bound the frames they hold, and the peak memory of ffmpeg
    encoding with them: a fixed part (threads' arenas, tables) plus a part per megapixel
    of the encoded picture (decoder included), in MB."""

    lookahead: int | None  #: frames of rate-control lookahead (None: the preset's)
    threads: int | None  #: frame threads (None: the encoder's choice from the cores)
    #: x264 ``medium``, under ``RLIMIT_DATA``: a 720p clip needed 450-500 MiB with the
    #: preset's 40 frames and 3 threads, 300-350 with 20 and 2, 220-260 with 10 and 1; 3 s
    #: of a 4K AV1 video failed under 1.5 GiB with the first, passed it with the second,
    #: and passed 1 GiB with the third
    x264: tuple[int, int]
    #: x265 ``medium`` 10-bit, its peak resident memory on 1.5 s of that 4K video: 2.57 GB
    #: with its own settings, 2.03 GB with a lookahead of 10 and one frame thread
    x265: tuple[int, int]


#: from the richest to the leanest; the lean ones cost x264 6-7 % more bytes at the same CRF
#: (a shorter lookahead sees less of what follows) and one thread about 1.4 x the wall time
MEMORY_STEPS = (MemoryStep(None, None, (280, 210), (300, 275)),
                MemoryStep(20, 2, (200, 150), (300, 245)),
                MemoryStep(10, 1, (150, 100), (300, 210)))


def memory_needed(codec: VideoCodec, pixels: int, step: int) -> int:
    """The estimated peak bytes of an encode of ``pixels``-pixel frames at ``step`` (0 for
    the codecs without an estimate)."""
    if not lean_settings(codec):
        return 0
    chosen = MEMORY_STEPS[step]
    fixed, per_megapixel = chosen.x264 if codec is VideoCodec.h264 else chosen.x265
    return int(fixed * 1e6 + pixels * per_megapixel)  # MB per megapixel = bytes per pixel


def memory_step(codec: VideoCodec, pixels: int, memory_bytes: int) -> int:
    """The index in :data:`MEMORY_STEPS` of the richest settings whose estimated peak for
    ``pixels`` per frame fits ``memory_bytes`` (0: no cap), else the leanest."""
    if not memory_bytes or not lean_settings(codec):
        return 0
    for index in range(len(MEMORY_STEPS)):
        if memory_needed(codec, pixels, index) <= memory_bytes:
            return index
    return len(MEMORY_STEPS) - 1


def lean_settings(codec: VideoCodec) -> bool:
    """Whether :data:`MEMORY_STEPS` change anything for ``codec`` (x264 and x265)."""
    return codec in (VideoCodec.h264, VideoCodec.h265)


def crf_for(codec: VideoCodec, x264_crf: float) -> int:
    """A CRF on the x264 scale as ``codec``'s own CRF."""
    if codec is VideoCodec.h265:
        value = x264_crf + 4
    elif codec is VideoCodec.av1:
        value = x264_crf * 1.5
    elif codec is VideoCodec.vp9:
        value = x264_crf * 1.45
    else:
        value = x264_crf
    return max(0, min(CRF_LIMIT[codec], round(value)))


def x264_scale(codec: VideoCodec, crf: int) -> float:
    """``codec``'s own CRF on the x264 scale (the inverse of :func:`crf_for`)."""
    if codec is VideoCodec.h265:
        return crf - 4.0
    if codec is VideoCodec.av1:
        return crf / 1.5
    if codec is VideoCodec.vp9:
        return crf / 1.45
    return float(crf)


def quality_crf(codec: VideoCodec, quality: int) -> int:
    """``video.quality`` (1-100, 100 best) as ``codec``'s CRF: 100 → x264 CRF 12, 1 → 45."""
    x264 = 12 + (100 - quality) * (45 - 12) / 99
    return crf_for(codec, x264)


def pixel_format(codec: VideoCodec, bit_depth: int, hdr: bool) -> str:
    """4:2:0 always (plays everywhere); 10-bit kept where the codec is commonly decoded in
    10-bit (HEVC, AV1, VP9) and for HDR."""
    if hdr or (bit_depth > 8 and codec is not VideoCodec.h264):
        return "yuv420p10le"
    return "yuv420p"


def video_args(codec: VideoCodec, *, crf: int | None = None, bitrate_kbps: int | None = None,
               max_bitrate_kbps: int | None = None, pix_fmt: str = "yuv420p",
               threads: int = 0, pass_number: int = 0, passlog: str = "",
               gop_seconds: float = 0.0, fps: float = 0.0, vmaf_tuned: bool = False,
               memory: int = 0) -> list[str]:
    """Output arguments for the video stream (``-c:v …``) of one encode.

    ``vmaf_tuned``: the encode is held to a VMAF floor (the levels' search), so x264 gets
    ``-tune ssim`` (variance AQ, psychovisual optimisations off), which VMAF rewards: on
    2.5 s cuts of 13 kinds of clip it needed 0.90 x the bytes of x264's defaults at the VMAF
    of their crf 23 (geometric mean; 0.68 to 1.06, larger on grainy film and a talking head),
    at the same CPU time.  A CRF the caller gives (``video.crf``, ``video.quality``) keeps
    x264's own meaning.

    ``memory``: the index of the :data:`MEMORY_STEPS` settings (x264 and x265; the other
    encoders' memory does not grow with a lookahead of whole frames)."""
    lean = MEMORY_STEPS[memory] if lean_settings(codec) else MEMORY_STEPS[0]
    if lean.threads is not None:
        threads = min(threads, lean.threads) if threads else lean.threads
    args = ["-c:v", ENCODER[codec], "-pix_fmt", pix_fmt]
    if codec is VideoCodec.h264:
        args += ["-preset", "medium"]
        if vmaf_tuned:
            args += ["-tune", "ssim"]
        if pix_fmt == "yuv420p10le":
            args += ["-profile:v", "high10"]
        if lean.lookahead is not None:
            args += ["-rc-lookahead", str(lean.lookahead)]
    elif codec is VideoCodec.h265:
        params = ["log-level=error"]
        if lean.lookahead is not None:
            params.append(f"rc-lookahead={lean.lookahead}")
        if lean.threads is not None:
            params.append(f"frame-threads={lean.threads}")
        args += ["-preset", "medium", "-tag:v", "hvc1", "-x265-params", ":".join(params)]
    elif codec is VideoCodec.av1:
        args += ["-preset", "8"]
        if gop_seconds and fps:
            args += ["-g", str(max(1, round(gop_seconds * fps)))]
    elif codec is VideoCodec.vp9:
        args += ["-deadline", "good", "-cpu-used", "4", "-row-mt", "1", "-tile-columns", "2"]
    if threads and codec is not VideoCodec.av1:
        args += ["-threads", str(threads)]
    if bitrate_kbps is not None:
        args += ["-b:v", f"{bitrate_kbps}k"]
        if pass_number:
            args += ["-pass", str(pass_number), "-passlogfile", passlog]
    elif crf is not None:
        args += ["-crf", str(crf)]
        if codec is VideoCodec.vp9:
            args += ["-b:v", "0"]
    if max_bitrate_kbps is not None:
        args += ["-maxrate", f"{max_bitrate_kbps}k", "-bufsize", f"{2 * max_bitrate_kbps}k"]
    return args
