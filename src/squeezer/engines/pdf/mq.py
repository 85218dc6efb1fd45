"""The MQ arithmetic coder (ITU T.88 Annex E) over a generic region, compiled by numba.

This module imports numba at the top, so :mod:`jbig2` imports it only when a
1-bit image is to be coded (numba's import costs a few hundred milliseconds).
The functions are compiled on first use and cached on disk (``cache=True``).
Loading that cache still costs numba's start-up in each process, so the
engine runs the same coder from shipped LLVM IR (:mod:`mq_native`, written
by :mod:`mq_emit` from this file) and uses numba only where that IR cannot
be loaded.

The register names (A, C, CT, B, BP) are the standard's.  B starts on the
byte before the output, which is never written (``bp == -1``).
"""

from __future__ import annotations

import numba
import numpy as np

#: The context that codes TPGDON's "row equals the row above" bit for template 0.
SLTP_CONTEXT = 0x9B25


@numba.njit(cache=True, inline="always")
def _next_byte(out, b, bp):  # pragma: no cover - compiled
    """Write B (unless it is the byte before the output) and move BP on."""
    if bp >= 0:
        out[bp] = b
    return bp + 1


@numba.njit(cache=True, inline="always")
def _byteout(out, b, c, ct, bp):  # pragma: no cover - compiled
    """BYTEOUT (Figure E.7), with the carry into B and the bit stuffing after 0xFF."""
    if b != 0xFF and c >= 0x8000000:
        b += 1  # the carry
        if b == 0xFF:
            c &= 0x7FFFFFF
    if b == 0xFF:
        bp = _next_byte(out, b, bp)
        return c >> 20, c & 0xFFFFF, 7, bp
    bp = _next_byte(out, b, bp)
    return c >> 19, c & 0x7FFFF, 8, bp


@numba.njit(cache=True, nogil=True)
def code_generic(bits, words, width, qe, out, z, zw):  # pragma: no cover - compiled
    """MQ-code the padded bitmap ``bits`` with template 0, the nominal AT pixels and TPGDON;
    returns the number of bytes in ``out`` (:func:`code_generic_into` with fresh statistics)."""
    index = np.zeros(65536, np.int64)
    mps = np.zeros(65536, np.int64)
    return code_generic_into(bits, words, width, qe, out, z, zw, index, mps)


@numba.njit(cache=True, inline="always", error_model="numpy", boundscheck=False)
def code_generic_into(bits, words, width, qe, out, z, zw, index, mps):  # pragma: no cover
    """The coder itself; ``index`` and ``mps`` (65536 int64 zeros each) hold the contexts'
    states.  Allocates nothing and cannot raise, so :mod:`mq_emit` can ship it as plain IR.

    ``bits`` has 2 rows of 0 above the image, 4 columns of 0 on its left and at least 4 on
    its right, and rows a multiple of 8 bytes long; ``words`` is the same memory as
    uint64 (rows are compared 8 pixels at a time).  ``z``/``zw`` are scratch for one row,
    as bytes and as uint64 over the same memory.

    Paper is most of a page, and most of it sits in context 0 (all 16 template pixels
    white) where white is the more probable symbol.  Such a run of n pixels is coded in
    closed form: while A stays at or above 0x8000, CODEMPS only subtracts Qe from A and
    adds it to C, so the steps up to the next renormalisation are one multiplication.
    The registers end exactly as n single steps would leave them (the same bytes out).
    """
    height = bits.shape[0] - 2
    stride = bits.shape[1]
    a = 0x8000
    c = 0
    ct = 12
    b = 0
    bp = -1
    ltp = 0
    end = width + 4
    for y in range(height):
        r = y + 2
        same = 1
        for k in range(words.shape[1]):
            if words[r, k] != words[r - 1, k]:
                same = 0
                break
        if same == 0:
            # z[x] == 0: pixel x is white and so are the pixels the step before it brought
            # into the upper windows (x+3 above, x+2 two above): x continues a context-0 run
            for k in range(stride - 3):
                z[k] = bits[r, k] | bits[r - 1, k + 3] | bits[r - 2, k + 2]
            for k in range(stride - 3, stride):
                z[k] = 0
        # TPGDON's bit first, then (unless the row repeats the one above) every pixel.
        # The context is kept as three sliding windows, one per row of the template
        # (T.88 Figure 3, bits 0-3: x-1..x-4 of this row; 4-10: x+3..x-3 of the row above;
        # 11-15: x+2..x-2 of the row above that), each shifted by one pixel per step.
        w0 = 0
        w1 = 0
        for k in range(1, 8):
            w1 = (w1 << 1) | bits[r - 1, k]
        w2 = 0
        for k in range(2, 7):
            w2 = (w2 << 1) | bits[r - 2, k]
        step = 0
        last = 0 if same == 1 else width
        while step <= last:
            if step == 0:
                cx = SLTP_CONTEXT
                d = same ^ ltp
            else:
                x = step + 3
                cx = w0 | (w1 << 4) | (w2 << 11)
                d = bits[r, x]
                if cx == 0 and d == 0 and mps[0] == 0:
                    # a run of context-0 white pixels, x .. x+n-1
                    n = 1
                    while x + n < end and (x + n) & 7 != 0 and z[x + n] == 0:
                        n += 1
                    if x + n < end and (x + n) & 7 == 0 and z[x + n] == 0:
                        while x + n + 8 <= end and zw[(x + n) >> 3] == 0:
                            n += 8
                        while x + n < end and z[x + n] == 0:
                            n += 1
                    step += n
                    w0 = 0
                    w1 = bits[r - 1, x + n + 3]
                    w2 = bits[r - 2, x + n + 2]
                    while n > 0:
                        i = index[0]
                        q = qe[i, 0]
                        m = (a - 0x8000) // q  # steps before A drops below 0x8000
                        if m >= n:
                            a -= n * q
                            c += n * q
                            break
                        # m plain steps, then one that renormalises (CODEMPS)
                        a -= (m + 1) * q
                        c += m * q
                        n -= m + 1
                        if a < q:
                            a = q
                        else:
                            c += q
                        index[0] = qe[i, 1]
                        # RENORME, written out as below: as an inlined helper returning the
                        # five registers the whole coder measured 15 % slower
                        while True:
                            a <<= 1
                            c <<= 1
                            ct -= 1
                            if ct == 0:
                                b, c, ct, bp = _byteout(out, b, c, ct, bp)
                            if (a & 0x8000) != 0:
                                break
                    continue
                w0 = ((w0 << 1) | d) & 0xF
                w1 = ((w1 << 1) | bits[r - 1, x + 4]) & 0x7F
                w2 = ((w2 << 1) | bits[r - 2, x + 3]) & 0x1F
            step += 1
            i = index[cx]
            q = qe[i, 0]
            a -= q
            if d == mps[cx]:  # CODEMPS
                if (a & 0x8000) != 0:
                    c += q
                    continue
                if a < q:
                    a = q
                else:
                    c += q
                index[cx] = qe[i, 1]
            else:  # CODELPS
                if a < q:
                    c += q
                else:
                    a = q
                if qe[i, 3] == 1:
                    mps[cx] = 1 - mps[cx]
                index[cx] = qe[i, 2]
            while True:  # RENORME
                a <<= 1
                c <<= 1
                ct -= 1
                if ct == 0:
                    b, c, ct, bp = _byteout(out, b, c, ct, bp)
                if (a & 0x8000) != 0:
                    break
        ltp = same
    # FLUSH (E.2.9): SETBITS, two BYTEOUTs, then the 0xFF 0xAC marker
    temp = c + a
    c |= 0xFFFF
    if c >= temp:
        c -= 0x8000
    for _ in range(2):
        c <<= ct
        b, c, ct, bp = _byteout(out, b, c, ct, bp)
    bp = _next_byte(out, b, bp)
    if b != 0xFF:
        out[bp] = 0xFF
        bp += 1
    out[bp] = 0xAC
    return bp + 1
