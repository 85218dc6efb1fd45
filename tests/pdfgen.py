"""Fixture PDF generators and output checks shared by the test files.

Every generator writes a real PDF to the path it is given (with pikepdf, Pillow
and numpy; hostile files are assembled byte by byte) and returns facts the test
needs (page texts, object counts, ...).  Nothing here imports the engine, so a
broken engine cannot break the fixtures.

Checks (``page_texts``, ``render_gray``, ``ssim``, ``isolated_compress``...) read
outputs with an implementation independent of the one that wrote them where it
matters: pypdfium2 (PDFium) for text and pixels, pikepdf (qpdf) for structure.
"""

from __future__ import annotations

import io
import json
import os
import random
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pikepdf
import pypdfium2 as pdfium
from pikepdf import Array, Dictionary, Name, Stream, String
from PIL import Image

LETTER = (612, 792)
REPO = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "pdf"
#: The wider corpus of real-world files (categories in its MANIFEST.tsv).
WIDE = CORPUS.parent / "wide"


def corpus_file(name: str, wide: bool = True) -> Path:
    """A file of the shared corpus; the test is skipped when the corpus is absent."""
    import pytest

    path = (WIDE if wide else CORPUS) / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not present ({path.parent})")
    return path


def all_pages_identical(a: Path, b: Path, scale: float = 1.0) -> list[int]:
    """Indexes of the pages whose colour renders (PDFium) differ in any pixel."""
    da, db = open_pdfium(a), open_pdfium(b)
    try:
        assert len(da) == len(db)
        differ = []
        for i in range(len(da)):
            pa, pb = da[i], db[i]
            ra = pa.render(scale=scale, may_draw_forms=True)
            rb = pb.render(scale=scale, may_draw_forms=True)
            if not np.array_equal(ra.to_numpy(), rb.to_numpy()):
                differ.append(i)
            for x in (ra, rb, pa, pb):
                x.close()
        return differ
    finally:
        da.close()
        db.close()

# --- building blocks ---------------------------------------------------------------------

_WORDS = (
    "squeeze compress portable document format stream object page image font text "
    "reader writer cross reference table trailer dictionary array filter flate "
    "quality resolution pixel glyph outline annotation field metadata"
).split()


def words_lines(seed: int, lines: int = 30, per_line: int = 9) -> list[str]:
    """Deterministic lines of pseudo-text (ASCII, no PDF-special characters)."""
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(per_line)) for _ in range(lines)]


def helvetica(pdf: pikepdf.Pdf) -> Dictionary:
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Font,
            Subtype=Name.Type1,
            BaseFont=Name.Helvetica,
            Encoding=Name.WinAnsiEncoding,
        )
    )


def text_ops(lines: list[str], font: str = "/F1", size: int = 11, x: int = 72, y: int = 720) -> bytes:
    out = [f"BT {font} {size} Tf {size + 3} TL {x} {y} Td".encode()]
    for line in lines:
        out.append(b"(" + line.encode("latin-1") + b") Tj T*")
    out.append(b"ET")
    return b"\n".join(out) + b"\n"


def add_page(
    pdf: pikepdf.Pdf,
    content: bytes,
    resources: Dictionary | None = None,
    mediabox: tuple[int, int] = LETTER,
    **extra: object,
) -> pikepdf.Page:
    page = Dictionary(
        Type=Name.Page,
        MediaBox=Array([0, 0, *mediabox]),
        Resources=resources if resources is not None else Dictionary(),
        Contents=pdf.make_stream(content),
        **extra,
    )
    pdf.pages.append(pikepdf.Page(page))
    return pdf.pages[-1]


def image_stream(pdf: pikepdf.Pdf, array: np.ndarray, encoding: str = "flate", quality: int = 92) -> Stream:
    """An image XObject from an HxW (gray) or HxWx3 (RGB) uint8 array."""
    gray = array.ndim == 2
    height, width = array.shape[:2]
    if encoding == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(array).save(buf, format="JPEG", quality=quality)
        data, filt = buf.getvalue(), Name.DCTDecode
    else:
        data, filt = zlib.compress(np.ascontiguousarray(array).tobytes(), 6), Name.FlateDecode
    stream = Stream(pdf, data)
    stream.stream_dict = Dictionary(
        Type=Name.XObject,
        Subtype=Name.Image,
        Width=width,
        Height=height,
        ColorSpace=Name.DeviceGray if gray else Name.DeviceRGB,
        BitsPerComponent=8,
        Filter=filt,
    )
    return pdf.make_indirect(stream)


def photo_array(width: int = 2400, height: int = 1800, seed: int = 1) -> np.ndarray:
    """A smooth colour gradient with mild noise: compresses like a photograph."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = 255 * x / width
    g = 255 * y / height
    b = 127 + 100 * np.sin(x / 90.0) * np.cos(y / 70.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, (height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _save(pdf: pikepdf.Pdf, path: Path, **kwargs: object) -> Path:
    path = Path(path)
    pdf.save(path, **kwargs)
    pdf.close()
    return path


# --- benign fixtures -----------------------------------------------------------------------


def text_pdf(path: Path, pages: int = 2, lines: int = 30, compress: bool = True, seed: int = 0) -> list[str]:
    """Pages of real Helvetica text; returns the lines written on each page (joined)."""
    pdf = pikepdf.new()
    font = helvetica(pdf)
    written = []
    for i in range(pages):
        page_lines = [f"Page {i + 1}"] + words_lines(seed * 1000 + i, lines)
        add_page(pdf, text_ops(page_lines), Dictionary(Font=Dictionary(F1=font)))
        written.append("\n".join(page_lines))
    kwargs = {} if compress else {
        "compress_streams": False,
        "object_stream_mode": pikepdf.ObjectStreamMode.disable,
    }
    _save(pdf, path, **kwargs)
    return written


def uncompressed_text_pdf(path: Path, pages: int = 2) -> list[str]:
    """Text pages whose content streams are stored without any /Filter."""
    return text_pdf(path, pages=pages, lines=40, compress=False, seed=7)


def photo_pdf(path: Path, width: int = 2400, height: int = 1800, encoding: str = "jpeg") -> None:
    """One letter page with a ``width`` x ``height`` photo drawn 4 x 3 in (600 dpi) and a caption."""
    pdf = pikepdf.new()
    im = image_stream(pdf, photo_array(width, height), encoding=encoding, quality=95)
    content = b"q 288 0 0 216 162 400 cm /Im0 Do Q\n" + text_ops(["A photograph at six hundred dpi"], y=360)
    add_page(pdf, content, Dictionary(XObject=Dictionary(Im0=im), Font=Dictionary(F1=helvetica(pdf))))
    _save(pdf, path)


def bitonal_array(width: int = 2550, height: int = 3300, seed: int = 3) -> np.ndarray:
    """A 300 dpi letter 'scan': black word-like blocks in lines on white; bool, True = black."""
    rng = np.random.default_rng(seed)
    img = np.zeros((height, width), dtype=bool)
    for top in range(300, height - 300, 60):
        x = 300
        while x < width - 400:
            w = int(rng.integers(40, 220))
            img[top : top + 30, x : x + w] = True
            x += w + int(rng.integers(20, 40))
    return img


def bitonal_scan_pdf(path: Path) -> None:
    """One page holding a 1-bit 2550x3300 scan-like image (Flate), plus an OCR-like text line."""
    pdf = pikepdf.new()
    img = bitonal_array()
    height, width = img.shape
    packed = np.packbits(~img, axis=1).tobytes()  # 1 = white with DeviceGray
    stream = Stream(pdf, zlib.compress(packed, 6))
    stream.stream_dict = Dictionary(
        Type=Name.XObject, Subtype=Name.Image, Width=width, Height=height,
        ColorSpace=Name.DeviceGray, BitsPerComponent=1, Filter=Name.FlateDecode,
    )
    im = pdf.make_indirect(stream)
    content = b"q 612 0 0 792 0 0 cm /Im0 Do Q\n" + text_ops(["Scanned page"], y=40)
    add_page(pdf, content, Dictionary(XObject=Dictionary(Im0=im), Font=Dictionary(F1=helvetica(pdf))))
    _save(pdf, path)


def duplicate_images_pdf(path: Path) -> None:
    """The same RGB image embedded twice as two separate, identical image XObjects."""
    pdf = pikepdf.new()
    arr = photo_array(600, 400, seed=5)
    im0 = image_stream(pdf, arr)
    im1 = image_stream(pdf, arr)
    assert im0.objgen != im1.objgen
    content = (
        b"q 240 0 0 160 72 560 cm /Im0 Do Q\nq 240 0 0 160 300 300 cm /Im1 Do Q\n"
        + text_ops(["Two copies of one picture"], y=200)
    )
    add_page(
        pdf,
        content,
        Dictionary(XObject=Dictionary(Im0=im0, Im1=im1), Font=Dictionary(F1=helvetica(pdf))),
    )
    _save(pdf, path)


def find_ttf() -> Path | None:
    """A small TrueType font on this machine, or None."""
    candidates = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    ]
    try:
        import matplotlib

        candidates.append(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSansMono.ttf"))
    except Exception:
        pass
    for root in ("/usr/share/fonts", "/usr/local/share/fonts"):
        if os.path.isdir(root):
            for dirpath, _, files in os.walk(root):
                candidates.extend(os.path.join(dirpath, f) for f in sorted(files) if f.lower().endswith(".ttf"))
    for c in candidates:
        if os.path.isfile(c):
            return Path(c)
    return None


def _truetype_font(pdf: pikepdf.Pdf, program: bytes, name: str) -> Dictionary:
    fontfile = Stream(pdf, program)
    fontfile.Length1 = len(program)
    descriptor = pdf.make_indirect(
        Dictionary(
            Type=Name.FontDescriptor, FontName=Name("/" + name), Flags=32,
            FontBBox=Array([-600, -300, 1200, 1000]), ItalicAngle=0, Ascent=800,
            Descent=-200, CapHeight=700, StemV=80, FontFile2=pdf.make_indirect(fontfile),
        )
    )
    return pdf.make_indirect(
        Dictionary(
            Type=Name.Font, Subtype=Name.TrueType, BaseFont=Name("/" + name),
            FirstChar=32, LastChar=126, Widths=Array([602] * 95),
            Encoding=Name.WinAnsiEncoding, FontDescriptor=descriptor,
        )
    )


def duplicate_fonts_pdf(path: Path, ttf: Path) -> None:
    """Two font dictionaries, each with its own (identical) embedded FontFile2 program."""
    program = Path(ttf).read_bytes()
    pdf = pikepdf.new()
    f1 = _truetype_font(pdf, program, "DupFontA")
    f2 = _truetype_font(pdf, program, "DupFontB")
    content = text_ops(words_lines(11, 5), font="/F1") + text_ops(words_lines(12, 5), font="/F2", y=500)
    add_page(pdf, content, Dictionary(Font=Dictionary(F1=f1, F2=f2)))
    _save(pdf, path)


def _widget_appearance(pdf: pikepdf.Pdf, value: str, font: Dictionary) -> Stream:
    ap = Stream(pdf, f"/Tx BMC q BT /Helv 12 Tf 2 6 Td ({value}) Tj ET Q EMC\n".encode())
    ap.stream_dict = Dictionary(
        Type=Name.XObject, Subtype=Name.Form, BBox=Array([0, 0, 200, 24]),
        Resources=Dictionary(Font=Dictionary(Helv=font)),
    )
    return pdf.make_indirect(ap)


FIELD_NAME = "customer"
FIELD_VALUE = "Jane Example"
LINK_URI = "https://example.com/squeezer"


def interactive_pdf(path: Path, extras: bool = True) -> list[str]:
    """A page with a URI link annotation and an AcroForm text field with an appearance.

    With ``extras``: also a bookmark, document JavaScript (OpenAction and the
    /JavaScript name tree), a JavaScript link action, and an embedded file.
    Returns the page texts written.
    """
    pdf = pikepdf.new()
    font = helvetica(pdf)
    lines = ["Interactive page", "Visit the site below", "Name field follows"]
    page = add_page(pdf, text_ops(lines), Dictionary(Font=Dictionary(F1=font)))
    link = pdf.make_indirect(
        Dictionary(
            Type=Name.Annot, Subtype=Name.Link, Rect=Array([72, 690, 300, 706]),
            Border=Array([0, 0, 0]), A=Dictionary(S=Name.URI, URI=String(LINK_URI)),
        )
    )
    widget = pdf.make_indirect(
        Dictionary(
            Type=Name.Annot, Subtype=Name.Widget, FT=Name.Tx, T=String(FIELD_NAME),
            V=String(FIELD_VALUE), DA=String("/Helv 12 Tf 0 g"), F=4,
            Rect=Array([72, 600, 272, 624]), P=page.obj,
            AP=Dictionary(N=_widget_appearance(pdf, FIELD_VALUE, font)),
        )
    )
    annots = [link, widget]
    if extras:
        js_link = pdf.make_indirect(
            Dictionary(
                Type=Name.Annot, Subtype=Name.Link, Rect=Array([72, 500, 200, 516]),
                A=Dictionary(S=Name.JavaScript, JS=String("app.alert('link');")),
            )
        )
        annots.append(js_link)
    page.obj.Annots = Array(annots)
    pdf.Root.AcroForm = Dictionary(
        Fields=Array([widget]), DA=String("/Helv 0 Tf 0 g"),
        DR=Dictionary(Font=Dictionary(Helv=font)),
    )
    if extras:
        with pdf.open_outline() as outline:
            outline.root.append(pikepdf.OutlineItem("Chapter one", 0))
        pdf.Root.OpenAction = Dictionary(S=Name.JavaScript, JS=String("app.alert('open');"))
        js = pdf.make_indirect(Dictionary(S=Name.JavaScript, JS=String("var x = 1;")))
        pdf.Root.Names = Dictionary(JavaScript=Dictionary(Names=Array([String("init"), js])))
        pdf.attachments["notes.txt"] = pikepdf.AttachedFileSpec(pdf, b"attached notes " * 50, mime_type="text/plain")
    _save(pdf, path)
    return ["\n".join(lines)]


ENC_ALLOW = dict(
    accessibility=True, extract=False, modify_annotation=False, modify_assembly=False,
    modify_form=False, modify_other=False, print_lowres=True, print_highres=False,
)


def encrypted_pdf(path: Path, R: int = 6, user: str = "user", owner: str = "owner", restrict: bool = False) -> list[str]:
    """Text pages (with an uncompressed content stream to shrink) encrypted with ``R``."""
    tmp = Path(path).with_suffix(".plain.tmp")
    texts = text_pdf(tmp, pages=2, lines=35, compress=False, seed=R)
    pdf = pikepdf.open(tmp)
    allow = pikepdf.Permissions(**ENC_ALLOW) if restrict else pikepdf.Permissions()
    pdf.save(
        path,
        encryption=pikepdf.Encryption(owner=owner, user=user, R=R, allow=allow, metadata=R >= 4, aes=R >= 4),
        compress_streams=False,
        object_stream_mode=pikepdf.ObjectStreamMode.disable,
    )
    pdf.close()
    tmp.unlink()
    return texts


def broken_xref_pdf(path: Path, pages: int = 3) -> list[str]:
    """A valid text PDF whose startxref offset and xref entries are then corrupted."""
    tmp = Path(path).with_suffix(".ok.tmp")
    texts = text_pdf(tmp, pages=pages, compress=True, seed=21)
    pdf = pikepdf.open(tmp)
    pdf.save(path, object_stream_mode=pikepdf.ObjectStreamMode.disable)
    pdf.close()
    tmp.unlink()
    data = bytearray(Path(path).read_bytes())
    sx = data.rindex(b"startxref")
    eol = data.index(b"%%EOF", sx)
    offset = int(data[sx + 9 : eol].strip())
    # shift every in-use xref entry by 7 bytes so none points at its object
    xref_end = data.index(b"trailer", offset)
    table = data[offset:xref_end].decode("latin-1").split("\n")
    fixed = []
    for line in table:
        parts = line.split()
        if len(parts) == 3 and parts[2] == "n" and len(parts[0]) == 10:
            line = f"{int(parts[0]) + 7:010d} {parts[1]} n " if line.endswith(" ") else f"{int(parts[0]) + 7:010d} {parts[1]} n"
        fixed.append(line)
    data[offset:xref_end] = "\n".join(fixed).encode("latin-1")
    # and point startxref into the middle of nowhere
    data[sx:eol] = b"startxref\n" + str(offset + 12345).encode() + b"\n"
    Path(path).write_bytes(bytes(data))
    return texts


def junk_pdf(path: Path) -> list[str]:
    """Text pages carrying page thumbnails (/Thumb) and /PieceInfo private data."""
    pdf = pikepdf.new()
    font = helvetica(pdf)
    texts = []
    rng = np.random.default_rng(9)
    for i in range(2):
        lines = [f"Junk page {i + 1}"] + words_lines(40 + i, 20)
        page = add_page(pdf, text_ops(lines), Dictionary(Font=Dictionary(F1=font)))
        thumb = image_stream(pdf, rng.integers(0, 255, (132, 102, 3), dtype=np.uint8))
        del thumb.Type, thumb.Subtype
        page.obj.Thumb = thumb
        private = pdf.make_stream(rng.integers(0, 255, 20000, dtype=np.uint8).tobytes())
        page.obj.PieceInfo = Dictionary(
            Illustrator=Dictionary(LastModified=String("D:20240101000000Z"), Private=private)
        )
        texts.append("\n".join(lines))
    pdf.Root.PieceInfo = Dictionary(
        MyApp=Dictionary(
            LastModified=String("D:20240101000000Z"),
            Private=pdf.make_stream(rng.integers(0, 255, 20000, dtype=np.uint8).tobytes()),
        )
    )
    _save(pdf, path)
    return texts


META_TITLE = "Squeezer metadata fixture"
META_AUTHOR = "Test Author"


def metadata_pdf(path: Path) -> list[str]:
    """Text pages with an XMP /Metadata stream and a document information dictionary."""
    tmp = Path(path).with_suffix(".nometa.tmp")
    texts = text_pdf(tmp, pages=1, compress=False, seed=33)
    pdf = pikepdf.open(tmp)
    with pdf.open_metadata(set_pikepdf_as_editor=False) as meta:
        meta["dc:title"] = META_TITLE
        meta["dc:creator"] = [META_AUTHOR]
        meta["dc:description"] = "padding " * 200
    pdf.docinfo["/Title"] = META_TITLE
    pdf.docinfo["/Author"] = META_AUTHOR
    pdf.save(path, compress_streams=False)
    pdf.close()
    tmp.unlink()
    return texts


def tiny_optimal_pdf(path: Path) -> None:
    """The smallest sensible one-page PDF, already written with object streams and max Flate."""
    pdf = pikepdf.new()
    add_page(pdf, text_ops(["Hi"]), Dictionary(Font=Dictionary(F1=helvetica(pdf))))
    pikepdf.settings.set_flate_compression_level(9)
    try:
        _save(pdf, path, object_stream_mode=pikepdf.ObjectStreamMode.generate,
              compress_streams=True, recompress_flate=True, deterministic_id=True)
    finally:
        pikepdf.settings.set_flate_compression_level(-1)


# --- hostile fixtures ----------------------------------------------------------------------


def raw_pdf(path: Path, objects: dict[int, bytes], root: int = 1, xref_prev_self: bool = False) -> None:
    """Assemble a PDF by hand from ``{number: body}`` with a correct classic xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n"
    size = max(objects) + 1
    xref = len(out)
    out += f"xref\n0 {size}\n0000000000 65535 f \n".encode()
    for num in range(1, size):
        if num in offsets:
            out += f"{offsets[num]:010d} 00000 n \n".encode()
        else:
            out += b"0000000000 65535 f \n"
    prev = f" /Prev {xref}" if xref_prev_self else ""
    out += f"trailer\n<< /Size {size} /Root {root} 0 R{prev} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    Path(path).write_bytes(bytes(out))


def _stream_obj(data: bytes, extra: str = "") -> bytes:
    return f"<< /Length {len(data)} {extra}>>\nstream\n".encode() + data + b"\nendstream"


_FONT_OBJ = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"


def _simple_page(parent: int, content: int, font: int = 9) -> bytes:
    return (
        f"<< /Type /Page /Parent {parent} 0 R /MediaBox [0 0 612 792] "
        f"/Resources << /Font << /F1 {font} 0 R >> >> /Contents {content} 0 R >>"
    ).encode()


def _content(text: str) -> bytes:
    return _stream_obj(f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode())


def many_pages_pdf(path: Path, pages: int = 10) -> list[str]:
    return text_pdf(path, pages=pages, lines=3, seed=50)


def giant_image_pdf(path: Path, width: int = 100_000, height: int = 100_000) -> None:
    """An image XObject declaring ``width`` x ``height`` RGB pixels with a few bytes of Flate data."""
    data = zlib.compress(b"\x80" * 3000, 9)
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /XObject << /Im0 5 0 R >> /Font << /F1 9 0 R >> >> /Contents 4 0 R >>",
        4: _stream_obj(b"q 500 0 0 500 50 50 cm /Im0 Do Q BT /F1 12 Tf 72 720 Td (giant) Tj ET"),
        5: _stream_obj(
            data,
            f"/Type /XObject /Subtype /Image /Width {width} /Height {height} "
            "/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode ",
        ),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)


def zlib_zeros(nbytes: int, rounds: int = 1) -> bytes:
    """``rounds`` nested zlib compressions of ``nbytes`` zero bytes, built without holding them."""
    comp = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    parts = []
    left = nbytes
    while left > 0:
        n = min(left, len(chunk))
        parts.append(comp.compress(chunk[:n]))
        left -= n
    parts.append(comp.flush())
    data = b"".join(parts)
    for _ in range(rounds - 1):
        data = zlib.compress(data, 9)
    return data


def flate_bomb_pdf(path: Path, nbytes: int = 300 << 20, rounds: int = 1, as_image: bool = False) -> None:
    """A content stream (or a gray image) of ``nbytes`` zeros, Flate-compressed ``rounds`` times.

    NUL is PDF whitespace, so the content-stream variant is a valid, empty page
    once decoded: only the decoded size is hostile.
    """
    data = zlib_zeros(nbytes, rounds)
    filters = "/Filter [" + " ".join(["/FlateDecode"] * rounds) + "] " if rounds > 1 else "/Filter /FlateDecode "
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        9: _FONT_OBJ,
    }
    if as_image:
        side = int(nbytes**0.5)
        objects[3] = (
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /XObject << /Im0 5 0 R >> /Font << /F1 9 0 R >> >> /Contents 4 0 R >>"
        )
        objects[4] = _stream_obj(b"q 500 0 0 500 50 50 cm /Im0 Do Q BT /F1 12 Tf 72 720 Td (bomb) Tj ET")
        objects[5] = _stream_obj(
            data, f"/Type /XObject /Subtype /Image /Width {side} /Height {side} "
            f"/ColorSpace /DeviceGray /BitsPerComponent 8 {filters}",
        )
    else:
        objects[3] = _simple_page(2, 4)
        objects[4] = _stream_obj(data, filters)
    raw_pdf(path, objects)


def deep_nesting_pdf(path: Path, depth: int = 10_000) -> None:
    """A page whose dictionary references an array nested ``depth`` levels deep."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 9 0 R >> >> /Contents 4 0 R /Deep 5 0 R >>",
        4: _content("deep nesting"),
        5: b"[" * depth + b"]" * depth,
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)


def kids_cycle_pdf(path: Path) -> int:
    """A page tree whose inner /Pages node lists the root among its /Kids; returns the real leaf count."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 3 >>",
        3: _simple_page(2, 4),
        4: _content("first leaf"),
        5: b"<< /Type /Pages /Parent 2 0 R /Kids [6 0 R 2 0 R] /Count 2 >>",
        6: _simple_page(5, 7),
        7: _content("second leaf"),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)
    return 2


def absurd_count_pdf(path: Path) -> int:
    """Two real pages under a /Pages node claiming 9 999 999 999; returns the real count."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 9999999999 >>",
        3: _simple_page(2, 4),
        4: _content("one"),
        5: _simple_page(2, 6),
        6: _content("two"),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)
    return 2


def xref_loop_pdf(path: Path) -> int:
    """A classic-xref PDF whose trailer /Prev points at its own xref table; returns pages."""
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: _simple_page(2, 4),
        4: _content("xref loop"),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects, xref_prev_self=True)
    return 1


PNG_BYTES = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


# --- checks --------------------------------------------------------------------------------


def open_pdfium(path: Path, password: str | None = None) -> pdfium.PdfDocument:
    return pdfium.PdfDocument(str(path), password=password)


def page_texts(path: Path, password: str | None = None, limit: int | None = None) -> list[str]:
    """PDFium's text of each page (of the first ``limit`` pages)."""
    doc = open_pdfium(path, password)
    try:
        n = len(doc) if limit is None else min(limit, len(doc))
        out = []
        for i in range(n):
            page = doc[i]
            tp = page.get_textpage()
            out.append(tp.get_text_range())
            tp.close()
            page.close()
        return out
    finally:
        doc.close()


def render_gray(path: Path, index: int, dpi: int = 72, password: str | None = None) -> np.ndarray:
    """Page ``index`` rendered by PDFium as a float 2-D gray array."""
    doc = open_pdfium(path, password)
    try:
        page = doc[index]
        bitmap = page.render(scale=dpi / 72, grayscale=True)
        arr = bitmap.to_numpy().astype(np.float64)
        bitmap.close()
        page.close()
    finally:
        doc.close()
    if arr.ndim == 3:
        arr = arr[..., :3].mean(axis=-1) if arr.shape[-1] >= 3 else arr[..., 0]
    return arr


def render_rgb(path: Path, index: int, scale: float = 1.0, password: str | None = None
               ) -> np.ndarray:
    """Page ``index`` rendered by PDFium in colour, form fields drawn, as its uint8 pixels
    (for exact comparisons: a gray render would hide a change of hue)."""
    doc = open_pdfium(path, password)
    try:
        page = doc[index]
        bitmap = page.render(scale=scale, may_draw_forms=True)
        arr = np.array(bitmap.to_numpy(), copy=True)
        bitmap.close()
        page.close()
    finally:
        doc.close()
    return arr


def render_all(path: Path, password: str | None = None, scale: float = 0.25) -> int:
    """Render every page (small) with PDFium; returns how many pages rendered non-empty."""
    doc = open_pdfium(path, password)
    try:
        ok = 0
        for i in range(len(doc)):
            page = doc[i]
            bitmap = page.render(scale=scale)
            arr = bitmap.to_numpy()
            ok += int(arr.size > 0)
            bitmap.close()
            page.close()
        return ok
    finally:
        doc.close()


def _box(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over every k x k window (valid region), via integral images."""
    c = np.cumsum(np.cumsum(np.pad(a, ((1, 0), (1, 0))), axis=0), axis=1)
    return (c[k:, k:] - c[:-k, k:] - c[k:, :-k] + c[:-k, :-k]) / (k * k)


def ssim(a: np.ndarray, b: np.ndarray, window: int = 7, data_range: float = 255.0) -> float:
    """Mean structural similarity of two same-shape gray images (uniform window, Wang et al.)."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    k = min(window, *a.shape)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = _box(a, k), _box(b, k)
    n = k * k
    cov_norm = n / (n - 1) if n > 1 else 1.0
    var_a = (_box(a * a, k) - mu_a**2) * cov_norm
    var_b = (_box(b * b, k) - mu_b**2) * cov_norm
    cov = (_box(a * b, k) - mu_a * mu_b) * cov_norm
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.mean())


def min_ssim(a: Path, b: Path, pages: int = 3, dpi: int = 72, password: str | None = None) -> float:
    doc = open_pdfium(a, password)
    n = min(pages, len(doc))
    doc.close()
    return min(ssim(render_gray(a, i, dpi, password), render_gray(b, i, dpi, password)) for i in range(n))


def image_xobjects(pdf: pikepdf.Pdf) -> list[Stream]:
    return [o for o in pdf.objects if isinstance(o, Stream) and o.stream_dict.get("/Subtype") == Name.Image]


def font_programs(pdf: pikepdf.Pdf) -> set[tuple[int, int]]:
    found = set()
    for o in pdf.objects:
        if isinstance(o, Dictionary) and o.get("/Type") == Name.FontDescriptor:
            for key in ("/FontFile", "/FontFile2", "/FontFile3"):
                if key in o:
                    found.add(o[key].objgen)
    return found


def dir_listing(path: Path) -> set[str]:
    return {p.name for p in Path(path).iterdir()}


# --- running the engine in a child process -------------------------------------------------

_CHILD = r"""
import json, resource, sys
from squeezer.engines.options import Options
from squeezer.engines.pdf import compress
from squeezer.engines.limits import Limits
args = json.loads(sys.argv[1])
out = {}
try:
    rep = compress(args["src"], args["dst"], Options(**args["options"]), limits=Limits(**args["limits"]))
    out = {"ok": True, "report": rep.model_dump(mode="json")}
except Exception as exc:  # report the class name to the parent
    out = {"ok": False, "error": type(exc).__name__, "mro": [c.__name__ for c in type(exc).__mro__],
           "message": str(exc)[:500]}
out["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("RESULT " + json.dumps(out))
"""


@dataclass
class ChildOutcome:
    returncode: int
    result: dict | None
    stderr: str


def isolated_compress(src: Path, dst: Path, options: dict | None = None, limits: dict | None = None,
                      timeout: float = 120) -> ChildOutcome:
    """Run ``compress`` in a fresh interpreter, so a native crash cannot take the test run down."""
    args = json.dumps({"src": str(src), "dst": str(dst), "options": options or {}, "limits": limits or {}})
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, args], capture_output=True, text=True, timeout=timeout,
        cwd=str(REPO),
    )
    result = None
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT "):])
    return ChildOutcome(proc.returncode, result, proc.stderr[-2000:])


def bad_hex_stream_pdf(path: Path) -> None:
    """A text page plus an unused-by-the-page /ASCIIHexDecode stream holding a non-ASCII byte.

    qpdf's decoding error message quotes the offending byte (0x99), which is not UTF-8.
    """
    bad = b"414243\x99 4445>"
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R /Junk 5 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: _simple_page(2, 4),
        4: _content("bad hex stream"),
        5: _stream_obj(bad, "/Filter /ASCIIHexDecode "),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)


def document_budget_pdf(path: Path, pages: int = 2, per_stream: int = 40 << 20,
                        negative_image: bool = False) -> None:
    """``pages`` pages whose content streams each decode to ``per_stream`` zero bytes.

    With ``negative_image``, the catalog also references (as object 5, before the
    big streams) a JPEG image XObject declaring /Width -1000000 /Height 100.
    """
    data = zlib_zeros(per_stream)
    kids = " ".join(f"{10 + 2 * i} 0 R" for i in range(pages))
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R" + (b" /Junk 5 0 R" if negative_image else b"") + b" >>",
        2: f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
        9: _FONT_OBJ,
    }
    if negative_image:
        objects[5] = _stream_obj(
            b"\xff\xd8\xff\xd9",
            "/Type /XObject /Subtype /Image /Width -1000000 /Height 100 "
            "/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode ",
        )
    for i in range(pages):
        objects[10 + 2 * i] = _simple_page(2, 11 + 2 * i)
        objects[11 + 2 * i] = _stream_obj(data, "/Filter /FlateDecode ")
    raw_pdf(path, objects)


# --- the common post-conditions of a successful compression ----------------------------------


def sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def assert_valid_output(src: Path, dst: Path, report, password: str | None = None,
                        compare_text: bool = True) -> None:
    """What every successful ``compress`` must give: facts that a broken engine would violate.

    ``src`` is the input as it was (for an in-place run, pass a copy taken before).
    """
    src, dst = Path(src), Path(dst)
    in_size = src.stat().st_size
    assert dst.is_file()
    out_size = dst.stat().st_size
    # report bookkeeping
    assert report.input_bytes == in_size
    assert report.output_bytes == out_size
    assert report.ratio == round(out_size / in_size, 6)
    assert report.saved_bytes == in_size - out_size
    assert report.elapsed_seconds > 0
    for key in ("pikepdf", "qpdf", "pdfium"):
        assert report.engine_versions.get(key), f"engine_versions lacks {key}"
    assert "password" not in report.settings
    if password:
        assert password not in report.model_dump_json()
    # never larger; the input's own bytes when the original is kept
    assert out_size <= in_size
    if report.original_kept:
        assert report.steps == {}
        assert sha256(dst) == sha256(src)
    else:
        assert out_size < in_size
        assert sum(report.steps.values()) == report.saved_bytes
    # opens in both implementations, same pages, every page renders, same text
    with pikepdf.open(dst, password=password or "") as pdf:
        out_pages = len(pdf.pages)
    ref_texts = page_texts(src, password)
    assert report.pages == out_pages == len(ref_texts)
    assert render_all(dst, password) == out_pages
    if compare_text:
        assert page_texts(dst, password) == ref_texts


def compact_pdf(path: Path, catalog_extra: bytes = b"", info: bytes | None = None) -> None:
    """A one-page PDF written more tightly than qpdf writes it (no whitespace to spare).

    Whatever the engine does to it, its rewrite is not smaller, so the engine's
    keep-the-original fallback is what decides the output.
    """
    objs = {
        1: b"<</Pages 2 0 R" + catalog_extra + b">>",
        2: b"<</Type/Pages/Kids[3 0 R]/Count 1>>",
        3: b"<</Type/Page/Parent 2 0 R/MediaBox[0 0 9 9]>>",
    }
    if info is not None:
        objs[4] = info
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for n in sorted(objs):
        offsets[n] = len(out)
        out += b"%d 0 obj" % n + objs[n] + b"endobj\n"
    xref, size = len(out), max(objs) + 1
    out += b"xref\n0 %d\n0000000000 65535 f \n" % size
    for n in range(1, size):
        out += b"%010d 00000 n \n" % offsets[n]
    trailer_info = b"/Info 4 0 R" if info is not None else b""
    out += b"trailer<</Size %d/Root 1 0 R%s>>startxref\n%d\n%%%%EOF\n" % (size, trailer_info, xref)
    Path(path).write_bytes(bytes(out))


def kids_cycle_inherited_pdf(path: Path) -> list[tuple[tuple[float, float], int]]:
    """A /Kids cycle whose pages inherit /MediaBox, /Resources and /Rotate from /Pages nodes.

    Returns each real leaf's (width, height) as displayed and its rotation.
    """
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R 5 0 R] /Count 3 /MediaBox [0 0 300 400] "
        b"/Resources << /Font << /F1 9 0 R >> >> >>",
        3: b"<< /Type /Page /Parent 2 0 R /Contents 4 0 R >>",
        4: _content("first leaf"),
        5: b"<< /Type /Pages /Parent 2 0 R /Kids [6 0 R 2 0 R] /Count 2 /Rotate 90 "
        b"/MediaBox [0 0 500 600] >>",
        6: b"<< /Type /Page /Parent 5 0 R /Contents 7 0 R >>",
        7: _content("second leaf"),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)
    return [((300.0, 400.0), 0), ((600.0, 500.0), 90)]


def lzw_zeros(cycles: int) -> tuple[bytes, int]:
    """PDF LZW data (MSB-first, EarlyChange 1) decoding to runs of zeros; returns (data, decoded size).

    Each cycle fills the code table with ever longer runs of zeros and then
    emits a clear-table code: about 5 KB of codes per 7 MB of output.
    """
    bits = nbits = 0
    out = bytearray()

    def put(code: int, width: int) -> None:
        nonlocal bits, nbits
        bits, nbits = (bits << width) | code, nbits + width
        while nbits >= 8:
            nbits -= 8
            out.append((bits >> nbits) & 0xFF)
        bits &= (1 << nbits) - 1

    total, width = 0, 9
    for _ in range(cycles):
        put(256, width)  # clear-table, in the code width in force
        width = 9
        put(0, width)
        total += 1
        next_code, length = 258, 1
        while True:
            if next_code + 1 >= (1 << width) and width < 12:
                width += 1
            if next_code >= 4000:
                break
            put(next_code, width)  # the run one zero longer than the last
            length += 1
            total += length
            next_code += 1
    put(257, width)  # end of data
    if nbits:
        put(0, 8 - nbits)
    return bytes(out), total


def lzw_bomb_pdf(path: Path, cycles: int = 30) -> int:
    """A page whose content stream is LZW data decoding to ~7 MB per cycle of zeros; returns that size."""
    data, total = lzw_zeros(cycles)
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: _simple_page(2, 4),
        4: _stream_obj(data, "/Filter /LZWDecode "),
        9: _FONT_OBJ,
    }
    raw_pdf(path, objects)
    return total
