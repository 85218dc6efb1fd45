"""WebP, AVIF and HEIC output, with quality mapped to the same perceptual levels.

Each encoder's quality scale means something different, so no number is
shared: every lossy encode is searched for the lowest quality that keeps the
level's floor (:func:`squeezer.engines.image.quality.search`).
WebP: libwebp through Pillow, ``method=6`` (slowest, smallest), lossless mode
(``exact`` off, so invisible pixels may change) for the ``lossless`` level and
for line art when it is smaller; animations through Pillow's libwebpmux.
AVIF: libavif/aom through Pillow (``speed=6``, 4:2:0, or 4:4:4 with alpha/line
art).  HEIC: libheif/x265 through ``pillow-heif``.
"""

from __future__ import annotations

import io

from PIL import Image

AVIF_SPEED = 6


def webp(frames: list[Image.Image], quality: int | None, durations: list[int],
         loop: int | None, exif: bytes | None, icc: bytes | None, *,
         fast: bool = False) -> bytes:
    """``quality`` None is lossless.  ``fast``: libwebp's ``method`` 4 instead of 6, for a
    quality search's probes (3-4x faster; the result, written at 6, is checked again)."""
    buf = io.BytesIO()
    extra: dict = {"method": 4 if fast else 6}
    if quality is None:
        # effort 75 at method 4: within ~1 % of the maximum effort, 10x faster on photos
        extra.update(lossless=True, quality=75, method=4, exact=False)
    else:
        extra.update(quality=quality)
    if exif:
        extra["exif"] = exif
    if icc:
        extra["icc_profile"] = icc
    if len(frames) > 1:
        frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:],
                       duration=durations or 100, loop=loop or 0, minimize_size=True,
                       allow_mixed=quality is not None, **extra)
    else:
        frames[0].save(buf, "WEBP", **extra)
    return buf.getvalue()


def avif(frames: list[Image.Image], quality: int | None, durations: list[int],
         loop: int | None, exif: bytes | None, icc: bytes | None, *,
         fast: bool = False) -> bytes:
    """``quality`` None is lossless; ``fast``: speed 8 (a search's probes)."""
    buf = io.BytesIO()
    extra: dict = {"speed": 8 if fast else AVIF_SPEED, "quality": 100 if quality is None else quality,
                   "subsampling": "4:4:4" if quality is None or frames[0].mode == "RGBA"
                   else "4:2:0"}
    if exif:
        extra["exif"] = exif
    if icc:
        extra["icc_profile"] = icc
    if len(frames) > 1:
        frames[0].save(buf, "AVIF", save_all=True, append_images=frames[1:],
                       duration=durations or 100, loop=loop or 0, **extra)
    else:
        frames[0].save(buf, "AVIF", **extra)
    return buf.getvalue()


def heic(frames: list[Image.Image], quality: int | None, durations: list[int],
         loop: int | None, exif: bytes | None, icc: bytes | None, *,
         fast: bool = False) -> bytes:
    """``quality`` None is lossless (``fast`` changes nothing: x265's preset is fixed)."""
    import pillow_heif

    buf = io.BytesIO()
    image = frames[0]
    extra: dict = {"quality": -1 if quality is None else quality}
    if exif:
        extra["exif"] = exif
    if icc:
        extra["icc_profile"] = icc
    heif = pillow_heif.from_pillow(image)
    heif.save(buf, format="HEIF", **extra)
    return buf.getvalue()


def decode(data: bytes) -> Image.Image:
    if data[4:8] == b"ftyp" and data[8:12] not in (b"avif", b"avis"):
        import pillow_heif

        pillow_heif.register_heif_opener()
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def decode_frames(data: bytes) -> list[Image.Image]:
    """Every frame of a written WebP/AVIF/HEIC, as the whole picture it shows."""
    from PIL import ImageSequence

    image = decode(data)
    if getattr(image, "n_frames", 1) <= 1:
        return [image]
    return [frame.convert("RGBA") for frame in ImageSequence.Iterator(image)]


def strip_webp(data: bytes, keep_icc: bool) -> bytes | None:
    """A WebP without its EXIF and XMP chunks (and ICCP unless kept), the bitstream untouched;
    None when there was nothing to remove or the container is not as expected."""
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or data[12:16] != b"VP8X":
        return None
    drop = {b"EXIF", b"XMP "} | (set() if keep_icc else {b"ICCP"})
    pos, chunks, removed = 12, [], False
    while pos + 8 <= len(data):
        fourcc = data[pos:pos + 4]
        size = int.from_bytes(data[pos + 4:pos + 8], "little")
        end = pos + 8 + size + (size & 1)
        if end > len(data):
            return None
        if fourcc in drop:
            removed = True
        else:
            chunks.append(bytearray(data[pos:end]))
        pos = end
    if not removed or not chunks or bytes(chunks[0][:4]) != b"VP8X":
        return None
    flags = chunks[0][8]
    flags &= ~0x08 & ~0x04 & 0xFF  # EXIF and XMP flags
    if not keep_icc:
        flags &= ~0x20 & 0xFF
    chunks[0][8] = flags
    body = b"WEBP" + b"".join(bytes(c) for c in chunks)
    return b"RIFF" + len(body).to_bytes(4, "little") + body
