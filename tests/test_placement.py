"""Effective image resolution from where each image is drawn (engines/pdf/placement.py).

Every case builds a real PDF with pikepdf, saves it and opens it again, so the
module reads objects the way it reads a user's file.  Sizes are chosen so the
expected resolutions are round numbers: 600 pixels over 72 points is 600 dpi.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import pdfgen
import pikepdf
import pytest
from pikepdf import Array, Dictionary, Name, Stream

from squeezer.engines.errors import TimeLimitError
from squeezer.engines.pdf.placement import (
    MAX_DEPTH,
    Placement,
    image_placements,
    resolution,
)

# --- builders --------------------------------------------------------------------------------


def image(pdf: pikepdf.Pdf, width: int, height: int, **extra: object) -> Stream:
    """A gray image XObject of ``width`` x ``height`` pixels (all black: tiny when deflated)."""
    stream = Stream(pdf, zlib.compress(bytes(width * height)))
    stream.stream_dict = Dictionary(
        Type=Name.XObject, Subtype=Name.Image, Width=width, Height=height,
        ColorSpace=Name.DeviceGray, BitsPerComponent=8, Filter=Name.FlateDecode, **extra,
    )
    return pdf.make_indirect(stream)


def form(pdf: pikepdf.Pdf, content: bytes, xobjects: dict[str, Stream] | None = None,
         matrix: list[float] | None = None, bbox: list[float] | None = None,
         resources: Dictionary | None = None) -> Stream:
    stream = Stream(pdf, content)
    stream.stream_dict = Dictionary(Type=Name.XObject, Subtype=Name.Form,
                                    BBox=Array(bbox or [0, 0, 1000, 1000]))
    if resources is not None:
        stream.Resources = resources
    elif xobjects is not None:
        stream.Resources = Dictionary(XObject=Dictionary(xobjects))
    if matrix is not None:
        stream.Matrix = Array(matrix)
    return pdf.make_indirect(stream)


def page(pdf: pikepdf.Pdf, content: bytes, xobjects: dict[str, Stream] | None = None,
         **extra: object) -> pikepdf.Page:
    resources = Dictionary(XObject=Dictionary(xobjects or {}))
    return pdfgen.add_page(pdf, content, resources, **extra)


def placements(pdf: pikepdf.Pdf, tmp_path: Path) -> tuple[dict, dict[str, tuple[int, int]]]:
    """Save, reopen, compute; also return each image's objgen by its /Name tag."""
    path = tmp_path / "case.pdf"
    pdf.save(path)
    pdf.close()
    with pikepdf.open(path) as reopened:
        found = image_placements(reopened)
        names = {str(obj.Tag): obj.objgen for obj in reopened.objects
                 if isinstance(obj, Stream) and "/Tag" in obj}
    return found, names


def tagged(pdf: pikepdf.Pdf, tag: str, width: int = 600, height: int = 600,
           **extra: object) -> Stream:
    return image(pdf, width, height, Tag=Name("/" + tag), **extra)


def approx(placement: Placement, dpi_x: float, dpi_y: float) -> bool:
    return math.isclose(placement.dpi_x, dpi_x, rel_tol=1e-6) and math.isclose(
        placement.dpi_y, dpi_y, rel_tol=1e-6)


# --- direct placement -----------------------------------------------------------------------


def test_one_inch_600_pixels_is_600_dpi(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    page(pdf, b"q 72 0 0 72 100 100 cm /Im0 Do Q", {"/Im0": tagged(pdf, "a")})
    found, names = placements(pdf, tmp_path)
    assert found == {names["/a"]: Placement(600.0, 600.0, 1)}


def test_rotated_90_degrees(tmp_path: Path) -> None:
    # the image's x axis is drawn upward over 72 pt, its y axis leftward over 144 pt
    pdf = pikepdf.new()
    page(pdf, b"q 0 72 -144 0 300 100 cm /Im0 Do Q", {"/Im0": tagged(pdf, "a", 600, 300)})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 600, 150)


def test_scaled_differently_in_x_and_y(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    page(pdf, b"q 144 0 0 36 0 0 cm /Im0 Do Q", {"/Im0": tagged(pdf, "a")})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 300, 1200)


def test_cm_operators_concatenate_and_q_Q_restore(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    content = b"q 2 0 0 2 0 0 cm q 0.25 0 0 0.25 0 0 cm Q 36 0 0 36 0 0 cm /Im0 Do Q /Im0 Do"
    page(pdf, content, {"/Im0": tagged(pdf, "a")})
    found, names = placements(pdf, tmp_path)
    # 2 x 36 = 72 pt, then a last Do at the identity matrix (1 pt: 43200 dpi)
    assert approx(found[names["/a"]], 600 * 72, 600 * 72)
    assert found[names["/a"]].uses == 2


def test_drawn_twice_at_different_sizes_gets_the_max(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    content = b"q 288 0 0 288 0 0 cm /Im0 Do Q q 72 0 0 144 300 300 cm /Im0 Do Q"
    page(pdf, content, {"/Im0": tagged(pdf, "a")})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 600, 300)
    assert found[names["/a"]].uses == 2


def test_image_on_two_pages(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    shared = tagged(pdf, "a")
    page(pdf, b"q 144 0 0 144 0 0 cm /Im0 Do Q", {"/Im0": shared})
    page(pdf, b"q 72 0 0 72 0 0 cm /X Do Q", {"/X": shared})
    found, names = placements(pdf, tmp_path)
    assert found[names["/a"]] == Placement(600.0, 600.0, 2)


def test_user_unit_scales_user_space(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    page(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q", {"/Im0": tagged(pdf, "a")}, UserUnit=2)
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 300, 300)


def test_resources_inherited_from_the_page_tree(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    added = page(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q")
    pdf.Root.Pages.Resources = Dictionary(XObject=Dictionary(Im0=tagged(pdf, "a")))
    del added.obj["/Resources"]
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 600, 600)


# --- form XObjects -------------------------------------------------------------------------------


def test_form_matrix_and_nested_forms(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    im = tagged(pdf, "a")
    # inner: 72 x 72 in its space, Matrix x2 -> 144; outer: Matrix x0.25 -> 36; page cm x4 -> 144
    inner = form(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q", {"/Im": im}, matrix=[2, 0, 0, 2, 50, 50])
    outer = form(pdf, b"/Inner Do", {"/Inner": inner}, matrix=[0.25, 0, 0, 0.25, 0, 0])
    page(pdf, b"q 4 0 0 4 0 0 cm /Outer Do Q q 1 0 0 3 0 0 cm /Inner Do Q",
         {"/Outer": outer, "/Inner": inner})
    found, names = placements(pdf, tmp_path)
    # the direct use of inner is 144 x 432 pt: the nested use (144 x 144) sets both maxima
    assert approx(found[names["/a"]], 300, 300)
    assert found[names["/a"]].uses == 2


def test_form_without_resources_uses_its_parents(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    bare = form(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q")
    page(pdf, b"/F Do", {"/F": bare, "/Im0": tagged(pdf, "a")})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 600, 600)


def test_form_drawn_many_times_counts_every_use(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    logo = form(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "a")})
    for _ in range(3):
        content = b"".join(b"q 1 0 0 1 %d 0 cm /F Do Q " % x for x in range(0, 500, 50))
        page(pdf, content, {"/F": logo})
    found, names = placements(pdf, tmp_path)
    assert found[names["/a"]] == Placement(600.0, 600.0, 30)


def test_form_cycle_terminates(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    im = tagged(pdf, "a")
    a = form(pdf, b"")
    b = form(pdf, b"/A Do q 72 0 0 72 0 0 cm /Im Do Q", {"/A": a, "/Im": im})
    a.write(b"/A Do /B Do")
    a.Resources = Dictionary(XObject=Dictionary(A=a, B=b))
    page(pdf, b"/A Do /B Do", {"/A": a, "/B": b})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/a"]], 600, 600)


def test_nesting_deeper_than_the_limit_is_not_followed(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    inner = form(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "deep")})
    for _ in range(MAX_DEPTH + 5):
        inner = form(pdf, b"/F Do", {"/F": inner})
    page(pdf, b"/F Do q 72 0 0 72 0 0 cm /Im Do Q", {"/F": inner, "/Im": tagged(pdf, "shallow")})
    found, names = placements(pdf, tmp_path)
    assert names["/deep"] not in found
    assert approx(found[names["/shallow"]], 600, 600)


def test_too_many_distinct_sizes_leave_the_image_unknown(tmp_path: Path) -> None:
    # each level draws the next at two sizes: 2**14 distinct sizes of one image
    pdf = pikepdf.new()
    level = form(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "a")})
    for i in range(14):
        factor = 1 + 1 / (i + 2)
        level = form(pdf, b"/F Do q %f 0 0 1 0 0 cm /F Do Q" % factor, {"/F": level})
    page(pdf, b"/F Do", {"/F": level})
    found, names = placements(pdf, tmp_path)
    assert names["/a"] not in found  # unknown: do not downsample


# --- other places an image is drawn from ----------------------------------------------------


def test_annotation_appearance_fitted_to_rect(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    # BBox 100 x 100 shown in a 50 x 50 /Rect: the 100 pt image is drawn over 50 pt
    ap = form(pdf, b"q 100 0 0 100 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "stamp")},
              bbox=[0, 0, 100, 100])
    added = page(pdf, b"")
    added.obj.Annots = Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Stamp, Rect=Array([300, 300, 350, 350]),
        AP=Dictionary(N=ap)))])
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/stamp"]], 864, 864)


def test_annotation_appearance_with_rotating_matrix_and_states(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    # BBox 100 x 50 rotated by /Matrix becomes 50 x 100, fitted to a 100 x 200 /Rect (x2)
    on = form(pdf, b"q 100 0 0 50 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "on", 400, 200)},
              bbox=[0, 0, 100, 50], matrix=[0, 1, -1, 0, 0, 0])
    off = form(pdf, b"q 100 0 0 100 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "off", 300, 300)},
               bbox=[0, 0, 100, 100])
    added = page(pdf, b"")
    added.obj.Annots = Array([pdf.make_indirect(Dictionary(
        Type=Name.Annot, Subtype=Name.Stamp, Rect=Array([100, 100, 200, 300]), AS=Name.On,
        AP=Dictionary(N=Dictionary(On=on, Off=off))))])
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/on"]], 144, 144)
    assert approx(found[names["/off"]], 216, 108)  # 100 x 100 fitted to 100 x 200


def test_smask_gets_its_parent_placement(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    mask = image(pdf, 300, 150, Tag=Name("/mask"))
    parent = tagged(pdf, "parent", 600, 600, SMask=mask)
    page(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q q 36 0 0 36 0 0 cm /Im0 Do Q", {"/Im0": parent})
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/parent"]], 1200, 1200)
    assert approx(found[names["/mask"]], 600, 300)
    assert found[names["/mask"]].uses == 2


def test_tiling_pattern_is_placed_by_its_matrix(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    def pattern(tag: str) -> Stream:
        cell = Stream(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q")
        cell.stream_dict = Dictionary(
            Type=Name.Pattern, PatternType=1, PaintType=1, TilingType=1,
            BBox=Array([0, 0, 72, 72]), XStep=72, YStep=72, Matrix=Array([0.5, 0, 0, 0.5, 0, 0]),
            Resources=Dictionary(XObject=Dictionary(Im=tagged(pdf, tag))))
        return pdf.make_indirect(cell)

    added = page(pdf, b"q 10 0 0 10 0 0 cm /Pattern cs /P1 scn 0 0 50 50 re f Q")
    # the CTM at fill time does not matter: pattern space maps to the page's default space
    added.obj.Resources.Pattern = Dictionary(P1=pattern("tile"), P2=pattern("unused"))
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/tile"]], 1200, 1200)
    assert names["/unused"] not in found


def test_type3_glyph_procedures(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    glyph = pdf.make_stream(b"1000 0 0 0 0 1000 d1 q 1000 0 0 1000 0 0 cm /Im Do Q")
    font = pdf.make_indirect(Dictionary(
        Type=Name.Font, Subtype=Name.Type3, FontBBox=Array([0, 0, 1000, 1000]),
        FontMatrix=Array([0.001, 0, 0, 0.001, 0, 0]), CharProcs=Dictionary(g=glyph),
        Encoding=Dictionary(Type=Name.Encoding, Differences=Array([65, Name.g])),
        FirstChar=65, LastChar=65, Widths=Array([1000]),
        Resources=Dictionary(XObject=Dictionary(Im=tagged(pdf, "glyph")))))
    added = page(pdf, b"BT /T3 36 Tf 200 Tz 100 100 Td (A) Tj ET")
    added.obj.Resources.Font = Dictionary(T3=font)
    found, names = placements(pdf, tmp_path)
    # a 1000-unit glyph at 36 pt: 36 pt tall, 72 pt wide with 200 % horizontal scaling
    assert approx(found[names["/glyph"]], 600, 1200)


def test_soft_mask_group_of_an_extgstate(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    group = form(pdf, b"q 72 0 0 72 0 0 cm /Im Do Q", {"/Im": tagged(pdf, "luminosity")})
    group.Group = Dictionary(S=Name.Transparency, CS=Name.DeviceGray)
    added = page(pdf, b"q 2 0 0 2 0 0 cm /GS1 gs 0 0 100 100 re f Q")
    added.obj.Resources.ExtGState = Dictionary(
        GS1=Dictionary(Type=Name.ExtGState, SMask=Dictionary(S=Name.Luminosity, G=group)))
    found, names = placements(pdf, tmp_path)
    assert approx(found[names["/luminosity"]], 300, 300)


# --- what is absent, and damage ---------------------------------------------------------------


def test_image_not_drawn_anywhere_is_absent(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    page(pdf, b"q 72 0 0 72 0 0 cm /Im1 Do Q",
         {"/Im0": tagged(pdf, "listed"), "/Im1": tagged(pdf, "drawn")})
    pdf.Root.Orphan = tagged(pdf, "orphan")
    found, names = placements(pdf, tmp_path)
    assert set(found) == {names["/drawn"]}


def test_degenerate_matrices_are_not_drawn(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    content = (b"q 0 0 0 0 0 0 cm /Zero Do Q q 72 0 72 0 0 0 cm /Line Do Q "
               b"q 0.000000000001 0 0 0.000000000001 0 0 cm /Tiny Do Q "
               b"q 0 0 0 0 0 0 cm /Both Do Q q 72 0 0 72 0 0 cm /Both Do Q")
    page(pdf, content, {"/Zero": tagged(pdf, "zero"), "/Line": tagged(pdf, "line"),
                        "/Tiny": tagged(pdf, "tiny"), "/Both": tagged(pdf, "both")})
    found, names = placements(pdf, tmp_path)
    assert set(found) == {names["/both"]}
    assert found[names["/both"]] == Placement(600.0, 600.0, 1)
    assert resolution(600, 600, (math.nan, 0, 0, 1)) is None
    assert resolution(600, 600, (math.inf, 0, 0, 1)) is None


def test_malformed_content_is_skipped_without_raising(tmp_path: Path) -> None:
    pdf = pikepdf.new()
    im = tagged(pdf, "a")
    page(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q", {"/Im0": im})
    broken = page(pdf, b"", {"/Im0": im})
    bad = Stream(pdf, b"this is not deflate data")
    bad.Filter = Name.FlateDecode
    broken.obj.Contents = Array([pdf.make_indirect(bad),
                                 pdf.make_stream(b"q 36 0 0 36 0 0 cm /Im0 Do Q")])
    page(pdf, b"q /Im0 cm 1 2 cm ) ( >> << [ /Im0 Do Q (unterminated", {"/Im0": im})
    page(pdf, b"/Im0 Do", {"/Im0": Dictionary(Subtype=Name.Image)})  # not a stream
    wide = image(pdf, 10, 10)
    wide.Width = Name.Wide
    page(pdf, b"/Im0 Do", {"/Im0": wide})  # no usable /Width
    pdf.pages[-1].obj.Resources = Array([1, 2])  # resources that are not a dictionary
    found, names = placements(pdf, tmp_path)
    # the damaged stream is skipped; its readable sibling still counts (36 pt: 1200 dpi)
    assert approx(found[names["/a"]], 1200, 1200)


# --- the caller's budget -------------------------------------------------------------------


class _CountingBudget:
    def __init__(self, fail_after: int | None = None) -> None:
        self.calls, self.fail_after = 0, fail_after

    def check_time(self) -> None:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise TimeLimitError("over time")


def test_budget_is_checked_every_page_and_may_stop_the_walk() -> None:
    pdf = pikepdf.new()
    for _ in range(3):
        page(pdf, b"q 72 0 0 72 0 0 cm /Im0 Do Q", {"/Im0": image(pdf, 10, 10)})
    budget = _CountingBudget()
    assert len(image_placements(pdf, budget)) == 3  # type: ignore[arg-type]
    assert budget.calls == 3
    with pytest.raises(TimeLimitError):
        image_placements(pdf, _CountingBudget(fail_after=1))  # type: ignore[arg-type]


# --- real files ----------------------------------------------------------------------------


@pytest.mark.corpus
@pytest.mark.parametrize("name", [
    "qpdf__image-streams.pdf", "pdfplumber__chelsea_pdta.pdf", "pdfjs__bug1815476.pdf",
    "pdfjs__poppler-90-0-fuzzed.pdf", "pdfjs__PDFBOX-3148-2-fuzzed.pdf",
])
def test_corpus_files(name: str) -> None:
    path = pdfgen.CORPUS / name
    if not path.is_file():
        pytest.skip("corpus absent")
    with pikepdf.open(path) as pdf:
        found = image_placements(pdf)
        images = {obj.objgen for obj in pdf.objects
                  if isinstance(obj, Stream) and obj.get("/Subtype") == Name.Image}
    assert set(found) <= images
    for placement in found.values():
        assert math.isfinite(placement.dpi_x) and placement.dpi_x > 0
        assert math.isfinite(placement.dpi_y) and placement.dpi_y > 0
        assert placement.uses >= 1
