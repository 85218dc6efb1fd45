"""``squeezer analyze``: where the bytes of a PDF, a container (document, e-book, archive), a
video or an audio file are, and an estimate per level."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from squeezer.cli.base import (
    EXIT_FAILED,
    EXIT_OK,
    _consoles,
    _stderr_line,
    cap_memory,
    command,
    engine_limits,
    error_line,
    human_bytes,
    saved_percent,
)

# --- squeezer analyze ---------------------------------------------------------------------------


def _analyze_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", metavar="IN",
                   help="the PDF, document, e-book, archive, video or audio file to analyse")
    p.add_argument("--password", metavar="X", help="password to open an encrypted PDF")
    p.add_argument("--json", action="store_true", help="print the analysis as JSON on stdout")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip the per-level estimate (which runs the engine)")


@command(
    "analyze",
    arguments=_analyze_arguments,
    description="Break a PDF down by what its bytes are for (images by codec, fonts, content "
    "streams, forms, metadata, attachments, annotations, structure, duplicates) and "
    "estimate the result of each level by running the engine on it (or on a sample of "
    "its pages).  For office documents, e-books and archives: the bytes by member type, the "
    "largest members, and each level's result from running the engine.  A video or audio "
    "file: its streams (codecs, sizes, bitrates), the bytes per stream type, and each level's "
    "CRF, sampled VMAF and size, from a CRF sweep on sampled scenes.",
)
def run_analyze(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from squeezer.engines.errors import EngineError
    from squeezer.engines.pdf.analyze import analyze

    limits, memory = engine_limits(parser)
    cap_memory(memory)
    out, err = _consoles()
    path = Path(args.input)
    if not path.exists():
        _stderr_line(error_line(args.input, "file_not_found", "no such file"))
        return EXIT_FAILED
    container = _is_container(path)
    media = not container and _is_media(path)
    result: Any
    try:
        if container:
            from squeezer.engines.container.analyze import analyze as analyze_container

            def run(progress: Any = None) -> Any:
                return analyze_container(path, limits=limits, estimate=not args.no_estimate)
        elif media:
            from squeezer.engines.media.analyze import analyze as analyze_media

            def run(progress: Any = None) -> Any:
                return analyze_media(path, limits=limits, estimate=not args.no_estimate,
                                     progress=progress)
        else:
            def run(progress: Any = None) -> Any:
                return analyze(path, args.password, limits=limits,
                               estimate=not args.no_estimate, progress=progress)
        if err.is_terminal:
            with err.status("analysing…") as status:
                result = run(lambda f, stage: status.update(f"{stage}… {f * 100:.0f}%"))
        else:
            result = run()
    except EngineError as exc:
        _stderr_line(error_line(args.input, exc.code, exc.message))
        return EXIT_FAILED
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - one line, never a traceback
        _stderr_line(error_line(args.input, "internal_error", f"{type(exc).__name__}: {exc}"))
        return EXIT_FAILED
    if args.json:
        sys.stdout.write(json.dumps({"input": args.input, **result.model_dump(mode="json")},
                                    indent=2) + "\n")
        sys.stdout.flush()
    elif container:
        print_container(out, args.input, result)
    elif media:
        print_media_analysis(out, args.input, result)
    else:
        print_analysis(out, args.input, result)
    return EXIT_OK


def _is_media(path: Path) -> bool:
    """Whether the file's bytes say video or audio (anything else takes the PDF path)."""
    from squeezer.engines.errors import EngineError
    from squeezer.engines.families import family_of
    from squeezer.engines.sniff import sniff_file

    try:
        return family_of(sniff_file(path).format).name in ("video", "audio")
    except (EngineError, KeyError, OSError):
        return False


def print_media_analysis(console: Any, name: str, a: Any) -> None:
    from rich import box
    from rich.table import Table

    m = a.media
    console.print(f"{name}: {human_bytes(a.file_bytes)} ({a.file_bytes} bytes), {a.kind}, "
                  f"{m.format.upper()} ({m.container}), {m.duration:.2f} s, "
                  f"{m.bitrate // 1000} kbit/s" + (f", {m.chapters} chapters" if m.chapters
                                                   else ""), markup=False, soft_wrap=True)
    streams = Table(title="Streams", title_justify="left", box=box.SIMPLE_HEAD,
                    show_edge=False, pad_edge=False)
    for header in ("#", "type", "codec", "details", "bitrate"):
        streams.add_column(header, justify="right" if header in ("#", "bitrate") else "left")
    for s in m.streams:
        details = []
        if s.width:
            details.append(f"{s.width}x{s.height}")
        if s.fps:
            details.append(f"{s.fps:g} fps")
        if s.hdr:
            details.append("HDR")
        if s.rotation:
            details.append(f"rotated {s.rotation:g}°")
        if s.sample_rate:
            details.append(f"{s.sample_rate} Hz, {s.channels} ch")
        if s.language:
            details.append(s.language)
        if s.attached_pic:
            details.append("cover picture")
        streams.add_row(str(s.index), s.type, s.codec, ", ".join(details),
                        f"{s.bitrate // 1000} kbit/s" if s.bitrate else "-")
    console.print(streams)
    split = Table(title="Where the bytes are", title_justify="left", box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False)
    for header in ("part", "bytes", "share"):
        split.add_column(header, justify="left" if header == "part" else "right")
    for part in ("video", "audio", "subtitle", "other", "container"):
        value = getattr(a.bytes, part)
        if value or part == "audio" or (part == "video" and a.kind == "video"):
            split.add_row(part, human_bytes(value), f"{100 * value / max(1, a.file_bytes):.1f}%")
    console.print(split)
    if a.estimates:
        est = Table(title="Estimate per level", title_justify="left", box=box.SIMPLE_HEAD,
                    show_edge=False, pad_edge=False)
        for header in ("level", "estimated size", "ratio", "saved", "CRF", "VMAF", "how"):
            est.add_column(header, justify="left" if header in ("level", "how") else "right")
        for e in a.estimates:
            est.add_row(e.level, "~" + human_bytes(e.bytes) if e.bytes else "-",
                        f"{e.ratio:.2f}" if e.ratio is not None else "-",
                        saved_percent(a.file_bytes, e.bytes) if e.bytes else "-",
                        str(e.crf) if e.crf is not None else "-",
                        f"{e.vmaf:.1f}" if e.vmaf is not None else "-",
                        " ".join(x for x in (e.method, e.note) if x))
        console.print(est)
        console.print(f"(an estimate: {a.estimate_method}; {a.elapsed_seconds:.1f} s)",
                      markup=False, soft_wrap=True)


def _is_container(path: Path) -> bool:
    from squeezer.engines.container.formats import is_container
    from squeezer.engines.errors import EngineError
    from squeezer.engines.sniff import sniff_file

    try:
        return path.is_file() and is_container(sniff_file(path).format)
    except (EngineError, OSError):
        return False


def print_container(console: Any, name: str, a: Any) -> None:
    """The container analysis as tables: bytes by member type, largest members, levels."""
    from rich import box
    from rich.table import Table

    console.print(f"{name}: {human_bytes(a.file_bytes)} ({a.file_bytes} bytes), "
                  f"{a.format.upper()} ({a.container}), {a.members} members, "
                  f"{human_bytes(a.expanded_bytes)} expanded"
                  + (", signed" if a.signed else ""), markup=False, soft_wrap=True)
    where = Table(title="Where the bytes are (by member type)", title_justify="left",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in (("type", "left"), ("members", "right"), ("stored", "right"),
                            ("share", "right"), ("expanded", "right")):
        where.add_column(header, justify=justify)  # type: ignore[arg-type]
    stored_total = sum(t.bytes_before for t in a.by_type) or 1
    for t in a.by_type:
        where.add_row(t.type, str(t.count), human_bytes(t.bytes_before),
                      f"{t.bytes_before / stored_total * 100:.1f}%", human_bytes(t.bytes_after))
    console.print(where)
    largest = Table(title=f"Largest members ({len(a.largest)})", title_justify="left",
                    box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, justify in (("member", "left"), ("type", "left"), ("stored", "right"),
                            ("expanded", "right")):
        largest.add_column(header, justify=justify)  # type: ignore[arg-type]
    for m in a.largest:
        largest.add_row(m.name, m.type, human_bytes(m.stored_bytes), human_bytes(m.size))
    console.print(largest)
    if a.estimates is not None:
        est = Table(title="Each level (the engine run on this file)", title_justify="left",
                    box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
        for header, justify in (("level", "left"), ("size", "right"), ("ratio", "right"),
                                ("saved", "right")):
            est.add_column(header, justify=justify)  # type: ignore[arg-type]
        for e in a.estimates:
            if e.bytes is None:
                est.add_row(e.level, "-", "-", e.error or "failed")
            else:
                est.add_row(e.level, human_bytes(e.bytes), f"{e.ratio:.2f}",
                            saved_percent(a.file_bytes, e.bytes) + (" (kept)" if e.kept else ""))
        console.print(est)
        console.print(f"(in {a.estimate_seconds:.1f} s)", markup=False)
    for w in a.warnings:
        console.print(f"note: {w}", markup=False, soft_wrap=True)


#: How many images, fonts and duplicate groups the table lists (JSON has them all).
TOP = 15


def print_analysis(console: Any, name: str, a: Any) -> None:
    from rich import box
    from rich.table import Table

    from squeezer.engines.pdf.analyze import CATEGORIES

    style = box.SIMPLE_HEAD

    def table(title: str, *columns: tuple[str, str]) -> Table:
        t = Table(title=title, title_justify="left", box=style, show_edge=False, pad_edge=False)
        for header, justify in columns:
            t.add_column(header, justify=justify)  # type: ignore[arg-type]
        return t

    flags = [f for f, on in (("encrypted", a.encrypted), ("linearized", a.linearized)) if on]
    console.print(
        f"{name}: {human_bytes(a.file_bytes)} ({a.file_bytes} bytes), {a.pages} page"
        f"{'s' if a.pages != 1 else ''}, PDF {a.pdf_version}"
        + (f", {', '.join(flags)}" if flags else "")
        + (f", produced by {a.producer}" if a.producer else ""),
        markup=False, soft_wrap=True,
    )

    where = table("Where the bytes are", ("category", "left"), ("objects", "right"),
                  ("bytes", "right"), ("size", "right"), ("share", "right"), ("what", "left"))
    for c in a.categories:
        where.add_row(c.name.replace("_", " "), str(c.count), str(c.bytes), human_bytes(c.bytes),
                      f"{c.share * 100:.1f}%", CATEGORIES[c.name])
    where.add_row("total", "", str(sum(c.bytes for c in a.categories)), human_bytes(a.file_bytes),
                  "100.0%", "", style="bold")
    console.print(where)

    if a.image_codecs:
        codecs = table("Images by codec", ("codec", "left"), ("images", "right"),
                       ("size", "right"))
        for c in a.image_codecs:
            codecs.add_row(c.codec, str(c.count), human_bytes(c.bytes))
        console.print(codecs)
        images = table(f"Largest images ({min(TOP, len(a.images))} of {len(a.images)})",
                       ("object", "right"), ("codec", "left"), ("size", "right"),
                       ("pixels", "right"), ("colour", "left"), ("bpc", "right"),
                       ("dpi", "right"), ("uses", "right"))
        for i in a.images[:TOP]:
            colour = i.color_space + (" (mask)" if i.mask and i.color_space != "mask" else "")
            images.add_row(i.object, i.codec, human_bytes(i.bytes), f"{i.width}x{i.height}",
                           colour,
                           str(i.bits_per_component or "-"),
                           f"{i.dpi:.0f}" if i.dpi is not None else "-",
                           str(i.uses) if i.uses is not None else "-")
        console.print(images)

    if a.fonts:
        fonts = table(f"Embedded fonts ({min(TOP, len(a.fonts))} of {len(a.fonts)})",
                      ("font", "left"), ("program", "left"), ("size", "right"), ("subset", "left"))
        for f in a.fonts[:TOP]:
            program = f"{f.kind} ({f.subtype})" if f.subtype else f.kind
            fonts.add_row(f.name, program, human_bytes(f.bytes), "yes" if f.subset else "no")
        console.print(fonts)
        kinds = ", ".join(f"{k.codec}: {k.count} ({human_bytes(k.bytes)})" for k in a.font_kinds)
        console.print(f"font programs: {kinds}", markup=False, soft_wrap=True)
    if a.fonts_not_embedded:
        console.print("fonts not embedded: " + ", ".join(a.fonts_not_embedded[:20]),
                      markup=False, soft_wrap=True)

    d = a.duplicates
    if d.groups:
        console.print(f"duplicates: {d.redundant} stream{'s' if d.redundant != 1 else ''} repeat "
                      f"another one ({d.groups} group{'s' if d.groups != 1 else ''}), wasting "
                      f"{human_bytes(d.wasted_bytes)}", markup=False, soft_wrap=True)
    else:
        console.print("duplicates: none", markup=False)

    if a.estimates is not None:
        e = a.estimates
        how = ("the engine run on the whole document" if e.method == "whole document"
               else f"the engine run on {e.sampled_pages} of {e.total_pages} pages, extrapolated")
        est = table("Estimate per level", ("level", "left"), ("estimated size", "right"),
                    ("ratio", "right"), ("saved", "right"))
        for p in e.levels:
            if p.bytes is None:
                est.add_row(p.level, "-", "-", p.error or "failed")
            else:
                est.add_row(p.level, "~" + human_bytes(p.bytes), f"{p.ratio:.2f}",
                            saved_percent(a.file_bytes, p.bytes))
        console.print(est)
        console.print(f"(an estimate: {how}, in {e.elapsed_seconds:.1f} s)", markup=False,
                      soft_wrap=True)
    for w in a.warnings:
        console.print(f"note: {w}", markup=False, soft_wrap=True)


