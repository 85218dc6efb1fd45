"""Flate recompression at the best level, keeping PNG/TIFF predictors.

qpdf's own ``recompress_flate`` decodes every Flate stream and deflates it
again *without* its /DecodeParms predictor, which undoes the image step's
PNG-predicted encodings (26 % smaller than plain Flate on the corpus' lossless
images).  So the pipeline saves with ``recompress_flate=False`` and this step
re-deflates, with libdeflate at level 10 (:mod:`squeezer.engines.libdeflate`),
exactly the streams whose only filter is Flate with no predictor, keeping a new
encoding only when it is smaller.  Recompressing
before deduplication also lets identical content that two writers compressed
differently be merged.
"""

from __future__ import annotations

from contextlib import closing

import pikepdf
from pikepdf import Name, Stream

from squeezer.engines import libdeflate
from squeezer.engines.budget import Budget
from squeezer.engines.report import Report
from squeezer.engines.threads import ordered_map

#: libdeflate's level here: these streams (content streams, fonts, XMP, plain images) are most
#: of a text document's bytes.  On the corpus' medium outputs (14 MB of them) level 10 wrote
#: 3.4 % fewer bytes than 9 for 4x the deflate time (5.7 s against 1.4 s of CPU over 89
#: files), 11 3.9 % for 8x, 12 4.3 % for 12x (issue 18).  Level 10's near-optimal parsing
#: is not always smaller than 9's greedy one (a form's streams were 2 KB larger), so 9 is
#: deflated too, for a quarter of 10's time, and the smaller kept.
LEVEL = 10


def smallest(data: bytes) -> bytes:
    """``data`` as Flate: the smaller of libdeflate's level 9 and :data:`LEVEL`.  This step's
    choice, and the font steps' for the programs they write after it."""
    return min(libdeflate.compress(data, libdeflate.BEST), libdeflate.compress(data, LEVEL),
               key=len)


def _filters(stream: Stream) -> list[pikepdf.Object]:
    """The stream's /Filter as a list (a single name, an array, or none)."""
    filters = stream.stream_dict.get("/Filter")
    if filters is None:
        return []
    return list(filters) if isinstance(filters, pikepdf.Array) else [filters]


def _only_flate_without_predictor(stream: Stream) -> bool:
    if _filters(stream) != [Name.FlateDecode]:
        return False
    parms = stream.stream_dict.get("/DecodeParms")
    if isinstance(parms, pikepdf.Array):
        parms = parms[0] if len(parms) else None
    if isinstance(parms, pikepdf.Dictionary):
        try:
            return int(parms.get("/Predictor", 1)) <= 1
        except (TypeError, ValueError):
            return False
    return parms is None


def _unfiltered(stream: Stream) -> bool:
    """A stream stored as it is, which qpdf would deflate when it writes the file (zlib):
    the content the number rounding rewrote, among others.  XMP metadata stays as it is,
    as qpdf leaves it (PDF/A wants it readable without a filter)."""
    return not _filters(stream) and stream.stream_dict.get("/Type") != Name.Metadata


def recompress(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Deflate every plain-Flate stream again (libdeflate, :data:`LEVEL`) when that is smaller,
    and every unfiltered one that qpdf would deflate anyway (:func:`_unfiltered`): the content
    streams the number rounding rewrote had been left to qpdf's zlib, 8 % larger than
    libdeflate's on a code listing's 45 pages, so that ``high`` wrote a larger file than
    ``lossless`` (205,506 B against 203,702 B).

    libdeflate releases the GIL, so streams are deflated on the image step's threads
    (:mod:`squeezer.engines.threads`) and written back here, in object order.
    """
    streams = [obj for obj in pdf.objects
               if isinstance(obj, Stream)
               and (_only_flate_without_predictor(obj) or _unfiltered(obj))
               and obj.stream_dict.get("/Type") not in (Name.XRef, Name.ObjStm)]  # qpdf's own

    def deflate(obj: Stream) -> tuple[int, bytes | None]:
        budget.check_time()
        raw = len(obj.read_raw_bytes())
        try:
            data = obj.read_bytes()
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            return raw, None  # corrupt: leave the bytes as they are, readers cope
        return raw, smallest(data)

    saved = 0
    with closing(ordered_map(deflate, streams, budget.threads)) as results:
        for obj, (raw, packed) in zip(streams, results):
            if packed is not None and len(packed) < raw:
                obj.write(packed, filter=Name.FlateDecode)
                saved += raw - len(packed)
    report.steps["flate"] = report.steps.get("flate", 0) + saved
