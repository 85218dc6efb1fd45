"""zlib-format Deflate through libdeflate (the ``deflate`` wheel), behind one function.

Why not the standard library's zlib for the bytes a PDF keeps: on the corpus'
3,147 plain-Flate streams (53 MB decoded; ``bench/deflate_levels.py``)
libdeflate at level 9 writes 1 % fewer bytes than zlib at level 9 in less than
half the time.  Not on every stream: on about one in six (small, low-entropy
ones such as palette indexes) zlib's lazy matching wins by a few percent, so
the steps keep whichever of the stream's own bytes and libdeflate's is smaller,
and the image step's candidates, which are only compared with the original,
stay on zlib.  The output is an ordinary zlib stream (RFC 1950): every PDF
reader's FlateDecode inflates it.  It releases the GIL, so the steps' threads
(:mod:`squeezer.engines.threads`) deflate in parallel.
"""

from __future__ import annotations

import deflate as _libdeflate

#: The level for the bytes the steps keep: 10-12 cost 3-10x the time for ~3 % fewer bytes.
BEST = 9


def compress(data: bytes | memoryview, level: int = BEST) -> bytes:
    """``data`` as a zlib stream (FlateDecode's format) at libdeflate's ``level`` (1-12)."""
    return bytes(_libdeflate.zlib_compress(data, level))
