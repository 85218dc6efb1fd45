"""The reference JBIG2 generic-region encoder (bench/jbig2_generic.py) stays lossless.

docs/jbig2.md quotes its sizes against CCITT G4; this keeps those numbers honest:
PDFium (an independent decoder) must give back every pixel, both when it
decodes the image object and when it renders the page one pixel per point.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scanfixtures

BENCH = Path(__file__).resolve().parents[1] / "bench" / "jbig2_generic.py"


@pytest.fixture(scope="module")
def jbig2():
    spec = importlib.util.spec_from_file_location("jbig2_generic", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _text_crop(jbig2) -> np.ndarray:
    """200 x 120 of a real bitonal scan (150 dpi): glyph edges, blank rows, dust."""
    page = np.asarray(scanfixtures.scan_image("bitonal", dpi=150, seed=4).convert("L")) < 128
    return page[140:260, 150:350]


def _hard_bitmap(jbig2) -> np.ndarray:
    """Ink on row 0 and on every edge, a noise block (many LPS and carries), repeated rows,
    and pixels whose context is the one TPGD's pseudo-pixel shares (so both must agree)."""
    rng = np.random.default_rng(5)
    ink = np.zeros((120, 200), dtype=bool)
    ink[0, ::3] = True
    ink[:, 0] = ink[:, -1] = ink[-1, :] = True
    ink[30:70, 120:180] = rng.random((40, 60)) < 0.5
    ink[80:100, 10:90] = True
    shared = [jbig2.TEMPLATE0[bit] for bit in range(16) if jbig2.TPGD_CONTEXT >> bit & 1]
    for n, x in enumerate(range(100, 190, 10)):
        for dx, dy in shared:
            ink[110 + dy, x + dx] = True
        ink[110, x] = n % 3 == 0
        assert jbig2.contexts(ink)[110, x] == jbig2.TPGD_CONTEXT
    return ink


@pytest.mark.parametrize("make", [_text_crop, _hard_bitmap])
def test_lossless_through_pdfium(jbig2, tmp_path: Path, make) -> None:
    ink = make(jbig2)
    assert ink.shape == (120, 200) and 0 < ink.mean() < 0.5
    rendered, decoded = jbig2.pdfium_pixels(jbig2.write_pdf(tmp_path / "j.pdf", ink))
    assert np.array_equal(decoded, ink)
    assert np.array_equal(rendered, ink)


def test_stream_is_page_info_then_one_immediate_lossless_generic_region(jbig2) -> None:
    data = jbig2.jbig2_stream(_hard_bitmap(jbig2))
    assert data[4] == 48 and int.from_bytes(data[7:11], "big") == 19  # page information
    region = data[11 + 19 :]
    assert region[4] == 39  # immediate lossless generic region
    assert int.from_bytes(region[7:11], "big") == len(region) - 11
    assert region[-2:] == b"\xff\xac"  # the MQ coder's end marker


def _coder(name: str):
    if name == "native":
        from squeezer.engines.pdf import mq_native

        coder = mq_native.load()
        assert coder is not None, "the shipped LLVM IR does not load here"
        return coder
    mq = pytest.importorskip("squeezer.engines.pdf.mq", reason="numba is not importable")
    return mq.code_generic


@pytest.mark.parametrize("coder", ["native", "numba"])
@pytest.mark.parametrize("make", [_text_crop, _hard_bitmap])
def test_engine_coder_matches_the_reference_bit_for_bit(jbig2, make, coder) -> None:
    """Two independent implementations (the engine's compiled coder, from the shipped IR
    and from numba, and this pure-Python one) must produce the same arithmetic-coded
    bytes: a shared misreading of the standard is what PDFium's decoding would still
    catch, a slip in either is caught here."""
    from squeezer.engines.pdf import jbig2 as engine

    ink = make(jbig2)
    ours = engine.encode_generic(ink, coder=_coder(coder))
    header = 11 + 19 + 11 + 17 + 1 + 8  # page info segment, region segment header and fields
    assert ours[header:] == jbig2.generic_region(ink)


def test_the_shipped_ir_is_compiled_from_the_current_coder() -> None:
    """``mq_generic.ll`` must be regenerated (``python -m squeezer.engines.pdf.mq_emit``)
    whenever ``mq.py`` changes: its first line names the source it came from."""
    from squeezer.engines.pdf import mq_emit

    first = mq_emit.TARGET.read_text().splitlines()[0]
    assert first.endswith(f"sha256 {mq_emit.source_digest()}")


def test_the_engine_uses_the_shipped_ir() -> None:
    """numba's start-up (about 0.7 s per process) is paid only where the IR cannot be loaded."""
    from squeezer.engines.pdf import jbig2 as engine
    from squeezer.engines.pdf import mq_native

    assert engine._compiled() is mq_native.load()


def test_the_compiled_coder_is_kept_on_disk_and_a_damaged_copy_is_ignored(
        jbig2, tmp_path, monkeypatch) -> None:
    """Compiling the IR cost each process ~0.06-0.1 s (issue 18): the machine code is kept in
    the user's cache and loaded from there; a damaged file is recompiled, never loaded."""
    from squeezer.engines.pdf import jbig2 as engine
    from squeezer.engines.pdf import mq_native

    monkeypatch.setattr(mq_native, "cache_dir", lambda: tmp_path / "cache")
    ink = _hard_bitmap(jbig2)
    header = 11 + 19 + 11 + 17 + 1 + 8
    expected = jbig2.generic_region(ink)
    compiled = mq_native._compile()
    kept = list((tmp_path / "cache").glob("mq-*.o"))
    assert compiled is not None and len(kept) == 1
    whole = kept[0].read_bytes()
    loaded = mq_native._compile()  # from the file
    damaged = bytearray(whole)
    damaged[len(damaged) // 2] ^= 0xFF
    kept[0].write_bytes(bytes(damaged))
    recompiled = mq_native._compile()
    assert kept[0].read_bytes() == whole  # compiled again and rewritten
    for coder in (compiled, loaded, recompiled):
        assert engine.encode_generic(ink, coder=coder)[header:] == expected
