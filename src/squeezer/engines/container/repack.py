"""The stored form of a member: the best deflate the run affords, or no compression at all.

libdeflate (the ``deflate`` wheel, as the PDF engine's Flate step uses) writes
raw Deflate streams any ZIP reader inflates.  Level 9 is the default: on the
corpora's 1,700 text members (82 MB: office XML, HTML, CSS, JS, JSON) levels
10-12 (near-optimal parsing) were 1.4-4 % smaller for 4-20 times the time
(``bench/results/containers.md``), and text is a small share of a document's
bytes next to its images.  ``archive.zopfli`` runs zopfli on text members up to
:data:`STRONGEST_MAX` instead, for those who want the last percent.

TrueType/OpenType fonts are tables, not entropy-coded: :data:`FONT_LEVEL`.
Members whose bytes are already entropy-coded (JPEG, PNG, WOFF fonts, nested
archives) are deflated only when a fast trial on their first
:data:`SAMPLE` bytes saves at least :data:`PACKED_GAIN`; else they are stored
(ZIP method 0), as ``mimetype`` must be in EPUB and ODF.
"""

from __future__ import annotations

import zlib

import deflate as _libdeflate

from squeezer.engines.container.zipread import DEFLATED, STORED

#: libdeflate's level for text members
LEVEL = 9
#: zopfli (archive.zopfli) for text members up to this size; larger ones get :data:`LEVEL`
STRONGEST_MAX = 4 << 20
#: bytes of an already-compressed member a fast trial deflates first
SAMPLE = 64 << 10
#: already-compressed members: stored unless deflate saves at least this fraction
PACKED_GAIN = 0.01


def deflate_raw(data: bytes, level: int) -> bytes:
    return bytes(_libdeflate.deflate_compress(data, level))


def zopfli_raw(data: bytes) -> bytes:
    """Raw Deflate by zopfli: its zlib stream without the 2-byte header and Adler-32."""
    from zopfli.zopfli import compress

    return bytes(compress(data, numiterations=15, gzip_mode=0))[2:-4]


#: libdeflate's level for uncompressed fonts (TrueType/OpenType tables): near-optimal parsing
#: gains 4.7 % over level 9 there (the web corpus's 638 KB of TTF: 624,499 -> 595,388 bytes),
#: more than on text, and fonts are few
FONT_LEVEL = 12
#: the tags of a TrueType/OpenType font that is not itself compressed (WOFF/WOFF2 are)
SFNT_TAGS = (b"\x00\x01\x00\x00", b"OTTO", b"true", b"ttcf")


def is_sfnt(data: bytes) -> bool:
    return data[:4] in SFNT_TAGS


def best_stored(data: bytes, packed: bool, zopfli: bool = False) -> tuple[int, bytes]:
    """``(method, stored bytes)``: deflated when that is smaller, else stored."""
    if not data:
        return STORED, data
    if is_sfnt(data):
        out = deflate_raw(data, FONT_LEVEL)
        return (DEFLATED, out) if len(out) < len(data) else (STORED, data)
    if packed:
        head = data[:SAMPLE]
        if len(deflate_raw(head, 1)) > len(head) * (1 - 2 * PACKED_GAIN):
            return STORED, data
        out = deflate_raw(data, 6)
        if len(out) <= len(data) * (1 - PACKED_GAIN):
            return DEFLATED, out
        return STORED, data
    if zopfli and len(data) <= STRONGEST_MAX:
        out = zopfli_raw(data)
    else:
        out = deflate_raw(data, LEVEL)
    if len(out) < len(data):
        return DEFLATED, out
    return STORED, data


def crc(data: bytes) -> int:
    return zlib.crc32(data)
