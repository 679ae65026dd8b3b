"""A test message through a subscriber's channel, sent at once (not through the outbox).

What ``POST /v1/channels/{id}/test`` does: one attempt, the channel's own sender, so the
SSRF guard, signing and credential masking are exactly those of a real delivery. Nothing is
stored and nothing is retried; the :class:`Attempt` says how it went (its description never
holds a secret).
"""

from __future__ import annotations

import uuid
from typing import Final

from domain.notify.channels import CHANNELS, Attempt, DeliveryContext, Outgoing
from models.notification_channel import NotificationChannel

TEST_MESSAGE: Final = "hyperwatch test notification: this channel works"


def send_test(channel: NotificationChannel, ctx: DeliveryContext) -> Attempt:
    out = Outgoing(
        notification_id=0,
        idempotency_key=f"test-{uuid.uuid4().hex}",
        user_id=channel.user_id,
        target=channel.target,
        secret=channel.secret,
        payload={"message": TEST_MESSAGE, "test": True, "channel_id": channel.id},
    )
    return CHANNELS[channel.kind].send(out, ctx)


def delivered(attempt: Attempt) -> bool:
    return isinstance(attempt.result, int) and 200 <= attempt.result < 300
