"""Image recompression: the step that makes photo-heavy and scanned PDFs small.

For each image XObject (each object once, however often it is drawn):

1. Decode its samples (:mod:`pixels`); what cannot be decoded exactly
   (JBIG2, Lab/Separation/DeviceN colour) is kept as it is.  CCITT Group 4
   scans are decoded (:mod:`ccitt`) only when drawn far above 300 dpi, JPEG
   2000 (JPX) only at lossy levels (it is usually smaller than Flate for
   the same pixels, but often not than a JPEG or a palette).
2. Lossless simplifications, at every level: DeviceRGB whose pixels are
   all gray becomes DeviceGray, gray with only black and white becomes 1-bit
   (CCITT G4 when smaller), colour with few colours becomes a palette
   (/Indexed), and JPEGs are re-packed losslessly by mozjpeg (same
   coefficients, so the same pixels).
3. Lossy levels only: downsample to the target resolution when the image is
   drawn (:mod:`placement`) more than 10 % above it (bitonal images no lower
   than 300 dpi), and store photographs as JPEG (:mod:`jpeg`), never above the
   quality an input JPEG already had.  Line art and flat graphics (most pixels
   equal to their neighbour) stay lossless.
4. The smallest candidate replaces the stream only when it is smaller than
   the stream's current bytes.  A downsampled lossless candidate also has to
   beat the full-size lossless ones (resampled line art codes worse).

What must not change is not touched: a colour-key /Mask names exact sample
values (no JPEG, no resampling, no palette), a soft mask's /Matte names a
colour in its image's colour space (so that space stays: no palette, no gray),
an /SMask stays lossless (and is
resampled like its image, since placement gives it its image's resolution),
stencil masks keep /ImageMask and /Decode, and /Decode arrays keep their
meaning (a linear map of samples, which commutes with resampling and bit
depth).  Colour spaces whose rendering is not a function of the samples this
module can reproduce (ICC, Cal) are kept, never swapped for Device ones, except
when the caller asks for gray.  An image that fails to decode keeps its bytes
and adds a warning.
"""

from __future__ import annotations

import zlib
from contextlib import closing
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pikepdf
from pikepdf import Array, Dictionary, Name, Stream
from PIL import Image

from squeezer.engines import libdeflate
from squeezer.engines.budget import Budget
from squeezer.engines.errors import EngineError
from squeezer.engines.pdf import bilevel, bitonal, jpeg, pixels, predictors
from squeezer.engines.pdf.options import ColorModel, Settings
from squeezer.engines.pdf.pixels import ColorInfo, DamagedImage, Undecodable
from squeezer.engines.report import Report
from squeezer.engines.threads import ordered_map

#: Downsample only when drawn this much above the target (resampling a 160 dpi image
#: to 150 dpi costs quality and saves little).
HYSTERESIS = 1.1
#: Images smaller than this many pixels are not worth a JPEG (headers dominate).
MIN_JPEG_PIXELS = 64 * 64
#: Share of pixels equal to their right-hand neighbour above which an image is
#: flat graphics (screenshots, charts, line art) rather than a photograph.
FLAT_SHARE = 0.6
#: zlib level for lossless candidates (qpdf re-compresses Flate at level 9 on save).
FLATE_LEVEL = 6
#: A JPEG kept at its resolution is re-encoded only when the perceptual search picks a quality
#: at least this far below the one it has (a few steps less would not pay for a second loss).
REENCODE_MARGIN = 5
#: ... and only when it has at least this many bytes (small ones gain little for the search's time).
MIN_REENCODE_BYTES = 4096
#: Bitonal images are downsampled no lower than this (text must stay legible).
MIN_BITONAL_DPI = 300
#: Lossless graphics coded in more bits per pixel than this also get a JPEG candidate (a JPEG
#: that keeps the floor rarely takes fewer).
GRAPHICS_JPEG_BPP = 0.5
#: Photographs go below the level's resolution (when their looks at it allow) no lower than
#: this where they are drawn sharpest.
MIN_PHOTO_DPI = 72
#: ... and scanned pages of text (the scan step's classes) no lower than this.
MIN_TEXT_SCAN_DPI = 100
#: Offer Flate with PNG predictors (26 % smaller than plain Flate on the corpus' lossless
#: images), beside plain Flate (:mod:`predictors` keeps the smaller).  ``pipeline.save`` keeps
#: them: it does not let qpdf re-deflate Flate streams (which would drop the predictor);
#: :mod:`flate` does that instead.
PNG_PREDICTORS = True


@dataclass
class Candidate:
    """One way to store an image: encoded data plus the dictionary entries that describe it."""

    data: bytes
    filter: Name
    decode_parms: Dictionary | None
    entries: dict[str, object]
    codec: str  #: "jpeg", "jpeg-repack" (same coefficients), "flate", "ccitt", "jbig2"
    gray: bool = False
    downsampled: bool = False
    #: a JPEG made of graphics (not a photograph): the full-size lossless coding may beat it
    graphics: bool = False

    @property
    def cost(self) -> int:
        """The bytes this way adds to the file: its data and an /Indexed palette written in
        the dictionary (as hex, outside the stream: a resampled logo's 169-colour palette
        took 1 KB there while its data saved 0.3 KB, and ``high`` wrote a larger file than
        ``lossless``)."""
        return len(self.data) + _palette_bytes(self.entries.get("/ColorSpace"))


def _palette_bytes(space: object) -> int:
    """The bytes qpdf writes for the lookup string of an /Indexed colour space (hex: two a
    byte, and the brackets); 0 for any other space or a lookup stream."""
    if isinstance(space, pikepdf.Array) and len(space) == 4 and space[0] == Name.Indexed \
            and isinstance(space[3], pikepdf.String):
        return 2 * len(bytes(space[3])) + 2
    return 0


@dataclass
class _Context:
    settings: Settings
    budget: Budget
    placements: dict
    smasks: set[tuple[int, int]] = field(default_factory=set)
    #: scanned page images of text (the scan step's classes): never below the level's dpi
    text_scans: set[tuple[int, int]] | frozenset = frozenset()
    #: 1-bit images from this many pixels may be JBIG2 (:func:`_jbig2_min`)
    jbig2_min: int = bitonal.MIN_JBIG2_PIXELS


def optimize_images(pdf: pikepdf.Pdf, settings: Settings, budget: Budget, report: Report,
                    skip: set[tuple[int, int]] | frozenset = frozenset(),
                    text_scans: set[tuple[int, int]] | frozenset = frozenset()) -> None:
    """Recompress every image XObject of ``pdf`` in place according to ``settings``.

    ``skip``: images another step (the scan step) has just written; left as they are.
    ``text_scans``: scanned pages of text the scan step left to this one; their size and
    quality search keeps the level's resolution (:func:`_options`).
    """
    images = [obj for obj in pdf.objects
              if isinstance(obj, Stream) and obj.is_indirect
              and obj.stream_dict.get("/Subtype") == Name.Image and obj.objgen not in skip]
    if not images:
        report.steps["images"] = report.steps.get("images", 0)
        return
    ctx = _Context(settings, budget, _placements(pdf, settings, budget), text_scans=text_scans,
                   jbig2_min=_jbig2_min(images))
    for image in images:
        smask = image.get("/SMask")
        if isinstance(smask, Stream) and smask.is_indirect:
            ctx.smasks.add(smask.objgen)
    saved = 0
    with closing(ordered_map(lambda image: _attempt(image, ctx), images,
                             budget.threads)) as results:
        for done, (image, (before, candidate, warning)) in enumerate(zip(images, results), 1):
            budget.advance(done, len(images))
            report.images.seen += 1
            if warning:
                report.warnings.append(warning)
            if candidate is None:
                report.images.skipped += 1
                continue
            _write(image, candidate)
            saved += before - candidate.cost
            stats = report.images
            stats.recompressed += 1
            stats.downsampled += candidate.downsampled
            stats.to_gray += candidate.gray
            if candidate.codec == "jpeg":
                stats.to_jpeg += 1
            elif candidate.codec == "ccitt":
                stats.to_ccitt += 1
            elif candidate.codec == "jbig2":
                stats.to_jbig2 += 1
            elif candidate.codec == "flate":
                stats.to_flate += 1
    report.steps["images"] = report.steps.get("images", 0) + saved


def _jbig2_min(images: list[Stream]) -> int:
    """The smallest 1-bit image worth a JBIG2 trial in this document.

    :data:`bitonal.MIN_JBIG2_PIXELS` keeps a document with a few small masks from paying
    the JBIG2 coder's load; when its 1-bit images add up to that many pixels (a scan cut
    into strips, a book of line drawings) the load pays, and images from
    :data:`bitonal.MIN_JBIG2_STRIP_PIXELS` on are tried too.
    """
    total = 0
    for image in images:
        if image.get("/ImageMask", False) or _int(image.get("/BitsPerComponent"), 8) == 1:
            total += max(0, _int(image.get("/Width"))) * max(0, _int(image.get("/Height")))
    return bitonal.MIN_JBIG2_STRIP_PIXELS if total >= bitonal.MIN_JBIG2_PIXELS \
        else bitonal.MIN_JBIG2_PIXELS


def _attempt(image: Stream, ctx: _Context) -> tuple[int, Candidate | None, str | None]:
    """(the stream's current bytes, its best re-encoding or None, a warning or None).

    Runs on a worker thread: it only reads ``image`` (and what it refers to);
    the caller writes the result, in document order.
    """
    ctx.budget.check_time()
    before = len(image.read_raw_bytes()) + _palette_bytes(image.get("/ColorSpace"))
    try:
        with ctx.budget.large_image(pixels.sample_bytes(image)):
            return before, _best(image, ctx, before), None
    except EngineError:
        raise  # limits
    except DamagedImage as exc:
        reason = str(exc)
    except Undecodable:
        return before, None, None
    except Exception as exc:  # noqa: BLE001 - a damaged image must not sink the document
        reason = f"{type(exc).__name__}: {str(exc)[:200]}"
    return before, None, f"image {image.objgen[0]} {image.objgen[1]} R kept as it is: {reason}"


def _placements(pdf: pikepdf.Pdf, settings: Settings, budget: Budget) -> dict:
    """Effective resolutions, needed only when downsampling is asked for."""
    if not (settings.lossy_images and settings.dpi):
        return {}
    try:
        from squeezer.engines.pdf.placement import image_placements
    except ImportError:  # pragma: no cover - the module ships with the engine
        return {}
    try:
        return image_placements(pdf, budget)
    except EngineError:
        raise
    except Exception:  # noqa: BLE001 - damaged content: resolutions unknown
        return {}  # nothing is downsampled


def _write(image: Stream, c: Candidate) -> None:
    image.write(c.data, filter=c.filter, decode_parms=c.decode_parms)
    for key, value in c.entries.items():
        if value is None:
            if key in image:
                del image[key]
        else:
            image[key] = value


# --- choosing ----------------------------------------------------------------------------


def _int(value: pikepdf.Object | None, default: int = 0) -> int:
    if value is None:  # an absent entry (int(None) would be a TypeError, caught the same)
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _best(image: Stream, ctx: _Context, before: int) -> Candidate | None:
    """The smallest acceptable re-encoding of ``image``, or None to keep it."""
    width, height = _int(image.get("/Width")), _int(image.get("/Height"))
    if width < 1 or height < 1:
        raise Undecodable("no size")
    names = pixels.filters(image)
    if names in (["/CCITTFaxDecode"], ["/CCF"]):
        return _cheapest(_ccitt(image, ctx, width, height), before)
    if names == ["/JPXDecode"]:
        return _cheapest(_jpx(image, ctx, width, height), before)
    if any(f in ("/JPXDecode", "/JBIG2Decode", "/CCITTFaxDecode", "/CCF") for f in names):
        return None
    is_mask = bool(image.get("/ImageMask", False))
    bpc = 1 if is_mask else _int(image.get("/BitsPerComponent"), 8)
    info = pixels.color_info(image)
    ctx.budget.check_image(width, height, max(bpc, 8) * info.components)
    if names and names[-1] in pixels.DCT_FILTERS:
        candidates = _dct(image, info, ctx, width, height)
    elif is_mask:
        candidates = _stencil(image, width, height, ctx.settings.jbig2, ctx.jbig2_min)
    else:
        candidates = _sampled(image, info, ctx, width, height, bpc)
        if image.objgen not in ctx.smasks:  # (a soft mask is resampled with its image)
            candidates = _with_full_size(candidates, lambda: _sampled(
                image, info, ctx, width, height, bpc, resample=False))
    return _cheapest(candidates, before)


def _cheapest(candidates: list[Candidate | None], before: int) -> Candidate | None:
    """The candidate that adds the fewest bytes, when that is fewer than ``before``."""
    cheaper = [c for c in candidates if c is not None and c.cost < before]
    return min(cheaper, key=lambda c: c.cost) if cheaper else None


def _with_full_size(candidates: list, full_size) -> list:
    """Add the full-resolution lossless candidates when the best one is a downsampled lossless one.

    Resampling flat graphics or line art blurs edges into new colours, which
    Flate and G4 code worse: the smaller, sharper original then wins.  Photos
    (JPEG) are left alone: there resampling always pays.
    """
    valid = [c for c in candidates if c is not None]
    if not valid:
        return candidates
    best = min(valid, key=lambda c: c.cost)
    if not best.downsampled or (best.codec == "jpeg" and not best.graphics):
        return candidates
    return valid + [c for c in full_size() if c is not None]


def _target(image: Stream, ctx: _Context, width: int, height: int,
            floor_dpi: float = 0) -> tuple[int, int] | None:
    """The downsampled size of ``image``, or None when it stays as it is."""
    s = ctx.settings
    if not (s.lossy_images and s.dpi):
        return None
    placement = ctx.placements.get(image.objgen)
    if placement is None:
        return None
    target = max(float(s.dpi), floor_dpi)
    dpi_x, dpi_y = float(placement.dpi_x), float(placement.dpi_y)
    if max(dpi_x, dpi_y) <= target * HYSTERESIS:
        return None
    new_w = width if dpi_x <= target * HYSTERESIS else max(1, round(width * target / dpi_x))
    new_h = height if dpi_y <= target * HYSTERESIS else max(1, round(height * target / dpi_y))
    if new_w >= width and new_h >= height:
        return None
    return min(new_w, width), min(new_h, height)


def _view(image: Stream, ctx: _Context, width: int, height: int) -> tuple[int, int] | None:
    """The image's size in pixels as a reader sees it: drawn where it is drawn largest, at
    the level's resolution, but no more than its own pixels (scaled up, an image shows no
    more than it has, and JPEG's blocks only grow), or None when unknown or when no
    resolution is set."""
    s = ctx.settings
    placement = ctx.placements.get(image.objgen)
    if not (s.lossy_images and s.dpi) or placement is None:
        return None
    low_x = placement.min_dpi_x or placement.dpi_x
    low_y = placement.min_dpi_y or placement.dpi_y
    if low_x <= 0 or low_y <= 0:
        return None
    return (min(width, max(1, round(width * s.dpi / low_x))),
            min(height, max(1, round(height * s.dpi / low_y))))


def _options(base: tuple[int, int], image: Stream, ctx: _Context, width: int,
             cap: int, first_cap: int | None = None) -> list[jpeg.Option]:
    """Sizes for :func:`jpeg.choose_size_and_quality`: ``base`` (the largest allowed, with
    ``first_cap``), then :data:`jpeg.SIZE_STEPS` of it, none below :data:`MIN_PHOTO_DPI`
    where the image is drawn sharpest."""
    placement = ctx.placements.get(image.objgen)
    top_dpi = max(placement.dpi_x, placement.dpi_y) * base[0] / width if placement else 0.0
    out = [jpeg.Option(base, cap if first_cap is None else first_cap)]
    # A scanned page of text goes no lower than MIN_TEXT_SCAN_DPI: strokes resampled below
    # it blur and break, which a tile mosaic of mostly paper measures too kindly (a gray
    # 200 dpi text scan taken to 75 dpi kept SSIM 0.96 on its mosaic and rendered at 0.951,
    # at 105 dpi 0.968); photographs may go lower, where their looks allow.
    floor_dpi = MIN_TEXT_SCAN_DPI if image.objgen in ctx.text_scans else MIN_PHOTO_DPI
    for step in jpeg.SIZE_STEPS[1:]:
        size = (max(1, round(base[0] * step)), max(1, round(base[1] * step)))
        if top_dpi * step < floor_dpi or size[0] * size[1] < MIN_JPEG_PIXELS:
            break
        out.append(jpeg.Option(size, cap))
    return out


# --- DCT ---------------------------------------------------------------------------------


def _dct(image: Stream, info: ColorInfo, ctx: _Context, width: int, height: int) -> list:
    """A JPEG: re-encoded when resampled or above the target quality, else re-packed losslessly.

    A JPEG wrapped in Flate (some optimisers do that) is unwrapped: the
    entropy-coded data does not deflate.
    """
    data = pixels.dct_data(image)
    raw_length = len(image.read_raw_bytes())
    lossy = _dct_lossy(image, info, ctx, width, height, data)
    if any(len(c.data) < raw_length for c in lossy):
        return lossy
    optimized = jpeg.optimize_losslessly(data)
    if len(optimized) < raw_length:
        return [Candidate(optimized, Name.DCTDecode, _dct_parms(image), {}, "jpeg-repack")]
    return []


def _dct_parms(image: Stream) -> Dictionary | None:
    """The DCTDecode parameters of ``image`` (the last entry when filters are chained)."""
    parms = image.get("/DecodeParms")
    if isinstance(parms, Array):
        parms = parms[len(parms) - 1] if len(parms) else None
    return parms if isinstance(parms, Dictionary) else None


def _color_transform(image: Stream, info: ColorInfo) -> bool:
    """Whether the JPEG's /DecodeParms name a /ColorTransform for its colours.

    Only /ColorTransform changes how a reader decodes a JPEG (ISO 32000-1 §7.4.8), and
    the decoder here follows the JPEG's own markers, so such an image is not re-encoded.
    The other entries some writers leave there (Ghostscript's /QFactor, /HSamples,
    /VSamples, /Columns, /Rows, /Colors; /Quality) are its encoder's settings, ignored
    by readers: a re-encoded image drops them with the old data.
    """
    parms = _dct_parms(image)
    return parms is not None and "/ColorTransform" in parms and info.components > 1


def _dct_lossy(image: Stream, info: ColorInfo, ctx: _Context, width: int, height: int,
               data: bytes) -> list:
    s = ctx.settings
    if not s.lossy_images and s.color_model == ColorModel.keep:
        return []
    if _color_transform(image, info) or image.objgen in ctx.smasks:
        return []
    if isinstance(image.get("/Mask"), Array) or info.kind not in ("gray", "rgb", "cmyk"):
        return []
    if s.color_model != ColorModel.keep and not _equal_decode_pairs(image, info):
        return []
    cmyk = info.kind == "cmyk"
    if cmyk and s.color_model != ColorModel.keep:
        return []
    # CMYK round-trips through Pillow with the same sample meaning, with or without
    # an Adobe APP14 marker: Pillow inverts CMYK on reading and again on writing
    # (Adobe's convention, whatever the marker says), and PDF readers (PDFium,
    # Ghostscript, pdf.js, MuPDF) use the decoded samples as stored, marker or not,
    # so the image's /Decode still applies.
    im = pixels.open_jpeg(data)
    if im.size != (width, height) or im.mode != {"gray": "L", "rgb": "RGB", "cmyk": "CMYK"}[info.kind]:
        return []
    quality = s.image_quality
    estimated = jpeg.estimate_quality(im)
    if estimated is not None:
        quality = min(quality, estimated)
    size = _target(image, ctx, width, height)
    to_gray = im.mode == "RGB" and s.color_model != ColorModel.keep and not _matte(image)
    bitonal = s.color_model == ColorModel.bitonal
    # kept at its size and already at or below the cap: a re-encoding is a second loss,
    # worth it only when the perceptual search finds a quality well below the JPEG's own
    second_loss = size is None and not to_gray and not bitonal and (
        estimated is None or estimated <= s.image_quality)
    view = None if bitonal or s.image_ssim is None else _view(image, ctx, width, height)
    smaller = view is not None and len(data) >= MIN_REENCODE_BYTES
    # a second loss at the JPEG's own size must land REENCODE_MARGIN below its quality
    own_size_ok = not second_loss or (
        s.image_ssim is not None and estimated is not None and len(data) >= MIN_REENCODE_BYTES
        and estimated - REENCODE_MARGIN >= jpeg.SEARCH_LOWEST)
    if not own_size_ok and not smaller:
        return []  # at most the lossless optimisation: re-encoding would only lose
    if size is not None:
        # DCT-domain scaling (1/2, 1/4, 1/8) to no less than the largest size needed, then
        # Lanczos: the scaled inverse DCT is a proper low-pass, within SSIM 0.996 of decoding
        # whole and resampling, for a sixth of the time on a 300 dpi photo page (0.04 s
        # against 0.23 s); bitonal output keeps twice the size for its threshold's edges
        factor = 2 if bitonal else 1
        need = (max(size[0] * factor, view[0] if view else 0),
                max(size[1] * factor, view[1] if view else 0))
        im.draft(im.mode, need)
    im = pixels.load(im)
    entries = _gray_entries(image, info) if to_gray else {}
    if to_gray:
        im = im.convert("L")
    if bitonal:
        if size is not None:
            im = pixels.resize(im, size)
        ink = np.asarray(im) < 128
        return _bitonal(ink, downsampled=size is not None, extra=entries, gray=to_gray,
                        jbig2=s.jbig2)
    encoder = jpeg.SMALLEST  # (a fixed quality; a search names its encoder)
    if view is not None and s.image_ssim is not None:
        # size and quality together, judged at the size the page shows the image
        # (a re-encoding at the JPEG's own size must land REENCODE_MARGIN below its quality)
        base = size or (width, height)
        own = second_loss and base == (width, height)
        first_cap = estimated - REENCODE_MARGIN + 1 \
            if own and own_size_ok and estimated is not None else quality
        options = _options(base, image, ctx, width, quality, first_cap)
        if own and not own_size_ok:
            options = options[1:]  # only smaller sizes may re-encode it
        resized = {size: pixels.resize(im, size)} if size is not None else None
        chosen = jpeg.choose_size_and_quality(im, options, view, s.image_ssim,
                                              fallback=not own, resized=resized) \
            if options else None
        if chosen is None:
            return []  # nothing smaller keeps the floor: at most the lossless optimisation
        im, quality, encoder = chosen
        resampled = im.size != (width, height)
    else:
        if size is not None:
            im = pixels.resize(im, size)
        if s.image_ssim is not None:
            # a second loss must land at most estimated - REENCODE_MARGIN (below this cap)
            # (second_loss has an estimate: it returned above without one)
            cap = estimated - REENCODE_MARGIN + 1 if second_loss and estimated is not None \
                else quality
            quality, encoder = jpeg.choose_encoding(im, s.image_ssim, cap)
            if second_loss and quality >= cap:
                return []  # nothing well below the JPEG's own quality keeps the floor
        resampled = size is not None
    entries.update(_size_entries(im.size, 8))
    encoded = jpeg.encode(im, quality, encoder)
    return [Candidate(encoded, Name.DCTDecode, None, entries, "jpeg",
                      gray=to_gray, downsampled=resampled)]


# --- CCITT ------------------------------------------------------------------------------


def _ccitt(image: Stream, ctx: _Context, width: int, height: int) -> list:
    """A CCITT image: re-coded as JBIG2 when that is smaller (lossless, every level), and
    decoded, resampled and re-coded when drawn far above the target.

    Bitonal scans are never resampled below :data:`MIN_BITONAL_DPI`.  Samples
    keep their meaning, so /Decode and /ImageMask stay as they are.
    """
    size = _target(image, ctx, width, height, floor_dpi=MIN_BITONAL_DPI)
    # (a small image stays G4: bitonal.encode would not use JBIG2 for it, so its coder,
    # LLVM and ~90 MB, is not loaded to find that out)
    recode = ctx.settings.jbig2 and width * height >= ctx.jbig2_min \
        and bitonal.jbig2.available()
    if (size is None and not recode) or image.objgen in ctx.smasks:
        return []
    if not image.get("/ImageMask", False) and _int(image.get("/BitsPerComponent"), 1) != 1:
        return []
    ctx.budget.check_image(width, height, 8)
    try:
        # (the samples as the one array each path needs: ink, or gray to resample)
        if size is None:
            return _bitonal(bilevel.decode_ink(image), downsampled=False, jbig2=True,
                            force=False, min_pixels=ctx.jbig2_min)
        gray = bilevel.decode_gray(image)
    except (OSError, ValueError, RuntimeError) as exc:
        raise DamagedImage(f"CCITT data does not decode ({exc})") from None
    zero = np.asarray(pixels.resized(gray, "L", size)) < 128
    return _bitonal(zero, downsampled=True, jbig2=ctx.settings.jbig2, min_pixels=ctx.jbig2_min)


# --- JPEG 2000 ---------------------------------------------------------------------------


def _jpx(image: Stream, ctx: _Context, width: int, height: int) -> list:
    """A JPXDecode image at a lossy level: decoded, then treated like any sampled image.

    Pillow's bundled OpenJPEG decodes the codestream; the result is resampled,
    stored as JPEG when photographic or as (palette) Flate when flat, like a
    Flate image.  What the samples mean follows ISO 32000-1 §7.4.9: a
    /ColorSpace in the dictionary wins over the JP2 header (an /Indexed space
    means the codestream holds palette indexes); without one, only the plain
    enumerated gray, sRGB and CMYK headers are understood.  Alpha in the data
    (/SMaskInData) and image masks are kept as they are.  A soft mask in JPX becomes
    lossless Flate of its decoded samples, resampled by its placement like any soft mask
    (a 2140 x 554 mask drawn at 893 dpi under a 360 x 94 image: 150 KB -> a few).
    """
    s = ctx.settings
    if not s.lossy_images:
        return []  # JPX is usually smaller than Flate for the same pixels
    if image.get("/ImageMask", False) or _int(image.get("/SMaskInData"), 0) != 0:
        return []
    header = pixels.jpx_header(image.read_raw_bytes())
    if (header.width, header.height) != (width, height):
        return []
    if header.enumerated not in (None, *pixels.JP2_ENUMERATED):
        return []  # sYCC, e-sRGB, Lab...: readers convert those, the bare codestream does not
    if isinstance(image.get("/Mask"), Array) and header.precision != 8:
        return []  # colour-key ranges name samples at their own depth
    entries: dict[str, object] = {"/SMaskInData": None}
    cs = image.get("/ColorSpace")
    if cs is None:
        known = pixels.JP2_ENUMERATED.get(header.enumerated) if header.enumerated is not None \
            else {1: (1, Name.DeviceGray), 3: (3, Name.DeviceRGB)}.get(header.components)
        if header.not_plain or known is None or known[0] != header.components:
            return []
        cs = entries["/ColorSpace"] = known[1]
    info = pixels.space(cs, allow_indexed=True)
    if info.components != header.components:
        return []
    ctx.budget.check_image(width, height, 8 * info.components)
    arr, bpc = pixels.jpx_samples(header)
    if info.kind == "indexed" and header.precision > 8:
        return []
    candidates = _sampled(image, info, ctx, width, height, bpc, arr=arr, entries=entries)
    if image.objgen in ctx.smasks:
        return candidates  # (lossless, and resampled as its placement says)
    return _with_full_size(candidates, lambda: _sampled(
        image, info, ctx, width, height, bpc, arr=arr, entries=entries, resample=False))


# --- stencil masks -----------------------------------------------------------------------


def _stencil(image: Stream, width: int, height: int, jbig2: bool,
             min_pixels: int = bitonal.MIN_JBIG2_PIXELS) -> list:
    """/ImageMask: 1-bit stencil; G4 when smaller, /Decode and /ImageMask kept."""
    samples = pixels.samples(image, width, height, 1, 1)[:, :, 0]
    ink = samples == 0  # G4 (BlackIs1 false) decodes these back to 0
    return [_one_bit(ink, {"/BitsPerComponent": 1}, jbig2=jbig2, min_pixels=min_pixels)] \
        if ink.size else []


# --- sampled images ----------------------------------------------------------------------


def _equal_decode_pairs(image: Stream, info: ColorInfo) -> bool:
    decode = pixels.decode_array(image, info, _int(image.get("/BitsPerComponent"), 8))
    if decode is None:
        return True
    pairs = [tuple(decode[i:i + 2]) for i in range(0, len(decode), 2)]
    return len(set(pairs)) == 1


def _gray_entries(image: Stream, info: ColorInfo) -> dict[str, object]:
    entries: dict[str, object] = {"/ColorSpace": Name.DeviceGray}
    decode = image.get("/Decode")
    if isinstance(decode, Array) and len(decode) >= 2:
        entries["/Decode"] = Array([decode[0], decode[1]])
    return entries


def _size_entries(size: tuple[int, int], bpc: int) -> dict[str, object]:
    return {"/Width": size[0], "/Height": size[1], "/BitsPerComponent": bpc}


def _sampled(image: Stream, info: ColorInfo, ctx: _Context, width: int, height: int,
             bpc: int, *, resample: bool = True, arr: np.ndarray | None = None,
             entries: dict | None = None) -> list:
    """Candidates for a sampled image.

    ``arr`` gives samples decoded elsewhere (JPX): the stream's own encoding
    is then not one this function can write, so a lossless candidate is always
    made, and ``entries`` holds what the dictionary must change anyway.
    """
    s = ctx.settings
    color_key = isinstance(image.get("/Mask"), Array)
    is_smask = image.objgen in ctx.smasks
    matte = _matte(image)
    decode = pixels.decode_array(image, info, bpc)
    forced = arr is not None
    changed = forced  # do the samples differ from the stream's (then a Flate candidate pays)
    gray = expanded = False
    entries = dict(entries or {})
    if arr is None and info.kind == "rgb" and bpc == 8 and not color_key and not matte \
            and (info.obj == Name.DeviceRGB and s.color_detection
                 or s.color_model != ColorModel.keep) \
            and _equal_decode_pairs(image, info):
        # what the really-gray step below would make of a large gray image stored as RGB,
        # straight from the stream (pixels.gray_samples: its three channels never whole)
        arr = pixels.gray_samples(image, width, height)
        if arr is not None:
            entries.update(_gray_entries(image, info))
            info = ColorInfo("gray", 1, Name.DeviceGray)
            gray = changed = True
    if arr is None:
        arr = pixels.samples(image, width, height, info.components, bpc)

    if info.kind == "indexed":
        # a palette image stays as it is (qpdf re-packs its Flate) unless it must be
        # resampled or converted; a colour key names indexes, so it pins the samples
        if color_key or decode is not None or is_smask or matte:
            return []
        if s.color_model == ColorModel.keep and not forced and (
                not resample or _target(image, ctx, width, height) is None):
            return []
        # expand the palette: the image is then resampled or converted like any other
        lookup, indexed = info.palette, info.obj
        if lookup is None or indexed is None:  # (an Indexed space has both)
            return []
        arr = lookup[np.minimum(arr[:, :, 0], len(lookup) - 1)]
        base = indexed[1]
        info = pixels.space(base, allow_indexed=False)
        bpc, changed = 8, True
        entries["/ColorSpace"] = base
        entries["/Decode"] = None
        decode, expanded = None, True

    if bpc == 16:
        if s.lossy_images or s.color_model != ColorModel.keep:
            arr = ((arr.astype(np.uint32) + 128) // 257).astype(np.uint8)
            bpc, changed = 8, True
        else:
            return _sixteen(image, info, arr, color_key or matte)
    elif bpc < 8 and not (info.components == 1 and bpc == 1):  # 1-bit gray: bitonal below
        # exact: 2**bpc - 1 divides 255, and /Decode maps the whole range either way
        arr = (arr.astype(np.uint16) * 255 // ((1 << bpc) - 1)).astype(np.uint8)
        bpc = 8
        changed = True

    # lossless: colour that is really gray.  Only DeviceRGB: a calibrated or ICC
    # space may render R = G = B as a slightly tinted colour, which DeviceGray is not.
    if info.kind == "rgb" and not color_key and not matte \
            and (expanded or _equal_decode_pairs(image, info)):
        really_gray = info.obj == Name.DeviceRGB and s.color_detection and _is_gray(arr)
        if really_gray or s.color_model != ColorModel.keep:
            if _is_gray(arr):
                # (a copy: a view would keep all three channels alive to the end)
                arr = np.ascontiguousarray(arr[:, :, :1])
            else:
                arr = pixels.converted(arr, "RGB", "L")[:, :, None]
            entries.update({"/ColorSpace": Name.DeviceGray} if expanded
                           else _gray_entries(image, info))
            info = ColorInfo("gray", 1, Name.DeviceGray)
            gray = changed = True
    if info.kind == "cmyk" and s.color_model != ColorModel.keep and not color_key \
            and decode is None and not is_smask and not matte:
        arr = pixels.converted(arr, "CMYK", "L")[:, :, None]
        entries.update({"/ColorSpace": Name.DeviceGray})
        info = ColorInfo("gray", 1, Name.DeviceGray)
        gray = changed = True

    # gray with only the two extreme values is bitonal: 1-bit, and resampled as a scan is
    bitonal_now = info.components == 1 and bpc == 1
    if info.components == 1 and bpc == 8 and not color_key and not is_smask:
        values = _values(arr[:, :, 0], 3)
        if values is not None and set(values) <= {0, 255}:
            bitonal_now = changed = True

    # resolution
    size = None
    if not color_key and resample:
        size = _target(image, ctx, width, height,
                       floor_dpi=MIN_BITONAL_DPI if bitonal_now else 0)
    if bitonal_now:
        ink = arr[:, :, 0] == 0
        if size is not None:
            paper = np.where(ink, np.uint8(0), np.uint8(255))
            ink = np.asarray(pixels.resized(paper, "L", size)) < 128
        return _bitonal(ink, downsampled=size is not None, extra=entries, gray=gray,
                        force=changed or size is not None, jbig2=s.jbig2)
    mode = {1: "L", 3: "RGB", 4: "CMYK"}[info.components]
    full = arr  # (the photo path below chooses its size from the full samples)
    if size is not None:
        arr = np.asarray(pixels.resized(arr, mode, size))
        if arr.ndim == 2:
            arr = arr[:, :, None]
        changed = True
    entries.update(_size_entries((arr.shape[1], arr.shape[0]), 8))

    if info.components == 1 and s.color_model == ColorModel.bitonal and not color_key \
            and not is_smask:
        return _bitonal(arr[:, :, 0] < 128, downsampled=size is not None, extra=entries,
                        gray=gray, jbig2=s.jbig2)

    palette_ok = not color_key and decode is None and not matte
    # PDFium smooths a 1-bit palette image drawn with /Interpolate differently from the
    # colours it holds (up to 3 levels apart): such an image gets at least 2 bits per index
    min_bpc = 2 if image.get("/Interpolate") is True else 1
    out = []
    photo = jpeg_ok = False
    if s.lossy_images and not color_key and not is_smask \
            and info.kind in ("gray", "rgb", "cmyk") \
            and arr.shape[0] * arr.shape[1] >= MIN_JPEG_PIXELS:
        jpeg_ok = True
        photo = _is_photo(arr)

    def as_jpeg(fallback: bool, smaller: bool = True) -> Candidate | None:
        """The samples as a JPEG: size and quality chosen together where the page shows
        them (or the quality alone, without a known placement); ``smaller``: sizes below
        the level's resolution may compete."""
        def pillow(samples: np.ndarray) -> Image.Image:
            if mode == "CMYK":
                # Pillow writes CMYK inverted (Adobe's convention) and PDF readers use the
                # samples as stored, whatever the APP14 marker says: hand it the inverse
                return Image.fromarray(np.ascontiguousarray(255 - samples), mode)
            return Image.fromarray(samples[:, :, 0] if mode == "L" else samples, mode)

        im = pillow(arr)
        view = _view(image, ctx, width, height) if s.image_ssim is not None and resample \
            else None
        jpeg_entries, downsampled = dict(entries), size is not None
        encoder = jpeg.SMALLEST  # (a fixed quality; a search names its encoder)
        if view is not None and s.image_ssim is not None:  # (view is only made with a floor)
            base = (arr.shape[1], arr.shape[0])
            source = im if full is arr else pillow(full)
            options = _options(base, image, ctx, width, s.image_quality)
            chosen = jpeg.choose_size_and_quality(
                source, options if smaller else options[:1], view,
                s.image_ssim, resized={base: im}, fallback=fallback)
            if chosen is None:
                return None
            im, quality, encoder = chosen
            downsampled = im.size != (width, height)
            jpeg_entries.update(_size_entries(im.size, 8))
        elif not fallback:
            return None
        elif s.image_ssim is not None:
            quality, encoder = jpeg.choose_encoding(im, s.image_ssim, s.image_quality)
        else:
            quality = s.image_quality
        return Candidate(jpeg.encode(im, quality, encoder), Name.DCTDecode, None,
                         jpeg_entries, "jpeg", gray=gray, downsampled=downsampled)

    if photo:
        out.append(as_jpeg(fallback=True))
        if info.components > 1 and palette_ok:
            # a gradient quantised to a palette is "photographic" but may be smaller
            # as the palette it is
            palette = _palette(arr, info, entries, gray, size is not None, min_bpc)
            if palette is not None:
                out.append(palette)
        return out
    # lossless: palette for few colours, else the samples as they are
    if info.components > 1 and palette_ok:
        palette = _palette(arr, info, entries, gray, size is not None, min_bpc)
        if palette is not None:
            out.append(palette)
    if changed or PNG_PREDICTORS:
        out.append(_flate(arr, entries, gray, size is not None))
    if jpeg_ok and out and s.image_ssim is not None:
        # graphics (screenshots, charts) may still look the same as a JPEG where the page
        # shows them: one that keeps the level's floor there, at the level's resolution
        # (their text and edges get no fewer pixels), competes on bytes; tried only when
        # the lossless coding is not already well below what a JPEG takes
        lossless = min(len(c.data) for c in out if c is not None)
        if lossless * 8 >= GRAPHICS_JPEG_BPP * arr.shape[0] * arr.shape[1]:
            candidate = as_jpeg(fallback=False, smaller=False)
            if candidate is not None:
                candidate.graphics = True
                out.append(candidate)
    return out


def _flate(arr: np.ndarray, entries: dict, gray: bool, downsampled: bool) -> Candidate:
    """The smallest Flate encoding of 8-bit samples, plain or PNG-predicted
    (:mod:`predictors`: the best predictor differs from image to image)."""
    _, width, components = arr.shape
    encoded = predictors.smallest_flate(arr) if PNG_PREDICTORS else predictors.Encoded(
        libdeflate.compress(np.ascontiguousarray(arr).tobytes()), False)
    parms = Dictionary(Predictor=15, Colors=components, BitsPerComponent=8, Columns=width) \
        if encoded.predictor else None
    return Candidate(encoded.data, Name.FlateDecode, parms, dict(entries), "flate",
                     gray=gray, downsampled=downsampled)


def _matte(image: Stream) -> bool:
    """True when ``image``'s soft mask was pre-blended with a /Matte colour: that colour has
    one value per component of ``image``'s colour space, which therefore must stay."""
    smask = image.get("/SMask")
    return isinstance(smask, Stream) and "/Matte" in smask.stream_dict


def _is_gray(arr: np.ndarray) -> bool:
    if arr.shape[2] != 3:
        return False
    # band by band: the comparisons' boolean temporaries are a third of the samples each
    step = pixels.bands(arr.shape[0], arr.shape[1] * 3).step
    for top in range(0, arr.shape[0], step):
        band = arr[top:top + step]
        r = band[:, :, 0]
        if not (np.array_equal(r, band[:, :, 1]) and np.array_equal(r, band[:, :, 2])):
            return False
    return True


def _values(gray: np.ndarray, limit: int) -> list[int] | None:
    """The distinct values of a uint8 image when there are at most ``limit``, else None."""
    found = _colors(gray[:, :, None], "L", limit)
    # (one band's colours are numbers: Pillow types them for any band count)
    return None if found is None else [cast(int, v) for v in found]


def _colors(arr: np.ndarray, mode: str, limit: int) -> set | None:
    """The distinct colours of ``arr`` (H x W x C) when there are at most ``limit``, else
    None: Pillow's getcolors(), band by band (a Pillow copy of a whole image is up to four
    bytes a pixel)."""
    found: set = set()
    step = pixels.bands(arr.shape[0], arr.shape[1] * 4).step
    for top in range(0, arr.shape[0], step):
        part = arr[top:top + step]
        colors = Image.fromarray(np.ascontiguousarray(part[:, :, 0] if mode == "L" else part),
                                 mode).getcolors(limit)
        if colors is None:
            return None
        found.update(c for _, c in colors)
        if len(found) > limit:
            return None
    return found


def _is_photo(arr: np.ndarray) -> bool:
    """Cheap photo-or-graphics test: in graphics most pixels equal their neighbour."""
    h = arr.shape[0]
    rows = arr[:: max(1, h // 64)]
    same = np.all(rows[:, 1:] == rows[:, :-1], axis=2)
    if same.mean() > FLAT_SHARE:
        return False
    if arr.shape[2] == 3:
        sample = arr[:: max(1, h // 128), :: max(1, arr.shape[1] // 128)]
        colors = Image.fromarray(np.ascontiguousarray(sample), "RGB").getcolors(256)
        return colors is None
    return True


def _palette(arr: np.ndarray, info: ColorInfo, entries: dict, gray: bool,
             downsampled: bool, min_bpc: int = 1) -> Candidate | None:
    """An /Indexed version of a colour image with at most 256 colours."""
    mode = {3: "RGB", 4: "CMYK"}[info.components]
    found = _colors(arr, mode, 256)
    if found is None:
        return None
    # the colours in the order of their packed values (big-endian components), each pixel
    # its colour's index, packed: band by band (packed values and sort indexes of a whole
    # image took 12 bytes a pixel, and packing three more copies of the indexes)
    table = np.array(sorted(found), np.uint8).reshape(len(found), arr.shape[2])
    colors = _packed(table)
    bpc = max(min_bpc, 1 if len(colors) <= 2 else 2 if len(colors) <= 4 else 4 if len(colors) <= 16
              else 8)
    height, width = arr.shape[:2]
    rows = np.empty((height, -(-width * bpc // 8)), np.uint8)
    step = pixels.bands(height, width * 8).step
    for top in range(0, height, step):
        index = np.searchsorted(colors, _packed(arr[top:top + step])).astype(np.uint8)
        rows[top:top + step] = _pack(index, bpc)
    new = dict(entries)
    space = new.get("/ColorSpace", info.obj)
    new.update({"/ColorSpace": Array([Name.Indexed, space, len(colors) - 1,
                                      pikepdf.String(table.tobytes())]),
                "/BitsPerComponent": bpc, "/Decode": None})
    return Candidate(zlib.compress(rows.data.cast("B"), FLATE_LEVEL), Name.FlateDecode, None,
                     new, "flate", gray=gray, downsampled=downsampled)


def _packed(arr: np.ndarray) -> np.ndarray:
    """Each pixel's components (the last axis) as one big-endian number."""
    packed = arr[..., 0].astype(np.uint32)
    for c in range(1, arr.shape[-1]):
        packed = (packed << 8) | arr[..., c]
    return packed


def _pack(index: np.ndarray, bpc: int) -> np.ndarray:
    """Rows of ``bpc``-bit samples, each row padded to a byte."""
    if bpc == 8:
        return index
    height, width = index.shape
    per = 8 // bpc
    padded = np.zeros((height, -(-width // per) * per), np.uint8)
    padded[:, :width] = index
    groups = padded.reshape(height, -1, per)
    shifts = (bpc * np.arange(per - 1, -1, -1)).astype(np.uint8)
    return (groups << shifts).sum(axis=2, dtype=np.uint8)


def _sixteen(image: Stream, info: ColorInfo, arr: np.ndarray, pinned: bool) -> list:
    """16-bit samples in a lossless run: only really-gray colour is simplified (unless a
    colour key or a /Matte pins the colour space)."""
    if info.kind == "rgb" and not pinned and _equal_decode_pairs(image, info) and _is_gray(arr):
        data = np.ascontiguousarray(arr[:, :, :1]).astype(">u2").tobytes()
        entries = _gray_entries(image, info)
        return [Candidate(zlib.compress(data, FLATE_LEVEL), Name.FlateDecode, None, entries,
                          "flate", gray=True)]
    return []


def _bitonal(ink: np.ndarray, downsampled: bool, extra: dict | None = None,
             gray: bool = False, force: bool = True, jbig2: bool = False,
             min_pixels: int = bitonal.MIN_JBIG2_PIXELS) -> list:
    """1-bit candidates (ink = sample value 0): G4 or JBIG2 (:mod:`bitonal`), and Flate of
    the packed bits.

    The samples keep their meaning, so the image's /Decode (or the one in
    ``extra``) still applies; ``extra`` carries the colour space when it changed.
    """
    entries = dict(extra or {})
    entries.update(_size_entries((ink.shape[1], ink.shape[0]), 1))
    out = [_one_bit(ink, entries, gray=gray, downsampled=downsampled, jbig2=jbig2,
                    min_pixels=min_pixels)]
    if force:
        packed = np.packbits(~ink, axis=1).tobytes()
        out.append(Candidate(zlib.compress(packed, FLATE_LEVEL), Name.FlateDecode, None,
                             dict(entries), "flate", gray=gray, downsampled=downsampled))
    return out


def _one_bit(ink: np.ndarray, entries: dict, gray: bool = False, downsampled: bool = False,
             jbig2: bool = False, min_pixels: int = bitonal.MIN_JBIG2_PIXELS) -> Candidate:
    coded = bitonal.encode(ink, use_jbig2=jbig2, min_pixels=min_pixels)
    return Candidate(coded.data, coded.filter, coded.decode_parms, dict(entries), coded.codec,
                     gray=gray, downsampled=downsampled)
