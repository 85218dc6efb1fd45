"""PNG predictors for Flate images (engines/pdf/predictors.py): every encoding decodes, in qpdf
and PDFium, to the samples it was made from, and the smallest of plain and predicted is kept."""

from __future__ import annotations

import zlib

import numpy as np
import pdfgen
import pikepdf
import pytest
from pikepdf import Dictionary, Name

from squeezer.engines import libdeflate
from squeezer.engines.pdf import predictors


def _images() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(7)
    photo = pdfgen.photo_array(257, 131, seed=2)
    return {
        "gray-photo": photo[:, :, 1:2],
        "rgb-photo": photo,
        "cmyk-noise": rng.integers(0, 256, (40, 33, 4), dtype=np.uint8),
        "rgb-flat": np.repeat(np.repeat(rng.integers(0, 256, (8, 9, 3), dtype=np.uint8), 9, 0), 7, 1),
        "one-row": photo[:1],
    }


def _decoded(data: bytes, samples: np.ndarray, predictor: bool) -> np.ndarray:
    """The samples qpdf decodes from ``data`` as an image stream's Flate (with its predictor)."""
    height, width, components = samples.shape
    pdf = pikepdf.new()
    stream = pikepdf.Stream(pdf, data)
    stream.stream_dict = Dictionary(Filter=Name.FlateDecode)
    if predictor:
        stream.DecodeParms = Dictionary(Predictor=15, Colors=components, BitsPerComponent=8,
                                        Columns=width)
    return np.frombuffer(stream.read_bytes(), np.uint8).reshape(height, width, components)


@pytest.mark.parametrize("name", list(_images()))
@pytest.mark.parametrize("method", [predictors.PLAIN, predictors.SUB, predictors.UP,
                                    predictors.AVERAGE, predictors.PAETH, predictors.ADAPTIVE])
def test_every_predictor_decodes_to_the_samples(name, method):
    samples = _images()[name]
    height, width, components = samples.shape
    rows = np.ascontiguousarray(samples).reshape(height, width * components)
    data = zlib.compress(predictors._encode(rows, components, method))
    assert np.array_equal(_decoded(data, samples, method != predictors.PLAIN), samples)


@pytest.mark.parametrize("name", list(_images()))
def test_the_smallest_encoding_is_kept_and_decodes(name, monkeypatch):
    samples = _images()[name]
    for whole in (True, False):  # tried whole, and on sampled bands
        monkeypatch.setattr(predictors, "WHOLE_TRIAL_BYTES", 1 << 30 if whole else 0)
        encoded = predictors.smallest_flate(samples)
        assert np.array_equal(_decoded(encoded.data, samples, encoded.predictor), samples)
        plain = libdeflate.compress(np.ascontiguousarray(samples).tobytes())
        assert len(encoded.data) <= len(plain)


def test_a_raw_photo_stored_plain_beats_a_worse_predictor(tmp_path):
    """Noise deflates better plain than predicted: plain Flate is a candidate of its own."""
    noise = np.random.default_rng(3).normal(128, 30, (120, 160, 3)).clip(0, 255).astype(np.uint8)
    encoded = predictors.smallest_flate(noise)
    rows = noise.reshape(120, -1)
    paeth = libdeflate.compress(predictors._encode(rows, 3, predictors.PAETH))
    assert len(encoded.data) <= len(paeth)
