"""The container formats the engine takes: canonical name, file extension, media type.

One table, read by :mod:`squeezer.engines.sniff` (``EXTENSIONS``, ``MIME``,
``ALIASES``) so the service names and types a result by it, and by the engine to
know which family of rules (:data:`FAMILY`) a format follows.
"""

from __future__ import annotations

_OOXML = "application/vnd.openxmlformats-officedocument."
_ODF = "application/vnd.oasis.opendocument."

#: name -> (extension, media type, rule family); media types are unique (the service finds a
#: result's format from its type), so compressed tars have freedesktop.org's own types
FORMATS: dict[str, tuple[str, str, str]] = {
    "docx": ("docx", _OOXML + "wordprocessingml.document", "ooxml"),
    "docm": ("docm", "application/vnd.ms-word.document.macroEnabled.12", "ooxml"),
    "dotx": ("dotx", _OOXML + "wordprocessingml.template", "ooxml"),
    "xlsx": ("xlsx", _OOXML + "spreadsheetml.sheet", "ooxml"),
    "xlsm": ("xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12", "ooxml"),
    "xltx": ("xltx", _OOXML + "spreadsheetml.template", "ooxml"),
    "pptx": ("pptx", _OOXML + "presentationml.presentation", "ooxml"),
    "pptm": ("pptm", "application/vnd.ms-powerpoint.presentation.macroEnabled.12", "ooxml"),
    "ppsx": ("ppsx", _OOXML + "presentationml.slideshow", "ooxml"),
    "potx": ("potx", _OOXML + "presentationml.template", "ooxml"),
    "odt": ("odt", _ODF + "text", "odf"),
    "ods": ("ods", _ODF + "spreadsheet", "odf"),
    "odp": ("odp", _ODF + "presentation", "odf"),
    "odg": ("odg", _ODF + "graphics", "odf"),
    "ott": ("ott", _ODF + "text-template", "odf"),
    "ots": ("ots", _ODF + "spreadsheet-template", "odf"),
    "otp": ("otp", _ODF + "presentation-template", "odf"),
    "epub": ("epub", "application/epub+zip", "epub"),
    "zip": ("zip", "application/zip", "zip"),
    "jar": ("jar", "application/java-archive", "zip"),
    "apk": ("apk", "application/vnd.android.package-archive", "zip"),
    "tar": ("tar", "application/x-tar", "tar"),
    "tar.gz": ("tar.gz", "application/x-compressed-tar", "tar"),
    "tar.xz": ("tar.xz", "application/x-xz-compressed-tar", "tar"),
    "tar.zst": ("tar.zst", "application/x-zstd-compressed-tar", "tar"),
    "tar.bz2": ("tar.bz2", "application/x-bzip-compressed-tar", "tar"),
    "gz": ("gz", "application/gzip", "single"),
    "xz": ("xz", "application/x-xz", "single"),
    "zst": ("zst", "application/zstd", "single"),
    "7z": ("7z", "application/x-7z-compressed", "7z"),
}

#: extensions users give these formats besides the canonical one (kept in output names)
ALIASES: dict[str, set[str]] = {
    "zip": {"zip", "cbz", "xpi", "whl", "nupkg", "war", "ear", "aar", "ipa", "crx", "kmz",
            "sketch", "vsix", "xps", "oxps", "3mf"},
    "jar": {"jar", "war", "ear"},
    "tar.gz": {"tgz", "gz", "tar.gz"},
    "tar.xz": {"txz", "xz", "tar.xz"},
    "tar.zst": {"tzst", "zst", "tar.zst"},
    "tar.bz2": {"tbz2", "tbz", "bz2", "tar.bz2"},
    "gz": {"gz", "svgz", "gzip"},
    "epub": {"epub", "kepub"},
}

#: ODF ``mimetype`` member contents -> format
ODF_MIMETYPES = {mime: name for name, (_, mime, family) in FORMATS.items() if family == "odf"}
#: OOXML main part content types -> format
OOXML_MAIN = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": "docx",
    "application/vnd.ms-word.document.macroEnabled.main+xml": "docm",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml": "dotx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroEnabled.main+xml": "xlsm",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml": "xltx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml": "pptx",
    "application/vnd.ms-powerpoint.presentation.macroEnabled.main+xml": "pptm",
    "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml": "ppsx",
    "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml": "potx",
}


def family(name: str) -> str:
    """``ooxml``, ``odf``, ``epub``, ``zip``, ``tar``, ``single`` or ``7z``."""
    return FORMATS[name][2]


def is_container(name: str) -> bool:
    return name in FORMATS
