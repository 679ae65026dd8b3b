"""The naive design the benchmark compares against: one Celery task per trade, one ORM
insert (and commit) per row. Loaded only by the benchmark's worker (``-I bench.naive_tasks``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from celery import shared_task
from sqlalchemy.exc import IntegrityError

from models.db import get_database
from models.repositories.wallet_ids import ids_for
from models.trade import TradeSnapshot


@shared_task(name="bench.naive.store_trade", bind=True, ignore_result=True)
def store_trade(self: Any, t: dict[str, Any]) -> None:
    try:
        with get_database(self.app.settings).session() as session:
            # Buyer and seller are ids into the wallet dictionary (migration 0012).
            ids = ids_for(session, (t.get("buyer"), t.get("seller")))
            session.add(
                TradeSnapshot(
                    coin=t["coin"],
                    time=t["time"],
                    tid=t["tid"],
                    px=Decimal(t["px"]),
                    sz=Decimal(t["sz"]),
                    side=t["side"],
                    hash=t["hash"],
                    buyer_id=ids.get(t.get("buyer")),  # type: ignore[arg-type]
                    seller_id=ids.get(t.get("seller")),  # type: ignore[arg-type]
                )
            )
    except IntegrityError as exc:
        # Only a redelivery of a stored trade is expected; anything else (a missing day
        # partition is a check violation) must not pass silently.
        if "duplicate key" not in str(exc.orig):
            raise
