"""Payloads a task can never process (malformed), kept with the reason instead of retried."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime, utcnow


class DeadLetter(Base):
    __tablename__ = "dead_letters"
    __table_args__ = (
        # Operators list recent rejections; retention deletes by time.
        Index(None, "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    # At most 64 KiB of the payload's JSON, enough to diagnose without storing abuse.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime, default=utcnow)
