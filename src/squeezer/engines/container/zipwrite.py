"""Writing a ZIP file entry by entry, keeping what each input entry said about itself.

Each output entry carries its input entry's raw name bytes (non-UTF-8 names
stay as they were, with or without the UTF-8 flag), DOS date and time, the
"made by" system and version, internal and external attributes (Unix
permissions, symlink bits, the MS-DOS directory bit), extra fields (extended
timestamps, Unix uid/gid, JAR's 0xCAFE marker) and comment; directory entries
are entries like any other.  Only the compression method, CRC and sizes
change, and the ZIP64 record is written anew when sizes or offsets need it.

A member copied unchanged (``raw``) keeps its stored bytes and, when it had
one, its data descriptor and the local header's own flags, so an encrypted
member's password check byte (taken from the time when bit 3 is set) still
matches.  EPUB's and ODF's ``mimetype`` is written first, stored, without
extra fields, by the caller's ordering and :func:`stored_entry`.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from squeezer.engines.container.zipread import (
    CENTRAL,
    DEFLATED,
    EOCD,
    EOCD64,
    EOCD64_LOCATOR,
    FLAG_DESCRIPTOR,
    LOCAL,
    STORED,
    ZipEntry,
    strip_zip64,
)

_MAX32 = 0xFFFFFFFF
#: general-purpose bits 1-2 (the deflate level hint): "maximum compression"
_MAX_HINT = 0x2


@dataclass
class OutEntry:
    """One entry to write: the input's description, and the stored bytes to write for it."""

    template: ZipEntry
    method: int
    data: bytes  #: the stored (compressed) bytes
    crc: int
    usize: int
    raw: bool = False  #: the input's stored bytes, copied as they were
    descriptor: bytes = b""  #: the input's data descriptor (``raw`` entries that had one)
    name: bytes | None = None  #: a new name (a renamed member), else the template's
    no_extra: bool = False  #: write no extra fields (EPUB's mimetype)

    @property
    def raw_name(self) -> bytes:
        return self.name if self.name is not None else self.template.raw_name


def stored_entry(template: ZipEntry, content: bytes, **kw: object) -> OutEntry:
    return OutEntry(template, STORED, content, zlib.crc32(content), len(content), **kw)  # type: ignore[arg-type]


def _flags(entry: OutEntry) -> int:
    if entry.raw:
        return entry.template.flags
    flags = entry.template.flags & ~(FLAG_DESCRIPTOR | 0x6 | 0x1)
    if entry.method == DEFLATED:
        flags |= _MAX_HINT
    if entry.name is not None:
        flags &= ~0x800
        try:
            entry.name.decode("ascii")
        except UnicodeDecodeError:
            flags |= 0x800  # a new name we made is UTF-8
    return flags


def _needed(entry: OutEntry, zip64: bool) -> int:
    """"Version needed to extract": the input's when the method is unchanged, else the
    method's own (2.0 for deflate, 1.0 for stored), 4.5 with ZIP64 fields."""
    own = 20 if entry.method == DEFLATED else 10
    base = entry.template.version_needed if entry.raw or (
        entry.method == entry.template.method) else own
    return max(base, 45) if zip64 else base


def write_zip(path: Path, entries: list[OutEntry], *, prefix: bytes = b"",
              comment: bytes = b"") -> int:
    """Write ``entries`` in order to ``path``; returns the file's size."""
    central = bytearray()
    with open(path, "wb") as out:
        out.write(prefix)
        offset = len(prefix)
        for e in entries:
            t = e.template
            csize = len(e.data)
            flags = _flags(e)
            local_zip64 = csize >= _MAX32 or e.usize >= _MAX32
            extra_local = b"" if e.no_extra else strip_zip64(t.local_extra)
            extra_central = b"" if e.no_extra else strip_zip64(t.central_extra)
            if local_zip64:
                extra_local = struct.pack("<HHQQ", 1, 16, e.usize, csize) + extra_local
            if e.raw:
                l_needed, _, _, l_time, l_date = t.local_fields
                l_needed = max(l_needed, 45) if local_zip64 else l_needed
            else:
                l_needed, l_time, l_date = _needed(e, local_zip64), t.dos_time, t.dos_date
            header = struct.pack(
                "<4sHHHHHIIIHH", LOCAL, l_needed, flags, e.method, l_time, l_date,
                e.crc, _MAX32 if local_zip64 else csize, _MAX32 if local_zip64 else e.usize,
                len(e.raw_name), len(extra_local))
            out.write(header)
            out.write(e.raw_name)
            out.write(extra_local)
            out.write(e.data)
            if e.raw and e.descriptor:
                out.write(e.descriptor)
            zip64_fields: list[int] = []
            if e.usize >= _MAX32:
                zip64_fields.append(e.usize)
            if csize >= _MAX32:
                zip64_fields.append(csize)
            if offset >= _MAX32:
                zip64_fields.append(offset)
            if zip64_fields:
                extra_central = struct.pack(f"<HH{len(zip64_fields)}Q", 1, 8 * len(zip64_fields),
                                            *zip64_fields) + extra_central
            central += struct.pack(
                "<4sHHHHHHIIIHHHHHII", CENTRAL, t.version_made,
                _needed(e, bool(zip64_fields)),
                flags, e.method, t.dos_time, t.dos_date, e.crc,
                min(_MAX32, csize), min(_MAX32, e.usize),
                len(e.raw_name), len(extra_central), len(t.comment), 0, t.internal_attr,
                t.external_attr, min(_MAX32, offset))
            central += e.raw_name + extra_central + t.comment
            offset += len(header) + len(e.raw_name) + len(extra_local) + csize + (
                len(e.descriptor) if e.raw else 0)
        cd_offset = offset
        out.write(central)
        cd_end = cd_offset + len(central)
        count = len(entries)
        if count >= 0xFFFF or cd_offset >= _MAX32 or len(central) >= _MAX32:
            out.write(struct.pack("<4sQHHIIQQQQ", EOCD64, 44, 45, 45, 0, 0, count, count,
                                  len(central), cd_offset))
            out.write(struct.pack("<4sIQI", EOCD64_LOCATOR, 0, cd_end, 1))
            out.write(struct.pack("<4sHHHHIIH", EOCD, 0, 0, min(count, 0xFFFF),
                                  min(count, 0xFFFF), min(len(central), _MAX32),
                                  min(cd_offset, _MAX32), len(comment)))
        else:
            out.write(struct.pack("<4sHHHHIIH", EOCD, 0, 0, count, count, len(central),
                                  cd_offset, len(comment)))
        out.write(comment)
        return out.tell()
