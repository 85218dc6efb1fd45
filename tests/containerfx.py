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
