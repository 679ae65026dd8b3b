"""Gaps: windows in which the exchange may have sent data hyperwatch never received.

A gap is opened the moment a connection ends — whatever ended it: a drop, a dead socket,
a shutdown, or a crash found by the next start — for every stream key (a coin's
``trades``, a wallet's ``userFills``) the ingester had seen. It is *closed* (``to_ms``
set) by the first new event on that key, by the next start, or by an archive import that
covers it; it is *settled* by healing, which fills what the exchange still serves.

``from_ms`` is the newest event time seen before the hole (data after it may be missing);
``to_ms`` the first event time seen after it (NULL while the hole is still open).

Status, in the order it can move (never back):

- ``open``: not yet filled; the window may hold data hyperwatch does not have;
- ``partial``: healing filled part of the window; the rest is beyond what REST serves
  (an archive import may still complete it);
- ``healed``: the whole window was filled (from REST or an archive), or proven empty;
- ``unrecoverable``: nothing can fill it any more (beyond REST's reach and no archive
  holds it); an operator has seen and accepted it.

The ingester owns the id (a UUID per gap) and every write is an idempotent upsert, so a
repeated or late message never moves a gap backwards.
"""

from __future__ import annotations

import datetime as dt
from typing import Final, Literal

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, Millis, UtcDateTime

GapStatus = Literal["open", "partial", "healed", "unrecoverable"]
# The order a gap's status moves in: a write never lowers it.
STATUS_ORDER: Final[dict[str, int]] = {"open": 0, "partial": 1, "healed": 2, "unrecoverable": 2}
GAP_STREAMS: Final = ("trades", "userFills")


class Gap(Base):
    __tablename__ = "gaps"
    __table_args__ = (
        # The ledger and `hyperwatch gaps --coin` read a key's gaps by time.
        Index(None, "stream", "key", "from_ms"),
        # Health and healing look for what is still open.
        Index(None, "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    stream: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(64))
    from_ms: Mapped[int] = mapped_column(Millis)
    to_ms: Mapped[int | None] = mapped_column(Millis, nullable=True)
    ended_by: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open")
    healed_by: Mapped[str | None] = mapped_column(String(16), nullable=True)
    filled: Mapped[int] = mapped_column(BigInteger, default=0)
    opened_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    settled_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
