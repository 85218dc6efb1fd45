"""The PDF engine's progress moves through a document's pictures one by one (the web page's and
the CLI's bars follow it), instead of sitting at one number for the whole images step."""

from __future__ import annotations

import numpy as np
import pikepdf

from squeezer.engines.options import Options
from squeezer.engines.pdf.pipeline import compress


def _album(path, pictures: int = 6, side: int = 400) -> None:
    pdf = pikepdf.new()
    rng = np.random.default_rng(5)
    y, x = np.mgrid[0:side, 0:side].astype(np.float32)
    for i in range(pictures):
        rgb = np.stack([255 * x / side, 255 * y / side, 127 + 100 * np.sin((x + 9 * i) / 23)], -1)
        pixels = np.clip(rgb + rng.normal(0, 6, rgb.shape), 0, 255).astype(np.uint8)
        stream = pikepdf.Stream(pdf, pixels.tobytes())
        stream.stream_dict = pikepdf.Dictionary(
            Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side, Height=side,
            ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=pikepdf.Array([0, 0, 300, 300]),
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(stream))),
            Contents=pdf.make_stream(b"q 288 0 0 288 6 6 cm /Im0 Do Q"))))
    pdf.save(path)


def test_progress_moves_per_picture(tmp_path):
    src, dst = tmp_path / "album.pdf", tmp_path / "out.pdf"
    _album(src)
    seen: list[tuple[float, str]] = []
    report = compress(src, dst, Options(), progress=lambda f, stage: seen.append((f, stage)))
    assert report.images.recompressed == 6
    during = [f for f, stage in seen if stage == "images"]
    # the step's start (after the scanned-pages step when the level has one), then one report
    # per picture, spread evenly over the step's range
    assert len(during) == 1 + 6
    assert during == sorted(during) and during[0] in (0.2, 0.45) and during[-1] == 0.7
    steps = np.diff(during)
    assert np.allclose(steps, steps[0])
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
