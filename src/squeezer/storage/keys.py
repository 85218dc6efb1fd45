"""Blob keys: strict validation of server-generated names.

Keys look like ``uploads/<uuid>`` or ``results/<job-id>/out.pdf``. They are
always built by the service from ids it generated, never from a client's file
name (hostile-inputs.md row 21: ``../../etc/passwd``, ``..\\x``, ``/abs``,
NUL, 10 KB names). The rules are deliberately narrower than what S3 accepts so
that a key means the same thing on every backend, including a local
directory:

- segments separated by ``/``; no empty segment (no leading, trailing or
  doubled slash), so no absolute keys;
- each segment starts with a letter, digit or ``_`` and otherwise contains
  only ``A-Z a-z 0-9 . _ -``; this rules out ``.``, ``..``, hidden files,
  backslashes, NUL and other control characters, ``#`` (obstore's local
  staging suffix), ``%``, spaces and every non-ASCII character;
- at most 255 bytes per segment (file-system limit) and 1024 per key (S3).
"""

from __future__ import annotations

import re

from squeezer.storage.errors import InvalidKey

MAX_KEY_BYTES = 1024
MAX_SEGMENT_BYTES = 255
_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*\Z")


def validate_key(key: object) -> str:
    """Return ``key`` unchanged if it is a well-formed key, else raise :class:`InvalidKey`."""
    if not isinstance(key, str):
        raise InvalidKey(f"a blob key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidKey("empty blob key")
    if len(key) > MAX_KEY_BYTES:
        raise InvalidKey(f"blob key longer than {MAX_KEY_BYTES} bytes", key=key[:64] + "…")
    for segment in key.split("/"):
        if not segment:
            raise InvalidKey(
                "blob key has an empty segment (leading, trailing or double '/')", key=key
            )
        if len(segment) > MAX_SEGMENT_BYTES:
            raise InvalidKey(f"blob key segment longer than {MAX_SEGMENT_BYTES} bytes", key=key)
        if not _SEGMENT.match(segment):
            raise InvalidKey(
                f"blob key segment {segment!r} is not allowed (only A-Z a-z 0-9 . _ -, "
                "not starting with '.' or '-')",
                key=key,
            )
    return key


def validate_prefix(prefix: object) -> str:
    """A prefix is a key naming a "directory": same rules, trailing ``/`` tolerated.

    An empty prefix is refused: deleting or listing "everything" must never
    happen by accident (an empty job id, say).
    """
    if isinstance(prefix, str) and prefix.endswith("/"):
        prefix = prefix[:-1]
    return validate_key(prefix)
