"""Shared fixtures: generated PDFs (built once per test session and worker) and leak checks."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pdfgen
import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False, help="also run tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than a few seconds; runs with --run-slow")
    config.addinivalue_line("markers", "corpus: reads the shared real-world PDF corpus")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --run-slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def _multiprocessing_temp_dir():
    """multiprocessing makes one temp dir per process (the forkserver's socket lives there);
    make it before the leak check below starts watching the temp dir."""
    import multiprocessing.util

    multiprocessing.util.get_temp_dir()


@pytest.fixture(autouse=True)
def engine_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Give the engine a private system temp dir and fail the test if it leaves anything there."""
    scratch = tmp_path / "_systmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    leftovers = sorted(p.name for p in scratch.iterdir())
    assert leftovers == [], f"the engine leaked temporary files: {leftovers}"


class Fixtures:
    """Lazily generated fixture PDFs, one directory per session (per xdist worker).

    Tests must treat these files as read-only; copy them first to modify.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.meta: dict[str, object] = {}

    def _make(self, name: str, builder, *args, **kwargs) -> Path:
        path = self.root / f"{name}.pdf"
        if not path.exists():
            self.meta[name] = builder(path, *args, **kwargs)
        return path

    def text(self) -> Path:
        return self._make("text", pdfgen.text_pdf, pages=3)

    def uncompressed(self) -> Path:
        return self._make("uncompressed", pdfgen.uncompressed_text_pdf)

    def photo(self) -> Path:
        return self._make("photo", pdfgen.photo_pdf)

    def bitonal(self) -> Path:
        return self._make("bitonal", pdfgen.bitonal_scan_pdf)

    def dup_images(self) -> Path:
        return self._make("dup_images", pdfgen.duplicate_images_pdf)

    def dup_fonts(self) -> Path:
        ttf = pdfgen.find_ttf()
        if ttf is None:
            pytest.skip("no TrueType font on this machine to embed")
        return self._make("dup_fonts", pdfgen.duplicate_fonts_pdf, ttf)

    def interactive(self) -> Path:
        return self._make("interactive", pdfgen.interactive_pdf)

    def junk(self) -> Path:
        return self._make("junk", pdfgen.junk_pdf)

    def metadata(self) -> Path:
        return self._make("metadata", pdfgen.metadata_pdf)

    def broken_xref(self) -> Path:
        return self._make("broken_xref", pdfgen.broken_xref_pdf)

    def tiny(self) -> Path:
        return self._make("tiny", pdfgen.tiny_optimal_pdf)

    def encrypted(self, R: int = 6, user: str = "user", restrict: bool = False) -> Path:
        name = f"enc_R{R}_{user.encode('utf-8').hex() or 'empty'}_{int(restrict)}"
        return self._make(name, pdfgen.encrypted_pdf, R=R, user=user, owner="owner", restrict=restrict)

    def get(self, name: str) -> Path:
        return getattr(self, name)()


@pytest.fixture(scope="session")
def fx(tmp_path_factory: pytest.TempPathFactory) -> Fixtures:
    return Fixtures(tmp_path_factory.mktemp("fixtures"))


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory for outputs, so its listing shows any leaked *.part file."""
    d = tmp_path / "out"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def service(tmp_path_factory: pytest.TempPathFactory):
    """A running `squeezer serve` (embedded PostgreSQL, one worker) for this test session."""
    from servicefx import Service

    svc = Service(tmp_path_factory.mktemp("service"))
    yield svc
    svc.stop()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory):
    """Small video and audio files made with the wheel's ffmpeg (tests/mediafx.py)."""
    from mediafx import MediaFiles

    return MediaFiles(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's headless Chromium showing pictures in sRGB, as the image tests compare them."""
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = Path("/usr/bin/chromium")
    if not executable.exists():
        pytest.skip("no /usr/bin/chromium (.ci/run installs it with apt)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(executable), headless=True,
                                    args=["--no-sandbox", "--disable-gpu",
                                          "--force-color-profile=srgb",
                                          "--allow-file-access-from-files"])
        try:
            yield browser
        finally:
            browser.close()
