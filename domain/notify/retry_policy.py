"""Delivery retries as data: what an attempt's result means and how long to wait next.

Contract:

- :func:`classify` maps one attempt's result to ``ok`` / ``retry`` / ``permanent``:
  2xx ok; 408, 425, 429 and every 5xx retry; other statuses (4xx, and 3xx because a redirect
  is not followed — it could lead inside the network) are permanent. Exceptions retry when
  they are timeouts, connection or DNS failures (:data:`RETRYABLE_EXCEPTIONS`); a failed TLS
  certificate check and anything else is permanent — retrying would not change the answer.
- :meth:`RetryPolicy.next_delay` honours the server's wait (``Retry-After`` or Telegram's
  ``parameters.retry_after``), capped at ``cap_s``; otherwise it waits
  ``min(cap_s, base_s * 2**(attempt-1))`` shortened by up to ``jitter`` of itself at random,
  so many failing deliveries do not retry in lockstep.
- :meth:`RetryPolicy.decide` turns (attempt, classification) into done / retry after N s /
  fail; the attempt that reaches ``max_attempts`` fails for good.

Pure: no clock (``now_s`` is passed), randomness through an injectable ``random.Random``.
"""

from __future__ import annotations

import json
import random
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx

if TYPE_CHECKING:
    from settings import Settings

Classification = Literal["ok", "retry", "permanent"]

RETRYABLE_STATUSES: Final = frozenset({408, 425, 429})
RETRYABLE_EXCEPTIONS: Final[tuple[type[BaseException], ...]] = (
    TimeoutError,  # includes socket.timeout
    ConnectionError,  # refused, reset, aborted, broken pipe
    socket.gaierror,  # DNS: a name that fails now may resolve in a minute
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,  # the peer hung up mid-response
)
# Checked first: a wrong certificate stays wrong, whatever exception wraps it.
PERMANENT_EXCEPTIONS: Final[tuple[type[BaseException], ...]] = (ssl.SSLCertVerificationError,)


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def classify(result: int | BaseException) -> Classification:
    """``ok``, ``retry`` or ``permanent`` for an HTTP status code or a raised exception."""
    if isinstance(result, BaseException):
        chain = _causes(result)
        if any(isinstance(e, PERMANENT_EXCEPTIONS) for e in chain):
            return "permanent"
        return "retry" if isinstance(result, RETRYABLE_EXCEPTIONS) else "permanent"
    if 200 <= result <= 299:
        return "ok"
    if result in RETRYABLE_STATUSES or 500 <= result <= 599:
        return "retry"
    return "permanent"


def parse_retry_after(header: str | None, now_s: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delta-seconds or an HTTP date (a date in
    the past means 0). None when absent or unreadable."""
    if header is None:
        return None
    text = header.strip()
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when: datetime = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a naive result means "-0000"
        return None
    return max(0.0, when.timestamp() - now_s)


def telegram_retry_after(body: str | bytes | Mapping[str, Any] | None) -> float | None:
    """``parameters.retry_after`` (seconds) from a Telegram Bot API error body, else None."""
    data: Any = body
    if isinstance(body, str | bytes):
        try:
            data = json.loads(body)
        except ValueError:
            return None
    if not isinstance(data, Mapping):
        return None
    parameters = data.get("parameters")
    value = parameters.get("retry_after") if isinstance(parameters, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do after an attempt: ``done`` (delivered), ``retry`` after ``delay_s``, or
    ``fail`` (permanent error, or attempts exhausted) — with why."""

    action: Literal["done", "retry", "fail"]
    delay_s: float = 0.0
    reason: str = ""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts, and the backoff between them. ``jitter`` in [0, 1] is the largest
    fraction of a backoff delay that is randomly taken off (0 = deterministic)."""

    max_attempts: int = 8
    base_s: float = 1.0
    cap_s: float = 300.0
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0 < self.base_s <= self.cap_s:
            raise ValueError("base_s must be positive and at most cap_s")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> RetryPolicy:
        """The delivery policy with ``max_attempts`` from ``NOTIFY_MAX_ATTEMPTS``."""
        return cls(max_attempts=settings.notify_max_attempts, **overrides)

    def backoff_s(self, attempt: int) -> float:
        """The un-jittered wait after failed attempt number ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError("attempt numbers start at 1")
        # Cap the exponent before computing it: 2**1000 would overflow a float.
        return min(self.cap_s, self.base_s * 2.0 ** min(attempt - 1, 64))

    def next_delay(
        self,
        attempt: int,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float:
        """Seconds to wait after failed attempt ``attempt``: the server's ``retry_after``
        (capped at ``cap_s``) when given, else the jittered exponential backoff."""
        if retry_after is not None:
            return min(max(0.0, retry_after), self.cap_s)
        delay = self.backoff_s(attempt)
        rand = rng.random() if rng is not None else random.random()
        return delay * (1 - self.jitter * rand)

    def exhausted(self, attempt: int) -> bool:
        return attempt >= self.max_attempts

    def decide(
        self,
        attempt: int,
        result: int | BaseException,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> Decision:
        """The next step after attempt number ``attempt`` ended with ``result``."""
        verdict = classify(result)
        what = f"HTTP {result}" if isinstance(result, int) else f"{type(result).__name__}: {result}"
        if verdict == "ok":
            return Decision("done", reason=what)
        if verdict == "permanent":
            return Decision("fail", reason=f"permanent error: {what}")
        if self.exhausted(attempt):
            return Decision("fail", reason=f"gave up after {attempt} attempts; last: {what}")
        return Decision("retry", self.next_delay(attempt, retry_after, rng), reason=what)
