"""Content streams written with the digits a reader can show, and no more.

Producers write coordinates with far more digits than any page can show:
Quartz writes ``0 0.00002324581 719.9999 540 re`` and
``0.7303421 0 0 0.7303445 12.00008 -9.169578 cm``, dvipdfm-style TeX output
kerns with ``-505.147``, CAD and plotting tools write 6 decimals on every path
point.  On vector-heavy pages those digits are a third to a half of the
content bytes (docling-parse dln-v1: 143 KB of Flate content, 56 KB rounded;
a Keynote export 154 -> 99 KB), and Ghostscript, which writes every number
again, wins those files on content alone.

Every number is rounded so that what it places on the page moves by at most
:data:`EPSILON` points (0.005 pt: a 600 dpi printer dot is 0.12 pt, a 300 dpi
screen pixel 0.24 pt).  How many decimals that takes depends on the scale the
number is used at, tracked as content is read: the current transformation
(``cm``, saved and restored by ``q``/``Q``) for path coordinates and the
translation of ``cm`` and ``Tm``; that times the text matrix (``Tm``) for
``Td``; times the font size and horizontal scaling for the ``TJ`` kerns, which
are thousandths of an em.  Text is placed ten times more precisely
(:data:`TEXT_EPSILON`): readers infer spaces from glyph gaps.  Parameters a later operator uses at whatever scale
is in effect then (``w``, the dash phase, ``Tc``, ``Tw``, ``TL``, ``Ts``,
``TD``, ``Tz``: a ``Tc`` often comes before the ``Tm`` of its text object), the
linear parts of matrices and font sizes keep :data:`SIGNIFICANT` significant
digits; colours :data:`COLOUR_DECIMALS` decimals (an 8-bit channel's step is
0.0039).  Numbers of every other operator are written as they were.

Form XObjects are rounded at the largest scale any page draws them at (found
while the pages are read); forms drawn from nowhere a page reaches (an
annotation's appearance, a pattern) and Type 3 glyph procedures are left
alone.  A stream is rewritten only when it has digits to lose
(:data:`MIN_EXCESS`), and kept when the result is not :data:`MIN_SAVING` smaller; one that does
not parse is kept as it is.  The pipeline runs this from ``medium`` on
(``lossless`` and ``low`` keep every number; the safe fallback too).

Streams are read by a tokenizer of compiled expressions (:class:`_Tokenized`, a third of
the time of parsing them into pikepdf objects) that writes byte for byte what the
parsed path (:meth:`_Rounder._parsed`) writes; what it does not read exactly as qpdf
does goes through qpdf's parser, as before.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pikepdf
from pikepdf import Dictionary, Name, Stream

if TYPE_CHECKING:
    from squeezer.engines.budget import Budget
    from squeezer.engines.report import Report

#: How far, in points on the page, a rounded number may move what it places.
EPSILON = 0.01 / 2
#: How far a rounded number may move text: ten times less, because a reader's text
#: extraction infers spaces and line breaks from glyph gaps, and a gap right at its
#: threshold flips with any shift (the pipeline retries without rounding when the
#: extracted text changed anyway).
TEXT_EPSILON = EPSILON / 10
#: Significant digits kept in matrices' linear parts, font sizes and ``Tz``.
SIGNIFICANT = 6
#: Decimals kept in colour operands (components are 0-1 in most spaces).
COLOUR_DECIMALS = 3
#: Digits beyond the second decimal, as a share of a stream's bytes, below which the
#: stream is not worth parsing.
MIN_EXCESS = 0.02
#: A rewrite that saves less than this share of the decoded bytes is dropped: after Flate
#: it may not be smaller at all (PLAI, a book whose numbers mostly had 2 decimals already,
#: came out 898 B larger of 594 KB; 145 B with this rule; a PDFDrive book 0.2 % larger,
#: now 0.3 % smaller).
MIN_SAVING = 0.05
#: Most decimals any number keeps (a scale that asks for more is taken as this).
MAX_DECIMALS = 8
#: A form re-read at a larger scale than before more often than this is left as it was
#: (a form that draws itself, scaled).
_MAX_VISITS = 4

_LONG_FRACTION = re.compile(rb"\.(\d{3,})")
_COLOUR = frozenset({"sc", "scn", "SC", "SCN", "rg", "RG", "k", "K", "g", "G"})
_PATH = frozenset({"m", "l", "c", "v", "y", "re"})
#: state parameters: used later, at a scale not known when they are set
_STATE = frozenset({"w", "Tc", "Tw", "TL", "Ts", "TD", "Tz"})


def round_numbers(pdf: pikepdf.Pdf, budget: Budget, report: Report) -> int:
    """Round the numbers of the content streams of ``pdf``'s pages and of the forms they
    draw; return the bytes saved (decoded)."""
    rounder = _Rounder(pdf)
    saved = 0
    for page in pdf.pages:
        budget.check_time()
        saved += rounder.page(page.obj)
    saved += rounder.forms(budget)
    if saved:
        report.steps["content"] = report.steps.get("content", 0) + saved
    return saved


def worth_rounding(data: bytes) -> bool:
    """Whether ``data`` has enough digits past the second decimal to be worth parsing."""
    if len(data) < 256:
        return False
    fractions = _LONG_FRACTION.findall(data)
    excess = sum(map(len, fractions)) - 2 * len(fractions)
    return excess >= MIN_EXCESS * len(data)


def _scale(a: float, b: float, c: float, d: float) -> float:
    """How much a matrix's linear part stretches a length at most (its largest singular
    value: 1 for a translation or rotation)."""
    square = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return math.sqrt(max(0.0, (square + math.sqrt(max(0.0, square * square - 4 * det * det))) / 2))


def _decimals(scale: float, epsilon: float = EPSILON) -> int:
    """Decimals that keep a number used at ``scale`` within ``epsilon`` points."""
    if not 1e-12 < scale < 1e12:
        return MAX_DECIMALS if scale >= 1e12 or not scale >= 0 else 0
    return max(0, min(MAX_DECIMALS, math.ceil(math.log10(scale / (2 * epsilon)))))


def fixed(value: float, decimals: int) -> bytes:
    """``value`` with at most ``decimals`` decimals, no trailing zeros, no leading ``0``
    before the point (``.5``: ISO 32000-1 §7.3.3), never ``-0`` or an exponent."""
    text = "%.*f" % (decimals, value)  # noqa: UP031 - (the fastest way: half a million calls on a book)
    if decimals:
        text = text.rstrip("0")
        if text[-1] == ".":
            text = text[:-1]
    if text[0] == "0":
        if len(text) > 1:
            text = text[1:]  # 0.5 -> .5
    elif text[0] == "-" and text[1] == "0":
        text = "-" + text[2:] if len(text) > 2 else "0"  # -0.5 -> -.5, -0 -> 0
    return text.encode()


def significant(value: float) -> bytes:
    """``value`` with :data:`SIGNIFICANT` significant digits, written without an exponent."""
    if value == 0 or not math.isfinite(value):
        return b"0"
    digits = SIGNIFICANT - 1 - math.floor(math.log10(abs(value)))
    return fixed(value, max(0, min(digits, MAX_DECIMALS + 4)))


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is Decimal or kind is int:
        return float(value)
    return None


class _State:
    """What decides how far numbers may be rounded: the scales in effect."""

    __slots__ = ("ctm", "horizontal", "size", "text")

    def __init__(self, ctm: float) -> None:
        self.ctm = ctm  # the current transformation's stretch
        self.text = 1.0  # the text matrix's stretch (BT resets it)
        self.size = 1.0  # the font size (Tf)
        self.horizontal = 1.0  # Tz / 100

    def copy(self) -> _State:
        other = _State(self.ctm)
        other.text, other.size, other.horizontal = self.text, self.size, self.horizontal
        return other


class _Rounder:
    def __init__(self, pdf: pikepdf.Pdf) -> None:
        self.pdf = pdf
        #: the largest scale each form XObject is drawn at, by objgen
        self.form_scale: dict[tuple[int, int], float] = {}
        self.form_resources: dict[tuple[int, int], Any] = {}
        self.done: dict[tuple[int, int], float] = {}
        self.visits: dict[tuple[int, int], int] = {}
        self._fast = _Tokenized(self)

    # --- streams ---------------------------------------------------------------------------

    def page(self, page: Dictionary) -> int:
        contents = page.get("/Contents")
        listed = list(contents) if isinstance(contents, pikepdf.Array) else [contents]
        streams = [s for s in listed if isinstance(s, Stream)]
        if not streams or len(streams) != len(listed):
            return 0
        try:
            data = b"\n".join(s.read_bytes() for s in streams)
        except (pikepdf.PdfError, ValueError, TypeError, UnicodeDecodeError):
            return 0
        if not worth_rounding(data):
            # not rewritten; the forms it draws are then not known, and stay as they are
            return 0
        new = self._rewrite(data, 1.0, page.get("/Resources"), page)
        if new is None or len(new) > (1 - MIN_SAVING) * len(data):
            return 0
        page.Contents = self.pdf.make_stream(new)
        return len(data) - len(new)

    def forms(self, budget: Budget) -> int:
        """Rewrite the forms the pages draw, each at the largest scale it is drawn at."""
        saved = 0
        originals: dict[tuple[int, int], bytes] = {}
        while True:
            todo = [k for k, s in self.form_scale.items()
                    if s > self.done.get(k, 0.0) and self.visits.get(k, 0) < _MAX_VISITS]
            if not todo:
                break
            for key in todo:
                budget.check_time()
                self.visits[key] = self.visits.get(key, 0) + 1
                scale = self.form_scale[key]
                self.done[key] = scale
                form = self.pdf.get_object(key)
                if not isinstance(form, Stream):
                    continue
                try:
                    data = originals.get(key)
                    if data is None:
                        data = originals[key] = form.read_bytes()
                except (pikepdf.PdfError, ValueError, TypeError, UnicodeDecodeError):
                    continue
                if not worth_rounding(data):
                    continue
                matrix = form.stream_dict.get("/Matrix")
                stretch = 1.0
                if isinstance(matrix, pikepdf.Array) and len(matrix) == 6:
                    values = [_number(v) for v in matrix]
                    if all(v is not None for v in values):
                        stretch = _scale(*values[:4])  # type: ignore[arg-type]
                resources = form.stream_dict.get("/Resources", self.form_resources.get(key))
                # (parsed from its original bytes: a second visit at a larger scale
                # starts again from them)
                new = self._rewrite(data, scale * stretch, resources)
                if new is None:
                    continue
                if len(new) <= (1 - MIN_SAVING) * len(data):
                    form.write(new)
                else:
                    form.write(data)
        for key, data in originals.items():
            form = self.pdf.get_object(key)
            if isinstance(form, Stream):
                saved += max(0, len(data) - len(form.read_bytes()))
        return saved

    # --- one stream --------------------------------------------------------------------------

    def _rewrite(self, data: bytes, ctm: float, resources: Any,
                 page: Dictionary | None = None) -> bytes | None:
        """``data`` (a form's bytes, or those of ``page``'s content streams joined) rewritten,
        or None when it is kept."""
        source: Any = page
        try:
            return self._fast.rewrite(data, ctm, resources)
        except _InlineImage:
            source = page if page is not None else pikepdf.Stream(self.pdf, data)
            try:
                return self._fast.with_images(source, ctm, resources)
            except _Unsure:
                pass
        except _Unsure:
            pass  # (something the tokenizer does not read the way qpdf does: ask qpdf)
        if source is None:
            source = pikepdf.Stream(self.pdf, data)
        return self._parsed(source, ctm, resources)

    def _parsed(self, source: Any, ctm: float, resources: Any) -> bytes | None:
        """The rewrite through qpdf's parser: every instruction as pikepdf objects."""
        try:
            instructions = pikepdf.parse_content_stream(source)
            xobjects = resources.get("/XObject") if isinstance(resources, Dictionary) else None
        except Exception:  # noqa: BLE001 - a stream or resources qpdf cannot read: keep them
            return None
        state = _State(ctm)
        stack: list[_State] = []
        out: list[bytes] = []
        for item in instructions:
            if isinstance(item, pikepdf.ContentStreamInlineImage):
                out.append(pikepdf.unparse_content_stream([item]))
                continue
            try:
                operands = list(item.operands)
                op = str(item.operator)  # (a fuzzed operator is no UTF-8: UnicodeDecodeError)
                words = self._instruction(op, operands, state, stack, xobjects, resources)
            except Exception:  # noqa: BLE001 - whatever a damaged stream holds: keep it as it is
                return None
            if op == "q":
                stack.append(state.copy())
            elif op == "Q" and stack:
                state = stack.pop()
            out.append(b" ".join(words))
        return b"\n".join(out)

    def _instruction(self, op: str, operands: Sequence[Any], state: _State, stack: list,
                     xobjects: Any, resources: Any) -> list[bytes]:
        """The instruction's words (operands rounded as its operator allows, then the
        operator), updating ``state`` as a reader would."""
        numbers = [_number(v) for v in operands]
        given = [n for n in numbers if n is not None]
        only_numbers = len(given) == len(numbers)  # (every operand a number)
        words: list[bytes] | None = None
        if op in _PATH and only_numbers:
            d = _decimals(state.ctm)
            words = [fixed(v, d) for v in given]
        elif op in _COLOUR:
            words = [fixed(v, COLOUR_DECIMALS) if v is not None else _unparse(o)
                     for v, o in zip(numbers, operands, strict=True)]
        elif op in ("cm", "Tm") and len(given) == 6 and only_numbers:
            a, b, c, d_, e, f = given
            place = _decimals(state.ctm, EPSILON if op == "cm" else TEXT_EPSILON)
            words = [significant(a), significant(b), significant(c), significant(d_),
                     fixed(e, place), fixed(f, place)]
            if op == "cm":
                state.ctm *= _scale(a, b, c, d_)
            else:
                state.text = _scale(a, b, c, d_)
        elif op == "BT":
            state.text = 1.0
        elif op == "Td" and only_numbers:
            d = _decimals(state.ctm * state.text, TEXT_EPSILON)
            words = [fixed(v, d) for v in given]
        elif op in _STATE and only_numbers:
            if op == "Tz" and given:
                state.horizontal = abs(given[0]) / 100
            # kept in the graphics or text state and used at whatever scale is in effect
            # when something is drawn later (a Tc before the Tm of its BT): only
            # significant digits are safe
            words = [significant(v) for v in given]
        elif op == "Tf" and len(numbers) == 2 and numbers[0] is None and len(given) == 1:
            state.size = abs(given[0])
            words = [_unparse(operands[0]), significant(given[0])]
        elif op == "TJ" and len(operands) == 1 and isinstance(operands[0], pikepdf.Array):
            d = _decimals(state.ctm * state.text * state.size * state.horizontal / 1000,
                          TEXT_EPSILON)
            words = [_array(operands[0], d)]
        elif op == "d" and len(operands) == 2 and isinstance(operands[0], pikepdf.Array) \
                and len(given) == 1 and numbers[1] is not None:
            words = [_unparse(operands[0]), significant(given[0])]
        elif op == "Do" and len(operands) == 1 and isinstance(xobjects, Dictionary):
            self._drawn(xobjects.get(str(operands[0])), state.ctm, resources)
        if words is None:
            words = [_unparse(o) for o in operands]
        words.append(op.encode())
        return words

    def _drawn(self, xobject: Any, scale: float, resources: Any) -> None:
        """Note that form ``xobject`` is drawn at ``scale``."""
        if not (isinstance(xobject, Stream) and xobject.is_indirect
                and xobject.stream_dict.get("/Subtype") == Name.Form):
            return
        key = xobject.objgen
        if scale > self.form_scale.get(key, 0.0):
            self.form_scale[key] = scale
        if "/Resources" not in xobject.stream_dict:
            self.form_resources.setdefault(key, resources)


def _plain(value: Any) -> bytes:
    """An integer or real as it was written (reals without an exponent)."""
    if isinstance(value, Decimal):
        text = format(value, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".") or "0"
        return text.encode()
    return str(int(value)).encode()


def _unparse(value: Any) -> bytes:
    if value is None:  # (pikepdf gives a null operand as None: damaged files have them)
        return b"null"
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, (int, Decimal)):
        return _plain(value)
    if isinstance(value, pikepdf.Object):
        return bytes(value.unparse())
    raise TypeError(f"unexpected content stream operand {type(value).__name__}")


def _array(array: pikepdf.Array, decimals: int) -> bytes:
    """A ``TJ`` array, its numbers rounded, with no space a reader does not need (one only
    between two tokens that would otherwise run together: ``-5.9 3``, ``null -12``)."""
    parts: list[bytes] = [b"["]
    last = b"["
    for value in array:
        kind = type(value)
        if kind is Decimal or kind is int:
            word = fixed(float(value), decimals)
        elif isinstance(value, pikepdf.Object):
            word = value.unparse()
        else:
            word = _unparse(value)
        if not word:
            continue
        if last[-1] not in _CLOSED and word[0] not in _OPENED:
            parts.append(b" ")
        parts.append(word)
        last = word
    parts.append(b"]")
    return b"".join(parts)


#: Tokens ending with one of these end themselves; tokens starting with one of these start
#: themselves (ISO 32000-1 §7.2.2 delimiters).
_CLOSED = frozenset(b")>]}[")
_OPENED = frozenset(b"(<[/{")


# --- the tokenizer ---------------------------------------------------------------------------
#
# Parsing a stream into pikepdf objects and writing them back costs ~10 us an instruction
# (three quarters of this step's time).  Most instructions are numbers and an operator,
# so one compiled expression reads a whole instruction at a time, and only its numbers go
# through Python.  It writes exactly what the parsed path writes (the qpdf spelling of every
# operand: ``[ 1 2 ]``, sorted dictionary keys, strings re-escaped), and reads only the part
# of the syntax where that is certain; anything else (a comment, nested arrays or
# dictionaries, a token qpdf reads as something else, operands with no operator) raises
# :class:`_Unsure`, and the stream goes through qpdf's parser as before.  A stream with
# inline images is parsed by qpdf (which alone says where their data ends as the parsed
# path does), and the instructions between the images are rounded by the tokenizer.

_WS = rb"\x00\t\n\x0c\r "
_DELIMITED = _WS + rb"()<>\[\]{}/%"
_END = rb"(?=[" + _DELIMITED + rb"]|\Z)"
_NUM = rb"[+-]?+(?:\d++(?:\.\d*+)?+|\.\d++)" + _END
_NAME = rb"/[^" + _DELIMITED + rb"]*+"
# a literal string with at most one level of balanced parentheses inside
_STRING = rb"\((?:[^()\\]++|\\.|\((?:[^()\\]++|\\.)*+\))*+\)"
_HEX = rb"<[0-9A-Fa-f" + _WS + rb"]*+>"
_KEYWORD = rb"(?:true|false|null)" + _END
_ELEMENT = b"|".join((_NUM, _NAME, _STRING, _HEX, _KEYWORD))
_ARRAY = rb"\[(?:[" + _WS + rb"]++|" + _ELEMENT + rb")*+\]"
_DICT = rb"<<(?:[" + _WS + rb"]++|" + _ELEMENT + b"|" + _ARRAY + rb")*+>>"
_OPERAND = b"|".join((_NUM, _NAME, _STRING, _ARRAY, _HEX, _DICT, _KEYWORD))
#: (any other word of printable ASCII is an operator to qpdf: ``1.2.3``, ``1e5``, ``-``)
_OPERATOR = rb"(?!" + _KEYWORD + rb")[!-$&-'*-.0-;=?-Z\\^-z|~]++" + _END
#: one instruction: (numbers, operator) when every operand is a number (and no NUL, which
#: is whitespace to qpdf but not to bytes.split, stands between them), else (operands,
#: operator); or, from the first character of something else, the rest of the stream
#: (which is then left to qpdf)
_INSTRUCTION = re.compile(
    rb"[" + _WS + rb"]*+(?:((?:" + _NUM + rb"[\t\n\x0c\r ]*+)*+)(" + _OPERATOR + rb")"
    rb"|((?:(?:" + _OPERAND + rb")[" + _WS + rb"]*+)*+)(" + _OPERATOR + rb")"
    # (the rest of the stream: findall stops there, instead of trying again at every
    # following character, which is quadratic in a long run of operands)
    rb"|([^" + _WS + rb"].*))", re.DOTALL)
#: the operands of one instruction, or the elements of an array
_OPERANDS = re.compile(_OPERAND, re.DOTALL)
#: the operator that starts an inline image (or those letters alone in a string)
_INLINE_IMAGE = re.compile(rb"(?<![^" + _WS + rb"()<>\[\]{}%])BI(?![^" + _DELIMITED + rb"])")
#: names and literal strings qpdf writes back exactly as they were written
_AS_WRITTEN = re.compile(rb"/[!\"$&'*-.0-;=?-Z\\^-z|~]+|\([ -'*-\[\]-~]*\)")
_NUMBER_START = frozenset(b"+-.0123456789")
#: two tokens that end and start with a regular character (numbers, names, keywords) with
#: only white space between them: written with a space between them (or characters of a
#: string that look so)
_ADJACENT = re.compile(rb"[^" + _DELIMITED + rb"][" + _WS + rb"]+[^" + _DELIMITED + rb"]")

# what an operator does to the numbers (and the state) of the fast path
(_PLAIN, _K_PATH, _K_COLOUR, _K_CM, _K_TM, _K_BT, _K_TD, _K_STATE, _K_TF, _K_TJ, _K_DASH,
 _K_DO, _K_PUSH, _K_POP, _K_UNSURE) = range(15)
_KIND: dict[bytes, int] = {
    **{op.encode(): _K_PATH for op in _PATH}, **{op.encode(): _K_COLOUR for op in _COLOUR},
    **{op.encode(): _K_STATE for op in _STATE},
    b"cm": _K_CM, b"Tm": _K_TM, b"BT": _K_BT, b"Td": _K_TD, b"Tf": _K_TF, b"TJ": _K_TJ,
    b"d": _K_DASH, b"Do": _K_DO, b"q": _K_PUSH, b"Q": _K_POP,
    # (inline images: binary data the expression must not read as tokens)
    b"BI": _K_UNSURE, b"ID": _K_UNSURE, b"EI": _K_UNSURE,
}
#: operators whose numbers are written at a fixed precision, whatever the state
_COLOURS = [op.encode() for op in _COLOUR]
_STATES = [op.encode() for op in _STATE if op != "Tz"]
#: entries a cache of written numbers may hold before it starts again
_CACHE_LIMIT = 200_000


class _Unsure(Exception):
    """The tokenizer met something it does not read the way qpdf does."""


class _InlineImage(_Unsure):
    """The stream holds an inline image (whose data only qpdf's parser delimits as the
    parsed path does)."""


def _integer(token: bytes) -> bool:
    """Whether number token ``token`` is an integer qpdf reads as one (qpdf reads an integer
    past 64 bits as null)."""
    if b"." in token:
        return False
    if len(token.lstrip(b"+-")) > 18:
        raise _Unsure
    return True


class _Fixed(dict[bytes, bytes]):
    """Number tokens written with at most ``decimals`` decimals."""

    def __init__(self, decimals: int) -> None:
        super().__init__()
        self.decimals = decimals

    def __missing__(self, token: bytes) -> bytes:
        _integer(token)
        word = self[token] = fixed(float(token), self.decimals)
        return word


class _Numbers(dict[bytes, bytes | None]):
    """What stands between two strings of a ``TJ`` array, when it is numbers only:
    those numbers as :class:`_Fixed` writes them, a space between two (else None)."""

    def __init__(self, numbers: _Fixed) -> None:
        super().__init__()
        self.numbers = numbers

    def __missing__(self, between: bytes) -> bytes | None:
        # (anything but digits, signs, points and white space, i.e. a name or a keyword: the
        # array is read token by token)
        word = self[between] = b" ".join(map(self.numbers.__getitem__, between.split())) \
            if _NUMBERS_ONLY.fullmatch(between) else None
        return word


#: a plain literal string (written as it was: :data:`_AS_WRITTEN`), or another literal or
#: hex string, as the groups re.split keeps (in an array :data:`_ARRAY` read, the first
#: parenthesis or angle bracket starts a string)
_ARRAY_STRING = re.compile(rb"(\([ -'*-\[\]-~]*\))|(" + _STRING + b"|" + _HEX + b")", re.DOTALL)
_NUMBERS_ONLY = re.compile(rb"[0-9+\-.\t\n\x0c\r ]*")


class _Strings(dict[bytes | None, bytes]):
    """:class:`_Words` of strings, and nothing (an empty word) for None."""

    def __init__(self, words: _Words) -> None:
        super().__init__()
        self.words = words
        self.clear()

    def clear(self) -> None:
        super().clear()
        self[None] = b""

    def __missing__(self, token: bytes | None) -> bytes:
        word = self[token] = self.words[token] if token is not None else b""
        return word


class _Significant(dict[bytes, bytes]):
    """Number tokens written with :data:`SIGNIFICANT` significant digits."""

    def __missing__(self, token: bytes) -> bytes:
        _integer(token)
        word = self[token] = significant(float(token))
        return word


class _Words(dict[bytes, bytes]):
    """Operand tokens as the parsed path writes them back (:func:`_unparse` of what qpdf
    reads), for the operands whose numbers are kept."""

    def __init__(self) -> None:
        super().__init__()
        self.scratch: pikepdf.Pdf | None = None  # (its streams are not the document's objects)

    def __missing__(self, token: bytes) -> bytes:
        first = token[0]
        if first in _NUMBER_START:
            word = str(int(token)).encode() if _integer(token) else _plain(Decimal(token.decode()))
        elif first in b"tfn" or _AS_WRITTEN.fullmatch(token):
            word = token  # (true, false, null; plain names and strings)
        elif first == 40:  # (
            word = string_word(literal_value(token))
        elif first == 60 and token[1] != 60:  # < not <<
            word = string_word(hex_value(token))
        else:
            word = self._qpdf(token)
        self[token] = word
        return word

    def _qpdf(self, token: bytes) -> bytes:
        """How qpdf writes ``token`` back (escapes, hex strings, ``#`` in names, arrays,
        dictionaries)."""
        if self.scratch is None:
            self.scratch = pikepdf.new()
        try:
            parsed = pikepdf.parse_content_stream(pikepdf.Stream(self.scratch, token + b" n"))
        except Exception as error:
            raise _Unsure from error
        if len(parsed) != 1 or str(parsed[0].operator) != "n" or len(parsed[0].operands) != 1:
            raise _Unsure
        return _unparse(parsed[0].operands[0])


def literal_value(token: bytes) -> bytes:
    """The bytes of literal string ``token`` (parentheses included, balanced), read as qpdf
    reads them: the escapes of ISO 32000-1 §7.3.4.2, an octal code past 255 taken modulo
    256, a backslash before any other character dropped, a backslash before an end of line
    joining the lines, an end of line (CR, LF or CR LF) read as LF."""
    return _STRING_ESCAPE.sub(_unescape, token[1:-1])


def _unescape(match: re.Match[bytes]) -> bytes:
    escaped = match[1]
    if escaped is None:
        return b"\n"  # (CR or CR LF in the string)
    first = escaped[0]
    if 48 <= first <= 55:  # 0-7
        return bytes((int(escaped, 8) % 256,))
    if first == 13 or first == 10:
        return b""  # (a line continued)
    return _ESCAPED.get(first, escaped)


_STRING_ESCAPE = re.compile(rb"\\([0-7]{1,3}|\r\n?|.)|\r\n?", re.DOTALL)
_ESCAPED = {ord("n"): b"\n", ord("r"): b"\r", ord("t"): b"\t", ord("b"): b"\b", ord("f"): b"\f"}


def hex_value(token: bytes) -> bytes:
    """The bytes of hex string ``token`` (``<...>``, white space inside, an odd last digit
    read as followed by 0)."""
    digits = token[1:-1].translate(None, _WS_BYTES)
    return bytes.fromhex((digits + b"0" if len(digits) % 2 else digits).decode())


_WS_BYTES = b"\x00\t\n\x0c\r "


def string_word(value: bytes) -> bytes:
    """String ``value`` as qpdf writes it (``QPDF_String::unparse``): in hex when it holds a
    control character with no escape or more than a fifth of it is not ASCII, else literal
    with ``\\n``-style escapes and octal for what ISO Latin-1 does not print."""
    if _UNPRINTABLE.search(value) or \
            5 * (len(value) - len(value.translate(None, _NOT_ASCII))) > len(value):
        return b"<" + value.hex().encode() + b">"
    return b"(" + _TO_ESCAPE.sub(_escape, value) + b")"


def _escape(match: re.Match[bytes]) -> bytes:
    return _ESCAPES[match[0][0]]


_UNPRINTABLE = re.compile(rb"[\x00-\x07\x0b\x0e-\x17]")
_NOT_ASCII = bytes(range(24, 32)) + bytes(range(127, 256))
_TO_ESCAPE = re.compile(rb"[\n\r\t\x08\x0c()\\\x18-\x1f\x7f-\x9f]")
_ESCAPES = {**{c: b"\\%03o" % c for c in range(256)},
            10: b"\\n", 13: b"\\r", 9: b"\\t", 8: b"\\b", 12: b"\\f",
            40: b"\\(", 41: b"\\)", 92: b"\\\\"}


class _Tokenized:
    """The rounding of :class:`_Rounder`, read with :data:`_INSTRUCTION` rather than
    through pikepdf objects; its output is byte for byte what :meth:`_Rounder._parsed`
    writes."""

    def __init__(self, rounder: _Rounder) -> None:
        self.rounder = rounder
        self.fixed = [_Fixed(d) for d in range(MAX_DECIMALS + 1)]
        self.runs = [_Numbers(numbers) for numbers in self.fixed]
        self.significant = _Significant()
        self.words = _Words()
        self.strings = _Strings(self.words)
        #: the number caches of operators whose numbers do not depend on the state (words: as
        #: they were); None for those that do
        self.static: dict[bytes, dict[bytes, bytes] | None] = {op: None for op in _KIND}
        self.static |= dict.fromkeys(_COLOURS, self.fixed[COLOUR_DECIMALS]) \
            | dict.fromkeys(_STATES, self.significant)
        #: the numbers at each scale, by scale
        self.path: dict[float, _Fixed] = {}
        self.text: dict[float, _Fixed] = {}
        #: the stretch of matrices, by the tokens of their linear part
        self.stretches: dict[tuple[bytes, bytes, bytes, bytes], float] = {}

    def _at_path(self, scale: float) -> _Fixed:
        """The numbers of paths drawn at ``scale`` (:data:`EPSILON`)."""
        numbers = self.path.get(scale)
        if numbers is None:
            numbers = self.path[scale] = self.fixed[_decimals(scale, EPSILON)]
        return numbers

    def _at_text(self, scale: float) -> _Fixed:
        """The numbers of text placed at ``scale`` (:data:`TEXT_EPSILON`)."""
        numbers = self.text.get(scale)
        if numbers is None:
            numbers = self.text[scale] = self.fixed[_decimals(scale, TEXT_EPSILON)]
        return numbers

    def rewrite(self, data: bytes, ctm: float, resources: Any) -> bytes:
        """``data`` rewritten at scale ``ctm``; raises :class:`_Unsure` when qpdf's parser
        has to read it (:class:`_InlineImage` when it holds an inline image)."""
        if b"BI" in data and _INLINE_IMAGE.search(data):
            raise _InlineImage  # (at once: the tokenizer would stop there, its work lost)
        out: list[bytes] = []
        drawn: list[tuple[Any, float]] = []  # (the forms drawn, in order: _Rounder._drawn)
        self._run(data, (ctm, 1.0, 1.0, 1.0), [], self._xobjects(resources), out, drawn, {})
        for xobject, scale in drawn:
            self.rounder._drawn(xobject, scale, resources)
        return b"\n".join(out)

    def with_images(self, source: Any, ctm: float, resources: Any) -> bytes | None:
        """The rewrite of a stream with inline images: qpdf's parser reads it (it alone
        knows where it takes an image's data to end), its instructions between the images
        are written back by qpdf and rounded by the tokenizer, the images written as the
        parsed path writes them.  None when qpdf cannot read the stream (as
        :meth:`_Rounder._parsed`); raises :class:`_Unsure` for what the tokenizer does not
        read."""
        try:
            instructions = pikepdf.parse_content_stream(source)
        except Exception:  # noqa: BLE001 - as the parsed path: the stream is kept
            return None
        xobjects = self._xobjects(resources)
        state = (ctm, 1.0, 1.0, 1.0)
        stack: list[tuple[float, float, float, float]] = []
        out: list[bytes] = []
        drawn: list[tuple[Any, float]] = []
        widest: dict[bytes, float] = {}
        between: list[Any] = []
        try:
            for item in [*instructions, None]:
                if item is not None and not isinstance(item, pikepdf.ContentStreamInlineImage):
                    between.append(item)
                    continue
                if between:
                    state = self._run(pikepdf.unparse_content_stream(between), state, stack,
                                      xobjects, out, drawn, widest)
                    between = []
                if item is not None:
                    out.append(pikepdf.unparse_content_stream([item]))
        except _Unsure:
            raise
        except Exception as error:  # (what unparsing refuses): the parsed path
            raise _Unsure from error
        for xobject, scale in drawn:
            self.rounder._drawn(xobject, scale, resources)
        return b"\n".join(out)

    @staticmethod
    def _xobjects(resources: Any) -> Any:
        try:
            return resources.get("/XObject") if isinstance(resources, Dictionary) else None
        except Exception as error:
            raise _Unsure from error

    def _run(self, data: bytes, state: tuple[float, float, float, float],
             stack: list[tuple[float, float, float, float]], xobjects: Any, out: list[bytes],
             drawn: list[tuple[Any, float]],
             widest: dict[bytes, float]) -> tuple[float, float, float, float]:
        """Append the instructions of ``data`` to ``out``, rounded, starting from ``state``
        (scales: current transformation, text matrix, font size, horizontal scaling) and
        ``stack`` (those that ``q`` saved); return the state at the end.  The forms drawn go
        to ``drawn``, in order, and the largest scale of each name to ``widest``."""
        caches: list[dict[Any, Any]] = [*self.fixed, *self.runs, self.significant, self.words,
                                        self.strings]
        for kept in caches:
            if len(kept) > _CACHE_LIMIT:
                kept.clear()
        if len(self.path) + len(self.text) + len(self.stretches) > _CACHE_LIMIT:
            self.path.clear()
            self.text.clear()
            self.stretches.clear()
        colour, sig, words = self.fixed[COLOUR_DECIMALS], self.significant, self.words
        at_text, stretches = self._at_text, self.stretches
        kinds = _KIND
        static = self.static
        ctm, text, size, horizontal = state
        path = self._at_path(ctm)  # (the numbers of path operators, kept up to date)
        placed: _Fixed | None = None  # (those of Td: at_text(ctm * text) when known)
        append = out.append
        found = _INSTRUCTION.findall(data)
        if found and found[-1][4]:
            raise _Unsure  # (before any work: the stray character is in the last match)
        for numbers, op, operands, other_op, stray in found:
            if op:
                tokens = numbers.split()
            elif stray:
                raise _Unsure
            else:
                op = other_op
                tokens = _OPERANDS.findall(operands)
                if tokens and (tokens[0][0] not in _NUMBER_START
                               or not all(t[0] in _NUMBER_START for t in tokens)):
                    # (with numbers only: as below)
                    kind = kinds.get(op, _PLAIN)
                    written: list[bytes] | None = None
                    if kind == _PLAIN:
                        pass
                    elif kind == _K_TF:
                        if len(tokens) == 2 and tokens[0][0] not in _NUMBER_START \
                                and tokens[1][0] in _NUMBER_START:
                            size = abs(float(tokens[1]))
                            written = [words[tokens[0]], sig[tokens[1]]]
                    elif kind == _K_TJ:
                        if len(tokens) == 1 and tokens[0][0] == 91:  # [
                            written = [self._array(
                                tokens[0], at_text(ctm * text * size * horizontal / 1000))]
                    elif kind == _K_COLOUR:
                        written = [colour[t] if t[0] in _NUMBER_START else words[t]
                                   for t in tokens]
                    elif kind == _K_DASH:
                        if len(tokens) == 2 and tokens[0][0] == 91 \
                                and tokens[1][0] in _NUMBER_START:
                            written = [words[tokens[0]], sig[tokens[1]]]
                    elif kind == _K_DO:
                        if len(tokens) == 1 and isinstance(xobjects, Dictionary):
                            name = tokens[0]
                            largest = widest.get(name)
                            # (drawn before at a scale as large: noting it changes nothing)
                            if largest is None or not largest >= ctm:
                                if name[0] != 47 or not _AS_WRITTEN.fullmatch(name):  # (/)
                                    raise _Unsure
                                try:
                                    drawn.append((xobjects.get(name.decode()), ctm))
                                except Exception as error:
                                    raise _Unsure from error
                                widest[name] = ctm if largest is None else max(largest, ctm)
                    elif kind == _K_BT:
                        text = 1.0
                        placed = None
                    elif kind == _K_PUSH:
                        stack.append((ctm, text, size, horizontal))
                    elif kind == _K_POP:
                        if stack:
                            ctm, text, size, horizontal = stack.pop()
                            path = self._at_path(ctm)
                            placed = None
                    elif kind == _K_UNSURE:
                        raise _Unsure
                    if written is None:
                        append(b" ".join(map(words.__getitem__, tokens)) + b" " + op)
                    else:
                        written.append(op)
                        append(b" ".join(written))
                    continue
            # every operand a number (or none)
            cache: dict[bytes, bytes] | None = static.get(op, words)
            if cache is None:
                kind = kinds[op]
                if kind == _K_PATH:
                    cache = path
                elif kind == _K_TD:
                    if placed is None:
                        placed = at_text(ctm * text)
                    cache = placed
                elif (kind == _K_CM or kind == _K_TM) and len(tokens) == 6:
                    place = path if kind == _K_CM else at_text(ctm)
                    append(b" ".join((sig[tokens[0]], sig[tokens[1]], sig[tokens[2]],
                                      sig[tokens[3]], place[tokens[4]], place[tokens[5]], op)))
                    linear = (tokens[0], tokens[1], tokens[2], tokens[3])
                    stretch = stretches.get(linear)
                    if stretch is None:
                        stretch = stretches[linear] = _scale(*map(float, linear))
                    if kind == _K_CM:
                        ctm *= stretch
                        path = self._at_path(ctm)
                    else:
                        text = stretch
                    placed = None
                    continue
                elif kind == _K_STATE:  # (Tz)
                    if tokens:
                        horizontal = abs(float(tokens[0])) / 100
                    cache = sig
                else:
                    cache = words
                    if kind == _K_PUSH:
                        stack.append((ctm, text, size, horizontal))
                    elif kind == _K_POP:
                        if stack:
                            ctm, text, size, horizontal = stack.pop()
                            path = self._at_path(ctm)
                            placed = None
                    elif kind == _K_BT:
                        text = 1.0
                        placed = None
                    elif kind == _K_UNSURE or (kind == _K_DO and len(tokens) == 1
                                               and isinstance(xobjects, Dictionary)):
                        raise _Unsure
            if tokens:
                append(b" ".join(map(cache.__getitem__, tokens)) + b" " + op)
            else:
                append(op)
        return ctm, text, size, horizontal

    def _array(self, array: bytes, numbers: _Fixed) -> bytes:
        """A ``TJ`` array as :func:`_array` writes it."""
        # most arrays hold strings and numbers only: split at the strings (which need no
        # space around them); the numbers between two are written through a cache
        # (pieces: numbers, a plain string or None, another string or None, numbers, ...)
        pieces = _ARRAY_STRING.split(array[1:-1])
        between = list(map(self.runs[numbers.decimals].__getitem__, pieces[0::3]))
        if None not in between:
            pieces[0::3] = between
            others = pieces[2::3]
            if any(others):
                pieces[2::3] = map(self.strings.__getitem__, others)
            return b"[" + b"".join(filter(None, pieces)) + b"]"
        words = self.words
        written = [numbers[t] if t[0] in _NUMBER_START else words[t]
                   for t in _OPERANDS.findall(array, 1, len(array) - 1)]
        if _ADJACENT.search(array) is None:
            # no two tokens that need a space between them (strings between numbers)
            return b"[" + b"".join(written) + b"]"
        parts: list[bytes] = [b"["]
        last = b"["
        for word in written:
            if last[-1] not in _CLOSED and word[0] not in _OPENED:
                parts.append(b" ")
            parts.append(word)
            last = word
        parts.append(b"]")
        return b"".join(parts)
