"""Periodic health measurements (db/redis latency, queue depth, lag …) for trends."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base, BigId, UtcDateTime


class HealthMetric(Base):
    __tablename__ = "health_metrics"
    __table_args__ = (
        # A metric's recent series (health trends, dashboards) and retention by time.
        Index(None, "name", "time"),
        Index(None, "time"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    time: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    name: Mapped[str] = mapped_column(String(100))
    # Measurements (latency, depth, bytes), not money: a double is right here.
    value: Mapped[float] = mapped_column(Double)
    labels: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
