"""The scan step: scanned pages re-encoded page by page, before the general image step.

For every scanned page (:mod:`scanpages`) the page image is classified
(:mod:`scancontent`) and then:

- **bitonal** content (or any scan under ``color_model=bitonal``) becomes a
  1-bit image, thresholded adaptively (:mod:`binarize`) and coded with CCITT
  G4; its /Decode keeps the paper's and the ink's gray levels, so the page
  keeps its tone;
- gray and colour **text** under ``mrc`` becomes MRC layers (:mod:`mrc`);
- **photographs**, low-resolution scans and everything the level does not
  ask for stay on the plain path: the image step downsamples and re-encodes
  them as it does any image.

Each re-encoded page is checked before it is written: its composed image,
reduced to 100 dpi, must keep SSIM >= ``scan_ssim`` against the original
(the level's floor), an MRC page must keep :data:`mrc.LEGIBILITY_FLOOR` of
the original's text edges, and the result must be smaller than the image it
replaces.  A page that fails stays on the plain path and its report entry
says why.  Nothing here touches the page's content stream, so an invisible
OCR text layer keeps its exact positions.

1-bit data (bitonal pages, MRC masks) is coded with the smaller of CCITT G4
and JBIG2 generic region (:mod:`bitonal`), both lossless.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing

import numpy as np
import pikepdf
from pikepdf import Array, Name, Stream
from PIL import Image

from squeezer.engines.budget import Budget
from squeezer.engines.errors import EngineError
from squeezer.engines.pdf import binarize, bitonal, mrc, pixels
from squeezer.engines.pdf.options import ColorModel, Settings
from squeezer.engines.pdf.pixels import DamagedImage, Undecodable
from squeezer.engines.pdf.scancontent import Content, classify, luminance
from squeezer.engines.pdf.scanpages import ScanImage, find_scans
from squeezer.engines.report import Report, ScanPage
from squeezer.engines.threads import ordered_map

#: Scans below this resolution keep their pixels (a text mask would be coarser than the text).
MIN_SCAN_DPI = 100
#: Lossy levels bring scans above this (by more than :data:`HYSTERESIS`) down to it: 1-bit text
#: and MRC masks need no more (the image step's ``MIN_BITONAL_DPI``).
MAX_SCAN_DPI = 300
HYSTERESIS = 1.1
#: Classes of page content (:mod:`scancontent`) that are text, not photographs.
TEXT_CONTENT = frozenset({"bitonal", "gray_text", "color_text"})


class _Plain(Exception):
    """This scan stays on the plain path, for the reason given."""


def optimize_scans(pdf: pikepdf.Pdf, settings: Settings, budget: Budget, report: Report,
                   found: tuple[dict[tuple[int, int], ScanImage], int] | None = None,
                   text: set[tuple[int, int]] | None = None) -> set[tuple[int, int]]:
    """Classify every page, re-encode the scans the settings ask for; return the objects
    (new layer images and 1-bit rewrites) the image step must leave as they are.

    ``found``: what :func:`scanpages.find_scans` returned for ``pdf``, when the caller
    looked already.  ``text``: gets the page images classified as text (gray, colour or
    bitonal) that stay on the plain path, for the image step (which keeps them at the
    level's resolution)."""
    scans, vector = found if found is not None else find_scans(pdf)
    report.pages_classified = {"scan": sum(len(s.pages) for s in scans.values()),
                               "vector": vector}
    report.scan_pages = []
    done: set[tuple[int, int]] = set()
    saved = 0
    queue = list(scans.values())
    work = lambda scan: _prepare(pdf, scan, settings, budget)
    with closing(ordered_map(work, queue, budget.threads)) as results:
        for done_count, (scan, (entry, write)) in enumerate(zip(queue, results), 1):
            budget.advance(done_count, len(queue))
            made = None
            if write is not None:
                try:
                    made = write()
                except EngineError:
                    raise
                except Exception as exc:  # noqa: BLE001 - one odd scan must not sink the document
                    _failed(entry, exc)
            if made is not None:
                done.update(made)
                saved += entry.bytes_before - entry.bytes_after
                report.images.seen += 1
                report.images.recompressed += 1
                report.images.downsampled += entry.resampled
                if entry.method == "bitonal":
                    report.images.to_ccitt += entry.codec == "ccitt"
                    report.images.to_jbig2 += entry.codec == "jbig2"
            if made is None and text is not None and entry.content in TEXT_CONTENT:
                text.add(scan.image.objgen)
            for index in scan.pages:
                report.scan_pages.append(entry.model_copy(update={"page": index + 1}))
    report.scan_pages.sort(key=lambda e: e.page)
    report.steps["scans"] = saved
    return done


Writer = Callable[[], set[tuple[int, int]]]


def _prepare(pdf: pikepdf.Pdf, scan: ScanImage, settings: Settings,
             budget: Budget) -> tuple[ScanPage, Writer | None]:
    """Classify and re-encode one scan: its report entry, and what writes the result, or None.

    Runs on a worker thread and only reads the document; the caller runs the
    writer, in page order, on its own thread.
    """
    budget.check_time()
    entry = ScanPage(page=0, content="unknown", ocr_layer=scan.ocr_layer, dpi=round(scan.dpi, 1))
    try:
        entry.bytes_before = len(scan.image.read_raw_bytes())
        with budget.large_image(pixels.sample_bytes(scan.image)):
            return entry, _one(pdf, scan, settings, budget, entry)
    except EngineError:
        raise
    except _Plain as reason:
        entry.method, entry.reason = "plain", str(reason)
    except (Undecodable, DamagedImage) as exc:
        entry.method, entry.reason = "plain", f"image not decoded ({exc})"
    except Exception as exc:  # noqa: BLE001 - one odd scan must not sink the document
        _failed(entry, exc)
    return entry, None


def _failed(entry: ScanPage, exc: Exception) -> None:
    """The page stays plain because the step failed on it, preparing or writing."""
    entry.method = "plain"
    entry.reason = f"scan step failed ({type(exc).__name__}: {str(exc)[:120]})"


def _pixels(image: Stream, budget: Budget
            ) -> tuple[np.ndarray | None, Image.Image | None, bool]:
    """The image's samples as H x W x C uint8 (C = 1 or 3), or None for a JPEG, whose
    decoded Pillow image comes second (:func:`_samples` makes its array when it is
    needed: a page classified as a photograph never needs it); or :class:`_Plain`.

    Third: True when the samples are the one channel of a large RGB image whose channels
    are all equal (:func:`pixels.gray_samples`; a gray scan stored as colour): its three
    channels are made again only for the MRC layers, which are the one step that needs
    them (a 9000 x 9000 page was classified holding 243 MB of them and its 81 MB gray)."""
    if image.get("/ImageMask", False):
        raise _Plain("a stencil mask")
    if "/SMask" in image or "/Mask" in image:
        raise _Plain("the image has a mask")
    width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    info = pixels.color_info(image)
    if info.kind not in ("gray", "rgb"):
        raise _Plain(f"{info.kind} colour is left to the image step")
    bpc = int(image.get("/BitsPerComponent", 8))
    if bpc != 8:
        raise _Plain(f"{bpc} bits per component")
    if pixels.decode_array(image, info, bpc) is not None:
        raise _Plain("a /Decode array")
    budget.check_image(width, height, 8 * info.components)
    names = pixels.filters(image)
    if names and names[-1] in pixels.DCT_FILTERS:
        im = pixels.load(pixels.open_jpeg(pixels.dct_data(image)))
        if im.mode not in ("L", "RGB") or im.size != (width, height):
            raise _Plain(f"a {im.mode} JPEG")
        return None, im, False
    if info.kind == "rgb":
        one = pixels.gray_samples(image, width, height)
        if one is not None:
            return one, None, True
    samples = pixels.samples(image, width, height, info.components, 8)
    return samples.reshape(height, width, -1), None, False


#: :func:`_clearly_a_photo` looks at a JPEG page reduced to no less than this resolution...
GLANCE_DPI = 150
#: ... and calls it a photograph when this share of its blocks is photographic (the class
#: needs 0.5; on the corpus' scans the reduced share is within 0.03 of the full one).
GLANCE_PHOTO_SHARE = 0.6


def _clearly_a_photo(image: Stream, dpi: float, budget: Budget) -> bool:
    """Whether a JPEG page is a photograph at a glance: decoded at a half or a quarter of its
    size (the JPEG's own scaled decoding), far more of it photographic than the class needs.

    A photo page then costs a small decode instead of the whole page's pixels and masks;
    anything less clear-cut is classified at full resolution, as before.
    """
    names = pixels.filters(image)
    if not names or names[-1] not in pixels.DCT_FILTERS or dpi < 2 * GLANCE_DPI:
        return False
    if image.get("/ImageMask", False) or "/SMask" in image or "/Mask" in image \
            or "/Decode" in image:
        return False
    width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    budget.check_image(width, height, 24)
    scale = 2 if dpi < 4 * GLANCE_DPI else 4
    try:
        im = pixels.open_jpeg(pixels.dct_data(image))
        if im.mode not in ("L", "RGB") or im.size != (width, height):
            return False
        im.draft(im.mode, (width // scale, height // scale))
        im = pixels.load(im)
    except (DamagedImage, Undecodable, OSError, ValueError):
        return False
    gray = np.asarray(im.convert("L") if im.mode != "L" else im)
    content = classify(None, dpi * im.width / width, gray, im)
    return content.photo_share >= GLANCE_PHOTO_SHARE


def _samples(arr: np.ndarray | None, im: Image.Image | None) -> np.ndarray:
    """``arr``, or the H x W x C array of ``im`` when it is None."""
    if arr is not None:
        return arr
    assert im is not None
    return np.asarray(im).reshape(im.height, im.width, -1)


def _one(pdf: pikepdf.Pdf, scan: ScanImage, s: Settings, budget: Budget,
         entry: ScanPage) -> Writer:
    """Re-encode one scan image; what writes it in place (returning the objects made), or
    :class:`_Plain`."""
    if scan.shared:
        raise _Plain("the image is also drawn on a page that is not a scan")
    image = scan.image
    if image.get("/BitsPerComponent") == 1 and not image.get("/ImageMask", False):
        entry.content = "bitonal"
        raise _Plain("already 1-bit: the image step codes it (JBIG2 or G4)")
    if s.color_model != ColorModel.bitonal and _clearly_a_photo(image, scan.dpi, budget):
        entry.content = "photo"
        raise _Plain("a photograph: the image step encodes it")
    arr, decoded, gray_rgb = _pixels(image, budget)
    dpi = scan.dpi
    if s.lossy_images and dpi > MAX_SCAN_DPI * HYSTERESIS:
        # text needs no more than 300 dpi; the image step does the same for 1-bit scans
        arr, decoded = _resample(arr, decoded, MAX_SCAN_DPI / dpi)
        dpi, entry.resampled = MAX_SCAN_DPI, True
        if gray_rgb and decoded is not None:
            # the RGB image the resampled channel stands for (Pillow resamples each
            # channel of an RGB image as it does the one of an L image)
            decoded, gray_rgb = decoded.convert("RGB"), False
    if decoded is not None:
        gray = np.asarray(decoded.convert("L") if decoded.mode != "L" else decoded)
    else:
        gray = luminance(_samples(arr, decoded))
    content = classify(arr, dpi, gray, decoded)
    channels = 3 if gray_rgb else arr.shape[2] if arr is not None \
        else len(decoded.getbands())  # type: ignore[union-attr]
    if not s.color_detection and channels == 3 and not content.colour:
        # colour detection is off: a colour scan keeps colour layers whatever it holds
        content.colour = True
        if content.kind in ("gray_text", "bitonal"):
            content.kind = "color_text"
    entry.content = content.kind
    bitonal = s.color_model == ColorModel.bitonal
    if dpi < MIN_SCAN_DPI and not bitonal:
        raise _Plain(f"scanned at {dpi:.0f} dpi, below {MIN_SCAN_DPI}")
    if bitonal or (s.scan_bitonal and content.kind == "bitonal"):
        return _bitonal(image, gray, content, dpi, s, entry, forced=bitonal)
    if content.kind == "photo":
        raise _Plain("a photograph: the image step encodes it")
    if not s.mrc:
        raise _Plain(f"{content.kind.replace('_', ' ')}: MRC is off at this level")
    # only the MRC layers need the samples as an array (a JPEG's are made here; a gray
    # RGB image's three channels again)
    samples = _samples(arr, decoded)
    return _mrc(pdf, image, np.repeat(samples, 3, axis=2) if gray_rgb else samples, gray,
                content, dpi, s, entry)


def _resample(arr: np.ndarray | None, im: Image.Image | None,
              scale: float) -> tuple[None, Image.Image]:
    """``arr`` (or ``im``, the same pixels as a Pillow image) scaled by ``scale``, as a Pillow
    image (its array is made by :func:`_samples` when needed)."""
    if im is None:
        assert arr is not None
        height, width = arr.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        # (band by band: no full-size Pillow copy of the samples)
        return None, pixels.resized(arr, "L" if arr.shape[2] == 1 else "RGB", size)
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return None, pixels.resize(im, size)


def _bitonal(image: Stream, gray: np.ndarray, content: Content, dpi: float, s: Settings,
             entry: ScanPage, forced: bool) -> Writer:
    ink = binarize.binarize(gray, dpi, s.bitonal_threshold)
    if s.char_repair:
        ink = binarize.repair(ink)
    # an asked-for bitonal page is black on white; an automatic one keeps its paper and ink
    lo, hi = (0.0, 1.0) if forced else (content.ink / 255, content.paper / 255)
    layers = mrc.Layers(ink, Image.new("L", (1, 1), round(hi * 255)), None, (round(lo * 255),))
    entry.ssim = round(mrc.rendered_ssim(mrc.reduced(gray, dpi), mrc.compose_reduced(layers, dpi)), 4)
    if not forced and entry.ssim < s.scan_ssim:
        raise _Plain(f"bitonal SSIM {entry.ssim:.3f} < {s.scan_ssim}")
    height, width = ink.shape
    coded = bitonal.encode(ink, s.jbig2)
    if len(coded.data) >= entry.bytes_before:
        raise _Plain("the 1-bit image is not smaller")

    def write() -> set[tuple[int, int]]:
        image.write(coded.data, filter=coded.filter, decode_parms=coded.decode_parms)
        for key in ("/Interpolate", "/Intent", "/Alternates"):
            if key in image:
                del image[key]
        image.ColorSpace = Name.DeviceGray
        image.BitsPerComponent = 1
        image.Width, image.Height = width, height
        image.Decode = Array([round(lo, 4), round(hi, 4)])
        entry.method, entry.bytes_after = "bitonal", len(coded.data)
        entry.codec = coded.codec
        return {image.objgen}

    return write


def _mrc(pdf: pikepdf.Pdf, image: Stream, arr: np.ndarray, gray: np.ndarray, content: Content,
         dpi: float, s: Settings, entry: ScanPage) -> Writer:
    layers = mrc.split(arr, gray, content, dpi, s.mrc_background_dpi,
                       threshold=s.bitonal_threshold, repair=s.char_repair,
                       preserve_smoothing=s.mrc_preserve_smoothing)
    composed = mrc.compose_reduced(layers, dpi)
    entry.ssim = round(mrc.rendered_ssim(mrc.reduced(gray, dpi), composed), 4)
    if entry.ssim < s.scan_ssim:
        raise _Plain(f"MRC SSIM {entry.ssim:.3f} < {s.scan_ssim}")
    legible = mrc.legibility(gray, layers.mask, content)
    if legible < mrc.LEGIBILITY_FLOOR:
        raise _Plain(f"MRC mask keeps {legible:.0%} of the text edges "
                     f"(< {mrc.LEGIBILITY_FLOOR:.0%})")
    encoded = mrc.encode(layers, s.mrc_quality, s.jbig2)
    if encoded.size >= entry.bytes_before:
        raise _Plain("the MRC layers are not smaller")

    def write() -> set[tuple[int, int]]:
        made = mrc.write(pdf, image, layers, encoded)  # (on the caller's thread)
        entry.method, entry.bytes_after = "mrc", encoded.size
        entry.codec = encoded.mask.codec
        return {m.objgen for m in made}

    return write
