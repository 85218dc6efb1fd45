"""Decoding an image XObject's samples into numpy, honouring its colour space (ISO 32000 §8.9).

Only what can be decoded exactly is decoded: samples of 1, 2, 4, 8 or 16 bits
behind the general filters qpdf undoes (Flate, LZW, RunLength, ASCII), and
DCT through Pillow.  Everything else (JPX, JBIG2, CCITT, odd colour spaces)
raises :class:`Undecodable` and the caller keeps the image as it is.

The result keeps the PDF's *sample* values: /Decode is not applied (it is a
linear map per component, which commutes with resampling, so callers can keep
the array and write it back unchanged).
"""

from __future__ import annotations

import io
import warnings
import zlib
from dataclasses import dataclass

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image

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
    #: the colour space object as written (kept when the output has the same components)
    obj: object
    #: for Indexed: the palette as an (entries, base components) uint8 array, and the base's kind
    palette: np.ndarray | None = None
    base_kind: str | None = None


def filters(stream: Stream) -> list[str]:
    value = stream.stream_dict.get("/Filter")
    if isinstance(value, Array):
        return [str(f) for f in value]
    return [str(value)] if value is not None else []


def _int(value: object, default: int = 0) -> int:
    try:
        return int(value)  # type: ignore[arg-type]
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
    try:
        # "specialized" adds RunLength to the general filters; DCT stays encoded
        data = image.read_bytes(pikepdf.StreamDecodeLevel.specialized)
    except (pikepdf.PdfError, RuntimeError) as exc:
        raise DamagedImage(f"stream does not decode ({exc})") from None
    return unpack(data, width, height, components, bpc)


def unpack(data: bytes, width: int, height: int, components: int, bpc: int) -> np.ndarray:
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


def open_dct(image: Stream) -> Image.Image:
    """The Pillow image of a DCT stream, opened but not decoded.

    Its quantisation tables are already there (for quality estimation), and
    ``draft()`` can still ask the decoder for a 1/2, 1/4 or 1/8 scale, which
    is much faster than decoding everything and resampling it.
    """
    return open_jpeg(dct_data(image))


def open_jpeg(data: bytes) -> Image.Image:
    """Open (not decode) a JPEG; its pixel count is bounded by the engine's budget, not Pillow's."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=["JPEG"])
    except (OSError, ValueError, SyntaxError) as exc:
        raise DamagedImage(f"JPEG does not decode ({exc})") from None


def load(im: Image.Image) -> Image.Image:
    try:
        im.load()
    except (OSError, ValueError, SyntaxError) as exc:
        raise DamagedImage(f"JPEG does not decode ({exc})") from None
    return im
