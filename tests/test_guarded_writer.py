"""The writer qpdf saves through: a failed write or a Ctrl-C mid-save never crosses qpdf's C++
frames (either aborted the whole process), and nothing partial is left."""

from __future__ import annotations

import errno
from pathlib import Path

import pikepdf
import pytest

from squeezer.engines.errors import DiskFullError
from squeezer.engines.files import GuardedWriter


class _Failing:
    """A file whose third write raises ``exc``."""

    def __init__(self, real, exc: BaseException) -> None:
        self.real, self.exc, self.writes = real, exc, 0

    def write(self, data) -> int:
        self.writes += 1
        if self.writes == 3:
            raise self.exc
        return self.real.write(data)

    def __getattr__(self, name):
        return getattr(self.real, name)


def _document() -> pikepdf.Pdf:
    pdf = pikepdf.new()
    for n in range(40):
        pdf.add_blank_page()
        pdf.pages[-1].Contents = pdf.make_stream(b"BT /F1 12 Tf (page %d) Tj ET" % n * 200)
    return pdf


@pytest.mark.parametrize("exc, raised", [(KeyboardInterrupt(), KeyboardInterrupt),
                                         (OSError(errno.ENOSPC, "full"), DiskFullError)])
def test_a_save_interrupted_mid_write_raises_after_qpdf_returns(tmp_path: Path, exc, raised):
    out = tmp_path / "out.pdf"
    sink = GuardedWriter(out)
    sink._file = _Failing(sink._file, exc)
    with _document() as pdf:
        pdf.save(sink, compress_streams=False)  # qpdf itself never sees the failure
    with pytest.raises(raised):
        sink.finish()
    assert not out.exists()


def test_an_undisturbed_save_writes_the_whole_document(tmp_path: Path):
    out = tmp_path / "out.pdf"
    sink = GuardedWriter(out)
    with _document() as pdf:
        pdf.save(sink)
    sink.finish()
    with pikepdf.open(out) as written:
        assert len(written.pages) == 40
