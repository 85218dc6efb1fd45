"""ffmpeg arguments for each video codec, and what a CRF means for each.

The CRF search (:mod:`~squeezer.engines.video.search`) works on the x264
scale (0-51; 23 is x264's default); each codec maps it onto its own:
x265 is about 4-5 steps lower in bitrate at the same number (x265's default 28
is roughly x264's 23), SVT-AV1 and libvpx-vp9 use 0-63.  ``video.crf`` is in
the codec's own scale.

Presets: x264 and x265 ``medium`` (ffmpeg's default, the speed a careful
user gets), SVT-AV1 preset 8 and libvpx-vp9 ``-deadline good -cpu-used 4``
(comparable speed on two cores; docs/video.md).
"""

from __future__ import annotations

from squeezer.engines.video.options import VideoCodec

#: ffmpeg encoder of each codec
ENCODER = {VideoCodec.h264: "libx264", VideoCodec.h265: "libx265", VideoCodec.av1: "libsvtav1",
           VideoCodec.vp9: "libvpx-vp9"}
#: the codec names ffmpeg reports for a stream of each
CODEC_NAME = {VideoCodec.h264: "h264", VideoCodec.h265: "hevc", VideoCodec.av1: "av1",
              VideoCodec.vp9: "vp9"}
#: the highest CRF of each codec's own scale
CRF_LIMIT = {VideoCodec.h264: 51, VideoCodec.h265: 51, VideoCodec.av1: 63, VideoCodec.vp9: 63}


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
               gop_seconds: float = 0.0, fps: float = 0.0, vmaf_tuned: bool = False) -> list[str]:
    """Output arguments for the video stream (``-c:v …``) of one encode.

    ``vmaf_tuned``: the encode is held to a VMAF floor (the levels' search), so x264 gets
    ``-tune ssim`` (variance AQ, psychovisual optimisations off), which VMAF rewards: on
    2.5 s cuts of 13 kinds of clip it needed 0.90 x the bytes of x264's defaults at the VMAF
    of their crf 23 (geometric mean; 0.68 to 1.06, larger on grainy film and a talking head),
    at the same CPU time.  A CRF the caller gives (``video.crf``, ``video.quality``) keeps
    x264's own meaning."""
    args = ["-c:v", ENCODER[codec], "-pix_fmt", pix_fmt]
    if codec is VideoCodec.h264:
        args += ["-preset", "medium"]
        if vmaf_tuned:
            args += ["-tune", "ssim"]
        if pix_fmt == "yuv420p10le":
            args += ["-profile:v", "high10"]
    elif codec is VideoCodec.h265:
        args += ["-preset", "medium", "-tag:v", "hvc1", "-x265-params", "log-level=error"]
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
