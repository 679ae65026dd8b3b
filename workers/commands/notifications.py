"""``hyperwatch notifications``: the outbox — what was sent, what is pending, what failed
or was suppressed, and why (``last_error``)."""

from __future__ import annotations

import click

from models.notification import STATUSES
from models.repositories import NotificationRepository
from workers.commands.users import find_user, table, unit_of_work


@click.group()
def notifications() -> None:
    """Notifications (the outbox)."""


@notifications.command("list")
@click.option("--user", "user_ref", default=None, help="Only this subscriber's (email or id).")
@click.option("--status", type=click.Choice(STATUSES), default=None)
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
def list_notifications(user_ref: str | None, status: str | None, limit: int) -> None:
    """Newest first."""
    with unit_of_work() as session:
        user_id = find_user(session, user_ref).id if user_ref else None
        rows = [
            (
                n.id,
                n.user_id,
                n.alert_id,
                n.channel_kind,
                n.status,
                n.attempts,
                n.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                str(n.payload.get("message", ""))[:80],
                (n.last_error or "-")[:120],
            )
            for n in NotificationRepository(session).recent(user_id, status, limit)
        ]
    table(
        rows, ("ID", "USER", "ALERT", "CHANNEL", "STATUS", "TRIES", "CREATED", "MESSAGE", "ERROR")
    )
