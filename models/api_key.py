"""A subscriber's API key for ``hyperwatch api``: what authenticates a request.

The key itself is shown once, when it is issued, and never stored: the row keeps its
SHA-256 digest (a key is 256 random bits, so a fast hash cannot be brute-forced; see
``domain.access.api_keys``) and a short public ``prefix`` that names the key in listings
and finds its row. A revoked key stays as a row (``revoked_at``) so listings and audits
still show it; it authenticates nothing from the moment the revocation commits.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow

PREFIX_CHARS = 12
DIGEST_CHARS = 64  # SHA-256, hex
MAX_NAME_CHARS = 100


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        # A user's keys, for listings and for revoking them all.
        Index(None, "user_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("users.id", ondelete="CASCADE"))
    # Unique: a request's key is found by its prefix, then its digest is compared.
    prefix: Mapped[str] = mapped_column(String(PREFIX_CHARS), unique=True)
    digest: Mapped[str] = mapped_column(String(DIGEST_CHARS))
    name: Mapped[str] = mapped_column(String(MAX_NAME_CHARS), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None
