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

import pikepdf
from pikepdf import Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.errors import DecompressionLimitError

#: Filters whose output size is bounded by the image's declared size and which
#: qpdf does not decode generically; their images are accounted from /Width x /Height.
IMAGE_CODECS = {"/DCTDecode", "/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode"}


def _filters(stream: Stream) -> list[str]:
    value = stream.stream_dict.get("/Filter")
    if isinstance(value, pikepdf.Array):
        return [str(f) for f in value]
    return [str(value)] if value is not None else []


def _bits_per_pixel(image: Stream) -> int:
    bpc = int(image.get("/BitsPerComponent", 8) or 8)
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
        if obj.stream_dict.get("/Subtype") == Name.Image:
            width, height = int(obj.get("/Width", 0) or 0), int(obj.get("/Height", 0) or 0)
            budget.check_image(width, height, _bits_per_pixel(obj))
            if any(f in IMAGE_CODECS for f in filters):
                budget.consume(width * height * _bits_per_pixel(obj) // 8)
                continue
        if not filters:
            budget.consume(len(obj.read_raw_bytes()))
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
        except pikepdf.PdfError:
            pass
