"""Opening an untrusted image under the limits, and decoding it into frames.

Pillow reads the header lazily, so the declared size and frame count are
checked against :class:`~squeezer.engines.limits.Limits` before a single pixel
is decoded.  Pillow's own decompression-bomb check is set to the same pixel
limit for the duration of the call (its warning level is our error level);
its errors, truncated data and oversized text chunks all become named
:mod:`squeezer.engines.errors`.  Only the sniffed format's decoder may open the
file, so a polyglot cannot pick another parser by its name or by luck.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from PIL import Image, ImageOps, ImageSequence

from squeezer.engines.budget import Budget
from squeezer.engines.errors import (
    DamagedImageError,
    DecompressionLimitError,
    EngineError,
    ImageTooLargeError,
    TooManyFramesError,
)
from squeezer.engines.sniff import Kind

#: sniffed format -> the Pillow plug-in allowed to open it
PILLOW_FORMATS = {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WEBP", "avif": "AVIF",
                  "heic": "HEIF", "tiff": "TIFF", "bmp": "BMP"}

_heif_registered = False


def _register_heif() -> None:
    global _heif_registered
    if not _heif_registered:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
        except ImportError:  # pragma: no cover - the dependency is declared
            pass
        _heif_registered = True


#: the pixel limit in force for the current call (what a bomb error quotes)
_LIMIT: contextvars.ContextVar[int] = contextvars.ContextVar("squeezer_image_limit", default=0)


@contextlib.contextmanager
def pillow_limits(max_pixels: int) -> Iterator[None]:
    """Pillow's bomb check at our limit (0: off), its warning silenced (we check ourselves).

    Pillow warns above ``MAX_IMAGE_PIXELS`` and refuses above *twice* that, so it is set to
    half our limit: it then refuses exactly what we do (it used to quote 400 M pixels for
    our documented 200 M)."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = (max_pixels + 1) // 2 if max_pixels else None
    token = _LIMIT.set(max_pixels)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous
        _LIMIT.reset(token)


def map_pillow_error(exc: BaseException) -> EngineError:
    if isinstance(exc, EngineError):
        return exc
    if isinstance(exc, Image.DecompressionBombError):
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{found.group(1)} pixels" if found else "too many pixels"
        limit = _LIMIT.get()
        return ImageTooLargeError(f"an image of {size} exceeds the limit of {limit} pixels"
                                  if limit else f"an image of {size} is too large")
    text = str(exc)
    if "too large" in text.lower() and "decompress" in text.lower():
        return DecompressionLimitError(f"a metadata chunk decompresses beyond Pillow's limit ({text})")
    if isinstance(exc, MemoryError):
        return DecompressionLimitError("the image needs more memory to decode than is available")
    return DamagedImageError(f"the image cannot be decoded: {text or type(exc).__name__}")


@dataclass
class Decoded:
    """An image's frames (orientation applied, 8-bit RGB/RGBA/L/LA) and what came with them."""

    kind: Kind
    frames: list[Image.Image]
    durations: list[int] = field(default_factory=list)
    loop: int | None = None
    has_alpha: bool = False
    exif: Image.Exif | None = None
    icc: bytes | None = None
    xmp: bool = False
    orientation: int = 1
    mode: str = ""  #: the source's Pillow mode, before conversion
    bit_depth: int = 8
    jpeg_quality: int | None = None
    source_info: dict = field(default_factory=dict)
    #: what decoding changed in the colours (e.g. CMYK converted to sRGB), for the report
    converted: str | None = None

    @property
    def first(self) -> Image.Image:
        return self.frames[0]

    @property
    def animated(self) -> bool:
        return len(self.frames) > 1


def open_checked(path: Path, kind: Kind, budget: Budget) -> Image.Image:
    """Open the header of ``path`` with the sniffed format's plug-in and check the limits."""
    if kind.format == "heic":
        _register_heif()
    try:
        image = Image.open(path, formats=[PILLOW_FORMATS[kind.format]])
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise map_pillow_error(exc) from None
    try:
        width, height = image.size
        budget.check_image(width, height, 32)
        frames = int(getattr(image, "n_frames", 1) or 1)
    except BaseException as exc:
        image.close()
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise map_pillow_error(exc) from None
    limit = budget.limits.max_frames
    if limit and frames > limit:
        image.close()
        raise TooManyFramesError(f"the image has {frames} frames; the limit is {limit}")
    return image


def _normal_mode(frame: Image.Image) -> Image.Image:
    """8-bit L, LA, RGB or RGBA (palette transparency becomes alpha; 16-bit is scaled)."""
    mode = frame.mode
    if mode in ("L", "LA", "RGB", "RGBA"):
        return frame
    if mode == "P":
        return frame.convert("RGBA" if "transparency" in frame.info else "RGB")
    if mode == "PA":
        return frame.convert("RGBA")
    if mode in ("1",):
        return frame.convert("L")
    if mode.startswith("I;16") or mode in ("I", "F"):
        import numpy as np

        arr = np.asarray(frame, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr * 255.0 / top + 0.5, 0, 255).astype("uint8"), "L")
    if mode == "CMYK":
        return frame  # converted by :func:`_cmyk_to_srgb`, through its profile
    if mode == "RGBa":
        return frame.convert("RGBA")
    return frame.convert("RGBA" if "A" in mode else "RGB")


def decode(image: Image.Image, kind: Kind, budget: Budget) -> Decoded:
    """Every frame of ``image``, accounted against the budget as it is decoded."""
    from squeezer.engines.pdf.jpeg import estimate_quality

    info = dict(image.info)
    exif = None
    with contextlib.suppress(Exception):
        exif = image.getexif()
    orientation = int(exif.get(0x0112, 1)) if exif else 1
    decoded = Decoded(kind=kind, frames=[], mode=image.mode,
                      icc=info.get("icc_profile") or None,
                      xmp=bool(info.get("xmp") or info.get("XML:com.adobe.xmp")),
                      exif=exif if exif else None, orientation=orientation,
                      loop=info.get("loop"), source_info=info)
    if image.mode.startswith("I;16") or image.mode == "I":
        decoded.bit_depth = 16
    if kind.format == "jpeg":
        decoded.jpeg_quality = estimate_quality(image)
    width, height = image.size
    try:
        iterator = ImageSequence.Iterator(image) if getattr(image, "n_frames", 1) > 1 else [image]
        for frame in iterator:
            budget.consume(width * height * 4)
            budget.check_time()
            frame.load()
            decoded.durations.append(int(frame.info.get("duration", image.info.get("duration", 0))
                                         or 0))
            converted = _normal_mode(frame.copy() if frame is image else frame)
            decoded.frames.append(converted.copy() if converted is frame else converted)
    except EngineError:
        raise
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise map_pillow_error(exc) from None
    if any(f.mode == "CMYK" for f in decoded.frames):
        decoded.frames, decoded.converted = _cmyk_to_srgb(decoded.frames, decoded.icc)
        decoded.icc = None  # the profile described the CMYK pixels, which are gone
    if orientation != 1:
        decoded.frames = [_oriented(f, orientation) for f in decoded.frames]
    decoded.has_alpha = any(uses_alpha(f) for f in decoded.frames)
    if not decoded.has_alpha:
        decoded.frames = [f.convert("RGB" if f.mode == "RGBA" else "L") if f.mode in ("RGBA", "LA")
                          else f for f in decoded.frames]
    return decoded


def _cmyk_to_srgb(frames: list[Image.Image], icc: bytes | None) -> tuple[list[Image.Image], str]:
    """CMYK frames as sRGB: through their ICC profile when they have a usable CMYK one (what a
    colour-managed browser shows), else by the formula browsers use for untagged CMYK.

    Pillow has already undone Adobe's inversion (APP14: Photoshop stores CMYK, and YCCK,
    inverted) and libjpeg the YCCK transform, so the frames hold plain ink amounts here.
    Before this, CMYK JPEGs came out as RGB JPEGs still carrying their 557 KB CMYK profile,
    which a browser applied to RGB pixels: oversaturated colours and 3.5x the peers' bytes.
    """
    if icc:
        try:
            from PIL import ImageCms

            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            if source.profile.xcolor_space.strip() == "CMYK":
                name = (ImageCms.getProfileDescription(source) or "").strip() or "unnamed"
                transform = ImageCms.buildTransform(source, ImageCms.createProfile("sRGB"),
                                                    "CMYK", "RGB")
                out = [(ImageCms.applyTransform(f, transform) or f) if f.mode == "CMYK" else f
                       for f in frames]
                return out, f"converted from CMYK to sRGB through its ICC profile ({name})"
        except Exception:  # noqa: BLE001, S110 - a broken profile: the formula below
            pass
    return ([f.convert("RGB") if f.mode == "CMYK" else f for f in frames],
            "converted from CMYK to sRGB (no usable CMYK profile: the standard formula)")


def _oriented(frame: Image.Image, orientation: int) -> Image.Image:
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
              4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
              6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}.get(orientation)
    return frame.transpose(method) if method is not None else frame


def uses_alpha(frame: Image.Image) -> bool:
    """Whether any pixel of an RGBA or LA ``frame`` is not opaque (other modes: False)."""
    if frame.mode not in ("RGBA", "LA"):
        return False
    # (Pillow types extrema for any band count; one band's are two numbers)
    lo, _ = cast("tuple[float, float]", frame.getchannel("A").getextrema())
    return lo < 255


__all__ = ["Decoded", "ImageOps", "decode", "map_pillow_error", "open_checked", "pillow_limits",
           "uses_alpha"]
