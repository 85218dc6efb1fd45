"""Which pages are scans: one image covering the page, perhaps under an invisible OCR layer.

A scanned page is what a scanner or an OCR tool writes: its content draws one
image over (nearly) the whole page, and at most some invisible text (text
rendering mode 3 or 7, the OCR layer) a few painted paths (a white
background rectangle) and a line or two of visible text (a footer or stamp
added later).  More visible text, shadings, inline images or a second image
make the page a drawn ("vector") page, left to the normal image step.

The page content is not rewritten by the scan step: it re-encodes the image
XObject in place, so the OCR layer keeps its exact positions.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Dictionary, Name, Stream

from squeezer.engines.pdf.contentstream import PARSE_ERRORS

#: A PDF transformation matrix [a b c d e f] (§8.3.4); translation matters here (coverage).
Matrix = tuple[float, float, float, float, float, float]
IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def multiply(m: Matrix, n: Matrix) -> Matrix:
    """``m`` then ``n`` (the ``cm`` rule: the new CTM is m x CTM)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + b * c2, a * b2 + b * d2, c * a2 + d * c2, c * b2 + d * d2,
            e * a2 + f * c2 + e2, e * b2 + f * d2 + f2)

#: The image must cover at least this share of the page's crop box.
MIN_COVERAGE = 0.8
#: Painted paths a scan page may still have (a background rectangle, a border).
MAX_PATHS = 4
#: Visible text a scan page may still draw over its image (a footer, a stamp, a Bates number);
#: more is a born-digital page with a picture.
MAX_VISIBLE_TEXT = 20
#: Form XObjects are followed this deep looking for the page image.
MAX_DEPTH = 3
#: A page none of whose images (its own or its forms') has the pixels to cover the page at
#: this resolution is not a scan, and its content is not parsed: a scan needs more to be
#: legible, and parsing the pages that only draw a logo or an icon was 60 % of this step's
#: content parsing on the corpus.
MIN_CANDIDATE_DPI = 50

_PAINT = {"f", "F", "f*", "B", "B*", "b", "b*", "S", "s"}
_SHOW = {"Tj", "TJ", "'", '"'}
_INVISIBLE_MODES = {3, 7}
#: The operators :func:`_walk` looks at; pikepdf builds objects for these only (a text page's
#: positioning and font operators are most of its instructions).  "BI ID EI" returns inline
#: images (as ``ContentStreamInlineImage``).
_OPERATORS = "q Q cm Tr Tj TJ ' \" f F f* B B* b b* S s sh Do BI ID EI"


@dataclass
class PageDraw:
    """What one page's content paints, as far as scan detection cares."""

    images: list[tuple[Stream, Matrix]] = field(default_factory=list)
    visible_text: int = 0  #: text-showing operators with visible glyphs
    invisible_text: bool = False
    paths: int = 0
    other: bool = False  #: shadings, inline images, unreadable content


@dataclass
class ScanImage:
    """An image XObject that is the whole of one or more scanned pages."""

    image: Stream
    pages: list[int]  #: 0-based page indexes
    dpi: float  #: the lowest resolution it is drawn at
    ocr_layer: bool
    #: also drawn on a page that is not a scan (such an image is left to the image step)
    shared: bool = False


def _operands(operands: Iterable[pikepdf.Object | float], count: int) -> list[float] | None:
    try:
        values = [float(v) for v in operands]
    except (TypeError, ValueError):
        return None
    return values if len(values) == count else None


def _resources(holder: Dictionary | Stream) -> Dictionary | None:
    res = holder.get("/Resources")
    return res if isinstance(res, Dictionary) else None


def _walk(source: pikepdf.Object, resources: Dictionary | None, ctm: Matrix, draw: PageDraw,
          depth: int) -> None:
    try:
        instructions = pikepdf.parse_content_stream(source, _OPERATORS)
    except PARSE_ERRORS:
        draw.other = True
        return
    xobjects = resources.get("/XObject") if resources is not None else None
    stack: list[tuple[Matrix, int]] = []
    mode = 0
    for instruction in instructions:
        if isinstance(instruction, pikepdf.ContentStreamInlineImage):
            draw.other = True
            continue
        try:
            op = str(instruction.operator)
        except UnicodeDecodeError:  # garbage in a damaged stream
            draw.other = True
            continue
        operands = instruction.operands
        if op == "q":
            stack.append((ctm, mode))
        elif op == "Q":
            if stack:
                ctm, mode = stack.pop()
        elif op == "cm":
            m = _operands(operands, 6)
            if m is not None:
                ctm = multiply(tuple(m), ctm)  # type: ignore[arg-type]
        elif op == "Tr":
            m = _operands(operands, 1)
            mode = int(m[0]) if m else 0
        elif op in _SHOW:
            if mode in _INVISIBLE_MODES:
                draw.invisible_text = True
            else:
                draw.visible_text += 1
        elif op in _PAINT:
            draw.paths += 1
        elif op in ("sh", "BI"):
            draw.other = True
        elif op == "Do" and operands and isinstance(xobjects, Dictionary):
            xobject = xobjects.get(str(operands[0]))
            if not isinstance(xobject, Stream):
                continue
            subtype = xobject.get("/Subtype")
            if subtype == Name.Image:
                draw.images.append((xobject, ctm))
            elif subtype == Name.Form and depth < MAX_DEPTH:
                matrix = _operands(xobject.get("/Matrix", [1, 0, 0, 1, 0, 0]), 6) or IDENTITY
                _walk(xobject, _resources(xobject) or resources,
                      multiply(tuple(matrix), ctm), draw, depth + 1)  # type: ignore[arg-type]
            else:
                draw.other = True


def page_draw(page: pikepdf.Page) -> PageDraw:
    """Follow ``page``'s content (and the form XObjects it runs) and record what it paints."""
    draw = PageDraw()
    _walk(page.obj, _resources(page.obj), IDENTITY, draw, 0)
    return draw


def _box(page: pikepdf.Page) -> tuple[float, float, float, float]:
    box = page.obj.get("/CropBox") or page.obj.get("/MediaBox") or [0, 0, 612, 792]
    try:
        x0, y0, x1, y1 = (float(v) for v in box)
    except (TypeError, ValueError):
        x0, y0, x1, y1 = 0.0, 0.0, 612.0, 792.0
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)


def coverage(m: Matrix, page_box: tuple[float, float, float, float]) -> float:
    """Share of ``page_box`` covered by the bounding box of the unit square under ``m``."""
    a, b, c, d, e, f = m
    xs = [e, a + e, c + e, a + c + e]
    ys = [f, b + f, d + f, b + d + f]
    x0, y0, x1, y1 = page_box
    area = (x1 - x0) * (y1 - y0)
    if area <= 0:
        return 0.0
    w = max(0.0, min(max(xs), x1) - max(min(xs), x0))
    h = max(0.0, min(max(ys), y1) - max(min(ys), y0))
    return w * h / area


def drawn_dpi(image: Stream, m: Matrix) -> float:
    """The lower of the image's two resolutions where ``m`` draws it (pixels per inch)."""
    a, b, c, d, _, _ = m
    try:
        width, height = int(image.get("/Width", 0)), int(image.get("/Height", 0))
    except (TypeError, ValueError):
        return 0.0
    across = (a * a + b * b) ** 0.5 / 72.0
    down = (c * c + d * d) ** 0.5 / 72.0
    if across <= 0 or down <= 0:
        return 0.0
    return min(width / across, height / down)


def _could_be_scan(page: pikepdf.Page, reachable: set[tuple[int, int]]) -> bool:
    """Whether an image the page can draw has the pixels of a scan of it (:data:`MIN_CANDIDATE_DPI`).

    Read from the resources alone, without the content; ``reachable`` receives
    the objects looked at.  The drawn area may be half the bounding box that
    covers the page (a rotated image), hence the 0.5.
    """
    x0, y0, x1, y1 = _box(page)
    needed = 0.5 * MIN_COVERAGE * (x1 - x0) * (y1 - y0) / (72 * 72) * MIN_CANDIDATE_DPI ** 2
    return _largest_image(_resources(page.obj), 0, reachable) >= needed


def _largest_image(resources: Dictionary | None, depth: int, seen: set[tuple[int, int]]) -> int:
    """Pixels of the largest image XObject in ``resources`` or those of its forms."""
    xobjects = resources.get("/XObject") if resources is not None else None
    if not isinstance(xobjects, Dictionary):
        return 0
    largest = 0
    for name in list(xobjects.keys()):
        xobject = xobjects.get(name)
        if not isinstance(xobject, Stream) or xobject.objgen in seen:
            continue
        seen.add(xobject.objgen)
        subtype = xobject.get("/Subtype")
        if subtype == Name.Image:
            try:
                pixels = int(xobject.get("/Width", 0)) * int(xobject.get("/Height", 0))
            except (TypeError, ValueError):
                continue
            largest = max(largest, pixels)
        elif subtype == Name.Form and depth < MAX_DEPTH:
            largest = max(largest, _largest_image(_resources(xobject), depth + 1, seen))
    return largest


def find_scans(pdf: pikepdf.Pdf) -> tuple[dict[tuple[int, int], ScanImage], int]:
    """Scanned pages' images by object, and the number of pages that are not scans.

    An image also drawn on a page that is not a scan is marked ``shared``: its
    other use would get the MRC layers too, so it stays on the plain path.
    """
    scans: dict[tuple[int, int], ScanImage] = {}
    excluded: set[tuple[int, int]] = set()
    vector = 0
    for index, page in enumerate(pdf.pages):
        reachable: set[tuple[int, int]] = set()
        if not _could_be_scan(page, reachable):
            vector += 1  # no image to be a scan of: not worth parsing the content
            excluded |= reachable  # (an image it may draw is not a scan's alone)
            continue
        draw = page_draw(page)
        scan = (len(draw.images) == 1 and draw.visible_text <= MAX_VISIBLE_TEXT and not draw.other
                and draw.paths <= MAX_PATHS)
        if scan:
            image, m = draw.images[0]
            scan = image.is_indirect and coverage(m, _box(page)) >= MIN_COVERAGE
        if not scan:
            vector += 1
            excluded.update(img.objgen for img, _ in draw.images if img.is_indirect)
            continue
        dpi = drawn_dpi(image, m)
        found = scans.get(image.objgen)
        if found is None:
            scans[image.objgen] = ScanImage(image, [index], dpi, draw.invisible_text)
        else:
            found.pages.append(index)
            found.dpi = min(found.dpi, dpi)
            found.ocr_layer = found.ocr_layer or draw.invisible_text
    for objgen in excluded & scans.keys():
        scans[objgen].shared = True
    return scans, vector
