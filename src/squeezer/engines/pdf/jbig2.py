"""JBIG2 generic-region encoding (ITU T.88), lossless, for PDF's /JBIG2Decode filter.

No JBIG2 encoder is installable from PyPI or Debian (jbig2enc is not packaged
for bookworm and has no wheel), so Squeezer has its own: the generic-region
coder only, which is lossless by construction.  Symbol coding (text regions
with a symbol dictionary) is what makes JBIG2 dangerous: jbig2enc's lossy mode
substitutes similar glyphs (the 6/8 swaps of Xerox scanners), so it is never
done here.  See ``docs/jbig2.md`` for the measurements against CCITT G4.

The coder is template 0 with the nominal adaptive pixels and typical
prediction (TPGDON), coded with the MQ arithmetic coder (Annex E, :mod:`mq`).
Its inner loop runs once per pixel, so it is compiled: numba's compilation of
it ships as LLVM IR (:mod:`mq_native` loads it with llvmlite), numba compiles
the source where that IR cannot be loaded, and with neither the module
reports :func:`available` False and callers keep CCITT G4.

The PDF stream holds the page's segments without the file header (PDF 32000-1
§7.4.7): a page information segment (PDFium needs it) and one immediate
lossless generic region segment; end-of-page segments are not allowed there.  JBIG2 codes black as 1; a PDF reader turns it into
the sample 0, so ink (True) stays the sample 0, as with :mod:`ccitt`.
"""

from __future__ import annotations

import struct
import threading
from functools import lru_cache

import numpy as np

#: MQ coder probability estimation table (T.88 Table E.1): Qe, NMPS, NLPS, SWITCH.
QE_TABLE = np.array([
    (0x5601, 1, 1, 1), (0x3401, 2, 6, 0), (0x1801, 3, 9, 0), (0x0AC1, 4, 12, 0),
    (0x0521, 5, 29, 0), (0x0221, 38, 33, 0), (0x5601, 7, 6, 1), (0x5401, 8, 14, 0),
    (0x4801, 9, 14, 0), (0x3801, 10, 14, 0), (0x3001, 11, 17, 0), (0x2401, 12, 18, 0),
    (0x1C01, 13, 20, 0), (0x1601, 29, 21, 0), (0x5601, 15, 14, 1), (0x5401, 16, 14, 0),
    (0x5101, 17, 15, 0), (0x4801, 18, 16, 0), (0x3801, 19, 17, 0), (0x3401, 20, 18, 0),
    (0x3001, 21, 19, 0), (0x2801, 22, 19, 0), (0x2401, 23, 20, 0), (0x2201, 24, 21, 0),
    (0x1C01, 25, 22, 0), (0x1801, 26, 23, 0), (0x1601, 27, 24, 0), (0x1401, 28, 25, 0),
    (0x1201, 29, 26, 0), (0x1101, 30, 27, 0), (0x0AC1, 31, 28, 0), (0x09C1, 32, 29, 0),
    (0x08A1, 33, 30, 0), (0x0521, 34, 31, 0), (0x0441, 35, 32, 0), (0x02A1, 36, 33, 0),
    (0x0221, 37, 34, 0), (0x0141, 38, 35, 0), (0x0111, 39, 36, 0), (0x0085, 40, 37, 0),
    (0x0049, 41, 38, 0), (0x0025, 42, 39, 0), (0x0015, 43, 40, 0), (0x0009, 44, 41, 0),
    (0x0005, 45, 42, 0), (0x0001, 45, 43, 0), (0x5601, 46, 46, 0),
], dtype=np.int64)

#: Template 0's nominal adaptive pixels (T.88 6.2.5.3): A1 .. A4 as (x, y).
NOMINAL_AT = ((3, -1), (-3, -1), (2, -2), (-2, -2))

SEGMENT_PAGE_INFO = 48
SEGMENT_IMMEDIATE_LOSSLESS_GENERIC = 39


@lru_cache(maxsize=1)
def _compiled():
    """The MQ coder: compiled from the shipped IR (:mod:`mq_native`, about 0.1 s to load),
    else by numba from :mod:`mq` (about 0.7 s), else None when neither is possible."""
    from squeezer.engines.pdf import mq_native

    native = mq_native.load()
    if native is not None:
        return native
    try:
        from squeezer.engines.pdf import mq
    except ImportError:
        return None
    return mq.code_generic


def prefetch() -> threading.Thread | None:
    """Start loading the coder on a thread of its own, or None when it is loaded already.

    Compiling the IR runs in LLVM with the GIL released, so started before the
    content parsing of the scan and image steps (which holds the GIL) it costs
    a process next to nothing, instead of the first 1-bit image's ~0.1 s.  The
    caller joins the thread before it returns.
    """
    if loaded():
        return None
    loader = threading.Thread(target=_compiled, name="squeezer-jbig2-load", daemon=True)
    loader.start()
    return loader


def loaded() -> bool:
    """Whether the coder has been loaded (or found missing) in this process."""
    return bool(_compiled.cache_info().currsize)


def available() -> bool:
    """Whether JBIG2 can be encoded here (llvmlite or numba importable)."""
    return _compiled() is not None


def _segment(number: int, kind: int, data: bytes) -> bytes:
    # number, flags (type; 1-byte page association), no referred-to segments, page 1, length
    return struct.pack(">IBBBI", number, kind, 0, 1, len(data)) + data


def encode_generic(ink: np.ndarray, coder=None) -> bytes:
    """The /JBIG2Decode stream data of a boolean H x W array (True = ink, the sample 0).

    ``coder``: a particular MQ coder (tests compare them), else the one :func:`_compiled` picks.
    """
    kernel = coder or _compiled()
    if kernel is None:
        raise RuntimeError("JBIG2 encoding needs llvmlite or numba")
    height, width = ink.shape
    stride = (width + 8 + 7) // 8 * 8  # rows of whole uint64 words, 4 or more 0s on the right
    bits = np.zeros((height + 2, stride), np.uint8)
    bits[2:, 4:width + 4] = ink
    z = np.zeros(stride, np.uint8)
    # an MQ coder emits at most about one byte per 8 symbols of worst-case input, plus slack
    out = np.zeros(height * (width + 1) // 4 + 64, np.uint8)
    length = kernel(bits, bits.view(np.uint64), width, QE_TABLE, out, z, z.view(np.uint64))
    coded = out[:length].tobytes()
    page = struct.pack(">IIIIBH", width, height, 0, 0, 0x01, 0)
    region = struct.pack(">IIIIB", width, height, 0, 0, 0)
    flags = 0x08  # MMR off, template 0, TPGDON on
    at = struct.pack(">8b", *(v for pair in NOMINAL_AT for v in pair))
    # no end-of-page segment: PDF 32000-1 §7.4.7 forbids it inside a stream
    return (_segment(0, SEGMENT_PAGE_INFO, page)
            + _segment(1, SEGMENT_IMMEDIATE_LOSSLESS_GENERIC, region + bytes([flags]) + at + coded))
