"""Standard Webhooks signatures (https://www.standardwebhooks.com): sign and verify.

A delivery carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature: v1,<base64 HMAC-SHA256>`` over ``"{id}.{timestamp}.{body}"``,
keyed with the bytes of the key's secret (``whsec_`` + base64).  Kept free of
the database and the queue so that receivers and the Python client can import it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

PREFIX = "whsec_"
#: How far a receiver should accept a timestamp from its own clock (replay window).
TOLERANCE_SECONDS = 5 * 60


class InvalidSignature(Exception):
    """The headers do not prove that Squeezer sent this body (or it is too old)."""


def secret_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret: base64-decoded bytes after the prefix.

    Secrets made before the switch to standard base64 were URL-safe base64
    without padding; they decode here too (receivers' libraries may refuse them).
    """
    body = secret.removeprefix(PREFIX)
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes | str) -> str:
    """The ``webhook-signature`` value: ``v1,`` + base64 of the HMAC."""
    payload = body.encode("utf-8") if isinstance(body, str) else body
    message = f"{msg_id}.{timestamp}.".encode() + payload
    mac = hmac.new(secret_bytes(secret), message, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def headers(secret: str, msg_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt."""
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(ts),
        "webhook-signature": sign(secret, msg_id, ts, body),
    }


def verify(secret: str, received: Mapping[str, str], body: bytes | str, *,
           tolerance: float = TOLERANCE_SECONDS, now: float | None = None) -> None:
    """Raise :class:`InvalidSignature` unless ``received`` headers sign ``body`` with ``secret``.

    Header names are matched without regard to case; ``webhook-signature`` may
    list several space-separated signatures (during a secret rotation), any
    ``v1`` one that matches is enough.
    """
    lower = {k.lower(): v for k, v in received.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not (msg_id and stamp and signatures):
        raise InvalidSignature("missing webhook-id, webhook-timestamp or webhook-signature")
    try:
        ts = int(stamp)
    except ValueError:
        raise InvalidSignature("webhook-timestamp is not a number") from None
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise InvalidSignature("webhook-timestamp is outside the tolerance window")
    expected = sign(secret, msg_id, ts, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode("utf-8", "surrogatepass"),
                                                   expected.encode()):
            return
    raise InvalidSignature("no matching v1 signature")
