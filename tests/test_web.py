"""The web page at ``/`` in a real browser (Debian's Chromium driven by Playwright) against a
real ``squeezer serve``: files dropped, compressed, compared, downloaded; a password-protected
PDF; a bad key; ``--open`` mode.  Plus the preview renderer's limits.

Set ``SQUEEZER_WEB_SCREENSHOT=docs/web.png`` to save the README's screenshot from the first test.
"""

from __future__ import annotations

import base64
import io
import os
import time
import zipfile
from pathlib import Path

import httpx
import pikepdf
import pytest

from squeezer.errors import SqueezerError as PreviewError
from squeezer.jobs.preview import RenderLimits
from squeezer.jobs.preview import render_isolated as render_page_png

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ENDED = "['done', 'failed', 'password', 'deleted']"


def fmt_bytes(n: int) -> str:
    """The page's fmtBytes (app.js), to compare what it shows with the API's numbers."""
    if n < 1024:
        return f"{n} B"
    value, unit = n / 1024, 0
    units = ["KB", "MB", "GB", "TB"]
    while value >= 1024 and unit < len(units) - 1:
        value /= 1024
        unit += 1
    # JavaScript's toFixed rounds half away from zero on the binary value, as Python's format does
    return f"{value:.0f} {units[unit]}" if value >= 100 else f"{value:.1f} {units[unit]}"


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium (.ci/run installs it with apt)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def sign_in(page, url: str, key: str) -> None:
    page.goto(url + "/")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Save key").click()
    page.wait_for_selector("#app:not([hidden])")


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


def wait_all_ended(page, timeout: float = 45_000) -> None:
    page.wait_for_function(
        f"() => {{ const li = [...document.querySelectorAll('.file')];"
        f" return li.length && li.every(x => {ENDED}.includes(x.dataset.state)); }}",
        timeout=timeout)


def item(page, name: str):
    return page.locator(".file", has=page.locator(".name", has_text=name))


def wait_previews(page, li) -> None:
    li.locator(".compare:not([hidden])").wait_for()
    page.wait_for_function(
        "li => [...li.querySelectorAll('.compare img')].every(i => i.complete && i.naturalWidth > 0)",
        arg=li.element_handle())


def test_drop_compress_compare_download(service, fx, page, tmp_path):
    photo, text = fx.photo(), fx.uncompressed()
    image = io.BytesIO()
    from PIL import Image

    Image.effect_noise((64, 64), 40).convert("RGB").save(image, format="PNG")
    sign_in(page, service.url, service.key)
    picture = tmp_path / "picture.png"
    picture.write_bytes(image.getvalue())
    drop(page, [("photo.pdf", "application/pdf", photo.read_bytes()),
                ("letter.pdf", "application/pdf", text.read_bytes()),
                ("picture.png", "image/png", image.getvalue()),
                ("notes.txt", "text/plain", b"just some words, not a document")])
    wait_all_ended(page)

    # neither a PDF nor an image: refused by the API (415), in plain words next to it
    refused = item(page, "notes.txt")
    assert refused.get_attribute("data-state") == "failed"
    assert "neither a PDF nor a supported image" in refused.locator(".error").inner_text()

    with service.client() as api:
        li = item(page, "picture.png")  # an image goes through the image engine
        assert li.get_attribute("data-state") == "done", li.inner_text()
        job = api.get(f"/v1/jobs/{li.get_attribute('data-job-id')}").json()
        assert job["result"]["output"]["mime"] == "image/png"
        assert int(li.locator(".sizes").get_attribute("data-output-size")) == \
            job["result"]["output"]["size"]
        wait_previews(page, li)  # shown by the browser itself
        with page.expect_download() as info:
            li.get_by_role("link", name=f"Download {job['result']['output']['name']}").click()
        saved = tmp_path / info.value.suggested_filename
        info.value.save_as(saved)
        assert saved.stat().st_size == job["result"]["output"]["size"]
        assert saved.stat().st_size <= picture.stat().st_size
        with Image.open(saved) as out:
            assert out.format == "PNG" and out.size == (64, 64)
        for name, src in (("photo.pdf", photo), ("letter.pdf", text)):
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
            assert li.locator(".download").get_attribute("href") == result["download_url"]
            wait_previews(page, li)

            with page.expect_download() as info:
                li.get_by_role("link", name=f"Download {result['output']['name']}").click()
            saved = tmp_path / info.value.suggested_filename
            info.value.save_as(saved)
            assert saved.stat().st_size == result["output"]["size"] < src.stat().st_size
            with pikepdf.open(saved) as out, pikepdf.open(src) as original:
                assert len(out.pages) == len(original.pages)

    if os.environ.get("SQUEEZER_WEB_SCREENSHOT"):
        page.locator(".file .split").first.fill("62")
        page.screenshot(path=os.environ["SQUEEZER_WEB_SCREENSHOT"], full_page=True)

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


def test_password_protected_pdf(service, fx, page, tmp_path):
    src = fx.encrypted()  # user password "user"
    sign_in(page, service.url, service.key)
    page.set_input_files("#fileinput", str(src))
    li = page.locator(".file").first
    password = li.get_by_label("Password of this PDF")
    password.wait_for()
    assert "protected with a password" in li.locator(".error").inner_text()
    assert password.evaluate("el => el === document.activeElement")

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


def test_bad_key_is_refused_in_plain_words(service, page):
    page.goto(service.url + "/")
    page.get_by_label("API key", exact=True).fill("sqz_" + "x" * 43)
    page.get_by_role("button", name="Save key").click()
    error = page.locator("#keyerror")
    error.wait_for()
    assert "not accepted" in error.inner_text()
    assert page.locator("#app").is_hidden()
    assert page.evaluate("localStorage.getItem('squeezer.apiKey')") is None


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
    deadline = time.monotonic() + 5
    with httpx.Client(base_url=service.url) as api:
        while api.get("/v1/me", headers={"Authorization": f"Bearer {config['key']}"}
                      ).status_code != 401:
            assert time.monotonic() < deadline, "the open-mode key outlived its server"
            time.sleep(0.2)


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
