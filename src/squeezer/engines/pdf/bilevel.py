"""Decode any 1-bit image stream (CCITT G3/G4 in every layout, JBIG2, Flate...) with PDFium.

Pillow's libtiff decodes plain Group 4 (:mod:`ccitt`), but scanners also write
Group 3, byte-aligned rows and end-of-line codes, which TIFF tags cannot tell
libtiff about.  PDFium decodes whatever a reader shows, so the stream is
copied, with only the entries that describe its samples, into a one-image
PDF and PDFium hands back the bitmap.  The caller has bounded the pixel count
(the engine's budget) before, as for every decoder here.

Plain Group 4 (the usual scan) goes to libtiff first: the same samples for the
same CPU, but outside PDFium's lock, so the image step's threads decode pages
side by side (a 300-page scan's pages waited for each other there), and without
writing a one-image PDF for each.  What libtiff refuses goes to PDFium.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pikepdf
from pikepdf import Dictionary, Name, Stream

if TYPE_CHECKING:
    from PIL import Image

from squeezer.engines.pdf.pdfium_lock import LOCK

#: The entries that say how the stream's bytes become samples (nothing about colour).
_SAMPLE_KEYS = ("/Filter", "/DecodeParms")


def _copy(value: pikepdf.Object) -> object:
    """A direct copy of a PDF object with no references (filters and their parameters)."""
    return pikepdf.Object.parse(value.unparse(resolved=True))


def decode_ink(image: Stream) -> np.ndarray:
    """The samples of a 1-bit image as a boolean H x W array, True where the sample is 0."""
    return _released(_banded(_decode(image), np.bool_, lambda dark: dark < 128))


def decode_gray(image: Stream) -> np.ndarray:
    """The samples of a 1-bit image as an H x W uint8 array: 0 where the sample is 0, else 255."""
    return _released(_banded(_decode(image), np.uint8,
                             lambda dark: (dark >= 128).view(np.uint8) * np.uint8(255)))


#: A decoded page at least this large is followed by a trim of the heap (:func:`_released`).
RELEASE_BYTES = 16 << 20


def _released(samples: np.ndarray) -> np.ndarray:
    """``samples``, once the heap has handed back what the decoder's image took, when large.

    libtiff's Pillow image is made of heap blocks that a process set up to compress keeps
    when freed (engines.malloc): a 1200 dpi plate's 113 MB stayed resident beside its
    samples while the image step resampled them.
    """
    if samples.size >= RELEASE_BYTES:
        from squeezer.engines.malloc import release_freed_memory

        release_freed_memory()
    return samples


#: Rows of a decoded page :func:`_banded` maps at once (a few megabytes).
BAND_ROWS = 512


def _banded(decoded: np.ndarray | Image.Image, dtype: type,
            fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``fn`` of the decoded samples, written band by band into one new array.

    Why: a 300-page book's 1200 dpi plate (9258 x 12259, 113 MB at a byte a pixel) was
    held as libtiff's Pillow image, its array copy, a boolean mask and the result at once;
    here only the first and the result exist whole.
    """
    if isinstance(decoded, np.ndarray):
        height, width = decoded.shape
    else:
        width, height = decoded.size
    out: np.ndarray = np.empty((height, width), dtype)
    for top in range(0, height, BAND_ROWS):
        rows = decoded[top:top + BAND_ROWS] if isinstance(decoded, np.ndarray) \
            else np.asarray(decoded.crop((0, top, width, min(height, top + BAND_ROWS))))
        out[top:top + BAND_ROWS] = fn(rows)
    return out


def _decode(image: Stream) -> np.ndarray | Image.Image:
    """The samples as an 8-bit H x W array or L image, dark where the sample is 0 (libtiff
    for plain Group 4, else PDFium)."""
    width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    parms = _plain_g4(image, width, height)
    data = image.read_raw_bytes() if parms is not None else b""
    if parms is not None and _ends_with_eofb(data):
        from squeezer.engines.pdf import ccitt

        try:
            gray = ccitt.decode(data, width, height, -1, parms)
        except (OSError, ValueError, SyntaxError):
            pass  # damaged or unusual: PDFium decodes what a reader shows
        else:
            if gray.size == (width, height):
                return gray
    return _decode_pdfium(image)


#: Group 4's end-of-facsimile-block: two end-of-line codes (000000000001), never in coded rows.
_EOFB = "000000000001" * 2


def _ends_with_eofb(data: bytes) -> bool:
    """Whether the data ends with an EOFB (perhaps padded): it then holds every row.

    libtiff fills the rows of cut-short data with paper where PDFium (what the
    reader shows) leaves them ink, so only complete data is libtiff's.
    """
    tail = data[-8:]
    return _EOFB in bin(int.from_bytes(tail, "big"))[2:].zfill(8 * len(tail)) if tail else False


def _plain_g4(image: Stream, width: int, height: int) -> bool | None:
    """/BlackIs1 when ``image`` is Group 4 data libtiff decodes as a reader does, else None."""
    if image.get("/Filter") != Name.CCITTFaxDecode or width < 1 or height < 1:
        return None
    parms = image.get("/DecodeParms")
    if isinstance(parms, pikepdf.Array):
        parms = parms[0] if len(parms) == 1 else None
    if parms is None:
        parms = Dictionary()
    if not isinstance(parms, Dictionary):
        return None

    def number(key: str, default: int) -> int | None:
        value = parms.get(key, default)
        return int(value) if isinstance(value, int) else None

    k = number("/K", 0)
    if k is None or k >= 0 or number("/Columns", 1728) != width:
        return None
    if number("/Rows", height) not in (0, height):
        return None
    for key in ("/EncodedByteAlign", "/EndOfLine"):
        if parms.get(key, False) is not False:
            return None
    black = parms.get("/BlackIs1", False)
    return black if isinstance(black, bool) else None


def _decode_pdfium(image: Stream) -> np.ndarray:
    """PDFium's 8-bit rendering of the samples (dark where the sample is 0), H x W.

    /Decode, /ImageMask and the colour space are left out of the copy, so
    PDFium paints the sample 0 black and 1 white, whatever the original means
    by them: the result is the samples, for the caller to re-encode with the
    same dictionary.
    """
    import pypdfium2 as pdfium
    from pypdfium2 import raw

    width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    mini = pikepdf.new()
    copy = Stream(mini, image.read_raw_bytes(), Type=Name.XObject, Subtype=Name.Image,
                  Width=width, Height=height, BitsPerComponent=1, ColorSpace=Name.DeviceGray)
    for key in _SAMPLE_KEYS:
        if key in image:
            copy[key] = _copy(image[key])
    page = mini.add_blank_page(page_size=(10, 10))
    page.Resources = Dictionary(XObject=Dictionary(I=copy))
    page.Contents = mini.make_stream(b"q 10 0 0 10 0 0 cm /I Do Q")
    buf = io.BytesIO()
    mini.save(buf)
    with LOCK:
        doc = pdfium.PdfDocument(buf.getvalue())
        try:
            objects = list(doc[0].get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE]))
            if not objects:
                raise ValueError("PDFium found no image")
            # the bitmap is freed with its Python object (closing it by hand is unsafe
            # here), which happens at the end of this statement, under the lock
            pixels = np.array(objects[0].get_bitmap(render=False).to_numpy(), copy=True)
            del objects
        finally:
            doc.close()
    if pixels.ndim == 3:
        pixels = pixels[:, :, 0]
    if pixels.shape != (height, width):
        raise ValueError(f"PDFium decoded {pixels.shape[1]}x{pixels.shape[0]}, "
                         f"not {width}x{height}")
    return pixels
