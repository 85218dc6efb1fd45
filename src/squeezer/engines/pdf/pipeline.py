"""The PDF compression pipeline: open, clean, recompress images, deduplicate, save, verify.

One call of :func:`compress` is one file.  Whatever happens, the destination
either receives a complete, verified PDF that is smaller than the input, or
the input's own bytes (with ``original_kept`` in the report), or nothing at
all and a named :class:`~squeezer.engines.errors.EngineError` is raised.
"""

from __future__ import annotations

import functools
import platform
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Final, Self, cast

import pikepdf

from squeezer.engines.budget import Budget
from squeezer.engines.errors import DamagedPdfError, EngineError, LimitExceededError
from squeezer.engines.files import GuardedWriter, atomic_copy, input_size
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.options import Options
from squeezer.engines.pdf import (
    attachments,
    cffmerge,
    cidfonts,
    flate,
    fontfiles,
    fonts,
    fonttables,
    inline,
    metadata,
    preflight,
    repair,
    structure,
    tags,
    verify,
)
from squeezer.engines.pdf.document import apply_qpdf_limits, map_qpdf_error, opened
from squeezer.engines.pdf.options import ColorModel, Settings, resolve
from squeezer.engines.report import ImageStats, Report

# The steps a document may not need (images, scans, the JBIG2 coder, the target-size search)
# are imported where they are used: numpy, Pillow and the codecs cost a small text PDF more
# than its whole compression (issue 18, item 7).  (The font steps import fontTools only for a
# font program.)

#: Highest zlib level; qpdf applies it to every stream it (re)compresses.
FLATE_LEVEL: Final = 9  # (Final: pikepdf takes the literal levels -1 to 9)

Progress = Callable[[float, str], None]


def engine_versions() -> dict[str, str]:
    import PIL
    import pypdfium2

    return {
        "squeezer": __import__("squeezer").__version__,
        "pikepdf": pikepdf.__version__,
        "qpdf": pikepdf.__libqpdf_version__,
        "pdfium": str(pypdfium2.version.PDFIUM_INFO),
        "pillow": PIL.__version__,
        "python": platform.python_version(),
    }


def compress(
    src: str | Path,
    dst: str | Path,
    options: Options | None = None,
    *,
    limits: Limits | None = None,
    progress: Progress | None = None,
) -> Report:
    """Compress the PDF at ``src`` into ``dst`` and report what was done.

    ``src`` and ``dst`` may be the same path (in-place); ``dst`` is replaced
    atomically only once a verified result exists.
    """
    started = time.monotonic()
    src, dst = Path(src), Path(dst)
    options = options or Options()
    limits = limits or DEFAULT_LIMITS
    notify = progress or (lambda fraction, stage: None)
    input_bytes = input_size(src, limits.max_input_bytes)
    settings = resolve(options)
    report = Report(
        input_bytes=input_bytes,
        target_size=settings.target_size,
        settings=settings.model_dump(mode="json", exclude={"password"}),
        engine_versions=engine_versions(),
    )
    apply_qpdf_limits(limits)
    budget = Budget(limits)
    chosen: Path | None  # None: no rewrite passed verification

    with tempfile.TemporaryDirectory(prefix="squeezer-") as tmp, \
            _ReferenceReader(src, settings.password, budget) as reader:
        work = Path(tmp)
        notify(0.02, "reading")
        run = functools.partial(build, on_scanned=reader.start)
        source = src
        try:
            chosen, settings = _run(source, settings, budget, report, work, notify, run)
        except DamagedPdfError:
            repaired = _repaired(src, settings.password, work, report)
            if repaired is None:
                raise
            source = repaired
            budget.scanned = False  # (the repaired copy is checked against the limits afresh)
            chosen, settings = _run(source, settings, budget, report, work, notify, run)
        notify(0.9, "verifying")
        reference = reader.result()
        chosen = _verified_or_fallback(source, chosen, settings, budget, report, reference, work)
        grown = chosen is not None and chosen.stat().st_size >= input_bytes
        if chosen is not None and grown and report.requested_changes:
            # The original would bring back what the caller asked to remove.
            report.warnings.append(
                f"the result is {chosen.stat().st_size - input_bytes} bytes larger than the input; "
                f"kept because these changes were requested: {', '.join(report.requested_changes)}"
            )
        elif chosen is None or grown:
            report.original_kept = True
            if chosen is not None:
                report.warnings.append("the input was already smaller than any result; kept it")
            chosen = src
        if report.target_size:
            # a fallback after the search may have changed the result
            report.target_reached = chosen.stat().st_size <= report.target_size
        if chosen != src or src.resolve() != dst.resolve():
            atomic_copy(chosen, dst)
    report.finish(dst.stat().st_size)
    if report.original_kept:
        # nothing of the rewrite survived: report the input as it is
        report.steps, report.fonts_deduplicated = {}, 0
        report.fonts_kept_whole = []
        report.images = ImageStats(seen=report.images.seen, skipped=report.images.seen)
        report.requested_changes = []
        report.scan_pages = [e.model_copy(update={"method": "plain", "reason": "the input was kept",
                                                  "bytes_after": e.bytes_before})
                             for e in report.scan_pages]
    else:
        measured = sum(report.steps.values())
        report.steps["structure"] = report.saved_bytes - measured
    report.elapsed_seconds = round(time.monotonic() - started, 3)
    notify(1.0, "done")
    return report


def _run(src: Path, settings: Settings, budget: Budget, report: Report, work: Path,
         notify: Progress, run: Callable) -> tuple[Path, Settings]:
    if settings.target_size:
        from squeezer.engines.pdf.target import search_target_size

        return search_target_size(src, settings, budget, report, work, notify, run)
    return run(src, settings, budget, report, work / "out.pdf", notify), settings


def _note_repairs(report: Report, repairs: list[str]) -> None:
    """Add what opening the document repaired to ``report.repaired`` (once per run)."""
    said = report.repaired.split("; ") if report.repaired else []
    new = [r for r in repairs if r not in said]
    if new:
        report.repaired = "; ".join(said + new)
        report.warnings.extend(f"the input was damaged and repaired: {r}" for r in new)


def _repaired(src: Path, password: str | None, work: Path, report: Report) -> Path | None:
    """A copy of ``src`` qpdf opens (:mod:`repair`), or None."""
    patched = work / "repaired.pdf"
    how = repair.patched_root(src, patched)
    if how is not None:
        try:
            with opened(patched, password) as pdf:
                len(pdf.pages)
        except DamagedPdfError:
            how = None
    if how is None:
        how = repair.via_pdfium(src, patched, password)
    if how is None:
        return None
    report.repaired = how
    report.warnings.append(f"the input was damaged and repaired: {how}")
    return patched


class _ReferenceReader:
    """Reads the input's :class:`verify.Reference` (PDFium: text and looks of sampled pages).

    Only once the pre-flight scan has passed may PDFium read the input (it has
    refused anything that decompresses beyond the limits), so :meth:`start` is
    called from :func:`build` right after it.  With more than one thread the
    reading then runs beside the compression (PDFium releases the GIL; its lock
    is taken page by page); otherwise it runs when :meth:`result` asks for it.
    Leaving the ``with`` block waits for the reading, so no thread outlives a
    failed run.  In a document with a large image (PDFium decodes it whole to render
    its page) the reading takes the run's place for large images
    (:meth:`Budget.large_image`), so that it never renders beside the steps' work on one.
    """

    def __init__(self, src: Path, password: str | None, budget: Budget) -> None:
        self.src, self.password, self.budget = src, password, budget
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="squeezer-reference") \
            if budget.threads > 1 else None
        self.future: Future | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def start(self) -> None:
        if self.pool is not None and self.future is None:
            self.future = self.pool.submit(self._read)

    def _read(self) -> verify.Reference | None:
        with self.budget.large_image(self.budget.largest_image):
            return verify.Reference.of(self.src, self.password)

    def result(self) -> verify.Reference | None:
        if self.future is None:
            return verify.Reference.of(self.src, self.password)
        return self.future.result()


def build(
    src: Path,
    settings: Settings,
    budget: Budget,
    report: Report,
    out: Path,
    notify: Progress,
    on_scanned: Callable[[], None] | None = None,
) -> Path:
    """Run every optimisation step on a fresh copy of ``src`` and save it to ``out``.

    ``on_scanned`` is called once the document has passed the pre-flight scan.
    """
    report.images, report.steps, report.fonts_deduplicated = ImageStats(), {}, 0
    report.fonts_kept_whole = []
    report.pages_classified, report.scan_pages = {}, []
    loader: threading.Thread | None = None
    repairs: list[str] = []
    with opened(src, settings.password, repairs) as pdf:
        report.pages = len(pdf.pages)
        _note_repairs(report, repairs)
        if not report.pages:
            # e.g. a /Kids cycle with no leaf: nothing a reader can show; the repair path
            # (which rebuilds a page tree from the page objects it finds) gets its turn
            raise DamagedPdfError("the document has no page a reader can reach")
        try:
            if not budget.scanned:
                preflight.scan(pdf, budget)
                budget.scanned = True
            if on_scanned is not None:
                on_scanned()
            has_images = _has_images(pdf)
            loader = _prefetch_jbig2(pdf, settings) if has_images else None
            notify(0.1, "cleaning structure")
            structure.clean(pdf, settings, report)
            tags.prune(pdf, budget)
            if inline.externalize(pdf, budget):  # (the image step sees inline images as XObjects)
                has_images = True
            budget.check_time()
            written: set[tuple[int, int]] = set()
            text_scans: set[tuple[int, int]] = set()  # (plain text scans: the image step's)
            images_from = 0.2
            found = _find_scans(pdf) if has_images and scans_wanted(settings) else None
            if found is not None and found[0]:
                # (the scan step, numpy and the codecs are imported for a page that is a scan)
                from squeezer.engines.pdf import scans

                notify(0.15, "scanned pages")
                budget.on_step = lambda f: notify(0.15 + 0.3 * f, "scanned pages")
                written = scans.optimize_scans(pdf, settings, budget, report, found=found,
                                               text=text_scans)
                budget.check_time()
                images_from = 0.45
            elif scans_wanted(settings):
                # no page is a scan (what the scan step would have found)
                vector = report.pages if found is None else found[1]
                report.pages_classified = {"scan": 0, "vector": vector}
                report.steps["scans"] = 0
            notify(images_from, "images")
            if has_images:
                from squeezer.engines.pdf import images

                budget.on_step = lambda f: notify(images_from + (0.7 - images_from) * f, "images")
                images.optimize_images(pdf, settings, budget, report, skip=written,
                                       text_scans=text_scans)
                budget.on_step = None
            else:
                report.steps["images"] = report.steps.get("images", 0)
            budget.check_time()
            notify(0.7, "attachments")  # (the image step ends at 0.7)
            attachments.compress_embedded(pdf, settings, budget, report, out.parent)
            budget.check_time()
            notify(0.72, "recompressing streams")
            if settings.round_numbers:
                from squeezer.engines.pdf import content

                content.round_numbers(pdf, budget, report)
            flate.recompress(pdf, budget, report)
            notify(0.75, "deduplicating")
            structure.deduplicate_streams(pdf, report)
            if settings.subset_fonts:
                # after deduplication: identical programs are one, cut once for all their users
                notify(0.78, "fonts")
                fonts.type_descriptors(pdf)  # (the steps below find descriptors by /Type)
                fontfiles.convert_type1(pdf, budget, report)
                cffmerge.merge_subsets(pdf, budget, report)
                fonts.subset_fonts(pdf, budget, report)
                cidfonts.subset_cid_fonts(pdf, budget, report)
                fonttables.drop_layout_tables(pdf, budget, report)
                fonts.note_form_fonts(pdf, report)
            notify(0.8, "writing")
            save(pdf, out, settings)
        except (pikepdf.PikepdfError, UnicodeDecodeError) as exc:
            # qpdf met damage that recovery at open time did not see
            raise map_qpdf_error(exc) from None
        finally:
            if loader is not None:
                loader.join()  # (no thread outlives the run)
    budget.check_time()
    return out


def scans_wanted(settings: Settings) -> bool:
    """Whether the scan step runs (:func:`scans.wanted`, without importing the step)."""
    return settings.mrc or settings.scan_bitonal or settings.color_model == ColorModel.bitonal


def _find_scans(pdf: pikepdf.Pdf) -> tuple[dict, int]:
    """:func:`scanpages.find_scans` (content streams only, no pixels)."""
    from squeezer.engines.pdf.scanpages import find_scans

    return find_scans(pdf)


def _has_images(pdf: pikepdf.Pdf) -> bool:
    """Whether ``pdf`` has an image XObject: without one, the image and scan steps (and
    numpy, Pillow and the codecs they import) have nothing to do.  (Inline images are
    counted when :func:`inline.externalize` turns them into XObjects.)"""
    for obj in pdf.objects:
        if isinstance(obj, pikepdf.Stream) and obj.stream_dict.get("/Subtype") == "/Image":
            return True
    return False


def _prefetch_jbig2(pdf: pikepdf.Pdf, settings: Settings) -> threading.Thread | None:
    """Start loading the JBIG2 coder (:func:`jbig2.prefetch`) when this document will use
    it: it has 1-bit images.

    Not for large 8-bit images the scan step might turn into 1-bit pages or masks: most
    are photographs or colour pages that stay 8-bit, and the coder costs a process
    ~90 MB (LLVM); the scan step loads it on first use instead (~0.1 s).
    """
    if not settings.jbig2:
        return None
    for obj in pdf.objects:
        if not (isinstance(obj, pikepdf.Stream) and obj.stream_dict.get("/Subtype") == "/Image"):
            continue
        if obj.stream_dict.get("/ImageMask", False) is True \
                or obj.stream_dict.get("/BitsPerComponent") == 1:
            from squeezer.engines.pdf import jbig2

            return None if jbig2.loaded() else jbig2.prefetch()
    return None


def save(pdf: pikepdf.Pdf, out: Path, settings: Settings) -> None:
    """Write with object streams, maximum Flate, and the input's encryption.

    A file that claims PDF/A-1 is written without object streams: PDF/A-1 is
    based on PDF 1.4, which has none (parts 2 to 4 allow them).
    """
    pikepdf.settings.set_flate_compression_level(FLATE_LEVEL)
    streams = pikepdf.ObjectStreamMode.disable if metadata.pdfa_part(pdf) == 1 \
        else pikepdf.ObjectStreamMode.generate
    encrypt = pdf.is_encrypted and not settings.remove_encryption
    if "/Size" not in pdf.trailer:
        # A trailer rebuilt by recovery may lack /Size; qpdf then writes an xref
        # stream without it, which readers (qpdf among them) reject.  qpdf puts
        # the real value in place of any number given here.
        pdf.trailer.Size = 1
    # qpdf must never see a failed write: on a full disk it can abort the process
    sink = GuardedWriter(out)
    try:
        with warnings.catch_warnings():
            # widgets outside /AcroForm are written as they are; the warning is for page copies
            warnings.simplefilter("ignore", pikepdf.PageCopyWarning)
            pdf.save(
                cast(BinaryIO, sink),
                compress_streams=True,
                object_stream_mode=streams,
                # flate.recompress did it, keeping predictors qpdf would drop
                recompress_flate=False,
                linearize=settings.linearize,
                encryption=encrypt,
                # qpdf cannot derive a deterministic /ID for an encrypted file
                deterministic_id=not encrypt,
                # rewriting XMP of damaged files fails; the version in it is cosmetic
                fix_metadata_version=False,
            )
    except (pikepdf.PikepdfError, UnicodeDecodeError, ValueError, RuntimeError) as exc:
        # qpdf's logic errors surface as ValueError/RuntimeError (a fuzzed number out of
        # range: "integer out of range converting 4294967295")
        sink.abandon()
        if sink.interrupted is not None:  # Ctrl-C while qpdf was writing
            raise sink.interrupted from None
        if sink.error is not None:  # the write failed first: that is the error
            raise GuardedWriter.failure(sink.error) from None
        raise map_qpdf_error(exc) from None
    except BaseException:
        sink.abandon()
        raise
    sink.finish()


def _verified_or_fallback(
    src: Path,
    candidate: Path,
    settings: Settings,
    budget: Budget,
    report: Report,
    reference: verify.Reference | None,
    work: Path,
) -> Path | None:
    """Return a candidate that passed :func:`verify.check`, trying safer ones in turn."""
    compare_text = not (settings.remove_form_fields or settings.remove_annotations)
    password = None if settings.remove_encryption else settings.password
    floor = verify.visual_floor(settings)
    verdict = verify.check(candidate, reference, report.pages, password, compare_text, floor,
                           processes=budget.threads)
    if verdict.ok:
        return candidate
    if settings.round_numbers:
        # rounding content numbers moves glyphs by up to 0.0005 pt, which can flip a space
        # a reader infers from a gap right at its threshold: try once with every number
        # as it was before giving up the rest of the savings
        plain = settings.model_copy(update={"round_numbers": False})
        try:
            retry = build(src, plain, budget, report, work / "plain.pdf", lambda f, s: None)
        except LimitExceededError:
            raise
        except EngineError:
            retry = None
        if retry is not None:
            second = verify.check(retry, reference, report.pages, password, compare_text, floor,
                                  processes=budget.threads)
            if second.ok:
                report.warnings.append(f"content numbers kept as they were (rounded, "
                                       f"{verdict.reason})")
                return retry
    report.warnings.append(f"result failed verification ({verdict.reason})")
    if settings.lossy_images or settings.subset_fonts or settings.round_numbers \
            or scans_wanted(settings):
        safe = settings.model_copy(update={"lossy_images": False, "dpi": None, "subset_fonts": False,
                                           "mrc": False, "scan_bitonal": False,
                                           "round_numbers": False})
        try:
            fallback = build(src, safe, budget, report, work / "safe.pdf", lambda f, s: None)
        except LimitExceededError:
            raise
        except EngineError as exc:
            report.warnings.append(f"lossless fallback failed ({exc.message})")
            return None
        verdict = verify.check(fallback, reference, report.pages, password, compare_text,
                               verify.visual_floor(safe), processes=budget.threads)
        if verdict.ok:
            report.warnings.append("used the lossless result instead")
            return fallback
        report.warnings.append(f"lossless result failed verification too ({verdict.reason})")
    return None
