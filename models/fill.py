"""Tracked wallets' own fills; a user sees each ``tid`` once, so (user, tid) is the key."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money


class UserFill(Base):
    __tablename__ = "user_fills"
    __table_args__ = (
        # A wallet's fills in time order (reconciliation after reconnect, listings).
        Index(None, "user", "time"),
    )

    user: Mapped[str] = mapped_column(String(42), primary_key=True)
    tid: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    coin: Mapped[str] = mapped_column(String(40))
    time: Mapped[int] = mapped_column(Millis)
    oid: Mapped[int] = mapped_column(BigInteger)
    px: Mapped[Decimal] = mapped_column(Money())
    sz: Mapped[Decimal] = mapped_column(Money())
    side: Mapped[str] = mapped_column(String(1))
    dir: Mapped[str] = mapped_column(String(32))
    start_position: Mapped[Decimal] = mapped_column(Money())
    closed_pnl: Mapped[Decimal] = mapped_column(Money())
    fee: Mapped[Decimal] = mapped_column(Money())
    fee_token: Mapped[str] = mapped_column(String(16))
    crossed: Mapped[bool] = mapped_column(Boolean)
    hash: Mapped[str] = mapped_column(String(66))
