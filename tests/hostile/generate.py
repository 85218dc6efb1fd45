"""Hostile files and requests, generated (never checked in): what the suite replays.

Every file is built here from a few lines of bytes, so it can be read, changed
and regenerated; the expected outcome of each is a set of named codes (or
success), never "anything but a crash".  ``HOSTILE_FILES`` names them;
:func:`hostile_files` builds them.  The requests (:func:`json_routes`,
:data:`BAD_URLS`) are the HTTP half.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable

from mutate import mutant


def pdf(objects: list[bytes], root: int = 1, trailer: bytes = b"") -> bytes:
    """A PDF with ``objects`` numbered from 1 and a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root %d 0 R %s>>\nstartxref\n%d\n%%%%EOF\n"
              % (len(objects) + 1, root, trailer, xref))
    return out.getvalue()


def stream(dictionary: bytes, data: bytes) -> bytes:
    return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + b"\nendstream"


def one_image_page(image: bytes) -> bytes:
    """A one-page PDF drawing image object 5 (``image`` is its object body)."""
    content = b"q 500 0 0 500 50 50 cm /Im0 Do Q"
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 600] "
                b"/Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>",
                stream(b"", content), image])


def text_page(text: bytes = b"Hello, hostile world") -> bytes:
    content = b"BT /F1 24 Tf 72 700 Td (" + text + b") Tj ET"
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
                stream(b"", content),
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"])


def small_jpeg(size: int = 64) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def lying_jpeg(width: int = 65000, height: int = 65000) -> bytes:
    """A real 64 x 64 JPEG whose frame header (SOF) claims ``width`` x ``height``."""
    data = bytearray(small_jpeg())
    pos = 2
    while pos < len(data):
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            data[pos + 5:pos + 9] = struct.pack(">HH", height, width)
            break
        pos += 2 + length
    return bytes(data)


def coefficient_overflow_jpeg(blocks: int = 32) -> bytes:
    """A 256 x 8 grey JPEG whose every block adds 2047 to the DC value: decoders wrap the sum
    silently, and mozjpeg's re-pack, re-coding the wrapped values, called ``exit(1)``."""
    def segment(marker: int, payload: bytes) -> bytes:
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload

    one_code = bytes([1] + [0] * 15)  # one Huffman code, of length 1
    header = (segment(0xDB, b"\x00" + b"\x01" * 64)
              + segment(0xC0, struct.pack(">BHHB", 8, 8, 8 * blocks, 1) + b"\x01\x11\x00")
              + segment(0xC4, b"\x00" + one_code + b"\x0b" + b"\x10" + one_code + b"\x00")
              + segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))
    bits = ("0" + "1" * 11 + "0") * blocks  # DC: size 11, value +2047; AC: end of block
    bits += "1" * (-len(bits) % 8)
    scan = int(bits, 2).to_bytes(len(bits) // 8, "big").replace(b"\xff", b"\xff\x00")
    return b"\xff\xd8" + header + scan + b"\xff\xd9"


def coefficient_overflow_pdf() -> bytes:
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 256 /Height 8 "
                                 b"/ColorSpace /DeviceGray /BitsPerComponent 8 "
                                 b"/Filter /DCTDecode", coefficient_overflow_jpeg()))


def coefficient_overflow_zip() -> bytes:
    data = coefficient_overflow_jpeg()
    return zip_archive([(b"photo.jpg", data, 0, zlib.crc32(data), len(data))])


def page_tree_cycle() -> bytes:
    """/Pages -> 3 -> 4 -> 3: a /Kids cycle with no leaf (pdf.js Pages-tree-refs)."""
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 2 0 R /Kids [4 0 R] /Count 1 >>",
                b"<< /Type /Pages /Parent 3 0 R /Kids [3 0 R] /Count 1 >>"])


def lying_dct_pdf() -> bytes:
    jpeg = lying_jpeg()
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 "
                                 b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode",
                                 jpeg))


def lying_flate_dct_pdf() -> bytes:
    """The lying JPEG behind a Flate layer (some optimisers wrap JPEGs so)."""
    data = zlib.compress(lying_jpeg())
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 "
                                 b"/ColorSpace /DeviceRGB /BitsPerComponent 8 "
                                 b"/Filter [/FlateDecode /DCTDecode]", data))


def lying_jpx_pdf() -> bytes:
    """A JPEG 2000 codestream whose SIZ says 60 000 x 60 000 (the dictionary: 64 x 64)."""
    siz = struct.pack(">HHHIIIIIIIIH", 0xFF51, 47, 0, 60000, 60000, 0, 0, 60000, 60000, 0, 0, 3)
    siz += b"\x07\x01\x01" * 3
    codestream = b"\xff\x4f" + siz + b"\xff\xd9"
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 "
                                 b"/ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /JPXDecode",
                                 codestream))


def lying_jbig2_pdf() -> bytes:
    """A JBIG2 page-information segment claiming a 200 000 x 200 000 page."""
    page = struct.pack(">IIIIBH", 200000, 200000, 0, 0, 0, 0)
    segment = struct.pack(">IBBBI", 0, 48, 0, 1, len(page)) + page
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 "
                                 b"/ColorSpace /DeviceGray /BitsPerComponent 1 "
                                 b"/Filter /JBIG2Decode", segment))


def lying_ccitt_pdf() -> bytes:
    """CCITT data whose /Columns (the decoder's row width) is 2 000 000 (/Width: 64)."""
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64000 "
                                 b"/ColorSpace /DeviceGray /BitsPerComponent 1 "
                                 b"/Filter /CCITTFaxDecode "
                                 b"/DecodeParms << /K -1 /Columns 2000000 /Rows 64000 >>",
                                 b"\x00" * 64))


def predictor_bomb_pdf() -> bytes:
    """A Flate image whose PNG predictor rows are 2**31 samples wide."""
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 64 /Height 64 "
                                 b"/ColorSpace /DeviceRGB /BitsPerComponent 8 "
                                 b"/Filter /FlateDecode /DecodeParms << /Predictor 15 "
                                 b"/Columns 2147483647 /Colors 3 >>", zlib.compress(b"\x00" * 64)))


def zeros_bomb(mebibytes: int) -> bytes:
    """A zlib stream of ``mebibytes`` MiB of zeros, made in milliseconds: after a full flush a
    compressor's output for the same input repeats, so one MiB is compressed twice and the
    second block repeated; the Adler-32 of n zeros is (n mod 65521) << 16 | 1."""
    packer = zlib.compressobj(9)
    block = bytes(1 << 20)
    first = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    again = packer.compress(block) + packer.flush(zlib.Z_FULL_FLUSH)
    size = mebibytes << 20
    return (first + again * (mebibytes - 1) + b"\x03\x00"
            + struct.pack(">I", ((size % 65521) << 16) | 1))


def flate_bomb_pdf(mebibytes: int = 600) -> bytes:
    """An image stream of ``mebibytes`` MiB of zeros, about 600 KB compressed."""
    data = zeros_bomb(mebibytes)
    return one_image_page(stream(b"/Type /XObject /Subtype /Image /Width 16000 /Height 12500 "
                                 b"/ColorSpace /DeviceRGB /BitsPerComponent 8 "
                                 b"/Filter /FlateDecode", data))


def deep_nesting_pdf(depth: int = 100_000) -> bytes:
    return pdf([b"<< /Type /Catalog /Pages 2 0 R /Junk 3 0 R >>",
                b"<< /Type /Pages /Kids [] /Count 0 >>",
                b"[" * depth + b"]" * depth])


def xref_loop_pdf() -> bytes:
    """A trailer whose /Prev points at its own cross-reference table."""
    body = text_page()
    at = body.rindex(b"startxref\n") + len(b"startxref\n")
    xref = int(body[at:body.index(b"\n", at)])
    return body.replace(b"/Root 1 0 R", b"/Root 1 0 R /Prev %d" % xref)


def absurd_count_pdf() -> bytes:
    return text_page().replace(b"/Count 1", b"/Count 9999999999")


def huge_png() -> bytes:
    """A PNG whose IHDR says 20 000 x 20 000 with one tiny IDAT."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def zip_archive(members: list[tuple[bytes, bytes, int, int, int]],
                overlap: bool = False) -> bytes:
    """A ZIP of ``(name, stored bytes, method, crc, declared size)`` members, written by hand
    so its records can lie; ``overlap``: every central record points at the first entry
    (the "non-recursive" zip bomb)."""
    out, central = io.BytesIO(), []
    for name, data, method, crc, size in members:
        offset = out.tell()
        if overlap and offset:
            central.append((name, method, crc, len(data), size, 0))
            continue
        out.write(struct.pack("<4sHHHHHIIIHH", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc,
                              len(data), size, len(name), 0) + name + data)
        central.append((name, method, crc, len(data), size, 0 if overlap else offset))
    start = out.tell()
    for name, method, crc, stored, size, offset in central:
        out.write(struct.pack("<4sHHHHHHIIIHHHHHII", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21,
                              crc, stored, size, len(name), 0, 0, 0, 0, 0, offset) + name)
    end = out.tell()
    out.write(struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(central), len(central),
                          end - start, start, 0))
    return out.getvalue()


def _deflated_zeros(mebibytes: int) -> tuple[bytes, int]:
    """Raw deflate of ``mebibytes`` MiB of zeros, and their CRC-32."""
    raw = zeros_bomb(mebibytes)[2:-4]  # the zlib stream without its header and Adler-32
    crc, block = 0, bytes(1 << 20)
    for _ in range(mebibytes):
        crc = zlib.crc32(block, crc)
    return raw, crc


def zip_bomb() -> bytes:
    """One member of 256 MiB of zeros in 260 KB, honestly declared (ratio ~1000:1)."""
    data, crc = _deflated_zeros(256)
    return zip_archive([(b"zeros.txt", data, 8, crc, 256 << 20)])


def zip_lying_size() -> bytes:
    """A member that declares 100 bytes and inflates to 64 MiB."""
    data, crc = _deflated_zeros(64)
    return zip_archive([(b"small.txt", data, 8, crc, 100)])


def zip_overlap() -> bytes:
    """500 central records all pointing at one stored member (CVE-2024-0450's shape: each
    record is harmless, together they expand 500 times)."""
    data = bytes((i * 7919 + 13) % 251 for i in range(1 << 16))
    return zip_archive([(b"m%03d.bin" % i, data, 0, zlib.crc32(data), len(data))
                        for i in range(500)], overlap=True)


def zip_traversal() -> bytes:
    """A member whose name climbs out of any directory it is extracted to."""
    text = b"escaped " * 100
    return zip_archive([(b"../../../escaped-by-traversal.txt", text, 0, zlib.crc32(text),
                         len(text))])


def truncated_mp4() -> bytes:
    """An MP4 that is its ``ftyp`` box and the start of a 2 GB ``mdat``: no index at all."""
    ftyp = struct.pack(">I", 24) + b"ftypisom" + struct.pack(">I", 0x200) + b"isomiso2"
    return ftyp + struct.pack(">I", 0x7FFFFFFF) + b"mdat" + bytes(2000)


def lying_wav() -> bytes:
    """A WAV header claiming 65 535 channels at 384 kHz and 4 GB of samples, over 1000 bytes."""
    fmt = struct.pack("<HHIIHH", 1, 65535, 384000, (384000 * 65535 * 2) & 0xFFFFFFFF,
                      (65535 * 2) & 0xFFFF, 16)
    return (b"RIFF" + struct.pack("<I", 0xFFFFFFF0) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
            + b"data" + struct.pack("<I", 0xFFFFFFF0) + bytes(1000))


def inline_image_without_data() -> bytes:
    """A page that is a scan (one grey image as large as the page, at 200 dpi), then
    ``BI EI``: an inline image with neither dictionary nor data, on which qpdf's content
    parser raises IndexError (found by ``make fuzz``; the scan finder reads the content)."""
    rows = b"".join(bytes((x + y) % 256 for x in range(1667)) for y in range(1667))
    gray = stream(b"/Type /XObject /Subtype /Image /Width 1667 /Height 1667 "
                  b"/ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /FlateDecode",
                  zlib.compress(rows, 9))
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 600 600] "
                b"/Resources << /XObject << /Im0 5 0 R >> >> /Contents 4 0 R >>",
                stream(b"", b"q 600 0 0 600 0 0 cm /Im0 Do Q BI EI"), gray])


def undecodable_name() -> bytes:
    """A font dictionary with a key that is not UTF-8 (``/S`` and two raw high bytes), and an
    XMP packet of its own (so the lean-metadata step walks every dictionary): pikepdf hands
    the key back as a str its own ``get()`` refuses (found by ``make fuzz``)."""
    content = b"BT /F1 24 Tf 72 700 Td (Hello, hostile world) Tj ET"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    return pdf([b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
                stream(b"", content),
                b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /S\xaa\x97 1 "
                b"/Metadata 6 0 R >>",
                stream(b"/Type /Metadata /Subtype /XML", xmp)])


def eps_as_pdf() -> bytes:
    return b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n(%pipe%id) (w) file\nshowpage\n"


#: name -> (builder, the codes it may end with; "ok" for success)
HOSTILE_FILES: dict[str, tuple[Callable[[], bytes], set[str]]] = {
    "page-tree-cycle.pdf": (page_tree_cycle, {"pdf_invalid"}),
    "lying-jpeg.pdf": (lying_dct_pdf, {"image_too_large"}),
    "lying-flate-jpeg.pdf": (lying_flate_dct_pdf, {"image_too_large"}),
    "lying-jpx.pdf": (lying_jpx_pdf, {"image_too_large"}),
    "lying-jbig2.pdf": (lying_jbig2_pdf, {"image_too_large"}),
    "lying-ccitt.pdf": (lying_ccitt_pdf, {"image_too_large", "decompression_limit"}),
    "predictor-bomb.pdf": (predictor_bomb_pdf, {"image_too_large", "decompression_limit"}),
    "flate-bomb.pdf": (flate_bomb_pdf, {"decompression_limit", "image_too_large"}),
    "deep-nesting.pdf": (deep_nesting_pdf, {"ok", "pdf_invalid"}),
    "xref-loop.pdf": (xref_loop_pdf, {"ok", "pdf_invalid"}),
    "absurd-count.pdf": (absurd_count_pdf, {"ok", "pdf_invalid", "too_many_pages"}),
    "lying.jpg": (lying_jpeg, {"image_too_large"}),
    "coefficient-overflow.jpg": (coefficient_overflow_jpeg, {"ok"}),
    "coefficient-overflow.pdf": (coefficient_overflow_pdf, {"ok"}),
    "coefficient-overflow.zip": (coefficient_overflow_zip, {"ok"}),
    "huge.png": (huge_png, {"image_too_large"}),
    "eps-as.pdf": (eps_as_pdf, {"unsupported_format"}),
    "zip-bomb.zip": (zip_bomb, {"archive_bomb"}),
    "zip-lying-size.zip": (zip_lying_size, {"archive_invalid", "archive_bomb"}),
    "zip-overlap.zip": (zip_overlap, {"archive_bomb", "archive_invalid", "archive_unsafe"}),
    "zip-traversal.zip": (zip_traversal, {"archive_unsafe"}),
    "truncated.mp4": (truncated_mp4, {"media_invalid"}),
    "lying.wav": (lying_wav, {"media_invalid", "too_many_streams"}),
    "inline-image-without-data.pdf": (inline_image_without_data, {"ok"}),
    "undecodable-name.pdf": (undecodable_name, {"ok"}),
    "empty.pdf": (lambda: b"", {"unsupported_format"}),
    "truncated.pdf": (lambda: text_page()[:200], {"ok", "pdf_invalid", "unsupported_format",
                                                 "not_a_pdf"}),
    "random.bin": (lambda: bytes((i * 7919 + 13) % 256 for i in range(4096)),
                   {"unsupported_format"}),
}
#: seeded mutants of a small text page: any named code, or success
MUTANT_SEEDS = range(12)
MUTANT_CODES = {"ok", "pdf_invalid", "not_a_pdf", "unsupported_format", "decompression_limit",
                "image_too_large", "too_many_pages", "image_invalid", "password_required"}


def hostile_files() -> list[tuple[str, bytes]]:
    """Every hostile file, built: the named ones and the mutants."""
    files = [(name, build()) for name, (build, _) in HOSTILE_FILES.items()]
    base = text_page()
    files += [(f"mutant-{seed}.pdf", mutant(base, seed)) for seed in MUTANT_SEEDS]
    return files


def expected(name: str) -> set[str]:
    return HOSTILE_FILES[name][1] if name in HOSTILE_FILES else MUTANT_CODES


# --- requests --------------------------------------------------------------------------------

DEEP_JSON = b'{"url": ' + b"[" * 20000 + b"]" * 20000 + b"}"
#: URLs every URL-taking route must refuse with a 4xx (never a 5xx, never a connection)
BAD_URLS = ["http://[::1", "http://[::1]/", "http://[::ffff:127.0.0.2]/x.pdf",
            "http://127.0.0.2:{canary}/x.pdf", "http://0.0.0.0:{canary}/",
            "http://169.254.169.254/latest/meta-data/", "http://2130706434:{canary}/",
            "http://[2002:7f00:2::1]/", "http://100.64.0.1/", "file:///etc/passwd",
            "gopher://127.0.0.2:{canary}/_x", "http://good.example@127.0.0.2:{canary}/",
            "HTTP://127.0.0.2:{canary}/", "http://127.0.0.2:{canary}\\@example.com/",
            "http://x/" + "a" * 9000, ""]


def json_routes(key: str) -> list[tuple[str, str, dict[str, str]]]:
    """``(method, path, headers)`` of every route that reads a JSON body, with its auth."""
    bearer = {"Authorization": f"Bearer {key}"}
    return [("POST", "/v1/jobs", bearer), ("POST", "/v1/compress", bearer),
            ("POST", "/1.0/fetch", bearer), ("POST", "/1.0/connectors", bearer),
            ("POST", "/v1/pdf/optimize", {"x-api-key": key}),
            ("POST", "/v1/job/check", {"x-api-key": key}),
            ("POST", "/pdf24/client.php?action=compressPdf", bearer),
            ("POST", "/api/document/DocumentLoadFromURI", {"X-PassportPDF-API-Key": key}),
            ("POST", "/api/document/DocumentLoad", {"X-PassportPDF-API-Key": key}),
            ("POST", "/api/pdf/Reduce", {"X-PassportPDF-API-Key": key})]


def url_bodies(url: str) -> list[tuple[str, dict, dict[str, str] | None]]:
    """``(path, json body, extra headers)`` putting ``url`` in every place a URL is taken."""
    return [("/v1/jobs", {"input": {"url": url}}, None),
            ("/v1/jobs", {"input": {"url": "https://example.com/a.pdf"},
                          "webhook": {"url": url}}, None),
            ("/v1/compress", {"url": url}, None),
            ("/1.0/fetch", {"url": url}, None),
            ("/1.0/connectors", {"provider": "minio", "credentials": {
                "access_key_id": "AKIAHOSTILE", "secret_access_key": "hostile",
                "endpoint": url}}, None),
            ("/v1/pdf/optimize", {"url": url, "async": True}, "pdfco"),
            ("/api/document/DocumentLoadFromURI", {"URI": url}, "passportpdf")]
