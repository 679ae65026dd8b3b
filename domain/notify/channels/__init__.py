"""Delivery channels, one module each; :data:`CHANNELS` maps a channel kind to its sender.

Contract (``base.py``): a channel builds one request for one notification, performs it and
reports an :class:`~domain.notify.channels.base.Attempt`; it never retries, never raises
for a delivery failure and never puts a secret in what it reports.
"""

from __future__ import annotations

from typing import Final

from domain.notify.channels.base import Attempt, Channel, DeliveryContext, Outgoing
from domain.notify.channels.discord import DiscordChannel
from domain.notify.channels.redis_pubsub import RedisChannel, user_channel
from domain.notify.channels.slack import SlackChannel
from domain.notify.channels.telegram import TelegramChannel
from domain.notify.channels.webhook import WebhookChannel

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
