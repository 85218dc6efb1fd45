"""atheris harnesses for Squeezer's own parsers of untrusted input (run by ``fuzz.py``).

Each target may raise only the errors it documents; anything else (an
IndexError in a header reader, a RecursionError, a TypeError) is a finding
and atheris stops with the input that caused it.
"""

from __future__ import annotations

import json
import sys

import atheris

# coverage of Squeezer's own code only: instrumenting everything it imports (FastAPI,
# pydantic, email, …) took 8 of a run's 12 minutes before any input was tried
with atheris.instrument_imports(include=["squeezer"]):
    from squeezer.api import jsonbody
    from squeezer.api.uploads import _PartsParser
    from squeezer.engines import declared
    from squeezer.engines.container import pkzip_legacy
    from squeezer.errors import public_message
    from squeezer.net import sanitize_filename
    from squeezer.net.errors import NetError
    from squeezer.net.policy import UrlPolicy, check_url
    from squeezer.storage import connectors

from squeezer.api.errors import ApiError
from squeezer.engines.errors import DamagedArchiveError

POLICY = UrlPolicy()


def one(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    which = provider.ConsumeIntInRange(0, 8)
    rest = provider.ConsumeBytes(len(data))
    text = rest.decode("utf-8", errors="replace")
    if which == 0:
        try:
            check_url(text, POLICY)
        except NetError:
            pass
    elif which == 1:
        name = sanitize_filename(text)
        assert name is None or ("/" not in name and "\\" not in name and "\x00" not in name)
    elif which == 2:
        try:
            jsonbody.loads(rest)
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    elif which == 3:
        declared.jpeg_size(rest)
        declared.jpx_size(rest)
        declared.jbig2_sizes(rest)
    elif which == 4:
        assert "/tmp/" not in public_message("at /tmp/x/y " + text)
    elif which == 5:
        for kind in ("s3", "gcs", "azure"):
            try:
                connectors.validate_bucket(kind, text)
                connectors.validate_settings(kind, {"access_key_id": text, "secret_access_key": "x",
                                                    "region": text, "account_name": text,
                                                    "account_key": "a", "endpoint": text,
                                                    "service_account_key": text})
            except connectors.ConnectorInvalid:
                pass
    elif which == 6:
        parser = _PartsParser(b"boundary", 4)
        try:
            parser.write(b"--boundary\r\n" + rest)
        except ApiError:
            pass
    elif which == 8:
        # PKZIP 1.x's Shrink, Reduce, Implode: our own pure-Python decoders (issue 17)
        method, flags, usize = 1 + len(rest) % 6, len(rest) % 8, 4 * len(rest) + 100
        try:
            out = pkzip_legacy.decompress(method, rest, usize, flags, "fuzz")
        except DamagedArchiveError:
            return
        assert len(out) == usize
    else:
        try:
            connectors.canonical_endpoint(text)
        except connectors.ConnectorInvalid:
            pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one)
    atheris.Fuzz()
