"""glibc's allocator set up for compressing processes: it takes effect, and freed image-sized
buffers are kept for the next ones instead of being trimmed and faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

_FAULTS = r"""
import ctypes, resource, sys
from squeezer.engines import malloc
if sys.argv[1] == "tuned":
    assert malloc.keep_freed_memory() and malloc.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 20 << 20  # an image's buffers: below the mmap threshold, from the heap

def round_trip():
    blocks = [libc.malloc(SIZE) for _ in range(3)]
    for block in blocks:
        ctypes.memset(block, 1, SIZE)  # touched, as a decoder writes them
    for block in reversed(blocks):
        libc.free(block)

round_trip()
round_trip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    round_trip()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    def faults(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", _FAULTS, mode], capture_output=True,
                              text=True, timeout=60, check=True)
        return int(done.stdout)

    default, tuned = faults("default"), faults("tuned")
    pages = 10 * 3 * (20 << 20) // 4096
    assert default > pages // 4  # trimmed from the heap and faulted in again
    assert tuned < pages // 50  # kept, and reused
