"""PassportPDF's Reduce parameters as native options, with the warnings for what is not honoured."""

from __future__ import annotations

from typing import Any

from squeezer.api.errors import ApiError
from squeezer.api.jobflow import engine_options
from squeezer.engines.level import Level
from squeezer.engines.pdf.options import LEVELS, PdfOptions


def invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"invalid parameter {field}", code="invalid_parameter",
                    errors=[{"field": field, "message": message}])


# --- Reduce --------------------------------------------------------------------------------

#: PassportPDF ImageQuality -> (Squeezer level, fixed JPEG quality or None)
IMAGE_QUALITY = {"imagequalitylow": ("high", None), "imagequalitymedium": ("medium", None),
                 "imagequalityhigh": ("low", None), "imagequalityveryhigh": ("low", 90)}
#: PassportPDF Remove* flags that are Squeezer engine options of their own
REMOVALS = {"removeformfields": "remove_form_fields", "removeannotations": "remove_annotations",
            "removebookmarks": "remove_bookmarks", "removeembeddedfiles": "remove_embedded_files",
            "removejavascript": "remove_javascript", "removemetadata": "remove_metadata"}
#: PassportPDF's DownscaleResolutionMRC default (SDK ``PdfReduceParameters``)
MRC_RESOLUTION = 100
#: the MRC background resolutions the engine takes (``PdfOptions.mrc_background_dpi``)
MRC_BOUNDS = {k: getattr(m, k) for m in PdfOptions.model_fields["mrc_background_dpi"].metadata
               for k in ("ge", "le") if getattr(m, k, None) is not None}
MIN_MRC_BACKGROUND_DPI, MAX_MRC_BACKGROUND_DPI = MRC_BOUNDS["ge"], MRC_BOUNDS["le"]
OUTPUT_VERSIONS = {"pdfversionretainexisting", "pdfversion14", "pdfversion15", "pdfversion16",
                   "pdfversion17", "pdfversion20"}
NAMES = {n.lower(): n for n in (
    "FileId", "OutputVersion", "ImageQuality", "RecompressImages", "EnableColorDetection",
    "PackDocument", "PackFonts", "DownscaleImages", "DownscaleResolution", "FastWebView",
    "RemoveFormFields", "RemoveAnnotations", "RemoveBookmarks", "RemoveHyperlinks",
    "RemoveEmbeddedFiles", "RemoveBlankPages", "RemoveJavaScript", "EnableJPEG2000",
    "EnableJBIG2", "EnableCharRepair", "EnableMRC", "PreserveSmoothing",
    "DownscaleResolutionMRC", "RemoveMetadata", "RemovePageThumbnails", "RemovePagePieceInfo",
    "JBIG2PMSThreshold", "Password")}


def warning(code: str, message: str) -> dict[str, Any]:
    return {"WarningCode": code, "PageNumber": 0, "PageImageNumber": 0,
            "ExtWarningMessage": message}


def reduce_options(body: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """PassportPDF's Reduce parameters (lower-cased keys) as engine options, plus warnings.

    Every parameter is either honoured or accepted and reported in ``WarningsInfo``;
    docs/compat.md has the table.  Defaults are PassportPDF's (SDK
    ``PdfReduceParameters``): images recompressed and downscaled to 150 dpi.
    """
    warnings: list[dict[str, Any]] = []

    def flag(name: str, default: bool) -> bool:
        value = body.get(name.lower(), default)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if value in (0, 1):
            return bool(value)
        raise invalid(name, "must be true or false")

    def number(name: str, default: float, low: float, high: float) -> float:
        value = body.get(name.lower(), default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise invalid(name, f"must be a number from {low:g} to {high:g}")
        return value

    def given(name: str) -> bool:
        return name.lower() in body

    options: dict[str, Any] = {}
    quality = str(body.get("imagequality") or "ImageQualityMedium").lower()
    if quality not in IMAGE_QUALITY:
        raise invalid("ImageQuality", "one of ImageQualityLow, ImageQualityMedium, "
                       "ImageQualityHigh, ImageQualityVeryHigh")
    resolution = number("DownscaleResolution", 150, 1, 2400)
    mrc_resolution = number("DownscaleResolutionMRC", MRC_RESOLUTION, 1, 2400)
    number("JBIG2PMSThreshold", 0.85, 0, 1)
    if flag("RecompressImages", True):
        level, fixed = IMAGE_QUALITY[quality]
        options["level"] = level
        if fixed is not None:
            options["image_quality"] = fixed
        if flag("DownscaleImages", True):
            options["dpi"] = max(72, int(resolution))
            if resolution < 72:
                warnings.append(warning("ImageResizeFailure", f"DownscaleResolution "
                                         f"{resolution:g} is below Squeezer's floor: 72 dpi used"))
        else:
            options["dpi"] = 2400  # i.e. keep every image's resolution
    else:
        options["level"] = "lossless"
        if given("DownscaleImages") and flag("DownscaleImages", True):
            warnings.append(warning("ImageResizeFailure", "DownscaleImages needs "
                                     "RecompressImages: images were kept as they are"))
    for name, option in REMOVALS.items():
        if flag(name, False):
            options[option] = True
    if flag("FastWebView", False):
        options["linearize"] = True
    version = str(body.get("outputversion") or "PdfVersionRetainExisting").lower()
    if version not in OUTPUT_VERSIONS:
        raise invalid("OutputVersion", "one of PdfVersionRetainExisting, PdfVersion14…17, "
                       "PdfVersion20")
    if version != "pdfversionretainexisting":
        warnings.append(warning("OK", "OutputVersion is not honoured: the PDF version is the "
                                 "one the engine needs (usually the input's)"))
    if not flag("EnableColorDetection", True):
        options["color_detection"] = False
    if not flag("PackDocument", True):
        warnings.append(warning("OK", "PackDocument cannot be turned off: the document is "
                                 "always written with compressed object streams"))
    if not flag("PackFonts", True):
        warnings.append(warning("OK", "PackFonts cannot be turned off: embedded fonts are "
                                 "always deduplicated and subset"))
    if flag("RemoveHyperlinks", False) and not options.get("remove_annotations"):
        warnings.append(warning("OK", "RemoveHyperlinks is not supported on its own: links were"
                                 " kept (RemoveAnnotations removes them with every annotation)"))
    if flag("RemoveBlankPages", False):
        warnings.append(warning("BlankPageRemovalFailure", "RemoveBlankPages is not supported:"
                                 " Squeezer never removes pages"))
    for name in ("RemovePageThumbnails", "RemovePagePieceInfo"):
        if not flag(name, True):
            warnings.append(warning("OK", f"{name} cannot be turned off: page thumbnails and "
                                     "PieceInfo are always removed (they are never shown)"))
    if flag("EnableJPEG2000", False):
        warnings.append(warning("OK", "EnableJPEG2000 is not supported: photographic images "
                                 "are encoded as JPEG"))
    # EnableJBIG2 (PassportPDF's default: false) -> jbig2, set when the engine's default differs
    jbig2 = flag("EnableJBIG2", False)
    if jbig2 != PdfOptions.model_fields["jbig2"].default:
        options["jbig2"] = jbig2
    if jbig2 and given("JBIG2PMSThreshold"):
        warnings.append(warning("OK", "JBIG2PMSThreshold is ignored: 1-bit images are coded "
                                 "losslessly, never with JBIG2 pattern matching and "
                                 "substitution"))
    if flag("EnableCharRepair", False):
        options["char_repair"] = True
    # PassportPDF's EnableMRC defaults to false: MRC layers only when asked for, so a level
    # whose own default is MRC (high, for ImageQualityLow) gets mrc: false; PreserveSmoothing
    # and DownscaleResolutionMRC are MRC's knobs, validated either way
    smoothing = flag("PreserveSmoothing", False)
    mrc = flag("EnableMRC", False)
    if mrc or LEVELS[Level(options["level"])].mrc:
        options["mrc"] = mrc
    if mrc:
        background = min(max(int(mrc_resolution), MIN_MRC_BACKGROUND_DPI), MAX_MRC_BACKGROUND_DPI)
        options["mrc_background_dpi"] = background
        if not MIN_MRC_BACKGROUND_DPI <= mrc_resolution <= MAX_MRC_BACKGROUND_DPI:
            warnings.append(warning("ImageResizeFailure", f"DownscaleResolutionMRC "
                                     f"{mrc_resolution:g} is outside Squeezer's "
                                     f"{MIN_MRC_BACKGROUND_DPI}-{MAX_MRC_BACKGROUND_DPI} dpi: "
                                     f"{background} dpi used"))
        if smoothing:
            options["mrc_preserve_smoothing"] = True
    password = body.get("password")
    if password is not None:
        if not isinstance(password, str):
            raise invalid("Password", "must be a string")
        options["password"] = password
    for name in body:
        if name not in NAMES:
            warnings.append(warning("OK", f"unknown parameter {name!r} was ignored"))
    return engine_options(options), warnings
