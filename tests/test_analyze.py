"""``squeezer analyze`` and ``engines/pdf/analyze.py``: where a PDF's bytes are, on real PDFs.

The breakdown is checked against facts the fixtures are built with (one
JPEG of known size, two identical images, three content streams...) and
against the one invariant every file must meet: the categories add up to the
file size.  CLI cases run ``python -m squeezer`` as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pdfgen
import pikepdf
import pytest

from squeezer.engines.errors import NotAPdfError, PasswordRequiredError
from squeezer.engines.level import Level
from squeezer.engines.pdf.analyze import CATEGORIES, analyze, sample_indices

TRACEBACK = "Traceback"


def run(*args: object, tmp: Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmp)}
    return subprocess.run([sys.executable, "-m", "squeezer", "analyze", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=cwd, timeout=180, check=False)


@pytest.fixture(scope="module")
def small_photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One 800x600 JPEG drawn 4 x 3 in (200 dpi) with a caption."""
    path = tmp_path_factory.mktemp("analyze") / "photo.pdf"
    pdfgen.photo_pdf(path, width=800, height=600)
    return path


def jpeg_bytes(path: Path) -> int:
    with pikepdf.open(path) as pdf:
        [image] = pdfgen.image_xobjects(pdf)
        return len(image.read_raw_bytes())


def assert_adds_up(data: dict, path: Path) -> None:
    size = path.stat().st_size
    assert data["file_bytes"] == size
    assert [c["name"] for c in data["categories"]] == list(CATEGORIES)
    assert all(c["bytes"] >= 0 for c in data["categories"])
    assert sum(c["bytes"] for c in data["categories"]) == size
    assert abs(sum(c["share"] for c in data["categories"]) - 1) < 0.01


def by_name(data: dict) -> dict[str, dict]:
    return {c["name"]: c for c in data["categories"]}


def test_cli_prints_every_category_and_the_estimates(fx, engine_tmp):
    proc = run(fx.text(), tmp=engine_tmp)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    for label in ("images", "fonts", "content streams", "form xobjects", "metadata",
                  "embedded files", "annotations", "structure", "total"):
        assert label in out
    assert "Estimate per level" in out and "an estimate" in out
    for preset in Level:
        assert preset.value in out
    assert "\x1b[" not in out


def test_cli_json_adds_up(fx, engine_tmp):
    src = fx.text()
    proc = run(src, "--json", tmp=engine_tmp)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["input"] == str(src)
    assert data["pages"] == 3
    assert_adds_up(data, src)
    cats = by_name(data)
    assert cats["content_streams"]["count"] == 3 and cats["content_streams"]["bytes"] > 0
    assert cats["images"]["count"] == 0
    assert data["fonts_not_embedded"] == ["Helvetica"]
    estimates = data["estimates"]
    assert estimates["method"] == "whole document" and estimates["sampled_pages"] == 3
    assert [e["level"] for e in estimates["levels"]] == [p.value for p in Level]
    for e in estimates["levels"]:
        assert 0 < e["bytes"] <= src.stat().st_size
        assert e["ratio"] == pytest.approx(e["bytes"] / src.stat().st_size, abs=1e-3)


def test_images_by_codec_with_resolution(small_photo):
    a = analyze(small_photo)
    assert a.category("images").count == 1
    assert a.category("images").bytes == jpeg_bytes(small_photo)
    assert a.category("images").share > 0.5
    [codec] = a.image_codecs
    assert (codec.codec, codec.count, codec.bytes) == ("DCT", 1, jpeg_bytes(small_photo))
    [image] = a.images
    assert (image.width, image.height, image.color_space, image.bits_per_component) == (
        800, 600, "DeviceRGB", 8)
    assert image.filters == ["DCTDecode"] and not image.mask
    if a.dpi_known:
        assert image.dpi == pytest.approx(200, abs=1)
        assert image.uses == 1
    assert sum(c.bytes for c in a.categories) == small_photo.stat().st_size


def test_duplicates_are_counted(fx):
    a = analyze(fx.dup_images(), estimate=False)
    assert a.estimates is None
    assert a.category("images").count == 2
    assert a.duplicates.groups == 1 and a.duplicates.redundant == 1
    [group] = a.duplicates.largest
    assert group.category == "images" and group.copies == 2
    assert a.duplicates.wasted_bytes == group.bytes_each == a.images[0].bytes
    assert [c.codec for c in a.image_codecs] == ["Flate"]


def test_fonts_metadata_annotations_and_attachments(fx):
    fonts = analyze(fx.dup_fonts(), estimate=False)
    assert [(f.kind, f.subset) for f in fonts.fonts] == [("FontFile2", False)] * 2
    assert fonts.font_kinds[0].codec == "FontFile2" and fonts.font_kinds[0].count == 2
    assert fonts.category("fonts").bytes == sum(f.bytes for f in fonts.fonts) > 0
    assert fonts.duplicates.redundant == 1

    meta = analyze(fx.metadata(), estimate=False)
    assert meta.category("metadata").count == 2  # the XMP stream and the information dictionary
    assert meta.category("metadata").bytes > 1600  # the XMP alone carries 1600 bytes of padding

    interactive = analyze(fx.interactive(), estimate=False)
    assert interactive.annotations >= 2
    assert interactive.category("annotations").count == interactive.annotations
    assert interactive.category("annotations").bytes > 0  # the field's appearance stream
    assert interactive.category("embedded_files").count == 1
    checked = ((fonts, fx.dup_fonts()), (meta, fx.metadata()), (interactive, fx.interactive()))
    for a, path in checked:
        assert sum(c.bytes for c in a.categories) == path.stat().st_size


def test_long_documents_are_estimated_from_a_sample(tmp_path):
    src = tmp_path / "long.pdf"
    pdfgen.text_pdf(src, pages=60, lines=5)
    a = analyze(src)
    assert a.pages == 60
    assert a.estimates.method == "sample" and a.estimates.sampled_pages == 10
    assert a.estimates.total_pages == 60
    for e in a.estimates.levels:
        assert e.error is None and 0 < e.bytes <= src.stat().st_size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_systmp", "long.pdf"]


def test_sample_indices_follow_the_weights():
    assert sample_indices([5, 1, 3], count=10) == [0, 1, 2]
    weights = [1] * 100
    weights[37] = 10_000  # one heavy page among light ones is always in the sample
    picked = sample_indices(weights, count=10)
    assert len(picked) == 10 and 37 in picked and picked == sorted(set(picked))


def test_encrypted(fx, engine_tmp):
    src = fx.encrypted()
    proc = run(src, tmp=engine_tmp)
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"error: {src}: password_required: ") and "--password" in line
    assert proc.stdout == ""
    proc = run(src, "--password", "user", "--json", "--no-estimate", tmp=engine_tmp)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["encrypted"] is True and data["estimates"] is None
    # AES adds a block of padding and an IV to every stream, which the remainder absorbs
    assert sum(c["bytes"] for c in data["categories"]) == src.stat().st_size
    with pytest.raises(PasswordRequiredError):
        analyze(src)


def test_not_a_pdf_and_missing_file(tmp_path, engine_tmp):
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"GIF89a" + bytes(2000))
    for target, code in ((junk, "not_a_pdf"), (tmp_path / "absent.pdf", "file_not_found")):
        proc = run(target, tmp=engine_tmp)
        assert proc.returncode == 1
        assert TRACEBACK not in proc.stderr
        [line] = proc.stderr.splitlines()
        assert line.startswith(f"error: {target}: {code}: ")
        assert proc.stdout == ""
    with pytest.raises(NotAPdfError):
        analyze(junk)


def test_usage_error(engine_tmp, fx):
    proc = run(fx.text(), "--bogus", tmp=engine_tmp)
    assert proc.returncode == 2
    assert len(proc.stderr.splitlines()) == 1 and TRACEBACK not in proc.stderr


@pytest.mark.corpus
@pytest.mark.parametrize("name, pages, codecs, estimate", [
    ("pymupdf__test_4423.pdf", 3, {"DCT", "JBIG2"}, True),
    ("pdfcpu__HL1396.pdf", 18, {"CCITT"}, False),
])
def test_corpus(engine_tmp, name, pages, codecs, estimate):
    src = pdfgen.CORPUS / name
    if not src.is_file():
        pytest.skip(f"corpus file {name} not present ({pdfgen.CORPUS})")
    proc = run(src, "--json", *([] if estimate else ["--no-estimate"]), tmp=engine_tmp)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["pages"] == pages
    assert_adds_up(data, src)
    assert {c["codec"] for c in data["image_codecs"]} == codecs
    assert by_name(data)["images"]["share"] > 0.5
    if estimate:
        assert [e["level"] for e in data["estimates"]["levels"]] == [p.value for p in Level]
        sizes = [e["bytes"] for e in data["estimates"]["levels"]]
        assert all(0 < b <= src.stat().st_size for b in sizes)
    else:
        assert data["estimates"] is None


def test_limits_apply(tmp_path, engine_tmp):
    """Analysis decodes content to place images, so it is bounded like ``compress``."""
    bomb = tmp_path / "bomb.pdf"
    pdfgen.flate_bomb_pdf(bomb, nbytes=8 << 20)
    env = {"SQUEEZER_MAX_STREAM_BYTES": str(1 << 20)}
    proc = subprocess.run(
        [sys.executable, "-m", "squeezer", "analyze", str(bomb)], capture_output=True, text=True,
        env={**os.environ, "TMPDIR": str(engine_tmp), **env}, timeout=120, check=False,
    )
    assert proc.returncode == 1
    [line] = proc.stderr.splitlines()
    assert line.startswith(f"error: {bomb}: decompression_limit: ")
    assert "SQUEEZER_MAX_STREAM_BYTES" in line


def test_without_the_placement_module(small_photo, monkeypatch):
    """Resolutions are optional: without ``placement.py`` the rest of the breakdown stands."""
    monkeypatch.setitem(sys.modules, "squeezer.engines.pdf.placement", None)  # import fails
    a = analyze(small_photo, estimate=False)
    assert a.dpi_known is False
    [image] = a.images
    assert image.dpi is None and image.uses is None
    assert (image.width, image.height) == (800, 600)
