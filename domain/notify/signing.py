"""Webhook signing: how a receiver knows a request came from hyperwatch, unaltered and fresh.

Scheme ``v1``: ``HMAC-SHA256(secret, f"{timestamp}.".encode() + body)`` in lower-case hex,
sent as ``X-Hyperwatch-Signature: v1=<hex>`` with ``X-Hyperwatch-Timestamp: <unix seconds>``.
The timestamp is inside the MAC so a captured request cannot be replayed later with a new
time; receivers reject timestamps outside a tolerance (300 s by default).

Rotation (``hyperwatch channels rotate-secret``): a channel keeps its previous secret for
an overlap window, and every request in that window carries both signatures,
``v1=<new>,v1=<old>``; one match suffices, so a receiver configured with either secret
accepts it. After the window only the new secret signs.

``Idempotency-Key`` is derived from the notification's id, never from the attempt, so every
retry of one notification carries the same key and a receiver can drop duplicates. The
header is not covered by the signature; the same key is inside the signed body
(``idempotency_key``), which is what a receiver must deduplicate on (a replay could carry
a new header). The body is signed byte for byte: sign exactly the bytes you send.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from typing import Final

SIGNATURE_HEADER: Final = "X-Hyperwatch-Signature"
TIMESTAMP_HEADER: Final = "X-Hyperwatch-Timestamp"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
SCHEME: Final = "v1"
DEFAULT_TOLERANCE_S: Final = 300
# Fixed namespace: the same notification id gives the same key on every worker, forever.
_KEY_NAMESPACE: Final = uuid.UUID("5f0c4f0e-7a53-4d0c-9b9e-2f1f6b0e8a11")


def _secret_bytes(secret: str | bytes) -> bytes:
    raw = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not raw:
        raise ValueError("a webhook secret must not be empty")
    return raw


def _body_bytes(body: str | bytes) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def signature(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The bare hex HMAC-SHA256 of ``f"{timestamp}." + body``."""
    message = f"{timestamp}.".encode("ascii") + _body_bytes(body)
    return hmac.new(_secret_bytes(secret), message, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The signature header value, ``v1=<hex>``."""
    return f"{SCHEME}={signature(secret, timestamp, body)}"


def idempotency_key(notification_id: int | str) -> str:
    """A stable, opaque key for one notification (a UUIDv5 of its id)."""
    return str(uuid.uuid5(_KEY_NAMESPACE, f"notification:{notification_id}"))


def build_headers(
    secret: str | bytes,
    body: str | bytes,
    idempotency: str,
    now_s: int,
    also: Sequence[str | bytes] = (),
) -> dict[str, str]:
    """Headers for one delivery attempt: JSON content type, timestamp, signature and the
    idempotency key (pass :func:`idempotency_key` of the notification, the same every try).
    ``now_s`` is the attempt's time in whole unix seconds. ``also``: secrets that sign too
    (a rotated-out secret during its overlap), after the current one: ``v1=<new>,v1=<old>``."""
    timestamp = int(now_s)
    signatures = [sign(secret, timestamp, body)]
    signatures += [sign(other, timestamp, body) for other in also if other and other != secret]
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: ",".join(dict.fromkeys(signatures)),
        IDEMPOTENCY_HEADER: idempotency,
    }


def verify(
    secret: str | bytes,
    timestamp: str | int,
    body: str | bytes,
    signature_header: str,
    now_s: float,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when ``signature_header`` holds a ``v1`` signature of ``body`` at ``timestamp``
    under ``secret`` and the timestamp is within ``tolerance_s`` of ``now_s`` (either way).
    Malformed input is simply False; comparison is constant-time."""
    if isinstance(timestamp, str):
        # Bounded: int() refuses (raises on) more than 4,300 digits.
        if not timestamp.isdigit() or not timestamp.isascii() or len(timestamp) > 20:
            return False
        timestamp = int(timestamp)
    if isinstance(timestamp, bool) or abs(now_s - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body).encode("ascii")
    matched = False
    for part in signature_header.split(","):
        scheme, sep, value = part.strip().partition("=")
        if sep and scheme == SCHEME:
            # No early exit: every candidate is compared, so timing says nothing.
            matched |= hmac.compare_digest(expected, value.strip().lower().encode("utf-8"))
    return matched
