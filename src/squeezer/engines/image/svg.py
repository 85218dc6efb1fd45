"""SVG optimised as text with Scour: editor metadata out, numbers minified, rendering kept.

Scour removes comments, ``<metadata>``, Inkscape/Sodipodi/Illustrator
namespaced elements and attributes, default attribute values, empty groups,
and rewrites path data and colours in their shortest equivalent form.  IDs are
never renamed or removed (a sprite's ``file.svg#icon`` and external CSS
depend on them).  Coordinates are rounded to a number of *significant* digits
that depends on the level (``ImageLevel.svg_precision``): 10 for
``lossless`` and 8 for ``low`` (no visible difference at any zoom a viewer
offers), 6 for ``medium`` (a 1000-unit drawing moves by at most 0.005 units),
5 for ``high`` and 4 for ``extreme``.

Hostile XML is refused before parsing: a document type with entity
declarations (billion laughs, external entities) is an error, not a file to
expand.
"""

from __future__ import annotations

import re

from squeezer.engines.errors import DamagedImageError, UnsupportedFormatError

_ENTITY = re.compile(rb"<!ENTITY", re.IGNORECASE)


def optimize(data: bytes, digits: int) -> bytes:
    """``data`` optimised by Scour, coordinates kept to ``digits`` significant digits."""
    if _ENTITY.search(data):
        raise UnsupportedFormatError("an SVG with XML entity declarations is refused "
                                     "(entities are how XML bombs and file disclosure work)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DamagedImageError("the SVG is not UTF-8 text") from None
    from scour import scour

    options = scour.parse_args([
        "--quiet", "--enable-comment-stripping", "--remove-metadata", "--strip-xml-prolog",
        "--no-line-breaks", "--indent=none", f"--set-precision={digits}",
        f"--set-c-precision={digits}", "--keep-unreferenced-defs",
        "--protect-ids-noninkscape",
    ])
    try:
        out = scour.scourString(text, options)
    except Exception as exc:  # noqa: BLE001 - expat and scour errors alike: not a valid SVG
        raise DamagedImageError(f"the SVG cannot be parsed: {exc}") from None
    return out.encode("utf-8")


def check(data: bytes) -> None:
    """The output parses as XML with an ``svg`` root (else it is not used)."""
    import xml.etree.ElementTree as ET

    root = ET.fromstring(data)
    if not root.tag.endswith("svg"):
        raise ValueError("no svg root")
