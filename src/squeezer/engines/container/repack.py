"""The stored form of a member: the best deflate the run affords, or no compression at all.

libdeflate (the ``deflate`` wheel, as the PDF engine's Flate step uses) writes
raw Deflate streams any ZIP reader inflates.  Level 12 is its strongest
(near-optimal parsing); on the corpus' office XML it is 8 % smaller than
level 9 and 9 % smaller than zlib 9 (``bench/container_bench.py``).  Members
whose bytes are already entropy-coded (JPEG, PNG, fonts, nested archives) are
tried at level 6 only and stored when deflating saves under 1 %: a higher
level costs time for nothing there.  ``archive.zopfli`` runs zopfli on text
members instead (a few percent smaller again, tens of times slower).

A member is stored when deflate does not make it smaller (ZIP's "stored"
method 0), as ``mimetype`` must be in EPUB and ODF.
"""

from __future__ import annotations

import zlib

import deflate as _libdeflate

from squeezer.engines.container.zipread import DEFLATED, STORED

#: text members up to this size get libdeflate's strongest level; larger ones level 10
STRONGEST_MAX = 4 << 20
#: already-compressed members: stored unless deflate saves at least this fraction
PACKED_GAIN = 0.01


def deflate_raw(data: bytes, level: int) -> bytes:
    return bytes(_libdeflate.deflate_compress(data, level))


def zopfli_raw(data: bytes) -> bytes:
    """Raw Deflate by zopfli: its zlib stream without the 2-byte header and Adler-32."""
    from zopfli.zopfli import compress

    return bytes(compress(data, numiterations=15, gzip_mode=0))[2:-4]


def best_stored(data: bytes, packed: bool, zopfli: bool = False) -> tuple[int, bytes]:
    """``(method, stored bytes)``: deflated when that is smaller, else stored."""
    if not data:
        return STORED, data
    if packed:
        out = deflate_raw(data, 6)
        if len(out) <= len(data) * (1 - PACKED_GAIN):
            return DEFLATED, out
        return STORED, data
    if zopfli and len(data) <= STRONGEST_MAX:
        out = zopfli_raw(data)
    else:
        out = deflate_raw(data, 12 if len(data) <= STRONGEST_MAX else 10)
    if len(out) < len(data):
        return DEFLATED, out
    return STORED, data


def crc(data: bytes) -> int:
    return zlib.crc32(data)
