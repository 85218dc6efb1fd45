"""Reading a ZIP file that may be hostile: every record checked before a byte is inflated.

Why not :mod:`zipfile` alone: the engine must copy members it does not change
*byte for byte* (VBA projects, signatures, encrypted or unreadable members), keep
each entry's raw name bytes (names that are not UTF-8), its extra fields,
timestamps and permissions, and refuse the archives :mod:`zipfile` of Python
3.11.7 still opens: entries that overlap one another or the central directory
(the "non-recursive" zip bomb of CVE-2024-0450, fixed in 3.11.8), declared
sizes far beyond the stored bytes, and names that escape the archive.

What is checked (each failure a named error, before any member is inflated):

- the end-of-central-directory record (and its ZIP64 form) is found and
  consistent; the central directory lies inside the file;
- the entry count is at most ``Limits.max_archive_members``;
- every central record and local header has its signature, and every entry's
  data lies inside the file, before the central directory, overlapping no other
  entry (:class:`~squeezer.engines.errors.ArchiveBombError` for overlaps);
- the declared expanded sizes add up to at most ``Limits.max_archive_bytes``,
  and no member over 1 MiB expands more than ``Limits.max_archive_ratio`` times;
- no name is absolute, has a drive letter or a ``..`` component, and no name
  repeats another (:class:`~squeezer.engines.errors.UnsafeArchiveError`).

Inflating is bounded by the declared size (a member that inflates past it is
damaged, whatever its CRC) and the CRC-32 is checked for every member read.
Members stored by methods other than stored, deflate and bzip2 (Deflate64, LZMA,
Zstandard, XZ, PPMd, PKZIP 1.x's Shrink, Reduce and Implode) are decoded by
:mod:`~squeezer.engines.container.zipmethods`, bounded the same way.
"""

from __future__ import annotations

import bz2
import itertools
import stat
import struct
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Self

from squeezer.engines.container import pkzip_legacy, zipmethods
from squeezer.engines.container.budget import ArchiveBudget
from squeezer.engines.errors import (
    ArchiveBombError,
    DamagedArchiveError,
    UnsafeArchiveError,
)

LOCAL = b"PK\x03\x04"
CENTRAL = b"PK\x01\x02"
EOCD = b"PK\x05\x06"
EOCD64 = b"PK\x06\x06"
EOCD64_LOCATOR = b"PK\x06\x07"
#: the APK Signing Block's magic, the 16 bytes before the central directory of a v2+ signed APK
APK_SIG_MAGIC = b"APK Sig Block 42"

STORED, DEFLATED, BZIP2 = 0, 8, 12
#: methods this module reads (the output is written with stored and deflate only); members
#: stored by others are copied as they are, never read
READABLE = {STORED, DEFLATED, BZIP2, *zipmethods.METHODS}
FLAG_ENCRYPTED = 0x1
FLAG_DESCRIPTOR = 0x8
FLAG_UTF8 = 0x800
#: members expanding to more than this are held to the ratio limit
RATIO_FLOOR = 1 << 20


@dataclass
class ZipEntry:
    """One member as its central directory record and local header describe it."""

    raw_name: bytes
    flags: int
    method: int
    dos_time: int
    dos_date: int
    crc: int
    csize: int
    usize: int
    version_made: int
    version_needed: int
    internal_attr: int
    external_attr: int
    central_extra: bytes
    comment: bytes
    header_offset: int
    local_extra: bytes = b""
    data_offset: int = 0
    #: the local header's own version/flags/method/time/date (kept when the member is copied)
    local_fields: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def name(self) -> str:
        """The name as text: UTF-8 when flagged (or when it decodes so), else CP437, as
        :mod:`zipfile` does; the raw bytes are what the output keeps."""
        if self.flags & FLAG_UTF8:
            return self.raw_name.decode("utf-8", "surrogateescape")
        return self.raw_name.decode("cp437")

    @property
    def is_dir(self) -> bool:
        return self.raw_name.endswith(b"/") or bool(self.external_attr & 0x10) and self.usize == 0

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def is_symlink(self) -> bool:
        return (self.version_made >> 8) == 3 and stat.S_ISLNK(self.external_attr >> 16)

    @property
    def readable(self) -> bool:
        return self.method in READABLE and not self.encrypted


@dataclass
class ZipArchive:
    """An opened, checked ZIP file; members are read from ``path`` on demand."""

    path: Path
    size: int
    entries: list[ZipEntry]
    comment: bytes
    cd_offset: int
    #: bytes before the first member (a self-extractor's stub), kept in the output
    prefix: bytes = b""
    #: the archive holds an APK Signing Block (v2/v3 signature) before its central directory
    apk_signing_block: bool = False
    _file: BinaryIO | None = field(default=None, repr=False)
    #: members are read from several threads; one seek-and-read at a time
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _fh(self) -> BinaryIO:
        if self._file is None:
            self._file = open(self.path, "rb")  # noqa: SIM115 - closed by close()
        return self._file

    def raw(self, entry: ZipEntry) -> bytes:
        """The member's stored bytes exactly as they are in the file."""
        with self._lock:
            f = self._fh()
            f.seek(entry.data_offset)
            data = f.read(entry.csize)
        if len(data) != entry.csize:
            raise DamagedArchiveError(f"{entry.name}: the archive is truncated")
        return data

    def descriptor(self, entry: ZipEntry) -> bytes:
        """The data descriptor after a member's data (flag bit 3), as it is in the file."""
        if not entry.flags & FLAG_DESCRIPTOR:
            return b""
        with self._lock:
            f = self._fh()
            f.seek(entry.data_offset + entry.csize)
            head = f.read(24)
        zip64 = entry.csize >= 0xFFFFFFFF or entry.usize >= 0xFFFFFFFF or any(
            tag == 1 for tag, _ in _extras(entry.local_extra))
        size = 20 if zip64 else 12
        if head[:4] == b"PK\x07\x08":
            size += 4
        return head[:size]

    def read(self, entry: ZipEntry) -> bytes:
        """The member's content, inflated no further than its declared size, CRC checked."""
        if entry.encrypted:
            raise DamagedArchiveError(f"{entry.name}: the member is encrypted")
        data = self.raw(entry)
        try:
            out = inflate(entry.method, data, entry.usize, entry.name, entry.flags)
            if zlib.crc32(out) == entry.crc:
                return out
            error = DamagedArchiveError(f"{entry.name}: CRC-32 mismatch (the member is damaged)")
        except DamagedArchiveError as exc:
            error = exc
        if pkzip_legacy.has_pkzip101_variant(entry.method, entry.flags):
            try:
                out = pkzip_legacy.decompress(entry.method, data, entry.usize, entry.flags,
                                              entry.name, pkzip101=True)
            except DamagedArchiveError:
                raise error from None
            if zlib.crc32(out) == entry.crc:
                return out
        raise error


def inflate(method: int, data: bytes, usize: int, name: str, flags: int = 0) -> bytes:
    """``data`` decompressed by ``method``, refusing anything past ``usize`` bytes
    (``flags``, the entry's general-purpose bits, tell Implode's window and trees)."""
    try:
        if method == STORED:
            out = data
        elif method == DEFLATED:
            d = zlib.decompressobj(-15)
            out = d.decompress(data, usize + 1)
            if len(out) <= usize and not d.unconsumed_tail:
                out += d.flush()
        elif method == BZIP2:
            b = bz2.BZ2Decompressor()
            out = b.decompress(data, usize + 1)
        else:
            out = zipmethods.decompress(method, flags, data, usize, name)
    except (zlib.error, OSError, EOFError, ValueError) as exc:
        raise DamagedArchiveError(f"{name}: the member does not decompress ({exc})") from None
    if len(out) != usize:
        raise DamagedArchiveError(
            f"{name}: decompresses to {'more' if len(out) > usize else 'fewer'} bytes than the "
            f"{usize} its header declares")
    return out


def _extras(extra: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        out.append((tag, extra[pos + 4:pos + 4 + size]))
        pos += 4 + size
    return out


def strip_zip64(extra: bytes) -> bytes:
    """``extra`` without its ZIP64 record (the writer adds one when it needs it)."""
    out = b""
    pos = 0
    while pos + 4 <= len(extra):
        tag, size = struct.unpack_from("<HH", extra, pos)
        if tag != 1:
            out += extra[pos:pos + 4 + size]
        pos += 4 + size
    return out


def check_names(entries: list[ZipEntry]) -> None:
    """Refuse names that escape the archive and names that appear twice.

    Separate from :func:`open_zip`: a signed package is returned byte-identical
    without its members being read, whatever its names (the engine never writes
    a member under its own name, so a name cannot reach outside the run's
    directory either way); any other archive with such names is refused.
    """
    seen: set[bytes] = set()
    for e in entries:
        if is_unsafe_name(e.name):
            raise UnsafeArchiveError(f"the member name {e.name!r} escapes the archive")
        if e.raw_name in seen:
            raise UnsafeArchiveError(f"the member name {e.name!r} appears twice (readers "
                                     "disagree on which one counts)")
        seen.add(e.raw_name)


def _find_eocd(f: BinaryIO, size: int) -> tuple[int, bytes]:
    """``(offset, record)`` of the end-of-central-directory record and its comment."""
    tail_size = min(size, 22 + 0xFFFF)
    f.seek(size - tail_size)
    tail = f.read(tail_size)
    pos = tail.rfind(EOCD)
    while pos >= 0:
        if pos + 22 <= len(tail):
            comment_len = struct.unpack_from("<H", tail, pos + 20)[0]
            if pos + 22 + comment_len <= len(tail):
                return size - tail_size + pos, tail[pos:pos + 22 + comment_len]
        pos = tail.rfind(EOCD, 0, pos)
    raise DamagedArchiveError("no end-of-central-directory record: not a ZIP file, or truncated")


def is_unsafe_name(name: str) -> bool:
    """A name that would land outside a directory it is extracted into."""
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) >= 2 and text[1] == ":" and text[0].isalpha()):
        return True
    return any(part == ".." for part in text.split("/"))


def open_zip(path: Path, budget: ArchiveBudget) -> ZipArchive:
    """Open and check the ZIP at ``path`` (see the module's docstring for what is refused)."""
    size = path.stat().st_size
    f = open(path, "rb")  # noqa: SIM115 - owned by the archive, closed on error below
    try:
        archive = _parse(f, path, size, budget)
    except BaseException:
        f.close()
        raise
    archive._file = f
    return archive


def _parse(f: BinaryIO, path: Path, size: int, budget: ArchiveBudget) -> ZipArchive:
    eocd_pos, record = _find_eocd(f, size)
    (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset,
     comment_len) = struct.unpack_from("<4sHHHHIIH", record)
    comment = record[22:22 + comment_len]
    if disk != 0 or cd_disk != 0 or n_disk != n_total:
        raise DamagedArchiveError("multi-volume (split) ZIP archives are not supported")
    count = n_total
    zip64_at = eocd_pos - 20
    if zip64_at >= 0:
        f.seek(zip64_at)
        locator = f.read(20)
        if locator[:4] == EOCD64_LOCATOR:
            (_, _, eocd64_offset, _) = struct.unpack("<4sIQI", locator)
            if eocd64_offset + 56 > size:
                raise DamagedArchiveError("the ZIP64 end record points outside the file")
            f.seek(eocd64_offset)
            rec64 = f.read(56)
            if rec64[:4] != EOCD64:
                raise DamagedArchiveError("the ZIP64 end record is missing")
            (_, _, _, _, _, _, _n_disk64, count, cd_size, cd_offset) = struct.unpack(
                "<4sQHHIIQQQQ", rec64)
            eocd_pos = eocd64_offset
    budget.add_members(count)
    if cd_offset + cd_size > eocd_pos or cd_offset > size:
        raise DamagedArchiveError("the central directory lies outside the file")
    f.seek(cd_offset)
    cd = f.read(cd_size)
    if len(cd) != cd_size:
        raise DamagedArchiveError("the central directory is truncated")
    entries: list[ZipEntry] = []
    pos = 0
    for _ in range(count):
        if cd[pos:pos + 4] != CENTRAL or pos + 46 > len(cd):
            raise DamagedArchiveError("a central directory record is broken")
        (_, made, needed, flags, method, mtime, mdate, crc, csize, usize, n, m, k, _disk_start,
         internal, external, offset) = struct.unpack_from("<4sHHHHHHIIIHHHHHII", cd, pos)
        name = cd[pos + 46:pos + 46 + n]
        extra = cd[pos + 46 + n:pos + 46 + n + m]
        entry_comment = cd[pos + 46 + n + m:pos + 46 + n + m + k]
        pos += 46 + n + m + k
        if pos > len(cd):
            raise DamagedArchiveError("a central directory record runs past its end")
        if 0xFFFFFFFF in (csize, usize, offset):
            csize, usize, offset = _zip64_sizes(extra, csize, usize, offset)
        entries.append(ZipEntry(name, flags, method, mtime, mdate, crc, csize, usize, made,
                                needed, internal, external, extra, entry_comment, offset))
    _check_entries(f, size, cd_offset, entries, budget)
    first = min((e.header_offset for e in entries), default=cd_offset)
    f.seek(0)
    prefix = f.read(first) if first else b""
    signing = False
    if cd_offset >= 24:
        f.seek(cd_offset - 16)
        signing = f.read(16) == APK_SIG_MAGIC
    return ZipArchive(path, size, entries, comment, cd_offset, prefix, signing)


def _zip64_sizes(extra: bytes, csize: int, usize: int, offset: int) -> tuple[int, int, int]:
    for tag, body in _extras(extra):
        if tag != 1:
            continue
        values = list(struct.unpack_from(f"<{len(body) // 8}Q", body))
        if usize == 0xFFFFFFFF and values:
            usize = values.pop(0)
        if csize == 0xFFFFFFFF and values:
            csize = values.pop(0)
        if offset == 0xFFFFFFFF and values:
            offset = values.pop(0)
        return csize, usize, offset
    raise DamagedArchiveError("a ZIP64 entry has no ZIP64 extra field")


def _check_entries(f: BinaryIO, size: int, cd_offset: int, entries: list[ZipEntry],
                   budget: ArchiveBudget) -> None:
    spans: list[tuple[int, int, str]] = []
    for e in entries:
        name = e.name
        if e.header_offset + 30 > size:
            raise DamagedArchiveError(f"{name}: its local header lies outside the file")
        f.seek(e.header_offset)
        head = f.read(30)
        if head[:4] != LOCAL:
            raise DamagedArchiveError(f"{name}: no local header where the directory says")
        (_, l_needed, l_flags, l_method, l_time, l_date, _, _, _, n, m) = struct.unpack(
            "<4sHHHHHIIIHH", head)
        e.local_fields = (l_needed, l_flags, l_method, l_time, l_date)
        local_name = f.read(n)
        e.local_extra = f.read(m)
        if local_name != e.raw_name and local_name.replace(b"\\", b"/") != e.raw_name:
            raise DamagedArchiveError(f"{name}: the local header names another file")
        e.data_offset = e.header_offset + 30 + n + m
        end = e.data_offset + e.csize
        if end > cd_offset:
            raise DamagedArchiveError(f"{name}: its data runs into the central directory")
        spans.append((e.header_offset, end, name))
        if not e.is_dir:
            budget.add_bytes(e.usize, name)
            if e.usize > RATIO_FLOOR and budget.limits.max_archive_ratio and (
                    e.usize > budget.limits.max_archive_ratio * max(e.csize, 1)):
                raise ArchiveBombError(
                    f"{name}: expands {e.usize // max(e.csize, 1)} times its stored size; the "
                    f"limit is {budget.limits.max_archive_ratio}")
    spans.sort()
    for (start_a, end_a, name_a), (start_b, _, name_b) in itertools.pairwise(spans):
        if start_b < end_a:
            raise ArchiveBombError(f"the members {name_a!r} and {name_b!r} overlap (a zip bomb "
                                   "reuses one compressed stream for many entries)")
