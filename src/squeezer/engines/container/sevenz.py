"""7z archives: read and checked always, written only when asked (``archive.write_7z``).

py7zr (pure Python over the LZMA, PPMd, BCJ and zstd wheels) lists the
archive, whose declared sizes are counted against the limits before anything is
decompressed, and decompresses every member into memory (never to a path named
by the archive), each checked against its CRC.  A 7z is already LZMA-compressed
as a whole, so re-writing it gains only what its members' own engines gain; by
default the archive is kept as it is and the report lists its members.  With
``archive.write_7z`` the members go to their engines (images, PDFs, nested
archives) and a new solid LZMA2 (preset 9e) archive is written; py7zr does not
write the original timestamps and attributes, which the report says.
"""

from __future__ import annotations

import lzma
from pathlib import Path

from squeezer.engines.container.members import Context
from squeezer.engines.container.report import ContainerReport, MemberResult
from squeezer.engines.container.zipread import is_unsafe_name
from squeezer.engines.errors import (
    DamagedArchiveError,
    EncryptedMemberError,
    UnsafeArchiveError,
)


def _read(src: Path, ctx: Context) -> tuple[list[object], dict[str, bytes]]:
    import py7zr
    from py7zr.io import BytesIOFactory

    limit = ctx.budget.limits.max_archive_bytes or None
    try:
        with py7zr.SevenZipFile(src, "r", max_extract_size=limit) as z:
            if z.needs_password():
                raise EncryptedMemberError("the 7z archive is encrypted")
            infos = list(z.list())
            ctx.budget.add_members(len(infos))
            for info in infos:
                if is_unsafe_name(info.filename):
                    raise UnsafeArchiveError(
                        f"the member name {info.filename!r} escapes the archive")
                if not info.is_directory:
                    ctx.budget.add_bytes(info.uncompressed, info.filename)
            names = [i.filename for i in infos]
            if len(set(names)) != len(names):
                raise UnsafeArchiveError("a member name appears twice")
            factory = BytesIOFactory(ctx.budget.limits.max_stream_bytes or (1 << 62))
            z.extract(factory=factory)
            data: dict[str, bytes] = {}
            for info in infos:
                if info.is_directory:
                    continue
                product = factory.products.get(info.filename)
                if product is None:
                    raise DamagedArchiveError(f"{info.filename}: not extracted")
                product.seek(0)
                data[info.filename] = product.read()
                if len(data[info.filename]) != info.uncompressed:
                    raise DamagedArchiveError(f"{info.filename}: size differs from its header")
    except (EncryptedMemberError, UnsafeArchiveError, DamagedArchiveError):
        raise
    except py7zr.exceptions.PasswordRequired:
        raise EncryptedMemberError("the 7z archive is encrypted") from None
    except Exception as exc:
        from squeezer.engines.errors import LimitExceededError

        if isinstance(exc, LimitExceededError):
            raise
        raise DamagedArchiveError(f"the 7z archive cannot be read: {exc}") from None
    return infos, data


def run(src: Path, out: Path, ctx: Context, report: ContainerReport, notify: object) -> bool:
    report.container = "7z"
    infos, data = _read(src, ctx)
    rows = []
    for info in infos:
        rows.append(MemberResult(
            name=info.filename, type="directory" if info.is_directory else "",  # type: ignore[attr-defined]
            bytes_before=info.compressed or 0, bytes_after=info.compressed or 0,  # type: ignore[attr-defined]
            size_before=info.uncompressed, size_after=info.uncompressed,  # type: ignore[attr-defined]
            action="kept"))
    report.verified.append(f"7z: {len(data)} members decompressed, CRC ok")
    if not ctx.settings.write_7z:
        report.members = rows
        report.warnings.append("a 7z is read and checked, and kept as it is (archive.write_7z "
                               "re-writes it)")
        return False
    import py7zr

    from squeezer.engines.container.tarball import _member

    changed = False
    for row in rows:
        if row.type == "directory":
            continue
        result, kind, action, nested = _member(row.name, data[row.name], ctx)
        row.type, row.action, row.members = kind, action, nested
        if result is not None:
            data[row.name] = result
            row.size_after = len(result)
            changed = True
    filters = [{"id": py7zr.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME}]
    with py7zr.SevenZipFile(out, "w", filters=filters) as z:
        for info in infos:
            if info.is_directory:  # type: ignore[attr-defined]
                continue
            z.writestr(data[info.filename], info.filename)  # type: ignore[attr-defined]
    report.members = rows
    report.warnings.append("re-written 7z: member timestamps and attributes are not kept")
    return changed
