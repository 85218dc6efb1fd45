"""Where the bytes of a PDF are: a breakdown by what each stream is for, and an estimate per level.

Every stream of a PDF is stored as one contiguous run of (encoded) bytes in the
file, so attributing each stream to one role (image, font program, content
stream, ...) and adding up their raw lengths accounts for most of a file
exactly.  What is left (object dictionaries, object streams, the cross-reference
table or stream, whitespace) is reported as ``structure``; the categories
therefore always add up to the file size.

The estimate per level is not a model: the engine is run on the document (or,
for long documents, on an evenly spaced sample of its pages, extrapolated by
the sample's compression ratio), so it reflects what ``compress`` really does.

This module is pure: it reads a file and returns plain, JSON-serialisable data
(:class:`Analysis`); presentation belongs to the front doors (``squeezer analyze``).
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from pydantic import BaseModel, Field

from squeezer.engines.budget import Budget
from squeezer.engines.errors import (
    EngineError,
    LimitExceededError,
)
from squeezer.engines.files import input_size
from squeezer.engines.level import Level
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.options import Options
from squeezer.engines.pdf import preflight
from squeezer.engines.pdf.document import apply_qpdf_limits, map_qpdf_error, opened

if TYPE_CHECKING:
    from squeezer.engines.pdf.placement import Placement

#: Documents with at most this many pages are compressed whole for the estimate;
#: longer ones are estimated from :data:`SAMPLE_PAGES` evenly spaced pages.
WHOLE_DOCUMENT_PAGES = 50
WHOLE_DOCUMENT_BYTES = 20_000_000
SAMPLE_PAGES = 10

#: Keys of /FontDescriptor that hold an embedded font program (ISO 32000 §9.8.1, table 122).
FONT_FILE_KEYS = ("/FontFile", "/FontFile2", "/FontFile3")

#: A subset font's name starts with six capital letters and a plus sign (§9.6.4).
_SUBSET_RE = re.compile(r"^[A-Z]{6}\+")

#: Image codecs by filter name (abbreviations of inline images included).
_CODECS = {
    "/DCTDecode": "DCT",
    "/DCT": "DCT",
    "/JPXDecode": "JPX",
    "/JBIG2Decode": "JBIG2",
    "/CCITTFaxDecode": "CCITT",
    "/CCF": "CCITT",
    "/FlateDecode": "Flate",
    "/Fl": "Flate",
}
#: Order in which codecs are listed.
CODEC_ORDER = ("DCT", "JPX", "JBIG2", "CCITT", "Flate", "none", "other")

#: Category keys, in the order they are listed, with what they hold.
CATEGORIES: dict[str, str] = {
    "images": "image XObjects, soft masks, JBIG2 globals",
    "fonts": "embedded font programs",
    "content_streams": "page content streams",
    "form_xobjects": "form XObjects (reused graphics)",
    "annotations": "annotation appearance streams",
    "metadata": "XMP streams, document info",
    "embedded_files": "attached files",
    "other_streams": "ICC profiles, CMaps, patterns, shadings...",
    "structure": "dictionaries, object streams, xref",
}

Progress = Callable[[float, str], None]


# --- the result ---------------------------------------------------------------------------


class Category(BaseModel):
    name: str  #: one of :data:`CATEGORIES`
    count: int = 0  #: streams (or objects) in the category
    bytes: int = 0  #: bytes they take in the file
    share: float = 0.0  #: bytes / file size


class CodecTotal(BaseModel):
    codec: str
    count: int = 0
    bytes: int = 0


class ImageEntry(BaseModel):
    object: str  #: "12 0" (object number and generation)
    codec: str  #: DCT, JPX, JBIG2, CCITT, Flate, none, other
    filters: list[str]
    bytes: int
    width: int
    height: int
    color_space: str
    bits_per_component: int | None
    #: a soft mask (/SMask) or stencil mask (/ImageMask) rather than a picture
    mask: bool = False
    #: highest effective resolution over every placement; None when not known
    dpi: float | None = None
    uses: int | None = None


class FontEntry(BaseModel):
    object: str
    name: str
    kind: str  #: FontFile (Type 1), FontFile2 (TrueType), FontFile3 (CFF / OpenType)
    subtype: str | None = None  #: /Subtype of a FontFile3 program (Type1C, CIDFontType0C, OpenType)
    bytes: int
    subset: bool


class DuplicateGroup(BaseModel):
    category: str
    copies: int  #: how many identical streams
    bytes_each: int
    objects: list[str]


class Duplicates(BaseModel):
    groups: int = 0  #: sets of identical streams
    redundant: int = 0  #: streams that are copies of another one
    wasted_bytes: int = 0  #: bytes the copies take
    largest: list[DuplicateGroup] = Field(default_factory=list)


class Estimate(BaseModel):
    level: str
    bytes: int | None = None  #: estimated output size; None when the run failed
    ratio: float | None = None  #: bytes / input size
    error: str | None = None


class Estimates(BaseModel):
    #: pages the engine was run on (all of them, or an evenly spaced sample)
    sampled_pages: int = 0
    total_pages: int = 0
    #: "whole document" or "sample": how the numbers were obtained
    method: str = "whole document"
    elapsed_seconds: float = 0.0
    levels: list[Estimate] = Field(default_factory=list)


class Analysis(BaseModel):
    """Where the bytes of one PDF are."""

    file_bytes: int
    pages: int
    pdf_version: str
    encrypted: bool
    linearized: bool
    producer: str | None = None
    #: every category of :data:`CATEGORIES`; their bytes add up to ``file_bytes``
    categories: list[Category]
    image_codecs: list[CodecTotal]
    images: list[ImageEntry]
    #: whether effective resolutions could be computed (placement module available)
    dpi_known: bool = False
    font_kinds: list[CodecTotal]
    fonts: list[FontEntry]
    #: names of fonts used without an embedded program
    fonts_not_embedded: list[str] = Field(default_factory=list)
    annotations: int = 0
    duplicates: Duplicates = Field(default_factory=Duplicates)
    estimates: Estimates | None = None
    warnings: list[str] = Field(default_factory=list)

    def category(self, name: str) -> Category:
        return next(c for c in self.categories if c.name == name)


# --- analysis -----------------------------------------------------------------------------


def analyze(
    path: str | Path,
    password: str | None = None,
    *,
    limits: Limits | None = None,
    estimate: bool = True,
    progress: Progress | None = None,
) -> Analysis:
    """Break ``path`` down by what its bytes are for, and estimate each level's result.

    Raises the same named :class:`~squeezer.engines.errors.EngineError` as
    ``compress`` for files it cannot read (not a PDF, wrong password, limits).
    """
    path = Path(path)
    limits = limits or DEFAULT_LIMITS
    notify = progress or (lambda fraction, stage: None)
    file_bytes = input_size(path, limits.max_input_bytes)
    apply_qpdf_limits(limits)
    budget = Budget(limits)
    notify(0.0, "reading")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with opened(path, password) as pdf:
            try:
                preflight.scan(pdf, budget)
                notify(0.1, "analysing")
                result = _inventory(pdf, file_bytes, budget)
            except (pikepdf.PikepdfError, UnicodeDecodeError) as exc:
                raise map_qpdf_error(exc) from None
    if estimate:
        try:
            result.estimates = estimate_levels(
                path, password, file_bytes, result.pages, limits=limits,
                images=bool(result.images), progress=lambda f, s: notify(0.2 + 0.8 * f, s),
            )
        except EngineError as exc:
            # the breakdown stands on its own; say why there is no estimate
            result.warnings.append(f"no estimate: {exc.code}: {exc.message}")
    notify(1.0, "done")
    return result


def _ref(obj: pikepdf.Object) -> str:
    num, gen = obj.objgen
    return f"{num} {gen}"


def _raw_size(stream: Stream, warn: list[str]) -> int:
    try:
        return len(stream.read_raw_bytes())
    except (pikepdf.PikepdfError, UnicodeDecodeError) as exc:
        warn.append(f"stream {_ref(stream)} cannot be read: {str(exc)[:200]}")
        return 0


def _filters(stream: Stream) -> list[str]:
    value = stream.stream_dict.get("/Filter")
    if isinstance(value, Array):
        return [str(f) for f in value if isinstance(f, Name)]
    return [str(value)] if isinstance(value, Name) else []


def image_codec(filters: list[str]) -> str:
    """The codec an image is stored with: the image filter of the chain, else its last filter."""
    if not filters:
        return "none"
    for name in reversed(filters):
        codec = _CODECS.get(name)
        if codec and codec != "Flate":
            return codec
    return "Flate" if any(_CODECS.get(f) == "Flate" for f in filters) else "other"


def _int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, pikepdf.PdfError):
        return None


def color_space_name(cs: object, depth: int = 0) -> str:
    """A short human name for an image colour space: DeviceRGB, ICCBased(3), Indexed(DeviceRGB)…"""
    if cs is None:
        return "none"
    if isinstance(cs, Name):
        return str(cs)[1:]
    if isinstance(cs, Array) and len(cs) and isinstance(cs[0], Name) and depth < 4:
        family = str(cs[0])[1:]
        if family == "ICCBased" and len(cs) > 1 and isinstance(cs[1], Stream):
            n = _int(cs[1].stream_dict.get("/N"))
            return f"ICCBased({n})" if n else "ICCBased"
        if family == "Indexed" and len(cs) > 1:
            return f"Indexed({color_space_name(cs[1], depth + 1)})"
        if family == "DeviceN" and len(cs) > 1 and isinstance(cs[1], Array):
            return f"DeviceN({len(cs[1])})"
        return family
    return "unknown"


def _streams_of(value: object) -> Iterable[Stream]:
    """Streams held by ``value``: the stream itself, or those in an array or dictionary."""
    if isinstance(value, Stream):
        yield value
    elif isinstance(value, Array):
        for item in value:
            if isinstance(item, Stream):
                yield item
    elif isinstance(value, Dictionary):
        for item in value.values():
            if isinstance(item, Stream):
                yield item


def _dpi_placements(pdf: pikepdf.Pdf, budget: Budget) -> dict[tuple[int, int], Placement] | None:
    """Effective resolutions from ``placement.py`` when that module is present and works."""
    try:
        from squeezer.engines.pdf.placement import image_placements
    except ImportError:
        return None
    try:
        return dict(image_placements(pdf, budget))
    except EngineError:
        raise
    except Exception:  # noqa: BLE001 - the breakdown is still useful without resolutions
        return None


def _inventory(pdf: pikepdf.Pdf, file_bytes: int, budget: Budget) -> Analysis:
    notes: list[str] = []
    pages = list(pdf.pages)

    # Roles of streams that are only known from where they are referenced.
    contents: set[tuple[int, int]] = set()
    appearances: set[tuple[int, int]] = set()
    annotations = 0
    for page in pages:
        contents.update(s.objgen for s in _streams_of(page.obj.get("/Contents")))
        annots = page.obj.get("/Annots")
        if not isinstance(annots, Array):
            continue
        for annot in annots:
            if not isinstance(annot, Dictionary):
                continue
            annotations += 1
            ap = annot.get("/AP")
            if isinstance(ap, Dictionary):
                for key in ("/N", "/R", "/D"):
                    appearances.update(s.objgen for s in _streams_of(ap.get(key)))

    font_files: dict[tuple[int, int], tuple[str, str]] = {}  # objgen -> (kind, font name)
    descriptors_seen: set[tuple[int, int]] = set()
    not_embedded: set[str] = set()
    masks: set[tuple[int, int]] = set()
    jbig2_globals: set[tuple[int, int]] = set()
    embedded: set[tuple[int, int]] = set()

    def visit_descriptor(desc: object, base_font: str) -> bool:
        if not isinstance(desc, Dictionary):
            return False
        if desc.is_indirect:
            descriptors_seen.add(desc.objgen)
        name = str(desc.get("/FontName", base_font or "?"))
        name = name.removeprefix("/")
        found = False
        for key in FONT_FILE_KEYS:
            program = desc.get(key)
            if isinstance(program, Stream):
                font_files.setdefault(program.objgen, (key[1:], name))
                found = True
        return found

    for obj in pdf.objects:
        if isinstance(obj, Stream):
            d = obj.stream_dict
            if d.get("/Subtype") == Name.Image:
                for key in ("/SMask", "/Mask"):
                    mask = d.get(key)
                    if isinstance(mask, Stream):
                        masks.add(mask.objgen)
                parms = d.get("/DecodeParms")
                for p in parms if isinstance(parms, Array) else [parms]:
                    if isinstance(p, Dictionary) and isinstance(p.get("/JBIG2Globals"), Stream):
                        jbig2_globals.add(p.JBIG2Globals.objgen)
            continue
        if not isinstance(obj, Dictionary):
            continue
        kind = obj.get("/Type")
        if kind == Name.FontDescriptor and obj.objgen not in descriptors_seen:
            visit_descriptor(obj, "")
        elif kind == Name.Font:
            subtype = obj.get("/Subtype")
            base = str(obj.get("/BaseFont", ""))[1:]
            if subtype in (Name.Type3, Name.Type0):
                continue
            if not visit_descriptor(obj.get("/FontDescriptor"), base) and base:
                not_embedded.add(base)
        elif kind == Name.Filespec or "/EF" in obj:
            ef = obj.get("/EF")
            if isinstance(ef, Dictionary):
                embedded.update(s.objgen for s in _streams_of(ef))
    # A name may first look unembedded through one font dictionary and embedded through another.
    embedded_names = {name for _, name in font_files.values()}
    not_embedded = {n for n in not_embedded if n not in embedded_names}

    totals: dict[str, Category] = {name: Category(name=name) for name in CATEGORIES}
    codecs: dict[str, CodecTotal] = {c: CodecTotal(codec=c) for c in CODEC_ORDER}
    kinds: dict[str, CodecTotal] = {}
    images: list[ImageEntry] = []
    fonts: list[FontEntry] = []
    by_content: dict[bytes, list[tuple[str, Stream, int]]] = defaultdict(list)
    placements = _dpi_placements(pdf, budget)

    for obj in pdf.objects:
        if not isinstance(obj, Stream):
            continue
        budget.check_time()
        d = obj.stream_dict
        kind, subtype = d.get("/Type"), d.get("/Subtype")
        if kind in (Name.ObjStm, Name.XRef):
            continue  # structure: counted in the remainder
        size = _raw_size(obj, notes)
        og = obj.objgen
        if og in font_files:
            category = "fonts"
            program_kind, name = font_files[og]
            sub = str(d.get("/Subtype"))[1:] if isinstance(d.get("/Subtype"), Name) else None
            fonts.append(FontEntry(object=_ref(obj), name=name, kind=program_kind, subtype=sub,
                                   bytes=size, subset=bool(_SUBSET_RE.match(name))))
            label = f"{program_kind} ({sub})" if sub else program_kind
            entry = kinds.setdefault(label, CodecTotal(codec=label))
            entry.count += 1
            entry.bytes += size
        elif subtype == Name.Image:
            category = "images"
            filters = _filters(obj)
            codec = image_codec(filters)
            is_mask = og in masks or bool(d.get("/ImageMask", False))
            placement = placements.get(og) if placements is not None else None
            dpi = None
            if placement is not None:
                dpi = round(max(placement.dpi_x, placement.dpi_y), 1)
            images.append(ImageEntry(
                object=_ref(obj), codec=codec, filters=[f[1:] for f in filters], bytes=size,
                width=_int(d.get("/Width")) or 0, height=_int(d.get("/Height")) or 0,
                color_space=("mask" if d.get("/ImageMask", False)
                             else color_space_name(d.get("/ColorSpace"))),
                bits_per_component=_int(d.get("/BitsPerComponent")),
                mask=is_mask, dpi=dpi, uses=placement.uses if placement is not None else None,
            ))
            codecs[codec].count += 1
            codecs[codec].bytes += size
        elif og in jbig2_globals:
            category = "images"
            codecs["JBIG2"].bytes += size
        elif kind == Name.EmbeddedFile or og in embedded:
            category = "embedded_files"
        elif kind == Name.Metadata or subtype == Name.XML:
            category = "metadata"
        elif og in contents:
            category = "content_streams"
        elif og in appearances:
            category = "annotations"
        elif subtype == Name.Form:
            category = "form_xobjects"
        else:
            category = "other_streams"
        totals[category].count += 1
        totals[category].bytes += size
        if size:
            digest = hashlib.sha256(obj.read_raw_bytes())
            digest.update(_dict_key(d))
            by_content[digest.digest()].append((category, obj, size))

    info = pdf.trailer.get("/Info")
    if isinstance(info, Dictionary):
        try:
            totals["metadata"].bytes += len(info.unparse())
            totals["metadata"].count += 1
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            pass
    totals["annotations"].count = annotations

    accounted = sum(c.bytes for name, c in totals.items() if name != "structure")
    if accounted > file_bytes:
        # decrypted or repaired streams can add up to a little more than the file
        notes.append(f"streams add up to {accounted - file_bytes} bytes more than the file")
    totals["structure"].bytes = max(file_bytes - accounted, 0)
    totals["structure"].count = len(pdf.objects)
    for c in totals.values():
        c.share = round(c.bytes / file_bytes, 4) if file_bytes else 0.0

    duplicates = Duplicates()
    groups = []
    for members in by_content.values():
        if len(members) < 2:
            continue
        category, _, size = members[0]
        duplicates.groups += 1
        duplicates.redundant += len(members) - 1
        duplicates.wasted_bytes += size * (len(members) - 1)
        groups.append(DuplicateGroup(category=category, copies=len(members), bytes_each=size,
                                     objects=[_ref(s) for _, s, _ in members[:20]]))
    groups.sort(key=lambda g: g.bytes_each * (g.copies - 1), reverse=True)
    duplicates.largest = groups[:10]

    images.sort(key=lambda i: i.bytes, reverse=True)
    fonts.sort(key=lambda f: f.bytes, reverse=True)
    producer = None
    if isinstance(info, Dictionary) and "/Producer" in info:
        try:
            producer = str(info.Producer)[:200]
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            producer = None
    return Analysis(
        file_bytes=file_bytes,
        pages=len(pages),
        pdf_version=pdf.pdf_version,
        encrypted=pdf.is_encrypted,
        linearized=pdf.is_linearized,
        producer=producer,
        categories=list(totals.values()),
        image_codecs=[c for c in codecs.values() if c.count or c.bytes],
        images=images,
        dpi_known=placements is not None,
        font_kinds=sorted(kinds.values(), key=lambda k: k.bytes, reverse=True),
        fonts=fonts,
        fonts_not_embedded=sorted(not_embedded),
        annotations=annotations,
        duplicates=duplicates,
        warnings=notes[:20],
    )


def _dict_key(d: Dictionary) -> bytes:
    """The stream dictionary without /Length, so equal streams compare equal."""
    parts = []
    for key in sorted(d.keys()):
        if key == "/Length":
            continue
        try:
            parts.append(key.encode() + b" " + d[key].unparse())
        except (pikepdf.PikepdfError, UnicodeDecodeError, AttributeError):
            parts.append(key.encode())
    return b"\n".join(parts)


# --- the estimate per level ---------------------------------------------------------------


def sample_indices(weights: list[int], count: int = SAMPLE_PAGES) -> list[int]:
    """``count`` pages chosen evenly over the pages ranked by weight, heaviest included.

    Ranking first makes the sample mirror the document's mix of heavy (image)
    and light (text) pages, so one big picture among many text pages is not
    missed, yet not over-represented either.
    """
    pages = len(weights)
    if pages <= count:
        return list(range(pages))
    ranked = sorted(range(pages), key=lambda i: weights[i], reverse=True)
    step = (pages - 1) / (count - 1)
    return sorted({ranked[round(i * step)] for i in range(count)})


def page_weights(pdf: pikepdf.Pdf) -> list[int]:
    """Raw bytes each page draws directly: its content streams and its XObjects."""
    weights = []
    for page in pdf.pages:
        streams = {s.objgen: s for s in _streams_of(page.obj.get("/Contents"))}
        resources = page.obj.get("/Resources")
        xobjects = resources.get("/XObject") if isinstance(resources, Dictionary) else None
        if isinstance(xobjects, Dictionary):
            streams.update({s.objgen: s for s in _streams_of(xobjects)})
        total = 0
        for stream in streams.values():
            length = _int(stream.stream_dict.get("/Length"))
            total += max(length or 0, 0)
        weights.append(total)
    return weights


def estimate_levels(
    path: Path,
    password: str | None,
    file_bytes: int,
    pages: int,
    *,
    limits: Limits | None = None,
    levels: Iterable[Level] = tuple(Level),
    images: bool = True,
    progress: Progress | None = None,
) -> Estimates:
    """Run the engine at each level and report the output size it reaches.

    Long documents are estimated from a sample of pages copied into a new file;
    the sample's compression ratio is applied to the whole file's size.  All
    work happens in a private temporary directory that is removed afterwards.
    Levels differ only in what they do to images, so a document without image
    XObjects (``images=False``) is compressed once and that result shared.
    """
    from squeezer.engines.pdf.pipeline import compress

    notify = progress or (lambda fraction, stage: None)
    levels = list(levels)
    started = time.monotonic()
    whole = pages <= WHOLE_DOCUMENT_PAGES and file_bytes <= WHOLE_DOCUMENT_BYTES
    result = Estimates(total_pages=pages, method="whole document" if whole else "sample")
    with tempfile.TemporaryDirectory(prefix="squeezer-analyze-") as tmp:
        work = Path(tmp)
        src, src_password, src_bytes = path, password, file_bytes
        if whole:
            result.sampled_pages = pages
        else:
            src = work / "sample.pdf"
            with opened(path, password) as pdf:
                try:
                    indices = sample_indices(page_weights(pdf))
                    sample = pikepdf.new()
                    for i in indices:
                        sample.pages.append(pdf.pages[i])
                    sample.save(src, min_version=pdf.pdf_version)
                    sample.close()
                except (pikepdf.PikepdfError, UnicodeDecodeError) as exc:
                    raise map_qpdf_error(exc) from None
            src_password, src_bytes = None, src.stat().st_size
            result.sampled_pages = len(indices)
        for n, level in enumerate(levels):
            if not images and n and result.levels:
                result.levels.append(result.levels[0].model_copy(update={"level": level.value}))
                continue
            notify(n / len(levels), f"estimating {level.value}")
            out = work / f"{level.value}.pdf"
            try:
                report = compress(src, out, Options(level=level, password=src_password),
                                  limits=limits)
            except LimitExceededError:
                raise  # every other level would hit the same limit: stop here
            except EngineError as exc:
                result.levels.append(
                    Estimate(level=level.value, error=f"{exc.code}: {exc.message}")
                )
                continue
            ratio = report.output_bytes / src_bytes if src_bytes else 1.0
            ratio = min(ratio, 1.0)
            result.levels.append(Estimate(level=level.value, bytes=round(file_bytes * ratio),
                                          ratio=round(ratio, 4)))
    result.elapsed_seconds = round(time.monotonic() - started, 3)
    notify(1.0, "estimated")
    return result
