"""The decoded length of an LZWDecode stream, computed without decoding it.

qpdf bounds the memory of its Flate, RunLength, PNG/TIFF predictor and DCT
decoders, but not of LZW: 158 KB of LZW codes can expand to ~400 MB, all
materialised by ``read_bytes()``.  Each LZW code stands for a string whose
length is known from the table alone (an entry is its prefix plus one byte),
so summing the lengths of the codes gives the decoded size in O(codes) time
and constant memory.  The pre-flight scan calls this before letting qpdf
decode an LZW stream.  (ISO 32000-2 §7.4.4.)
"""

from __future__ import annotations

CLEAR = 256
EOD = 257
FIRST_ENTRY = 258
MAX_WIDTH = 12


def decoded_length(data: bytes, early_change: int = 1, stop_after: int = 0) -> int:
    """Number of bytes ``data`` decodes to; stops counting once above ``stop_after`` (if > 0).

    Malformed code sequences end the count where a decoder would give up,
    so the result never underestimates what qpdf could produce.
    """
    lengths = [1] * FIRST_ENTRY + [0] * ((1 << MAX_WIDTH) - FIRST_ENTRY)
    next_code = FIRST_ENTRY
    width = 9
    previous = -1
    total = 0
    buffer = 0
    bits = 0
    for byte in data:
        buffer = (buffer << 8) | byte
        bits += 8
        while bits >= width:
            bits -= width
            code = (buffer >> bits) & ((1 << width) - 1)
            buffer &= (1 << bits) - 1
            if code == CLEAR:
                next_code, width, previous = FIRST_ENTRY, 9, -1
                continue
            if code == EOD:
                return total
            if previous < 0:
                length = 1 if code < 256 else 0
                if length == 0:  # a table code before any entry exists: decoders stop here
                    return total
            elif code < next_code:
                length = lengths[code]
                if next_code < (1 << MAX_WIDTH):
                    lengths[next_code] = lengths[previous] + 1
                    next_code += 1
            elif code == next_code:  # the "KwKwK" case: previous string plus its first byte
                length = lengths[previous] + 1
                if next_code < (1 << MAX_WIDTH):
                    lengths[next_code] = length
                    next_code += 1
            else:
                return total
            total += length
            if stop_after and total > stop_after:
                return total
            previous = code
            if next_code + early_change >= (1 << width) and width < MAX_WIDTH:
                width += 1
    return total
