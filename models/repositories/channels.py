"""Notification channels."""

from __future__ import annotations

from models.notification_channel import CHANNEL_KINDS, NotificationChannel
from models.repositories.base import Repository


class ChannelRepository(Repository[NotificationChannel]):
    model = NotificationChannel

    def create(
        self, user_id: int, kind: str, target: str, secret: str | None = None, name: str = ""
    ) -> NotificationChannel:
        """Add a channel. Not deduplicated: two channels may share a target on purpose."""
        if kind not in CHANNEL_KINDS:
            raise ValueError(f"channel kind must be one of {', '.join(CHANNEL_KINDS)}")
        return self.add(
            NotificationChannel(user_id=user_id, kind=kind, target=target, secret=secret, name=name)
        )
