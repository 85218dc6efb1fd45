"""The browser page at ``/`` and its assets under ``/web/``.

Plain files from ``static/`` (no build step, nothing from a CDN: ``app.js`` the
page, ``controls.js`` the settings built from ``GET /v1/options``, ``words.js``
results in plain words, ``viewer.js`` the full-screen comparison, ``zip.js``),
served with a strict Content-Security-Policy: the page talks only to this
origin's native API.  ``/web/config.json`` tells the page whether the server runs with
``--open`` (and then hands it the open-mode key; see :mod:`squeezer.web.open_mode`).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from squeezer import __version__
from squeezer.api.errors import not_found

router = APIRouter(include_in_schema=False)

STATIC = Path(__file__).parent / "static"
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "words.js": "text/javascript; charset=utf-8",
    "controls.js": "text/javascript; charset=utf-8",
    "viewer.js": "text/javascript; charset=utf-8",
    "zip.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
    "icon.svg": "image/svg+xml",
}
# media-src: video and audio play from this origin's signed links (GET /v1/files/{id}/link)
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "media-src 'self' blob:; connect-src 'self'; form-action 'none'; base-uri 'none'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def _file(name: str) -> bytes:
    return (STATIC / name).read_bytes()


@router.get("/")
async def index() -> Response:
    return Response(_file("index.html"), media_type="text/html; charset=utf-8",
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/web/config.json")
async def config(request: Request) -> JSONResponse:
    mode = getattr(request.app.state, "web_open_mode", None)
    body: dict = {"open": False, "version": __version__}
    if mode is not None and mode.secret and mode.allowed_host(request.headers.get("host")):
        body = {**body, "open": True, "key": mode.secret}
    return JSONResponse(body, headers={**SECURITY_HEADERS, "Cache-Control": "no-store"})


@router.get("/web/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        raise not_found("file")
    return Response(_file(name), media_type=ASSETS[name],
                    headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})
