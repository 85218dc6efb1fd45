"""Office Open XML (DOCX, XLSX, PPTX and their macro-enabled kin): the package's rules.

The package (ECMA-376 part 2, Open Packaging Conventions) ties parts together
by ``[Content_Types].xml`` (a type per extension, or per part) and
relationship parts (``_rels/*.rels``) whose targets are relative part names.
So a part may be renamed (a photo saved as PNG becomes ``image3.jpeg``) when
every relationship targeting it and its content type follow, and identical
media may be merged by pointing every relationship at one part.

- **VBA** (``vbaProject.bin``, its signature, ``vbaData.xml``) and ActiveX
  binaries stay byte-identical: macro signatures cover their bytes.
- **Signed** packages (``_xmlsignatures/``) stay byte-identical unless the
  caller allows losing the signature; then the signature parts, their
  relationship and their content types are removed.
- **Display sizes** come from DrawingML: each ``a:blip`` that embeds an image
  lies in a ``wp:inline``/``wp:anchor`` with a ``wp:extent`` (WordprocessingML)
  or in a picture/shape whose ``spPr/a:xfrm/a:ext`` gives its size (pictures
  in slides, drawings of sheets); slide backgrounds are the slide's size.
  Extents are EMUs (914,400 per inch); a ``a:srcRect`` crop shows only part of
  the image, so the whole image is scaled up accordingly.  An image used
  anywhere else (VML, charts, tiled fills) has no known size and is not resized.
- **Unused media** (no relationship targets it) and the package **thumbnail**
  are dropped above ``lossless``.
- **Embedded fonts** of a Word document (``w:embedRegular`` … in
  ``word/fontTable.xml``, obfuscated ``.odttf`` parts keyed by ``w:fontKey``)
  are subset above ``lossless`` to every character of the package's text (and
  ASCII), and marked ``w:subsetted="1"``, as Word's own "embed only the
  characters used" does; fonts whose licence bits forbid it stay whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from squeezer.engines.container.options import ArchiveSettings
from squeezer.engines.container.plan import Plan, dirname, normpath, relative

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
A_NS = "http://schemas.openxmlformats.org/drawingml/2006/main"
WP_NS = "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing"
P_NS = "http://schemas.openxmlformats.org/presentationml/2006/main"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_EMBEDS = ("embedRegular", "embedBold", "embedItalic", "embedBoldItalic")
THUMBNAIL = "http://schemas.openxmlformats.org/package/2006/relationships/metadata/thumbnail"
SIGNATURE_ORIGIN = ("http://schemas.openxmlformats.org/package/2006/relationships/"
                    "digital-signature/origin")
EMU_PER_INCH = 914_400
#: content types whose parts stay byte-identical
RAW_TYPES = ("vbaProject", "vbaData", "activeX", "vbaProjectSignature")
IMAGE_EXT_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "jpg": "image/jpeg",
                   "gif": "image/gif", "bmp": "image/bmp", "tiff": "image/tiff",
                   "tif": "image/tiff", "emf": "image/x-emf", "wmf": "image/x-wmf",
                   "svg": "image/svg+xml", "webp": "image/webp"}


def _parser() -> object:
    from lxml import etree

    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def parse(data: bytes) -> object:
    from lxml import etree

    return etree.fromstring(data, _parser())


@dataclass
class Rel:
    source: str  #: the part the relationship belongs to ("" for the package)
    rels_name: str  #: the .rels part
    rid: str
    type: str
    target: str  #: resolved part name ("" for an external target)


def rels_source(rels_name: str) -> str:
    """``word/_rels/document.xml.rels`` -> ``word/document.xml``; ``_rels/.rels`` -> ``""``."""
    folder, _, base = rels_name.rpartition("_rels/")
    return (folder + base[:-len(".rels")]).rstrip("/") if base != ".rels" else folder.rstrip("/")


def relationships(parts: dict[str, bytes | None]) -> list[Rel]:
    out: list[Rel] = []
    for name, data in parts.items():
        if not name.endswith(".rels") or "_rels/" not in name or data is None:
            continue
        source = rels_source(name)
        try:
            root = parse(data)
        except Exception:  # noqa: BLE001, S112 - a broken .rels is left as it is
            continue
        for rel in root.iter(f"{{{REL_NS}}}Relationship"):  # type: ignore[attr-defined]
            target = rel.get("Target", "")
            external = rel.get("TargetMode") == "External"
            resolved = "" if external else normpath(dirname(source), target)
            out.append(Rel(source, name, rel.get("Id", ""), rel.get("Type", ""), resolved))
    return out


def content_types(data: bytes) -> tuple[dict[str, str], dict[str, str]]:
    """``(defaults by extension, overrides by part name)`` of ``[Content_Types].xml``."""
    root = parse(data)
    defaults = {d.get("Extension", "").lower(): d.get("ContentType", "")
                for d in root.iter(f"{{{CT_NS}}}Default")}  # type: ignore[attr-defined]
    overrides = {d.get("PartName", "").lstrip("/"): d.get("ContentType", "")
                 for d in root.iter(f"{{{CT_NS}}}Override")}  # type: ignore[attr-defined]
    return defaults, overrides


def type_of(name: str, defaults: dict[str, str], overrides: dict[str, str]) -> str:
    if name in overrides:
        return overrides[name]
    return defaults.get(name.rsplit(".", 1)[-1].lower(), "")


def is_signed(parts: dict[str, bytes | None]) -> bool:
    return any(n.startswith("_xmlsignatures/") for n in parts)


def plan(parts: dict[str, bytes | None], settings: ArchiveSettings) -> Plan:
    p = Plan(may_rename=True, dedupe=True)
    ct = parts.get("[Content_Types].xml")
    defaults, overrides = content_types(ct) if ct else ({}, {})
    for name in parts:
        kind = type_of(name, defaults, overrides)
        if any(t in kind for t in RAW_TYPES) or name.lower().endswith(
                ("vbaproject.bin", "vbaprojectsignature.bin", "vbadata.xml")):
            p.keep_raw[name] = "VBA/ActiveX part (byte-identical)"
        elif name.endswith((".xml", ".rels")) and not name.startswith("customXml/"):
            p.xml_parts.add(name)
    rels = relationships(parts)
    if settings.drop_signatures:
        for name in parts:
            if name.startswith("_xmlsignatures/"):
                p.drop[name] = "signature removed (archive.drop_signatures)"
    targets = {r.target for r in rels if r.target}
    if settings.drop_unused:
        for r in rels:
            if r.type == THUMBNAIL and r.source == "" and r.target in parts:
                p.drop[r.target] = "thumbnail"
        for name in parts:
            if _is_media(name, defaults, overrides) and name not in targets and name not in p.drop:
                p.drop[name] = "unused media (no relationship targets it)"
    if settings.display_dpi:
        p.display = display_sizes(parts, rels)
    if settings.subset_fonts:
        _embedded_fonts(parts, rels, p)
    return p


def _embed_elements(root: Any) -> Iterator[Any]:
    for tag in _EMBEDS:
        yield from root.iter(f"{{{W_NS}}}{tag}")


def _embedded_fonts(parts: dict[str, bytes | None], rels: list[Rel], p: Plan) -> None:
    """Word's embedded fonts that may be subset, with their keys and the characters to keep."""
    from squeezer.engines.container import fonts

    tables = [n for n in parts if n.endswith("fontTable.xml") and parts[n]]
    found: dict[str, bytes] = {}
    for table in tables:
        targets = {r.rid: r.target for r in rels if r.source == table and r.target}
        try:
            root = parse(parts[table] or b"")
        except Exception:  # noqa: BLE001, S112 - an unreadable font table: fonts stay whole
            continue
        for el in _embed_elements(root):
            target = targets.get(el.get(f"{{{R_NS}}}id", ""))
            key = fonts.font_key(el.get(f"{{{W_NS}}}fontKey", "{" + "0" * 32 + "}"))
            if target in parts and key is not None and target not in p.keep_raw:
                found[target] = key
    if not found:
        return
    chars = package_characters(parts)
    for target, key in found.items():
        p.fonts[target] = chars
        p.font_keys[target] = key


#: kept in every subset: ASCII (fields such as page numbers and dates are laid out again by
#: Word) and the typographic characters Word's AutoCorrect inserts
_ALWAYS = set(range(0x20, 0x7F)) | {0xA0, 0xAD, 0x2010, 0x2011, 0x2013, 0x2014, 0x2018, 0x2019,
                                    0x201C, 0x201D, 0x2022, 0x2026, 0x20AC, 0xFFFD}


def package_characters(parts: dict[str, bytes | None]) -> set[int]:
    """Every character of every text node and attribute of the package's XML parts, in both
    cases (a superset of what the document shows, whatever the part)."""
    chars = set(_ALWAYS)
    for name, data in parts.items():
        if data is None or not name.endswith(".xml"):
            continue
        try:
            root: Any = parse(data)
        except Exception:  # noqa: BLE001, S112 - not XML: no text of ours
            continue
        for el in root.iter():
            for text in (el.text, el.tail, *el.attrib.values()):
                if text:
                    chars.update(map(ord, text))
                    chars.update(map(ord, text.upper()))
                    chars.update(map(ord, text.lower()))
    return chars


def mark_subsetted(table: str, data: bytes, subset: set[str],
                   parts: dict[str, bytes | None]) -> bytes | None:
    """``data`` (a font table) with ``w:subsetted="1"`` on the embeds of fonts now subset;
    None when none of its embeds changed."""
    targets = {r.rid: r.target for r in relationships(parts) if r.source == table}
    root: Any = parse(data)
    dirty = False
    for el in _embed_elements(root):
        if targets.get(el.get(f"{{{R_NS}}}id", "")) in subset:
            el.set(f"{{{W_NS}}}subsetted", "1")
            dirty = True
    return _serialise(data, root) if dirty else None


def _is_media(name: str, defaults: dict[str, str], overrides: dict[str, str]) -> bool:
    kind = type_of(name, defaults, overrides)
    return "/media/" in f"/{name}" and (kind.startswith(("image/", "video/", "audio/")) or
                                         kind == "")


def display_sizes(parts: dict[str, bytes | None],
                  rels: list[Rel]) -> dict[str, tuple[float, float]]:
    """Image part -> the largest (width, height) in inches any use shows it at; images with a
    use whose size is unknown are left out (never resized)."""
    by_source: dict[str, dict[str, str]] = {}
    for r in rels:
        if r.target:
            by_source.setdefault(r.source, {})[r.rid] = r.target
    slide_size = _slide_size(parts)
    sizes: dict[str, tuple[float, float]] = {}
    unknown: set[str] = set()
    for source, ids in by_source.items():
        data = parts.get(source)
        images = {rid: t for rid, t in ids.items() if t.rsplit(".", 1)[-1].lower() in
                  IMAGE_EXT_TYPES}
        if not images:
            continue
        if data is None or not source.endswith(".xml"):
            unknown.update(images.values())
            continue
        try:
            root = parse(data)
        except Exception:  # noqa: BLE001 - an unreadable part: its images keep their size
            unknown.update(images.values())
            continue
        for el, rid in _references(root, set(images)):
            target = images[rid]
            size = _extent(el, slide_size)
            if size is None:
                unknown.add(target)
                continue
            w, h = sizes.get(target, (0.0, 0.0))
            sizes[target] = (max(w, size[0]), max(h, size[1]))
    return {k: v for k, v in sizes.items() if k not in unknown}


def _references(root: object, ids: set[str]) -> Iterator[tuple[object, str]]:
    """Every element with an attribute in the relationships namespace naming one of ``ids``."""
    prefix = f"{{{R_NS}}}"
    for el in root.iter():  # type: ignore[attr-defined]
        if not isinstance(el.tag, str):
            continue
        for key, value in el.attrib.items():
            if key.startswith(prefix) and value in ids:
                yield el, value


def _slide_size(parts: dict[str, bytes | None]) -> tuple[float, float] | None:
    data = parts.get("ppt/presentation.xml")
    if not data:
        return None
    try:
        size = parse(data).find(f"{{{P_NS}}}sldSz")  # type: ignore[attr-defined]
        return int(size.get("cx")) / EMU_PER_INCH, int(size.get("cy")) / EMU_PER_INCH
    except Exception:  # noqa: BLE001 - no slide size: backgrounds keep their size
        return None


def _extent(el: object, slide: tuple[float, float] | None) -> tuple[float, float] | None:
    """The size (inches) a ``a:blip`` is drawn at, scaled up by its crop; None if unknown."""
    if el.tag != f"{{{A_NS}}}blip":  # type: ignore[attr-defined]
        return None
    fill = el.getparent()  # type: ignore[attr-defined]
    if fill is None or fill.find(f"{{{A_NS}}}tile") is not None:
        return None
    crop_w = crop_h = 1.0
    src = fill.find(f"{{{A_NS}}}srcRect")
    if src is not None:
        try:
            l, t, r, b = (int(src.get(k, "0")) / 100_000 for k in ("l", "t", "r", "b"))
        except ValueError:
            return None
        crop_w, crop_h = 1 - l - r, 1 - t - b
        if crop_w <= 0.01 or crop_h <= 0.01:
            return None
    node = fill.getparent()
    while node is not None:
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in (f"{{{WP_NS}}}inline", f"{{{WP_NS}}}anchor"):
            ext = node.find(f"{{{WP_NS}}}extent")
            return _emu(ext, crop_w, crop_h)
        if tag.endswith("}bg") and slide is not None:
            return slide[0] / crop_w, slide[1] / crop_h
        for child in node:
            if isinstance(child.tag, str) and child.tag.endswith("}spPr"):
                xfrm = child.find(f"{{{A_NS}}}xfrm")
                if xfrm is not None:
                    return _emu(xfrm.find(f"{{{A_NS}}}ext"), crop_w, crop_h)
        node = node.getparent()
    return None


def _emu(ext: object, crop_w: float, crop_h: float) -> tuple[float, float] | None:
    if ext is None:
        return None
    try:
        cx, cy = int(ext.get("cx")), int(ext.get("cy"))  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    if cx <= 0 or cy <= 0:
        return None
    return cx / EMU_PER_INCH / crop_w, cy / EMU_PER_INCH / crop_h


# --- renames, merges and removals: every reference follows -----------------------------------


def retarget(parts: dict[str, bytes | None], renames: dict[str, str], merges: dict[str, str],
             removed: set[str]) -> dict[str, bytes]:
    """Updated ``[Content_Types].xml`` and ``.rels`` parts after members were renamed (old ->
    new name), merged into an identical part (duplicate -> kept part) or removed.

    Relationships to a removed part are deleted (a thumbnail, a signature); content
    types follow renamed and removed parts.
    """
    from lxml import etree

    moves = {**renames, **merges}
    changed: dict[str, bytes] = {}
    for name, data in parts.items():
        if not name.endswith(".rels") or "_rels/" not in name or data is None:
            continue
        source = rels_source(name)
        root = parse(data)
        dirty = False
        for rel in list(root.iter(f"{{{REL_NS}}}Relationship")):  # type: ignore[attr-defined]
            if rel.get("TargetMode") == "External":
                continue
            target = normpath(dirname(source), rel.get("Target", ""))
            if target in removed:
                rel.getparent().remove(rel)
                dirty = True
            elif target in moves:
                old = rel.get("Target", "")
                new = moves[target]
                rel.set("Target", "/" + new if old.startswith("/") else
                        relative(dirname(source), new))
                dirty = True
        if dirty:
            changed[name] = _serialise(data, root)
    ct = parts.get("[Content_Types].xml")
    if ct is not None and (moves or removed):
        types: Any = parse(ct)
        defaults = {d.get("Extension", "").lower()
                    for d in types.iter(f"{{{CT_NS}}}Default")}
        for o in list(types.iter(f"{{{CT_NS}}}Override")):
            part = o.get("PartName", "").lstrip("/")
            if part in renames:
                new = renames[part]
                o.set("PartName", "/" + new)
                ext = new.rsplit(".", 1)[-1].lower()
                if ext in IMAGE_EXT_TYPES:
                    o.set("ContentType", IMAGE_EXT_TYPES[ext])
            elif part in merges or part in removed:
                types.remove(o)
        for new in renames.values():
            ext = new.rsplit(".", 1)[-1].lower()
            if ext not in defaults and ext in IMAGE_EXT_TYPES:
                default = etree.Element(f"{{{CT_NS}}}Default")
                default.set("Extension", ext)
                default.set("ContentType", IMAGE_EXT_TYPES[ext])
                types.insert(0, default)
                defaults.add(ext)
        changed["[Content_Types].xml"] = _serialise(ct, types)
    return changed


_DECL = re.compile(rb"^(\xef\xbb\xbf)?<\?xml[^>]*\?>\s*")


def _serialise(original: bytes, root: object) -> bytes:
    from lxml import etree

    decl = _DECL.match(original)
    body = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    return (decl.group(0) if decl else b"") + body


def drop_signature_rels(parts: dict[str, bytes | None]) -> set[str]:
    """The signature origin part names (their relationships go with :func:`retarget`)."""
    return {r.target for r in relationships(parts) if r.type == SIGNATURE_ORIGIN and r.target}
