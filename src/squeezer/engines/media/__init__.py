"""What the video and audio engines share: the one module that runs ffmpeg
(:mod:`~squeezer.engines.media.ffmpeg`), reading a file's streams from it
(:mod:`~squeezer.engines.media.probe`), the limits on media
(:mod:`~squeezer.engines.media.guard`), checking an output
(:mod:`~squeezer.engines.media.verify`) and VMAF (:mod:`~squeezer.engines.media.vmaf`).
"""
