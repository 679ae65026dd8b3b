"""A hyperwatch webhook receiver, standard library only: verify, deduplicate, act.

Run it with the channel's signing secret (during a rotation, the new and the old one,
comma-separated) and point the channel at it:

    HYPERWATCH_WEBHOOK_SECRETS=<secret> python webhook_receiver.py 8080

Replace ``act`` with what a notification should do. Keep the processed keys in your
database (a unique column) rather than in memory: they must survive a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300  # reject a timestamp more than 5 minutes from this clock (replays)
MAX_BODY_BYTES = 1_000_000


def header(headers: Mapping[str, str], name: str) -> str:
    """A header's value whatever the case of its name; "" when absent."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), "")


def verify_hyperwatch_request(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: float | None = None
) -> bool:
    """True when ``body`` (the raw bytes) was signed with one of ``secrets`` within
    TOLERANCE_S of ``now``. Never raises: a header is whatever the sender put there."""
    timestamp = header(headers, "X-Hyperwatch-Timestamp")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 20):
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > TOLERANCE_S:
        return False
    # Several "v1=" values during a secret rotation; one match is enough. Compared as bytes:
    # compare_digest raises TypeError on a str that is not ASCII.
    offered = [
        part.strip()[3:].encode("utf-8", "replace")
        for part in header(headers, "X-Hyperwatch-Signature").split(",")
        if part.strip().startswith("v1=")
    ]
    message = timestamp.encode() + b"." + body
    matched = False
    for secret in secrets:
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest().encode()
        for candidate in offered:
            matched |= hmac.compare_digest(expected, candidate)
    return matched


processed_keys: set[str] = set()  # in production: a table with a unique key column
_processed_lock = threading.Lock()


def act(notification: dict[str, Any]) -> None:
    """What a notification should do: replace this."""
    print(notification["message"], flush=True)


def handle(
    secrets: Sequence[str], headers: Mapping[str, str], body: bytes, now: float | None = None
) -> int:
    """The HTTP status to answer: 401 unless hyperwatch signed this very request, else 200
    (a duplicate too, so hyperwatch stops retrying it)."""
    if not verify_hyperwatch_request(secrets, headers, body, now):
        return 401
    notification = json.loads(body)
    # Deduplicate on the key inside the signed body. The Idempotency-Key header carries the
    # same value but is not signed: a replay could change it to pass as a new notification.
    key = notification["idempotency_key"]
    if header(headers, "Idempotency-Key") not in ("", key):
        return 401
    with _processed_lock:
        if key in processed_keys:
            return 200
        processed_keys.add(key)
    act(notification)
    return 200


class Receiver(BaseHTTPRequestHandler):
    secrets: Sequence[str] = ()

    def do_POST(self) -> None:
        length = self.headers.get("Content-Length", "")
        if not (length.isascii() and length.isdigit() and len(length) <= 9):
            self._answer(411)
            return
        if int(length) > MAX_BODY_BYTES:
            self._answer(413)
            return
        body = self.rfile.read(int(length))
        self._answer(handle(self.secrets, dict(self.headers.items()), body))

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def server(
    secrets: Sequence[str], host: str = "127.0.0.1", port: int = 8080
) -> ThreadingHTTPServer:
    """An HTTP server answering hyperwatch's POSTs (call ``serve_forever()`` on it)."""
    if not secrets or not all(secrets):
        raise ValueError("at least one signing secret, none empty")
    configured = tuple(secrets)

    class ConfiguredReceiver(Receiver):
        secrets = configured

    return ThreadingHTTPServer((host, port), ConfiguredReceiver)


if __name__ == "__main__":
    configured = os.environ.get("HYPERWATCH_WEBHOOK_SECRETS", "").split(",")
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    server([s.strip() for s in configured if s.strip()], port=port).serve_forever()
