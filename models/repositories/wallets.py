"""Tracked wallets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from models.repositories.base import Repository
from models.tracked_wallet import TrackedWallet


class TrackedWalletRepository(Repository[TrackedWallet]):
    model = TrackedWallet

    def track(self, user_id: int, address: str, label: str = "") -> TrackedWallet:
        """Follow ``address``; idempotency key (user_id, address): tracking twice returns
        the existing row."""
        address = address.lower()
        existing = self.session.scalars(
            select(TrackedWallet).where(
                TrackedWallet.user_id == user_id, TrackedWallet.address == address
            )
        ).first()
        if existing is not None:
            return existing
        return self.add(TrackedWallet(user_id=user_id, address=address, label=label))

    def track_many(self, user_id: int, addresses: Sequence[str], label: str = "") -> int:
        """Follow addresses the user does not follow yet (the caller checked): one flush.
        Idempotency key (user_id, address): a repeat violates the unique constraint."""
        self.session.add_all(
            TrackedWallet(user_id=user_id, address=a.lower(), label=label) for a in addresses
        )
        self.session.flush()
        return len(addresses)

    def addresses_of(self, user_id: int) -> set[str]:
        """Every address ``user_id`` follows."""
        stmt = select(TrackedWallet.address).where(TrackedWallet.user_id == user_id)
        return set(self.session.scalars(stmt))

    def untrack(self, user_id: int, address: str) -> bool:
        """Idempotent: untracking an address not followed returns False."""
        return self.delete_where({"user_id": user_id, "address": address.lower()}) > 0

    def count_for_user(self, user_id: int) -> int:
        return self.count({"user_id": user_id})

    def all_addresses(self) -> list[str]:
        """Every distinct followed address, oldest first (WS slots go to the earliest)."""
        stmt = (
            select(TrackedWallet.address)
            .group_by(TrackedWallet.address)
            .order_by(func.min(TrackedWallet.id))
        )
        return list(self.session.scalars(stmt))
