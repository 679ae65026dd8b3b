"""Health measurements over time."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import select

from models.health_metric import HealthMetric
from models.repositories.base import Repository


class HealthMetricRepository(Repository[HealthMetric]):
    model = HealthMetric

    def record(
        self, time: dt.datetime, values: Sequence[tuple[str, float, Mapping[str, Any]]]
    ) -> int:
        """Append one snapshot (name, value, labels) at ``time``. Not deduplicated: a
        snapshot is a measurement at an instant, and beat runs it once per period."""
        self.session.add_all(
            HealthMetric(time=time, name=name, value=float(value), labels=dict(labels))
            for name, value, labels in values
        )
        self.session.flush()
        return len(values)

    def series(self, name: str, since: dt.datetime, limit: int = 1000) -> list[HealthMetric]:
        stmt = (
            select(HealthMetric)
            .where(HealthMetric.name == name, HealthMetric.time >= since)
            .order_by(HealthMetric.time)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))
