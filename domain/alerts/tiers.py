"""Tier quotas: how many active alerts and tracked wallets a subscriber may have, and how
many notifications an hour are delivered before the rest are stored as ``suppressed``.

The numbers are the settings ``TIER_<TIER>_MAX_ALERTS`` / ``_MAX_WALLETS`` /
``_NOTIFICATIONS_PER_HOUR``. Creation beyond a quota is refused (:class:`QuotaExceeded`,
whose text is the reason shown to the operator); a notification beyond the hourly rate is
still written, as ``suppressed`` with the reason (never dropped). The hourly count covers
the last 60 minutes of the user's pending, sent and failed notifications — suppressed
ones do not use up the quota.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from models.repositories import AlertRepository, NotificationRepository, TrackedWalletRepository
from models.user import User
from settings import Settings, TierQuota

HOUR = dt.timedelta(hours=1)


class QuotaExceeded(Exception):
    """Creating this would exceed the user's tier quota; ``str()`` is the reason."""


def quota_of(settings: Settings, user: User) -> TierQuota:
    return settings.tier_quota(user.tier)  # type: ignore[arg-type]


def ensure_alert_slot(session: Session, settings: Settings, user: User, adding: int = 1) -> None:
    """Raise :class:`QuotaExceeded` unless ``user`` may have ``adding`` more active alerts."""
    limit = quota_of(settings, user).max_alerts
    active = AlertRepository(session).count_active_for_user(user.id)
    if active + adding > limit:
        raise QuotaExceeded(
            f"{user.email} ({user.tier} tier) already has {active} active alert(s) and the "
            f"tier allows {limit}; pause or remove one, or raise the tier"
        )


def ensure_wallet_slot(session: Session, settings: Settings, user: User, adding: int = 1) -> None:
    """Raise :class:`QuotaExceeded` unless ``user`` may track ``adding`` more wallets."""
    limit = quota_of(settings, user).max_wallets
    tracked = TrackedWalletRepository(session).count_for_user(user.id)
    if tracked + adding > limit:
        if adding == 1:
            raise QuotaExceeded(
                f"{user.email} ({user.tier} tier) already tracks {tracked} wallet(s) and the "
                f"tier allows {limit}; untrack one, or raise the tier"
            )
        raise QuotaExceeded(
            f"{user.email} ({user.tier} tier) already tracks {tracked} wallet(s); {adding} "
            f"more would pass the {limit} the tier allows; untrack some, track fewer, or "
            "raise the tier"
        )


class HourlyQuota:
    """Notifications each user has left this hour: counted once per transaction (the
    caller holds the users' rows locked, so no other worker counts at the same time), then
    taken one by one."""

    def __init__(
        self, session: Session, settings: Settings, users: dict[int, User], now: dt.datetime
    ) -> None:
        self._session, self._settings, self._users, self._now = session, settings, users, now
        self._left: dict[int, int] = {}
        self._used: dict[int, int] = {}
        self._counted = False

    def take(self, user_id: int) -> str | None:
        """None when one more notification may go (and count it), else why not."""
        user = self._users.get(user_id)
        if user is None:
            return None
        limit = quota_of(self._settings, user).notifications_per_hour
        if not self._counted:
            # Every locked user's count in one grouped query, not one query per user (a
            # cascade's transaction fires for dozens of users at once).
            outbox = NotificationRepository(self._session)
            counts = outbox.counts_for_users_since(sorted(self._users), self._now - HOUR)
            self._used = {u: counts.get(u, 0) for u in self._users}
            self._counted = True
        if user_id not in self._left:
            self._left[user_id] = limit - self._used[user_id]
        if self._left[user_id] <= 0:
            used = limit - self._left[user_id]
            return (
                f"hourly notification quota reached: {used} of {limit} in the last hour "
                f"({user.tier} tier)"
            )
        self._left[user_id] -= 1
        return None
