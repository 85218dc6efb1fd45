"""One entry point for every engine: the file's bytes pick the engine, never its name.

``compress_any(src, dst, options, limits=...)`` sniffs ``src``
(:func:`squeezer.engines.image.sniff.sniff`): a PDF goes to
:func:`squeezer.engines.pdf.compress`, an image or SVG to
:func:`squeezer.engines.image.compress`, EPS/PostScript and anything else is
refused with :class:`~squeezer.engines.errors.UnsupportedFormatError`
(``unsupported_format``).  Bytes with no known signature go to the PDF engine,
whose recovery can rebuild a PDF with a damaged header and which otherwise
refuses them as ``not_a_pdf`` (the code clients already handle).

Options are one flat mapping for both engines, validated by
:class:`CompressOptions` (every :class:`~squeezer.engines.pdf.PdfOptions` and
:class:`~squeezer.engines.image.ImageOptions` field; unknown keys are errors).
Each engine gets the keys it knows; keys only the other engine knows are
ignored with a warning in the report (a batch of PDFs and JPEGs shares one
set of flags).  The level names cross over when only one is given:
``compression`` for a PDF means ``preset`` (lossless→lossless, medium→medium,
high→high, ultra→extreme), ``preset`` for an image means ``compression``
(lossless→lossless, low and medium→medium, high→high, extreme→ultra);
``quality`` and ``image_quality`` likewise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, create_model

from squeezer.engines.errors import UnsupportedFormatError
from squeezer.engines.files import input_size
from squeezer.engines.image import ImageOptions, ImageReport
from squeezer.engines.image.sniff import UNKNOWN, Kind, sniff_file
from squeezer.engines.limits import DEFAULT_LIMITS, Limits
from squeezer.engines.pdf.options import PdfOptions
from squeezer.engines.report import Report

_PDF_FROM_IMAGE = {"lossless": "lossless", "medium": "medium", "high": "high", "ultra": "extreme"}
_IMAGE_FROM_PDF = {"lossless": "lossless", "low": "medium", "medium": "medium", "high": "high",
                   "extreme": "ultra"}


def _pdf_fields() -> dict[str, Any]:
    return {name: (info.annotation, info) for name, info in PdfOptions.model_fields.items()
            if name not in ImageOptions.model_fields}


#: The request model of both engines together: what the API and the CLI validate with
#: (ImageOptions, with its validators, plus every PdfOptions field; extra keys forbidden).
CompressOptions: type[BaseModel] = create_model(
    "CompressOptions", __base__=ImageOptions, **_pdf_fields()
)
CompressOptions.__doc__ = ("Options for any file: the union of PdfOptions and ImageOptions "
                           "(see squeezer.engines.dispatch).")


def engine_for(kind: Kind) -> str:
    """``"pdf"`` or ``"image"`` for a sniffed file."""
    return "pdf" if kind.format == "pdf" else "image"


def split_options(options: Mapping[str, Any] | BaseModel | None,
                  engine: str) -> tuple[PdfOptions | ImageOptions, list[str]]:
    """The options ``engine`` runs with, and the names of the given keys it ignores."""
    if isinstance(options, PdfOptions):
        return (options, []) if engine == "pdf" else (ImageOptions(), [])
    if isinstance(options, ImageOptions) and not isinstance(options, CompressOptions):
        return (options, []) if engine == "image" else (PdfOptions(), [])
    if options is None:
        given: dict[str, Any] = {}
    elif isinstance(options, BaseModel):
        given = options.model_dump(exclude_unset=True)
    else:
        given = dict(CompressOptions.model_validate(dict(options)).model_dump(exclude_unset=True))
    model = PdfOptions if engine == "pdf" else ImageOptions
    own = {k: v for k, v in given.items() if k in model.model_fields}
    if engine == "pdf":
        if "preset" not in own and given.get("compression") is not None:
            own["preset"] = _PDF_FROM_IMAGE[_value(given["compression"])]
        if "image_quality" not in own and given.get("quality") is not None:
            own["image_quality"] = given["quality"]
        crossed = {"compression", "quality"}
    else:
        if "compression" not in own and given.get("preset") is not None:
            own["compression"] = _IMAGE_FROM_PDF[_value(given["preset"])]
        if "quality" not in own and given.get("image_quality") is not None:
            own["quality"] = given["image_quality"]
        crossed = {"preset", "image_quality"}
    ignored = sorted(k for k in given if k not in model.model_fields and k not in crossed
                     and not _is_default(k, given[k]))
    return model.model_validate(own), ignored


def _value(v: Any) -> str:
    return getattr(v, "value", v)


def _is_default(name: str, value: Any) -> bool:
    field = CompressOptions.model_fields.get(name)
    if field is None:
        return False
    default = field.get_default(call_default_factory=True)
    return _value(value) == _value(default) or value in (None, False, [], "")


def compress_any(
    src: str | Path,
    dst: str | Path,
    options: Mapping[str, Any] | BaseModel | None = None,
    *,
    limits: Limits | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> Report | ImageReport:
    """Compress ``src`` into ``dst`` with the engine its bytes call for.

    ``options``: a mapping (validated with :class:`CompressOptions`; a
    ``pydantic.ValidationError`` when invalid), a ``CompressOptions``, or one
    engine's own options model.  Returns that engine's report: a
    :class:`~squeezer.engines.report.Report` for a PDF, an
    :class:`~squeezer.engines.image.ImageReport` (``kind == "image"``, with
    ``format_out``) for an image.  The caller names ``dst``; for an image whose
    format may change, :func:`output_extension` gives the right extension
    before the run when it is known.
    """
    from squeezer.engines import image, pdf

    src = Path(src)
    limits = limits or DEFAULT_LIMITS
    input_size(src, limits.max_input_bytes)
    try:
        kind = sniff_file(src)
    except UnsupportedFormatError as exc:
        if exc.message != UNKNOWN:
            raise  # EPS/PostScript, gzip: refused outright
        kind = Kind("pdf")  # no signature: qpdf's recovery decides (a headerless PDF), else not_a_pdf
    engine = engine_for(kind)
    chosen, ignored = split_options(options, engine)
    if engine == "pdf":
        report: Report | ImageReport = pdf.compress(src, dst, chosen, limits=limits,
                                                    progress=progress)
    else:
        report = image.compress(src, dst, chosen, limits=limits, progress=progress)
    if ignored:
        report.warnings.append(f"options that do not apply to a {kind.format.upper()} were "
                               f"ignored: {', '.join(ignored)}")
    return report


def output_extension(src: str | Path, options: Mapping[str, Any] | BaseModel | None) -> str | None:
    """The extension (no dot) the output of ``src`` will have, or None when only the run can
    tell (``format: auto``).  Raises the sniffing errors (unsupported format)."""
    from squeezer.engines.image.sniff import EXTENSIONS

    kind = sniff_file(Path(src))
    if kind.format == "pdf":
        return "pdf"
    chosen, _ = split_options(options, "image")
    fmt = chosen.format.value
    if fmt == "keep" or kind.format == "svg":
        return kind.extension
    if fmt == "auto":
        return None
    return EXTENSIONS[fmt]
