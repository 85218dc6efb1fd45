"""Flate recompression at the best level, keeping PNG/TIFF predictors.

qpdf's own ``recompress_flate`` decodes every Flate stream and deflates it
again *without* its /DecodeParms predictor, which undoes the image step's
PNG-predicted encodings (26 % smaller than plain Flate on the corpus' lossless
images).  So the pipeline saves with ``recompress_flate=False`` and this step
re-deflates, at level 9, exactly the streams whose only filter is Flate with
no predictor, keeping a new encoding only when it is smaller.  Recompressing
before deduplication also lets identical content that two writers compressed
differently be merged.
"""

from __future__ import annotations

import zlib

import pikepdf
from pikepdf import Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.report import Report

LEVEL = 9


def _only_flate_without_predictor(stream: Stream) -> bool:
    filters = stream.stream_dict.get("/Filter")
    if isinstance(filters, pikepdf.Array):
        if len(filters) != 1:
            return False
        filters = filters[0]
    if filters != Name.FlateDecode:
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


def recompress(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> None:
    """Deflate every plain-Flate stream again at level 9 when that is smaller."""
    saved = 0
    for obj in pdf.objects:
        if not isinstance(obj, Stream) or not _only_flate_without_predictor(obj):
            continue
        if obj.stream_dict.get("/Type") in (Name.XRef, Name.ObjStm):
            continue  # qpdf writes these itself
        budget.check_time()
        raw = obj.read_raw_bytes()
        try:
            data = obj.read_bytes()
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            continue  # corrupt: leave the bytes as they are, readers cope
        packed = zlib.compress(data, LEVEL)
        if len(packed) < len(raw):
            obj.write(packed, filter=Name.FlateDecode)
            saved += len(raw) - len(packed)
    report.steps["flate"] = report.steps.get("flate", 0) + saved
