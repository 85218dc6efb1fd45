"""mozjpeg's lossless JPEG re-pack (progressive scans, optimal Huffman tables), in one place.

Why a module of its own: ``mozjpeg_lossless_optimization`` leaves libjpeg's default
error handler on its writing side, so a JPEG whose damaged entropy-coded data
decodes to coefficients out of range ("DCT coefficient out of range") makes it
call ``exit(1)``: the CLI or the job's child would end with no answer.  JPEGs that
come from outside (a PDF's DCT streams, an image file, an archive's members) are
therefore re-packed by a helper process of our own (a small Python loop reading
JPEGs on its stdin): when one ends it, that JPEG is kept as it was and the next
call starts a new helper.  Helpers are kept between calls (one per concurrent
caller; starting one costs about 40 ms, a call about 1 ms more than in process)
and end when this process closes their stdin, or dies.  The output of our own
encoders is re-packed in process.
"""

from __future__ import annotations

import atexit
import contextlib
import struct
import subprocess
import sys
import threading
from typing import Literal

try:
    import mozjpeg_lossless_optimization as _moz
except ImportError:  # pragma: no cover - the dependency is declared
    _moz = None

#: Which optional markers the re-pack keeps: none, only the ICC profile (APP2), or all.
Markers = Literal["none", "icc", "all"]
_COPY = {"none": 0, "icc": 4, "all": 2}  # mozjpeg_lossless_optimization.COPY_MARKERS

#: request: markers, length; answer: ok, length
_REQUEST = struct.Struct("<BQ")
_ANSWER = struct.Struct("<BQ")

_HELPER = r"""
import struct, sys
import mozjpeg_lossless_optimization as moz
inp, out = sys.stdin.buffer, sys.stdout.buffer
def exactly(n):
    data = inp.read(n)
    if len(data) != n:
        raise SystemExit(0)
    return data
while True:
    copy, length = struct.unpack("<BQ", exactly(9))
    try:
        result, ok = bytes(moz.optimize(exactly(length), copy=copy)), 1
    except ValueError:
        result, ok = b"", 0
    out.write(struct.pack("<BQ", ok, len(result)) + result)
    out.flush()
"""


def available() -> bool:
    """Whether the re-packer is installed."""
    return _moz is not None


def repack(data: bytes, *, markers: Markers = "none", trusted: bool = False) -> bytes | None:
    """The same coefficients re-packed, or None when mozjpeg cannot read ``data``.

    ``trusted``: ``data`` was written by our own encoder, so it is re-packed in process.
    """
    if _moz is None:
        return None
    if trusted:
        try:
            return bytes(_moz.optimize(data, copy=_COPY[markers]))
        except ValueError:
            return None
    helper = _pool.take()
    try:
        answer = helper.call(data, _COPY[markers])
    except OSError:  # it ended (exit(1) on this JPEG, or killed): this JPEG stays as it was
        helper.close()
        return None
    _pool.give_back(helper)
    return answer


class _Helper:
    """One helper process and its pipes."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(  # our own interpreter and code
            [sys.executable, "-I", "-c", _HELPER], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, close_fds=True)

    def call(self, data: bytes, copy: int) -> bytes | None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(_REQUEST.pack(copy, len(data)))
        self.proc.stdin.write(data)
        self.proc.stdin.flush()
        header = self.proc.stdout.read(_ANSWER.size)
        if len(header) != _ANSWER.size:
            raise OSError("the re-pack helper ended")
        ok, length = _ANSWER.unpack(header)
        payload = self.proc.stdout.read(length)
        if len(payload) != length:
            raise OSError("the re-pack helper ended")
        return payload if ok else None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _Pool:
    """Idle helpers, one taken per call: concurrent callers each get their own."""

    def __init__(self) -> None:
        self.idle: list[_Helper] = []
        self.lock = threading.Lock()

    def take(self) -> _Helper:
        with self.lock:
            if self.idle:
                return self.idle.pop()
        return _Helper()

    def give_back(self, helper: _Helper) -> None:
        with self.lock:
            self.idle.append(helper)

    def close(self) -> None:
        with self.lock:
            helpers, self.idle = self.idle, []
        for helper in helpers:
            helper.close()


_pool = _Pool()
atexit.register(_pool.close)
