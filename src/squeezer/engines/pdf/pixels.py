"""Decoding an image XObject's samples into numpy, honouring its colour space (ISO 32000 §8.9).

Only what can be decoded exactly is decoded: samples of 1, 2, 4, 8 or 16 bits
behind the general filters qpdf undoes (Flate, LZW, RunLength, ASCII), DCT
and JPEG 2000 (JPX, through the OpenJPEG in Pillow's wheels).  Everything else
(JBIG2, CCITT, odd colour spaces) raises :class:`Undecodable` and the caller
keeps the image as it is.

The result keeps the PDF's *sample* values: /Decode is not applied (it is a
linear map per component, which commutes with resampling, so callers can keep
the array and write it back unchanged).
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image, ImageFile, Jpeg2KImagePlugin, JpegImagePlugin

#: Colour spaces by component count, for the families whose pixels this module understands.
DEVICE_SPACES = {"/DeviceGray": 1, "/CalGray": 1, "/DeviceRGB": 3, "/CalRGB": 3, "/DeviceCMYK": 4}
GENERAL_FILTERS = {"/FlateDecode", "/Fl", "/LZWDecode", "/LZW", "/RunLengthDecode", "/RL",
                   "/ASCIIHexDecode", "/AHx", "/ASCII85Decode", "/A85"}
DCT_FILTERS = {"/DCTDecode", "/DCT"}


class Undecodable(Exception):
    """This image is kept as it is (why is the message)."""


class DamagedImage(Undecodable):
    """The image's data is corrupt: it is kept as it is, and the report says so."""


@dataclass
class ColorInfo:
    """What an image's /ColorSpace means for recompression."""

    kind: str  #: "gray", "rgb", "cmyk", "indexed", "other"
    components: int
    #: the colour space object as written (kept when the output has the same components;
    #: None for an image mask)
    obj: pikepdf.Object | None
    #: for Indexed: the palette as an (entries, base components) uint8 array, and the base's kind
    palette: np.ndarray | None = None
    base_kind: str | None = None


def filters(stream: Stream) -> list[str]:
    value = stream.stream_dict.get("/Filter")
    if isinstance(value, Array):
        return [str(f) for f in value]
    return [str(value)] if value is not None else []


def _int(value: pikepdf.Object | None, default: int = 0) -> int:
    if value is None:  # an absent entry (int(None) would be a TypeError, caught the same)
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def color_info(image: Stream) -> ColorInfo:
    """Classify ``image``'s colour space; raise :class:`Undecodable` for what is not understood."""
    if image.get("/ImageMask", False):
        return ColorInfo("mask", 1, None)
    cs = image.get("/ColorSpace")
    return space(cs, allow_indexed=True)


def space(cs: object, allow_indexed: bool) -> ColorInfo:
    if cs is None:
        raise Undecodable("no /ColorSpace")
    if isinstance(cs, Name):
        n = DEVICE_SPACES.get(str(cs))
        if n is None:
            raise Undecodable(f"colour space {cs}")
        return ColorInfo({1: "gray", 3: "rgb", 4: "cmyk"}[n], n, cs)
    if not isinstance(cs, Array) or len(cs) == 0:
        raise Undecodable("malformed /ColorSpace")
    family = str(cs[0])
    if family in ("/CalGray", "/CalRGB") and len(cs) >= 1:
        n = DEVICE_SPACES[family]
        return ColorInfo("gray" if n == 1 else "rgb", n, cs)
    if family in DEVICE_SPACES and len(cs) == 1:
        n = DEVICE_SPACES[family]
        return ColorInfo({1: "gray", 3: "rgb", 4: "cmyk"}[n], n, cs)
    if family == "/ICCBased" and len(cs) >= 2 and isinstance(cs[1], Stream):
        n = _int(cs[1].get("/N"))
        if n not in (1, 3, 4):
            raise Undecodable("ICCBased colour space without a usable /N")
        return ColorInfo({1: "gray", 3: "rgb", 4: "cmyk"}[n], n, cs)
    if family in ("/Indexed", "/I") and allow_indexed and len(cs) == 4:
        base = space(cs[1], allow_indexed=False)
        if base.kind not in ("gray", "rgb", "cmyk"):
            raise Undecodable("Indexed over an unsupported base")
        hival = _int(cs[2], -1)
        if not 0 <= hival <= 255:
            raise Undecodable("Indexed /hival out of range")
        lookup = cs[3]
        if isinstance(lookup, Stream):
            table = lookup.read_bytes()
        else:
            table = bytes(lookup)  # a string object
        need = (hival + 1) * base.components
        if len(table) < need:
            table = table + b"\0" * (need - len(table))  # readers pad a short lookup with zeros
        palette = np.frombuffer(table[:need], np.uint8).reshape(hival + 1, base.components)
        return ColorInfo("indexed", 1, cs, palette=palette, base_kind=base.kind)
    raise Undecodable(f"colour space {family}")


def sample_bytes(image: Stream) -> int:
    """About how many bytes ``image``'s samples take decoded, at 8 bits a component (what
    the engine's arrays and Pillow hold), from its dictionary alone: for deciding how
    much may run at once (0 when the dictionary does not say)."""
    width, height = _int(image.get("/Width")), _int(image.get("/Height"))
    try:
        components = 1 if image.get("/ImageMask", False) else color_info(image).components
    except (Undecodable, pikepdf.PdfError, TypeError, ValueError):
        components = 3  # (an unknown space: assume colour)
    return max(0, width) * max(0, height) * components


def default_decode(info: ColorInfo, bpc: int) -> list[float]:
    if info.kind == "indexed":
        return [0.0, float((1 << bpc) - 1)]
    return [0.0, 1.0] * info.components


def decode_array(image: Stream, info: ColorInfo, bpc: int) -> list[float] | None:
    """The image's /Decode when it differs from the default, else None."""
    value = image.get("/Decode")
    if not isinstance(value, Array):
        return None
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        raise Undecodable("malformed /Decode") from None
    if info.kind == "mask":
        return None if numbers[:2] == [0.0, 1.0] else numbers
    if numbers == default_decode(info, bpc):
        return None
    return numbers


def samples(image: Stream, width: int, height: int, components: int, bpc: int) -> np.ndarray:
    """The unpacked samples (H x W x components) of a non-DCT image, uint8 or big-endian uint16."""
    names = filters(image)
    if any(f not in GENERAL_FILTERS for f in names):
        raise Undecodable(f"filter {' '.join(names)}")
    need = (width * components * bpc + 7) // 8 * height
    streamed = _inflated(image, names, need) if need >= STREAM_MIN_BYTES else None
    if streamed is not None:
        return unpack(streamed, width, height, components, bpc)
    try:
        # "specialized" adds RunLength to the general filters; DCT stays encoded
        data = image.read_bytes(pikepdf.StreamDecodeLevel.specialized)
    except (pikepdf.PdfError, RuntimeError) as exc:
        raise DamagedImage(f"stream does not decode ({exc})") from None
    return unpack(data, width, height, components, bpc)


#: Images whose samples take at least this many bytes are inflated by :func:`_inflated`.
STREAM_MIN_BYTES = 16 << 20
#: Compressed bytes handed to zlib at once by :class:`_Inflater` (its unconsumed tail is
#: copied on every call, so the input goes in slices), and the most it inflates at once
#: (a flat image's megabyte inflates to hundreds).
_INFLATE_SLICE = 1 << 20
_INFLATE_PIECE = 4 << 20


class _Inflater:
    """A plain Flate stream's data inflated a piece at a time, straight from its raw bytes,
    into arrays the caller owns (no whole decoded copy ever exists here)."""

    def __init__(self, image: Stream) -> None:
        self._raw = memoryview(image.read_raw_bytes())
        self._at = 0
        self._tail: bytes | memoryview = b""
        self._zlib = zlib.decompressobj()

    def read_into(self, out: np.ndarray) -> int:
        """Fill the 1-D uint8 ``out`` as far as the data go; how many bytes were written.
        ``zlib.error`` propagates."""
        filled = 0
        while filled < len(out):
            if not self._tail:
                if self._at >= len(self._raw) or self._zlib.eof:
                    break
                self._tail = self._raw[self._at:self._at + _INFLATE_SLICE]
                self._at += _INFLATE_SLICE
            piece = self._zlib.decompress(self._tail, min(len(out) - filled, _INFLATE_PIECE))
            self._tail = self._zlib.unconsumed_tail
            out[filled:filled + len(piece)] = np.frombuffer(piece, np.uint8)
            filled += len(piece)
        return filled


def _inflated(image: Stream, names: list[str], need: int) -> np.ndarray | None:
    """The first ``need`` bytes of a plain Flate stream (no predictor), inflated straight
    into one array; None when the stream is anything else or does not inflate cleanly to
    ``need`` bytes (qpdf then decodes it, with its own recovery and errors).

    Why: qpdf's decoded buffer and the Python bytes pikepdf copies it into both exist for
    a moment, so a 9000 x 9000 RGB page (243 MB of samples) briefly took twice that.
    """
    if not _plain_flate(image, names):
        return None
    out = np.empty(need, np.uint8)
    try:
        return out if _Inflater(image).read_into(out) >= need else None
    except zlib.error:
        return None


def _plain_flate(image: Stream, names: list[str]) -> bool:
    """Whether ``image`` is Flate alone, without a predictor (its data are the samples)."""
    if names not in (["/FlateDecode"], ["/Fl"]):
        return False
    parms = image.get("/DecodeParms")
    if isinstance(parms, Array):
        parms = parms[0] if len(parms) == 1 else None
    return not (isinstance(parms, Dictionary) and _int(parms.get("/Predictor"), 1) > 1)


def gray_samples(image: Stream, width: int, height: int) -> np.ndarray | None:
    """The samples of a large plain-Flate 8-bit RGB image whose three channels are equal in
    every pixel (a gray scan stored as colour), as H x W x 1: the first channel.  None when
    any pixel has colour, or the image is small, or not plain Flate, or its data does not
    inflate cleanly (the caller then decodes it whole, with :func:`samples`).

    Why: the image step keeps such an image's one channel; inflated and checked a band
    at a time, its three channels never exist whole (a 9000 x 9000 page: 81 MB instead of
    243 MB and then 81 more).  A colour image costs the bands up to its first colour.
    """
    row = width * 3
    if row * height < STREAM_MIN_BYTES or not _plain_flate(image, filters(image)):
        return None
    out = np.empty((height, width, 1), np.uint8)
    rows_per = max(1, _INFLATE_PIECE // row)
    band = np.empty(rows_per * row, np.uint8)
    inflater = _Inflater(image)
    try:
        for top in range(0, height, rows_per):
            rows = min(rows_per, height - top)
            if inflater.read_into(band[:rows * row]) < rows * row:
                return None
            pixels = band[:rows * row].reshape(rows, width, 3)
            first = pixels[:, :, 0]
            if not (np.array_equal(first, pixels[:, :, 1])
                    and np.array_equal(first, pixels[:, :, 2])):
                return None
            out[top:top + rows, :, 0] = first
    except zlib.error:
        return None
    return out


def unpack(data: bytes | np.ndarray, width: int, height: int, components: int, bpc: int) -> np.ndarray:
    if bpc not in (1, 2, 4, 8, 16):
        raise Undecodable(f"{bpc} bits per component")
    row_bytes = (width * components * bpc + 7) // 8
    need = row_bytes * height
    if len(data) < need:
        raise DamagedImage(f"stream holds {len(data)} bytes, {need} needed")
    buf = np.frombuffer(data, np.uint8, count=need).reshape(height, row_bytes)
    if bpc == 8:
        return buf[:, : width * components].reshape(height, width, components)
    if bpc == 16:
        return buf.view(">u2")[:, : width * components].reshape(height, width, components)
    bits = np.unpackbits(buf, axis=1)
    per = bits[:, : width * components * bpc].reshape(height, width * components, bpc)
    weights = (1 << np.arange(bpc - 1, -1, -1)).astype(np.uint8)
    values = (per * weights).sum(axis=2, dtype=np.uint8)
    return values.reshape(height, width, components)


def dct_data(image: Stream) -> bytes:
    """The JPEG inside a DCT image, also when it is wrapped in Flate (some optimisers do that).

    qpdf decodes a chain only when it can decode all of it, so the Flate layer
    is undone here, bounded by what a JPEG of this size can reasonably hold.
    """
    names = filters(image)
    if names in (["/DCTDecode"], ["/DCT"]):
        return image.read_raw_bytes()
    if len(names) != 2 or names[0] not in ("/FlateDecode", "/Fl") or names[1] not in DCT_FILTERS:
        raise Undecodable(f"filter {' '.join(names)}")
    parms = image.get("/DecodeParms")
    if isinstance(parms, Array) and len(parms) and isinstance(parms[0], Dictionary) \
            and _int(parms[0].get("/Predictor"), 1) > 1:
        raise Undecodable("predictor in front of DCT")
    width, height = _int(image.get("/Width")), _int(image.get("/Height"))
    limit = width * height * 4 * 2 + (1 << 20)
    inflater = zlib.decompressobj()
    try:
        data = inflater.decompress(image.read_raw_bytes(), limit)
    except zlib.error as exc:
        raise DamagedImage(f"stream does not decode ({exc})") from None
    if inflater.unconsumed_tail:
        raise DamagedImage("the JPEG inside the Flate layer is implausibly large")
    return data


_ImageFileT = TypeVar("_ImageFileT", bound=ImageFile.ImageFile)


def open_as(data: bytes, plugin: type[_ImageFileT]) -> _ImageFileT:
    """Open (not decode) ``data`` with one Pillow format plugin, as ``Image.open`` would.

    Without Pillow's decompression-bomb check: the engine's budget has bounded
    the pixel count before any decode, with its own configured limit.  Calling
    the plugin directly also keeps the image step's threads away from the
    process-wide warning filters (``warnings.catch_warnings`` is not
    thread-safe).  Raises OSError for data the plugin does not recognise.
    """
    try:
        return plugin(io.BytesIO(data))
    except (SyntaxError, IndexError, TypeError, struct.error) as exc:
        raise OSError(f"not {plugin.format} data ({exc})") from None


def open_jpeg(data: bytes) -> Image.Image:
    """Open (not decode) a JPEG; its pixel count is bounded by the engine's budget, not Pillow's."""
    try:
        return open_as(data, JpegImagePlugin.JpegImageFile)
    except (OSError, ValueError, SyntaxError) as exc:
        raise DamagedImage(f"JPEG does not decode ({exc})") from None


def resize(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Downscale with Lanczos, after a box reduce() by an integer factor when it is large."""
    return im.resize(size, Image.Resampling.LANCZOS, reducing_gap=REDUCING_GAP)


#: Pillow's ``reducing_gap`` in :func:`resize` (and :func:`resized`, which repeats its steps).
REDUCING_GAP = 2.0
#: Bytes of samples the band-wise helpers (:func:`resized`, :func:`bands`) turn into a
#: Pillow image at once.
BAND_BYTES = 8 << 20


def bands(height: int, row_bytes: int, multiple: int = 1) -> range:
    """Start rows of bands of about :data:`BAND_BYTES`, each a multiple of ``multiple`` rows."""
    rows = max(1, BAND_BYTES // max(1, row_bytes * multiple)) * multiple
    return range(0, height, rows)


def _image(arr: np.ndarray, mode: str) -> Image.Image:
    """``arr`` (H x W x C, or H x W) as a Pillow image of ``mode``."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    return Image.fromarray(np.ascontiguousarray(arr), mode)


def converted(arr: np.ndarray, mode: str, to: str) -> np.ndarray:
    """``np.asarray(Image.fromarray(arr, mode).convert(to))`` made band by band (the same
    per-pixel conversion, without a Pillow copy of the whole image)."""
    height, width = arr.shape[:2]
    out: np.ndarray | None = None
    step = bands(height, width * 4).step
    for top in range(0, height, step):
        part = np.asarray(_image(arr[top:top + step], mode).convert(to))
        if out is None:
            out = np.empty((height, *part.shape[1:]), part.dtype)
        out[top:top + step] = part
    assert out is not None  # (an image has rows)
    return out


def resized(arr: np.ndarray, mode: str, size: tuple[int, int]) -> Image.Image:
    """``resize(Image.fromarray(arr, mode), size)``, the same pixels, without a full-size
    Pillow copy of ``arr``.

    Pillow stores RGB in 4 bytes a pixel, so that copy was a third larger than the
    samples themselves.  :func:`resize` box-reduces by an integer factor first, then
    resamples the reduced image with Lanczos over the box the reduction maps the image
    to; here the reduction runs band by band (bands a whole number of factors high, so
    every box of pixels is the one Pillow averages) and the Lanczos step is Pillow's.
    """
    height, width = arr.shape[:2]
    fx = int(width / size[0] / REDUCING_GAP) or 1
    fy = int(height / size[1] / REDUCING_GAP) or 1
    if fx == 1 and fy == 1:
        out = resize(_image(arr, mode), size)
        if arr.size >= STREAM_MIN_BYTES:
            # the whole-image Pillow copy was made of blocks the heap keeps when freed
            # (engines.malloc): hand them back rather than hold them beside what follows
            from squeezer.engines.malloc import release_freed_memory

            release_freed_memory()
        return out
    reduced = Image.new(mode, (-(-width // fx), -(-height // fy)))
    step = bands(height, width * 4, fy).step  # (Pillow's pixels take up to 4 bytes)
    for top in range(0, height, step):
        reduced.paste(_image(arr[top:top + step], mode).reduce((fx, fy)), (0, top // fy))
    return reduced.resize(size, Image.Resampling.LANCZOS, box=(0, 0, width / fx, height / fy))


def load(im: Image.Image) -> Image.Image:
    try:
        im.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise DamagedImage(f"JPEG does not decode ({exc})") from None
    return im


# --- JPEG 2000 (JPXDecode) -----------------------------------------------------------------

#: JP2 enumerated colour spaces (ISO 15444-1 Annex I.5.3.3) with a Device space of the same meaning.
JP2_ENUMERATED = {16: (3, Name.DeviceRGB), 17: (1, Name.DeviceGray), 12: (4, Name.DeviceCMYK)}


@dataclass
class JpxHeader:
    """What a JPXDecode stream says about itself (ISO 32000-1 §7.4.9, ISO 15444-1)."""

    codestream: bytes  #: the raw J2K codestream (inside a JP2 file's jp2c box, or the data itself)
    width: int
    height: int
    components: int
    precision: int  #: bits per sample, the same for every component
    #: from the JP2 header: enumerated colour space (None: absent or an ICC profile)
    enumerated: int | None = None
    #: the JP2 header has a palette, channel definitions or an ICC profile: its colours are
    #: not simply the codestream's components
    not_plain: bool = False


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body start, body end) of the JP2 boxes between ``start`` and ``end``."""
    out, pos = [], start
    while pos + 8 <= end:
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), data[pos + 4:pos + 8]
        header = 8
        if length == 1:
            if pos + 16 > end:
                break
            length, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif length == 0:
            length = end - pos
        if length < header or pos + length > end:
            raise DamagedImage("JPX box overruns its file")
        out.append((kind, pos + header, pos + length))
        pos += length
    return out


def jpx_header(data: bytes) -> JpxHeader:
    """Parse a JPX stream's JP2 boxes (if any) and the codestream's SIZ marker."""
    enumerated, not_plain = None, False
    if data[:4] == b"\xff\x4f\xff\x51":
        codestream = data
    else:
        top = _boxes(data, 0, len(data))
        if not top or top[0][0] != b"jP  ":
            raise DamagedImage("not a JPEG 2000 file")
        codestream = b""
        for kind, start, end in top:
            if kind == b"jp2c" and not codestream:
                codestream = data[start:end]
            children = _boxes(data, start, end) if kind == b"jp2h" else [(kind, start, end)]
            for child, cstart, cend in children:
                if child == b"colr" and cend - cstart >= 3 and enumerated is None \
                        and not not_plain:
                    if data[cstart] == 1 and cend - cstart >= 7:
                        enumerated = int.from_bytes(data[cstart + 3:cstart + 7], "big")
                    else:
                        not_plain = True  # an ICC profile or a vendor method
                elif child in (b"pclr", b"cmap", b"cdef"):
                    not_plain = True
        if not codestream:
            raise DamagedImage("JPX file without a codestream")
    if len(codestream) < 45 or codestream[:4] != b"\xff\x4f\xff\x51":
        raise DamagedImage("JPX codestream does not start with SOC, SIZ")
    c = codestream
    xsiz, ysiz, xo, yo = (int.from_bytes(c[i:i + 4], "big") for i in (8, 12, 16, 20))
    count = int.from_bytes(c[40:42], "big")
    if count < 1 or len(c) < 42 + 3 * count:
        raise DamagedImage("JPX SIZ marker is truncated")
    comps = [c[42 + 3 * i: 45 + 3 * i] for i in range(count)]
    if any(ssiz & 0x80 for ssiz, _, _ in comps):
        raise Undecodable("signed JPX samples")
    if any((xr, yr) != (1, 1) for _, xr, yr in comps):
        raise Undecodable("subsampled JPX components")
    precisions = {(ssiz & 0x7F) + 1 for ssiz, _, _ in comps}
    if len(precisions) != 1:
        raise Undecodable("JPX components of different depths")
    return JpxHeader(c, xsiz - xo, ysiz - yo, count, precisions.pop(), enumerated, not_plain)


def _tile_parts_unnumbered(codestream: bytes) -> bytes:
    """The codestream with every SOT's tile-part count (TNsot) set to 0, "not given".

    Some writers give a count lower than the tile-parts they write; OpenJPEG
    then refuses the whole image, where PDF readers decode it.
    """
    c = bytearray(codestream)
    pos = 4 + int.from_bytes(c[4:6], "big")  # after SOC and SIZ
    while pos + 4 <= len(c) and c[pos] == 0xFF and c[pos + 1] != 0x90:
        pos += 2 + int.from_bytes(c[pos + 2:pos + 4], "big")  # main header segments
    while pos + 12 <= len(c) and c[pos:pos + 2] == b"\xff\x90":
        c[pos + 11] = 0
        psot = int.from_bytes(c[pos + 6:pos + 10], "big")
        if psot < 12:
            break  # 0: the last tile-part runs to the end
        pos += psot
    return bytes(c)


def jpx_samples(header: JpxHeader) -> tuple[np.ndarray, int]:
    """The codestream's samples (H x W x components, uint8) and their bits per sample.

    Samples of up to 8 bits are returned exactly (values 0 .. 2**bits - 1);
    deeper ones are rounded to 8 bits (and 8 is returned).  Colour transforms
    of the codestream (RCT/ICT) are undone by the decoder; a JP2 palette is not
    applied (the caller's /ColorSpace decides what the samples mean).
    """
    data = _tile_parts_unnumbered(header.codestream)
    try:
        im = open_as(data, Jpeg2KImagePlugin.Jpeg2KImageFile)
        im.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise DamagedImage(f"JPX does not decode ({exc})") from None
    if im.size != (header.width, header.height):
        raise DamagedImage("JPX codestream size differs from its SIZ marker")
    arr = np.asarray(im)
    prec = header.precision
    if arr.dtype != np.uint8:  # one deep component: Pillow's I;16 holds it shifted to 16 bits
        arr = np.minimum((arr.astype(np.uint32) + 128) // 257, 255).astype(np.uint8)
        prec = 8
    elif prec < 8:
        arr = arr >> (8 - prec)  # Pillow shifts shallow samples up to 8 bits
    else:
        prec = 8  # deeper multi-component samples: Pillow rounds them to 8 bits
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.shape[2] != header.components:
        raise Undecodable(f"JPX with {header.components} components decoded as {im.mode}")
    return np.ascontiguousarray(arr), prec
