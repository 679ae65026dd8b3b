"""Delivery channels, one module each; :data:`CHANNELS` maps a channel kind to its sender.

Contract (``base.py``): a channel builds one request for one notification, performs it and
reports an :class:`~tasks.notify.channels.base.Attempt`; it never retries, never raises
for a delivery failure and never puts a secret in what it reports.
"""

from __future__ import annotations

from typing import Final

from tasks.notify.channels.base import Attempt, Channel, DeliveryContext, Outgoing
from tasks.notify.channels.discord import DiscordChannel
from tasks.notify.channels.redis_pubsub import RedisChannel, user_channel
from tasks.notify.channels.slack import SlackChannel
from tasks.notify.channels.telegram import TelegramChannel
from tasks.notify.channels.webhook import WebhookChannel

CHANNELS: Final[dict[str, Channel]] = {
    channel.kind: channel
    for channel in (
        WebhookChannel(),
        SlackChannel(),
        DiscordChannel(),
        TelegramChannel(),
        RedisChannel(),
    )
}

__all__ = ["CHANNELS", "Attempt", "Channel", "DeliveryContext", "Outgoing", "user_channel"]
