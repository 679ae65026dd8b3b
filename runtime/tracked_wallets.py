"""The tracked-wallet set a worker derives wallet activity with: O(1) per trade, fresh enough.

Tracked wallets are ``TRACKED_WALLETS`` and every address in the database's
``tracked_wallets`` (``hyperwatch wallets track``), lowercase. A worker persists thousands of
trades a second and needs "is this buyer or seller tracked?" per trade: a frozenset
membership. Reading the table for every batch would cost a query per batch for a list that
changes rarely, so :class:`TrackedWalletSet` keeps the set and reads the table again at
most every ``WALLET_SET_REFRESH_S``: a wallet tracked while the worker runs is picked up
within that, without a restart. The read goes through the caller's session (the batch's own
transaction), so it costs no connection of its own.

Each process keeps one set per Settings object (:func:`tracked_wallet_set`); Celery's pool
children inherit the parent's and refresh it on their own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy.orm import Session

from models.repositories import TrackedWalletRepository
from runtime.clock import SYSTEM_CLOCK, Clock
from settings import Settings

log = logging.getLogger(__name__)


class TrackedWalletSet:
    """``configured`` and the database's tracked wallets, lowercase, at most ``refresh_s`` old."""

    def __init__(
        self, configured: Iterable[str], refresh_s: float, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.configured = frozenset(a.lower() for a in configured)
        self.refresh_s = refresh_s
        self.clock = clock
        self._wallets: frozenset[str] | None = None
        self._read_at = 0.0

    def current(self, session: Session) -> frozenset[str]:
        """The set, read again through ``session`` when older than ``refresh_s``. A failed
        read raises (the caller's transaction fails with it and is retried)."""
        now = self.clock.monotonic()
        if self._wallets is None or now - self._read_at >= self.refresh_s:
            database = TrackedWalletRepository(session).all_addresses()
            wallets = self.configured | {a.lower() for a in database}
            if wallets != self._wallets:
                log.debug("tracked wallets: %d", len(wallets))
            self._wallets, self._read_at = wallets, now
        return self._wallets


# One set per Settings object (a worker has one; tests build one per app). The Settings is
# kept beside its set so that its id cannot be reused by another object.
_sets: dict[int, tuple[Settings, TrackedWalletSet]] = {}


def tracked_wallet_set(settings: Settings) -> TrackedWalletSet:
    """This process's set for ``settings`` (created on first use)."""
    entry = _sets.get(id(settings))
    if entry is None:
        entry = (
            settings,
            TrackedWalletSet(settings.tracked_wallets, settings.wallet_set_refresh_s),
        )
        _sets[id(settings)] = entry
    return entry[1]
