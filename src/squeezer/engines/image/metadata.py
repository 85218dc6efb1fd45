"""Metadata: the extraction report, and what an output keeps.

One behaviour, what photographers expect (issue 19):

- **Orientation** is applied to the pixels and the tag dropped (every viewer then shows the
  image upright).  A lossless JPEG re-pack cannot turn the pixels, so it keeps the
  Orientation tag alone.
- **Copyright and author** (EXIF Copyright and Artist) are kept, unless
  ``remove_metadata`` asks for them to go too.
- **Colour**: an RGB image whose ICC profile is not sRGB has its pixels converted to sRGB
  and the profile dropped (untagged is sRGB to browsers); CMYK is converted to sRGB
  through its profile when decoded; a gray profile is kept as it is (a few hundred bytes).
  ``preserve: icc`` keeps any profile as it is, pixels untouched.
- Everything else goes: camera make and settings, maker notes, thumbnails, GPS, dates,
  XMP, comments, Photoshop blocks (they often outweigh a small image and leak where and
  when a photo was taken).  ``preserve`` keeps named groups back: ``creation`` (DateTime,
  DateTimeOriginal, DateTimeDigitized and their offsets), ``location`` (the GPS IFD) and
  ``icc``.

The report lists what was kept and what was removed, from what the file had.
"""

from __future__ import annotations

import io

from PIL import Image

from squeezer.engines.image.decode import Decoded
from squeezer.engines.image.options import Keep
from squeezer.engines.image.report import ImageInfo

EXIF_IFD = 0x8769
GPS_IFD = 0x8825
ORIENTATION = 0x0112
_BASE = {"make": 0x010F, "model": 0x0110, "software": 0x0131, "datetime": 0x0132,
         "artist": 0x013B, "copyright": 0x8298}
_COPYRIGHT_TAGS = (0x013B, 0x8298)
_CREATION_BASE = (0x0132,)
_CREATION_EXIF = (0x9003, 0x9004, 0x9010, 0x9011, 0x9012)

_COLOR_SPACES = {"RGB": "rgb", "RGBA": "rgb", "L": "gray", "LA": "gray", "1": "bitonal",
                 "P": "palette", "PA": "palette", "CMYK": "cmyk", "YCbCr": "ycbcr",
                 "I;16": "gray", "I;16B": "gray", "I": "gray", "LAB": "lab"}


def icc_description(icc: bytes | None) -> str | None:
    if not icc:
        return None
    try:
        from PIL import ImageCms

        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return (ImageCms.getProfileDescription(profile) or "").strip() or "unnamed profile"
    except Exception:  # noqa: BLE001 - a broken profile is described, not fatal
        return "unreadable profile"


def is_srgb(icc: bytes | None) -> bool:
    description = (icc_description(icc) or "").lower()
    return not icc or "srgb" in description.replace(" ", "") or "iec61966" in description


def describe(image: Image.Image, decoded: Decoded) -> ImageInfo:
    exif_summary: dict[str, str] = {}
    exif = decoded.exif
    if exif:
        for name, tag in _BASE.items():
            value = exif.get(tag)
            if value not in (None, ""):
                exif_summary[name] = _text(value)
        sub = _ifd(exif, EXIF_IFD)
        if sub.get(0x9003):
            exif_summary["datetime_original"] = _text(sub[0x9003])
        if exif.get(ORIENTATION, 1) != 1:
            exif_summary["orientation"] = str(exif.get(ORIENTATION))
        if _ifd(exif, GPS_IFD):
            exif_summary["gps"] = "yes"
    mode = decoded.mode
    return ImageInfo(
        format=decoded.kind.format,
        width=image.width,
        height=image.height,
        frames=int(getattr(image, "n_frames", 1) or 1),
        animated=int(getattr(image, "n_frames", 1) or 1) > 1,
        mode=mode,
        color_space=_COLOR_SPACES.get(mode, mode.lower()),
        has_alpha=decoded.has_alpha,
        bit_depth=16 if mode.startswith("I;16") or mode == "I" else (1 if mode == "1" else 8),
        icc_profile=icc_description(decoded.icc or decoded.source_info.get("icc_profile")),
        exif=exif_summary,
        xmp=decoded.xmp,
        jpeg_quality=decoded.jpeg_quality,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip("\x00 ")[:200]


def _ifd(exif: Image.Exif, tag: int) -> dict:
    try:
        return dict(exif.get_ifd(tag))
    except Exception:  # noqa: BLE001 - a damaged IFD is simply absent
        return {}


class Kept:
    """What an output carries: EXIF bytes (or None), an ICC profile (or None), and the report."""

    def __init__(self, exif: bytes | None, icc: bytes | None, kept: list[str],
                 removed: list[str]) -> None:
        self.exif, self.icc, self.kept, self.removed = exif, icc, kept, removed


def kept_metadata(decoded: Decoded, preserve: tuple[Keep, ...], *, keep_orientation: bool = False,
                  keep_icc: bool = False) -> Kept:
    """The metadata to write: only the preserved groups (and Orientation when the pixels were not
    turned, as in a lossless JPEG re-pack)."""
    kept: list[str] = []
    removed: list[str] = []
    new = Image.Exif()
    exif = decoded.exif
    if exif:
        if Keep.copyright in preserve:
            for tag in _COPYRIGHT_TAGS:
                if exif.get(tag):
                    new[tag] = exif[tag]
        sub_new: dict[int, object] = {}
        if Keep.creation in preserve:
            for tag in _CREATION_BASE:
                if exif.get(tag):
                    new[tag] = exif[tag]
            sub = _ifd(exif, EXIF_IFD)
            for tag in _CREATION_EXIF:
                if sub.get(tag):
                    sub_new[tag] = sub[tag]
        if sub_new:
            new[EXIF_IFD] = sub_new
        if Keep.location in preserve:
            gps = _ifd(exif, GPS_IFD)
            if gps:
                new[GPS_IFD] = gps
        if keep_orientation and decoded.orientation != 1:
            new[ORIENTATION] = decoded.orientation
        groups = {"copyright": any(t in new for t in _COPYRIGHT_TAGS),
                  "creation": 0x0132 in new or EXIF_IFD in new,
                  "location": GPS_IFD in new}
        kept += [name for name, present in groups.items() if present]
        if Keep.copyright not in preserve and any(exif.get(t) for t in _COPYRIGHT_TAGS):
            removed.append("copyright")
        if len(new) - (1 if ORIENTATION in new else 0) < _count(exif) - (
                1 if exif.get(ORIENTATION) else 0):
            removed.append("exif")
    exif_bytes = new.tobytes() if len(new) else None
    icc = None
    if decoded.icc:
        if Keep.icc in preserve or keep_icc:
            icc = decoded.icc
            kept.append("icc")
        else:
            removed.append("icc")
    if decoded.xmp:
        removed.append("xmp")
    for key in ("comment", "photoshop", "adobe", "dpi", "jfif"):
        if key in decoded.source_info and key not in ("dpi", "jfif"):
            removed.append(key)
    return Kept(exif_bytes, icc, kept, removed)


def _count(exif: Image.Exif) -> int:
    n = 0
    for tag in exif:
        if tag in (EXIF_IFD, GPS_IFD):
            n += len(_ifd(exif, tag)) + 1
        else:
            n += 1
    return n


def to_srgb(frames: list[Image.Image], icc: bytes | None) -> tuple[list[Image.Image], bool]:
    """Frames converted from their ICC profile to sRGB (when it is not sRGB already)."""
    if not icc or is_srgb(icc):
        return frames, False
    try:
        from PIL import ImageCms

        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        target = ImageCms.createProfile("sRGB")
        out = []
        for frame in frames:
            if frame.mode not in ("RGB", "RGBA"):
                return frames, False  # gray/cmyk profiles: keep the pixels as they are
            converted = ImageCms.profileToProfile(frame, source, target,
                                                  outputMode=frame.mode)
            out.append(converted or frame)
        return out, True
    except Exception:  # noqa: BLE001 - an unusable profile leaves the pixels alone
        return frames, False
