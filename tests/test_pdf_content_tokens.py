"""The content-number tokenizer (engines/pdf/content.py ``_Tokenized``): it writes byte for
byte what the path through qpdf's parser writes, and leaves to that path every stream it
does not read exactly as qpdf does."""

from __future__ import annotations

import random
from pathlib import Path

import pdfgen
import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name

from squeezer.engines.budget import Budget
from squeezer.engines.pdf import content


class _Report:
    def __init__(self) -> None:
        self.steps: dict[str, int] = {}


def _fast(data: bytes, ctm: float = 1.0) -> bytes:
    with pikepdf.new() as pdf:
        return content._Rounder(pdf)._fast.rewrite(data, ctm, None)


def _parsed(data: bytes, ctm: float = 1.0) -> bytes | None:
    with pikepdf.new() as pdf:
        return content._Rounder(pdf)._parsed(pikepdf.Stream(pdf, data), ctm, None)


#: (stream, what both paths write)
READ = [
    # escapes and balanced parentheses in strings, kerns at font size 9.96
    ((b"BT /F1 9.96264 Tf 1 0 0 1 72.0000001 700.123456 Tm "
      b"[(a\\(b\\)c)-333.333(\\101\\102\\\nC)12.5(x(y)z)] TJ ET"),
     b"BT\n/F1 9.96264 Tf\n1 0 0 1 72 700.123 Tm\n[(a\\(b\\)c)-333.3(ABC)12.5(x\\(y\\)z)] TJ\nET"),
    # ends of line in a string: CR LF and CR read as LF, a backslash joins lines, an
    # unknown escape drops its backslash, an octal code past 255 wraps
    (b"(line\r\nbreak\rhere\\\r\ncontinued\\q\\777) Tj",
     b"(line\\nbreak\\nherecontinuedq\xff) Tj"),
    # hex strings: white space inside, an odd last digit; written as qpdf writes them
    (b"<48656c6c6f> Tj <0041 00 4> Tj [<00410042>-12.3456<fffe>] TJ",
     b"(Hello) Tj\n<00410040> Tj\n[<00410042>-12<fffe>] TJ"),
    # control characters force hex; a few Latin-1 letters stay literal
    (b"(\x00\x01a) Tj (caf\xe9 au lait) Tj (\xe9\xe8\xff\xfe) Tj",
     b"<000161> Tj\n(caf\xe9 au lait) Tj\n<e9e8fffe> Tj"),
    # dictionaries: keys sorted, hex strings lower case
    (b"/Span <</MCID 3 /ActualText (fi) /Alt <FEFF0066>>> BDC /P <</MCID 1>> BDC EMC",
     b"/Span << /ActualText (fi) /Alt <feff0066> /MCID 3 >> BDC\n/P << /MCID 1 >> BDC\nEMC"),
    # names with #xx: decoded where a name may hold the character
    (b"/A#42 gs /Im#201 Do /F#31 12.123456 Tf", b"/AB gs\n/Im#201 Do\n/F1 12.1235 Tf"),
    # arrays other than TJ's are written as qpdf writes them, reals as they were
    (b"[3.0 2 .5] 0.50 d [] 0 d 1.123456 w", b"[ 3.0 2 .5 ] .5 d\n[ ] 0 d\n1.12346 w"),
    # NUL is white space
    (b"1\x002.123456\x00m 3.1234567 4 l", b"1 2.12 m\n3.12 4 l"),
    (b"0.1234567 0.7654321 0.5 rg /P1 scn /CS0 cs 0.12345 0.5 sc",
     b".123 .765 .5 rg\n/P1 scn\n/CS0 cs\n.123 .5 sc"),
    # q/Q save and restore the scale
    (b"q 1000 0 0 1000 0 0 cm 0.123456789 0.987654321 m Q 0.123456789 0.987654321 l",
     b"q\n1000 0 0 1000 0 0 cm\n.12346 .98765 m\nQ\n.12 .99 l"),
    # keywords are operands; numbers an operator does not round are written as qpdf reads them
    (b"true false null 1.123456 Tj", b"true false null 1.123456 Tj"),
    (b"0.000 -0.0 +.5 007 -.0 1. J", b"0 -0 0.5 7 -0 1 J"),
    # words that are no numbers are operators to qpdf (malformed streams)
    (b"1.2.3 m 7 . 8 1e5 43.5255.752 1.123456 m -", b"1.2.3\nm\n7 .\n8 1e5\n43.5255.752\n1.12 m\n-"),
    # no white space where none is needed; kerns at font size 1 are whole
    (b"[(a)-1.5 2.25(b)/N 3]TJ(x)Tj", b"[(a)-2 2(b)/N 3] TJ\n(x) Tj"),
]

#: (stream, what qpdf's parser writes): the tokenizer leaves these to it
UNSURE = [
    # a comment (which may hold anything, parentheses too)
    (b"1.123456 2.123456 m % a comment (with a paren\n3.123456 4.123456 l",
     b"1.12 2.12 m\n3.12 4.12 l"),
    # an inline image: binary data
    (b"BI /W 1 /H 1 /BPC 8 /CS /G ID \x00\xff EI 1.123456 2.123456 m",
     b"BI\n/W 1 /H 1 /BPC 8 /CS /G\nID\n\x00\xff EI\n1.12 2.12 m"),
    # operands with no operator, an unbalanced string (qpdf drops them)
    (b"1.123456 2.123456", b""),
    (b"(unbalanced Tj 1.123456 w", b""),
    # nesting deeper than the expressions read
    (b"[1 [2 3]] 0 d 1.123456 w", b"[ 1 [ 2 3 ] ] 0 d\n1.12346 w"),
    (b"<</A <</B 1>>>> BDC 1.123456 w", b"<< /A << /B 1 >> >> BDC\n1.12346 w"),
    (b"(a((b))c) Tj 1.123456 w", b"(a\\(\\(b\\)\\)c) Tj\n1.12346 w"),
    # an integer past 64 bits (qpdf reads null)
    (b"12345678901234567890 1.123456 m", b"null 1.123456 m"),
    # an operator that is no ASCII word
    (b"1.1234567 \xe3\xe3", None),
]


@pytest.mark.parametrize(("data", "written"), READ)
def test_the_tokenizer_writes_what_qpdf_writes(data: bytes, written: bytes) -> None:
    assert _fast(data) == written
    assert _parsed(data) == written


@pytest.mark.filterwarnings("ignore:Unexpected end of stream")  # (qpdf's, on the unbalanced)
@pytest.mark.parametrize(("data", "written"), UNSURE)
def test_what_the_tokenizer_does_not_read_goes_through_qpdf(data: bytes,
                                                            written: bytes | None) -> None:
    with pytest.raises(content._Unsure):
        _fast(data)
    with pikepdf.new() as pdf:
        assert content._Rounder(pdf)._rewrite(data, 1.0, None) == written


def test_strings_are_written_as_qpdf_writes_them() -> None:
    rng = random.Random(7)
    for _ in range(3000):
        pool = rng.choice([range(256), range(32, 127), [*range(32, 127)] * 8 + [*range(256)]])
        value = bytes(rng.choice(pool) for _ in range(rng.choice([0, 1, 3, 5, 9, 20])))
        assert content.string_word(value) == pikepdf.String(value).unparse(), value


def test_literal_and_hex_strings_are_read_as_qpdf_reads_them() -> None:
    rng = random.Random(8)
    pieces = [b"a", b"\\", b"(", b")", b"\r", b"\n", b"0", b"7", b"8", b"1", b"n", b"t",
              b"\xff", b"\x00", b" ", b"b", b"f", b"r"]
    tried = 0
    with pikepdf.new() as pdf:
        for _ in range(3000):
            token = b"(" + b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 10))) + b")"
            if not content._OPERANDS.fullmatch(token):
                continue  # (unbalanced, or nested deeper than the tokenizer reads)
            tried += 1
            (operands, _), = pikepdf.parse_content_stream(pikepdf.Stream(pdf, token + b" Tj"))
            assert content.literal_value(token) == bytes(operands[0]), token
        for _ in range(500):
            token = b"<" + b"".join(rng.choice([b"0", b"a", b"F", b" ", b"\n", b"9"])
                                    for _ in range(rng.randint(0, 9))) + b">"
            (operands, _), = pikepdf.parse_content_stream(pikepdf.Stream(pdf, token + b" Tj"))
            assert content.hex_value(token) == bytes(operands[0]), token
    assert tried > 1500


def _random_stream(rng: random.Random) -> bytes:
    """Instructions of every kind the rounding treats differently, with numbers of many
    shapes, white space of every kind and the odd operand of the wrong type."""
    def number() -> bytes:
        value = rng.choice([rng.uniform(-1000, 1000), rng.uniform(-1, 1), rng.randint(-50, 50)])
        text = b"%d" % value if isinstance(value, int) else b"%.*f" % (rng.randint(0, 9), value)
        return rng.choice([text, text, text.replace(b"0.", b".", 1),
                           text if text[0] == 45 else b"+" + text])

    def operand() -> bytes:
        return rng.choice([number(), number(), b"/Name", b"(str)", b"<0a0b>", b"null",
                           b"[1.2345 (x)]", b"<</K 1>>", b"(a\\)b)"])

    def ws() -> bytes:
        return rng.choice([b" ", b" ", b"\n", b"\r\n", b"\t", b"\x00", b"  "])

    ops = [(b"m", 2), (b"l", 2), (b"c", 6), (b"re", 4), (b"cm", 6), (b"Tm", 6), (b"Td", 2),
           (b"TD", 2), (b"Tc", 1), (b"Tz", 1), (b"w", 1), (b"rg", 3), (b"g", 1), (b"scn", 2),
           (b"q", 0), (b"Q", 0), (b"BT", 0), (b"ET", 0), (b"f", 0), (b"J", 1), (b"gs", 1)]
    out = []
    for _ in range(rng.randint(1, 60)):
        kind = rng.random()
        if kind < 0.1:
            out.append(b"/F1 " + number() + b" Tf")
        elif kind < 0.2:
            items = [rng.choice([b"(ab)", number(), b"<0041>", b"(c\\(d)"]) for _ in range(5)]
            out.append(b"[" + ws().join(items) + b"]" + ws() + b"TJ")
        elif kind < 0.25:
            out.append(b"[" + number() + b" " + number() + b"] " + number() + b" d")
        else:
            op, count = rng.choice(ops)
            operands = [operand() if rng.random() < 0.05 else number() for _ in range(count)]
            out.append(ws().join([*operands, op]))
    return ws().join(out)


def test_random_streams_are_written_as_through_qpdf() -> None:
    rng = random.Random(9)
    read = 0
    for _ in range(400):
        data = _random_stream(rng)
        ctm = rng.choice([1.0, 0.001, 1000.0, 2.5])
        try:
            written = _fast(data, ctm)
        except content._Unsure:
            continue
        read += 1
        assert written == _parsed(data, ctm), data
    assert read > 350


def test_forms_are_found_and_rounded_as_through_qpdf(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Pages draw forms (by names plain and ``#``-escaped, at several scales, one form from
    another); the whole document comes out the same as through qpdf's parser alone."""
    pdf = pikepdf.new()
    body = b"".join(b"%.7f %.7f l\n" % (i * 1.2345678, i * 7.6543211) for i in range(200))
    inner = pdf.make_stream(b"0 0 m " + body + b"S", Type=Name.XObject, Subtype=Name.Form,
                            BBox=Array([0, 0, 500, 500]))
    outer = pdf.make_stream(b"q 0.5 0 0 0.5 0 0 cm /In Do Q " + body + b"S",
                            Type=Name.XObject, Subtype=Name.Form, BBox=Array([0, 0, 500, 500]),
                            Resources=Dictionary(XObject=Dictionary(In=inner)))
    resources = Dictionary(XObject=Dictionary(Fm0=outer, Fm1=inner))
    pdfgen.add_page(pdf, b"q 3 0 0 3 0 0 cm /Fm#30 Do Q q 10 0 0 10 0 0 cm /Fm1 Do Q\n" + body,
                    resources)
    src = tmp_path / "forms.pdf"
    pdf.save(src)

    def rounded() -> list[bytes]:
        with pikepdf.open(src) as doc:
            saved = content.round_numbers(doc, Budget(), _Report())  # type: ignore[arg-type]
            assert saved > 0
            page = doc.pages[0]
            return [page.obj.Contents.read_bytes(), page.Resources.XObject.Fm0.read_bytes(),
                    page.Resources.XObject.Fm1.read_bytes()]

    fast = rounded()

    def unsure(*_: object) -> bytes:
        raise content._Unsure

    monkeypatch.setattr(content._Tokenized, "rewrite", unsure)
    assert rounded() == fast
    # (the inner form is drawn at 10 x: 3 decimals; the page's own paths 2)
    assert b"\n12.346 76.543 l\n" in fast[2] and b"\n12.35 76.54 l\n" in fast[0]


def test_streams_with_inline_images_are_read_by_qpdf_and_rounded_between() -> None:
    """qpdf alone tells where an inline image's data ends; the instructions between the
    images are rounded with the state (q/Q, cm, Tf) carried across the images."""
    data = (b"q 1000 0 0 1000 0 0 cm BI /W 1 /H 1 /BPC 8 /CS /G ID \x00 EI "
            b"0.123456789 0.987654321 m Q 0.123456789 0.987654321 l\n"
            b"BI /W 2 /H 1 /BPC 8 /CS /G /F /AHx ID 0102> EI BT /F1 10 Tf [(a)-1.23456] TJ ET")
    written = (b"q\n1000 0 0 1000 0 0 cm\nBI\n/W 1 /H 1 /BPC 8 /CS /G\nID\n\x00 EI\n"
               b".12346 .98765 m\nQ\n.12 .99 l\nBI\n/W 2 /H 1 /BPC 8 /CS /G /F /AHx\nID\n"
               b"0102> EI\nBT\n/F1 10 Tf\n[(a)-1.2] TJ\nET")
    with pytest.raises(content._InlineImage):
        _fast(data)
    with pikepdf.new() as pdf:
        rounder = content._Rounder(pdf)
        assert rounder._fast.with_images(pikepdf.Stream(pdf, data), 1.0, None) == written
        assert rounder._rewrite(data, 1.0, None) == written
    assert _parsed(data) == written
