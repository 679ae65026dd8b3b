"""Tracked wallets' trades; a user sees each ``tid`` once, so (user, tid) is the key.

A row comes from one of two places and both meet on that key:

- the wallet's own fill (WebSocket ``userFills``, REST ``userFillsByTime``, an archive's
  ``node_fills``): every field, ``source`` ``fill``;
- the public trade (``trades``, whose ``users`` are [buyer, seller]), for every tracked
  wallet, with no per-wallet subscription: the wallet's side of the trade and the other
  address (``counterparty``), ``source`` ``trade``; the fields only a fill carries (oid, dir,
  start_position, closed_pnl, fee, fee_token, crossed) stay NULL.

A fill arriving for a ``trade`` row fills in every fill field and turns it into ``fill``,
keeping the counterparty; a trade arriving for a ``fill`` row adds only the counterparty.
Either order ends in the same row (models/repositories/fills.py).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from sqlalchemy import BigInteger, Boolean, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, Money

# What a row was last written from (``source``).
FROM_FILL: Final = "fill"
FROM_TRADE: Final = "trade"


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
    oid: Mapped[int | None] = mapped_column(BigInteger)
    px: Mapped[Decimal] = mapped_column(Money())
    sz: Mapped[Decimal] = mapped_column(Money())
    side: Mapped[str] = mapped_column(String(1))
    dir: Mapped[str | None] = mapped_column(String(32))
    start_position: Mapped[Decimal | None] = mapped_column(Money())
    closed_pnl: Mapped[Decimal | None] = mapped_column(Money())
    fee: Mapped[Decimal | None] = mapped_column(Money())
    fee_token: Mapped[str | None] = mapped_column(String(16))
    crossed: Mapped[bool | None] = mapped_column(Boolean)
    hash: Mapped[str] = mapped_column(String(66))
    # The other side of the trade; known only from the public trade.
    counterparty: Mapped[str | None] = mapped_column(String(42))
    source: Mapped[str] = mapped_column(String(5), server_default=FROM_FILL)
