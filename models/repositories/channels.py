"""Notification channels."""

from __future__ import annotations

from sqlalchemy import text

from models.notification_channel import CHANNEL_KINDS, NotificationChannel
from models.repositories.base import Repository
from models.secret_box import PLAIN, SecretBox


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

    def reseal(self, box: SecretBox, *, plain: bool = False) -> int:
        """Rewrite every channel's target and secret: sealed under ``box``'s first key, or
        in plain text with ``plain``. Values are opened with ``box`` (any of its keys, or
        plain text as it is). Returns how many channels were rewritten."""
        writer = PLAIN if plain else box
        # Raw columns: the ORM type would open and seal with the engine's own box.
        rows = self.session.execute(
            text("SELECT id, target, secret FROM notification_channels ORDER BY id")
        ).all()
        for channel_id, target, secret in rows:
            self.session.execute(
                text("UPDATE notification_channels SET target = :t, secret = :s WHERE id = :id"),
                {
                    "t": writer.seal(box.open(target)),
                    "s": None if secret is None else writer.seal(box.open(secret)),
                    "id": channel_id,
                },
            )
        return len(rows)
