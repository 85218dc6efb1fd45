"""tar (plain, gzip, xz, zstd, bzip2) and single compressed files (``.gz``, ``.xz``, ``.zst``).

The outer stream is decompressed into the run's temporary directory, no
further than ``Limits.max_archive_bytes`` (a gzip bomb stops there), then:

- **tar**: read with :mod:`tarfile` (never extracted: members are read into
  memory by their header, so ``../`` names, absolute names and links cannot
  reach the file system; such names are refused all the same, links are kept
  as links).  Each regular member goes through
  :mod:`~squeezer.engines.container.members` like a ZIP's (plain archives:
  images and PDFs by their engines, nested archives recursively, text
  untouched), and the archive is written again with every header as it was
  (name, mode, owner, times, link targets, PAX records, format).
- **single**: the one member is sniffed and optimised the same way (an
  ``.svgz`` is an SVG).

The outer stream is then compressed as strongly as its format allows:
gzip by libdeflate (level 12 up to 1 MiB, else 9; or zopfli) keeping the original header's name and
time, xz at preset 9e with the same integrity check, zstd at level 19, bzip2 at 9.
"""

from __future__ import annotations

import bz2
import io
import lzma
import shutil
import struct
import tarfile
import zlib
from pathlib import Path
from typing import BinaryIO

from squeezer.engines.container import members, repack
from squeezer.engines.container.kinds import member_kind
from squeezer.engines.container.members import Context, Job
from squeezer.engines.container.report import ContainerReport, MemberResult
from squeezer.engines.container.zipread import is_unsafe_name
from squeezer.engines.errors import ArchiveBombError, DamagedArchiveError, UnsafeArchiveError

_CHUNK = 1 << 20


def run(src: Path, out: Path, fmt: str, ctx: Context, report: ContainerReport,
        notify: object) -> bool:
    progress = notify if callable(notify) else (lambda f, s: None)
    outer = fmt.split(".")[-1] if fmt != "tar" else ""
    plain = ctx.scratch / "inner"
    header = _decompress(src, plain, outer, ctx)
    progress(0.2, "reading members")
    if not fmt.startswith("tar") and _is_tar(plain):
        # a tar whose first block lay beyond what sniffing decompressed (a zstd block)
        fmt = f"tar.{outer}"
        report.format_in = report.format_out = fmt
    if fmt.startswith("tar"):
        report.container = "tar"
        inner_out = ctx.scratch / "inner.out"
        changed = _tar(plain, inner_out, ctx, report)
    else:
        report.container = "single"
        inner_out = ctx.scratch / "inner.out"
        changed = _single(plain, inner_out, ctx, report, src.stat().st_size)
    progress(0.7, "compressing")
    _compress(inner_out if changed else plain, out, outer, header, ctx)
    _verify(out, outer, inner_out if changed else plain, ctx)
    if report.container == "single":
        report.members[0].bytes_after = out.stat().st_size
    report.verified.append(f"{outer or 'tar'}: the output decompresses to the archive written"
                           + (f", {len(report.members)} members" if fmt.startswith("tar") else ""))
    return True


def _is_tar(path: Path) -> bool:
    from squeezer.engines.container.detect import _is_tar as tar_header

    with open(path, "rb") as f:
        return tar_header(f.read(512))


# --- the outer stream -------------------------------------------------------------------------


def _open(src: Path, outer: str) -> BinaryIO:
    if outer == "gz":
        import gzip

        return gzip.open(src, "rb")  # type: ignore[return-value]
    if outer == "xz":
        return lzma.open(src, "rb")  # type: ignore[return-value]
    if outer == "bz2":
        return bz2.open(src, "rb")  # type: ignore[return-value]
    if outer == "zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(
            open(src, "rb"), closefd=True, read_across_frames=True)
    return open(src, "rb")


def _decompress(src: Path, dst: Path, outer: str, ctx: Context) -> bytes:
    """Decompress ``src`` into ``dst`` under the byte limit; returns the gzip header kept."""
    limit = ctx.budget.limits.max_archive_bytes
    total = 0
    try:
        with _open(src, outer) as f, open(dst, "wb") as out:
            while True:
                chunk = f.read(_CHUNK)
                if not chunk:
                    break
                total += len(chunk)
                if limit and ctx.budget.bytes + total > limit:
                    raise ArchiveBombError(f"the archive expands to more than {limit} bytes")
                out.write(chunk)
                ctx.budget.check_time()
    except (OSError, EOFError, lzma.LZMAError, zlib.error, ValueError) as exc:
        raise DamagedArchiveError(f"the {outer or 'tar'} stream is damaged: {exc}") from None
    except Exception as exc:
        if type(exc).__name__ == "ZstdError":
            raise DamagedArchiveError(f"the zstd stream is damaged: {exc}") from None
        raise
    ctx.budget.add_bytes(total)
    ratio = ctx.budget.limits.max_archive_ratio
    if ratio and total > (1 << 20) and total > ratio * max(src.stat().st_size, 1):
        raise ArchiveBombError(f"the archive expands {total // src.stat().st_size} times; the "
                               f"limit is {ratio}")
    return _gzip_header(src) if outer == "gz" else b""


def _gzip_header(src: Path) -> bytes:
    """The first member's gzip header (RFC 1952: flags, time, XFL, OS, extra, name, comment)."""
    with open(src, "rb") as f:
        head = f.read(10)
        flags = head[3]
        out = bytearray(head)
        if flags & 4:
            xlen = f.read(2)
            out += xlen + f.read(struct.unpack("<H", xlen)[0])
        for bit in (8, 16):
            if flags & bit:
                while True:
                    c = f.read(1)
                    out += c
                    if c in (b"\0", b""):
                        break
    out[3] = flags & (4 | 8 | 16)  # no header CRC, no text flag
    out[8] = 2  # XFL: maximum compression
    return bytes(out)


def _compress(src: Path, dst: Path, outer: str, header: bytes, ctx: Context) -> None:
    data = src.read_bytes()
    ctx.budget.check_time()
    if outer == "gz":
        body = repack.zopfli_raw(data) if ctx.settings.zopfli and len(data) <= repack.STRONGEST_MAX \
            else repack.deflate_raw(data, 12 if len(data) <= 1 << 20 else repack.LEVEL)
        dst.write_bytes(header + body + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))
    elif outer == "xz":
        check = _xz_check(src)
        dst.write_bytes(lzma.compress(data, format=lzma.FORMAT_XZ, check=check,
                                      preset=9 | lzma.PRESET_EXTREME))
    elif outer == "zst":
        import zstandard

        dst.write_bytes(zstandard.ZstdCompressor(level=19, write_checksum=True).compress(data))
    elif outer == "bz2":
        dst.write_bytes(bz2.compress(data, 9))
    else:
        shutil.copyfile(src, dst)


def _xz_check(src: Path) -> int:
    """The input's integrity check (the stream header's flags), kept in the output."""
    with open(src, "rb") as f:
        head = f.read(12)
    check = head[7] & 0x0F if len(head) == 12 else lzma.CHECK_CRC64
    return check if check in (lzma.CHECK_NONE, lzma.CHECK_CRC32, lzma.CHECK_CRC64,
                              lzma.CHECK_SHA256) else lzma.CHECK_CRC64


def _verify(out: Path, outer: str, expected: Path, ctx: Context) -> None:
    from squeezer.engines.container.verify import VerificationFailed

    try:
        with _open(out, outer) as f, open(expected, "rb") as want:
            while True:
                a = f.read(_CHUNK)
                b = want.read(_CHUNK)
                if a != b:
                    raise VerificationFailed("the output does not decompress to what was written")
                if not a:
                    break
    except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
        raise VerificationFailed(f"the output does not decompress: {exc}") from None


# --- tar --------------------------------------------------------------------------------------


def _tar(src: Path, dst: Path, ctx: Context, report: ContainerReport) -> bool:
    try:
        with tarfile.open(src, "r:") as tf:
            infos = tf.getmembers()
            ctx.budget.add_members(len(infos))
            for info in infos:
                if is_unsafe_name(info.name):
                    raise UnsafeArchiveError(f"the member name {info.name!r} escapes the archive")
            names = [i.name for i in infos]
            if len(set(names)) != len(names):
                dup = next(n for n in names if names.count(n) > 1)
                raise UnsafeArchiveError(f"the member name {dup!r} appears twice")
            results: list[tuple[tarfile.TarInfo, bytes | None, MemberResult]] = []
            changed = False
            for info in infos:
                ctx.budget.check_time()
                if not info.isreg():
                    results.append((info, None, MemberResult(
                        name=info.name, type="directory" if info.isdir() else
                        ("link" if info.issym() or info.islnk() else "special"),
                        bytes_before=0, bytes_after=0, action="kept")))
                    continue
                f = tf.extractfile(info)
                data = f.read() if f is not None else b""
                outcome = _member(info.name, data, ctx)
                row = MemberResult(name=info.name, type=outcome[1], bytes_before=len(data),
                                   bytes_after=len(outcome[0] or data), size_before=len(data),
                                   size_after=len(outcome[0] or data), action=outcome[2],
                                   members=outcome[3])
                changed = changed or outcome[0] is not None
                results.append((info, outcome[0] if outcome[0] is not None else data, row))
            fmt = tf.format
            pax = tf.pax_headers
    except tarfile.TarError as exc:
        raise DamagedArchiveError(f"the tar archive is damaged: {exc}") from None
    report.members = [row for _, _, row in results]
    if not changed:
        return False
    with tarfile.open(dst, "w:", format=fmt, pax_headers=pax) as out:
        for info, content, _ in results:
            if content is None:
                out.addfile(info)
            else:
                info.size = len(content)
                out.addfile(info, io.BytesIO(content))
    return True


def _member(name: str, data: bytes, ctx: Context) -> tuple[bytes | None, str, str,
                                                           list[MemberResult]]:
    kind = member_kind(name, data[:4096])
    job = Job(name, kind, data)
    if members.serial_kind(kind):
        outcome = members.optimise_serial(job, ctx)
    elif kind in members.ENGINE_IMAGES:
        outcome = members.optimise(job, ctx)
    else:
        return None, kind, "kept", []
    if outcome.data is not None and outcome.kind == kind and len(outcome.data) < len(data):
        return outcome.data, kind, outcome.action, outcome.nested
    return None, kind, outcome.action if outcome.data is None else "kept: no smaller result", \
        outcome.nested


# --- one compressed file ------------------------------------------------------------------------


def _single(src: Path, dst: Path, ctx: Context, report: ContainerReport, stored: int) -> bool:
    data = src.read_bytes()
    result, kind, action, nested = _member("content", data, ctx)
    report.members = [MemberResult(name="content", type=kind, bytes_before=stored,
                                   bytes_after=stored, size_before=len(data),
                                   size_after=len(result or data), action=action,
                                   members=nested)]
    if result is None:
        return False
    dst.write_bytes(result)
    return True
