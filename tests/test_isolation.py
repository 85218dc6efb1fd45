"""The engine in a child process: results and named errors come back; hangs, memory and crashes
become named errors while the calling process lives on."""

from __future__ import annotations

import time
from pathlib import Path

import pdfgen
import pytest

from squeezer.engines.errors import (
    EngineError,
    MemoryLimitError,
    ProcessingCrashedError,
    TimeLimitError,
    UnsupportedFormatError,
)
from squeezer.engines.limits import Limits
from squeezer.engines.options import Options
from squeezer.jobs.errors import JobCancelled
from squeezer.jobs.isolation import ChildLimits, compress_isolated

MB = 1 << 20


def test_a_report_comes_back(fx, out_dir):
    dst = out_dir / "out.pdf"
    report = compress_isolated(fx.uncompressed(), dst, Options(level="lossless"))
    assert report.output_bytes == dst.stat().st_size < report.input_bytes
    assert pdfgen.page_texts(dst) == pdfgen.page_texts(fx.uncompressed())


def test_named_errors_cross_the_process_boundary(tmp_path, out_dir):
    src = tmp_path / "x.pdf"
    src.write_bytes(b"hello")
    with pytest.raises(UnsupportedFormatError) as info:
        compress_isolated(src, out_dir / "out.pdf")
    assert info.value.code == "unsupported_format"
    assert list(out_dir.iterdir()) == []


def test_a_hang_is_killed_at_the_deadline(fx, out_dir):
    started = time.monotonic()
    stages = []
    with pytest.raises(TimeLimitError) as info:
        compress_isolated(fx.text(), out_dir / "out.pdf",
                          child=ChildLimits(seconds=0.5, grace_seconds=0.5), _fault="hang",
                          progress=lambda fraction, stage: stages.append(stage))
    assert info.value.code == "timeout"
    assert time.monotonic() - started < 10
    assert list(out_dir.iterdir()) == []
    # the killed child's work directory went with it
    assert len(stages) == 1 and not Path(stages[0]).exists()


def test_a_native_crash_is_a_named_error_and_the_caller_goes_on(fx, out_dir):
    with pytest.raises(ProcessingCrashedError) as info:
        compress_isolated(fx.text(), out_dir / "a.pdf", _fault="abort")
    assert info.value.code == "processing_crashed" and "signal 6" in info.value.message
    report = compress_isolated(fx.text(), out_dir / "b.pdf")  # the next file is fine
    assert report.pages == 3


def test_memory_beyond_the_cap_is_a_named_error(tmp_path, out_dir):
    """A 300 MB stream with the engine's own limits off: only the address-space cap stops it."""
    src = tmp_path / "bomb.pdf"
    pdfgen.flate_bomb_pdf(src, nbytes=300 * MB)
    unlimited = Limits(max_stream_bytes=0, max_document_bytes=0)
    with pytest.raises(MemoryLimitError) as info:
        compress_isolated(src, out_dir / "out.pdf", limits=unlimited,
                          child=ChildLimits(seconds=120, memory_bytes=500 * MB))
    assert info.value.code == "memory_limit"
    assert list(out_dir.iterdir()) == []


def test_progress_comes_back_in_order(fx, out_dir):
    seen: list[tuple[float, str]] = []
    report = compress_isolated(fx.photo(), out_dir / "out.pdf", Options(level="medium"),
                               progress=lambda fraction, stage: seen.append((fraction, stage)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert {"reading", "images", "verifying", "done"} <= {stage for _, stage in seen}
    assert report.output_bytes == (out_dir / "out.pdf").stat().st_size


def test_should_stop_kills_the_child_and_is_not_an_engine_error(fx, out_dir):
    started = time.monotonic()
    calls = []

    def stop() -> bool:  # asked on every poll; says stop at the fifth (whatever the load)
        calls.append(time.monotonic())
        return len(calls) >= 5

    with pytest.raises(JobCancelled) as info:
        compress_isolated(fx.text(), out_dir / "out.pdf", should_stop=stop, _fault="hang")
    assert not isinstance(info.value, EngineError)
    # killed long before the stand-in engine's hour-long sleep would have ended
    assert time.monotonic() - started < 120
    assert len(calls) == 5  # polled while waiting, and stopped when asked
    assert list(out_dir.iterdir()) == []
    assert compress_isolated(fx.text(), out_dir / "b.pdf").pages == 3  # the caller goes on


def test_an_image_in_the_isolated_child(tmp_path):
    """The forkserver has the engines imported and warmed; an image job must not inherit a
    dead thread pool from it (a forked pool deadlocks) — it answers, in time."""
    import numpy as np
    from PIL import Image

    src = tmp_path / "in.png"
    pixels = np.random.default_rng(2).random((200, 300, 3)) * 80 + 60
    Image.fromarray(pixels.astype("uint8")).save(src)
    for _ in range(2):  # the second child comes from the same, already warm, forkserver
        report = compress_isolated(src, tmp_path / "out.png", {"compression": "high"},
                                   child=ChildLimits(seconds=60))
        assert report.kind == "image" and report.format_out == "png"
        assert report.output_bytes <= src.stat().st_size


def _helper_holds(send, nbytes: int) -> None:
    """A child whose own forked helper takes ``nbytes`` (as the verification helpers do)."""
    import ctypes
    import os
    import signal

    if os.fork() == 0:
        ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # dies with its parent
        block = b"\x01" * nbytes  # (written, so resident)
        time.sleep(20)
        os._exit(len(block) & 0)
    time.sleep(20)


def test_a_forked_helpers_memory_counts_against_the_childs_cap():
    import multiprocessing

    from squeezer.jobs.isolation import supervise

    started = time.monotonic()
    run = supervise(multiprocessing.get_context("fork"), _helper_holds, (400 * MB,),
                    seconds=15, memory_bytes=250 * MB)
    assert run.ended == "memory"
    assert time.monotonic() - started < 10
