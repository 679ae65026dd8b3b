"""Ingester session records, upserted whole by id."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from models.repositories.base import Repository
from models.session import Session


def _ms_to_dt(ms: int | None) -> dt.datetime | None:
    return None if ms is None else dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


class SessionRepository(Repository[Session]):
    model = Session

    def upsert(self, record: dict[str, Any]) -> Session:
        """Store the ingester's latest view of a connection; idempotency key: ``id``.

        Counters only grow and an ended session stays ended, so an older record arriving
        late (at-least-once delivery, reordering) never rolls the row back.
        """
        row = self.get(record["id"])
        started = _ms_to_dt(record["started_at"])
        assert started is not None
        if row is None:
            row = Session(id=record["id"], source=record.get("source", ""), started_at=started)
            self.session.add(row)
            row.frames = row.events = row.malformed = row.duplicates = row.gap_count = 0
            row.gaps = []
        for name in ("frames", "events", "malformed", "duplicates"):
            setattr(row, name, max(int(getattr(row, name) or 0), int(record.get(name, 0))))
        gaps = list(record.get("gaps") or [])
        if len(gaps) >= len(row.gaps or []):
            row.gaps = gaps
            row.gap_count = len(gaps)
        if record.get("ended_at") is not None and row.ended_at is None:
            row.ended_at = _ms_to_dt(record["ended_at"])
            row.end_reason = (record.get("end_reason") or "")[:200]
        self.session.flush()
        return row

    def recent(self, limit: int = 20) -> list[Session]:
        return list(
            self.session.scalars(select(Session).order_by(Session.started_at.desc()).limit(limit))
        )
