"""Reading ZIP members stored by the methods past Deflate and BZIP2 (APPNOTE 4.4.5).

Why: a member the engine cannot read is copied as it is, never re-packed, CRC
checked or recursed into.  Real archives use, besides stored (0), deflate (8) and
bzip2 (12), read by :mod:`~squeezer.engines.container.zipread` itself:

- **Deflate64** (9): Windows Explorer's choice for large archives; read by
  ``inflate64`` (py7zr's own Deflate64 decoder);
- **LZMA** (14): 7-Zip's ``-tzip -mm=LZMA``, Python's zipfile; read by :mod:`lzma`;
- **Zstandard** (93): WinZip 24+, 7-Zip forks; read by ``zstandard``;
- **XZ** (95): WinZip, 7-Zip; read by :mod:`lzma`;
- **PPMd** version I, revision 1 (98): WinZip, 7-Zip; read by ``pyppmd``;
- **Shrink** (1), **Reduce** (2-5) and **Implode** (6): PKZIP 1.x (1989-1993); read
  by :mod:`~squeezer.engines.container.pkzip_legacy`.

The output is never written with these methods: a member read here is re-packed
with deflate (or stored), unless its stored form is already smaller, when it is
copied as it was.

Every decoder is bounded by the member's declared size: it is asked for at most
``usize + 1`` bytes (so that a member decoding to more is found damaged, as a zip
bomb must be), except Deflate64, whose decoder takes no output limit: it is fed a
few bytes at a time, so that it holds at most about 1.5 times the remaining size
plus 2 MiB before the excess is refused.  Damaged data raises
:class:`~squeezer.engines.errors.DamagedArchiveError`, never another exception.
"""

from __future__ import annotations

import lzma

from squeezer.engines.container import pkzip_legacy
from squeezer.engines.errors import DamagedArchiveError

DEFLATE64 = 9
LZMA = 14
ZSTANDARD = 93
XZ = 95
PPMD = 98
#: the methods :func:`decompress` reads
METHODS = frozenset({DEFLATE64, LZMA, ZSTANDARD, XZ, PPMD, *pkzip_legacy.METHODS})
#: the methods' names, for reports
NAMES = {0: "stored", 8: "deflate", 12: "bzip2", DEFLATE64: "Deflate64", LZMA: "LZMA",
         ZSTANDARD: "Zstandard", XZ: "XZ", PPMD: "PPMd", pkzip_legacy.SHRUNK: "Shrink",
         **{m: f"Reduce (factor {m - 1})" for m in pkzip_legacy.REDUCED},
         pkzip_legacy.IMPLODED: "Implode"}
#: XZ members whose decoder would need more memory than this are refused (xz -9 needs 65 MiB)
XZ_MEMLIMIT = 1 << 28
#: Deflate64's best case: 65,538 bytes from 18 bits, about 2^15 bytes for each input byte
_DEFLATE64_RATIO_BITS = 16


def decompress(method: int, flags: int, data: bytes, usize: int, name: str) -> bytes:
    """``data`` decoded by ``method``: at most ``usize + 1`` bytes (the caller compares)."""
    try:
        if method == DEFLATE64:
            return _deflate64(data, usize)
        if method == LZMA:
            return _lzma(data, usize, name)
        if method == XZ:
            d = lzma.LZMADecompressor(lzma.FORMAT_XZ, memlimit=XZ_MEMLIMIT)
            return d.decompress(data, usize + 1)
        if method == ZSTANDARD:
            return _zstd(data, usize)
        if method == PPMD:
            return _ppmd(data, usize, name)
        if method in pkzip_legacy.METHODS:
            return pkzip_legacy.decompress(method, data, usize, flags, name)
    except DamagedArchiveError:
        raise
    except (lzma.LZMAError, ValueError, EOFError, OSError, MemoryError) as exc:
        raise DamagedArchiveError(f"{name}: the member does not decompress ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - zstandard.ZstdError, anything a library raises
        raise DamagedArchiveError(f"{name}: the member does not decompress "
                                  f"({type(exc).__name__}: {exc})") from None
    raise DamagedArchiveError(f"{name}: compression method {method} is not supported")


def _deflate64(data: bytes, usize: int) -> bytes:
    """Deflate64 (APPNOTE 5.6, "Enhanced Deflating": deflate with a 64 KiB window and lengths up to 65,538).

    ``inflate64.Inflater.inflate`` returns all it can from the input it is given, so the
    input goes in pieces no larger than the remaining size allows at the best ratio.
    """
    import inflate64

    inflater = inflate64.Inflater()
    out = bytearray()
    pos = 0
    while pos < len(data) and not inflater.eof and len(out) <= usize:
        step = max(64, (usize + 1 - len(out)) >> _DEFLATE64_RATIO_BITS)
        out += inflater.inflate(data[pos:pos + step])
        pos += step
    del out[usize + 1:]
    return bytes(out)


def _lzma(data: bytes, usize: int, name: str) -> bytes:
    """LZMA in ZIP (APPNOTE 5.8): LZMA SDK version (2 bytes), properties size (2 bytes,
    little-endian, 5), the LZMA1 properties (lc/lp/pb byte, 4-byte dictionary size), then
    the raw stream, ended by an end marker when flag bit 1 says so, else by the size.

    The dictionary is cut to the member's size: no match reaches further back than the
    output, and a header declaring 4 GiB would otherwise be allocated as declared.
    """
    if len(data) < 9:
        raise DamagedArchiveError(f"{name}: the LZMA header is truncated")
    size = int.from_bytes(data[2:4], "little")
    if size != 5:
        raise DamagedArchiveError(f"{name}: the LZMA properties are {size} bytes, not 5")
    props = data[4]
    if props >= 9 * 5 * 5:
        raise DamagedArchiveError(f"{name}: the LZMA properties are invalid")
    pb, rest = divmod(props, 45)
    lp, lc = divmod(rest, 9)
    dict_size = int.from_bytes(data[5:9], "little")
    dict_size = max(4096, min(dict_size, usize))
    d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[{
        "id": lzma.FILTER_LZMA1, "dict_size": dict_size, "lc": lc, "lp": lp, "pb": pb}])
    return d.decompress(data[9:], usize + 1)


def _zstd(data: bytes, usize: int) -> bytes:
    import zstandard

    reader = zstandard.ZstdDecompressor().stream_reader(data, read_across_frames=True)
    out = bytearray()
    while len(out) <= usize:
        chunk = reader.read(usize + 1 - len(out))
        if not chunk:
            break
        out += chunk
    return bytes(out)


def _ppmd(data: bytes, usize: int, name: str) -> bytes:
    """PPMd variant I revision 1 in ZIP (APPNOTE 5.10): two little-endian header bytes,
    model order - 1 (bits 0-3), memory in MiB - 1 (bits 4-11), restore method (12-15)."""
    import pyppmd

    if len(data) < 2:
        raise DamagedArchiveError(f"{name}: the PPMd header is truncated")
    props = int.from_bytes(data[:2], "little")
    order = (props & 0xF) + 1
    memory = ((props >> 4) & 0xFF) + 1
    restore = props >> 12
    if order < 2 or restore > 2:
        raise DamagedArchiveError(f"{name}: the PPMd parameters are invalid (order {order}, "
                                  f"restore method {restore})")
    decoder = pyppmd.Ppmd8Decoder(order, memory << 20, restore_method=restore)
    return bytes(decoder.decode(data[2:], usize + 1))
