"""Type 1 font programs (``/FontFile``) rewritten as CFF (``/FontFile3 /Subtype /Type1C``).

LaTeX (pdfTeX, dvips) and old Distiller embed Type 1 programs: a PostScript
header in clear text, the charstrings encrypted, every hint-replacement
subroutine kept, and 512 zeros at the end.  CFF, the compact form of the same
outlines (Adobe TN 5176/5177), holds them in about half the bytes, and every
PDF reader since PDF 1.2 reads it; Ghostscript converts the same way.

The conversion keeps what a rasteriser uses: every outline point (the
charstrings are interpreted, subroutines expanded, flex kept as the ``flex``
operator), the hints (stems become ``hstemhm``/``vstemhm`` declared up front,
and Type 1 hint replacement, ``othersubr 3``, becomes ``hintmask``), the
private dictionary's alignment zones and stem widths, the font matrix, bounding
box and built-in encoding, and each glyph's advance.  Accented glyphs built by
``seac`` stay built that way (``endchar`` with four arguments).

Every converted program is checked before it is used: each glyph of the new
CFF, drawn, must give exactly the outline the Type 1 glyph gives (components
resolved).  The Type 1 glyph is drawn by fontTools' own outline extractor (an
interpreter independent of this module's); the CFF glyph is decoded from the
written bytes and drawn with fontTools' Type 2 arithmetic (:func:`_t2_outline`,
tested equal to fontTools' drawing), or by fontTools where it is not regular.  A program that does not parse, uses what this module does not
convert (multiple-master othersubrs, ``sbw`` fonts with vertical metrics, numbers
out of CFF's range), or draws anything differently is left as it is.
"""

from __future__ import annotations

import functools
import io
import math
import re
import struct
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

#: Type 1 private-dictionary keys CFF keeps (Adobe TN 5176, Table 23), by their CFF names.
_PRIVATE = ("BlueValues", "OtherBlues", "FamilyBlues", "FamilyOtherBlues", "BlueScale",
            "BlueShift", "BlueFuzz", "StemSnapH", "StemSnapV", "ForceBold", "LanguageGroup",
            "ExpansionFactor")
_INFO = ("version", "Notice", "Copyright", "FullName", "FamilyName", "Weight", "ItalicAngle",
         "isFixedPitch", "UnderlinePosition", "UnderlineThickness")
#: CFF's operand range for integers; larger values (or fractions) are 16.16 fixed numbers.
_MAX_FIXED = 32767


class NotConvertible(Exception):
    """The program uses something this module does not convert: keep it as it is."""


@dataclass
class _Glyph:
    width: float
    #: path commands with absolute points: ("M", (x, y)), ("L", (x, y)),
    #: ("C", (x1, y1, x2, y2, x3, y3)), ("F", (six points), height), ("H", hint set index)
    path: list = field(default_factory=list)
    #: hint sets: each a list of ("h" | "v", position, width)
    hint_sets: list = field(default_factory=lambda: [[]])
    seac: tuple | None = None  #: (adx, ady, bchar, achar) in CFF's meaning


def parse(program: bytes) -> dict:
    """The font dictionary of a Type 1 program, charstrings decrypted (as fontTools' ``psLib``
    gives it: ``CharStrings`` and ``Private["Subrs"]`` hold ``T1CharString`` objects).

    Read by :func:`_read_fast` (regular expressions, and the eexec decryption as
    one vectorised scan: 100x faster than psLib's interpreter on the corpus'
    fonts), or by psLib when a program is laid out in a way that reader does
    not follow.
    """
    try:
        return _read_fast(program)
    except _Layout:
        pass
    from fontTools import t1Lib

    font = t1Lib.T1Font.__new__(t1Lib.T1Font)
    font.data, font.encoding = program, "ascii"
    font.parse()
    return font.font


class _Layout(Exception):
    """The fast reader does not follow this program's layout (psLib will)."""


_NUM = rb"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_NAME = rb"[^\s/\[\]{}()<>%]+"
_ARRAY = rb"[\[{]([^\]}]*)[\]}]"


_SUBRS = re.compile(rb"/Subrs\s+(\d+)\s+array")
_SUBR = re.compile(rb"\s*dup\s+(\d+)\s+(\d+)\s+\S+ ")
_SUBR_END = re.compile(rb"\s*(?:NP|\||noaccess\s+put|put)")
_CHARSTRINGS = re.compile(rb"/CharStrings\s+\d+\s+dict\s+dup\s+begin")
_CHARSTRING = re.compile(rb"\s*/(" + _NAME + rb")\s+(\d+)\s+\S+ ")
_CHARSTRING_END = re.compile(rb"\s*(?:ND|\|-|noaccess\s+def|def)")
_END = re.compile(rb"\s*end")


def _numbers(text: bytes) -> list:
    return [_num(t) for t in re.findall(_NUM, text)]


def _num(token: bytes) -> float:
    value = float(token)
    return int(value) if value.is_integer() and b"." not in token and b"e" not in token.lower() \
        else value


def _ps_string(data: bytes, start: int) -> str:
    """The PostScript string whose ``(`` is at ``start`` (escapes and nesting undone)."""
    out = bytearray()
    depth, i = 0, start
    escapes = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
    while i < len(data):
        c = data[i]
        if c == 0x5C and i + 1 < len(data):
            nxt = data[i + 1]
            if 0x30 <= nxt <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", data[i + 1:i + 4]).group()  # type: ignore[union-attr]
                out.append(int(digits, 8) & 0xFF)
                i += 1 + len(digits)
                continue
            if nxt in (0x0A, 0x0D):
                i += 2
                continue
            out.append(escapes.get(nxt, nxt))
            i += 2
            continue
        if c == 0x28:
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif c == 0x29:
            depth -= 1
            if depth == 0:
                return out.decode("latin-1")
        out.append(c)
        i += 1
    raise _Layout("unterminated string")


#: Up to this many bytes in all (per process), :func:`_decrypt` runs as a plain loop when numpy
#: is not loaded yet: ~0.15 us a byte (a 30 KB subset's charstrings in ~5 ms) against numpy's
#: import, ~40-100 ms of a cold run's CPU that a LaTeX document's Type 1 fonts alone would
#: otherwise pay (issue 18).  Past it numpy is imported: many or large programs decrypt faster
#: vectorised.
PLAIN_DECRYPT_BYTES = 256 << 10
#: What is left of :data:`PLAIN_DECRYPT_BYTES` in this process.
_plain_left = [PLAIN_DECRYPT_BYTES]


def _decrypt(data: bytes, key: int, starts: list[int] | None = None) -> bytes:
    """eexec decryption (Type 1 spec §7.2) as one vectorised scan.

    Each cipher byte c advances the key r -> (c + r) * 52845 + 22719 (mod 2**16),
    an affine map of r; their running compositions (a parallel prefix over the
    bytes) give every byte's key at once.  ``starts`` lists the offsets where
    separately encrypted pieces (charstrings) begin: the key restarts there.
    The maps are held as 16-bit integers, whose products wrap modulo 2**16 by
    themselves (a fifth of the time of 32-bit ones masked after each step).
    (Small programs in a process without numpy: :func:`_decrypt_plain`, the same bytes.)
    """
    if len(data) <= _plain_left[0] and "numpy" not in sys.modules:
        _plain_left[0] -= len(data)
        return _decrypt_plain(data, key, starts)
    import numpy as np

    cipher = np.frombuffer(data, np.uint8)
    n = cipher.size
    if n == 0:
        return b""
    mul = np.full(n, 52845, np.uint16)
    add = cipher.astype(np.uint16) * np.uint16(52845) + np.uint16(22719)
    if starts:
        restart = np.asarray([s - 1 for s in starts if s > 0], dtype=np.int64)
        mul[restart] = 0
        add[restart] = key
    step = 1
    while step < n:
        # (both from the maps before this step: composed with the one `step` bytes earlier)
        add_next = mul[step:] * add[:-step]
        add_next += add[step:]
        mul_next = mul[step:] * mul[:-step]
        add[step:] = add_next
        mul[step:] = mul_next
        step *= 2
    keys = np.empty(n, np.uint16)
    keys[0] = key
    keys[1:] = add[:-1] + mul[:-1] * np.uint16(key)
    return (cipher ^ (keys >> 8).astype(np.uint8)).tobytes()


def _decrypt_plain(data: bytes, key: int, starts: list[int] | None = None) -> bytes:
    """:func:`_decrypt` one byte after the other (the key restarting at each of ``starts``)."""
    out = bytearray(len(data))
    begin = 0
    for end in [*sorted({s for s in starts or () if 0 < s < len(data)}), len(data)]:
        r = key
        for i in range(begin, end):
            c = data[i]
            out[i] = c ^ (r >> 8)
            r = ((c + r) * 52845 + 22719) & 0xFFFF
        begin = end
    return bytes(out)


def _read_fast(program: bytes) -> dict:
    from fontTools.encodings.StandardEncoding import StandardEncoding
    from fontTools.misc.psCharStrings import T1CharString

    at = program.find(b"eexec")
    if at < 0:
        raise _Layout("no eexec")
    clear = program[:at]
    body = program[at + 5:].lstrip(b"\r\n\t ")
    if re.match(rb"[0-9A-Fa-f]{4}", body[:4]):
        import binascii

        hexdigits = re.sub(rb"[^0-9A-Fa-f]", b"", body.split(b"0000000000", 1)[0])
        body = binascii.unhexlify(hexdigits[:len(hexdigits) // 2 * 2])
    private = _decrypt(body, 55665)[4:]
    font: dict = {"FontType": 1}
    name = re.search(rb"/FontName\s*/(" + _NAME + rb")", clear)
    if name is None:
        raise _Layout("no FontName")
    font["FontName"] = name.group(1).decode("latin-1")
    for key in ("FontMatrix", "FontBBox"):
        found = re.search(rb"/" + key.encode() + rb"\s*" + _ARRAY, clear)
        if found is None:
            raise _Layout(f"no {key}")
        font[key] = _numbers(found.group(1))
    for key in ("PaintType", "StrokeWidth", "UniqueID"):
        found = re.search(rb"/" + key.encode() + rb"\s+(" + _NUM + rb")", clear)
        if found:
            font[key] = _num(found.group(1))
    if re.search(rb"/Encoding\s+StandardEncoding\s+(?:readonly\s+)?def", clear):
        font["Encoding"] = list(StandardEncoding)
    else:
        encoding = [".notdef"] * 256
        puts = re.findall(rb"dup\s+(\d+)\s*/(" + _NAME + rb")\s+put", clear)
        if not puts:
            raise _Layout("no Encoding")
        for code, glyph in puts:
            if int(code) < 256:
                encoding[int(code)] = glyph.decode("latin-1")
        font["Encoding"] = encoding
    info: dict = {}
    for key in ("version", "Notice", "Copyright", "FullName", "FamilyName", "Weight"):
        found = re.search(rb"/" + key.encode() + rb"\s*\(", clear)
        if found:
            info[key] = _ps_string(clear, found.end() - 1)
    for key in ("ItalicAngle", "UnderlinePosition", "UnderlineThickness"):
        found = re.search(rb"/" + key.encode() + rb"\s+(" + _NUM + rb")", clear)
        if found:
            info[key] = _num(found.group(1))
    fixed = re.search(rb"/isFixedPitch\s+(true|false)", clear)
    if fixed:
        info["isFixedPitch"] = int(fixed.group(1) == b"true")
    font["FontInfo"] = info

    start = private.find(b"/Private")
    subrs_at = private.find(b"/Subrs", start)
    chars_at = private.find(b"/CharStrings", start)
    if start < 0 or chars_at < 0:
        raise _Layout("no Private or CharStrings")
    head = private[start:min(x for x in (subrs_at, chars_at) if x >= 0)]
    entries: dict = {}
    # (a key defined twice takes its last value, as PostScript's def does)
    for key in ("BlueValues", "OtherBlues", "FamilyBlues", "FamilyOtherBlues", "StdHW", "StdVW",
                "StemSnapH", "StemSnapV"):
        arrays = re.findall(rb"/" + key.encode() + rb"\s*" + _ARRAY, head)
        if arrays:
            entries[key] = _numbers(arrays[-1])
    for key in ("BlueScale", "BlueShift", "BlueFuzz", "LanguageGroup", "ExpansionFactor",
                "lenIV"):
        values = re.findall(rb"/" + key.encode() + rb"\s+(" + _NUM + rb")", head)
        if values:
            entries[key] = _num(values[-1])
    bold = re.findall(rb"/ForceBold\s+(true|false|0|1)\b", head)
    if bold:
        entries["ForceBold"] = int(bold[-1] in (b"true", b"1"))
    len_iv = int(entries.get("lenIV", 4))

    pieces: list[tuple[object, int, int]] = []  # (subr index or glyph name, start, end)
    # (patterns matched in place, from a position: the program is not sliced per entry)
    if 0 <= subrs_at < chars_at:
        count = _SUBRS.match(private, subrs_at)
        if count is None:
            raise _Layout("Subrs")
        pos = count.end()
        while True:
            m = _SUBR.match(private, pos)
            if m is None:
                break
            begin = m.end()
            pieces.append((int(m.group(1)), begin, begin + int(m.group(2))))
            pos = begin + int(m.group(2))
            tail = _SUBR_END.match(private, pos, pos + 32)
            if tail is None:
                raise _Layout("Subrs entry")
            pos = tail.end()
    head_match = _CHARSTRINGS.match(private, chars_at)
    if head_match is None:
        raise _Layout("CharStrings")
    pos = head_match.end()
    while True:
        m = _CHARSTRING.match(private, pos)
        if m is None:
            break
        begin = m.end()
        pieces.append((m.group(1).decode("latin-1"), begin, begin + int(m.group(2))))
        pos = begin + int(m.group(2))
        tail = _CHARSTRING_END.match(private, pos, pos + 32)
        if tail is None:
            raise _Layout("CharStrings entry")
        pos = tail.end()
    if not _END.match(private, pos, pos + 16):
        raise _Layout("CharStrings end")
    if any(end > len(private) for _, _, end in pieces):
        raise _Layout("truncated")
    if len_iv >= 0:
        blob = b"".join(private[b:e] for _, b, e in pieces)
        starts, total = [], 0
        for _, b, e in pieces:
            starts.append(total)
            total += e - b
        plain = _decrypt(blob, 4330, starts)
        texts = [plain[s + len_iv:s + (e - b)] for s, (_, b, e) in zip(starts, pieces)]
    else:
        texts = [private[b:e] for _, b, e in pieces]
    subr_texts: list[bytes | None] = []
    charstrings: dict[str, bytes] = {}
    for (which, _, _), text in zip(pieces, texts):
        if isinstance(which, int):
            while len(subr_texts) <= which:
                subr_texts.append(None)
            subr_texts[which] = text
        else:
            charstrings[str(which)] = text
    subrs = [T1CharString(t if t is not None else b"\x0b", subrs=None) for t in subr_texts]
    for charstring in subrs:
        charstring.subrs = subrs
    entries["Subrs"] = subrs
    font["Private"] = entries
    font["CharStrings"] = {k: T1CharString(v, subrs=subrs) for k, v in charstrings.items()}
    if not font["CharStrings"]:
        raise _Layout("no charstrings")
    return font


class _Glyphs(Mapping):
    """A program's glyphs by name, each charstring interpreted when first asked for.

    A whole font (a form's or an office program's Type 1 fonts: hundreds of glyphs) is
    cut to the few glyphs a document draws before it is converted: interpreting every
    charstring up front was most of the font step's time (issue 18: 0.4 s of CPU on a
    tax form with ten such fonts).  A charstring that does not run raises
    :class:`NotConvertible` when its glyph is asked for, as :func:`read` did for all.
    """

    def __init__(self, charstrings: dict, subrs: list) -> None:
        self._charstrings, self._subrs = charstrings, subrs
        self._done: dict[str, _Glyph] = {}

    def __getitem__(self, name: str) -> _Glyph:
        glyph = self._done.get(name)
        if glyph is None:
            charstring = self._charstrings[name]
            try:
                glyph = _interpret(charstring, self._subrs)
            except (IndexError, TypeError, ValueError, AttributeError, struct.error) as exc:
                raise NotConvertible(
                    f"a charstring does not run ({type(exc).__name__})") from None
            self._done[name] = glyph
        return glyph

    def __iter__(self) -> Iterator[str]:
        return iter(self._charstrings)

    def __len__(self) -> int:
        return len(self._charstrings)

    def __contains__(self, name: object) -> bool:
        return name in self._charstrings


@dataclass
class Program:
    """A Type 1 program read for conversion: its font dictionary and its glyphs (interpreted
    on first use)."""

    font: dict
    glyphs: Mapping[str, _Glyph]

    @property
    def name(self) -> str:
        return str(self.font.get("FontName", ""))


#: Larger Type 1 programs are kept as they are (real ones are under 1 MB; the vectorised
#: decryption holds about 40 bytes per program byte).
MAX_PROGRAM_BYTES = 4 << 20


def read(program: bytes) -> Program:
    """Parse and interpret ``program``; :class:`NotConvertible` when it cannot be converted."""
    if len(program) > MAX_PROGRAM_BYTES:
        raise NotConvertible("a program larger than any real Type 1 font")
    try:
        font = parse(program)
    except Exception as exc:  # noqa: BLE001 - psLib raises anything on a damaged program
        raise NotConvertible(f"the Type 1 program does not parse ({type(exc).__name__})") from None
    if font.get("FontType", 1) != 1 or "CharStrings" not in font or "Private" not in font:
        raise NotConvertible("not a Type 1 font")
    return Program(font, _Glyphs(font["CharStrings"], font["Private"].get("Subrs", [])))


def to_cff(program: Program, serves: list[Program] | None = None) -> bytes:
    """The CFF (bare ``Type1C``) program drawing exactly what ``program`` draws, checked
    against ``serves`` (the programs a merged one replaces; default: ``program`` itself):
    each glyph of ``program`` they have must draw as theirs does."""
    data = _build(program.font, dict(program.glyphs))
    for original in serves or [program]:
        _check(original.font, data, set(program.glyphs))
    return data


def subset(program: Program, keep: set[str]) -> Program:
    """``program`` with only the glyphs named in ``keep`` (and .notdef, and the parts of
    accented glyphs built by seac)."""
    from fontTools.encodings.StandardEncoding import StandardEncoding

    names = {".notdef"} | (keep & set(program.glyphs))
    for name in list(names):
        seac = program.glyphs[name].seac if name in program.glyphs else None
        if seac is not None:
            names |= {StandardEncoding[seac[2]], StandardEncoding[seac[3]]}
    # (by name, so that only the kept glyphs are interpreted)
    return Program(program.font, {n: program.glyphs[n] for n in program.glyphs if n in names})


def convert(program: bytes) -> bytes:
    """The CFF program for the Type 1 ``program`` (:class:`NotConvertible` when not faithful)."""
    return to_cff(read(program))


def base_name(name: str) -> str:
    """A font name without its subset tag (``ABCDEF+CMR10`` -> ``CMR10``)."""
    name = name.lstrip("/")
    if len(name) > 7 and name[6] == "+" and name[:6].isalpha() and name[:6].isupper():
        return name[7:]
    return name


def merge(programs: list[Program]) -> Program | None:
    """One program serving every one of ``programs`` (subsets of one font), or None.

    They must agree on everything a glyph's rendering depends on: the font
    matrix, paint type and private dictionary (hinting), each glyph they share
    (outline, hints, advance), and the code of each glyph in the built-in
    encoding.  The union has every glyph and every code of each.
    """
    first = programs[0].font
    same = ("FontMatrix", "PaintType", "StrokeWidth")
    glyphs: dict[str, _Glyph] = {}
    encoding = [".notdef"] * 256
    boxes = []
    for program in programs:
        font = program.font
        if any(_plain(font.get(k)) != _plain(first.get(k)) for k in same):
            return None
        if _private(font) != _private(first):
            return None
        for name, glyph in program.glyphs.items():
            if glyphs.setdefault(name, glyph) != glyph:
                return None
        own = font.get("Encoding")
        if isinstance(own, (list, tuple)) and len(own) == 256:
            for code, name in enumerate(own):
                if name == ".notdef" or name not in program.glyphs:
                    continue
                if encoding[code] not in (".notdef", name):
                    return None
                encoding[code] = name
        elif own is not None:
            return None  # StandardEncoding by name: keep such fonts apart
        boxes.append(font.get("FontBBox", (0, 0, 0, 0)))
    names = [n for n in encoding if n != ".notdef"]
    if len(names) != len(set(names)):
        return None  # a glyph at two codes: CFF cannot say so without supplements
    font = dict(first)
    font["Encoding"] = encoding
    font["FontBBox"] = [min(b[0] for b in boxes), min(b[1] for b in boxes),
                        max(b[2] for b in boxes), max(b[3] for b in boxes)]
    return Program(font, glyphs)


def _plain(value: object) -> object:
    return list(value) if isinstance(value, tuple) else value


def _private(font: dict) -> dict:
    private = font.get("Private", {})
    return {k: _plain(private.get(k)) for k in (*_PRIVATE, "StdHW", "StdVW")}


# --- interpreting Type 1 charstrings ---------------------------------------------------------


class _Interpreter:
    """Runs one Type 1 charstring (Adobe Type 1 Font Format, chapter 6) into a :class:`_Glyph`."""

    def __init__(self, subrs: list) -> None:
        self.subrs = subrs
        self.stack: list = []
        self.ps: list = []  # the PostScript stack othersubrs return values through
        self.x = self.y = 0.0
        self.sbx = self.sby = 0.0
        self.glyph = _Glyph(width=0)
        self.flex: list | None = None  # points collected between othersubrs 1 and 0
        self.ended = False
        self.depth = 0
        self.hinted_path = False  # a path command was given under the current hint set
        self.marked = -1  # the hint set the last "H" mark of the path names

    def run(self, program: list) -> None:
        self.depth += 1
        if self.depth > 10:
            raise NotConvertible("subroutines nested too deep")
        operators = _OPERATORS
        push = self.stack.append
        for token in program:
            kind = token.__class__
            if kind is int:  # (most tokens)
                push(token)
            elif kind is str:
                operator = operators.get(token)
                if operator is None:
                    raise NotConvertible(f"operator {token}")
                if operator(self) == "return" or self.ended:
                    break  # (the glyph ends inside a subroutine too: every caller stops)
            elif isinstance(token, (int, float)):
                push(token)
            else:
                raise NotConvertible("unexpected charstring token")
        self.depth -= 1

    def pop(self, count: int) -> list:
        stack = self.stack
        if len(stack) < count:
            raise NotConvertible("stack underflow")
        if not count:
            return []
        values = stack[-count:]
        del stack[-count:]
        return values

    # metrics
    def op_hsbw(self) -> None:
        sbx, wx = self.pop(2)
        self.sbx, self.sby = sbx, 0
        self.x, self.y = sbx, 0
        self.glyph.width = wx
        self.stack.clear()

    def op_sbw(self) -> None:
        sbx, sby, wx, wy = self.pop(4)
        if wy:
            raise NotConvertible("vertical advance")
        self.sbx, self.sby = sbx, sby
        self.x, self.y = sbx, sby
        self.glyph.width = wx
        self.stack.clear()

    # hints
    def _stem(self, kind: str, position: float, width: float) -> None:
        hints = self.glyph.hint_sets[-1]
        entry = (kind, _exact(position), _exact(width))
        if entry not in hints:
            if self.hinted_path:
                # stems given after drawing, without othersubr 3: a new set that adds them
                self.glyph.hint_sets.append(list(hints))
                self.hinted_path = False
                hints = self.glyph.hint_sets[-1]
            hints.append(entry)

    def op_hstem(self) -> None:
        y, dy = self.pop(2)
        self._stem("h", self.sby + y, dy)
        self.stack.clear()

    def op_vstem(self) -> None:
        x, dx = self.pop(2)
        self._stem("v", self.sbx + x, dx)
        self.stack.clear()

    def op_hstem3(self) -> None:
        args = self.pop(6)
        for i in (0, 2, 4):
            self._stem("h", self.sby + args[i], args[i + 1])
        self.stack.clear()

    def op_vstem3(self) -> None:
        args = self.pop(6)
        for i in (0, 2, 4):
            self._stem("v", self.sbx + args[i], args[i + 1])
        self.stack.clear()

    def op_dotsection(self) -> None:
        self.stack.clear()

    # path
    def _draw(self, command: str, points: tuple) -> None:
        """Append a path command, preceded by a mark when a new hint set applies from here."""
        index = len(self.glyph.hint_sets) - 1
        if index != self.marked:
            self.glyph.path.append(("H", index))
            self.marked = index
        self.glyph.path.append((command, points))
        self.hinted_path = True

    def _move(self, dx: float, dy: float) -> None:
        self.x, self.y = self.x + dx, self.y + dy
        if self.flex is not None:
            self.flex.append((self.x, self.y))
            return
        self._draw("M", (self.x, self.y))

    def op_rmoveto(self) -> None:
        dx, dy = self.pop(2)
        self._move(dx, dy)
        self.stack.clear()

    def op_hmoveto(self) -> None:
        (dx,) = self.pop(1)
        self._move(dx, 0)
        self.stack.clear()

    def op_vmoveto(self) -> None:
        (dy,) = self.pop(1)
        self._move(0, dy)
        self.stack.clear()

    def _line(self, dx: float, dy: float) -> None:
        self.x, self.y = self.x + dx, self.y + dy
        self._draw("L", (self.x, self.y))

    def op_rlineto(self) -> None:
        dx, dy = self.pop(2)
        self._line(dx, dy)
        self.stack.clear()

    def op_hlineto(self) -> None:
        (dx,) = self.pop(1)
        self._line(dx, 0)
        self.stack.clear()

    def op_vlineto(self) -> None:
        (dy,) = self.pop(1)
        self._line(0, dy)
        self.stack.clear()

    def _curve(self, d: list) -> None:
        x1, y1 = self.x + d[0], self.y + d[1]
        x2, y2 = x1 + d[2], y1 + d[3]
        x3, y3 = x2 + d[4], y2 + d[5]
        self.x, self.y = x3, y3
        self._draw("C", (x1, y1, x2, y2, x3, y3))

    def op_rrcurveto(self) -> None:
        self._curve(self.pop(6))
        self.stack.clear()

    def op_vhcurveto(self) -> None:
        dy1, dx2, dy2, dx3 = self.pop(4)
        self._curve([0, dy1, dx2, dy2, dx3, 0])
        self.stack.clear()

    def op_hvcurveto(self) -> None:
        dx1, dx2, dy2, dy3 = self.pop(4)
        self._curve([dx1, 0, dx2, dy2, 0, dy3])
        self.stack.clear()

    def op_closepath(self) -> None:
        self.stack.clear()  # CFF closes each subpath by itself; the current point stays

    def op_endchar(self) -> None:
        self.ended = True

    def op_seac(self) -> None:
        asb, adx, ady, bchar, achar = self.pop(5)
        self.glyph.seac = (adx + self.sbx - asb, ady, int(bchar), int(achar))
        self.ended = True

    # arithmetic and subroutines
    def op_div(self) -> None:
        a, b = self.pop(2)
        if b == 0:
            raise NotConvertible("division by zero")
        # a quotient lives on as a 16.16 fixed number, as in Type 1 rasterisers (FreeType's
        # FT_DivFix rounds half away from zero): every later sum is then exact in CFF too
        q = abs(a / b)
        self.stack.append(math.copysign(math.floor(q * 65536 + 0.5) / 65536, a / b))

    def op_callsubr(self) -> str | None:
        (index,) = self.pop(1)
        if not isinstance(index, int) or not 0 <= index < len(self.subrs):
            raise NotConvertible("missing subroutine")
        subr = self.subrs[index]
        _decompile(subr)
        self.run(subr.program)
        return None

    def op_return(self) -> str:
        return "return"

    def op_callothersubr(self) -> None:
        count, number = self.pop(2)
        if not isinstance(count, int) or count < 0:
            raise NotConvertible("malformed callothersubr")
        args = self.pop(count)
        if number == 1:  # flex starts: the next seven moves are its points
            self.flex = []
        elif number == 2:
            pass  # a flex point was added by the move before it
        elif number == 0:
            height, end_x, end_y = args
            points = self.flex or []
            self.flex = None
            if len(points) != 7:
                raise NotConvertible("malformed flex")
            self.x, self.y = points[-1]
            self._draw("F", (tuple(points[1:]), height))
            self.ps = [end_y, end_x]
            return
        elif number == 3:  # hint replacement: the stems that follow form a new set
            self.glyph.hint_sets.append([])
            self.hinted_path = False
        elif number in (12, 13):
            pass  # counter control: no CFF counterpart that renderers use
        else:
            raise NotConvertible(f"othersubr {number}")
        self.ps = list(args)  # (PostScript's stack: pop returns the last argument first)

    def op_pop(self) -> None:
        if not self.ps:
            raise NotConvertible("pop without a value")
        self.stack.append(self.ps.pop())

    def op_setcurrentpoint(self) -> None:
        x, y = self.pop(2)
        self.x, self.y = x, y
        self.stack.clear()


#: The interpreter's operators by name (``op_<name>`` methods), looked up once.
_OPERATORS = {name[3:]: method for name, method in vars(_Interpreter).items()
              if name.startswith("op_")}


def _exact(value: float) -> float:
    return int(value) if float(value).is_integer() else value


def _interpret(charstring: object, subrs: list) -> _Glyph:
    _decompile(charstring)
    machine = _Interpreter(subrs)
    machine.run(charstring.program)  # type: ignore[attr-defined]
    if machine.flex is not None:
        raise NotConvertible("flex does not end")
    return machine.glyph


def _decompile(charstring: object) -> None:
    """Decode a ``T1CharString``'s bytes into its program (as its own ``decompile`` does,
    which fontTools' outline extractor then reads too)."""
    bytecode = charstring.bytecode  # type: ignore[attr-defined]
    if bytecode is not None:
        charstring.setProgram(_t1_tokens(bytecode))  # type: ignore[attr-defined]


def _t1_tokens(data: bytes) -> list:
    """The tokens of a decrypted Type 1 charstring (Type 1 spec §6.2): numbers and operator
    names, exactly the list ``T1CharString.decompile`` makes (an unknown operator named
    ``unknown_<code>``, a truncated number raising what it raises), decoded in one loop:
    fontTools' reader calls three functions per token, a fifth of the step's time."""
    operators = _t1_operators()
    out: list = []
    append = out.append
    i, n = 0, len(data)
    while i < n:
        b0 = data[i]
        i += 1
        if b0 >= 32:
            if b0 <= 246:
                append(b0 - 139)
            elif b0 <= 250:
                append((b0 - 247) * 256 + data[i] + 108)
                i += 1
            elif b0 <= 254:
                append(-(b0 - 251) * 256 - data[i] - 108)
                i += 1
            else:
                if i + 4 > n:
                    raise struct.error("unpack requires a buffer of 4 bytes")
                append(int.from_bytes(data[i:i + 4], "big", signed=True))
                i += 4
        elif b0 == 12:
            b1 = data[i]
            i += 1
            append(operators.get((12, b1)) or f"unknown_12_{b1}")
        else:
            append(operators.get(b0) or f"unknown_{b0}")
    return out


@functools.cache
def _t1_operators() -> dict:
    """fontTools' Type 1 operator names by code (``12`` escapes as ``(12, code)``)."""
    from fontTools.misc.psCharStrings import T1CharString

    return dict(T1CharString.operators)


# --- writing CFF -----------------------------------------------------------------------------


def _number(value: float) -> float:
    value = _exact(value)
    if abs(value) > _MAX_FIXED:
        raise NotConvertible("a number beyond CFF's range")
    if not isinstance(value, int) and round(value * 65536) != value * 65536:
        raise NotConvertible("a fraction 16.16 cannot hold")  # (div results are rounded)
    return value


def _charstring(glyph: _Glyph) -> bytes:
    """The Type 2 charstring of one glyph (width first, stems, hint masks, path, endchar),
    written straight to bytes (TN 5177): fontTools' specializer and compiler took most of
    the conversion's time for a few percent fewer bytes, which Flate takes back."""
    out = bytearray()
    if glyph.width:
        _put(out, glyph.width)
    if glyph.seac is not None:
        for value in glyph.seac:
            _put(out, value)
        out.append(14)  # endchar
        return bytes(out)
    used = sorted({index for command, index in glyph.path if command == "H"})
    stems = sorted({s for index in used for s in glyph.hint_sets[index]},
                   key=lambda s: (s[0], s[1], s[2]))
    hstems = [s for s in stems if s[0] == "h"]
    vstems = [s for s in stems if s[0] == "v"]
    order = hstems + vstems
    masks = len({frozenset(glyph.hint_sets[index]) for index in used}) > 1
    for group, plain, masked in ((hstems, 1, 18), (vstems, 3, 23)):
        if not group:
            continue
        edge = 0
        for _, position, width in group:
            _put(out, position - edge)
            _put(out, width)
            edge = position + width
        out.append(masked if masks else plain)
    x = y = 0
    run_op: int = 0
    run_args: list[float] = []  # a run of rlineto (5) or rrcurveto (8) being gathered
    put = _put

    def flush() -> None:
        nonlocal run_op, run_args
        if run_op:
            for value in run_args:
                put(out, value)
            out.append(run_op)
        run_op, run_args = 0, []

    for command, points in glyph.path:
        # (the deltas from point to point, as a cursor walking the path computes them)
        if command == "L":
            px, py = points
            deltas: tuple = (px - x, py - y)
            x, y = px, py
            if (deltas[0] == 0) != (deltas[1] == 0):
                flush()
                put(out, deltas[1] if deltas[0] == 0 else deltas[0])
                out.append(7 if deltas[0] == 0 else 6)  # vlineto / hlineto
                continue
            op = 5
        elif command == "C":
            x1, y1, x2, y2, x3, y3 = points
            deltas = (x1 - x, y1 - y, x2 - x1, y2 - y1, x3 - x2, y3 - y2)
            x, y = x3, y3
            if deltas[0] == 0 and deltas[5] == 0:
                flush()
                for value in (deltas[1], deltas[2], deltas[3], deltas[4]):
                    put(out, value)
                out.append(30)  # vhcurveto
                continue
            if deltas[1] == 0 and deltas[4] == 0:
                flush()
                for value in (deltas[0], deltas[2], deltas[3], deltas[5]):
                    put(out, value)
                out.append(31)  # hvcurveto
                continue
            op = 8
        elif command == "H":
            if masks:
                flush()
                active = set(glyph.hint_sets[points])
                bits = "".join("1" if s in active else "0" for s in order)
                bits += "0" * (-len(bits) % 8)
                out.append(19)  # hintmask
                out += bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            continue
        elif command == "F":
            flush()
            curve_points, height = points
            for px, py in curve_points:
                put(out, px - x)
                put(out, py - y)
                x, y = px, py
            put(out, height)
            out += b"\x0c\x23"  # flex
            continue
        else:  # "M"
            px, py = points
            dx, dy = px - x, py - y
            x, y = px, py
            flush()
            if dx == 0:
                put(out, dy)
                out.append(4)  # vmoveto
            elif dy == 0:
                put(out, dx)
                out.append(22)  # hmoveto
            else:
                put(out, dx)
                put(out, dy)
                out.append(21)  # rmoveto
            continue
        if op != run_op or len(run_args) + len(deltas) > 48:
            flush()
            run_op = op
        run_args += deltas
    flush()
    out.append(14)  # endchar
    return bytes(out)


def _put(out: bytearray, value: float) -> None:
    """One Type 2 operand: an integer in 1, 2, 3 bytes, else a 16.16 fixed number."""
    short = _SHORT.get(value)  # (an integral float finds its integer: 2.0 == 2)
    if short is not None:
        out += short
        return
    if value.__class__ is not int:  # (a plain int is already what _number makes of it)
        value = _number(value)
    if isinstance(value, int):
        if -107 <= value <= 107:
            out.append(value + 139)
        elif 108 <= value <= 1131:
            value -= 108
            out += bytes(((value >> 8) + 247, value & 0xFF))
        elif -1131 <= value <= -108:
            value = -value - 108
            out += bytes(((value >> 8) + 251, value & 0xFF))
        elif -_MAX_FIXED <= value <= _MAX_FIXED:
            out += b"\x1c" + value.to_bytes(2, "big", signed=True)
        else:
            raise NotConvertible("a number beyond CFF's range")
        return
    out += b"\xff" + round(value * 65536).to_bytes(4, "big", signed=True)


def _short_operands() -> dict[float, bytes]:
    """The 1- and 2-byte Type 2 encodings of -1131..1131, by value."""
    out: dict[float, bytes] = {}
    for value in range(-1131, 1132):
        encoded = bytearray()
        if -107 <= value <= 107:
            encoded.append(value + 139)
        elif value >= 108:
            encoded += bytes((((value - 108) >> 8) + 247, (value - 108) & 0xFF))
        else:
            encoded += bytes((((-value - 108) >> 8) + 251, (-value - 108) & 0xFF))
        out[value] = bytes(encoded)
    return out


#: Most operands (outline coordinates' deltas) are small integers: their bytes, looked up.
_SHORT = _short_operands()


def _build(font: dict, glyphs: dict[str, _Glyph]) -> bytes:
    from fontTools.cffLib import (
        CFFFontSet,
        CharStrings,
        GlobalSubrsIndex,
        IndexedStrings,
        PrivateDict,
        TopDict,
        TopDictIndex,
    )
    from fontTools.misc.psCharStrings import T2CharString

    order = _charset(font.get("Encoding"), glyphs)
    if ".notdef" not in glyphs:
        glyphs[".notdef"] = _Glyph(width=0)
    strings = IndexedStrings()
    fontset = CFFFontSet()
    fontset.major, fontset.minor = 1, 0
    fontset.fontNames = [str(font.get("FontName", "Font"))]
    fontset.strings = strings
    fontset.GlobalSubrs = GlobalSubrsIndex()
    fontset.topDictIndex = TopDictIndex()
    private = PrivateDict(strings=strings)
    source = font["Private"]
    for key in _PRIVATE:
        if key in source:
            value = source[key]
            setattr(private, key, list(value) if isinstance(value, (list, tuple)) else value)
    for key, cff_key in (("StdHW", "StdHW"), ("StdVW", "StdVW")):
        value = source.get(key)
        if isinstance(value, (list, tuple)) and value:
            setattr(private, cff_key, value[0])
    private.defaultWidthX = 0
    private.nominalWidthX = 0
    top = TopDict(strings=strings)
    info = font.get("FontInfo", {})
    for key in _INFO:
        if key in info:
            setattr(top, key, info[key])
    for key in ("PaintType", "StrokeWidth", "UniqueID"):
        if key in font:
            setattr(top, key, font[key])
    top.FontMatrix = list(font.get("FontMatrix", [0.001, 0, 0, 0.001, 0, 0]))
    top.FontBBox = list(font.get("FontBBox", [0, 0, 0, 0]))
    top.charset = order
    top.Encoding = _encoding(font.get("Encoding"), set(order))
    top.Private = private
    top.GlobalSubrs = fontset.GlobalSubrs
    charstrings = CharStrings(None, order, fontset.GlobalSubrs, private, None, None)
    for name in order:
        charstrings[name] = T2CharString(bytecode=_charstring(glyphs[name]),
                                         private=private, globalSubrs=fontset.GlobalSubrs)
    top.CharStrings = charstrings
    fontset.topDictIndex.append(top)
    out = io.BytesIO()
    # (compile asks its container font only whether to recompute the bounding box: no)
    fontset.compile(out, _NoRecalc())
    return out.getvalue()


class _NoRecalc:
    recalcBBoxes = False


def _charset(encoding: object, glyphs: dict) -> list[str]:
    """Glyph order: .notdef, the encoded glyphs in code order, then the others.

    fontTools writes an unencoded glyph before an encoded one as code 0, which
    FreeType (PDFium) reads as "code 0 draws this glyph"; with the encoded glyphs
    first there is no such hole, and a glyph really encoded at 0 (CMSY's minus) keeps it.
    """
    order = [".notdef"]
    placed = {".notdef"}
    if isinstance(encoding, (list, tuple)):
        for name in encoding:
            if name in glyphs and name not in placed:
                order.append(name)
                placed.add(name)
    return order + sorted(n for n in glyphs if n not in placed)


def _encoding(encoding: object, names: set[str]) -> object:
    """The built-in encoding: StandardEncoding by name, else code -> glyph name (a glyph
    named by two codes keeps the first: CFF's supplements are not written by fontTools)."""
    from fontTools.encodings.StandardEncoding import StandardEncoding

    if not isinstance(encoding, (list, tuple)) or len(encoding) != 256:
        return "StandardEncoding"
    if list(encoding) == list(StandardEncoding):
        return "StandardEncoding"
    seen: set[str] = set()
    out = []
    for name in encoding:
        if name in names and name != ".notdef" and name not in seen:
            seen.add(name)
            out.append(name)
        else:
            if name in seen and name != ".notdef":
                raise NotConvertible("a glyph named by two codes of the built-in encoding")
            out.append(".notdef")
    return out


# --- checking ---------------------------------------------------------------------------------


def _check(font: dict, data: bytes, names: set[str]) -> None:
    """Each glyph of ``names`` in ``data`` must draw exactly the outline of the Type 1 glyph
    (components resolved), with the same advance; the built-in encodings must agree on them."""
    from fontTools.cffLib import CFFFontSet
    from fontTools.pens.recordingPen import DecomposingRecordingPen

    cff = CFFFontSet()
    cff.decompile(io.BytesIO(data), None)
    top = cff[cff.fontNames[0]]
    new = top.CharStrings
    old = font["CharStrings"]
    for name in old:
        if name not in names:
            continue
        if name not in new:
            raise NotConvertible(f"glyph {name} missing")
        a = DecomposingRecordingPen(old)
        old_width = _draw_t1(old[name], a)
        drawn, new_width = _outline_t2(new[name], new)
        if not _same_outline(a.value, drawn) or not math.isclose(
                old_width, new_width, abs_tol=_TOLERANCE):
            raise NotConvertible(f"glyph {name} draws differently")
    encoding = font.get("Encoding")
    if isinstance(encoding, (list, tuple)) and isinstance(top.Encoding, list):
        built = _read_encoding(data, top.rawDict["Encoding"], top.charset)
        for code, name in enumerate(encoding):
            if name in old and name in names and name != ".notdef" and built.get(code) != name:
                raise NotConvertible("the built-in encoding changed")


def _draw_t1(charstring: object, pen: object) -> float:
    """``T1CharString.draw``: fontTools' outline extractor, run by :func:`_extractors`' loop."""
    t1, _ = _extractors()
    machine = t1(pen, charstring.subrs)  # type: ignore[attr-defined]
    machine.execute(charstring)
    charstring.width = machine.width  # type: ignore[attr-defined]
    return float(machine.width)


def _outline_t2(charstring: object, glyphs: object) -> tuple[list, float]:
    """What a ``DecomposingRecordingPen`` over ``glyphs`` records of the Type 2 ``charstring``
    drawn by fontTools, and its advance: the written bytes decoded by :func:`_t2_tokens` and
    drawn by :func:`_t2_outline` (tested equal to fontTools' drawing), else by fontTools."""
    from fontTools.pens.recordingPen import DecomposingRecordingPen

    bytecode = charstring.bytecode  # type: ignore[attr-defined]
    private = charstring.private  # type: ignore[attr-defined]
    if bytecode is not None:
        program = _t2_tokens(bytecode)
        if program is not None:
            drawn = _t2_outline(program, private.nominalWidthX, private.defaultWidthX)
            if drawn is not None:
                return drawn
            charstring.setProgram(program)  # type: ignore[attr-defined]
    pen = DecomposingRecordingPen(glyphs)
    return pen.value, _draw_t2(charstring, pen)


#: Type 2 operators whose operands may begin with the advance (fontTools' popallWidth).
_T2_WIDTH_FIRST = frozenset(("rmoveto", "hmoveto", "vmoveto", "endchar", "hstem", "vstem",
                             "hstemhm", "vstemhm", "hintmask"))
#: Operators declaring stems (the first ``hintmask`` declares those before it).
_T2_STEMS = frozenset(("hstem", "vstem", "hstemhm", "vstemhm", "hintmask"))


def _t2_outline(program: list, nominal: float, default: float) -> tuple[list, float] | None:
    """The pen calls (as a ``RecordingPen`` records them) and the advance of fontTools'
    ``T2OutlineExtractor`` running ``program``, a :func:`_t2_tokens` program; None for one
    that is not regular (an operator with operands it does not take, an accented glyph's
    ``endchar``): fontTools then draws it.

    The same arithmetic in the same order as fontTools (``_nextPoint``, ``vcurveto``,
    ``hcurveto``, ``alternatingLineto``, ``popallWidth``), without a method call per
    operand and per point: the check draws every glyph of every converted program.
    """
    value: list = []
    record = value.append
    x = y = 0
    open_path = False  # fontTools' sawMoveTo
    width, got_width = 0.0, False  # (fontTools' reset: no advance until one is read)
    stack: list = []
    i, n = 0, len(program)
    hints = mask = 0  # fontTools' hintCount and hintMaskBytes
    while i < n:
        token = program[i]
        i += 1
        if not isinstance(token, str):
            stack.append(token)
            continue
        if token == "hintmask":
            i += 1  # (its bytes)
            if mask:
                continue  # (the mask's length is known: fontTools pops nothing)
        args, stack = stack, []
        if token in _T2_WIDTH_FIRST and not got_width:
            # popallWidth: an operand beyond what the operator takes is the advance
            if (token in ("hmoveto", "vmoveto")) ^ (len(args) % 2 == 1):
                if not args:
                    return None
                width = nominal + args[0]
                args = args[1:]
            else:
                width = default
            got_width = True
        if token in _T2_STEMS:
            hints += len(args) // 2
            if token == "hintmask":
                mask = (hints + 7) // 8
            continue
        if token in ("rmoveto", "hmoveto", "vmoveto"):
            if len(args) != (2 if token == "rmoveto" else 1):
                return None
            if open_path:
                record(("closePath", ()))
            if token == "rmoveto":
                x, y = x + args[0], y + args[1]
            elif token == "hmoveto":
                x, y = x + args[0], y + 0
            else:
                x, y = x + 0, y + args[0]
            record(("moveTo", ((x, y),)))
            open_path = True
            continue
        if token == "endchar":
            if args:
                return None  # seac: fontTools resolves the components
            if open_path:
                record(("closePath", ()))
            open_path = False
            continue
        # lines and curves: a path without a moveto starts where the point is
        if token in ("rlineto", "hlineto", "vlineto"):
            if token == "rlineto":
                if len(args) % 2:
                    return None
                deltas = [(args[k], args[k + 1]) for k in range(0, len(args), 2)]
            else:
                horizontal = token == "hlineto"
                deltas = []
                for arg in args:
                    deltas.append((arg, 0) if horizontal else (0, arg))
                    horizontal = not horizontal
            for dx, dy in deltas:
                if not open_path:
                    record(("moveTo", ((x + 0, y + 0),)))
                    x, y = x + 0, y + 0
                    open_path = True
                x, y = x + dx, y + dy
                record(("lineTo", ((x, y),)))
            continue
        if token == "rrcurveto":
            if len(args) % 6:
                return None
            curves = [args[k:k + 6] for k in range(0, len(args), 6)]
        elif token in ("vhcurveto", "hvcurveto"):
            if len(args) < 4 or len(args) % 4 > 1:
                return None
            curves = []
            vertical = token == "vhcurveto"
            while args:
                a, b, c, d = args[:4]
                args = args[4:]
                last = 0
                if len(args) == 1:
                    last, args = args[0], []
                curves.append([0, a, b, c, d, last] if vertical else [a, 0, b, c, last, d])
                vertical = not vertical
        elif token == "flex":
            if len(args) != 13:
                return None
            curves = [args[0:6], args[6:12]]
        else:
            return None
        for dxa, dya, dxb, dyb, dxc, dyc in curves:
            if not open_path:
                record(("moveTo", ((x + 0, y + 0),)))
                x, y = x + 0, y + 0
                open_path = True
            x1, y1 = x + dxa, y + dya
            x2, y2 = x1 + dxb, y1 + dyb
            x, y = x2 + dxc, y2 + dyc
            record(("curveTo", ((x1, y1), (x2, y2), (x, y))))
    if open_path:
        record(("closePath", ()))
    return value, float(width)


def _draw_t2(charstring: object, pen: object) -> float:
    """``T2CharString.draw``, run by :func:`_extractors`' loop."""
    _, t2 = _extractors()
    private = charstring.private  # type: ignore[attr-defined]
    machine = t2(pen, getattr(private, "Subrs", []), charstring.globalSubrs,  # type: ignore[attr-defined]
                 private.nominalWidthX, private.defaultWidthX, private)
    machine.execute(charstring)
    charstring.width = machine.width  # type: ignore[attr-defined]
    return float(machine.width)


@functools.cache
def _extractors() -> tuple[type, type]:
    """fontTools' Type 1 and Type 2 outline extractors, running a decoded program in a plain
    loop (the check's reference stays fontTools' operators: only the dispatch is ours).

    fontTools' loop asks ``getToken`` for each token and looks its operator's method up by
    name each time; here a method is looked up once per operator name and the program is
    read as a list.  A charstring still in bytes goes through fontTools' own loop.
    """
    from fontTools.misc.psCharStrings import (
        SimpleT2Decompiler,
        T1OutlineExtractor,
        T2OutlineExtractor,
    )

    missing = object()

    class Loop(SimpleT2Decompiler):
        handlers: ClassVar[dict]

        def execute(self, charString, *, pushToStack=None):
            if charString.needsDecompilation() or pushToStack is not None:
                return super().execute(charString, pushToStack=pushToStack)
            self.callingStack.append(charString)
            push = self.operandStack.append
            handlers = self.handlers
            program = charString.program
            index, end = 0, len(program)
            while index < end:
                token = program[index]
                index += 1
                if isinstance(token, str):
                    handler = handlers.get(token, missing)
                    if handler is missing:
                        handler = handlers[token] = getattr(type(self), "op_" + token, None)
                    if handler is not None:
                        rv = handler(self, index)
                        if rv:
                            index = rv[1]  # (a hint mask's bytes were read)
                    else:
                        self.popall()
                else:
                    push(token)
            del self.callingStack[-1]
            return None

    class T1(T1OutlineExtractor, Loop):
        handlers: ClassVar[dict] = {}

    class T2(T2OutlineExtractor, Loop):
        handlers: ClassVar[dict] = {}

    return T1, T2


#: Type 2 operators of the charstrings :func:`_charstring` writes, by code.
_T2_WRITTEN = {1: "hstem", 3: "vstem", 4: "vmoveto", 5: "rlineto", 6: "hlineto", 7: "vlineto",
               8: "rrcurveto", 14: "endchar", 18: "hstemhm", 19: "hintmask", 21: "rmoveto",
               22: "hmoveto", 23: "vstemhm", 30: "vhcurveto", 31: "hvcurveto"}


def _t2_tokens(data: bytes) -> list | None:
    """The program fontTools' Type 2 outline extractor decodes from ``data`` (TN 5177), or
    None for a charstring using an operator :func:`_charstring` does not write (subroutines,
    arithmetic, other flexes): fontTools then decodes it itself.

    A hint mask's length depends on the stems declared before it: as in fontTools, the
    operands before each stem operator, and before the first ``hintmask``, count a stem per
    two (an odd one is the width); its length is fixed at the first ``hintmask``.
    """
    out: list = []
    append = out.append
    i, n = 0, len(data)
    depth = hints = mask = 0  # operands on the stack; stems declared; hint mask bytes
    while i < n:
        b0 = data[i]
        i += 1
        if b0 >= 32:
            if b0 <= 246:
                append(b0 - 139)
            elif b0 <= 254:
                if i >= n:
                    return None
                if b0 <= 250:
                    append((b0 - 247) * 256 + data[i] + 108)
                else:
                    append(-(b0 - 251) * 256 - data[i] - 108)
                i += 1
            else:
                if i + 4 > n:
                    return None
                append(int.from_bytes(data[i:i + 4], "big", signed=True) / 65536)
                i += 4
            depth += 1
        elif b0 == 28:
            if i + 2 > n:
                return None
            append(int.from_bytes(data[i:i + 2], "big", signed=True))
            i += 2
            depth += 1
        elif b0 == 12:
            if i >= n or data[i] != 35:
                return None
            append("flex")
            i += 1
            depth = 0
        else:
            name = _T2_WRITTEN.get(b0)
            if name is None:
                return None
            append(name)
            if b0 == 19:  # hintmask
                if not mask:
                    hints += depth // 2
                    depth = 0
                    mask = (hints + 7) // 8
                if i + mask > n:
                    return None
                append(data[i:i + mask])
                i += mask
            elif b0 in (1, 3, 18, 23):  # stems
                hints += depth // 2
                depth = 0
            else:
                depth = 0
    return out


def _read_encoding(data: bytes, offset: int, charset: list[str]) -> dict[int, str]:
    """Code -> glyph of a custom CFF encoding, as FreeType reads it (fontTools' reader
    takes code 0 in format 0 for "unencoded", FreeType for code 0)."""
    fmt = data[offset] & 0x7F
    count = data[offset + 1]
    out: dict[int, str] = {}
    if fmt == 0:
        for gid in range(1, min(count + 1, len(charset))):
            out[data[offset + 1 + gid]] = charset[gid]
        return out
    gid, at = 1, offset + 2
    for _ in range(count):
        first, left = data[at], data[at + 1]
        at += 2
        for code in range(first, first + left + 1):
            if gid < len(charset):
                out[code] = charset[gid]  # (a later glyph wins, as in FreeType)
            gid += 1
    return out


#: Font units two outlines' points may differ by: a Type 1 quotient as exact and as 16.16.
_TOLERANCE = 1e-3


def _same_outline(a: list, b: list) -> bool:
    """Equal outlines: the same segments through the same points (closing is implicit)."""
    def segments(value: list) -> list:
        return [(op, args) for op, args in value if op not in ("closePath", "endPath")]

    sa, sb = segments(a), segments(b)
    if sa == sb:
        return True  # (the same points exactly: most glyphs)
    if len(sa) != len(sb):
        return False
    for (op_a, args_a), (op_b, args_b) in zip(sa, sb):
        if op_a != op_b or len(args_a) != len(args_b):
            return False
        for (xa, ya), (xb, yb) in zip(args_a, args_b):
            if abs(xa - xb) > _TOLERANCE or abs(ya - yb) > _TOLERANCE:
                return False
    return True
