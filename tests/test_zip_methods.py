"""ZIP members stored by methods past deflate and bzip2 are read, re-packed and checked (issue 17).

``data/zip/methods.zip`` (made by ``data/zip/make_methods_zip.py``) holds one member for
each method: Deflate64, LZMA, PPMd, XZ and bzip2 written by 7-Zip, Zstandard by
``zstandard``, and PKZIP 1.x's Implode and Shrink cut raw from Apache Tika's ``moby.zip``.
Reduce (which nothing here writes) and the Implode and Shrink variants ``moby.zip`` does not
use are checked against small encoders written here from APPNOTE.TXT 5.1-5.3 (PKZIP 0.92's
own Reduce output was checked by hand while writing the decoder).  Every decoder is fed
truncated and mutated data: a named error or the right bytes, never another exception.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from containerfx import corpus_file, docx, photo, png_bytes

from squeezer.engines.container import pkzip_legacy, zipmethods
from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.container.zipread import ZipEntry, inflate, open_zip
from squeezer.engines.dispatch import compress_any
from squeezer.engines.errors import DamagedArchiveError
from squeezer.engines.limits import DEFAULT_LIMITS

METHODS_ZIP = Path(__file__).parent / "data" / "zip" / "methods.zip"
#: the fixture's member names and methods
FIXTURE = {"deflate64.txt": 9, "lzma.txt": 14, "ppmd.txt": 98, "xz.txt": 95, "bzip2.txt": 12,
           "moby.0": 6, "moby.122": 1, "zstd.txt": 93}


def contents(path: Path) -> dict[str, bytes]:
    """Every member of a ZIP, read by our reader (CRC-checked)."""
    with open_zip(path, ArchiveBudget(DEFAULT_LIMITS)) as z:
        return {e.name: z.read(e) for e in z.entries if not e.is_dir}


def raw_entries(path: Path) -> list[tuple[ZipEntry, bytes]]:
    with open_zip(path, ArchiveBudget(DEFAULT_LIMITS)) as z:
        return [(e, z.raw(e)) for e in z.entries]


def test_every_method_of_the_fixture_reads_with_its_crc() -> None:
    entries = raw_entries(METHODS_ZIP)
    assert {e.name: e.method for e, _ in entries} == FIXTURE
    data = contents(METHODS_ZIP)
    assert data["moby.0"].startswith(b"Preliminary Matter.")
    assert b"MIDNIGHT ALOFT--THUNDER AND LIGHTNING" in data["moby.122"]
    for seed, name in enumerate(("deflate64.txt", "lzma.txt", "ppmd.txt", "xz.txt",
                                 "bzip2.txt"), 1):
        assert data[name] == _text(seed), name
    assert data["zstd.txt"] == _text(9)


def _text(seed: int, lines: int = 60) -> bytes:
    """The fixture's text members (data/zip/make_methods_zip.py)."""
    return "".join(f"{seed}: line {i} of a member; words {i * seed % 97} and {i * i % 89} "
                   "repeat, as text does.\n" for i in range(lines)).encode()


@pytest.mark.parametrize("level", ["lossless", "medium"])
def test_a_zip_of_every_method_is_repacked_smaller_with_the_same_bytes(
        tmp_path: Path, level: str) -> None:
    out = tmp_path / "out.zip"
    report = compress_any(METHODS_ZIP, out, {"level": level})
    assert not report.original_kept
    assert out.stat().st_size == report.output_bytes < METHODS_ZIP.stat().st_size
    assert contents(out) == contents(METHODS_ZIP)
    rows = {m.name: m for m in report.members}
    assert not [m.action for m in rows.values() if "not supported" in m.action]
    # PKZIP 1.x's members always deflate smaller; the others are re-packed or kept as they were
    for name in ("moby.0", "moby.122"):
        assert rows[name].action == "recompressed" and rows[name].bytes_after < \
            rows[name].bytes_before, name
    methods = {i.filename: i.compress_type for i in zipfile.ZipFile(out).infolist()}
    for name, method in methods.items():
        if rows[name].action.startswith("kept"):
            assert method == FIXTURE[name] and "no larger than deflate's" in rows[name].action
        else:
            assert method in (0, 8), name
    # an independent reader agrees on every member whose method it knows
    with zipfile.ZipFile(out) as z:
        for info in z.infolist():
            if info.compress_type in (0, 8, 12, 14):
                assert z.read(info) == contents(METHODS_ZIP)[info.filename]


def test_a_nested_zip_of_legacy_members_is_recursed_into(tmp_path: Path) -> None:
    outer = tmp_path / "outer.zip"
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inner/methods.zip", METHODS_ZIP.read_bytes())
    out = tmp_path / "out.zip"
    report = compress_any(outer, out, {"level": "lossless"})
    (row,) = report.members
    nested = {m.name: m.action for m in row.members}
    assert nested["moby.0"] == nested["moby.122"] == "recompressed"
    with zipfile.ZipFile(out) as z:
        inner = tmp_path / "inner.zip"
        inner.write_bytes(z.read("inner/methods.zip"))
    assert contents(inner) == contents(METHODS_ZIP)


def test_an_lzma_docx_is_known_as_a_document_and_checked_as_one(tmp_path: Path) -> None:
    """Python's zipfile writes LZMA members: the package's content types are read to tell a
    DOCX from a plain ZIP (it was taken for a ZIP and kept whole), and python-docx opens
    the output with the same text."""
    made = docx(tmp_path / "made.docx", picture=png_bytes(photo(400, 300)))
    src = tmp_path / "lzma.docx"
    with zipfile.ZipFile(made) as a, zipfile.ZipFile(src, "w", zipfile.ZIP_LZMA) as b:
        for info in a.infolist():
            b.writestr(info.filename, a.read(info))
    out = tmp_path / "out.docx"
    report = compress_any(src, out, {"level": "lossless"})
    assert report.format_out == "docx" and report.container == "ooxml"
    assert not report.original_kept and report.output_bytes < src.stat().st_size
    assert any(v.startswith("python-docx: opens") for v in report.verified)
    rows = {m.name: m.action for m in report.members}
    for info in zipfile.ZipFile(out).infolist():
        assert info.compress_type in (0, 8) or rows[info.filename] in (
            "kept: its LZMA data is no larger than deflate's", "kept: no smaller result"), \
            info.filename


def test_moby_is_no_longer_kept_whole(tmp_path: Path) -> None:
    src = corpus_file("archives", "tika__moby.zip")
    out = tmp_path / "moby.zip"
    report = compress_any(src, out, {"level": "lossless"})
    assert not report.original_kept
    assert out.stat().st_size < 0.95 * src.stat().st_size  # 606,033 -> 567,457 bytes
    assert contents(out) == contents(src)
    assert {m.action for m in report.members} == {"recompressed"}


def test_analyze_reads_every_method(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "squeezer", "analyze", str(METHODS_ZIP),
                           "--json"], capture_output=True, text=True, timeout=180, check=False,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    text = json.dumps(json.loads(proc.stdout))
    assert "zip" in text and "not supported" not in text


# --- bounds and damage -----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_a_member_declared_smaller_or_larger_than_it_decodes_is_damaged(name: str) -> None:
    entry, raw = next((e, r) for e, r in raw_entries(METHODS_ZIP) if e.name == name)
    with pytest.raises(DamagedArchiveError):
        inflate(entry.method, raw, entry.usize + 50, name, entry.flags)
    if entry.method in pkzip_legacy.METHODS:
        # no end marker: the declared size is where the stream ends; fewer bytes are a prefix
        assert inflate(entry.method, raw, 100, name, entry.flags) == contents(
            METHODS_ZIP)[name][:100]
    else:
        with pytest.raises(DamagedArchiveError, match="more bytes"):
            inflate(entry.method, raw, entry.usize - 50, name, entry.flags)


@pytest.mark.parametrize("method", sorted(zipmethods.METHODS - pkzip_legacy.METHODS))
def test_a_bomb_stops_at_the_declared_size(method: int) -> None:
    """A member that expands far past its header's size is refused, having produced at most
    that size (plus one byte, or Deflate64's few bytes of input more)."""
    big = bytes(4 << 20)
    packed = {9: _deflate64_of_zeros, 14: _lzma_member, 93: _zstd_member, 95: _xz_member,
              98: _ppmd_member}[method](big)
    out = zipmethods.decompress(method, 0, packed, 1000, "bomb")
    assert 1000 < len(out) <= 1001
    with pytest.raises(DamagedArchiveError, match="more bytes"):
        inflate(method, packed, 1000, "bomb")


def _lzma_member(data: bytes) -> bytes:
    import lzma

    filters = [{"id": lzma.FILTER_LZMA1, "preset": 6}]
    props = lzma._encode_filter_properties(filters[0])  # type: ignore[attr-defined]
    body = lzma.compress(data, format=lzma.FORMAT_RAW, filters=filters)
    return bytes([9, 20, len(props), 0]) + props + body


def _zstd_member(data: bytes) -> bytes:
    import zstandard

    return zstandard.ZstdCompressor(level=3).compress(data)


def _xz_member(data: bytes) -> bytes:
    import lzma

    return lzma.compress(data, format=lzma.FORMAT_XZ)


def _ppmd_member(data: bytes) -> bytes:
    import pyppmd

    order, memory = 6, 16
    encoder = pyppmd.Ppmd8Encoder(order, memory << 20, restore_method=0)
    props = (order - 1) | (memory - 1) << 4
    return props.to_bytes(2, "little") + encoder.encode(data) + encoder.flush()


def _deflate64_of_zeros(data: bytes) -> bytes:
    """Zeros as Deflate64 (fixed Huffman): one literal, then copies of 65,538 bytes from one
    back (length code 285: 3 + 16 extra bits in Deflate64, where deflate has 258)."""
    bits = _Bits()
    bits.put(1, 1)  # the last block
    bits.put(1, 2)  # fixed Huffman codes
    bits.put_msb(0x30, 8)  # the literal 0
    for _ in range(len(data) // 65538):
        bits.put_msb(0xC0 + 285 - 280, 8)
        bits.put(65535, 16)
        bits.put_msb(0, 5)  # distance code 0: one back
    bits.put_msb(0, 7)  # end of block
    return bits.bytes()


def _mutations(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = [data[:cut] for cut in sorted({0, 1, 2, 5, len(data) // 3, len(data) // 2,
                                         len(data) - 1})]
    for _ in range(count):
        b = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        out.append(bytes(b))
    return out


@pytest.mark.parametrize("name", sorted(FIXTURE))
def test_damaged_members_give_a_named_error_or_the_right_bytes(name: str) -> None:
    entry, raw = next((e, r) for e, r in raw_entries(METHODS_ZIP) if e.name == name)
    want = contents(METHODS_ZIP)[name]
    rng = random.Random(name)
    for data in _mutations(raw, rng, 60):
        try:
            out = inflate(entry.method, data, entry.usize, name, entry.flags)
        except DamagedArchiveError as exc:
            assert name in str(exc)
            continue
        assert len(out) == entry.usize
        if zlib.crc32(out) == entry.crc:
            assert out == want


@pytest.mark.parametrize("method", [1, 2, 3, 4, 5, 6])
def test_legacy_decoders_survive_garbage(method: int) -> None:
    rng = random.Random(method)
    for size in (0, 1, 3, 40, 700, 5000):
        for flags in (0, 2, 4, 6):
            data = bytes(rng.randrange(256) for _ in range(size))
            try:
                out = pkzip_legacy.decompress(method, data, 20000, flags, "junk")
            except DamagedArchiveError:
                continue
            assert len(out) == 20000


# --- PKZIP 1.x variants that moby.zip does not use, against encoders written from APPNOTE ----


class _Bits:
    """Bits written least significant first (APPNOTE 5.1-5.3)."""

    def __init__(self) -> None:
        self.acc = 0
        self.n = 0

    def put(self, value: int, count: int) -> None:
        self.acc |= (value & ((1 << count) - 1)) << self.n
        self.n += count

    def put_msb(self, code: int, length: int) -> None:
        """A code sent most significant bit first (Huffman and Shannon-Fano codes)."""
        for i in range(length - 1, -1, -1):
            self.put((code >> i) & 1, 1)

    def bytes(self) -> bytes:
        return self.acc.to_bytes((self.n + 7) // 8, "little")


def _sample(seed: int, size: int = 6000) -> bytes:
    rng = random.Random(seed)
    words = [bytes(rng.randrange(97, 123) for _ in range(rng.randint(2, 9))) for _ in range(60)]
    out = bytearray()
    while len(out) < size:
        roll = rng.random()
        if roll < 0.8:
            out += rng.choice(words) + b" "
        elif roll < 0.9:
            out += bytes(rng.randrange(256) for _ in range(rng.randint(1, 30)))
        else:
            out += bytes([rng.choice(b"a\x90 ")]) * rng.randint(50, 700)  # long runs, DLE
    return bytes(out[:size])


def _lengths(count: int, rng: random.Random) -> list[int]:
    """Bit lengths of a complete code (Huffman's construction), at most 16 bits."""
    while True:
        heap = [(rng.randint(1, 60), i, [i]) for i in range(count)]
        depth = [0] * count
        heapq.heapify(heap)
        while len(heap) > 1:
            w1, i1, s1 = heapq.heappop(heap)
            w2, _, s2 = heapq.heappop(heap)
            for s in s1 + s2:
                depth[s] += 1
            heapq.heappush(heap, (w1 + w2, i1, s1 + s2))
        if max(depth) <= 16:
            return depth


def _shannon_fano(lengths: list[int]) -> list[int]:
    """APPNOTE 5.3.7's code assignment, as written there: lengths sorted ascending, codes
    counted up from the last (longest) entry, in 16-bit units."""
    order = sorted(range(len(lengths)), key=lambda s: (lengths[s], s))
    codes = [0] * len(lengths)
    code = increment = last = 0
    for s in reversed(order):
        code += increment
        if lengths[s] != last:
            last = lengths[s]
            increment = 1 << (16 - last)
        codes[s] = code >> (16 - lengths[s])
    return codes


def _tree_bytes(lengths: list[int]) -> bytes:
    records = []
    i = 0
    while i < len(lengths):
        run = 1
        while i + run < len(lengths) and lengths[i + run] == lengths[i] and run < 16:
            run += 1
        records.append((run - 1) << 4 | (lengths[i] - 1))
        i += run
    return bytes([len(records) - 1, *records])


def _matches(data: bytes, i: int, min_length: int, window: int, max_length: int,
             index: dict[bytes, list[int]]) -> tuple[int, int]:
    best = (0, 0)
    for j in reversed(index.get(data[i:i + min_length], [])[-16:]):
        if i - j > window:
            break
        n = 0
        while n < max_length and i + n < len(data) and data[j + n] == data[i + n]:
            n += 1
        if n > best[0]:
            best = (n, i - j)
    return best


def _implode(data: bytes, large: bool, literal_tree: bool, seed: int) -> bytes:
    rng = random.Random(seed)
    lit = _lengths(256, rng) if literal_tree else []
    lens, dists = _lengths(64, rng), _lengths(64, rng)
    head = (_tree_bytes(lit) if literal_tree else b"") + _tree_bytes(lens) + _tree_bytes(dists)
    lit_codes, len_codes, dist_codes = _shannon_fano(lit), _shannon_fano(lens), \
        _shannon_fano(dists)
    low_bits = 7 if large else 6
    min_length = 3 if literal_tree else 2
    bits = _Bits()
    index: dict[bytes, list[int]] = {}
    i = 0
    while i < len(data):
        length, dist = _matches(data, i, min_length, 1 << (low_bits + 6), min_length + 63 + 255,
                                index)
        if length >= min_length:
            bits.put(0, 1)
            bits.put(dist - 1, low_bits)
            high = (dist - 1) >> low_bits
            bits.put_msb(dist_codes[high], dists[high])
            n = length - min_length
            bits.put_msb(len_codes[min(n, 63)], lens[min(n, 63)])
            if n >= 63:
                bits.put(n - 63, 8)
        else:
            length = 1
            bits.put(1, 1)
            if literal_tree:
                bits.put_msb(lit_codes[data[i]], lit[data[i]])
            else:
                bits.put(data[i], 8)
        for k in range(i, i + length):
            index.setdefault(data[k:k + min_length], []).append(k)
        i += length
    return head + bits.bytes()


@pytest.mark.parametrize("large", [False, True])
@pytest.mark.parametrize("literal_tree", [False, True])
def test_implode_every_window_and_tree_variant(large: bool, literal_tree: bool) -> None:
    data = _sample(int(large) * 2 + int(literal_tree))
    packed = _implode(data, large, literal_tree, seed=7)
    flags = (0x2 if large else 0) | (0x4 if literal_tree else 0)
    assert len(packed) < len(data)
    assert pkzip_legacy.decompress(6, packed, len(data), flags, "x") == data
    with pytest.raises(DamagedArchiveError):
        pkzip_legacy.decompress(6, packed[:len(packed) // 2], len(data), flags, "x")


def _reduce(data: bytes, factor: int) -> bytes:
    mask = 0xFF >> factor
    symbols: list[int] = []
    index: dict[bytes, list[int]] = {}
    i = 0
    while i < len(data):
        length, dist = _matches(data, i, 4, 256 << factor, mask + 255 + 3, index)
        if length >= 4:  # length - 3 >= 1: V is never 0 (DLE 0 is a literal DLE)
            n = length - 3
            symbols += [0x90, ((dist - 1) >> 8) << (8 - factor) | min(n, mask)]
            if n >= mask:
                symbols.append(n - mask)
            symbols.append((dist - 1) & 0xFF)
        else:
            length = 1
            symbols += [0x90, 0] if data[i] == 0x90 else [data[i]]
        for k in range(i, i + length):
            index.setdefault(data[k:k + 4], []).append(k)
        i += length
    pairs: dict[int, dict[int, int]] = {}
    last = 0
    for c in symbols:
        pairs.setdefault(last, {})
        pairs[last][c] = pairs[last].get(c, 0) + 1
        last = c
    followers = {b: sorted(p, key=lambda c: -p[c])[:32] for b, p in pairs.items()}
    bits = _Bits()
    for byte in range(255, -1, -1):
        f = followers.get(byte, [])
        bits.put(len(f), 6)
        for c in f:
            bits.put(c, 8)
    last = 0
    for c in symbols:
        f = followers.get(last, [])
        if not f:
            bits.put(c, 8)
        elif c in f:
            bits.put(0, 1)
            bits.put(f.index(c), max(1, (len(f) - 1).bit_length()))
        else:
            bits.put(1, 1)
            bits.put(c, 8)
        last = c
    return bits.bytes()


@pytest.mark.parametrize("factor", [1, 2, 3, 4])
def test_reduce_every_factor(factor: int) -> None:
    data = _sample(10 + factor)
    packed = _reduce(data, factor)
    assert len(packed) < len(data)
    assert pkzip_legacy.decompress(1 + factor, packed, len(data), 0, "x") == data
    with pytest.raises(DamagedArchiveError):
        pkzip_legacy.decompress(1 + factor, packed[:len(packed) // 2], len(data), 0, "x")


def _shrink(data: bytes) -> bytes:
    """LZW as PKZIP's Shrink: codes grow from 9 to 13 bits (256, 1) and a full table is
    partly cleared (256, 2), here only after a literal code (never itself cleared)."""
    parent = [-1] * 8192
    suffix = [0] * 8192
    table: dict[tuple[int, int], int] = {}
    bits = _Bits()
    width = 9
    free = 257

    def emit(code: int) -> None:
        nonlocal width
        while code >= 1 << width:
            bits.put(256, width)
            bits.put(1, width)
            width += 1
        bits.put(code, width)

    w = data[0]
    for c in data[1:]:
        if (w, c) in table:
            w = table[(w, c)]
            continue
        emit(w)
        while free < 8192 and parent[free] != -1:
            free += 1
        if free >= 8192 and w < 257:
            bits.put(256, width)
            bits.put(2, width)
            children = set(parent[257:])
            for code in range(257, 8192):
                if code not in children and parent[code] != -1:
                    del table[(parent[code], suffix[code])]
                    parent[code] = -1
            free = 257
            while free < 8192 and parent[free] != -1:
                free += 1
        if free < 8192:
            parent[free], suffix[free] = w, c
            table[(w, c)] = free
            free += 1
        w = c
    emit(w)
    return bits.bytes()


def test_shrink_grows_to_13_bits_and_clears_partly() -> None:
    rng = random.Random(5)
    data = bytes(rng.choice(b"abcdefgh") for _ in range(120_000)) + _sample(3, 20000)
    packed = _shrink(data)
    assert len(packed) < len(data)
    assert pkzip_legacy.decompress(1, packed, len(data), 0, "x") == data
    with pytest.raises(DamagedArchiveError):
        pkzip_legacy.decompress(1, packed[:len(packed) // 2], len(data), 0, "x")


def _zip_of(members: list[tuple[bytes, bytes, bytes, int, int]]) -> bytes:
    """A ZIP of ``(name, content, stored bytes, method, flags)`` members, written by hand."""
    out = bytearray()
    central = bytearray()
    for name, content, packed, method, flags in members:
        fields = (10, flags, method, 0, 0x1021, zlib.crc32(content), len(packed), len(content),
                  len(name))
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 10, *fields, 0, 0, 0, 0,
                               0, len(out)) + name
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", *fields, 0) + name + packed
    return bytes(out + central + struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members),
                                             len(members), len(central), len(out), 0))


def test_reduced_and_pkzip101_imploded_members_go_through_the_engine(tmp_path: Path) -> None:
    """Reduce (every factor) end to end; and an Implode member whose minimum match length
    follows PKZIP 1.01's rule (from the window size: 3 with 8 KiB and no literal tree) is read
    by the second try the CRC asks for."""
    members = []
    for factor in (1, 2, 3, 4):
        data = _sample(20 + factor)
        members.append((f"reduced{factor}.txt".encode(), data, _reduce(data, factor),
                        1 + factor, 0))
    data = _sample(30)
    packed = _implode(data, True, False, seed=3)  # min length 2 (APPNOTE) ...
    members.append((b"implode.txt", data, packed, 6, 0x2))
    # ... and the same stream read as PKZIP 1.01 would write it: min length 3
    old = pkzip_legacy.explode(packed, len(data), True, False, pkzip101=True)
    assert old != data
    members.append((b"pkzip101.txt", old, packed, 6, 0x2))
    src = tmp_path / "old.zip"
    src.write_bytes(_zip_of(members))
    out = tmp_path / "out.zip"
    report = compress_any(src, out, {"level": "lossless"})
    assert not report.original_kept and out.stat().st_size < src.stat().st_size
    assert {m.action for m in report.members} == {"recompressed"}
    assert contents(out) == {n.decode(): c for n, c, *_ in members}
