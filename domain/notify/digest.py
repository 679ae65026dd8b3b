"""A digest: several notifications of one channel as one message. Pure.

The payload keeps every member whole (``items``: each member's payload with its
``notification_id`` and ``idempotency_key``), so a webhook receiver can process them as
if they had come alone and dedupe each. The human text (``message``, what Slack, Discord
and Telegram show) lists one line per member, as many as the service's message limit
allows, and says how many more there are — a long digest is shortened on screen, never
silently: the rest are in ``hyperwatch notifications list`` and in the webhook body.

The payload is built once, when the digest row is written, and stored in that row, so a
retry after a timeout sends the same bytes under the same Idempotency-Key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

DIGEST_KIND: Final = "digest"
# Characters a service shows in one message (Discord's content limit, Telegram's text
# limit, Slack's documented truncation point for `text`).
TEXT_LIMITS: Final[dict[str, int]] = {"discord": 2_000, "telegram": 4_096, "slack": 40_000}
DEFAULT_TEXT_LIMIT: Final = 40_000


@dataclass(frozen=True, slots=True)
class Member:
    notification_id: int
    idempotency_key: str
    payload: Mapping[str, Any]
    event_time: int | None


def is_digest(payload: Mapping[str, Any]) -> bool:
    return payload.get("kind") == DIGEST_KIND


def digest_key(channel_id: int, members: Sequence[Member]) -> str:
    """Unique per digest: a notification is in at most one (its row becomes ``digested``)."""
    return f"digest:{channel_id}:{min(m.notification_id for m in members)}"


def _iso(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).isoformat(timespec="seconds")


def _text(lines: Sequence[str], header: str, limit: int) -> str:
    text = header
    for n, line in enumerate(lines):
        rest = len(lines) - n
        more = f"\n… and {rest} more (hyperwatch notifications list)"
        candidate = f"{text}\n• {line}"
        # Room for the line and, if more follow, for the "and N more" tail.
        tail = more if rest > 1 else ""
        if len(candidate) + len(tail) > limit:
            return text + more
        text = candidate
    return text


def build(
    user_id: int, channel_kind: str, members: Sequence[Member], now_ms: int
) -> dict[str, Any]:
    """The digest payload of ``members`` (in the order given: oldest first)."""
    times = [m.event_time for m in members if m.event_time is not None]
    first = min(times) if times else now_ms
    header = f"{len(members)} notifications since {_iso(first)}:"
    lines = [str(m.payload.get("message", "")) for m in members]
    limit = TEXT_LIMITS.get(channel_kind, DEFAULT_TEXT_LIMIT)
    return {
        "kind": DIGEST_KIND,
        "user_id": user_id,
        "count": len(members),
        "first_event_time": first,
        "at": now_ms,
        "items": [
            {
                **m.payload,
                "notification_id": m.notification_id,
                "idempotency_key": m.idempotency_key,
            }
            for m in members
        ],
        "message": _text(lines, header, limit),
    }
