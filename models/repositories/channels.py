"""Notification channels."""

from __future__ import annotations

import datetime as dt

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

        def reseal(value: str | None) -> str | None:
            return None if value is None else writer.seal(box.open(value))

        # Raw columns: the ORM type would open and seal with the engine's own box.
        rows = self.session.execute(
            text(
                "SELECT id, target, secret, previous_secret FROM notification_channels ORDER BY id"
            )
        ).all()
        for channel_id, target, secret, previous in rows:
            self.session.execute(
                text(
                    "UPDATE notification_channels SET target = :t, secret = :s, "
                    "previous_secret = :p WHERE id = :id"
                ),
                {"t": reseal(target), "s": reseal(secret), "p": reseal(previous), "id": channel_id},
            )
        return len(rows)

    def rotate_secret(
        self, channel_id: int, secret: str, previous_until: dt.datetime | None
    ) -> NotificationChannel | None:
        """Make ``secret`` the channel's secret (None: no such channel). With
        ``previous_until`` the replaced secret keeps signing until then; without, it stops
        at once. Only one previous secret is kept: rotating again inside a window ends the
        older secret's. The row is locked, so two rotations cannot interleave."""
        channel = self.session.get(NotificationChannel, channel_id, with_for_update=True)
        if channel is None:
            return None
        channel.previous_secret = channel.secret if previous_until is not None else None
        channel.previous_secret_until = previous_until if channel.previous_secret else None
        channel.secret = secret
        self.session.flush()
        return channel
