"""Containers for tests, made at test time: generated documents and archives, cuts of the corpus,
and the hostile archives of ../shared/research/hostile-inputs.md (§1.5 and zip slip)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"


def corpus_file(category: str, name: str) -> Path:
    import pytest

    path = CORPUS / category / name
    if not path.is_file():
        pytest.skip(f"the shared corpus is not here ({path})")
    return path


def photo(width: int = 1600, height: int = 1200, seed: int = 1) -> Image.Image:
    """A photo-like image: smooth gradients and texture (PNG-hostile, JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([128 + 100 * np.sin(x / 97 + c) * np.cos(y / 83 - c) for c in (0, 1, 2)], -1)
    noise = rng.normal(0, 9, (height, width, 3))
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8), "RGB")


def png_bytes(image: Image.Image, level: int = 1) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "PNG", compress_level=level)
    return buf.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 95) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def docx(path: Path, *, picture: bytes | None = None, width_in: float = 1.5,
         paragraphs: int = 30) -> Path:
    """A DOCX made by python-docx: text and one picture shown ``width_in`` inches wide."""
    import docx as python_docx
    from docx.shared import Inches

    doc = python_docx.Document()
    for i in range(paragraphs):
        doc.add_paragraph(f"Paragraph {i}: the quick brown fox jumps over the lazy dog. " * 3)
    if picture is not None:
        doc.add_picture(io.BytesIO(picture), width=Inches(width_in))
    table = doc.add_table(rows=2, cols=2)
    table.cell(0, 0).text = "cell"
    doc.save(str(path))
    return path


def rezip(src: Path, dst: Path, *, add: dict[str, bytes] | None = None,
          replace: dict[str, bytes] | None = None, drop: set[str] = frozenset(),
          stored: set[str] = frozenset()) -> Path:
    """``src`` written again with members added, replaced or dropped (zipfile, deflate 6)."""
    add = add or {}
    replace = replace or {}
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if info.filename in drop:
                continue
            data = replace.get(info.filename, zin.read(info))
            info.compress_type = zipfile.ZIP_STORED if info.filename in stored else \
                zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
        for name, data in add.items():
            zout.writestr(zipfile.ZipInfo(name, (2020, 5, 17, 10, 30, 0)), data,
                          compress_type=zipfile.ZIP_DEFLATED)
    return dst


def content_types_add(xml: bytes, *overrides: tuple[str, str]) -> bytes:
    extra = "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides)
    return xml.replace(b"</Types>", extra.encode() + b"</Types>")


def rels_add(xml: bytes, *rels: tuple[str, str, str]) -> bytes:
    extra = "".join(f'<Relationship Id="{i}" Type="{t}" Target="{g}"/>' for i, t, g in rels)
    return xml.replace(b"</Relationships>", extra.encode() + b"</Relationships>")


# --- raw ZIP building (for what zipfile will not write) ----------------------------------------


def raw_zip(entries: list[tuple[bytes, bytes, int]], *, overlap: bool = False,
            flags: dict[bytes, int] | None = None) -> bytes:
    """A ZIP of ``(name, content, method)`` entries written by hand.

    ``overlap``: every member's data, by its central record, runs over the members
    after it (the "non-recursive" zip bomb's shape: one stream read by many entries).  ``flags``: general-purpose bits to set per name (bit 0: encrypted).
    """
    flags = flags or {}
    out = bytearray()
    records = []
    for name, content, method in entries:
        data = content
        if method == 8:
            c = zlib.compressobj(9, zlib.DEFLATED, -15)
            data = c.compress(content) + c.flush()
        crc = zlib.crc32(content)
        flag = flags.get(name, 0)
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, flag, method, 0, 0x5021, crc,
                           len(data), len(content), len(name), 0) + name + data
        records.append([name, flag, method, crc, len(data), len(content), offset,
                        offset + 30 + len(name)])
    cd_offset = len(out)
    if overlap:  # each member's data runs over every later member: Fifield's quoted overlap
        for record in records[:-1]:
            record[4] = cd_offset - record[7]
    central = bytearray()
    for name, flag, method, crc, csize, usize, offset, _ in records:
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 20, flag, method, 0,
                               0x5021, crc, csize, usize, len(name), 0, 0, 0, 0,
                               0o100644 << 16, offset) + name
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                       len(central), cd_offset, 0)
    return bytes(out)


def many_members(count: int) -> bytes:
    """A ZIP of ``count`` one-byte stored members, written quickly by hand."""
    out = bytearray()
    central = bytearray()
    crc = zlib.crc32(b"x")
    for i in range(count):
        name = f"f{i}.txt".encode()
        offset = len(out)
        out += struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 10, 0, 0, 0, 0x5021, crc, 1, 1,
                           len(name), 0) + name + b"x"
        central += struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 0x031E, 10, 0, 0, 0, 0x5021,
                               crc, 1, 1, len(name), 0, 0, 0, 0, 0, offset) + name
    n = min(count, 0xFFFF)
    cd_offset = len(out)
    out += central
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, 0)
    return bytes(out)


def nested_zips(depth: int, payload: bytes = b"hello" * 100) -> bytes:
    data = payload
    name = "inner.txt"
    for level in range(depth):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr(name, data)
        data = buf.getvalue()
        name = f"level{level}.zip"
    return data


def epubcheck() -> list[str] | None:
    """The command that runs epubcheck (Debian's is a jar behind a symlink), or None."""
    import os
    import shutil

    found = shutil.which("epubcheck")
    if not found:
        return None
    real = os.path.realpath(found)
    if real.endswith(".jar"):
        java = shutil.which("java")
        return [java, "-jar", real] if java else None
    return [real]


def cut(src: Path, dst: Path, max_bytes: int = 40_000) -> Path:
    """A real package made small: every image over ``max_bytes`` replaced by a small photo of
    the same format (names, relationships and the rest of the package as they were)."""
    replace: dict[str, bytes] = {}
    with zipfile.ZipFile(src) as z:
        for info in z.infolist():
            low = info.filename.lower()
            if info.file_size > max_bytes and low.endswith((".png", ".jpeg", ".jpg")):
                small = photo(320, 240, seed=len(replace) + 7)
                replace[info.filename] = png_bytes(small) if low.endswith(".png") else \
                    jpeg_bytes(small)
    return rezip(src, dst, replace=replace)


# --- one small real package of each Office/ODF/Java kind (the web page's every-format test) ----

_MS = "application/vnd.ms-"
#: OOXML kind -> (base document, main part, the main part's content type)
OFFICE = {
    "docm": ("docx", "word/document.xml", _MS + "word.document.macroEnabled.main+xml"),
    "dotx": ("docx", "word/document.xml",
             "application/vnd.openxmlformats-officedocument.wordprocessingml.template.main+xml"),
    "xlsm": ("xlsx", "xl/workbook.xml", _MS + "excel.sheet.macroEnabled.main+xml"),
    "xltx": ("xlsx", "xl/workbook.xml",
             "application/vnd.openxmlformats-officedocument.spreadsheetml.template.main+xml"),
    "pptm": ("pptx", "ppt/presentation.xml", _MS + "powerpoint.presentation.macroEnabled.main+xml"),
    "ppsx": ("pptx", "ppt/presentation.xml",
             "application/vnd.openxmlformats-officedocument.presentationml.slideshow.main+xml"),
    "potx": ("pptx", "ppt/presentation.xml",
             "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml"),
}
_BASE_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml",
}
VBA_REL = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"


def office_base(kind: str, path: Path) -> Path:
    """A DOCX, XLSX or PPTX as python-docx, openpyxl and python-pptx write them."""
    if kind == "docx":
        return docx(path, paragraphs=8)
    if kind == "xlsx":
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        for row in range(1, 41):
            sheet.append([f"item {row}", row, row * 1.5, "the quick brown fox"])
        book.save(path)
        return path
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Squeezer"
    slide.placeholders[1].text = "A slide of plain words. " * 10
    deck.save(str(path))
    return path


def office(kind: str, path: Path) -> Path:
    """A ``kind`` of :data:`OFFICE` (macro-enabled, template, slide show): its base document
    with the main part's content type changed, and for a macro-enabled one a
    ``vbaProject.bin`` part (:func:`vba_project`) with its content type and relationship."""
    base_kind, main, content_type = OFFICE[kind]
    base = office_base(base_kind, path.with_name(f"base-{kind}.{base_kind}"))
    rels_name = main.rsplit("/", 1)[0] + "/_rels/" + main.rsplit("/", 1)[1] + ".rels"
    with zipfile.ZipFile(base) as z:
        types = z.read("[Content_Types].xml")
        rels = z.read(rels_name)
    assert _BASE_TYPES[base_kind].encode() in types
    types = types.replace(_BASE_TYPES[base_kind].encode(), content_type.encode())
    add: dict[str, bytes] = {}
    if kind.endswith("m"):
        folder = main.rsplit("/", 1)[0]
        add[f"{folder}/vbaProject.bin"] = vba_project()
        types = content_types_add(types, (f"/{folder}/vbaProject.bin", _MS + "office.vbaProject"))
        rels = rels_add(rels, ("rIdVba1", VBA_REL, "vbaProject.bin"))
    rezip(base, path, add=add, replace={"[Content_Types].xml": types, rels_name: rels})
    base.unlink()
    return path


def compound_file(streams: dict[str, bytes]) -> bytes:
    """An OLE compound file (MS-CFB version 3, the container of ``vbaProject.bin``) holding
    ``streams`` (``"VBA/dir"``: stream ``dir`` in storage ``VBA``; one level of storages, at
    most two entries in each, so that a right child makes a valid red-black tree).

    Every stream is padded to 4096 bytes (the mini-stream cutoff) so that it lives in regular
    sectors; one FAT sector, no mini stream, no DIFAT sectors."""
    sector, nobody, end = 512, 0xFFFFFFFF, 0xFFFFFFFE
    body = bytearray()
    where: dict[str, tuple[int, int]] = {}
    fat: list[int] = []
    for full, data in streams.items():
        data = data.ljust(4096, b"\0")
        count = -(-len(data) // sector)
        first = len(body) // sector
        where[full] = (first, len(data))
        fat += [first + i + 1 for i in range(count - 1)] + [end]
        body += data.ljust(count * sector, b"\0")

    def order(names: list[str]) -> list[str]:  # CFB compares by length, then upper case
        return sorted(names, key=lambda n: (len(n), n.upper()))

    top = order(sorted({f.split("/")[0] for f in streams}))
    inner = {s: order([f.split("/", 1)[1] for f in streams if f.startswith(s + "/")])
             for s in top}
    ids: dict[str, int] = {}
    for name in top:
        ids[name] = len(ids) + 1
    for s in top:
        for name in inner[s]:
            ids[s + "/" + name] = len(ids) + 1
    assert all(len(level) <= 2 for level in [top, *inner.values()])

    def entry(name: str, kind: int, red: bool, right: int, child: int, start: int,
              size: int) -> bytes:
        encoded = (name + "\0").encode("utf-16-le")
        return (encoded.ljust(64, b"\0")
                + struct.pack("<HBBIII", len(encoded), kind, 0 if red else 1, nobody, right, child)
                + bytes(16 + 4 + 16) + struct.pack("<III", start, size, 0))

    directory = bytearray(entry("Root Entry", 5, False, nobody, ids[top[0]], end, 0))
    for i, name in enumerate(top):
        right = ids[top[1]] if i == 0 and len(top) > 1 else nobody
        if inner[name]:
            directory += entry(name, 1, i > 0, right, ids[name + "/" + inner[name][0]], 0, 0)
        else:
            directory += entry(name, 2, i > 0, right, nobody, *where[name])
    for s in top:
        for i, name in enumerate(inner[s]):
            right = ids[s + "/" + inner[s][1]] if i == 0 and len(inner[s]) > 1 else nobody
            directory += entry(name, 2, i > 0, right, nobody, *where[s + "/" + name])
    dir_start = len(body) // sector
    dir_sectors = -(-len(directory) // sector)
    fat += [dir_start + i + 1 for i in range(dir_sectors - 1)] + [end]
    fat_at = len(fat)
    fat += [0xFFFFFFFD]  # the FAT's own sector
    assert len(fat) <= 128, "one FAT sector maps 128 sectors"
    fat += [nobody] * (128 - len(fat))
    header = (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(16)
              + struct.pack("<HHHHH", 0x3E, 3, 0xFFFE, 9, 6) + bytes(6)
              + struct.pack("<9I", 0, 1, dir_start, 0, 4096, end, 0, end, 0)
              + struct.pack("<109I", fat_at, *[nobody] * 108))
    assert len(header) == sector
    return bytes(header + body + directory.ljust(dir_sectors * sector, b"\0")
                 + struct.pack("<128I", *fat))


def vba_project() -> bytes:
    """A ``vbaProject.bin``: an OLE compound file with the storages and streams of a VBA
    project (``PROJECT``, ``VBA/_VBA_PROJECT``, ``VBA/dir``).  Only the container is real:
    the streams' content is a placeholder no Office would run (the engine keeps the part
    byte-identical, never reading it)."""
    return compound_file({
        "VBA/_VBA_PROJECT": b"\xcc\x61\xff\xff\x00\x03\x00",
        "VBA/dir": b"\x01" + b"placeholder dir stream",
        "PROJECT": b'ID="{00000000-0000-0000-0000-000000000000}"\r\nName="Squeezer"\r\n',
    })


#: ODF kind -> the ``mimetype`` a document of it holds
ODF = {kind: "application/vnd.oasis.opendocument." + mime for kind, mime in (
    ("odt", "text"), ("ods", "spreadsheet"), ("odp", "presentation"), ("odg", "graphics"),
    ("ott", "text-template"), ("ots", "spreadsheet-template"),
    ("otp", "presentation-template"))}


def odf(kind: str, path: Path) -> Path:
    """An ODF document of ``kind`` as odfpy writes it (``mimetype`` first and stored, the
    manifest naming the same type; a template is its document with the template type): some
    text and a photo stored as PNG (room for the engine, which makes it a JPEG)."""
    from odf import draw, opendocument, style, table, text

    def picture(doc) -> draw.Frame:
        href = doc.addPicture("Pictures/photo.png", "image/png",
                              png_bytes(photo(240, 180, seed=3)))
        frame = draw.Frame(width="8cm", height="6cm", x="1cm", y="7cm", anchortype="paragraph")
        frame.addElement(draw.Image(href=href))
        return frame

    if kind in ("ods", "ots"):
        doc = opendocument.OpenDocumentSpreadsheet()
        sheet = table.Table(name="Sheet1")
        for row in range(30):
            tr = table.TableRow()
            for value in (f"item {row}", "the quick brown fox jumps over the lazy dog"):
                cell = table.TableCell()
                cell.addElement(text.P(text=value))
                if row == 0 and value.startswith("item"):
                    cell.addElement(picture(doc))
                tr.addElement(cell)
            sheet.addElement(tr)
        doc.spreadsheet.addElement(sheet)
    elif kind in ("odp", "otp", "odg"):
        doc = (opendocument.OpenDocumentDrawing() if kind == "odg"
               else opendocument.OpenDocumentPresentation())
        layout = style.PageLayout(name="page")
        doc.automaticstyles.addElement(layout)
        master = style.MasterPage(name="Default", pagelayoutname=layout)
        doc.masterstyles.addElement(master)
        page = draw.Page(masterpagename=master)
        frame = draw.Frame(width="20cm", height="5cm", x="1cm", y="1cm")
        box = draw.TextBox()
        box.addElement(text.P(text="A page of plain words. " * 20))
        frame.addElement(box)
        page.addElement(frame)
        page.addElement(picture(doc))
        (doc.drawing if kind == "odg" else doc.presentation).addElement(page)
    else:
        doc = opendocument.OpenDocumentText()
        for i in range(20):
            doc.text.addElement(text.P(text=f"Paragraph {i}: the quick brown fox. " * 4))
        holder = text.P()
        holder.addElement(picture(doc))
        doc.text.addElement(holder)
    doc.mimetype = ODF[kind]
    doc.save(str(path))
    return path


def class_file(name: str) -> bytes:
    """The smallest valid Java class file: ``public class name extends Object`` (Java 8)."""
    def utf8(s: str) -> bytes:
        return b"\x01" + struct.pack(">H", len(s)) + s.encode()

    pool = utf8(name) + b"\x07\x00\x01" + utf8("java/lang/Object") + b"\x07\x00\x03"
    return (struct.pack(">IHHH", 0xCAFEBABE, 0, 52, 5) + pool
            + struct.pack(">HHHHHHH", 0x0021, 2, 4, 0, 0, 0, 0) + struct.pack(">H", 0))


def jar(path: Path, manifest: bytes | None = None, extra: dict[str, bytes] | None = None) -> Path:
    """A JAR: ``META-INF/MANIFEST.MF`` first (as the jar tool writes it), a few classes and a
    resource, deflated."""
    members = {"META-INF/MANIFEST.MF": manifest or b"Manifest-Version: 1.0\r\n"
               b"Created-By: squeezer tests\r\n\r\n"}
    for name in ("squeezer/One", "squeezer/Two", "squeezer/Three"):
        members[name + ".class"] = class_file(name)
    members["squeezer/notes.txt"] = b"squeezer " * 2000
    members.update(extra or {})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        for name, data in members.items():
            z.writestr(zipfile.ZipInfo(name, (2020, 5, 17, 10, 30, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return path


def jar_signature(members: dict[str, bytes]) -> dict[str, bytes]:
    """A v1 JAR signature of ``members`` (what ``jarsigner`` and APK v1 signing write):
    ``META-INF/MANIFEST.MF`` with each member's SHA-256, ``CERT.SF`` with the manifest's and
    each section's, ``CERT.RSA``: the SF's detached PKCS #7 signature by a fresh self-signed
    key."""
    import base64
    import datetime
    import hashlib

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs7

    def b64(data: bytes) -> bytes:
        return base64.b64encode(hashlib.sha256(data).digest())

    head = b"Manifest-Version: 1.0\r\nCreated-By: squeezer tests\r\n\r\n"
    sections = [b"Name: " + n.encode() + b"\r\nSHA-256-Digest: " + b64(d) + b"\r\n\r\n"
                for n, d in members.items()]
    manifest = head + b"".join(sections)
    sf = (b"Signature-Version: 1.0\r\nCreated-By: squeezer tests\r\nSHA-256-Digest-Manifest: "
          + b64(manifest) + b"\r\nSHA-256-Digest-Manifest-Main-Attributes: " + b64(head)
          + b"\r\n\r\n" + b"".join(b"Name: " + n.encode() + b"\r\nSHA-256-Digest: " + b64(s)
                                   + b"\r\n\r\n" for n, s in zip(members, sections)))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "squeezer tests")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    signature = (pkcs7.PKCS7SignatureBuilder().set_data(sf)
                 .add_signer(cert, key, hashes.SHA256())
                 .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature,
                                                    pkcs7.PKCS7Options.NoAttributes]))
    return {"META-INF/MANIFEST.MF": manifest, "META-INF/CERT.SF": sf, "META-INF/CERT.RSA": signature}


def signed_apk(path: Path) -> Path:
    """An APK-shaped package signed as APK v1 signing does (a JAR signature): an
    ``AndroidManifest.xml``, ``classes.dex``, resources.  The manifest is text XML and the DEX
    only a header's magic and padding (no Android SDK here to build real ones); the signature
    is real (``jarsigner -verify`` accepts it)."""
    manifest = (b'<?xml version="1.0" encoding="utf-8"?>\n<manifest xmlns:android="http://'
                b'schemas.android.com/apk/res/android" package="org.squeezer.sample">\n'
                b'  <application android:label="Squeezer"/>\n</manifest>\n')
    members = {"AndroidManifest.xml": manifest,
               "classes.dex": b"dex\n035\x00" + bytes(4000),
               "res/raw/notes.txt": b"squeezer " * 2000,
               "res/drawable/icon.png": png_bytes(photo(64, 64))}
    signed = {**jar_signature(members), **members}
    with zipfile.ZipFile(path, "w") as z:
        for name, data in signed.items():
            z.writestr(zipfile.ZipInfo(name, (2020, 5, 17, 10, 30, 0)), data,
                       compress_type=zipfile.ZIP_DEFLATED, compresslevel=1)
    return path
