"""The web page at ``/`` in a real browser (Debian's Chromium driven by Playwright) against a
real ``squeezer serve``: files dropped, compressed, compared full screen, downloaded; every
format the server takes; a 100 MB upload with its progress, a reload and a second tab mid-job
and a cancel; keyboard only; a 390 x 844 phone; settings built from ``GET /v1/options`` and
the one default level; a password-protected PDF; a bad key; ``--open`` mode.  Plus the preview
renderer's limits.

``SQUEEZER_WEB_SCREENSHOTS=docs/web`` saves each state's screenshot there (the README's).
"""

from __future__ import annotations

import base64
import io
import json
import lzma
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
import wave
import zipfile
import zlib
from pathlib import Path

import containerfx
import httpx
import numpy as np
import pikepdf
import pytest
import zstandard
from PIL import Image

from squeezer.engines.container.formats import FORMATS as CONTAINER_FORMATS
from squeezer.errors import SqueezerError as PreviewError
from squeezer.jobs.preview import RenderLimits
from squeezer.jobs.preview import render_isolated as render_page_png

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ENDED = "['done', 'failed', 'password', 'deleted', 'cancelled', 'expired', 'interrupted']"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("SQUEEZER_WEB_SCREENSHOTS")


def fmt_bytes(n: int) -> str:
    """The page's fmtBytes (words.js), to compare what it shows with the API's numbers."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, 0
    units = ["KB", "MB", "GB", "TB"]
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    # JavaScript's toFixed rounds half away from zero on the binary value, as Python's format does
    return f"{value:.0f} {units[unit]}" if value >= 100 else f"{value:.1f} {units[unit]}"


def shot(page, name: str, full_page: bool = False) -> None:
    """Save the page as it is now as docs' ``name``.png (only with SQUEEZER_WEB_SCREENSHOTS)."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=full_page,
                        animations="disabled", caret="hide")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (.ci/run installs it with apt)")
    with sync_api.sync_playwright() as p:
        try:
            chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        except sync_api.Error as exc:  # a Chromium this Playwright cannot drive: say so, skip
            pytest.skip(f"{CHROMIUM} does not start under Playwright: {exc.message.splitlines()[0]}")
        yield chromium
        chromium.close()


class Pages:
    """Browser contexts (each its own localStorage) and their pages; JavaScript errors fail."""

    def __init__(self, browser) -> None:
        self.browser, self.contexts, self.errors = browser, [], []

    def context(self, viewport=DESKTOP, **kwargs):
        context = self.browser.new_context(accept_downloads=True, viewport=viewport, **kwargs)
        self.contexts.append(context)
        return context

    def page(self, context=None, **kwargs):
        page = (context or self.context(**kwargs)).new_page()
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        # intercept file choosers from the start: Playwright turns interception on when the
        # first listener is added, asynchronously; a key press racing it (a loaded machine)
        # opened a native dialog instead, and no chooser can open while one is showing
        page.on("filechooser", lambda chooser: None)
        return page


@pytest.fixture
def pages(browser):
    made = Pages(browser)
    yield made
    for context in made.contexts:
        context.close()
    assert made.errors == [], f"JavaScript errors on the page: {made.errors}"


@pytest.fixture
def page(pages):
    return pages.page()


def sign_in(page, url: str, key: str) -> None:
    page.goto(url + "/")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Save key").click()
    page.wait_for_selector("body[data-ready]")


def drop(page, files: list[tuple[str, str, bytes]]) -> None:
    """Drop ``(name, type, bytes)`` files on the drop zone, as a drag from the desktop does."""
    payload = [{"name": n, "type": t, "data": base64.b64encode(b).decode()} for n, t, b in files]
    transfer = page.evaluate_handle("""files => {
        const dt = new DataTransfer();
        for (const f of files) {
            const bytes = Uint8Array.from(atob(f.data), c => c.charCodeAt(0));
            dt.items.add(new File([bytes], f.name, {type: f.type}));
        }
        return dt;
    }""", payload)
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})


def wait_all_ended(page, timeout: float = 240_000) -> None:
    try:
        page.wait_for_function(
            f"() => {{ const li = [...document.querySelectorAll('.file')];"
            f" return li.length && li.every(x => {ENDED}.includes(x.dataset.state)); }}",
            timeout=timeout)
    except Exception as exc:  # say which files had not ended, and where they stood
        states = page.evaluate("[...document.querySelectorAll('.file')].map(li =>"
                               " li.querySelector('.name').textContent + ': ' + li.dataset.state"
                               " + ' ' + li.querySelector('.status').textContent)")
        raise AssertionError(f"files still busy after {timeout / 1000:.0f} s: {states}") from exc


def wait_state(page, li, states: str, timeout: float = 60_000) -> None:
    page.wait_for_function(f"li => {states}.includes(li.dataset.state)", arg=li.element_handle(),
                           timeout=timeout)


def item(page, name: str):
    """The card of the file named exactly ``name``."""
    return page.locator(".file", has=page.locator(".name", has_text=re.compile(
        "^" + re.escape(name) + "$")))


def wait_previews(page, li) -> None:
    li.locator(".compare:not([hidden])").wait_for()
    page.wait_for_function(
        "li => [...li.querySelectorAll('.compare img')].every(i => i.complete && i.naturalWidth > 0)",
        arg=li.element_handle())


def viewer_page_shown(page, number: int) -> None:
    page.wait_for_function(
        "n => { const d = document.querySelector('#viewer'); return d.open && d.dataset.page === String(n)"
        " && [...d.querySelectorAll('.vlayer img')].length === 2"
        " && [...d.querySelectorAll('.vlayer img')].every(i => i.complete && i.naturalWidth > 0); }",
        arg=number)


def zoom(page) -> float:
    return float(page.locator("#viewer").get_attribute("data-zoom"))


def tab_to(page, selector: str, presses: int = 80) -> None:
    """Press Tab until the element matching ``selector`` has the focus (keyboard only)."""
    for _ in range(presses):
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {selector}")


def open_chooser_with_enter(page):
    """Enter on the focused "Choose files" button opens the browser's file chooser."""
    assert page.evaluate("document.activeElement.id") == "pick"
    with page.expect_file_chooser(timeout=60_000) as chooser:
        page.keyboard.press("Enter")
    return chooser.value


# --- files of every kind, made here -----------------------------------------------------------


def photo(size: tuple[int, int] = (320, 240)) -> Image.Image:
    width, height = size
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    rgb = np.stack([255 * x / width, 255 * y / height, 127 + 100 * np.sin(x / 17) * np.cos(y / 13)], -1)
    noise = np.random.default_rng(1).normal(0, 6, rgb.shape)
    return Image.fromarray(np.clip(rgb + noise, 0, 255).astype(np.uint8))


def _image(fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    photo().save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _gif() -> bytes:
    frames = [photo().quantize(64), photo().rotate(180).quantize(64)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return buf.getvalue()


def _heic() -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    return _image("HEIF", quality=95)


def _svg() -> bytes:
    return (b'<?xml version="1.0"?>\n<!-- made by test_web -->\n'
            b'<svg xmlns="http://www.w3.org/2000/svg" width="120" height="80">'
            b'<metadata>editor data</metadata>'
            b'<rect x="10.000000" y="10.000000" width="100.000000" height="60.000000" '
            b'fill="#1f6f5c" stroke-width="1.000000"/></svg>\n')


def _zip(members: dict[str, bytes], first: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        if first:
            z.writestr(first, members.pop(first))
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def _ooxml(main: str, part: str, xml: bytes) -> bytes:
    """The least an Office file is: content types naming its main part, the package's
    relationships and that part."""
    types = (b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
             b'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-'
             b'package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
             b'<Override PartName="/' + part.encode() + b'" ContentType="application/vnd.'
             b'openxmlformats-officedocument.' + main.encode() + b'.main+xml"/></Types>')
    rels = (b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/'
            b'2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
            b'officeDocument/2006/relationships/officeDocument" Target="' + part.encode() + b'"/>'
            b'</Relationships>')
    return _zip({"[Content_Types].xml": types, "_rels/.rels": rels, part: xml})


def _docx() -> bytes:
    return _ooxml("wordprocessingml.document", "word/document.xml",
                  b'<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
                  b'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello from test_web</w:t>'
                  b'</w:r></w:p></w:body></w:document>')


def _xlsx() -> bytes:
    return _ooxml("spreadsheetml.sheet", "xl/workbook.xml",
                  b'<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/'
                  b'spreadsheetml/2006/main"><sheets/>' + b"<!-- padding -->" * 300
                  + b'</workbook>')


def _pptx() -> bytes:
    return _ooxml("presentationml.presentation", "ppt/presentation.xml",
                  b'<?xml version="1.0"?><p:presentation xmlns:p="http://schemas.openxmlformats.org/'
                  b'presentationml/2006/main">' + b"<!-- padding -->" * 300 + b'</p:presentation>')


def _7z() -> bytes:
    import py7zr

    buf = io.BytesIO()
    with py7zr.SevenZipFile(buf, "w", filters=[{"id": py7zr.FILTER_COPY}]) as z:
        z.writestr(b"squeezer " * 4000, "notes.txt")
    return buf.getvalue()


def _compressed_tar(mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        data = b"squeezer " * 4000
        info = tarfile.TarInfo("notes.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _tar_gz() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=1) as tar:
        data = b"squeezer " * 4000
        info = tarfile.TarInfo("notes.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _wav() -> bytes:
    buf = io.BytesIO()
    t = np.arange(44100 * 2) / 44100
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2")
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(44100)
        w.writeframes(tone.tobytes())
    return buf.getvalue()


def _ffmpeg(*args: str, suffix: str) -> bytes:
    """A file made by the media engine's own ffmpeg (there whenever video and audio are)."""
    from squeezer.engines.media import ffmpeg

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / ("made" + suffix)
        subprocess.run([ffmpeg.executable(), "-hide_banner", "-nostdin", "-v", "error", *args,
                        str(out)], capture_output=True, check=True, timeout=120)
        return out.read_bytes()


def _mp4() -> bytes:
    return _h264(".mp4")


def _h264(suffix: str) -> bytes:
    """A second of ffmpeg's test pattern with a tone, H.264 at a high quality (room to shrink)."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=240x180:rate=25", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=44100", "-t", "1", "-pix_fmt", "yuv420p",
                   "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-c:a", "aac",
                   "-b:a", "192k", *(["-movflags", "+faststart"] if suffix in (".mp4", ".mov") else []),
                   suffix=suffix)


def _webm() -> bytes:
    """VP9 + Opus, as a browser records: plays in Chromium before and after."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=240x180:rate=25", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=48000", "-t", "1", "-pix_fmt", "yuv420p",
                   "-c:v", "libvpx-vp9", "-deadline", "realtime", "-crf", "10", "-b:v", "0",
                   "-c:a", "libopus", suffix=".webm")


def _avi() -> bytes:
    """MPEG-4 part 2 + MP3 in AVI: a browser cannot play the original, only the result."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=240x180:rate=25", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=44100", "-t", "1", "-pix_fmt", "yuv420p",
                   "-c:v", "mpeg4", "-q:v", "2", "-c:a", "libmp3lame", "-b:a", "192k",
                   suffix=".avi")


def _tone(*codec: str, suffix: str) -> bytes:
    return _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "2", *codec,
                   suffix=suffix)


def _odt() -> bytes:
    manifest = (b'<?xml version="1.0"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:'
                b'opendocument:xmlns:manifest:1.0" manifest:version="1.2"><manifest:file-entry '
                b'manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.'
                b'text"/><manifest:file-entry manifest:full-path="content.xml" '
                b'manifest:media-type="text/xml"/></manifest:manifest>')
    content = (b'<?xml version="1.0"?><office:document-content xmlns:office="urn:oasis:names:tc:'
               b'opendocument:xmlns:office:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:'
               b'text:1.0" office:version="1.2"><office:body><office:text><text:p>'
               + b"Hello from test_web. " * 200 + b'</text:p></office:text></office:body>'
               b'</office:document-content>')
    return _zip({"mimetype": b"application/vnd.oasis.opendocument.text",
                 "META-INF/manifest.xml": manifest, "content.xml": content}, first="mimetype")


def _epub() -> bytes:
    container = (b'<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                 b'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf"'
                 b' media-type="application/oebps-package+xml"/></rootfiles></container>')
    opf = (b'<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
           b'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
           b'<dc:identifier id="id">test-web</dc:identifier><dc:title>Test</dc:title>'
           b'<dc:language>en</dc:language></metadata><manifest><item id="c1" href="c1.xhtml" '
           b'media-type="application/xhtml+xml"/><item id="pic" href="drawing.svg" '
           b'media-type="image/svg+xml"/></manifest><spine><itemref idref="c1"/></spine></package>')
    chapter = (b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>1'
               b'</title></head><body><p>' + b"Once upon a time. " * 200 + b'</p>'
               b'<img src="drawing.svg" alt=""/></body></html>')
    return _zip({"mimetype": b"application/epub+zip", "META-INF/container.xml": container,
                 "OEBPS/content.opf": opf, "OEBPS/c1.xhtml": chapter, "OEBPS/drawing.svg": _svg()},
                first="mimetype")


def _tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("notes.txt", b"squeezer " * 4000), ("drawing.svg", _svg())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _written(write, suffix: str) -> bytes:
    """The bytes of a file that ``write(path)`` makes (containerfx's makers write files)."""
    with tempfile.TemporaryDirectory() as tmp:
        return Path(write(Path(tmp) / ("made" + suffix))).read_bytes()


def _tar_zst() -> bytes:
    return zstandard.ZstdCompressor(level=1).compress(_tar())


def _m4v() -> bytes:
    """H.264 + AAC in an MP4 branded ``M4V `` (what iTunes and Handbrake write)."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=240x180:rate=25", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=44100", "-t", "1", "-pix_fmt", "yuv420p",
                   "-c:v", "libx264", "-preset", "ultrafast", "-crf", "10", "-c:a", "aac",
                   "-b:a", "192k", "-f", "mp4", "-brand", "M4V ", "-movflags", "+faststart",
                   suffix=".m4v")


def _3gp() -> bytes:
    """H.263 + AMR-NB at 176 x 144 in 3GP: what a feature phone records."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=176x144:rate=15", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=8000", "-t", "1", "-c:v", "h263", "-q:v", "2",
                   "-c:a", "libopencore_amrnb", "-ar", "8000", "-ac", "1", "-b:a", "12.2k",
                   suffix=".3gp")


def _ogv() -> bytes:
    """Theora + Vorbis in Ogg (the wheel's ffmpeg has libtheora)."""
    return _ffmpeg("-f", "lavfi", "-i", "testsrc=size=240x180:rate=25", "-f", "lavfi", "-i",
                   "sine=frequency=440:sample_rate=44100", "-t", "1", "-pix_fmt", "yuv420p",
                   "-c:v", "libtheora", "-q:v", "9", "-c:a", "libvorbis", "-q:a", "6",
                   suffix=".ogv")


#: sniffed format -> (file name, bytes maker); a family the server gains needs at least one
MAKERS = {
    "jpeg": ("photo.jpg", lambda: _image("JPEG", quality=95)),
    "png": ("picture.png", lambda: _image("PNG")),
    "gif": ("animation.gif", _gif),
    "webp": ("picture.webp", lambda: _image("WEBP", quality=95)),
    "avif": ("picture.avif", lambda: _image("AVIF", quality=95)),
    "heic": ("picture.heic", _heic),
    "tiff": ("scan.tiff", lambda: _image("TIFF")),
    "bmp": ("screen.bmp", lambda: _image("BMP")),
    "svg": ("drawing.svg", _svg),
    "docx": ("letter.docx", _docx),
    "zip": ("bundle.zip", lambda: _zip({"a.txt": b"squeezer " * 2000, "b.svg": _svg()})),
    "tar.gz": ("notes.tar.gz", _tar_gz),
    "odt": ("report.odt", _odt),
    "epub": ("story.epub", _epub),
    "tar": ("bundle.tar", _tar),
    "gz": ("log.txt.gz", lambda: zlib.compress(b"squeezer " * 4000, 1, wbits=31)),
    "xz": ("log.txt.xz", lambda: lzma.compress(b"squeezer " * 4000, preset=0)),
    "zst": ("log.txt.zst", lambda: zstandard.ZstdCompressor(level=1).compress(b"squeezer " * 4000)),
    "tar.xz": ("notes.tar.xz", lambda: _compressed_tar("w:xz")),
    "tar.bz2": ("notes.tar.bz2", lambda: _compressed_tar("w:bz2")),
    "7z": ("notes.7z", _7z),
    "xlsx": ("sheet.xlsx", _xlsx),
    "pptx": ("slides.pptx", _pptx),
    "wav": ("tone.wav", _wav),
    "mp3": ("tone.mp3", lambda: _tone("-c:a", "libmp3lame", "-b:a", "320k", suffix=".mp3")),
    "flac": ("tone.flac", lambda: _tone("-c:a", "flac", suffix=".flac")),
    "ogg": ("tone.ogg", lambda: _tone("-c:a", "libvorbis", "-q:a", "9", suffix=".ogg")),
    "opus": ("tone.opus", lambda: _tone("-c:a", "libopus", "-b:a", "256k", suffix=".opus")),
    "m4a": ("tone.m4a", lambda: _tone("-c:a", "aac", "-b:a", "256k", suffix=".m4a")),
    "aac": ("tone.aac", lambda: _tone("-c:a", "aac", "-b:a", "256k", suffix=".aac")),
    "weba": ("tone.weba", lambda: _tone("-c:a", "libopus", "-b:a", "256k", "-f", "webm",
                                        suffix=".weba")),
    "mka": ("tone.mka", lambda: _tone("-c:a", "flac", suffix=".mka")),
    "aiff": ("tone.aiff", lambda: _tone("-c:a", "pcm_s16be", suffix=".aiff")),
    "mp4": ("clip.mp4", _mp4),
    "webm": ("clip.webm", _webm),
    "mov": ("clip.mov", lambda: _h264(".mov")),
    "mkv": ("clip.mkv", lambda: _h264(".mkv")),
    "avi": ("clip.avi", _avi),
    "mpegts": ("clip.ts", lambda: _h264(".ts")),
    "m4v": ("clip.m4v", _m4v),
    "3gp": ("phone.3gp", _3gp),
    "ogv": ("clip.ogv", _ogv),
    "tar.zst": ("bundle.tar.zst", _tar_zst),
    "jar": ("library.jar", lambda: _written(containerfx.jar, ".jar")),
    # every APK in the wild is signed: the engine keeps a signed package byte-identical
    "apk": ("app.apk", lambda: _written(containerfx.signed_apk, ".apk")),
    **{kind: (f"{name}.{kind}", lambda kind=kind: _written(
        lambda path: containerfx.office(kind, path), "." + kind))
       for kind, name in (("docm", "macros"), ("dotx", "letterhead"), ("xlsm", "budget"),
                          ("xltx", "invoice"), ("pptm", "quiz"), ("ppsx", "kiosk"),
                          ("potx", "theme"))},
    **{kind: (f"{name}.{kind}", lambda kind=kind: _written(
        lambda path: containerfx.odf(kind, path), "." + kind))
       for kind, name in (("ods", "table"), ("odp", "talk"), ("odg", "plan"),
                          ("ott", "memo"), ("ots", "timesheet"), ("otp", "deck"))},
}
#: originals no Chromium plays (MPEG-4 part 2 in AVI, MPEG-TS, AIFF, H.263 + AMR in 3GP) -> the
#: name the pane gives them; their results (MP4, M4A or Opus) play.  Debian's Chromium plays
#: Theora (the OGV) and M4V
UNPLAYABLE = {"clip.avi": "AVI", "clip.ts": "MPEG-TS", "tone.aiff": "AIFF", "phone.3gp": "3GP"}


# --- the tests ----------------------------------------------------------------------------------


def test_drop_compress_compare_download(service, fx, page, tmp_path):
    photo_pdf, text = fx.photo(), fx.uncompressed()
    image = io.BytesIO()
    Image.effect_noise((64, 64), 40).convert("RGB").save(image, format="PNG")
    sign_in(page, service.url, service.key)
    shot(page, "empty")
    picture = tmp_path / "picture.png"
    picture.write_bytes(image.getvalue())
    drop(page, [("photo.pdf", "application/pdf", photo_pdf.read_bytes()),
                ("letter.pdf", "application/pdf", text.read_bytes()),
                ("picture.png", "image/png", image.getvalue()),
                ("notes.txt", "text/plain", b"just some words, not a document")])
    wait_all_ended(page)

    # not a kind of file the server takes: refused by the API (415), in plain words, with
    # the kinds it does take (from GET /v1/options)
    refused = item(page, "notes.txt")
    assert refused.get_attribute("data-state") == "failed"
    words = refused.locator(".error").inner_text()
    assert "cannot compress this kind of file" in words and "PDF documents" in words

    with service.client() as api:
        li = item(page, "picture.png")  # an image goes through the image engine
        assert li.get_attribute("data-state") == "done", li.inner_text()
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
        assert job["result"]["output"]["mime"] == "image/png"
        assert int(li.locator(".sizes").get_attribute("data-output-size")) == \
            job["result"]["output"]["size"]
        assert li.locator(".kind").inner_text() == "PNG"
        wait_previews(page, li)  # shown by the browser itself
        with page.expect_download() as info:
            li.get_by_role("link", name=f"Download {job['result']['output']['name']}").click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert saved.stat().st_size == job["result"]["output"]["size"]
        assert saved.stat().st_size <= picture.stat().st_size
        with Image.open(saved) as out:
            assert out.format == "PNG" and out.size == (64, 64)
        # the input's signed link (what video and audio players use) needs no key
        link = api.get(f"/v1/files/{job['input']['file_id']}/link").json()
        assert httpx.get(link["url"]).content == picture.read_bytes()

        for name, src in (("photo.pdf", photo_pdf), ("letter.pdf", text)):
            li = item(page, name)
            assert li.get_attribute("data-state") == "done", li.inner_text()
            job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
            result = job["result"]
            sizes = li.locator(".sizes")
            assert int(sizes.get_attribute("data-input-size")) == result["input"]["size"] \
                == src.stat().st_size
            assert int(sizes.get_attribute("data-output-size")) == result["output"]["size"]
            assert li.locator(".before").inner_text() == fmt_bytes(result["input"]["size"])
            assert li.locator(".after").inner_text() == fmt_bytes(result["output"]["size"])
            assert li.locator(".saved").inner_text().startswith("−")
            assert "Kept on the server until" in li.locator(".expires").inner_text()
            assert li.locator(".download").get_attribute("href").endswith(
                result["download_url"].split("/v1/downloads/")[1])
            wait_previews(page, li)
            with page.expect_download() as info:
                li.get_by_role("link", name=f"Download {result['output']['name']}").click()
            saved = tmp_path / info.value.suggested_filename
            info.value.save_as(saved)
            assert saved.stat().st_size == result["output"]["size"] < src.stat().st_size
            with pikepdf.open(saved) as out, pikepdf.open(src) as original:
                assert len(out.pages) == len(original.pages)

    # plain words first; the engine's own terms behind "Engine details"
    li = item(page, "photo.pdf")
    plain = li.locator(".plain").inner_text()
    assert "picture made smaller" in plain and "Checked: the page opens" in plain
    details = li.locator(".details")
    assert not details.locator(".facts").is_visible()
    details.locator("summary").click()
    assert details.locator(".facts").is_visible()
    assert "Saved by step" in details.inner_text() and "jpeg" in details.inner_text().lower()
    page.locator(".file .split").first.fill("62")
    shot(page, "results", full_page=True)

    # full screen: a document's pages one by one, zoomed and moved, overlay or side by side
    li = item(page, "letter.pdf")
    li.get_by_role("button", name="Compare letter.pdf before and after, full screen").click()
    viewer_page_shown(page, 1)
    assert page.locator("#viewer .vpages-of").inner_text() == "of 2"
    page.locator("#viewer .vnext").click()
    viewer_page_shown(page, 2)
    page.locator("#viewer .vprev").click()
    viewer_page_shown(page, 1)
    picker = page.locator("#viewer .vpage")  # the page picker: a number past the end -> the last
    picker.fill("9")
    picker.press("Enter")
    viewer_page_shown(page, 2)
    assert picker.input_value() == "2"
    page.locator("#viewer .vin").click()
    page.locator("#viewer .vin").click()
    assert zoom(page) == pytest.approx(1.5625, abs=1e-3)
    before = page.locator("#viewer .vpane-after img").evaluate("i => i.style.transform")
    stage = page.locator("#viewer .vstage").bounding_box()
    page.mouse.move(stage["x"] + stage["width"] * 0.8, stage["y"] + 200)
    page.mouse.down()
    page.mouse.move(stage["x"] + stage["width"] * 0.8 - 150, stage["y"] + 120, steps=5)
    page.mouse.up()
    assert page.locator("#viewer .vpane-after img").evaluate("i => i.style.transform") != before
    # the wheel zooms about the pointer: up in, down out
    page.mouse.move(stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2)
    zoomed = zoom(page)
    page.mouse.wheel(0, -240)
    page.wait_for_function("z => Number(document.querySelector('#viewer').dataset.zoom) > z",
                           arg=zoomed)
    page.mouse.wheel(0, 240)
    page.wait_for_function("z => Math.abs(Number(document.querySelector('#viewer').dataset.zoom)"
                           " - z) < 1e-3", arg=zoomed)
    page.locator("#viewer .vsplit-input").fill("30")
    assert page.locator("#viewer .vstage").evaluate("s => s.style.getPropertyValue('--split')") \
        == "30%"
    shot(page, "compare")
    page.locator("#viewer .vmode").click()
    assert page.locator("#viewer").evaluate("d => d.classList.contains('side')")
    shot(page, "compare-side-by-side")
    page.keyboard.press("Escape")
    assert not page.locator("#viewer").evaluate("d => d.open")

    # all results as one ZIP, built in the browser
    with page.expect_download() as info:
        page.get_by_role("button", name="Download all (ZIP)").click()
    archive = tmp_path / "all.zip"
    info.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        assert z.testzip() is None
        assert sorted(z.namelist()) == sorted(p.name for p in tmp_path.glob("*.compressed.*"))
        for entry in z.namelist():
            assert z.read(entry) == (tmp_path / entry).read_bytes()

    # delete now: the result and the upload are gone from the server
    li = item(page, "letter.pdf")
    with service.client() as api:
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
    li.get_by_role("button", name="Delete letter.pdf from the server now").click()
    page.wait_for_function("li => li.dataset.state === 'deleted'", arg=li.element_handle())
    assert "Deleted from the server" in li.inner_text()
    with service.client() as api:
        assert api.get(f"/v1/files/{job['result']['output']['file_id']}").status_code == 410
        assert api.get(f"/v1/files/{job['input']['file_id']}").status_code == 410

    # a reload shows the list as it was: results, the deletion, the refusal
    shown = {n: item(page, n).locator(".after").inner_text() for n in ("photo.pdf", "picture.png")}
    page.reload()
    page.wait_for_selector("body[data-ready]")
    wait_all_ended(page)
    assert page.locator(".file .name").all_inner_texts() == \
        ["photo.pdf", "letter.pdf", "picture.png", "notes.txt"]
    for name, after in shown.items():
        assert item(page, name).get_attribute("data-state") == "done"
        assert item(page, name).locator(".after").inner_text() == after
    assert item(page, "letter.pdf").get_attribute("data-state") == "deleted"
    assert item(page, "notes.txt").get_attribute("data-state") == "failed"
    # "Clear finished" empties the list, here and after the next reload
    page.get_by_role("button", name="Clear finished").click()
    assert page.locator(".file").count() == 0
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert page.locator(".file").count() == 0


#: the every-format test in parts xdist can run side by side: families -> the screenshot's name
FORMAT_GROUPS = {"documents": (("pdf", "archive"), "formats"),
                 "pictures": (("image",), "formats-pictures"),
                 "media": (("video", "audio"), "formats-media")}


def _samples(fx) -> dict[str, tuple[str, object]]:
    return {**MAKERS, "pdf": ("document.pdf", lambda: fx.text().read_bytes())}


def test_every_listed_format_has_a_sample(service, fx):
    """Every format GET /v1/options lists has a sample, in exactly one part of the
    every-format test (a format the server gains needs one in MAKERS)."""
    described = httpx.get(service.url + "/v1/options").json()
    listed = [fmt for family in described["formats"] for fmt in family["formats"]]
    assert len(listed) == len(set(listed))
    assert sorted(_samples(fx)) == sorted(listed), "add a sample to MAKERS (or drop one)"
    grouped = [f for families, _ in FORMAT_GROUPS.values() for f in families]
    assert sorted(grouped) == sorted(f["name"] for f in described["formats"])
    names = [name for name, _ in _samples(fx).values()]
    assert len(names) == len(set(names))  # the test finds each file by its name


def _member(data: bytes, name: str) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return z.read(name)


@pytest.mark.parametrize("group", list(FORMAT_GROUPS))
def test_every_format(service, fx, page, tmp_path, group):
    """Every format GET /v1/options lists for the group's families, dropped on the page
    together: each ends done, with its plain words, engine details and the right preview or
    players; the result's bytes are checked through the API (smaller or the original, the
    format kept or converted as the report says, signed and macro parts untouched)."""
    described = httpx.get(service.url + "/v1/options").json()
    families, shot_name = FORMAT_GROUPS[group]
    samples = _samples(fx)
    files, family_of, format_of, media = [], {}, {}, []
    for family in described["formats"]:
        if family["name"] not in families:
            continue
        for fmt in family["formats"]:
            name, maker = samples[fmt]  # test_every_listed_format_has_a_sample: all there
            files.append((name, "", maker()))
            family_of[name], format_of[name] = family["name"], fmt
    assert {family_of[n] for n, _, _ in files} == set(families)
    sign_in(page, service.url, service.key)
    drop(page, files)
    wait_all_ended(page, timeout=900_000)  # one worker; videos' VMAF searches
    with service.client() as api:
        for name, _, data in files:
            li = item(page, name)
            assert li.get_attribute("data-state") == "done", f"{name}: {li.inner_text()}"
            job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
            result, report, fmt = job["result"], job["result"]["report"], format_of[name]
            assert (report.get("kind") or "pdf") in (family_of[name], "audio"), name  # a
            # video file without moving pictures would go to the audio engine: none here
            assert report.get("format_in", "pdf") == fmt, (name, report.get("format_in"))
            output = api.get(f"/v1/files/{result['output']['file_id']}/content").content
            assert len(output) == result["output"]["size"]
            assert len(output) <= len(data), name  # never larger, converted or not
            assert li.locator(".kind").inner_text() != ""
            plain = li.locator(".plain").inner_text()
            assert li.locator(".plain li").count() >= 1, name  # something in plain words
            if report.get("format_out", fmt) != fmt:  # a MOV comes back as MP4: it says so
                assert "Converted from " in plain, (name, plain)
            assert "as you asked" not in plain, (name, plain)  # nothing was asked here
            assert li.locator(".details .facts dt").count() >= 1, name
            mime = result["output"]["mime"]
            if family_of[name] == "archive":
                assert mime == CONTAINER_FORMATS[fmt][1], (name, mime)  # the same kind back
                if report.get("signed"):  # kept byte-identical unless asked (docs/containers.md)
                    assert fmt == "apk" and output == data and result["original_kept"]
                    assert plain.startswith("It is signed, so you get it back unchanged"), plain
                    assert "warning" not in plain
                elif result["original_kept"]:
                    assert output == data and plain.startswith("Already as small"), plain
                else:  # a tar's records keep its length whatever its members lose
                    assert len(output) <= len(data), (name, len(output), len(data))
                    assert re.match(r"(\d+ files? of \d+ inside made smaller|The files inside "
                                    r"were packed more tightly)", plain), (name, plain)
                    assert "Checked: it opens and reads the same." in plain, (name, plain)
                assert li.locator(".details table.members tbody tr").count() >= 1, name
                if fmt in ("docm", "xlsm", "pptm"):  # the macros are there, byte for byte
                    folder = containerfx.OFFICE[fmt][1].split("/")[0]
                    part = f"{folder}/vbaProject.bin"
                    assert _member(output, part) == _member(data, part) == \
                        containerfx.vba_project()
            elif mime in ("image/heic", "image/tiff"):  # Chromium shows neither
                assert "No preview" in li.locator(".preview-note").inner_text()
            elif mime.startswith("image/") or mime == "application/pdf":
                wait_previews(page, li)
            else:
                assert mime.split("/")[0] in ("video", "audio"), (name, mime)
                assert li.get_by_role("button", name="Play before and after").is_visible()
                media.append((name, mime.split("/")[0]))
    shot(page, shot_name, full_page=True)

    # video and audio play full screen, before and after side by side, from signed links;
    # playing one plays the other; an original the browser cannot play says so in its pane
    for name, kind in media:
        item(page, name).get_by_role("button", name="Play before and after").click()
        playable = 1 if name in UNPLAYABLE else 2
        try:
            page.wait_for_function(
                "args => { const [kind, n] = args;"
                " const m = [...document.querySelectorAll('#viewer .vmedia')];"
                " return document.querySelector('#viewer').open && m.length === n"
                " && m.every(x => x.tagName.toLowerCase() === kind && x.readyState >= 1"
                " && x.duration > 0.5) && document.querySelectorAll('#viewer .vcannot').length"
                " === 2 - n; }", arg=[kind, playable], timeout=60_000)
        except Exception as exc:  # say which file, and what each pane shows
            panes = page.locator("#viewer .vlayer").all_inner_texts()
            raise AssertionError(f"{name}: {playable} of 2 players expected; panes: {panes}") \
                from exc
        if name in UNPLAYABLE:
            cannot = page.locator("#viewer .vpane-before .vcannot").inner_text()
            assert f"cannot play the original ({UNPLAYABLE[name]})" in cannot, cannot
            page.locator("#viewer .vpane-after .vmedia").evaluate(
                "m => { m.muted = true; return m.play(); }")
            page.wait_for_function("() => document.querySelector('#viewer .vmedia').currentTime"
                                   " > 0", timeout=30_000)
            if name == "clip.avi":
                shot(page, "play-unplayable")
        else:
            before, after = page.locator("#viewer .vmedia").all()
            after.evaluate("m => { m.muted = true; return m.play(); }")
            page.wait_for_function("m => !m.paused && m.currentTime > 0",
                                   arg=before.element_handle(), timeout=30_000)
            after.evaluate("m => m.pause()")
            page.wait_for_function("m => m.paused", arg=before.element_handle())
            if name in ("clip.mp4", "tone.wav"):
                shot(page, f"play-{kind}")
        page.keyboard.press("Escape")
        assert not page.locator("#viewer").evaluate("d => d.open")
    assert {kind for _, kind in media} == set(families) & {"video", "audio"}


def _big_pdf(path: Path, pages: int = 12, side: int = 2048) -> Path:
    """About 150 MB (a "100 MB upload" with room): camera-noise pictures stored raw, drawn at
    147 dpi (no downsampling), so the engine tries every pixel (noise is its slowest case: about
    2 s of CPU a page). The job must still be running after the test's reload and second tab;
    it is cancelled, so the extra pages cost the test only their upload."""
    pdf = pikepdf.new()
    base = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    for i in range(pages):
        stream = pikepdf.Stream(pdf, np.roll(base, i * 97, axis=1).tobytes())
        stream.stream_dict = pikepdf.Dictionary(
            Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side, Height=side,
            ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8)
        image = pdf.make_indirect(stream)
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=pikepdf.Array([0, 0, 1100, 1100]),
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
            Contents=pdf.make_stream(b"q 1000 0 0 1000 50 50 cm /Im0 Do Q"))))
    pdf.save(path, compress_streams=False)
    pdf.close()
    return path


RECORD = """() => {
    window.__seen = {uploaded: new Set(), progress: new Set(), status: new Set()};
    new MutationObserver(changes => { for (const c of changes) {
        const li = c.target.closest && c.target.closest('.file');
        if (!li) continue;
        if (li.dataset.uploaded) window.__seen.uploaded.add(Number(li.dataset.uploaded));
        if (li.dataset.progress) window.__seen.progress.add(Number(li.dataset.progress));
        window.__seen.status.add(li.querySelector('.status').textContent);
    }}).observe(document.querySelector('#files'),
                {subtree: true, attributes: true, childList: true, characterData: true});
}"""


def test_big_upload_progress_reload_other_tab_and_cancel(service, fx, pages, tmp_path):
    big = _big_pdf(tmp_path / "big.pdf")
    assert big.stat().st_size > 100_000_000
    context = pages.context()
    page = pages.page(context)
    sign_in(page, service.url, service.key)
    page.evaluate(RECORD)
    page.set_input_files("#fileinput", str(big))
    li = item(page, "big.pdf")
    wait_state(page, li, "['queued', 'running']", timeout=120_000)
    seen = page.evaluate("[...window.__seen.uploaded]")
    assert len([p for p in seen if 0 < p < 100]) >= 3, f"upload progress not shown: {seen}"
    assert any("Uploading…" in s and "MB of" in s for s in page.evaluate("[...window.__seen.status]"))
    wait_state(page, li, "['running']")
    job_id = li.get_attribute("data-job-id")

    # one worker is busy: a second file waits, and says where it stands
    page.set_input_files("#fileinput", str(fx.text()))
    small = item(page, "text.pdf")
    wait_state(page, small, "['queued']")
    page.wait_for_function("li => li.querySelector('.status').textContent.includes('Next in line')",
                           arg=small.element_handle())
    with service.client() as api:
        queued = api.get(f"/v1/jobs/{small.get_attribute('data-job-id')}").json()
    assert queued["state"] == "queued" and queued["queue_position"] == 1
    shot(page, "progress")

    # reload mid-job: the list comes back with the running job, which goes on moving
    page.reload()
    page.wait_for_selector("body[data-ready]")
    li = item(page, "big.pdf")
    assert li.get_attribute("data-job-id") == job_id
    assert li.get_attribute("data-state") in ("running", "done"), li.inner_text()
    assert li.get_attribute("data-state") == "running", "the 100 MB job ended before the test " \
        "could cancel it: make _big_pdf slower"
    assert item(page, "text.pdf").get_attribute("data-state") == "queued"
    # ... and another tab shows the same files
    other = pages.page(context)
    other.goto(service.url + "/")
    other.wait_for_selector("body[data-ready]")
    assert item(other, "big.pdf").get_attribute("data-job-id") == job_id
    assert item(other, "big.pdf").get_attribute("data-state") == "running"

    # nothing has ended: nothing to clear; a refused file ends at once, and "Clear finished"
    # takes it away and leaves the running and the waiting one
    assert page.get_by_role("button", name="Clear finished").is_disabled()
    drop(page, [("notes.txt", "text/plain", b"just some words, not a document")])
    wait_state(page, item(page, "notes.txt"), "['failed']")
    page.get_by_role("button", name="Clear finished").click()
    assert page.locator(".file .name").all_inner_texts() == ["big.pdf", "text.pdf"]
    assert page.get_by_role("button", name="Clear finished").is_disabled()
    # cancel mid-job, from the card, with the keyboard; the other tab follows; the next file
    # gets the worker
    tab_to(page, 'button.cancel[aria-label="Cancel big.pdf"]', presses=150)
    page.keyboard.press("Enter")
    wait_state(page, li, "['cancelled']")
    assert "Cancelled" in li.locator(".error").inner_text()
    with service.client() as api:
        job = api.get(f"/v1/jobs/{job_id}").json()
    assert job["state"] == "cancelled" and job["result"] is None
    wait_state(other, item(other, "big.pdf"), "['cancelled']")
    shot(page, "cancelled")
    wait_state(page, item(page, "text.pdf"), "['done']", timeout=120_000)
    wait_state(other, item(other, "text.pdf"), "['done']", timeout=60_000)


def test_progress_moves_and_estimates_time(service, page, tmp_path):
    """A document with many pictures: the card's percentage moves with the engine's images step
    (not 20 % -> done), and says about how long is left."""
    pdf = pikepdf.new()
    # long enough (~20 s on a fast machine) for several 0.5 s progress writes in the images
    # step and for the page to estimate the time left
    side = 2000
    base = np.asarray(photo((side, side)))
    for i in range(64):
        stream = pikepdf.Stream(pdf, zlib.compress(np.roll(base, i * 31, axis=0).tobytes(), 1))
        stream.stream_dict = pikepdf.Dictionary(
            Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Image, Width=side, Height=side,
            ColorSpace=pikepdf.Name.DeviceRGB, BitsPerComponent=8, Filter=pikepdf.Name.FlateDecode)
        pdf.pages.append(pikepdf.Page(pikepdf.Dictionary(
            Type=pikepdf.Name.Page, MediaBox=pikepdf.Array([0, 0, 612, 612]),
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=pdf.make_indirect(stream))),
            Contents=pdf.make_stream(b"q 600 0 0 600 6 6 cm /Im0 Do Q"))))
    path = tmp_path / "album.pdf"
    pdf.save(path)
    sign_in(page, service.url, service.key)
    page.evaluate(RECORD)
    page.set_input_files("#fileinput", str(path))
    wait_all_ended(page, timeout=300_000)
    assert item(page, "album.pdf").get_attribute("data-state") == "done"
    progress = sorted(page.evaluate("[...window.__seen.progress]"))
    assert len([p for p in progress if 20 <= p <= 70]) >= 3, progress  # per picture, not one jump
    statuses = [s for s in page.evaluate("[...window.__seen.status]") if "Compressing" in s]
    assert statuses and any(" left" in s for s in statuses), statuses


def test_keyboard_only(service, fx, page, tmp_path):
    page.goto(service.url + "/")
    page.wait_for_selector("#keyinput:focus")  # the key field has the focus
    page.keyboard.type(service.key)
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready]")
    assert page.evaluate("document.activeElement.id") == "pick"
    # the level: Tab into the radio group, arrows choose
    tab_to(page, 'input[name="level"]:checked')
    page.keyboard.press("ArrowDown")  # medium -> high
    assert page.evaluate("document.activeElement.value") == "high"
    # choose files with the keyboard: Shift+Tab back to the button, Enter opens the chooser
    for _ in range(40):
        if page.evaluate("document.activeElement.id") == "pick":
            break
        page.keyboard.press("Shift+Tab")
    open_chooser_with_enter(page).set_files([str(fx.text()), str(fx.photo())])
    wait_all_ended(page)
    with service.client() as api:
        job = api.get(f"/v1/jobs/{item(page, 'photo.pdf').get_attribute('data-job-id')}").json()
    assert job["options"]["level"] == "high"
    wait_previews(page, item(page, "photo.pdf"))
    # the comparison: Enter opens it, keys zoom and move, 0 fits, Esc closes and gives the
    # focus back
    tab_to(page, '.file:nth-child(2) .open-compare')
    page.keyboard.press("Enter")
    viewer_page_shown(page, 1)
    assert page.evaluate("document.activeElement.classList.contains('vstage')")
    page.keyboard.press("+")
    page.keyboard.press("+")
    assert zoom(page) == pytest.approx(1.5625, abs=1e-3)
    moved = page.locator("#viewer .vpane-after img").evaluate("i => i.style.transform")
    page.keyboard.press("ArrowLeft")
    assert page.locator("#viewer .vpane-after img").evaluate("i => i.style.transform") != moved
    page.keyboard.press("]")
    assert page.locator("#viewer .vsplit-input").input_value() == "55"
    page.keyboard.press("0")
    assert zoom(page) == 1
    page.keyboard.press("Escape")
    assert not page.locator("#viewer").evaluate("d => d.open")
    assert page.evaluate("document.activeElement.classList.contains('open-compare')")
    # download with Enter
    tab_to(page, ".file:nth-child(2) .download")
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    info.value.save_as(tmp_path / "out.pdf")
    with pikepdf.open(tmp_path / "out.pdf") as out:
        assert len(out.pages) == 1
    # engine details open with the keyboard
    tab_to(page, ".file:nth-child(2) .details summary")
    page.keyboard.press("Enter")
    assert item(page, "photo.pdf").locator(".details .facts").is_visible()
    shot(page, "keyboard", full_page=True)


def test_phone(service, fx, pages, tmp_path):
    page = pages.page(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    sign_in(page, service.url, service.key)
    shot(page, "phone-empty")
    page.set_input_files("#fileinput", [str(fx.photo()), str(fx.uncompressed())])
    # what was just added is in view, without scrolling by hand
    first = item(page, "photo.pdf")
    page.wait_for_function(
        "li => { const r = li.getBoundingClientRect(); return r.top >= 0 && r.top < innerHeight - 60; }",
        arg=first.element_handle(), timeout=30_000)
    shot(page, "phone-added")
    wait_all_ended(page)
    assert page.evaluate("document.scrollingElement.scrollHeight > innerHeight")
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.wheel(0, 600)
    page.wait_for_function("() => window.scrollY > 0")  # the page scrolls (a function: the CSP forbids eval)
    assert page.evaluate("document.scrollingElement.scrollWidth <= innerWidth")  # no sideways
    wait_previews(page, first)
    first.scroll_into_view_if_needed()
    shot(page, "phone-results")
    first.get_by_role("button", name="Compare photo.pdf before and after, full screen").tap()
    viewer_page_shown(page, 1)
    box = page.locator("#viewer").bounding_box()
    assert box["width"] == PHONE["width"] and box["height"] == PHONE["height"]
    page.locator("#viewer .vin").tap()
    assert zoom(page) == pytest.approx(1.25, abs=1e-3)
    shot(page, "phone-compare")
    # two fingers moving apart zoom in, by the ratio of their distances (touch events as a
    # touch screen sends them, through the DevTools protocol)
    stage = page.locator("#viewer .vstage").bounding_box()
    cx, cy = stage["x"] + stage["width"] / 2, stage["y"] + stage["height"] / 2
    touch = page.context.new_cdp_session(page)

    def fingers(kind: str, apart: float) -> None:
        points = [] if kind == "touchEnd" else [
            {"x": cx - apart, "y": cy, "id": 1}, {"x": cx + apart, "y": cy, "id": 2}]
        touch.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    fingers("touchStart", 40)
    for apart in (50, 60, 70, 80):
        fingers("touchMove", apart)
    fingers("touchEnd", 80)
    assert zoom(page) == pytest.approx(1.25 * 2, rel=0.1)  # 80 / 40
    page.locator("#viewer .vclose").tap()
    # the settings are under the list, folded to what matters
    page.locator("#options").scroll_into_view_if_needed()
    assert page.locator("#options").bounding_box()["y"] > page.locator("#results").bounding_box()["y"]
    shot(page, "phone-settings")


def test_settings_come_from_the_options_model(service, page, tmp_path):
    described = httpx.get(service.url + "/v1/options").json()
    sign_in(page, service.url, service.key)
    assert "PDF" not in page.title() and "PDF" not in page.locator(".drop-title").inner_text()
    # the five levels, the model's default chosen
    assert page.locator('input[name="level"]').evaluate_all("l => l.map(x => x.value)") == \
        described["levels"]
    assert page.locator('input[name="level"]:checked').get_attribute("value") == \
        described["default_level"]
    # the drop zone names the families; "Which formats?" lists every format of each
    takes = page.locator("#accepts").inner_text()
    for family in described["formats"]:  # "Documents, e-books, archives and …": each part
        for part in re.split(r", | and ", family["title"]):
            assert part.lower() in takes.lower(), (part, takes)
    page.locator("#formats summary").click()
    listed = page.locator("#formatlist").inner_text()
    for family in described["formats"]:
        assert family["title"] + ":" in listed
        for fmt in family["formats"]:
            assert fmt.upper() in listed.upper().replace("-", ""), (fmt, listed)  # MPEG-TS
    # what each level means, per family, in the model's words (plain part first)
    for family in described["formats"]:
        page.locator("#describe-for").select_option(family["name"])
        for level, summary in family["levels"].items():
            head = summary.split(":")[0]
            assert page.locator(f"#level-{level}-help").inner_text().startswith(head)
    # one control per option (the level is the radios, the password is asked per file)
    page.locator("#more > summary").click()
    shown = set(page.locator("[data-option]").evaluate_all("l => l.map(x => x.dataset.option)"))
    assert shown == {o["name"] for o in described["options"]} - {"level", "password"}
    for spec in described["options"]:
        if spec.get("minimum") is not None and spec["type"] == "integer":
            control = page.locator(f'[data-option="{spec["name"]}"]')
            assert control.get_attribute("min") == str(spec["minimum"])
            assert control.get_attribute("max") == str(spec["maximum"])
    for group, title in described["groups"].items():
        page.locator(f'details.group[data-group="{group}"] summary', has_text=title).click()
    shot(page, "settings", full_page=True)

    # an image as WebP, fitted in 32 x 32: what the controls say is what the job gets
    page.locator('[data-option="image.format"]').select_option("webp")
    page.locator('[data-option="image.resize"]').fill("fit:32x32")
    page.locator('[data-option="image.resize"]').dispatch_event("change")
    drop(page, [("wide.png", "image/png", _image("PNG"))])
    wait_all_ended(page)
    li = item(page, "wide.png")
    with service.client() as api:
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
    assert job["options"]["level"] == described["default_level"]
    assert job["options"]["image"]["format"] == "webp"
    assert (job["options"]["image"]["resize"]["mode"], job["options"]["image"]["resize"]["width"],
            job["options"]["image"]["resize"]["height"]) == ("fit", 32, 32)
    assert set(job["options"]) == {"level", "image"}  # nothing else differs from the defaults
    assert job["result"]["output"]["mime"] == "image/webp"
    assert "Converted from PNG to WebP" in li.locator(".plain").inner_text()
    assert "Resized from 320 × 240 to 32 × 24 pixels" in li.locator(".plain").inner_text()
    # the settings are kept for the next visit, and "Reset" brings back the defaults
    page.reload()
    page.wait_for_selector("body[data-ready]")
    assert page.locator('[data-option="image.format"]').input_value() == "webp"
    page.locator("#more > summary").click()
    page.locator("#reset").click()
    assert page.locator('[data-option="image.format"]').input_value() == "keep"
    assert page.locator('[data-option="image.resize"]').input_value() == ""


def test_one_default_level_everywhere(service, page, tmp_path):
    """The page, left as it opens, compresses exactly as `squeezer compress` with no options."""
    src = tmp_path / "photo.jpg"
    src.write_bytes(_image("JPEG", quality=97))
    done = subprocess.run([sys.executable, "-m", "squeezer", "compress", str(src), "--json", "-o",
                           str(tmp_path / "cli.jpg")], capture_output=True, text=True,
                          check=True, timeout=300)
    cli = json.loads(done.stdout)[0]["report"]
    sign_in(page, service.url, service.key)
    page.set_input_files("#fileinput", str(src))
    wait_all_ended(page)
    li = item(page, "photo.jpg")
    with service.client() as api:
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
    default = httpx.get(service.url + "/v1/options").json()["default_level"]
    assert job["options"] == {"level": default}
    assert job["result"]["output"]["size"] == cli["output_bytes"] == \
        (tmp_path / "cli.jpg").stat().st_size
    assert job["result"]["report"]["quality"] == cli["quality"]


def test_password_protected_pdf(service, fx, page, tmp_path):
    src = fx.encrypted()  # user password "user"
    sign_in(page, service.url, service.key)
    page.set_input_files("#fileinput", str(src))
    li = page.locator(".file").first
    password = li.get_by_label("Password of this PDF")
    password.wait_for()
    assert "protected with a password" in li.locator(".error").inner_text()
    assert password.evaluate("el => el === document.activeElement")
    shot(page, "password")

    password.fill("wrong")
    li.get_by_role("button", name="Unlock and compress").click()
    page.wait_for_function("li => li.dataset.state === 'password' && "
                           "li.querySelector('.error').textContent.includes('did not open')",
                           arg=li.element_handle(), timeout=30_000)
    password.fill("user")
    li.get_by_role("button", name="Unlock and compress").click()
    page.wait_for_function("li => li.dataset.state === 'done'", arg=li.element_handle(),
                           timeout=30_000)
    wait_previews(page, li)  # rendered with the password (X-Squeezer-Password)
    with page.expect_download() as info:
        li.locator(".download").click()
    saved = tmp_path / "out.pdf"
    info.value.save_as(saved)
    with pikepdf.open(saved, password="user") as out:
        assert len(out.pages) >= 1
    assert saved.stat().st_size <= src.stat().st_size
    with service.client() as api:
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
        assert job["options"]["password"] == "********"
    # the password is never kept by the page
    assert "user" not in json.dumps(page.evaluate("({...localStorage})"))


def test_bad_key_is_refused_in_plain_words(service, page):
    page.goto(service.url + "/")
    page.get_by_label("API key", exact=True).fill("sqz_" + "x" * 43)
    page.get_by_role("button", name="Save key").click()
    error = page.locator("#keyerror")
    error.wait_for()
    assert "not accepted" in error.inner_text()
    assert page.locator("#app").is_hidden()
    assert page.evaluate("localStorage.getItem('squeezer.apiKey')") is None
    shot(page, "key")


def test_open_mode(service, fx, page):
    from servicefx import Process, free_port

    port = free_port()
    env = {**service.env, "SQUEEZER_DATABASE_URL": service.database_url}
    proc = Process(["api", "--port", str(port), "--open", "--no-access-log"], env,
                   service.root / f"open-{port}.log")
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_ready(url, "/healthz")
        config = httpx.get(url + "/web/config.json").json()
        assert config["open"] is True and config["key"].startswith("sqz_")
        # a page from another site re-binding its DNS name to this server gets no key
        rebound = httpx.get(url + "/web/config.json", headers={"Host": "evil.example:80"}).json()
        assert rebound == {"open": False, "version": config["version"]}
        assert httpx.get(service.url + "/web/config.json").json()["open"] is False

        page.goto(url + "/")
        page.wait_for_selector("#app:not([hidden])")
        assert page.locator("#keypanel").is_hidden()
        assert "Open mode" in page.locator("#keylabel").inner_text()
        page.set_input_files("#fileinput", str(fx.text()))
        wait_all_ended(page)
        assert page.locator(".file").first.get_attribute("data-state") == "done"
        with httpx.Client(base_url=service.url) as api:
            me = api.get("/v1/me", headers={"Authorization": f"Bearer {config['key']}"}).json()
        assert me["admin"] is False and me["name"].startswith("web page (--open)")
    finally:
        assert proc.stop() == 0
    # the run's key dies with it
    deadline = time.monotonic() + 60  # a deadline for a slow machine, not a timing claim
    with httpx.Client(base_url=service.url) as api:
        while api.get("/v1/me", headers={"Authorization": f"Bearer {config['key']}"}
                      ).status_code != 401:
            assert time.monotonic() < deadline, "the open-mode key outlived its server"
            time.sleep(0.2)


def test_the_page_is_one_static_bundle(service):
    """The page is plain files the API serves (no build step, nothing from another site):
    everything index.html loads is under /web/, served with its type, and the package holds
    exactly those files."""
    from squeezer.web.routes import ASSETS, CSP, STATIC

    page = httpx.get(service.url + "/")
    assert page.status_code == 200 and page.headers["content-security-policy"] == CSP
    loads = set(re.findall(r'<(?:script|link)[^>]* (?:src|href)="([^"]+)"', page.text))
    assert loads == {f"/web/{name}" for name in ASSETS}
    for name, media_type in ASSETS.items():
        asset = httpx.get(f"{service.url}/web/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"] == media_type
        assert asset.content == (STATIC / name).read_bytes()
        if name.endswith(".js"):  # plain scripts: no modules to bundle, nothing fetched elsewhere
            assert not re.search(r"^\s*(import|export) ", asset.text, re.MULTILINE), name
            assert not re.search(r"""(fetch|src\s*=)\s*\(?\s*["']https?:""", asset.text), name
    assert sorted(p.name for p in STATIC.iterdir()) == sorted({"index.html", *ASSETS})
    assert httpx.get(service.url + "/web/package.json").status_code == 404


def test_preview_renderer_limits(fx, tmp_path):
    png = render_page_png(fx.text(), 1, 200)
    assert png.startswith(b"\x89PNG")
    with pytest.raises(PreviewError) as caught:
        render_page_png(fx.text(), 1, 200, limits=RenderLimits(seconds=0.0))
    assert caught.value.code == "timeout"
    junk = tmp_path / "junk.pdf"
    junk.write_bytes(b"%PDF-1.7\nnot really\n")
    with pytest.raises(PreviewError) as caught:
        render_page_png(junk)
    assert caught.value.code == "pdf_invalid"
    with pytest.raises(PreviewError) as caught:
        render_page_png(fx.encrypted())
    assert caught.value.code == "password_required"
