"""Which container a file is, from its bytes and structure (never its name).

From the first bytes (:func:`sniff_head`, what an upload's first 4 KB can tell):
ZIP local-header and empty-archive signatures, gzip ``1f 8b``, xz
``fd 37 7a 58 5a 00``, zstd ``28 b5 2f fd``, bzip2 ``BZh``, 7z
``37 7a bc af 27 1c``, and POSIX/GNU tar's ``ustar`` magic at offset 257.  A
ZIP's first member often names the format: EPUB and ODF put a stored
``mimetype`` first (OCF, ODF 1.2 part 3), OOXML writers put
``[Content_Types].xml`` first, whose head inflates to the main part's content
type.  A compressed stream is decompressed just far enough to see a tar header.

From the whole file (:func:`refine`, what ``sniff_file`` uses): the ZIP's
central directory and its ``[Content_Types].xml``, ``mimetype``,
``META-INF/MANIFEST.MF`` (JAR) or ``AndroidManifest.xml`` + ``classes.dex``
(APK).  Website bundles are ZIPs or tars (format ``zip``/``tar``); the engine
recognises them by their members (:func:`is_website`).
"""

from __future__ import annotations

import bz2
import lzma
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from squeezer.engines.container.formats import ODF_MIMETYPES, OOXML_MAIN
from squeezer.engines.errors import DamagedArchiveError

_OOXML_OVERRIDE = re.compile(rb'ContentType="([^"]+\.main\+xml)"')
#: how much of a compressed stream is decompressed to look for a tar header
_PEEK = 1024


def sniff_head(head: bytes) -> str | None:
    """The container format of a file starting with ``head``, or None."""
    if head.startswith(b"PK\x03\x04") and len(head) >= 30:
        return _zip_head(head)
    if head.startswith(b"PK\x05\x06") and len(head) >= 22:
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(b"\x1f\x8b\x08"):
        return "tar.gz" if _is_tar(_peek_gzip(head)) else "gz"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "tar.xz" if _is_tar(_peek(lzma.LZMADecompressor(), head)) else "xz"
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        return "tar.zst" if _is_tar(_peek_zstd(head)) else "zst"
    if head.startswith(b"BZh") and head[3:4].isdigit() and head[4:10] == b"1AY&SY":
        return "tar.bz2" if _is_tar(_peek(bz2.BZ2Decompressor(), head)) else None
    if _is_tar(head):
        return "tar"
    return None


def _is_tar(block: bytes) -> bool:
    if len(block) < 512:
        return False
    if block[257:262] == b"ustar":
        return True
    # a pre-POSIX (v7) header: a checksum that matches, and a name
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    return stored == computed and block[0] != 0


def _peek(decompressor: Any, data: bytes) -> bytes:
    try:
        out: bytes = decompressor.decompress(data, _PEEK)
        return out
    except (lzma.LZMAError, OSError, EOFError, ValueError):
        return b""


def _peek_gzip(head: bytes) -> bytes:
    try:
        return zlib.decompressobj(31).decompress(head, _PEEK)
    except zlib.error:
        return b""


def _peek_zstd(head: bytes) -> bytes:
    try:
        import zstandard

        reader = zstandard.ZstdDecompressor().decompressobj()
        return reader.decompress(head)[:_PEEK]
    except Exception:  # noqa: BLE001 - not a readable zstd frame start
        return b""


def _zip_head(head: bytes) -> str:
    (_, _, flags, method, _, _, _, _csize, usize, n, m) = struct.unpack_from(
        "<4sHHHHHIIIHH", head)
    name = head[30:30 + n]
    data = head[30 + n + m:]
    if name == b"mimetype" and method == 0:
        text = data[:min(usize, 200)].decode("ascii", "replace").strip()
        if text == "application/epub+zip":
            return "epub"
        if text in ODF_MIMETYPES:
            return ODF_MIMETYPES[text]
        return "zip"
    if name == b"[Content_Types].xml":
        xml = data if method == 0 else _inflate_some(data)
        return _ooxml_kind(xml) or "zip"
    if name in (b"AndroidManifest.xml",):
        return "apk"
    if name in (b"META-INF/", b"META-INF/MANIFEST.MF") and not flags & 1:
        return "jar"
    return "zip"


def _inflate_some(data: bytes, limit: int = 1 << 20) -> bytes:
    try:
        return zlib.decompressobj(-15).decompress(data, limit)
    except zlib.error:
        return b""


def _ooxml_kind(xml: bytes) -> str | None:
    for match in _OOXML_OVERRIDE.finditer(xml):
        kind = OOXML_MAIN.get(match.group(1).decode("ascii", "replace"))
        if kind:
            return kind
    return None


def refine(path: Path, guess: str) -> str:
    """The format of the ZIP at ``path`` from its central directory (``guess`` when it
    cannot be read: the engine reports the real problem)."""
    if guess not in ("zip", "jar", "apk") and not guess.startswith(("doc", "xls", "ppt", "pot",
                                                                      "dot", "xlt")):
        return guess
    try:
        names, read = _directory(path)
    except (OSError, ValueError, struct.error, zlib.error):
        return guess
    if "[Content_Types].xml" in names:
        return _ooxml_kind(read("[Content_Types].xml")) or guess
    if "AndroidManifest.xml" in names and "classes.dex" in names:
        return "apk"
    if "META-INF/MANIFEST.MF" in names and any(n.endswith(".class") for n in names):
        return "jar"
    return guess if guess in ("zip", "jar", "apk") else "zip"


def _directory(path: Path) -> tuple[set[str], Callable[[str], bytes]]:
    """The member names of the ZIP at ``path`` and a reader of a small member's bytes."""
    with open(path, "rb") as f:
        f.seek(0, 2)
        size = f.tell()
        tail_size = min(size, 22 + 0xFFFF)
        f.seek(size - tail_size)
        tail = f.read(tail_size)
        pos = tail.rfind(b"PK\x05\x06")
        if pos < 0:
            raise ValueError("no end record")
        _count, cd_size, cd_offset = struct.unpack_from("<HII", tail, pos + 10)
        if cd_size > 64 << 20 or cd_offset + cd_size > size:
            raise ValueError("no plausible central directory")
        f.seek(cd_offset)
        cd = f.read(cd_size)
    members: dict[str, tuple[int, int, int, int, int]] = {}
    p = 0
    while p + 46 <= len(cd) and cd[p:p + 4] == b"PK\x01\x02":
        flags, method = struct.unpack_from("<HH", cd, p + 8)
        csize, usize = struct.unpack_from("<II", cd, p + 20)
        n, m, k = struct.unpack_from("<HHH", cd, p + 28)
        offset, = struct.unpack_from("<I", cd, p + 42)
        name = cd[p + 46:p + 46 + n].decode("utf-8", "replace")
        members[name] = (method, csize, usize, offset, flags)
        p += 46 + n + m + k

    def read(name: str) -> bytes:
        method, csize, usize, offset, flags = members[name]
        if csize > 4 << 20 or usize > 16 << 20:
            return b""
        with open(path, "rb") as f:
            f.seek(offset)
            head = f.read(30)
            n, m = struct.unpack_from("<HH", head, 26)
            f.seek(offset + 30 + n + m)
            data = f.read(csize)
        if method == 8:
            return zlib.decompressobj(-15).decompress(data, usize)
        if method == 0:
            return data
        if flags & 1:  # encrypted
            return b""
        from squeezer.engines.container.zipread import inflate

        try:  # LZMA, PPMd... (engines/container/zipmethods.py)
            return inflate(method, data, usize, name, flags)
        except DamagedArchiveError:
            return b""

    return set(members), read


#: member extensions of a website bundle (text assets and what pages load)
WEB_TEXT = {"html", "htm", "xhtml", "css", "js", "mjs", "json", "svg", "map", "txt", "xml",
            "webmanifest", "md"}
WEB_ASSETS = {"png", "jpg", "jpeg", "gif", "webp", "avif", "ico", "bmp", "woff", "woff2",
              "ttf", "otf", "eot", "mp4", "webm", "mp3", "ogg", "wav", "pdf", "cur"}


def is_website(names: list[str], sniffed: dict[str, str]) -> bool:
    """A bundle whose pages are HTML and whose other members are what pages load.

    ``sniffed``: member name -> content kind (``html``, ``css``, ``png``…) from
    :mod:`squeezer.engines.container.kinds`; the names' extensions only break ties
    for members whose bytes say nothing (``.js``, ``.css``).
    """
    files = [n for n in names if not n.endswith("/")]
    if not files:
        return False
    pages = [n for n in files if sniffed.get(n) == "html"]
    if not pages:
        return False
    web = 0
    for name in files:
        ext = name.rsplit(".", 1)[-1].lower() if "." in name.rsplit("/", 1)[-1] else ""
        if sniffed.get(name) in ("html", "css", "js", "json", "svg", "jpeg", "png", "gif",
                                 "webp", "avif", "font", "ico", "text", "xml") or \
                ext in WEB_TEXT | WEB_ASSETS or name.rsplit("/", 1)[-1].lower() in ("license", "readme", "cname", ".nojekyll",
                                                 ".htaccess", "robots.txt", "_headers",
                                                 "_redirects"):
            web += 1
    return web >= 0.8 * len(files)
