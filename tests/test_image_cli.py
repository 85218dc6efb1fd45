"""``squeezer compress`` on images: the dispatcher picks the engine, names follow the format."""

from __future__ import annotations

import json
from pathlib import Path

import test_cli
from PIL import Image
from test_cli import TRACEBACK, stderr_lines
from test_image_engine import line_art, photo, transparent

from squeezer.engines.sniff import sniff

cli = test_cli.cli  # the fixture, shared


def kind(path: Path) -> str:
    return sniff(path.read_bytes()[:65536]).format


def test_compress_images_and_pdfs_in_one_batch(cli, fx) -> None:
    photo().save(cli.dir / "photo.jpg", "JPEG", quality=95)
    line_art().save(cli.dir / "art.png", "PNG", compress_level=1)
    (cli.dir / "doc.pdf").write_bytes(Path(fx.uncompressed()).read_bytes())
    proc = cli("compress", "photo.jpg", "art.png", "doc.pdf", "--json")
    assert proc.returncode == 0, proc.stderr
    entries = {e["input"]: e for e in json.loads(proc.stdout)}
    assert entries["photo.jpg"]["output"] == "photo.compressed.jpg"
    assert entries["photo.jpg"]["report"]["kind"] == "image"
    assert kind(cli.dir / "photo.compressed.jpg") == "jpeg"
    assert kind(cli.dir / "art.compressed.png") == "png"
    assert entries["doc.pdf"]["report"]["pages"] >= 1
    assert (cli.dir / "doc.compressed.pdf").is_file()


def test_format_resize_preserve_flags(cli) -> None:
    transparent().save(cli.dir / "logo.png", "PNG")
    photo(400, 300).save(cli.dir / "shot.png", "PNG")
    proc = cli("compress", "logo.png", "shot.png", "--format", "webp", "--resize", "fit:200x200",
               "--compression", "medium", "--preserve", "icc", "--json")
    assert proc.returncode == 0, proc.stderr
    for name in ("logo", "shot"):
        out = cli.dir / f"{name}.compressed.webp"
        assert kind(out) == "webp"
        assert max(Image.open(out).size) == 200
    report = json.loads(proc.stdout)[1]["report"]
    assert report["settings"]["level"] == "medium"
    assert report["settings"]["preserve"] == ["icc", "copyright"]
    assert "'compression' is deprecated" in proc.stderr
    # auto: the run decides the extension
    proc = cli("compress", "logo.png", "--format", "auto", "--json")
    assert proc.returncode == 0, proc.stderr
    [entry] = json.loads(proc.stdout)
    out = cli.dir / entry["output"]
    assert out.is_file() and out.suffix == "." + {"jpeg": "jpg"}.get(
        entry["report"]["format_out"], entry["report"]["format_out"])
    assert not list(cli.dir.glob("*.squeezer-auto"))


def test_image_errors_are_one_line(cli) -> None:
    (cli.dir / "figure.eps").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n")
    proc = cli("compress", "figure.eps")
    assert proc.returncode == 1 and TRACEBACK not in proc.stderr
    [line] = stderr_lines(proc)
    assert line.startswith("error: figure.eps: unsupported_format: EPS/PostScript")
    proc = cli("compress", "figure.eps", "--resize", "fit")
    assert proc.returncode == 2 and "--resize" in proc.stderr
