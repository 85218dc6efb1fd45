"""Make ``methods.zip``: one member for each ZIP compression method Squeezer reads past
stored/deflate/bzip2 (issue 17).  Kept for the record; the ZIP is committed beside it.

Needs 7-Zip (``7zz``, Debian's ``7zip``) for Deflate64, LZMA, PPMd and XZ; ``zstandard``
for the Zstandard member (7-Zip does not write one); PKZIP 1.x's Shrink and Implode
members are cut, raw, from Apache Tika's test file ``moby.zip`` (the shared corpus's
``archives/tika__moby.zip``): nothing maintained writes them any more.

Run: ``python tests/data/zip/make_methods_zip.py CORPUS/archives/tika__moby.zip``
"""

from __future__ import annotations

import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent


def text(seed: int, lines: int = 60) -> bytes:
    """A few kB of text, different for each member."""
    return "".join(f"{seed}: line {i} of a member; words {i * seed % 97} and {i * i % 89} "
                   "repeat, as text does.\n" for i in range(lines)).encode()


def raw_members(path: Path) -> list[tuple[bytes, bytes]]:
    """``(local header fields 4..30, name + extra + data)`` of every member, raw."""
    out = []
    with zipfile.ZipFile(path) as z, open(path, "rb") as f:
        for info in z.infolist():
            f.seek(info.header_offset)
            head = f.read(30)
            n, m = struct.unpack_from("<HH", head, 26)
            rest = f.read(n + m + info.compress_size)
            out.append((head, rest, info))
    return out


def main(moby: Path) -> None:
    members = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        for i, method in enumerate(("Deflate64", "LZMA", "PPMd", "XZ", "BZip2"), 1):
            name = t / f"{method.lower()}.txt"
            name.write_bytes(text(i))
            subprocess.run(["7zz", "a", "-tzip", f"-mm={method}", str(t / f"{method}.zip"),
                            str(name)], check=True, capture_output=True, cwd=t)
            members += raw_members(t / f"{method}.zip")
    legacy = {"moby.122": None, "moby.0": None}  # Shrunk (328 bytes), Implode (2,511 bytes)
    for head, rest, info in raw_members(moby):
        if info.filename in legacy:
            members.append((head, rest, info))
    data = text(9)
    import zstandard

    packed = zstandard.ZstdCompressor(level=19).compress(data)
    name = b"zstd.txt"
    head = struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 63, 0, 93, 0, 0x5A21,
                       zlib.crc32(data), len(packed), len(data), len(name), 0)
    zinfo = zipfile.ZipInfo("zstd.txt")
    zinfo.compress_type, zinfo.CRC, zinfo.compress_size, zinfo.file_size = (
        93, zlib.crc32(data), len(packed), len(data))
    members.append((head, name + packed, zinfo))
    write(HERE / "methods.zip", members)


def write(path: Path, members: list) -> None:
    central = b""
    with open(path, "wb") as f:
        for head, rest, info in members:
            offset = f.tell()
            f.write(head + rest)
            (_, needed, flags, method, mtime, mdate, crc, csize, usize, n, _m) = struct.unpack(
                "<4sHHHHHIIIHH", head)
            name = rest[:n]
            central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 63, needed, flags,
                                   method, mtime, mdate, crc, csize, usize, n, 0, 0, 0, 0, 0,
                                   offset) + name
        cd = f.tell()
        f.write(central)
        f.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(members), len(members),
                            len(central), cd, 0))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
