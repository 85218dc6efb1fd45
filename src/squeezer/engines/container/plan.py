"""What a container's rules say about its members before any is touched.

Each format family (:mod:`~squeezer.engines.container.ooxml`,
:mod:`~squeezer.engines.container.odf`, :mod:`~squeezer.engines.container.epub`,
:mod:`~squeezer.engines.container.website`, plain ZIP) fills a :class:`Plan`
from the members' bytes: which must stay byte-identical and why, which may go,
at what size the document shows each image, whether a member may be renamed,
and which XML parts may lose ignorable whitespace.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Plan:
    #: name -> why it stays byte-identical (VBA, signature, encrypted, obfuscated font)
    keep_raw: dict[str, str] = field(default_factory=dict)
    #: name -> why it is dropped (unused media, thumbnail, signature when allowed)
    drop: dict[str, str] = field(default_factory=dict)
    #: image name -> the largest size it is shown at, in inches (width, height)
    display: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: longest image side in pixels (EPUB), None: no cap
    max_side: int | None = None
    #: members may be renamed (PNG photo -> JPEG): the container's references can follow
    may_rename: bool = False
    #: XML parts whose ignorable whitespace may go
    xml_parts: set[str] = field(default_factory=set)
    #: the elements (Clark names) whose whitespace is content
    mixed: frozenset[str] = frozenset()
    #: JSON whitespace may go in these members
    json_parts: set[str] = field(default_factory=set)
    #: website text members to minify
    minify_parts: set[str] = field(default_factory=set)
    #: font member -> characters to keep
    fonts: dict[str, set[int]] = field(default_factory=dict)
    #: font member -> its obfuscation key (OOXML embedded fonts, ECMA-376 part 1 §17.8.1)
    font_keys: dict[str, bytes] = field(default_factory=dict)
    #: members written first and stored (EPUB/ODF ``mimetype``)
    first_stored: str | None = None
    #: identical media may be merged into one part (OOXML, ODF)
    dedupe: bool = False
    notes: list[str] = field(default_factory=list)


def normpath(base_dir: str, target: str) -> str:
    """``target`` (relative to ``base_dir``, or absolute from the package root) as a member
    name; ``..`` resolved, never above the root."""
    from urllib.parse import unquote

    target = unquote(target.split("#", 1)[0])
    if target.startswith("/"):
        parts: list[str] = []
        target = target[1:]
    else:
        parts = [p for p in base_dir.split("/") if p]
    for piece in target.split("/"):
        if piece in ("", "."):
            continue
        if piece == "..":
            if parts:
                parts.pop()
        else:
            parts.append(piece)
    return "/".join(parts)


def dirname(name: str) -> str:
    return name.rsplit("/", 1)[0] if "/" in name else ""


def relative(from_dir: str, to_name: str) -> str:
    """The relative reference from a part in ``from_dir`` to ``to_name``."""
    import posixpath

    return posixpath.relpath(to_name, from_dir or ".")
