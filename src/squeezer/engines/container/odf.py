"""OpenDocument (ODT, ODS, ODP, ODG and templates): the package's rules.

ODF 1.2 part 3 (packages): ``mimetype`` is the first member, stored, without
an extra field; ``META-INF/manifest.xml`` lists every file with its media
type; documents refer to pictures by ``xlink:href`` relative to the package
root (``Pictures/10000000000003E8.png``).  So a picture may be renamed or merged
with an identical one when its manifest entry and every ``xlink:href`` follow.

- Whitespace in paragraphs and headings (``text:p``, ``text:h``) is content
  (ODF collapses it like HTML and shows one space); whitespace between other
  elements is not, and goes.
- **Signed** documents (``META-INF/documentsignatures.xml``,
  ``macrosignatures.xml``) stay byte-identical unless losing the signature is
  allowed; **macros** (``Basic/``, ``Scripts/``) always stay byte-identical;
  **encrypted** members (``manifest:encryption-data``) stay as they are.
- **Display sizes**: a ``draw:frame``'s ``svg:width``/``svg:height`` around a
  ``draw:image``; frames whose style crops the picture (``fo:clip``) and pictures
  used as fills have no known size and are not resized.
- **Unused pictures** and ``Thumbnails/`` are dropped above ``lossless``.
- **Embedded fonts** (LibreOffice's "Embed fonts in document": ``Fonts/*.ttf``
  named by a ``svg:font-face-uri`` in ``style:font-face``, ODF 1.2 part 1
  §16.21) are subset above ``lossless`` to every character of the package's XML
  text and attributes in both cases, plus ASCII and typographic characters (the
  same set as Word's embedded fonts); fonts whose licence bits forbid it, and
  encrypted ones, stay whole.  ODF has no "subsetted" flag: text typed later in
  characters the subset lacks falls back to another font, as it does in Word.
"""

from __future__ import annotations

import re

from squeezer.engines.container.options import ArchiveSettings
from squeezer.engines.container.plan import Plan

MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
TEXT_NS = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
DRAW_NS = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
SVG_NS = "urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0"
STYLE_NS = "urn:oasis:names:tc:opendocument:xmlns:style:1.0"
FO_NS = "urn:oasis:names:tc:opendocument:xmlns:xsl-fo-compatible:1.0"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
MIXED = frozenset({f"{{{TEXT_NS}}}p", f"{{{TEXT_NS}}}h"})
SIGNATURES = ("META-INF/documentsignatures.xml", "META-INF/macrosignatures.xml")
_UNITS = {"in": 1.0, "cm": 1 / 2.54, "mm": 1 / 25.4, "pt": 1 / 72, "pc": 1 / 6, "px": 1 / 96}
_LENGTH = re.compile(r"^\s*([0-9.]+)\s*(in|cm|mm|pt|pc|px)\s*$")
MEDIA_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg",
               "gif": "image/gif", "bmp": "image/bmp", "tif": "image/tiff",
               "tiff": "image/tiff", "svg": "image/svg+xml"}


def parse(data: bytes) -> object:
    from lxml import etree

    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True,
                                                  huge_tree=True))


def is_signed(parts: dict[str, bytes | None]) -> bool:
    return any(name in parts for name in SIGNATURES)


def encrypted_members(parts: dict[str, bytes | None]) -> set[str]:
    data = parts.get("META-INF/manifest.xml")
    if not data:
        return set()
    try:
        root = parse(data)
    except Exception:  # noqa: BLE001 - an unreadable manifest: verification says so
        return set()
    out = set()
    for entry in root.iter(f"{{{MANIFEST_NS}}}file-entry"):  # type: ignore[attr-defined]
        if entry.find(f"{{{MANIFEST_NS}}}encryption-data") is not None:
            out.add(entry.get(f"{{{MANIFEST_NS}}}full-path", ""))
    return out


def _xml_parts(parts: dict[str, bytes | None]) -> list[str]:
    return [n for n in parts if n.endswith(".xml") and not n.startswith("META-INF/")
            and parts[n] is not None]


def plan(parts: dict[str, bytes | None], settings: ArchiveSettings) -> Plan:
    p = Plan(may_rename=True, dedupe=True, first_stored="mimetype", mixed=MIXED)
    encrypted = encrypted_members(parts)
    for name in parts:
        if name in encrypted:
            p.keep_raw[name] = "encrypted"
        elif name.startswith(("Basic/", "Scripts/")):
            p.keep_raw[name] = "macro (byte-identical)"
        elif name.endswith(".xml") and name not in SIGNATURES:
            p.xml_parts.add(name)
    if settings.drop_signatures:
        for name in SIGNATURES:
            if name in parts:
                p.drop[name] = "signature removed (archive.drop_signatures)"
    used = references(parts)
    if settings.drop_unused:
        for name in parts:
            if name.startswith("Thumbnails/") and not name.endswith("/"):
                p.drop[name] = "thumbnail"
            elif name.startswith("Pictures/") and not name.endswith("/") and name not in used:
                p.drop[name] = "unused picture (nothing refers to it)"
    if settings.display_dpi:
        p.display = display_sizes(parts)
    if settings.subset_fonts:
        _embedded_fonts(parts, p)
    return p


def _embedded_fonts(parts: dict[str, bytes | None], p: Plan) -> None:
    """Fonts named by a ``svg:font-face-uri`` that may be subset, with the characters to keep."""
    found: set[str] = set()
    for name in _xml_parts(parts):
        data = parts[name]
        if data is None or b"font-face-uri" not in data:
            continue
        try:
            root = parse(data)
        except Exception:  # noqa: BLE001, S112 - an unreadable part: its fonts stay whole
            continue
        for el in root.iter(f"{{{SVG_NS}}}font-face-uri"):  # type: ignore[attr-defined]
            href = el.get(XLINK_HREF)
            if href and "://" not in href:
                target = _member(href, "")
                if parts.get(target) is not None and target not in p.keep_raw:
                    found.add(target)
    if found:
        from squeezer.engines.container.ooxml import package_characters

        chars = package_characters(parts)
        for target in found:
            p.fonts[target] = chars


def references(parts: dict[str, bytes | None]) -> set[str]:
    """Every package member an ``xlink:href`` in the documents' XML names."""
    out: set[str] = set()
    for name in _xml_parts(parts):
        data = parts[name]
        if data is None or b"href" not in data:
            continue
        base = name.rsplit("/", 1)[0] + "/" if "/" in name else ""
        try:
            root = parse(data)
        except Exception:  # noqa: BLE001 - an unreadable part: keep every picture
            return set(parts)
        for el in root.iter():  # type: ignore[attr-defined]
            href = el.get(XLINK_HREF) if isinstance(el.tag, str) else None
            if href and "://" not in href:
                out.add(_member(href, base))
                out.add(_member(href, ""))
    return out


def _member(href: str, base: str) -> str:
    from squeezer.engines.container.plan import normpath

    return normpath(base.rstrip("/"), href)


def _length(value: str | None) -> float | None:
    m = _LENGTH.match(value or "")
    return float(m.group(1)) * _UNITS[m.group(2)] if m else None


def display_sizes(parts: dict[str, bytes | None]) -> dict[str, tuple[float, float]]:
    sizes: dict[str, tuple[float, float]] = {}
    unknown: set[str] = set()
    for name in _xml_parts(parts):
        data = parts[name]
        if data is None or b"href" not in data:
            continue
        try:
            root = parse(data)
        except Exception:  # noqa: BLE001 - unreadable: its pictures keep their size
            return {}
        clipped = _clipped_styles(root)
        for el in root.iter():  # type: ignore[attr-defined]
            if not isinstance(el.tag, str):
                continue
            href = el.get(XLINK_HREF)
            if not href or "://" in href:
                continue
            target = _member(href, "")
            frame = el.getparent()
            if el.tag != f"{{{DRAW_NS}}}image" or frame is None or \
                    frame.tag != f"{{{DRAW_NS}}}frame" or \
                    frame.get(f"{{{DRAW_NS}}}style-name") in clipped:
                unknown.add(target)
                continue
            w = _length(frame.get(f"{{{SVG_NS}}}width"))
            h = _length(frame.get(f"{{{SVG_NS}}}height"))
            if not w or not h:
                unknown.add(target)
                continue
            old = sizes.get(target, (0.0, 0.0))
            sizes[target] = (max(old[0], w), max(old[1], h))
    return {k: v for k, v in sizes.items() if k not in unknown}


def _clipped_styles(root: object) -> set[str]:
    out = set()
    for style in root.iter(f"{{{STYLE_NS}}}style"):  # type: ignore[attr-defined]
        props = style.find(f"{{{STYLE_NS}}}graphic-properties")
        clip = props.get(f"{{{FO_NS}}}clip") if props is not None else None
        if clip and re.search(r"[1-9]", clip):
            out.add(style.get(f"{{{STYLE_NS}}}name", ""))
    return out


def retarget(parts: dict[str, bytes | None], renames: dict[str, str], merges: dict[str, str],
             removed: set[str]) -> dict[str, bytes]:
    """Updated documents and manifest after pictures were renamed, merged or removed."""
    moves = {**renames, **merges}
    changed: dict[str, bytes] = {}
    if moves:
        for name in _xml_parts(parts):
            data = parts[name]
            if data is None or b"href" not in data:
                continue
            root = parse(data)
            dirty = False
            for el in root.iter():  # type: ignore[attr-defined]
                href = el.get(XLINK_HREF) if isinstance(el.tag, str) else None
                if not href or "://" in href:
                    continue
                target = _member(href, "")
                if target in moves:
                    el.set(XLINK_HREF, ("./" if href.startswith("./") else "") + moves[target])
                    dirty = True
            if dirty:
                changed[name] = _serialise(data, root)
    manifest = parts.get("META-INF/manifest.xml")
    if manifest is not None and (moves or removed):
        root = parse(manifest)
        key = f"{{{MANIFEST_NS}}}full-path"
        for entry in list(root.iter(f"{{{MANIFEST_NS}}}file-entry")):  # type: ignore[attr-defined]
            path = entry.get(key, "")
            if path in renames:
                entry.set(key, renames[path])
                ext = renames[path].rsplit(".", 1)[-1].lower()
                if ext in MEDIA_TYPES:
                    entry.set(f"{{{MANIFEST_NS}}}media-type", MEDIA_TYPES[ext])
            elif path in merges or path in removed:
                entry.getparent().remove(entry)
        changed["META-INF/manifest.xml"] = _serialise(manifest, root)
    return changed


_DECL = re.compile(rb"^(\xef\xbb\xbf)?<\?xml[^>]*\?>\s*")


def _serialise(original: bytes, root: object) -> bytes:
    from lxml import etree

    decl = _DECL.match(original)
    return (decl.group(0) if decl else b"") + etree.tostring(root, encoding="UTF-8",
                                                             xml_declaration=False)
