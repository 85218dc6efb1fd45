"""Website bundles: minified text that a browser renders the same, and references that resolve.

Minifiers (maintained, whitespace and comments only: nothing renamed):

- CSS: ``rcssmin`` (comments and whitespace; ``/*! … */`` licence comments kept);
- JavaScript: ``rjsmin`` (the same; files already minified are left alone);
- HTML: ``minify-html`` with closing tags and the ``<html>``/``<head>`` tags
  kept, inline CSS minified, inline scripts untouched.  It drops whitespace
  between block elements, which a browser does not render, unless a style sheet
  makes such elements inline (``display: inline…``) or keeps white space
  (``white-space: pre…``): then whitespace can be visible, and the bundle's
  HTML is left as it is (:func:`html_safe`).

Verification (:func:`references`): every page and style sheet is parsed, and
every local ``href``/``src``/``srcset``/``url()``/``@import`` that resolved to a
member before still resolves after.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import ClassVar

from squeezer.engines.container.plan import dirname, normpath

#: CSS that makes whitespace between elements visible
_RISKY_CSS = re.compile(rb"display\s*:\s*inline|white-space\s*:\s*(pre|break-spaces)|"
                        rb"inline-(block|flex|grid|table)", re.IGNORECASE)
_URL = re.compile(r"""url\(\s*(['"]?)([^'")]+)\1\s*\)|@import\s+(['"])([^'"]+)\3""")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")
TEXT_KINDS = {"html", "css", "js", "json", "svg", "xml", "text"}


def html_safe(parts: dict[str, bytes | None], kinds: dict[str, str]) -> bool:
    """No style in the bundle makes whitespace between elements visible."""
    for name, data in parts.items():
        if data is None:
            continue
        kind = kinds.get(name)
        if kind in ("css", "html") and _RISKY_CSS.search(data):
            return False
    return True


def minify(kind: str, data: bytes) -> bytes | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if kind == "css":
        import rcssmin

        out = rcssmin.cssmin(text, keep_bang_comments=True)
    elif kind == "js":
        if _minified(text):
            return None
        import rjsmin

        out = rjsmin.jsmin(text, keep_bang_comments=True)
    elif kind == "html":
        import minify_html

        # 0.16+: spaces between attributes and the doctype are kept unless asked otherwise
        out = minify_html.minify(text, keep_closing_tags=True,
                                 keep_html_and_head_opening_tags=True, minify_css=True,
                                 minify_js=False)
    else:
        return None
    encoded = out.encode("utf-8")
    return encoded if len(encoded) < len(data) else None


def _minified(text: str) -> bool:
    lines = text.count("\n") + 1
    return len(text) / lines > 300


class _Refs(HTMLParser):
    ATTRS: ClassVar[set[str]] = {"href", "src", "poster", "data", "srcset", "action", "background"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "style":
            self._style = True
        for key, value in attrs:
            if value is None:
                continue
            if key == "srcset":
                self.refs += [part.strip().split(" ")[0] for part in value.split(",")
                              if part.strip()]
            elif key in self.ATTRS:
                if tag == "a" and key == "href" and value.startswith("#"):
                    continue
                self.refs.append(value)
            elif key == "style":
                self.refs += _css_urls(value)

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.refs += _css_urls(data)


def _css_urls(text: str) -> list[str]:
    return [m.group(2) or m.group(4) for m in _URL.finditer(text)]


def _local(ref: str) -> bool:
    ref = ref.strip()
    return bool(ref) and not ref.startswith(("#", "data:")) and not _SCHEME.match(ref)


def references(parts: dict[str, bytes | None], kinds: dict[str, str]) -> dict[str, set[str]]:
    """Page or style sheet -> the local references in it that resolve to a member."""
    names = set(parts)
    out: dict[str, set[str]] = {}
    for name, data in parts.items():
        kind = kinds.get(name)
        if data is None or kind not in ("html", "css"):
            continue
        text = data.decode("utf-8", "replace")
        if kind == "html":
            parser = _Refs()
            parser.feed(text)
            parser.close()
            refs = parser.refs
        else:
            refs = _css_urls(text)
        resolved = set()
        for ref in refs:
            if not _local(ref):
                continue
            target = normpath(dirname(name), ref.split("?", 1)[0].strip())
            if target in names or (target + "/index.html") in names:
                resolved.add(ref.strip())
        out[name] = resolved
    return out


def check_references(before: dict[str, set[str]], after: dict[str, set[str]]) -> str:
    """Every reference that resolved before still resolves after (ValueError otherwise)."""
    lost = [(page, ref) for page, refs in before.items() for ref in refs
            if ref not in after.get(page, set())]
    if lost:
        raise ValueError(f"references no longer resolve: {lost[:5]}")
    total = sum(len(r) for r in before.values())
    return f"website: {len(before)} pages and style sheets parse; {total} local references resolve"
