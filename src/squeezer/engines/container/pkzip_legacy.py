"""PKZIP 1.x's own compression methods, read: Shrink (1), Reduce (2-5) and Implode (6).

Why our own decoder: no maintained library on PyPI decodes them with wheels (the one
Python implementation found, Binary Refinery's ``refinery.lib.zip.legacy``, ships as
an sdist of a large toolkit with hundreds of console scripts).  Archives made by PKZIP
1.x (1989-1993) are still found in software and text collections, and a member we
cannot read is never re-packed, checked or recursed into.

The three methods are specified by PKWARE's APPNOTE.TXT, section 5.1 (Shrink), 5.2
(Reduce) and 5.3 (Implode); where APPNOTE is silent, Info-ZIP's ``unshrink.c``,
``unreduce.c`` and ``explode.c`` (which read every such archive in the wild) decide:

- a back-reference reaching before the start of the output reads zero bytes;
- Implode's minimum match length is 3 with a literal tree and 2 without (PKZIP 1.01 and
  1.02 took it from the window size instead: 3 with the 8 KiB window; the reader tries
  that when a member with one of the two flags fails its CRC, :func:`has_pkzip101_variant`).

None of the streams has an end marker: each decoder stops at the member's declared
uncompressed size, and never produces more than that.  Damaged input (bits run out
before that size, an incomplete or over-full code tree, a code that names no string)
raises :class:`~squeezer.engines.errors.DamagedArchiveError`; every loop produces output
or consumes input, so no input can make a decoder run without end.  The CRC-32 is the
caller's to check.
"""

from __future__ import annotations

from squeezer.engines.errors import DamagedArchiveError

SHRUNK = 1
REDUCED = (2, 3, 4, 5)
IMPLODED = 6
#: the methods this module reads
METHODS = frozenset({SHRUNK, *REDUCED, IMPLODED})


def decompress(method: int, data: bytes, usize: int, flags: int, name: str,
               pkzip101: bool = False) -> bytes:
    """``data`` of a member stored by ``method``, decoded to exactly ``usize`` bytes.

    ``flags`` is the entry's general-purpose bit flag: Implode's bit 1 selects the 8 KiB
    window (else 4 KiB) and bit 2 the literal tree (APPNOTE 4.4.4).  ``pkzip101``: Implode
    read with PKZIP 1.01/1.02's minimum match length (:func:`has_pkzip101_variant`).
    """
    if method == SHRUNK:
        return unshrink(data, usize, name)
    if method in REDUCED:
        return unreduce(data, usize, method - 1, name)
    if method == IMPLODED:
        return explode(data, usize, bool(flags & 0x2), bool(flags & 0x4), name,
                       pkzip101=pkzip101)
    raise DamagedArchiveError(f"{name}: compression method {method} is not a PKZIP 1.x method")


def _truncated(name: str, method: str, done: int, usize: int) -> DamagedArchiveError:
    return DamagedArchiveError(f"{name}: the {method} data ends after {done} of the {usize} "
                               "bytes its header declares (the member is damaged)")


class _Bits:
    """Bits read least significant first (APPNOTE 5.1-5.3), past the end as zeros; the
    caller asks :meth:`overrun` whether any of those were used."""

    __slots__ = ("buf", "cnt", "data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos
        self.buf = 0
        self.cnt = 0

    def read(self, n: int) -> int:
        if self.cnt < n:
            self.buf |= int.from_bytes(self.data[self.pos:self.pos + 8], "little") << self.cnt
            self.cnt += 64
            self.pos += 8
        value = self.buf & ((1 << n) - 1)
        self.buf >>= n
        self.cnt -= n
        return value

    def overrun(self) -> bool:
        """More bits were used than the data holds."""
        return self.pos * 8 - self.cnt > len(self.data) * 8


def _copy(out: bytearray, dist: int, length: int) -> None:
    """Append ``length`` bytes from ``dist`` back (an LZ77 match; may overlap itself).
    Bytes before the start of the output read as zeros, as Info-ZIP (and PKZIP) do."""
    if dist > len(out):
        zeros = min(dist - len(out), length)
        out += bytes(zeros)
        length -= zeros
    if length <= 0:
        return
    start = len(out) - dist
    if length <= dist:
        out += out[start:start + length]
    else:
        pattern = bytes(out[start:])
        out += (pattern * (length // dist + 1))[:length]


# --- Shrink (APPNOTE 5.1) --------------------------------------------------------------------

_SHRINK_CODES = 1 << 13
_SHRINK_CONTROL = 256
_SHRINK_FIRST = 257
_FREE = -1


def unshrink(data: bytes, usize: int, name: str = "member") -> bytes:
    """Shrink: dynamic LZW with codes of 9 to 13 bits (APPNOTE 5.1).

    Code 256 is followed by 1 (codes grow one bit wider) or 2 (a partial clear: every
    code that is no other code's prefix is freed).  Each new string takes the lowest free
    code; a code not yet defined when read is the one being defined (the KwKwK case).
    """
    bits = _Bits(data)
    parent = [_FREE] * _SHRINK_CODES
    suffix = bytearray(_SHRINK_CODES)
    out = bytearray()
    width = 9
    free = _SHRINK_FIRST
    last = -1  # the previous code (none yet)
    last_first = 0  # the first byte of the previous code's string
    while len(out) < usize:
        code = bits.read(width)
        if bits.overrun():
            raise _truncated(name, "Shrink", len(out), usize)
        if code == _SHRINK_CONTROL:
            control = bits.read(width)
            if control == 1 and width < 13:
                width += 1
            elif control == 2:
                children = set(parent[_SHRINK_FIRST:])
                for c in range(_SHRINK_FIRST, _SHRINK_CODES):
                    if c not in children:
                        parent[c] = _FREE
                free = _SHRINK_FIRST
            else:
                raise DamagedArchiveError(f"{name}: the Shrink data has an unknown control "
                                          f"code {control} (the member is damaged)")
            continue
        new = -1
        if last >= 0:
            while free < _SHRINK_CODES and parent[free] != _FREE:
                free += 1
            if free < _SHRINK_CODES:
                new = free
                parent[new] = last
                suffix[new] = last_first  # right for KwKwK; set again below
                free += 1
        string = bytearray()
        node = code
        while node >= _SHRINK_FIRST:
            string.append(suffix[node])
            node = parent[node]
            if node == _FREE or len(string) >= _SHRINK_CODES:
                raise DamagedArchiveError(f"{name}: the Shrink code {code} names no string "
                                          "(the member is damaged)")
        string.append(node)
        string.reverse()
        if new >= 0:
            suffix[new] = node
        out += string
        last = code
        last_first = node
    del out[usize:]
    return bytes(out)


# --- Reduce (APPNOTE 5.2) --------------------------------------------------------------------

_DLE = 0x90


def unreduce(data: bytes, usize: int, factor: int, name: str = "member") -> bytes:
    """Reduce with compression factor 1-4 (methods 2-5; APPNOTE 5.2).

    The stream opens with a follower set for each byte value, last byte first (the
    bytes likely to follow it, each chosen by a short index).  The bytes so decoded are
    run through a small state machine where 0x90 (DLE) starts a back-reference:
    ``DLE 0`` is a literal 0x90; ``DLE V [extra] D`` copies ``(V & mask) + 3`` (plus
    ``extra`` when the length bits are all ones) bytes from ``(V >> (8 - factor)) * 256
    + D + 1`` back.
    """
    bits = _Bits(data)
    followers: list[bytes] = [b""] * 256
    for byte in range(255, -1, -1):
        count = bits.read(6)
        followers[byte] = bytes(bits.read(8) for _ in range(count))
    widths = [max(1, (len(f) - 1).bit_length()) for f in followers]
    length_mask = 0xFF >> factor
    out = bytearray()
    last = 0
    state = 0
    v = length = 0
    while len(out) < usize:
        follower = followers[last]
        if not follower or bits.read(1):
            c = bits.read(8)
        else:
            index = bits.read(widths[last])
            if index >= len(follower):
                raise DamagedArchiveError(f"{name}: the Reduce data names follower {index} of "
                                          f"{len(follower)} (the member is damaged)")
            c = follower[index]
        if bits.overrun():
            raise _truncated(name, "Reduce", len(out), usize)
        last = c
        if state == 0:
            if c == _DLE:
                state = 1
            else:
                out.append(c)
        elif state == 1:
            if c == 0:
                out.append(_DLE)
                state = 0
            else:
                v = c
                length = c & length_mask
                state = 2 if length == length_mask else 3
        elif state == 2:
            length += c
            state = 3
        else:
            _copy(out, ((v >> (8 - factor)) << 8) + c + 1, length + 3)
            state = 0
    del out[usize:]
    return bytes(out)


# --- Implode (APPNOTE 5.3) -------------------------------------------------------------------


def _tree(data: bytes, pos: int, count: int, name: str) -> tuple[list[int], int, int]:
    """One Shannon-Fano tree, read byte-aligned from ``data[pos:]`` (APPNOTE 5.3.3):
    ``(decode table, its index bits, position after the tree)``.

    The tree is sent as bit lengths, run-length coded (a byte: length - 1 in its low
    nibble, repeats - 1 in its high one).  Its codes are canonical Huffman codes with
    every bit inverted (APPNOTE's assignment gives the longest lengths the lowest codes),
    sent most significant bit first; the table is indexed by the next bits of the stream
    (least significant first) and holds ``symbol << 5 | length``.
    """
    if pos >= len(data):
        raise DamagedArchiveError(f"{name}: the Implode data ends in its code trees "
                                  "(the member is damaged)")
    n = data[pos] + 1
    record = data[pos + 1:pos + 1 + n]
    if len(record) != n:
        raise DamagedArchiveError(f"{name}: the Implode data ends in its code trees "
                                  "(the member is damaged)")
    lengths: list[int] = []
    for b in record:
        lengths += [(b & 0xF) + 1] * ((b >> 4) + 1)
    if len(lengths) != count or sum(1 << (16 - b) for b in lengths) != 1 << 16:
        raise DamagedArchiveError(f"{name}: an Implode code tree is broken (the member is "
                                  "damaged)")
    top = max(lengths)
    table = [0] * (1 << top)
    code = 0
    prev = 0
    for length, symbol in sorted((n, s) for s, n in enumerate(lengths)):
        code <<= length - prev
        prev = length
        inverted = code ^ ((1 << length) - 1)
        index = int(f"{inverted:0{length}b}"[::-1], 2)
        table[index::1 << length] = [symbol << 5 | length] * (1 << (top - length))
        code += 1
    return table, top, pos + 1 + n


def has_pkzip101_variant(method: int, flags: int) -> bool:
    """An Implode member PKZIP 1.01/1.02 may have written with another minimum match length
    (one of the 8 KiB window and literal tree flags set, not both)."""
    return method == IMPLODED and bool(flags & 0x2) != bool(flags & 0x4)


def explode(data: bytes, usize: int, large_window: bool, literal_tree: bool,
            name: str = "member", pkzip101: bool = False) -> bytes:
    """Implode: LZ77 over a 4 or 8 KiB window, with Shannon-Fano coded lengths and
    distances and, optionally, literals (APPNOTE 5.3).

    A 1 bit starts a literal (coded by the literal tree, or 8 plain bits); a 0 bit a
    match: 6 (4 KiB) or 7 (8 KiB) plain low distance bits, the coded high distance bits,
    then the coded length, 8 plain bits more when it is 63.  The minimum match length is
    3 with a literal tree, else 2; ``pkzip101``: 3 with the 8 KiB window, else 2.
    """
    pos = 0
    lit: list[int] = []
    lit_bits = 0
    if literal_tree:
        lit, lit_bits, pos = _tree(data, pos, 256, name)
    lens, len_bits, pos = _tree(data, pos, 64, name)
    dists, dist_bits, pos = _tree(data, pos, 64, name)
    lit_mask = (1 << lit_bits) - 1
    len_mask = (1 << len_bits) - 1
    dist_mask = (1 << dist_bits) - 1
    low_bits = 7 if large_window else 6
    low_mask = (1 << low_bits) - 1
    min_length = 3 if (large_window if pkzip101 else literal_tree) else 2
    end = len(data)
    buf = cnt = 0
    out = bytearray()
    while len(out) < usize:
        if cnt < 48:  # the most one step uses: 1 + 7 + 16 + 16 + 8
            if pos >= end + 16:
                raise _truncated(name, "Implode", len(out), usize)
            buf |= int.from_bytes(data[pos:pos + 8], "little") << cnt
            cnt += 64
            pos += 8
        if buf & 1:
            if literal_tree:
                v = lit[(buf >> 1) & lit_mask]
                out.append(v >> 5)
                used = 1 + (v & 31)
            else:
                out.append((buf >> 1) & 0xFF)
                used = 9
            buf >>= used
            cnt -= used
            continue
        low = (buf >> 1) & low_mask
        buf >>= 1 + low_bits
        v = dists[buf & dist_mask]
        buf >>= v & 31
        dist = ((v >> 5) << low_bits | low) + 1
        w = lens[buf & len_mask]
        buf >>= w & 31
        length = w >> 5
        used = 1 + low_bits + (v & 31) + (w & 31)
        if length == 63:
            length += buf & 0xFF
            buf >>= 8
            used += 8
        cnt -= used
        _copy(out, dist, length + min_length)
    if pos * 8 - cnt > end * 8:
        raise _truncated(name, "Implode", min(len(out), usize), usize)
    del out[usize:]
    return bytes(out)
