"""What every channel gets and returns, and the one HTTP path they share.

A channel turns one notification into one delivery attempt and reports how it went as an
:class:`Attempt`: an HTTP status or the exception raised, the server's requested wait
(``Retry-After`` or Telegram's ``retry_after``) and a short description that never holds a
secret. It never retries and never raises for delivery failures — the delivery task
decides (``domain.notify.retry_policy``) — so a channel is a pure request builder plus
:func:`post_json`.

Subscriber URLs (webhook, Slack, Discord) go through the SSRF guard
(``domain.notify.egress.resolve_target``): refused unless public or allowlisted
(``WEBHOOK_ALLOWLIST``), and the request is sent to the *checked* address with the name in
``Host`` and TLS SNI, so DNS cannot change between the check and the connection.
Redirects are never followed (a 3xx is a permanent failure: it could lead inside).
"""

from __future__ import annotations

import json
import logging
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import redis

from domain.notify.egress import EgressRefused, resolve_target
from domain.notify.retry_policy import parse_retry_after
from runtime.clock import SYSTEM_CLOCK, Clock
from settings import Settings

# Bytes of a response body kept for the error message (never the request: it may be signed).
_BODY_SNIPPET = 200
_URL_PATH = re.compile(r"(https?://[^/\s\"']+)/[^\s\"']*")


class RedactUrlPaths(logging.Filter):
    """httpx logs every request's full URL at INFO. Subscriber URLs are credentials (a
    Slack or Discord webhook URL is its own secret, a Telegram URL holds the bot token), so
    records of the ``httpx`` logger keep only the scheme and host."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _URL_PATH.sub(r"\1/***", message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


logging.getLogger("httpx").addFilter(RedactUrlPaths())


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One notification as a channel sees it."""

    notification_id: int
    idempotency_key: str
    user_id: int
    target: str
    secret: str | None
    payload: Mapping[str, Any]
    # A rotated-out webhook secret still inside its overlap window: it signs too.
    previous_secret: str | None = None

    @property
    def text(self) -> str:
        return str(self.payload.get("message", ""))

    def body(self) -> bytes:
        """The canonical JSON document (webhook and Redis): the payload plus the ids,
        keys sorted, no spaces — the same bytes on every attempt."""
        document = {
            **self.payload,
            "notification_id": self.notification_id,
            "idempotency_key": self.idempotency_key,
        }
        return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True, slots=True)
class Attempt:
    """How one delivery attempt went."""

    result: int | BaseException
    retry_after: float | None = None
    detail: str = ""
    # A secret that may appear in the request URL (Telegram's token): masked in descriptions.
    hide: str = field(default="", repr=False)

    @property
    def description(self) -> str:
        """One line for logs and ``last_error``; never contains ``hide``."""
        what = (
            f"HTTP {self.result}"
            if isinstance(self.result, int)
            else f"{type(self.result).__name__}: {self.result}"
        )
        text = f"{what}: {self.detail}" if self.detail else what
        return text.replace(self.hide, "***") if self.hide else text


@dataclass(slots=True)
class DeliveryContext:
    """What channels may use: settings, one HTTP client and one Redis client per process."""

    settings: Settings
    http: httpx.Client
    redis: redis.Redis
    clock: Clock = SYSTEM_CLOCK


class Channel(Protocol):
    kind: str

    def send(self, out: Outgoing, ctx: DeliveryContext) -> Attempt: ...


def snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text[:_BODY_SNIPPET]


def post_json(
    ctx: DeliveryContext,
    url: str,
    body: bytes,
    headers: Mapping[str, str] | None = None,
    *,
    guarded: bool = True,
    retry_after_of: Callable[[httpx.Response], float | None] | None = None,
) -> tuple[Attempt, httpx.Response | None]:
    """POST ``body`` (JSON) to ``url``; with ``guarded`` through the SSRF guard. Returns the
    attempt and the response (None when none came). Never raises for delivery failures."""
    request_headers = {"Content-Type": "application/json", "User-Agent": "hyperwatch"}
    request_headers.update(headers or {})
    extensions: dict[str, Any] = {}
    target_url = url
    try:
        if guarded:
            target = resolve_target(url, ctx.settings.webhook_allowlist)
            target_url = target.pinned_url()
            request_headers["Host"] = target.host_header
            if target.scheme == "https":
                extensions["sni_hostname"] = target.host
        response = ctx.http.post(
            target_url, content=body, headers=request_headers, extensions=extensions
        )
    except EgressRefused as exc:
        return Attempt(exc, detail="refused by the egress guard"), None
    except (httpx.HTTPError, OSError, socket.gaierror) as exc:
        return Attempt(exc), None
    retry_after = None
    if response.status_code == 429 or response.status_code >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"), ctx.clock.time())
        if retry_after is None and retry_after_of is not None:
            retry_after = retry_after_of(response)
    detail = "" if response.is_success else snippet(response)
    return Attempt(response.status_code, retry_after, detail), response
