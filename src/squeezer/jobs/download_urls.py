"""Temporary download URLs that work without an API key.

A result link is ``{base}/v1/downloads/{file_id}?expires={unix}&signature={hmac}``:
HMAC-SHA256 over the file id and the expiry with the deployment's signing key
(``SQUEEZER_SECRET_KEY``).  Whoever holds the link may download that one file
until it expires; changing the id or the expiry breaks the signature, and
the file's own expiry still applies (an expired file answers 410).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from datetime import datetime


def _mac(key: bytes, file_id: uuid.UUID, expires: int) -> str:
    message = f"download:{file_id}:{expires}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def sign(key: bytes, base_url: str, file_id: uuid.UUID, expires_at: datetime) -> str:
    """A link to ``file_id`` valid until ``expires_at``."""
    expires = int(expires_at.timestamp())
    return (f"{base_url.rstrip('/')}/v1/downloads/{file_id}"
            f"?expires={expires}&signature={_mac(key, file_id, expires)}")


def verify(key: bytes, file_id: uuid.UUID, expires: int, signature: str,
           now: float | None = None) -> str | None:
    """None when the link is good, else why not (``"expired"`` or ``"invalid"``)."""
    # as bytes: compare_digest refuses a str with non-ASCII characters (a 500, not a 403)
    if not hmac.compare_digest(_mac(key, file_id, expires).encode(),
                               signature.encode("utf-8", "surrogatepass")):
        return "invalid"
    if (now if now is not None else time.time()) >= expires:
        return "expired"
    return None
