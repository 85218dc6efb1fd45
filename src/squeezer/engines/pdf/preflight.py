"""The pre-flight scan: refuse bombs before any real work, and before PDFium sees the file.

qpdf's decoders are bounded per stream (see :func:`document.apply_qpdf_limits`),
but when writing, qpdf silently passes an over-limit stream through undecoded,
and PDFium, which renders the result for verification, has no limit at all.
So every stream is decoded once here under qpdf's limits, the declared size
of every image is checked against the pixel limit, and the sizes are added up
against the per-document budget.  Failing here costs milliseconds; failing
during image work would lose it all.
"""

from __future__ import annotations

import zlib

import pikepdf
from pikepdf import Name, Stream

from squeezer.engines import declared
from squeezer.engines.budget import Budget
from squeezer.engines.errors import DecompressionLimitError
from squeezer.engines.pdf import lzw

#: Filters whose output size is bounded by the image's declared size and which
#: qpdf does not decode generically; their images are accounted from /Width x /Height.
IMAGE_CODECS = {"/DCTDecode", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode"}
#: Plain Flate images declaring at least this many bytes of samples are measured piece
#: by piece (:func:`_inflated_length`), not decoded whole.
COUNTED_IMAGE_BYTES = 16 << 20
#: What :func:`_inflated_length` inflates at once.
_PIECE = 4 << 20


def _filters(stream: Stream) -> list[str]:
    value = stream.stream_dict.get("/Filter")
    if isinstance(value, pikepdf.Array):
        return [str(f) for f in value]
    return [str(value)] if value is not None else []


def _count(value: object, default: int = 0) -> int:
    """A non-negative integer from a value that should be one; anything else is ``default``.

    Damaged files carry names, strings, arrays or negative numbers where sizes
    belong; readers treat those images as broken, and so does the budget,
    which must never be refunded by a negative size.
    """
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return max(int(value), 0)
    if isinstance(value, pikepdf.Object):
        try:
            return max(int(value), 0)
        except (TypeError, ValueError):
            return default
    return default


def _bits_per_pixel(image: Stream) -> int:
    bpc = _count(image.get("/BitsPerComponent"), 8) or 8
    if image.get("/ImageMask", False):
        return 1
    cs = image.get("/ColorSpace")
    name = cs[0] if isinstance(cs, pikepdf.Array) and len(cs) else cs
    components = {"/DeviceGray": 1, "/CalGray": 1, "/Indexed": 1, "/Separation": 1,
                  "/DeviceCMYK": 4}.get(str(name), 3)
    return bpc * components


def scan(pdf: pikepdf.Pdf, budget: Budget) -> None:
    """Check every stream of ``pdf`` against the limits; raise a named error on the first."""
    budget.check_pages(len(pdf.pages))
    for obj in pdf.objects:
        if not isinstance(obj, Stream):
            continue
        budget.check_time()
        filters = _filters(obj)
        if filters:
            # what the decoders will allocate, from the codecs' own headers (engines.declared)
            _check_declared(obj, filters, budget)
        if obj.stream_dict.get("/Subtype") == Name.Image:
            width, height = _count(obj.get("/Width")), _count(obj.get("/Height"))
            budget.check_image(width, height, _bits_per_pixel(obj))
            if any(f in IMAGE_CODECS for f in filters):
                budget.consume(width * height * _bits_per_pixel(obj) // 8)
                continue
        if not filters:
            budget.consume(len(obj.read_raw_bytes()))
            continue
        if "/LZWDecode" in filters:
            _check_lzw(obj, filters, budget)
        if obj.stream_dict.get("/Subtype") == Name.Image \
                and width * height * _bits_per_pixel(obj) // 8 >= COUNTED_IMAGE_BYTES:
            length = _inflated_length(obj, filters, budget.limits.max_stream_bytes)
            if length is not None:
                budget.consume(length)
                continue
        try:
            budget.consume(len(obj.read_bytes(pikepdf.StreamDecodeLevel.generalized)))
        except pikepdf.DataDecodingError as exc:
            if "memory limit" in str(exc).lower():
                raise DecompressionLimitError(
                    f"a stream decompresses to more than the per-stream limit of "
                    f"{budget.limits.max_stream_bytes} bytes"
                ) from None
            # Corrupt data: readers tolerate it and so does qpdf when writing.
        except (pikepdf.PikepdfError, UnicodeDecodeError):
            # qpdf's message may quote a non-UTF-8 byte of the file, which pikepdf
            # cannot turn into a str; either way the stream is corrupt, not a bomb.
            pass


def _inflated_length(stream: Stream, filters: list[str], limit: int) -> int | None:
    """The decoded length of a plain Flate stream (no predictor), inflated a few megabytes
    at a time and forgotten; None for any other stream, or data that does not inflate
    cleanly to its end (qpdf then decodes it, with its own recovery).

    Why: qpdf's decoded buffer and the bytes pikepdf copies it into both exist for a
    moment, so counting a 9000 x 9000 RGB page (243 MB) took twice that, just to learn
    its length.  Past ``limit`` (0: none) it refuses the stream as qpdf's limit would.
    """
    parms = _parms(stream, 0)
    if filters not in (["/FlateDecode"], ["/Fl"]) \
            or parms is not None and _count(parms.get("/Predictor"), 1) > 1:
        return None
    inflater = zlib.decompressobj()
    raw = memoryview(stream.read_raw_bytes())
    length = 0
    try:
        for start in range(0, len(raw), 1 << 20):
            data: bytes | memoryview = raw[start:start + (1 << 20)]
            while data and not inflater.eof:
                length += len(inflater.decompress(data, _PIECE))
                data = inflater.unconsumed_tail
                if limit and length > limit:
                    raise DecompressionLimitError(
                        f"a stream decompresses to more than the per-stream limit of "
                        f"{limit} bytes"
                    )
            if inflater.eof:
                break
    except zlib.error:
        return None
    return length if inflater.eof else None


def _parms(stream: Stream, index: int) -> pikepdf.Dictionary | None:
    """The decode parameters of the ``index``-th filter of ``stream``."""
    parms = stream.stream_dict.get("/DecodeParms")
    if isinstance(parms, pikepdf.Array):
        parms = parms[index] if index < len(parms) else None
    return parms if isinstance(parms, pikepdf.Dictionary) else None


def _check_declared(stream: Stream, filters: list[str], budget: Budget) -> None:
    """Check the size each codec's own header declares against the limits, before any decode.

    A dictionary may say 64 x 64 while the JPEG inside says 65 000 x 65 000:
    decoders (Pillow, OpenJPEG, PDFium when it renders for verification)
    believe the codec.  Headers that say nothing usable are left to the
    decoder, which fails fast on them.
    """
    height = _count(stream.get("/Height"))
    try:
        for index, name in enumerate(filters):
            parms = _parms(stream, index)
            if name in ("/DCTDecode", "/DCT"):
                raw = stream.read_raw_bytes()
                data = raw if index == 0 else declared.jpeg_in_flate(raw) \
                    if index == 1 and filters[0] in ("/FlateDecode", "/Fl") else b""
                found = declared.jpeg_size(data)
                if found:
                    budget.check_image(found[0], found[1] or height, 8 * max(found[2], 1))
            elif name == "/JPXDecode" and index == 0:
                found = declared.jpx_size(stream.read_raw_bytes())
                if found:
                    budget.check_image(found[0], found[1], 8 * max(found[2], 1))
            elif name == "/JBIG2Decode" and index == 0:
                sizes = declared.jbig2_sizes(stream.read_raw_bytes())
                shared = parms.get("/JBIG2Globals") if parms is not None else None
                if isinstance(shared, Stream):
                    sizes += declared.jbig2_sizes(shared.read_bytes())
                for width, rows in sizes:
                    budget.check_image(width, rows or height, 1)
            elif name in ("/CCITTFaxDecode", "/CCF"):
                columns = _count(parms.get("/Columns"), 1728) if parms is not None else 1728
                rows = _count(parms.get("/Rows")) if parms is not None else 0
                budget.check_image(columns, rows or height, 1)
            elif name in ("/FlateDecode", "/Fl", "/LZWDecode", "/LZW") and parms is not None \
                    and _count(parms.get("/Predictor"), 1) >= 2:
                columns = _count(parms.get("/Columns"), 1)
                colors = _count(parms.get("/Colors"), 1)
                bits = _count(parms.get("/BitsPerComponent"), 8)
                budget.check_stream(declared.predictor_row_bytes(columns, colors, bits))
                if stream.stream_dict.get("/Subtype") == Name.Image:
                    budget.check_image(columns, height, colors * bits)
    except (pikepdf.PdfError, ValueError, TypeError):
        pass  # a damaged stream or dictionary: not a bomb; the decoders refuse it


#: Filters whose output is never longer than their input, so a chain of them in
#: front of LZWDecode cannot turn a small stream into a large LZW input.
SHRINKING = {"/ASCIIHexDecode", "/AHx", "/ASCII85Decode", "/A85"}


def _check_lzw(stream: Stream, filters: list[str], budget: Budget) -> None:
    """Refuse an LZW stream whose decoded length exceeds the per-stream limit.

    qpdf has no memory limit for LZW, so the length is counted first
    (:mod:`lzw`).  Filters before LZW are ASCII armour in practice; they are
    decoded in Python (bounded by the raw size).  Any other chain in front of
    LZW is not a thing real writers produce and is refused as a bomb would be.
    """
    limit = budget.limits.max_stream_bytes
    if not limit:
        return
    position = filters.index("/LZWDecode")
    data = stream.read_raw_bytes()
    for name in filters[:position]:
        if name not in SHRINKING:
            raise DecompressionLimitError(
                f"an LZW stream behind {name} cannot be bounded; refused"
            )
        data = _ascii_decode(name, data)
    parms = stream.stream_dict.get("/DecodeParms")
    if isinstance(parms, pikepdf.Array):
        parms = parms[position] if position < len(parms) else None
    early = 1
    if isinstance(parms, pikepdf.Dictionary):
        early = _count(parms.get("/EarlyChange"), 1)
    budget.check_stream(lzw.decoded_length(data, early_change=early, stop_after=limit))


def _ascii_decode(name: str, data: bytes) -> bytes:
    import base64
    import binascii

    try:
        if name in ("/ASCIIHexDecode", "/AHx"):
            text = bytes(c for c in data.split(b">", 1)[0] if chr(c) in "0123456789abcdefABCDEF")
            return binascii.unhexlify(text + b"0" * (len(text) % 2))
        body = data.strip()
        body = body[2:] if body.startswith(b"<~") else body
        return base64.a85decode(body.split(b"~>", 1)[0], ignorechars=b" \t\r\n\f\x00")
    except (ValueError, binascii.Error):
        return b""
