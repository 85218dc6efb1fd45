"""EPUB 2 and 3: the package's rules (OCF 3.x, OPF).

- ``mimetype`` (``application/epub+zip``) is the first member, stored, without
  an extra field (epubcheck's PKG-005/PKG-006/PKG-007).
- ``META-INF/container.xml`` names the package document (OPF), whose manifest
  lists every resource by ``href`` and whose spine orders the content documents.
  Content documents refer to resources by relative URLs, so members keep their
  names here: images keep their format (the image engine's ``keep``).
- **Encrypted** resources (``META-INF/encryption.xml``: DRM or obfuscated
  fonts) and **signed** books (``META-INF/signatures.xml``) stay byte-identical
  (a signed book unless losing its signature is allowed).
- Images are brought down to a longest side per level (reflowable pages have
  no fixed size: :attr:`ArchiveLevel.ebook_max_side`); fonts are subset to the
  characters the book's documents, navigation and styles contain (every
  character of those files, upper and lower case, so nothing shown is lost).
- Members the manifest does not list (images, fonts, media left behind by an
  editor) are dropped above ``lossless``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from squeezer.engines.container.options import ArchiveSettings
from squeezer.engines.container.plan import Plan, dirname, normpath

CONTAINER_NS = "urn:oasis:names:tc:opendocument:xmlns:container"
OPF_NS = "http://www.idpf.org/2007/opf"
ENC_NS = "http://www.w3.org/2001/04/xmlenc#"
MIMETYPE = b"application/epub+zip"
_TEXT_TYPES = ("xhtml", "html", "htm", "ncx", "css", "svg", "opf", "xml", "smil")
_ENTITY = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")
#: characters always kept in a subset font (typographic ones a reading system may insert)
_ALWAYS = set(range(0x20, 0x7F)) | {0xA0, 0xAD, 0x2010, 0x2011, 0x2013, 0x2014, 0x2018, 0x2019,
                                    0x201C, 0x201D, 0x2026, 0xFFFD}
_DROPPABLE = {"jpeg", "png", "gif", "webp", "svg", "font", "media", "bmp", "tiff"}


def parse(data: bytes) -> object:
    from lxml import etree

    return etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True,
                                                  huge_tree=False))


@dataclass
class Package:
    opf: str
    items: dict[str, tuple[str, str]] = field(default_factory=dict)  #: id -> (member, type)
    spine: list[str] = field(default_factory=list)  #: idrefs


def package(parts: dict[str, bytes | None]) -> Package:
    """The OPF's manifest and spine (ValueError when the book's structure is broken)."""
    container = parts.get("META-INF/container.xml")
    if not container:
        raise ValueError("META-INF/container.xml is missing")
    root = parse(container)
    rootfile = root.find(f".//{{{CONTAINER_NS}}}rootfile")  # type: ignore[attr-defined]
    if rootfile is None or not rootfile.get("full-path"):
        raise ValueError("container.xml names no package document")
    opf = rootfile.get("full-path")
    data = parts.get(opf)
    if not data:
        raise ValueError(f"the package document {opf} is missing")
    doc = parse(data)
    pkg = Package(opf)
    base = dirname(opf)
    for item in doc.iter(f"{{{OPF_NS}}}item"):  # type: ignore[attr-defined]
        href = item.get("href", "")
        if "://" in href:
            continue
        pkg.items[item.get("id", "")] = (normpath(base, href), item.get("media-type", ""))
    pkg.spine = [i.get("idref", "") for i in doc.iter(f"{{{OPF_NS}}}itemref")]  # type: ignore[attr-defined]
    return pkg


def encrypted_members(parts: dict[str, bytes | None]) -> set[str]:
    data = parts.get("META-INF/encryption.xml")
    if not data:
        return set()
    try:
        root = parse(data)
    except Exception:  # noqa: BLE001 - unreadable: treat every member as encrypted
        return set(parts)
    return {normpath("", ref.get("URI", ""))
            for ref in root.iter(f"{{{ENC_NS}}}CipherReference")}  # type: ignore[attr-defined]


def is_signed(parts: dict[str, bytes | None]) -> bool:
    return "META-INF/signatures.xml" in parts


def plan(parts: dict[str, bytes | None], kinds: dict[str, str],
         settings: ArchiveSettings) -> Plan:
    p = Plan(first_stored="mimetype", max_side=settings.ebook_max_side)
    encrypted = encrypted_members(parts)
    for name in encrypted:
        if name in parts:
            p.keep_raw[name] = "encrypted or obfuscated (META-INF/encryption.xml)"
    try:
        pkg = package(parts)
    except Exception as exc:  # noqa: BLE001 - a broken book is re-packed, not restructured
        p.notes.append(f"the package document could not be read ({exc}); members are only "
                       "re-packed")
        return p
    p.xml_parts = {n for n in (pkg.opf, "META-INF/container.xml") if n in parts}
    p.xml_parts |= {m for m, t in pkg.items.values() if t == "application/x-dtbncx+xml"}
    if settings.drop_signatures and "META-INF/signatures.xml" in parts:
        p.drop["META-INF/signatures.xml"] = "signature removed (archive.drop_signatures)"
    listed = {m for m, _ in pkg.items.values()} | {pkg.opf}
    if settings.drop_unused:
        for name, kind in kinds.items():
            if (name not in listed and not name.startswith("META-INF/") and name != "mimetype"
                    and kind in _DROPPABLE and name not in encrypted):
                p.drop[name] = "not in the package manifest"
    if settings.subset_fonts:
        chars = used_characters(parts)
        for name, kind in kinds.items():
            if kind == "font" and name not in encrypted and name in listed:
                p.fonts[name] = chars
    return p


def used_characters(parts: dict[str, bytes | None]) -> set[int]:
    """Every character of the book's text files (markup included: a superset of what is
    shown), in both cases, plus typographic characters reading systems insert."""
    chars = set(_ALWAYS)
    for name, data in parts.items():
        if data is None or name.rsplit(".", 1)[-1].lower() not in _TEXT_TYPES:
            continue
        text = data.decode("utf-8", "replace")
        text = _ENTITY.sub(lambda m: chr(int(m.group(1)[1:], 16) if m.group(1)[0] in "xX"
                                         else int(m.group(1))), text)
        text = html.unescape(text)
        chars.update(map(ord, text))
        chars.update(map(ord, text.upper()))
        chars.update(map(ord, text.lower()))
    return chars


def check(parts: dict[str, bytes | None], first: str, first_stored: bool,
          first_extra: bool) -> str:
    """The checks epubcheck's package rules make, on the output; raises ValueError."""
    if first != "mimetype" or not first_stored or first_extra:
        raise ValueError("mimetype is not the first, stored member without extra field")
    if (parts.get("mimetype") or b"").strip() != MIMETYPE:
        raise ValueError("the mimetype member is not application/epub+zip")
    pkg = package(parts)
    missing = [m for m, _ in pkg.items.values() if m not in parts]
    if missing:
        raise ValueError(f"the manifest lists missing members: {missing[:5]}")
    unknown = [i for i in pkg.spine if i not in pkg.items]
    if unknown:
        raise ValueError(f"the spine names items not in the manifest: {unknown[:5]}")
    for idref in pkg.spine:
        member, kind = pkg.items[idref]
        data = parts.get(member)
        if data is not None and "xhtml" in kind:
            parse(data)  # content documents stay well-formed XML
    return (f"epub: {len(pkg.items)} manifest items present, {len(pkg.spine)} spine items "
            "resolve and parse")
