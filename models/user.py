"""Subscribers. The tier decides the quotas (settings ``TIER_<TIER>_*``)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, CheckConstraint, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow

TIERS = ("free", "pro", "enterprise")


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("tier IN ('free', 'pro', 'enterprise')", name="tier"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Unique: the operator's handle for a subscriber in the CLI, and the login identity.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    tier: Mapped[str] = mapped_column(String(16), default="free")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"User(id={self.id}, email={self.email!r}, tier={self.tier})"
