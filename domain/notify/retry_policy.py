"""Delivery retries: what an attempt's result means, and what to do next.

The schedule (attempts, backoff, jitter, a server's wait) is the one
:class:`runtime.retry.RetryPolicy`; this module is the delivery domain's side of it.

Contract:

- :func:`classify` maps one attempt's result to ``ok`` / ``retry`` / ``permanent``:
  2xx ok; 408, 425, 429 and every 5xx retry; other statuses (4xx, and 3xx because a redirect
  is not followed — it could lead inside the network) are permanent. Exceptions retry when
  they are timeouts, connection or DNS failures (:data:`RETRYABLE_EXCEPTIONS`); a failed TLS
  certificate check and anything else is permanent — retrying would not change the answer.
- :func:`delivery_policy` is the delivery schedule: ``NOTIFY_MAX_ATTEMPTS`` attempts, 1 s
  doubling to a 300 s cap, equal jitter. The server's wait (``Retry-After`` or Telegram's
  ``parameters.retry_after``) is honoured, capped like any delay
  (:meth:`RetryPolicy.next_delay`).
- :func:`decide` turns (attempt, result) into done / retry after N s / fail; the attempt that
  reaches ``max_attempts`` fails for good.

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

from runtime.retry import RetryPolicy

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


DELIVERY_CAP_S: Final = 300.0


def delivery_policy(settings: Settings, **overrides: Any) -> RetryPolicy:
    """The delivery schedule, ``max_attempts`` from ``NOTIFY_MAX_ATTEMPTS`` (see module)."""
    schedule: dict[str, Any] = {
        "max_attempts": settings.notify_max_attempts,
        "base_s": 1.0,
        "cap_s": DELIVERY_CAP_S,
        "jitter": 0.5,
    }
    return RetryPolicy(**{**schedule, **overrides})


def decide(
    policy: RetryPolicy,
    attempt: int,
    result: int | BaseException,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> Decision:
    """The next step after delivery attempt number ``attempt`` ended with ``result``."""
    verdict = classify(result)
    what = f"HTTP {result}" if isinstance(result, int) else f"{type(result).__name__}: {result}"
    if verdict == "ok":
        return Decision("done", reason=what)
    if verdict == "permanent":
        return Decision("fail", reason=f"permanent error: {what}")
    if policy.exhausted(attempt):
        return Decision("fail", reason=f"gave up after {attempt} attempts; last: {what}")
    return Decision("retry", policy.next_delay(attempt, retry_after, rng), reason=what)
