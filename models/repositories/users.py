"""Subscribers."""

from __future__ import annotations

from sqlalchemy import select

from models.repositories.base import Repository
from models.user import TIERS, User


class UserRepository(Repository[User]):
    model = User

    def by_email(self, email: str) -> User | None:
        return self.session.scalars(select(User).where(User.email == email.strip().lower())).first()

    def create(self, email: str, tier: str = "free") -> User:
        """Add a user; idempotency key: email (a second create raises IntegrityError)."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        return self.add(User(email=email.strip().lower(), tier=tier, active=True))

    def set_tier(self, user_id: int, tier: str) -> User | None:
        """Idempotent: setting the same tier twice changes nothing."""
        if tier not in TIERS:
            raise ValueError(f"tier must be one of {', '.join(TIERS)}")
        return self.update(user_id, tier=tier)
