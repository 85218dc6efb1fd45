"""The one error base: every failure Squeezer names has a ``code``, an ``http_status`` and
whether trying again can help (``retryable``).

Engines, the outbound HTTP layer, the blob store, the database and the jobs
layer each raise their own subclasses (:mod:`squeezer.engines.errors`,
:mod:`squeezer.net.errors`, :mod:`squeezer.storage.errors`,
:mod:`squeezer.db.errors`, :mod:`squeezer.jobs.errors`); the code → status
table every door answers with (:func:`status_of`: the API's synchronous
answers, job JSON, vendor webhook bodies) is generated from those classes, so
a code is declared once, with its status, next to the code that raises it.
A code no class declares is a bug the tests catch, never a silent 422.
"""

from __future__ import annotations

import re
from collections.abc import Mapping


class SqueezerError(Exception):
    """Base class of every error Squeezer raises on purpose."""

    code: str = "error"
    http_status: int = 500
    retryable: bool = False
    #: what only the server log may show (a traceback from another process), never a client
    detail: str | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InternalError(SqueezerError):
    """A bug: the details go to the server log under the request id, never to the client."""

    code = "internal_error"
    http_status = 500


def _classes() -> list[type[SqueezerError]]:
    seen: list[type[SqueezerError]] = []
    stack: list[type[SqueezerError]] = [SqueezerError]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return seen


def error_classes() -> dict[str, type[SqueezerError]]:
    """Every declared code and the class that declares it (imports the layers that declare
    codes, so the table is complete whoever asks first)."""
    import squeezer.db.errors
    import squeezer.engines.errors
    import squeezer.jobs.errors
    import squeezer.net.errors
    import squeezer.storage.connectors
    import squeezer.storage.errors  # noqa: F401 - they declare codes by defining classes

    table: dict[str, type[SqueezerError]] = {}
    for cls in _classes():
        if "code" not in cls.__dict__:
            continue  # inherits its parent's code (a refinement, not a new failure)
        other = table.get(cls.code)
        if other is not None and (other.http_status, other.retryable) != (
                cls.http_status, cls.retryable):
            raise TypeError(f"error code {cls.code!r} is declared twice with different "
                            f"statuses: {other.__qualname__} and {cls.__qualname__}")
        table.setdefault(cls.code, cls)
    return table


def status_of(code: str) -> int:
    """The HTTP status an answer about a failure with ``code`` carries (500 for an unknown
    code: it can only come from a bug or an older version's row)."""
    cls = error_classes().get(code)
    return cls.http_status if cls is not None else 500


def error_from_code(code: str, message: str) -> SqueezerError:
    """The named error for ``code`` (as sent across a process boundary), else an internal one."""
    cls = error_classes().get(code)
    if cls is None:
        return InternalError(message)
    error = cls.__new__(cls)
    SqueezerError.__init__(error, message)
    return error


#: An absolute POSIX path (at least two segments) that is not part of a URL: not preceded by
#: a word character, ``:`` or ``/`` (so ``https://host/a/b`` and ``//host/a`` are left alone).
_ABSOLUTE_PATH = re.compile(r"(?<![\w:/.~-])/(?:[\w.@+,=-]+/)+[\w.@+,=-]*")


def public_message(message: str, names: Mapping[str, str] | None = None,
                   *, limit: int = 2000) -> str:
    """``message`` fit to show to a client: no server paths, one bounded line.

    Server paths tell an attacker the layout of the machine (temporary
    directories, the data directory, where Python lives), and mean nothing to
    the user.  Paths in ``names`` become the name the user knows them by (the
    job's input file name, "the output"); any other absolute path becomes its
    last component.  URLs are left as they are.
    """
    text = " ".join(str(message).split())
    known: list[str] = []
    for path, name in sorted((names or {}).items(), key=lambda item: -len(str(item[0]))):
        if str(path) and str(path) in text:
            text = text.replace(str(path), f"\x00{len(known)}\x00")
            known.append(name)
    text = _ABSOLUTE_PATH.sub(lambda m: m.group(0).rstrip("/").rsplit("/", 1)[-1] or "file", text)
    for i, name in enumerate(known):
        text = text.replace(f"\x00{i}\x00", name)
    return text if len(text) <= limit else text[: limit - 1] + "…"
