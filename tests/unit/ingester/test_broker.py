"""Which batch kind goes to which task and queue. (The messages themselves:
tests/unit/transport/test_messages.py.)"""

from __future__ import annotations

from workers.ingester.broker import ROUTES


def test_routes_follow_the_lead_contract() -> None:
    names = {kind: [(t.task, t.queue) for t in targets] for kind, targets in ROUTES.items()}
    assert names == {
        "trades": [("hyperwatch.persist.trades", "ingest")],
        "asset_contexts": [
            ("hyperwatch.persist.asset_contexts", "ingest"),
            ("hyperwatch.alerts.evaluate", "alerts"),
        ],
        "positions": [
            ("hyperwatch.persist.positions", "ingest"),
            ("hyperwatch.alerts.evaluate", "alerts"),
        ],
        "fills": [("hyperwatch.persist.fills", "ingest")],
        "mids": [("hyperwatch.alerts.evaluate", "alerts")],
    }
