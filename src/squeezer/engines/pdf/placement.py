"""Effective resolution of each image XObject, from where the document draws it.

An image's pixel count says nothing about how sharp it looks: 3000 pixels
squeezed into one inch are 3000 dpi, the same pixels spread over a poster are
30.  Downsampling "to 150 dpi" therefore needs, for every image XObject, the
size at which it is painted.  This module interprets the parts of each content
stream that decide it (ISO 32000-1 §8.3 coordinate systems, §8.4.4 ``q``/``Q``/
``cm``, §8.8 ``Do``) and reports the highest resolution at which each image is
drawn anywhere.

Only the linear part ``[a b c d]`` of a transformation matrix changes a size;
translations are dropped, so a form or image drawn at a thousand positions but
one size is one entry.  What a form XObject, tiling pattern, Type 3 glyph or
appearance stream draws is computed once, relative to its own coordinate
space, and composed with each placement: big documents that repeat a logo or
a letterhead on every page stay fast.

An image this module cannot place (drawn only from places it does not follow,
or at more sizes than it keeps track of) is left out of the result.  Callers
must read "absent" as "resolution unknown: do not downsample".
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field

import pikepdf
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.budget import Budget
from squeezer.engines.pdf.contentstream import PARSE_ERRORS

ObjGen = tuple[int, int]
#: The linear part ``(a, b, c, d)`` of a PDF matrix ``[a b c d e f]`` (row-vector convention).
Linear = tuple[float, float, float, float]

IDENTITY: Linear = (1.0, 0.0, 0.0, 1.0)
#: Default user space unit: 1/72 inch (§8.3.2.3), scaled by the page's /UserUnit.
POINTS_PER_INCH = 72.0
#: Nesting of forms, patterns and glyphs followed; deeper content is not looked at.
MAX_DEPTH = 32
#: Distinct sizes of one image kept per content stream; beyond it the image is "unknown".
MAX_SIZES = 1024
#: A drawn extent below this (in points) or a collapsed area means the image is not visible.
MIN_EXTENT = 1e-6
#: Default glyph space of a Type 3 font lacking a usable /FontMatrix (1000 units per em).
TYPE3_FONT_MATRIX: Linear = (0.001, 0.0, 0.0, 0.001)
#: Appearance streams of an annotation (§12.5.5): normal, rollover, down.  All can be shown.
APPEARANCE_KEYS = ("/N", "/R", "/D")

_BASE_OPERATORS = "q Q cm Do"
_PATTERN_OPERATORS = "scn SCN"
_EXTGSTATE_OPERATORS = "gs"
_TEXT_OPERATORS = "BT Tm Tf Tz Tj TJ ' \""
_SHOW_TEXT = frozenset(("Tj", "TJ", "'", '"'))


@dataclass(frozen=True)
class Placement:
    """How an image XObject is drawn across the whole document.

    Resolutions are along the image's own axes (its rows and columns), which
    is what downsampling changes, whatever the rotation on the page.
    """

    dpi_x: float  #: highest effective horizontal pixels per inch over every use
    dpi_y: float  #: highest effective vertical pixels per inch over every use
    uses: int  #: how many times it is drawn
    #: lowest effective resolutions over every use: the largest it is drawn, which is where a
    #: reader sees the most of it (the image step's quality search looks at it there)
    min_dpi_x: float = field(default=0.0, compare=False)
    min_dpi_y: float = field(default=0.0, compare=False)


def image_placements(pdf: pikepdf.Pdf, budget: Budget | None = None) -> dict[ObjGen, Placement]:
    """Map each drawn image XObject's objgen to its highest effective resolution.

    Follows page content, form XObjects (with their /Matrix), tiling patterns,
    ExtGState soft-mask groups, Type 3 glyph procedures and annotation
    appearance streams.  An image's /SMask (and stencil /Mask) gets the
    placement of its parent, scaled by the ratio of their pixel dimensions.
    Damaged content is skipped, never raised; images whose placement is not
    known are absent.
    """
    walker = _Walker(budget)
    tally = _Tally(walker)
    with warnings.catch_warnings():
        # qpdf reports every recoverable defect of a content stream as a warning
        warnings.simplefilter("ignore")
        try:
            pages = list(pdf.pages)
        except pikepdf.PdfError:
            return {}
        for page in pages:
            if budget is not None:
                budget.check_time()
            try:
                drawn = walker.page(page.obj)
            except pikepdf.PdfError:
                continue  # an object of the page is beyond repair; its images stay unknown
            tally.add(drawn, _user_unit(page.obj))
    return tally.placements()


# --- matrices ------------------------------------------------------------------------------


def multiply(m: Linear, n: Linear) -> Linear:
    """``m × n``: apply ``m``, then ``n`` (PDF matrices act on row vectors)."""
    a, b, c, d = m
    e, f, g, h = n
    return (a * e + b * g, a * f + b * h, c * e + d * g, c * f + d * h)


def _number(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _numbers(values: object, count: int) -> list[float] | None:
    """``count`` finite numbers from an operand list or array, or None."""
    try:
        items = list(values)  # type: ignore[call-overload]
    except (TypeError, pikepdf.PdfError):
        return None
    if len(items) != count:
        return None
    numbers = [_number(item) for item in items]
    return None if any(n is None for n in numbers) else numbers  # type: ignore[return-value]


def _linear_operands(operands: object) -> Linear | None:
    """The linear part of the six operands of ``cm`` or ``Tm``; None when malformed.

    The fast path of :func:`_numbers`: these two operators are most of what is parsed.
    """
    try:
        if len(operands) != 6:  # type: ignore[arg-type]
            return None
        a, b, c, d = (float(operands[0]), float(operands[1]),  # type: ignore[index]
                      float(operands[2]), float(operands[3]))  # type: ignore[index]
    except (TypeError, ValueError, OverflowError):
        return None
    # one non-finite number makes the sum non-finite
    return (a, b, c, d) if math.isfinite(a + b + c + d) else None


def _matrix(holder: Stream | Dictionary, key: str, default: Linear = IDENTITY) -> Linear:
    """The linear part of the matrix stored at ``key``; ``default`` when absent or malformed."""
    numbers = _numbers(holder.get(key), 6)
    return default if numbers is None else (numbers[0], numbers[1], numbers[2], numbers[3])


def resolution(width: int, height: int, m: Linear) -> tuple[float, float] | None:
    """Pixels per inch of a ``width`` x ``height`` image whose unit square is mapped by ``m``.

    The image's x axis becomes the vector ``(a, b)`` and its y axis ``(c, d)``
    (§8.9.4), in units of 1/72 inch.  None when the image is not visibly drawn:
    collapsed to a line or a point, or mapped by a matrix that is not finite.
    """
    a, b, c, d = m
    drawn_width = math.hypot(a, b)
    drawn_height = math.hypot(c, d)
    area = abs(a * d - b * c)
    if not (math.isfinite(drawn_width) and math.isfinite(drawn_height) and math.isfinite(area)):
        return None
    if drawn_width < MIN_EXTENT or drawn_height < MIN_EXTENT or area < MIN_EXTENT * MIN_EXTENT:
        return None
    return width * POINTS_PER_INCH / drawn_width, height * POINTS_PER_INCH / drawn_height


def _user_unit(page: Dictionary) -> float:
    """Size of the page's user space unit in points (§14.11.2, PDF 1.6 /UserUnit)."""
    unit = _number(page.get("/UserUnit", 1))
    return unit if unit is not None and unit > 0 else 1.0


# --- what a content stream draws -------------------------------------------------------------


class _Drawn:
    """The distinct sizes at which one image is drawn within one coordinate space.

    ``sizes`` maps each matrix to how many times it is used.  It is None once
    there were more than :data:`MAX_SIZES` sizes: the image is then "unknown"
    (what a cached form draws must not grow without bound).
    """

    __slots__ = ("sizes",)

    def __init__(self) -> None:
        self.sizes: dict[Linear, int] | None = {}

    def add(self, m: Linear, count: int) -> None:
        sizes = self.sizes
        if sizes is not None:
            sizes[m] = sizes.get(m, 0) + count
            if len(sizes) > MAX_SIZES:
                self.sizes = None


#: image objgen -> where it is drawn, relative to one content stream's coordinate space
Uses = dict[ObjGen, _Drawn]
#: a selected Type 3 font: (key, its /FontMatrix, computes what its glyphs draw)
_Type3 = tuple[Hashable, Linear, Callable[[], Uses]]


class _Draws:
    """What one content stream paints, before nested streams are resolved.

    Each distinct (nested stream, matrix) pair is kept once with a count, so a
    form drawn a thousand times at one size is composed once.
    """

    __slots__ = ("images", "nested")

    def __init__(self) -> None:
        self.images: dict[ObjGen, dict[Linear, int]] = {}
        #: key -> (computes the nested stream's uses, {matrix into this space: count})
        self.nested: dict[Hashable, tuple[Callable[[], Uses], dict[Linear, int]]] = {}

    def image(self, objgen: ObjGen, m: Linear) -> None:
        sizes = self.images.setdefault(objgen, {})
        sizes[m] = sizes.get(m, 0) + 1

    def stream(self, key: Hashable, uses: Callable[[], Uses], m: Linear) -> None:
        entry = self.nested.get(key)
        if entry is None:
            entry = self.nested[key] = (uses, {})
        entry[1][m] = entry[1].get(m, 0) + 1


def _compose(draws: _Draws) -> Uses:
    """Resolve nested streams and express every image use in the drawing stream's space."""
    result: Uses = {}
    drawn: _Drawn | None
    for objgen, sizes in draws.images.items():
        drawn = result[objgen] = _Drawn()
        for m, count in sizes.items():
            drawn.add(m, count)
    for uses, placed in draws.nested.values():
        for objgen, inner in uses().items():
            drawn = result.get(objgen)
            if drawn is None:
                drawn = result[objgen] = _Drawn()
            if inner.sizes is None:
                drawn.sizes = None
                continue
            for outer, times in placed.items():
                for m, count in inner.sizes.items():
                    drawn.add(multiply(m, outer), count * times)
                if drawn.sizes is None:
                    break
    return result


# --- resources ---------------------------------------------------------------------------


class _Resources:
    """Name lookups in one resource dictionary (§7.8.3), and which operators matter for it.

    Operators that cannot reach an image here (pattern colours without a
    /Pattern entry, text without a Type 3 font) are not even tokenised.
    """

    def __init__(self, resources: object, key: Hashable) -> None:
        self.key = key
        self.dict = resources if isinstance(resources, Dictionary) else Dictionary()
        self.xobjects = self._category("/XObject")
        self.patterns = self._category("/Pattern")
        self.extgstates = self._category("/ExtGState")
        self.fonts = self._category("/Font")
        operators = [_BASE_OPERATORS]
        if self.patterns is not None:
            operators.append(_PATTERN_OPERATORS)
        if self.extgstates is not None and any(
            isinstance(gs, Dictionary) and isinstance(gs.get("/SMask"), Dictionary)
            for gs in self.extgstates.values()
        ):
            operators.append(_EXTGSTATE_OPERATORS)
        if self.fonts is not None and any(
            isinstance(font, Dictionary) and font.get("/Subtype") == Name.Type3
            for font in self.fonts.values()
        ):
            operators.append(_TEXT_OPERATORS)
        self.operators = " ".join(operators)
        #: whether a content stream using these resources can draw an image XObject at all:
        #: through an XObject, a tiling pattern, a soft mask group or a Type 3 glyph
        self.can_draw_images = self.xobjects is not None or len(operators) > 1

    def _category(self, name: str) -> Dictionary | None:
        category = self.dict.get(name)
        return category if isinstance(category, Dictionary) and len(category) else None

    @staticmethod
    def lookup(category: Dictionary | None, name: object) -> object:
        if category is None or not isinstance(name, Name):
            return None
        return category.get(name)


# --- the walk ------------------------------------------------------------------------------


class _Walker:
    """Interprets content streams, caching what each reusable stream draws."""

    def __init__(self, budget: Budget | None = None) -> None:
        self.budget = budget
        #: objgen -> (width, height, the image stream) of every image met
        self.images: dict[ObjGen, tuple[int, int, Stream]] = {}
        self._uses: dict[Hashable, Uses] = {}
        self._active: set[Hashable] = set()
        self._resources: dict[Hashable, _Resources] = {}

    # resources are shared by many pages and forms: build each lookup table once
    def resources(self, holder: Dictionary | Stream,
                  inherited: _Resources | None) -> _Resources | None:
        own = holder.get("/Resources")
        if not isinstance(own, Dictionary):
            return inherited
        owner = own if own.is_indirect else holder
        if not owner.is_indirect:
            return _Resources(own, None)
        key = ("res", owner.objgen)
        found = self._resources.get(key)
        if found is None:
            found = self._resources[key] = _Resources(own, key)
        return found

    def page_resources(self, page: Dictionary) -> _Resources | None:
        """The page's /Resources, inherited from the page tree when absent (§7.7.3.4)."""
        node: object = page
        seen: set[ObjGen] = set()
        while isinstance(node, Dictionary) and len(seen) < MAX_DEPTH:
            if isinstance(node.get("/Resources"), Dictionary):
                return self.resources(node, None)
            if node.is_indirect:
                if node.objgen in seen:
                    break
                seen.add(node.objgen)
            node = node.get("/Parent")
        return None

    def page(self, page: Dictionary) -> Uses:
        """Where the page (content and annotation appearances) draws each image, in user space."""
        resources = self.page_resources(page)
        draws = _Draws()
        contents = page.get("/Contents")
        parts = contents if isinstance(contents, Array) else [contents]
        # pages that share their content streams and resources draw the same
        objgens = tuple(p.objgen for p in parts if isinstance(p, Stream))
        key: Hashable = ("page", objgens, resources.key if resources else None)
        cacheable = bool(objgens) and (0, 0) not in objgens and (resources is None or resources.key)
        content = self._uses.get(key) if cacheable else None
        if content is None:
            content = self._page_content(page, resources)
            if cacheable:
                self._uses[key] = content
        draws.stream("contents", lambda: content, IDENTITY)
        for appearance, m in _appearances(page):
            self._nested(draws, appearance, resources, m, 0)
        return _compose(draws)

    def _page_content(self, page: Dictionary, resources: _Resources | None) -> Uses:
        draws = _Draws()
        self._interpret(page, resources, draws, 0)
        return _compose(draws)

    def stream_uses(self, stream: Stream, inherited: _Resources | None, depth: int) -> Uses:
        """What ``stream`` (a form, pattern or glyph) draws, in its own coordinate space."""
        if depth > MAX_DEPTH:
            return {}
        if self.budget is not None:
            self.budget.check_time()  # one page may nest many forms
        resources = self.resources(stream, inherited)
        key = None
        if stream.is_indirect and (resources is None or resources.key is not None):
            key = (stream.objgen, resources.key if resources else None)
            cached = self._uses.get(key)
            if cached is not None:
                return cached
            if key in self._active:
                return {}  # the stream draws itself: readers stop there too
            self._active.add(key)
        try:
            draws = _Draws()
            self._interpret(stream, resources, draws, depth)
            uses = _compose(draws)
        finally:
            if key is not None:
                self._active.discard(key)
        if key is not None:
            self._uses[key] = uses
        return uses

    def _nested(self, draws: _Draws, stream: Stream, inherited: _Resources | None,
                m: Linear, depth: int) -> None:
        """Record ``stream`` (whose own space maps into the drawing space by ``m``) as drawn."""
        key: Hashable = object()  # a direct stream cannot be recognised when met again
        if stream.is_indirect:
            key = (stream.objgen, inherited.key if inherited else None)
        draws.stream(key, lambda: self.stream_uses(stream, inherited, depth + 1), m)

    def _type3_uses(self, font: Dictionary, inherited: _Resources | None, depth: int) -> Uses:
        """Everything the glyph procedures of a Type 3 font draw, in glyph space (§9.6.5)."""
        procs = font.get("/CharProcs")
        if not isinstance(procs, Dictionary) or depth > MAX_DEPTH:
            return {}
        resources = self.resources(font, inherited)
        key = None
        if font.is_indirect and (resources is None or resources.key is not None):
            key = ("type3", font.objgen, resources.key if resources else None)
            cached = self._uses.get(key)
            if cached is not None:
                return cached
        draws = _Draws()
        for proc in procs.values():
            if isinstance(proc, Stream):
                self._nested(draws, proc, resources, IDENTITY, depth)
        uses = _compose(draws)
        for drawn in uses.values():
            # one text-showing operator is one use of each image, whatever the glyph count
            if drawn.sizes is not None:
                drawn.sizes = dict.fromkeys(drawn.sizes, 1)
        if key is not None:
            self._uses[key] = uses
        return uses

    def _parse(self, source: Dictionary | Stream, operators: str) -> list:
        """The instructions of ``source`` (a page's contents are one stream, §7.8.2).

        When the page's concatenated contents cannot be read, each of its
        streams is tried alone so that one damaged stream loses only itself.
        """
        try:
            return pikepdf.parse_content_stream(source, operators)
        except PARSE_ERRORS:
            pass
        contents = source.get("/Contents") if not isinstance(source, Stream) else None
        instructions: list = []
        for part in contents if isinstance(contents, Array) else []:
            if isinstance(part, Stream):
                try:
                    instructions.extend(pikepdf.parse_content_stream(part, operators))
                except PARSE_ERRORS:
                    continue
        return instructions

    def _interpret(self, source: Dictionary | Stream, resources: _Resources | None,
                   draws: _Draws, depth: int) -> None:
        """Follow the graphics state of one content stream and record what it paints."""
        if resources is None or not resources.can_draw_images:
            return  # nothing it could name draws an image: not worth tokenising
        operators = resources.operators
        ctm = IDENTITY
        stack: list[tuple[Linear, _Type3 | None, float, float]] = []
        # text state (§9.3): font, size and horizontal scaling are graphics state; Tm is not
        font: _Type3 | None = None
        size, scaling, tm = 1.0, 1.0, IDENTITY
        for instruction in self._parse(source, operators):
            operator = str(instruction.operator)
            operands = instruction.operands
            if operator == "cm":
                m = _linear_operands(operands)
                if m is not None:
                    ctm = multiply(m, ctm)
            elif operator == "q":
                stack.append((ctm, font, size, scaling))
            elif operator == "Q":
                if stack:
                    ctm, font, size, scaling = stack.pop()
            elif operator == "Do":
                if resources is not None and operands:
                    self._do(draws, _Resources.lookup(resources.xobjects, operands[-1]),
                             resources, ctm, depth)
            elif operator in ("scn", "SCN"):
                if resources is not None and operands:
                    pattern = _Resources.lookup(resources.patterns, operands[-1])
                    if isinstance(pattern, Stream) and pattern.get("/PatternType") == 1:
                        # pattern space maps to the stream's default space, not the CTM (§8.7.3.1)
                        self._nested(draws, pattern, resources, _matrix(pattern, "/Matrix"), depth)
            elif operator == "gs":
                if resources is not None and operands:
                    self._soft_mask(draws, _Resources.lookup(resources.extgstates, operands[-1]),
                                    resources, ctm, depth)
            elif operator == "BT":
                tm = IDENTITY
            elif operator == "Tm":
                m = _linear_operands(operands)
                if m is not None:
                    tm = m
            elif operator == "Tf":
                if len(operands) == 2 and resources is not None:
                    font = self._type3(resources, operands[0], depth)
                    size = _number(operands[1]) or 0.0
            elif operator == "Tz":
                if len(operands) == 1:
                    scaling = (_number(operands[0]) or 0.0) / 100.0
            elif operator in _SHOW_TEXT and font is not None:
                # glyph space -> text space -> user space (§9.4.4)
                key, font_matrix, uses = font
                rendering = multiply(multiply((size * scaling, 0.0, 0.0, size), tm), ctm)
                draws.stream(key, uses, multiply(font_matrix, rendering))

    def _do(self, draws: _Draws, xobject: object, resources: _Resources, ctm: Linear,
            depth: int) -> None:
        """``Do``: paint an image XObject, or run a form XObject's content (§8.8, §8.10)."""
        if not isinstance(xobject, Stream):
            return
        subtype = xobject.get("/Subtype")
        if subtype == Name.Image:
            if self._image(xobject):
                draws.image(xobject.objgen, ctm)
        elif subtype == Name.Form:
            m = multiply(_matrix(xobject, "/Matrix"), ctm)
            self._nested(draws, xobject, resources, m, depth)

    def _image(self, image: Stream) -> bool:
        """Remember an image's pixel size; False when it cannot be keyed or sized."""
        if not image.is_indirect:
            return False
        if image.objgen in self.images:
            return True
        width, height = _number(image.get("/Width")), _number(image.get("/Height"))
        if not width or not height or width < 1 or height < 1:
            return False
        self.images[image.objgen] = (int(width), int(height), image)
        return True

    def _soft_mask(self, draws: _Draws, extgstate: object, resources: _Resources,
                   ctm: Linear, depth: int) -> None:
        """``gs`` with a soft mask: its group is painted in the current space (§11.6.5.2)."""
        if not isinstance(extgstate, Dictionary):
            return
        mask = extgstate.get("/SMask")
        if not isinstance(mask, Dictionary):
            return
        group = mask.get("/G")
        if isinstance(group, Stream):
            self._nested(draws, group, resources, multiply(_matrix(group, "/Matrix"), ctm), depth)

    def _type3(self, resources: _Resources, name: object, depth: int) -> _Type3 | None:
        """``Tf`` selecting a Type 3 font: what showing text in it draws (§9.6.5).

        Which glyphs are shown is not decoded: every glyph of the font counts
        as drawn at the text rendering matrix, which over-reports (safe) and
        keeps the cost at one entry per font and size.
        """
        font = _Resources.lookup(resources.fonts, name)
        if not isinstance(font, Dictionary) or font.get("/Subtype") != Name.Type3:
            return None
        key = ("type3", font.objgen if font.is_indirect else object(), resources.key)
        return (key, _matrix(font, "/FontMatrix", TYPE3_FONT_MATRIX),
                lambda: self._type3_uses(font, resources, depth + 1))


# --- annotations ---------------------------------------------------------------------------


def _appearances(page: Dictionary) -> Iterator[tuple[Stream, Linear]]:
    """Each appearance stream of the page's annotations, with its matrix into user space.

    §12.5.5: the form's /BBox, transformed by its /Matrix, is fitted to the
    annotation's /Rect by a scale and translation A; the form is drawn with
    /Matrix × A.
    """
    annots = page.get("/Annots")
    if not isinstance(annots, Array):
        return
    for annot in annots:
        if not isinstance(annot, Dictionary):
            continue
        ap = annot.get("/AP")
        rect = _numbers(annot.get("/Rect"), 4)
        if not isinstance(ap, Dictionary) or rect is None:
            continue
        for key in APPEARANCE_KEYS:
            entry = ap.get(key)
            # either one stream or a dictionary of appearance states (a checkbox's /On, /Off)
            states = [entry] if isinstance(entry, Stream) else (
                list(entry.values()) if isinstance(entry, Dictionary) else [])
            for form in states:
                if isinstance(form, Stream):
                    m = _fit_to_rect(form, rect)
                    if m is not None:
                        yield form, m


def _fit_to_rect(form: Stream, rect: list[float]) -> Linear | None:
    bbox = _numbers(form.get("/BBox"), 4)
    matrix = _numbers(form.get("/Matrix"), 6) or [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]
    if bbox is None:
        return None
    a, b, c, d, e, f = matrix
    corners = [(x, y) for x in (bbox[0], bbox[2]) for y in (bbox[1], bbox[3])]
    xs = [a * x + c * y + e for x, y in corners]
    ys = [b * x + d * y + f for x, y in corners]
    box_width, box_height = max(xs) - min(xs), max(ys) - min(ys)
    rect_width, rect_height = abs(rect[2] - rect[0]), abs(rect[3] - rect[1])
    if box_width <= 0 or box_height <= 0:
        return None
    fit = (rect_width / box_width, 0.0, 0.0, rect_height / box_height)
    return multiply((a, b, c, d), fit)


# --- the result ----------------------------------------------------------------------------


class _Tally:
    """The highest resolution and use count of each image over every page."""

    def __init__(self, walker: _Walker) -> None:
        self.walker = walker
        # objgen -> [dpi_x, dpi_y, uses, min_dpi_x, min_dpi_y]
        self.best: dict[ObjGen, list[float]] = {}
        self.unknown: set[ObjGen] = set()

    def add(self, uses: Uses, user_unit: float) -> None:
        """Fold one page's uses; ``user_unit`` converts its user space to points."""
        for objgen, drawn in uses.items():
            if drawn.sizes is None:
                self.unknown.add(objgen)
                continue
            width, height, _ = self.walker.images[objgen]
            for m, count in drawn.sizes.items():
                a, b, c, d = m
                dpi = resolution(width, height, (a * user_unit, b * user_unit,
                                                 c * user_unit, d * user_unit))
                if dpi is not None:
                    self._merge(objgen, dpi[0], dpi[1], count)

    def _merge(self, objgen: ObjGen, dpi_x: float, dpi_y: float, uses: int,
               min_x: float | None = None, min_y: float | None = None) -> None:
        low_x = dpi_x if min_x is None else min_x
        low_y = dpi_y if min_y is None else min_y
        best = self.best.get(objgen)
        if best is None:
            self.best[objgen] = [dpi_x, dpi_y, uses, low_x, low_y]
        else:
            best[0], best[1] = max(best[0], dpi_x), max(best[1], dpi_y)
            best[2] += uses
            best[3], best[4] = min(best[3], low_x), min(best[4], low_y)

    def placements(self) -> dict[ObjGen, Placement]:
        self._masks()
        return {
            objgen: Placement(dpi_x=dpi_x, dpi_y=dpi_y, uses=int(uses),
                              min_dpi_x=min_x, min_dpi_y=min_y)
            for objgen, (dpi_x, dpi_y, uses, min_x, min_y) in self.best.items()
            if objgen not in self.unknown
        }

    def _masks(self) -> None:
        """Give each /SMask and stencil /Mask image the placement of the image it masks.

        A mask covers its parent's unit square, so it is drawn at the same size:
        its resolution is the parent's scaled by their pixel-count ratio (§11.6.5.3).
        """
        for objgen, (dpi_x, dpi_y, uses, min_x, min_y) in list(self.best.items()):
            width, height, image = self.walker.images[objgen]
            for key in ("/SMask", "/Mask"):
                mask = image.get(key)
                if not isinstance(mask, Stream) or not mask.is_indirect:
                    continue
                mask_width, mask_height = _number(mask.get("/Width")), _number(mask.get("/Height"))
                if not mask_width or not mask_height or mask_width < 1 or mask_height < 1:
                    continue
                if mask.objgen not in self.walker.images:
                    self.walker.images[mask.objgen] = (int(mask_width), int(mask_height), mask)
                if objgen in self.unknown:
                    self.unknown.add(mask.objgen)
                self._merge(mask.objgen, dpi_x * mask_width / width,
                            dpi_y * mask_height / height, int(uses),
                            min_x * mask_width / width, min_y * mask_height / height)
        for objgen in list(self.unknown):
            entry = self.walker.images.get(objgen)
            if entry is not None:
                for key in ("/SMask", "/Mask"):
                    mask = entry[2].get(key)
                    if isinstance(mask, Stream) and mask.is_indirect:
                        self.unknown.add(mask.objgen)
