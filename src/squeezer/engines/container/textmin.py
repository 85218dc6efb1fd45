"""Whitespace a format ignores, dropped: XML between elements, JSON between tokens.

XML (package parts of OOXML, ODF and EPUB): a whitespace-only text node is
dropped only where it cannot be content: between the children of an element
whose children are all elements (no character data of its own), outside any
``xml:space="preserve"`` scope, and outside the elements a format declares
mixed (ODF's paragraphs and headings, where whitespace between spans is a
space the reader shows).  Text-only elements (``w:t``, ``a:t``) are never
touched, whatever they hold.  The declaration is kept as written; documents with
a DOCTYPE or entity declarations, or not in UTF-8, are left alone.  lxml parses
without resolving entities or touching the network.

JSON: whitespace outside strings is removed by a tokenizer, so numbers, key
order, duplicate keys and escapes stay exactly as written; the result must
parse to the same value.
"""

from __future__ import annotations

import json
import re

_DECL = re.compile(rb"^(\xef\xbb\xbf)?(<\?xml[^>]*\?>)")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"
#: whitespace between two markup characters: what an ignorable text node looks like in the
#: bytes.  A part without any (Word and Excel write most on one line) has nothing to drop, and
#: is left without parsing: 1,703 package parts cost 2.9-3.4 CPU-s to parse and re-serialize
#: per bench run (issue 17)
_GAP = re.compile(rb">[ \t\r\n]+<")


def xml_whitespace(data: bytes, mixed: frozenset[str] = frozenset()) -> bytes | None:
    """``data`` without ignorable whitespace, or None when nothing can (safely) go."""
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data:
        return None
    decl = _DECL.match(data)
    if decl:
        enc = _ENCODING.search(decl.group(2))
        if enc and enc.group(1).lower().replace(b"_", b"-") not in (b"utf-8", b"utf8"):
            return None
    elif data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return None
    if not _GAP.search(data, decl.end() if decl else 0):
        return None  # no whitespace between tags (a char reference's is kept: conservative)
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                             strip_cdata=False, remove_blank_text=False, load_dtd=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if not _strip(root, mixed, preserve=False):
        return None
    body = etree.tostring(root.getroottree(), encoding="UTF-8", xml_declaration=False)
    prefix = b""
    if decl:
        prefix = (decl.group(1) or b"") + decl.group(2)
        after = data[decl.end():decl.end() + 2]
        if after.startswith(b"\r\n"):
            prefix += b"\r\n"
        elif after.startswith(b"\n"):
            prefix += b"\n"
    out = prefix + body
    return out if len(out) < len(data) else None


def _strip(el: object, mixed: frozenset[str], preserve: bool) -> bool:
    """Drop ignorable whitespace under ``el``; True when anything went."""
    changed = False
    tag = el.tag  # type: ignore[attr-defined]
    if not isinstance(tag, str):
        return False
    space = el.get(_XML_SPACE)  # type: ignore[attr-defined]
    if space == "preserve":
        preserve = True
    elif space == "default":
        preserve = False
    if tag in mixed:
        preserve = True
    children = list(el)  # type: ignore[call-overload]
    if children and not preserve:
        texts = [el.text] + [c.tail for c in children]  # type: ignore[attr-defined]
        if all(t is None or not t.strip() for t in texts):  # element-only content
            if el.text is not None:  # type: ignore[attr-defined]
                el.text = None  # type: ignore[attr-defined]
                changed = True
            for c in children:
                if c.tail is not None:
                    c.tail = None
                    changed = True
    for c in children:
        changed = _strip(c, mixed, preserve) or changed
    return changed


def json_whitespace(data: bytes) -> bytes | None:
    """``data`` with the whitespace between JSON tokens removed, or None."""
    try:
        text = data.decode("utf-8-sig")
        before = json.loads(text)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
        elif c in " \t\r\n":
            i += 1
        else:
            j = i
            while j < n and text[j] not in ' \t\r\n"':
                j += 1
            out.append(text[i:j])
            i = j
    result = "".join(out)
    try:
        if json.loads(result) != before:
            return None
    except (ValueError, RecursionError):
        return None
    encoded = result.encode("utf-8")
    return encoded if len(encoded) < len(data) else None
