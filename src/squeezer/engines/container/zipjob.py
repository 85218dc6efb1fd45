"""One ZIP-based container (OOXML, ODF, EPUB, JAR/APK, website, plain ZIP) from input to output.

1. Open and check the archive (:mod:`~squeezer.engines.container.zipread`),
   read every member it can (bounded, CRC checked).
2. A signed package is left byte-identical unless losing the signature is
   allowed.
3. The format's rules make a :class:`~squeezer.engines.container.plan.Plan`.
4. Members go to their engines (:mod:`~squeezer.engines.container.members`),
   images and text on threads, PDFs, media and nested containers one at a time.
5. Renamed members (a photo PNG made JPEG), merged duplicates and dropped parts
   are followed by every reference (relationships, content types, manifests).
6. Each member is stored in its smallest form (:mod:`~squeezer.engines.container.repack`);
   one that is not smaller than it was is copied as it was, byte for byte.
7. The archive is written with every entry's metadata
   (:mod:`~squeezer.engines.container.zipwrite`) and verified
   (:mod:`~squeezer.engines.container.verify`) before it is used.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from squeezer.engines.container import (
    detect,
    epub,
    members,
    odf,
    ooxml,
    repack,
    website,
    zipmethods,
)
from squeezer.engines.container.formats import family
from squeezer.engines.container.kinds import IMAGES, member_kind
from squeezer.engines.container.members import Context, Job, Outcome
from squeezer.engines.container.plan import Plan
from squeezer.engines.container.report import ContainerReport, MemberResult
from squeezer.engines.container.verify import (
    VerificationFailed,
    describe,
    same_document,
    zip_members,
)
from squeezer.engines.container.zipread import (
    DEFLATED,
    STORED,
    ZipArchive,
    ZipEntry,
    check_names,
    open_zip,
)
from squeezer.engines.container.zipwrite import OutEntry, stored_entry, write_zip
from squeezer.engines.threads import ordered_map

_JAR_SIGNATURE = re.compile(r"^META-INF/[^/]+\.(SF|RSA|DSA|EC)$", re.IGNORECASE)


@dataclass
class Member:
    entry: ZipEntry
    name: str
    kind: str
    data: bytes | None  #: the input's content (None: not readable)
    content: bytes | None = None  #: the content to write (None: as read)
    action: str = "kept"
    new_name: str | None = None
    nested: list[MemberResult] = field(default_factory=list)
    #: its content must be written as it now is (references were updated in it)
    forced: bool = False


def run(src: Path, out: Path, fmt: str, ctx: Context, report: ContainerReport,
        notify: object) -> bool:
    """Compress the ZIP-based ``src`` into ``out``; False when the input is to be kept."""
    progress = notify if callable(notify) else (lambda f, s: None)
    rules = family(fmt)
    with open_zip(src, ctx.budget) as archive:
        names: dict[str, bytes | None] = {e.name: None for e in archive.entries}
        signed = _signed(rules, fmt, names, archive)
        if signed:
            report.signed = True
            report.container = rules if rules != "zip" else fmt
            if not ctx.settings.drop_signatures:
                report.warnings.append(
                    "the package is signed: kept byte-identical (archive.drop_signatures "
                    "allows re-packing it without its signature)")
                report.members = [_row(Member(e, e.name, "", None), "kept: signed package")
                                  for e in archive.entries]
                return False
        check_names(archive.entries)
        parts, items = _read(archive, ctx)
        progress(0.15, "reading members")
        report.container = rules if rules != "zip" else fmt
        if rules == "zip" and fmt == "zip" and detect.is_website(
                list(parts), {m.name: m.kind for m in items}):
            report.container = "website"
        plan = _plan(report.container, fmt, parts, items, ctx, signed)
        report.warnings.extend(plan.notes)
        _optimise(items, plan, ctx, report, progress)
        if report.container == "ooxml":
            _mark_subset_fonts(items)
        progress(0.6, "re-packing")
        removed = set(plan.drop)
        renames, merges = _renames_and_merges(items, plan, report.container)
        if renames or merges or removed:
            _retarget(items, parts, report.container, renames, merges, removed)
        entries = _entries(items, plan, archive, ctx, report, renames, merges)
        write_zip(out, entries, prefix=archive.prefix if not signed else b"",
                  comment=archive.comment)
    progress(0.85, "verifying")
    _verify(src, out, fmt, report, parts, ctx)
    return True


def _read(archive: ZipArchive, ctx: Context) -> tuple[dict[str, bytes | None], list[Member]]:
    parts: dict[str, bytes | None] = {}
    items: list[Member] = []
    for e in archive.entries:
        ctx.budget.check_time()  # PKZIP 1.x's members decode at a few MB/s (pure Python)
        name = e.name
        if e.is_dir:
            items.append(Member(e, name, "directory", None, action="kept"))
            parts[name] = None
            continue
        if not e.readable:
            why = "encrypted" if e.encrypted else f"compression method {e.method} not supported"
            items.append(Member(e, name, "encrypted" if e.encrypted else "other", None,
                                action=f"kept: {why}"))
            parts[name] = None
            continue
        if e.is_symlink:
            data = archive.read(e)
            items.append(Member(e, name, "symlink", data, action="kept: symbolic link"))
            parts[name] = data
            continue
        data = archive.read(e)
        parts[name] = data
        items.append(Member(e, name, member_kind(name, data[:4096]), data))
    return parts, items


def _signed(rules: str, fmt: str, parts: dict[str, bytes | None], archive: ZipArchive) -> bool:
    if rules == "ooxml":
        return ooxml.is_signed(parts)
    if rules == "odf":
        return odf.is_signed(parts)
    if rules == "epub":
        return epub.is_signed(parts)
    return archive.apk_signing_block or any(_JAR_SIGNATURE.match(n) for n in parts)


def _plan(container: str, fmt: str, parts: dict[str, bytes | None], items: list[Member],
          ctx: Context, signed: bool) -> Plan:
    s = ctx.settings
    kinds = {m.name: m.kind for m in items}
    if container == "ooxml":
        plan = ooxml.plan(parts, s)
        if signed:
            for name in ooxml.drop_signature_rels(parts):
                plan.drop.setdefault(name, "signature removed (archive.drop_signatures)")
    elif container == "odf":
        plan = odf.plan(parts, s)
    elif container == "epub":
        plan = epub.plan(parts, kinds, s)
    elif container == "website":
        plan = Plan()
        plan.json_parts = {n for n, k in kinds.items() if k == "json"}
        if s.minify:
            html_ok = website.html_safe(parts, kinds)
            plan.minify_parts = {n for n, k in kinds.items()
                                 if k in ("css", "js") or (k == "html" and html_ok)}
            if not html_ok:
                plan.notes.append("HTML not minified: a style sheet makes whitespace between "
                                  "elements visible (display: inline…/white-space: pre…)")
    else:
        plan = Plan()
    if signed and s.drop_signatures and container in ("zip", "website"):
        for name in parts:
            if _JAR_SIGNATURE.match(name):
                plan.drop[name] = "signature removed (archive.drop_signatures)"
    return plan


def _job(m: Member, plan: Plan) -> Job:
    return Job(m.name, m.kind, m.data or b"", display=plan.display.get(m.name),
               max_side=plan.max_side if m.kind in IMAGES else None,
               may_rename=plan.may_rename,
               xml_mixed=plan.mixed if m.name in plan.xml_parts else None,
               json_ok=m.name in plan.json_parts, minify=m.name in plan.minify_parts,
               chars=plan.fonts.get(m.name), font_key=plan.font_keys.get(m.name))


def _optimise(items: list[Member], plan: Plan, ctx: Context, report: ContainerReport,
              progress: object) -> None:
    todo = [m for m in items if m.data is not None and m.kind not in ("directory", "symlink",
                                                                      "empty")
            and m.name not in plan.keep_raw and m.name not in plan.drop
            and m.name != plan.first_stored]
    for m in items:
        if m.name in plan.keep_raw:
            m.action = f"kept: {plan.keep_raw[m.name]}"
    parallel = [m for m in todo if not members.serial_kind(m.kind)]
    serial = [m for m in todo if members.serial_kind(m.kind)]
    threads = ctx.budget.clock.threads

    def work(m: Member) -> Outcome:
        return members.optimise(_job(m, plan), ctx)

    for m, outcome in zip(parallel, ordered_map(work, parallel, threads), strict=True):
        _apply(m, outcome, report)
    for m in serial:
        _apply(m, members.optimise_serial(_job(m, plan), ctx), report)


def _apply(m: Member, outcome: Outcome, report: ContainerReport) -> None:
    m.action = outcome.action
    m.nested = outcome.nested
    if outcome.warning:
        report.warnings.append(outcome.warning)
    if outcome.data is not None:
        m.content = outcome.data
        if outcome.kind and outcome.kind != m.kind:
            m.new_name = outcome.kind  # resolved into a name by _renames_and_merges


def _mark_subset_fonts(items: list[Member]) -> None:
    """Word's font table says which embedded fonts are subsets (``w:subsetted``), so that
    Word does not offer their missing characters for editing."""
    subset = {m.name for m in items if m.action == "subset"}
    if not subset:
        return
    for m in items:
        if m.data is not None and m.name.endswith("fontTable.xml"):
            out = ooxml.mark_subsetted(m.name, m.content or m.data, subset,
                                       {m.name: m.data for m in items})
            if out is not None:
                m.content = out
                m.forced = True
                m.action = "fonts marked as subsets"


def _renames_and_merges(items: list[Member], plan: Plan,
                        container: str) -> tuple[dict[str, str], dict[str, str]]:
    names = {m.name for m in items}
    renames: dict[str, str] = {}
    for m in items:
        if m.new_name is None:
            continue
        ext = {"jpeg": "jpeg" if container == "ooxml" else "jpg"}.get(m.new_name, m.new_name)
        stem = m.name.rsplit(".", 1)[0]
        candidate = f"{stem}.{ext}"
        n = 1
        while candidate in names:
            candidate = f"{stem}_{n}.{ext}"
            n += 1
        names.add(candidate)
        renames[m.name] = candidate
        m.new_name = candidate
        m.action += f"; renamed to {candidate}"
    merges: dict[str, str] = {}
    if plan.dedupe:
        seen: dict[str, str] = {}
        for m in items:
            if m.kind not in IMAGES and m.kind != "media" or m.name in plan.drop:
                continue
            if m.name in plan.keep_raw or m.data is None:
                continue
            digest = hashlib.sha256(m.content if m.content is not None else m.data).hexdigest()
            final = m.new_name or m.name
            if digest in seen:
                merges[m.name] = seen[digest]
                m.action = f"deduplicated into {seen[digest]}"
            else:
                seen[digest] = final
    return renames, merges


def _retarget(items: list[Member], parts: dict[str, bytes | None], container: str,
              renames: dict[str, str], merges: dict[str, str], removed: set[str]) -> None:
    current = {m.name: (m.content if m.content is not None else m.data) for m in items}
    if container == "ooxml":
        changed = ooxml.retarget(current, renames, merges, removed)
    elif container == "odf":
        changed = odf.retarget(current, renames, merges, removed)
    else:
        return
    for m in items:
        if m.name in changed:
            m.content = changed[m.name]
            m.forced = True
            if m.action in ("kept", "recompressed") or m.action.startswith("kept:"):
                m.action = "references updated"
            else:
                m.action += "; references updated"


def _entries(items: list[Member], plan: Plan, archive: ZipArchive, ctx: Context,
             report: ContainerReport, renames: dict[str, str],
             merges: dict[str, str]) -> list[OutEntry]:
    order = list(items)
    if plan.first_stored:
        order.sort(key=lambda m: m.name != plan.first_stored)
    zopfli = ctx.settings.zopfli

    def pack(m: Member) -> OutEntry | None:
        e = m.entry
        if m.name in plan.drop:
            return None
        if m.name in merges:
            return None
        if m.name == plan.first_stored and m.data is not None:
            return stored_entry(e, m.data, no_extra=True)
        if m.data is None or m.kind in ("directory", "symlink") or m.name in plan.keep_raw:
            return _raw(archive, e)
        content = m.content if m.content is not None else m.data
        method, stored = repack.best_stored(content, m.kind in members.PACKED, zopfli)
        name = renames[m.name].encode("utf-8") if m.name in renames else None
        if not m.forced and name is None and len(stored) >= e.csize:
            if m.content is not None:
                m.action = "kept: no smaller result"
            elif e.method not in (STORED, DEFLATED) and m.action in ("kept", "recompressed"):
                m.action = (f"kept: its {zipmethods.NAMES.get(e.method, str(e.method))} data is "
                            "no larger than deflate's")
            m.content = None
            return _raw(archive, e)
        if m.content is None and m.action == "kept":
            m.action = "recompressed"
        return OutEntry(e, method, stored, repack.crc(content), len(content), name=name)

    packed = list(ordered_map(pack, order, ctx.budget.clock.threads))
    entries: list[OutEntry] = []
    for m, out in zip(order, packed, strict=True):
        if out is None:
            reason = plan.drop.get(m.name)
            if reason:
                m.action = f"dropped: {reason}"
                report.dropped.append(m.name)
            else:
                report.deduplicated += 1
            report.members.append(_row(m, m.action, after=0))
            continue
        entries.append(out)
        if m.new_name:
            report.renamed[m.name] = m.new_name
        report.members.append(_row(m, m.action, after=len(out.data), size_after=out.usize))
        if ctx.settings.precompress and report.container == "website" and \
                m.kind in website.TEXT_KINDS and out.usize >= 256:
            siblings = _siblings(m, out)
            entries.extend(siblings)
            if siblings and "precompress" not in report.requested_changes:
                report.requested_changes.append("precompress")
    return entries


def _raw(archive: ZipArchive, e: ZipEntry) -> OutEntry:
    return OutEntry(e, e.method, archive.raw(e), e.crc, e.usize, raw=True,
                    descriptor=archive.descriptor(e))


def _siblings(m: Member, out: OutEntry) -> list[OutEntry]:
    """``.br`` and ``.gz`` copies of a text member, for servers that send them as they are."""
    import gzip

    import brotli

    content = m.content if m.content is not None else (m.data or b"")
    extra: list[OutEntry] = []
    base = (m.new_name or m.name).encode("utf-8")
    for suffix, data in ((b".br", brotli.compress(content, quality=11)),
                         (b".gz", gzip.compress(content, compresslevel=9, mtime=0))):
        if len(data) < len(content):
            sibling = stored_entry(m.entry, data, name=base + suffix)
            extra.append(sibling)
    return extra


def _row(m: Member, action: str, after: int | None = None,
         size_after: int | None = None) -> MemberResult:
    e = m.entry
    return MemberResult(name=m.name, type=m.kind, bytes_before=e.csize,
                        bytes_after=e.csize if after is None else after,
                        size_before=e.usize,
                        size_after=e.usize if size_after is None else size_after,
                        action=action, renamed_to=m.new_name, members=m.nested)


def _verify(src: Path, out: Path, fmt: str, report: ContainerReport,
            before: dict[str, bytes | None], ctx: Context) -> None:
    after = zip_members(out, ctx.budget.limits)
    report.verified.append(f"zip: {len(after)} members read back, CRC-32 ok")
    container = report.container
    if container in ("ooxml", "odf"):
        label, want, same = same_document(fmt, src, before, out, after)
        if not same:
            raise VerificationFailed(f"{label}: the output's content differs from the input's")
        report.verified.append(describe(label, want))
        if ctx.settings.render_check:
            _render_check(src, out, fmt, report, ctx)
    elif container == "epub":
        first = _first(out)
        try:
            epub.check(before, "mimetype", True, False)  # the input's own packaging aside
        except Exception as exc:  # noqa: BLE001 - the input itself fails: say so, check less
            report.warnings.append(f"the input book does not pass the package checks ({exc}); "
                                   "the output was checked to read back only")
            return
        try:
            report.verified.append(epub.check(after, *first))
        except Exception as exc:  # noqa: BLE001
            raise VerificationFailed(f"epub: {exc}") from None
    elif container == "website":
        kinds = {n: member_kind(n, (d or b"")[:4096]) for n, d in before.items()}
        kinds_after = {n: member_kind(n, (d or b"")[:4096]) for n, d in after.items()}
        try:
            report.verified.append(website.check_references(
                website.references(before, kinds), website.references(after, kinds_after)))
        except ValueError as exc:
            raise VerificationFailed(str(exc)) from None


def _render_check(src: Path, out: Path, fmt: str, report: ContainerReport,
                  ctx: Context) -> None:
    """The first pages by LibreOffice, before and after (:mod:`.render`), when installed."""
    from squeezer.engines.container import render

    if render.soffice() is None:
        if ctx.options.archive.render_check:
            report.warnings.append("render check asked for, but LibreOffice is not installed")
        return
    ctx.budget.check_time()
    score = render.compare(fmt, src, out, ctx.scratch)
    if score is None:
        report.warnings.append("LibreOffice could not draw the document: render check not run")
        return
    if score < render.MIN_SSIM:
        raise VerificationFailed(f"LibreOffice: the first page differs (SSIM {score:.3f} < "
                                 f"{render.MIN_SSIM})")
    report.verified.append(f"LibreOffice: first page drawn the same (SSIM {score:.4f})")


def _first(path: Path) -> tuple[str, bool, bool]:
    """The first member's name, whether it is stored, whether it has an extra field."""
    import struct

    with open(path, "rb") as f:
        head = f.read(30)
        if head[:4] != b"PK\x03\x04":
            return "", False, False
        method = struct.unpack_from("<H", head, 8)[0]
        n, m = struct.unpack_from("<HH", head, 26)
        name = f.read(n).decode("utf-8", "replace")
    return name, method == STORED, m > 0
