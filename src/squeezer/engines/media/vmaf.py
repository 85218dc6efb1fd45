"""VMAF of an encode against its reference, with the libvmaf built into the ffmpeg wheel.

Netflix's ``vmaf_v0.6.1`` model, computed at the encode's own resolution on
4:2:0 8-bit copies of both (the reference goes through the same crop, scale
and frame-rate filters as the encode, so the score measures the encoding
alone).  Pooled as the harmonic mean over frames, which a few bad frames pull
down more than the mean does (the benchmark's measure too); the mean and the
worst frame are reported beside it.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from squeezer.engines.errors import DamagedMediaError
from squeezer.engines.media import ffmpeg


@dataclass(frozen=True)
class Score:
    harmonic_mean: float
    mean: float
    minimum: float
    frames: int


def measure(distorted: Sequence[str], reference: Sequence[str], *, reference_filter: str = "",
            threads: int = 2, deadline: float | None = None, memory_bytes: int = 0,
            duration: float | None = None, progress: Callable[[float], None] | None = None,
            subsample: int = 1) -> Score:
    """VMAF of input ``distorted`` against input ``reference`` (each the ffmpeg input
    arguments that open it: :func:`squeezer.engines.media.ffmpeg.input_args`).

    ``reference_filter``: filters applied to the reference first (the encode's own, so that
    both have the same frames and size).  Frames are paired in order.
    """
    chain = f"{reference_filter}," if reference_filter else ""
    with tempfile.TemporaryDirectory(prefix="squeezer-vmaf-") as work:
        log = Path(work) / "vmaf.json"
        # frames are paired by their index, not their timestamps: containers round times
        # differently (milliseconds in Matroska), and pairing by time then compares a frame
        # with its neighbour now and then
        graph = (f"[0:v]settb=1/1000,setpts=N*40,format=yuv420p[d];"
                 f"[1:v]{chain}settb=1/1000,setpts=N*40,format=yuv420p[r];"
                 f"[d][r]libvmaf=model=version=vmaf_v0.6.1:n_threads={max(1, threads)}"
                 f":n_subsample={max(1, subsample)}:log_fmt=json:log_path={_escape(log)}")
        ffmpeg.run([*distorted, *reference, "-lavfi", graph, "-f", "null", "-"],
                   deadline=deadline, memory_bytes=memory_bytes, duration=duration,
                   progress=progress, what="measuring VMAF")
        try:
            data = json.loads(log.read_text())
        except (OSError, ValueError):
            raise DamagedMediaError("VMAF could not be measured on this video") from None
    scores = [frame["metrics"]["vmaf"] for frame in data.get("frames", [])
              if "vmaf" in frame.get("metrics", {})]
    if not scores:
        raise DamagedMediaError("VMAF could not be measured: no frames were compared")
    clipped = [max(s, 0.0) for s in scores]
    harmonic = len(clipped) / sum(1.0 / (s + 1.0) for s in clipped) - 1.0
    return Score(harmonic_mean=round(harmonic, 3), mean=round(sum(scores) / len(scores), 3),
                 minimum=round(min(scores), 3), frames=len(scores))


def _escape(path: Path) -> str:
    """A path as a filter-graph option value (``:`` ``\\`` ``'`` ``,`` escaped)."""
    text = str(path)
    for ch in ("\\", ":", "'", ",", "[", "]", ";"):
        text = text.replace(ch, "\\" + ch)
    return text
