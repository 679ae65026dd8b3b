"""Our hand-built task messages are the ones Celery's send_task would write."""

from __future__ import annotations

import orjson
from celery import Celery

from workers.ingester.broker import ROUTES, task_body, task_headers


def test_headers_carry_every_key_celery_writes_for_send_task() -> None:
    # Given the message Celery itself builds for a plain send_task
    app = Celery("probe", broker="memory://", set_as_current=False)
    celery_msg = app.amqp.as_task_v2("tid-1", "hyperwatch.persist.trades", args=[{"v": 1}])
    # When we build ours
    ours = task_headers("hyperwatch.persist.trades", "tid-1", "[...]")
    # Then it has the same header keys with the same meaning
    assert set(ours) == set(celery_msg.headers)
    for key in (
        "lang",
        "task",
        "id",
        "root_id",
        "parent_id",
        "retries",
        "timelimit",
        "eta",
        "group",
    ):
        assert ours[key] == celery_msg.headers[key], key
    assert celery_msg.properties["correlation_id"] == ours["id"]


def test_body_is_protocol_v2_args_kwargs_embed_with_the_batch_as_json_text() -> None:
    batch = {"v": 1, "kind": "trades", "events": [{"px": "1.5", "hash": 'q"\\u00e9'}]}
    text = orjson.dumps(batch)
    app = Celery("probe", broker="memory://", set_as_current=False)
    celery_body = app.amqp.as_task_v2("t", "x", args=[text.decode()]).body
    body = orjson.loads(task_body(text))
    assert body == orjson.loads(orjson.dumps(celery_body))
    assert orjson.loads(body[0][0]) == batch


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
