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


_THREADS = r"""
import ctypes, threading
from squeezer.engines import malloc
assert malloc.keep_freed_memory()
libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
SIZE = 20 << 20

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 >> 20

def work():  # an image thread's buffers, freed when it is done
    blocks = [libc.malloc(SIZE) for _ in range(3)]
    for block in blocks:
        ctypes.memset(block, 1, SIZE)
    for block in blocks:
        libc.free(block)

threads = [threading.Thread(target=work) for _ in range(2)]
for t in threads:
    t.start()
    t.join()  # one after the other: the second reuses what the first freed
kept = rss_mb()
malloc.release_freed_memory()
print(kept, rss_mb())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="glibc's mallopt")
def test_threads_share_the_kept_heap_and_it_is_given_back_before_forking():
    done = subprocess.run([sys.executable, "-c", _THREADS], capture_output=True, text=True,
                          timeout=60, check=True)
    kept, released = map(int, done.stdout.split())
    assert kept - released >= 50  # the 60 MB the threads freed, kept until asked back
    assert kept < 130  # the second thread reused the first one's 60 MB (one arena)
