"""One row per ingester WebSocket connection: the feed's tracking record.

The ingester owns the row's id (a UUID per connection) and re-sends the whole record at
connect, periodically and at close; the worker upserts it, so repeats are harmless.
``gaps`` lists what the exchange's protocol could not replay after this connection began:
``[{"stream", "coin", "user", "from_ms", "to_ms"}]``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, UtcDateTime


class Session(Base):
    __tablename__ = "sessions"
    __table_args__ = (
        # Retention and "latest sessions" listings scan by start time.
        Index(None, "started_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    source: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    frames: Mapped[int] = mapped_column(BigInteger, default=0)
    events: Mapped[int] = mapped_column(BigInteger, default=0)
    malformed: Mapped[int] = mapped_column(BigInteger, default=0)
    duplicates: Mapped[int] = mapped_column(BigInteger, default=0)
    gap_count: Mapped[int] = mapped_column(BigInteger, default=0)
    gaps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
