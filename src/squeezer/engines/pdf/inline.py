"""Inline images (``BI … ID … EI`` in a content stream) become image XObjects.

The image step works on image XObjects only; an inline image is part of the
content stream that draws it, so a 1.5 MB uncompressed picture written inline
stayed 1.5 MB.  Here each large inline image of a page or form XObject
becomes an image XObject with the same dictionary (abbreviations expanded,
named colour spaces resolved through the resources, ISO 32000-1 §8.9.7), and
its ``BI … EI`` is replaced by ``/Name Do``, which draws the same unit square
under the same matrix.  The image step then recompresses it like any other
image.  Nothing else of the content stream changes: the rewrite is a splice of
bytes.

Where an inline image's data ends is the hard part.  qpdf (whose
``externalizeInlineImages`` we tried first) takes the first ``EI`` that looks
like an operator, and binary samples may hold one: on a real file it cut a
1.5 MB image short and turned the rest of its samples into text.  Readers
(PDFium) know better, and so does :func:`_data_end`: unfiltered data is exactly
``rows × bytes per row`` long, Flate data ends where its zlib stream ends, DCT
data at an end-of-image marker, ASCII85 and ASCIIHex data at their end-of-data
marks, each followed by ``EI``.  Where the end cannot be told that way (CCITT,
LZW, run-length…), that image and everything after it in its stream stay as
they are.

Small inline images stay inline: below :data:`MIN_BYTES` an object of its own
(dictionary, reference, resource entry) costs more than recompression can
save, and documents draw thousands of them (glyph-like tiles, rules).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.budget import Budget

#: Inline images whose data (as written, before any filter is undone) is shorter stay inline.
MIN_BYTES = 2048
#: ``ID`` as an operator: the start of an inline image's data (a cheap first test; the
#: patterns start with a literal or a set, which the regular expression engine scans fast).
_ID = re.compile(rb"ID[\x00\t\n\x0c\r ]")
#: What the scan stops at: a literal string, a comment, or ``BI`` (an operator when the
#: byte before it ends a token: see :func:`_after_token`).
_NEXT = re.compile(rb"[(%]|BI(?=[\x00\t\n\x0c\r /])")
_WHITE = b"\x00\t\n\x0c\r "
_DELIMITERS = b"()<>[]{}/%"
#: One token of an inline image's dictionary (strings are skipped by hand: they nest).
_TOKEN = re.compile(
    rb"[\x00\t\n\x0c\r ]+|%[^\r\n]*|<<|>>|<[0-9A-Fa-f\x00\t\n\x0c\r ]*>|[\[\]]"
    rb"|/[^\x00\t\n\x0c\r ()<>\[\]{}/%]*|[^\x00\t\n\x0c\r ()<>\[\]{}/%]+|\("
)
#: ``EI`` after the data: optional white space, then the operator ending at a delimiter.
_EI = re.compile(rb"[\x00\t\n\x0c\r ]*EI(?=[\x00\t\n\x0c\r ()<>\[\]{}/%]|$)")

_KEYS = {"/BPC": "/BitsPerComponent", "/CS": "/ColorSpace", "/D": "/Decode",
         "/DP": "/DecodeParms", "/F": "/Filter", "/H": "/Height", "/IM": "/ImageMask",
         "/I": "/Interpolate", "/W": "/Width", "/L": "/Length"}
_SPACES = {"/G": "/DeviceGray", "/RGB": "/DeviceRGB", "/CMYK": "/DeviceCMYK", "/I": "/Indexed"}
_DEVICE = {"/DeviceGray": 1, "/DeviceRGB": 3, "/DeviceCMYK": 4}
_FILTERS = {"/AHx": "/ASCIIHexDecode", "/A85": "/ASCII85Decode", "/LZW": "/LZWDecode",
            "/Fl": "/FlateDecode", "/RL": "/RunLengthDecode", "/CCF": "/CCITTFaxDecode",
            "/DCT": "/DCTDecode"}
_COMPONENTS = {"/CalGray": 1, "/Indexed": 1, "/Separation": 1, "/CalRGB": 3, "/Lab": 3}


class _Unsure(Exception):
    """Where an inline image ends cannot be told: stop rewriting this stream here."""


@dataclass
class _Inline:
    start: int  #: offset of ``BI``
    end: int  #: offset just past ``EI``
    keys: bytes  #: the dictionary's bytes, between ``BI`` and ``ID``
    data: bytes  #: the image data as written


def externalize(pdf: pikepdf.Pdf, budget: Budget) -> int:
    """Turn every inline image of at least :data:`MIN_BYTES` into an image XObject.

    Returns how many became XObjects.
    """
    holders: dict[tuple[int, int], list[pikepdf.Object]] = {}
    streams: dict[tuple[int, int], Stream] = {}
    for page in pdf.pages:
        for part in _contents(page.obj):
            if part.is_indirect:
                holders.setdefault(part.objgen, []).append(page.obj)
                streams[part.objgen] = part
    for obj in pdf.objects:
        # a form without resources of its own uses its page's: it cannot name new ones
        if (isinstance(obj, Stream) and obj.stream_dict.get("/Subtype") == Name.Form
                and isinstance(obj.stream_dict.get("/Resources"), Dictionary)):
            holders.setdefault(obj.objgen, []).append(obj)
            streams[obj.objgen] = obj
    done = 0
    for key, stream in streams.items():
        budget.check_time()
        try:
            content = stream.read_bytes()
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            continue  # damaged: readers cope as they can, and so does the rest of the pipeline
        if not any(_after_token(content, m.start()) for m in _ID.finditer(content)):
            continue
        done += _rewrite(pdf, stream, content, holders[key])
    return done


def _contents(obj: pikepdf.Object) -> list[Stream]:
    contents = obj.get("/Contents")
    if isinstance(contents, Stream):
        return [contents]
    if isinstance(contents, Array):
        return [c for c in contents if isinstance(c, Stream)]
    return []


def _rewrite(pdf: pikepdf.Pdf, stream: Stream, content: bytes,
             holders: list[pikepdf.Object]) -> int:
    """Splice ``/Name Do`` in for each large inline image of ``stream``; return how many."""
    resources = [_resources(holder) for holder in holders]
    pieces: list[bytes] = []
    at = done = 0
    for found in _inline_images(content, resources[0]):
        if len(found.data) < MIN_BYTES:
            continue
        image = _xobject(pdf, found, resources[0])
        if image is None:
            continue
        name = _free_name(resources, found.start)
        for table in resources:
            xobjects = table.get("/XObject")
            if not isinstance(xobjects, Dictionary):
                xobjects = table.XObject = Dictionary()
            xobjects[name] = image
        pieces += [content[at:found.start], f"{name} Do".encode()]
        at = found.end
        done += 1
    if done:
        pieces.append(content[at:])
        stream.write(b"".join(pieces))
    return done


def _resources(holder: pikepdf.Object) -> Dictionary:
    resources = holder.get("/Resources")
    if not isinstance(resources, Dictionary):
        resources = holder.Resources = Dictionary()
    return resources


def _free_name(resources: list[Dictionary], offset: int) -> str:
    k = offset
    while True:
        name = f"/SqzInline{k}"
        if not any(isinstance(r.get("/XObject"), Dictionary) and name in r.XObject
                   for r in resources):
            return name
        k += 1


# --- finding inline images ------------------------------------------------------------------


def _inline_images(content: bytes, resources: Dictionary) -> Iterator[_Inline]:
    """Every inline image of ``content`` up to the first whose end cannot be told."""
    pos = 0
    known: dict[bytes, int | bytes | str] = {}  # documents repeat one dictionary thousands of times
    while True:
        match = _NEXT.search(content, pos)
        if match is None:
            return
        token = match.group()
        if token == b"(":
            pos = _skip_string(content, match.start())
        elif token == b"%":
            eol = _EOL.search(content, match.end())
            pos = eol.end() if eol else len(content)
        elif not _after_token(content, match.start()):
            pos = match.start() + 1  # part of a longer word or name
        else:
            try:
                found = _one_image(content, match.start(), resources, known)
            except _Unsure:
                return
            yield found
            pos = found.end


_EOL = re.compile(rb"[\r\n]")
_TOKEN_ENDS = frozenset(b"\x00\t\n\x0c\r )>]")


def _after_token(content: bytes, at: int) -> bool:
    """True when the byte before ``at`` ends a token (so an operator may start at ``at``)."""
    return at == 0 or content[at - 1] in _TOKEN_ENDS



#: ``ID`` after an inline image's dictionary, and the one white-space byte that ends it.
_ID_OPERATOR = re.compile(rb"(?<=[\x00\t\n\x0c\r \]>)])ID[\x00\t\n\x0c\r ]")
_STRING_OR_COMMENT = re.compile(rb"[(%]")


_STRING_SPECIAL = re.compile(rb"[()\\]")


def _skip_string(content: bytes, start: int) -> int:
    """Offset just past the literal string starting at ``start`` (nested parentheses,
    backslash escapes); the bytes between special characters are skipped by the regular
    expression engine, not one by one."""
    depth, i, n = 0, start, len(content)
    while i < n:
        match = _STRING_SPECIAL.search(content, i)
        if match is None:
            return n
        i = match.start()
        c = content[i]
        if c == 0x5C:  # backslash: the next byte is escaped
            i += 2
            continue
        if c == 0x28:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return n


def _dictionary(content: bytes, start: int) -> tuple[bytes, list[bytes] | None, int]:
    """The bytes of the dictionary after ``BI`` at ``start``, its tokens (None when the
    quick path found it: tokenise only if needed), and the offset just past ``ID``."""
    quick = _ID_OPERATOR.search(content, start + 2)
    # (strings and comments may hide an "ID": then the careful path)
    if quick is not None and not _STRING_OR_COMMENT.search(content, start + 2, quick.start()):
        return content[start + 2:quick.start()], None, quick.start() + 2
    pos = start + 2
    tokens = []
    while True:
        match = _TOKEN.match(content, pos)
        if match is None:
            raise _Unsure("unreadable inline image dictionary")
        token = match.group()
        if token == b"(":
            end = _skip_string(content, pos)
            tokens.append(content[pos:end])
            pos = end
            continue
        pos = match.end()
        if token == b"ID":
            return content[start + 2:pos - 2], tokens, pos
        if token[:1] not in _WHITE and token[:1] != b"%":
            tokens.append(token)


def _one_image(content: bytes, start: int, resources: Dictionary,
               known: dict[bytes, int | bytes | str]) -> _Inline:
    """The inline image whose ``BI`` is at ``start``."""
    keys, tokens, pos = _dictionary(content, start)
    if pos >= len(content) or content[pos] not in _WHITE:
        raise _Unsure("no white space after ID")
    rule = known.get(keys)
    if rule is None:
        if tokens is None:
            tokens = [t for t in _TOKEN.findall(keys) if t[:1] not in _WHITE]
        rule = known[keys] = _end_rule(_light_dict(tokens), resources)
    data_start = pos + 1
    if isinstance(rule, int):
        end = data_start + rule
        if end > len(content):
            raise _Unsure("data shorter than its samples")
    elif rule == "zlib":
        end = _zlib_end(content, data_start)
    else:
        end = _marker_end(content, data_start, rule)  # type: ignore[arg-type]
    ei = _EI.match(content, end)
    if ei is None:
        raise _Unsure("no EI where the data ends")
    return _Inline(start, ei.end(), keys, content[data_start:end])


def _light_dict(tokens: list[bytes]) -> dict[str, object]:
    """The few entries that say where the data ends, read from the dictionary's tokens:
    names (as ``"/X"``), numbers, and arrays of those (nested arrays and dictionaries
    are kept as markers)."""
    values: list[object] = []
    stack: list[list[object]] = []
    for token in tokens:
        if token in (b"[", b"<<"):
            stack.append([])
        elif token in (b"]", b">>"):
            inner = stack.pop() if stack else []
            (stack[-1] if stack else values).append(inner if token == b"]" else {})
        else:
            value: object
            if token[:1] == b"/":
                value = token.decode("latin-1")
            else:
                try:
                    value = int(token)
                except ValueError:
                    value = token
            (stack[-1] if stack else values).append(value)
    out: dict[str, object] = {}
    for key, value in zip(values[0::2], values[1::2]):
        if isinstance(key, str):
            out[_KEYS.get(key, key)] = value
    return out


def _filter_names(value: object) -> list[str]:
    items = value if isinstance(value, list) else [] if value is None else [value]
    return [_FILTERS.get(v, v) if isinstance(v, str) else "?" for v in items]


def _components(space: object, resources: Dictionary) -> int:
    """Colour components of an inline image's /ColorSpace (0 when unknown)."""
    if isinstance(space, str):
        full = _SPACES.get(space, space)
        if full in _DEVICE:
            return _DEVICE[full]
        table = resources.get("/ColorSpace")
        named = table.get(space) if isinstance(table, Dictionary) else None
        return _space_components(named)
    if isinstance(space, list) and space and isinstance(space[0], str):
        family = _SPACES.get(space[0], space[0])
        return 1 if family == "/Indexed" else _COMPONENTS.get(family, 0)
    return 0


def _space_components(space: object) -> int:
    """Components of a colour space object from the resources."""
    if isinstance(space, Name):
        return _DEVICE.get(str(space), 0)
    if isinstance(space, Array) and len(space):
        family = str(space[0])
        if family == "/ICCBased" and len(space) > 1 and isinstance(space[1], Stream):
            return _int(space[1].get("/N"))
        if family == "/DeviceN" and len(space) > 1 and isinstance(space[1], Array):
            return len(space[1])
        return _DEVICE.get(family, _COMPONENTS.get(family, 0))
    return 0


def _int(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


def _end_rule(d: dict[str, object], resources: Dictionary) -> int | bytes | str:
    """How readers find where an image's data ends: its length when unfiltered, ``"zlib"``
    for Flate, else the end-of-data marker (DCT, ASCII85, ASCIIHex)."""
    filters = _filter_names(d.get("/Filter"))
    if not filters:
        width, height = _int(d.get("/Width")), _int(d.get("/Height"))
        if d.get("/ImageMask") == b"true":
            components, bpc = 1, 1
        else:
            components, bpc = _components(d.get("/ColorSpace"), resources), \
                _int(d.get("/BitsPerComponent"))
        if min(width, height, components, bpc) <= 0:
            raise _Unsure("unknown sample size")
        return (width * components * bpc + 7) // 8 * height
    first = filters[0]
    if first == "/FlateDecode":
        return "zlib"
    if first == "/DCTDecode" and len(filters) == 1:
        return b"\xff\xd9"
    if first == "/ASCII85Decode":
        return b"~>"
    if first == "/ASCIIHexDecode":
        return b">"
    raise _Unsure(f"the end of {first} data")


def _marker_end(content: bytes, start: int, marker: bytes) -> int:
    """Just past the first ``marker`` that ``EI`` follows."""
    at = start
    while True:
        found = content.find(marker, at)
        if found < 0:
            raise _Unsure("no end marker")
        end = found + len(marker)
        if _EI.match(content, end):
            return end
        at = found + 1


#: Inflated bytes an inline Flate image may have before it counts as a bomb (it is skipped).
_MAX_INFLATED = 64 << 20


def _zlib_end(content: bytes, start: int) -> int:
    """Where the zlib stream starting at ``start`` ends (its output is only counted)."""
    inflater = zlib.decompressobj()
    pos, inflated = start, 0
    step = 1 << 16
    try:
        while not inflater.eof:
            chunk = content[pos:pos + step]
            if not chunk:
                raise _Unsure("zlib data does not end")
            pos += len(chunk)
            while chunk and not inflater.eof:
                inflated += len(inflater.decompress(chunk, step))
                chunk = inflater.unconsumed_tail
                if inflated > _MAX_INFLATED:
                    raise _Unsure("inline image inflates beyond the limit")
    except zlib.error:
        raise _Unsure("zlib data does not decode") from None
    return pos - len(inflater.unused_data)


# --- the XObject ----------------------------------------------------------------------------


def _xobject(pdf: pikepdf.Pdf, found: _Inline, resources: Dictionary) -> Stream | None:
    """An image XObject with ``found``'s dictionary, or None when it has no XObject form."""
    try:
        parsed = pikepdf.Object.parse(b"<<" + found.keys + b">>")
    except (pikepdf.PdfError, RuntimeError, ValueError):
        return None
    if not isinstance(parsed, Dictionary):
        return None
    entries = Dictionary(Type=Name.XObject, Subtype=Name.Image)
    for key, raw in parsed.items():
        full = _KEYS.get(str(key), str(key))
        if full == "/Length":
            continue
        value: object = raw
        if full == "/ColorSpace":
            value = _space(raw, resources)
            if value is None:
                return None
        elif full == "/Filter":
            value = _filters(raw)
        entries[full] = value
    image = Stream(pdf, found.data)
    image.stream_dict = entries  # (a new stream is an indirect object already)
    return image


def _space(value: object, resources: Dictionary) -> object | None:
    """An inline /ColorSpace as an image XObject writes it (abbreviations expanded, a
    named colour space replaced by the resource it names)."""
    if isinstance(value, Name):
        full = _SPACES.get(str(value), str(value))
        if full in _DEVICE:
            return Name(full)
        table = resources.get("/ColorSpace")
        named = table.get(str(value)) if isinstance(table, Dictionary) else None
        return named if isinstance(named, (Name, Array)) else None
    if isinstance(value, Array) and len(value):
        items: list[object] = list(value)
        items[0] = Name(_SPACES.get(str(items[0]), str(items[0])))
        if str(items[0]) == "/Indexed" and len(items) == 4:
            base = _space(items[1], resources)
            if base is None:
                return None
            items[1] = base
        return Array(items)
    return None


def _filters(value: object) -> object:
    if isinstance(value, Name):
        return Name(_FILTERS.get(str(value), str(value)))
    if isinstance(value, Array):
        return Array([Name(_FILTERS.get(str(v), str(v))) for v in value])
    return value
