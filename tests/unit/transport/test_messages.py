"""Our hand-built task messages are the ones Celery's send_task would write."""

from __future__ import annotations

from typing import Any

import orjson
from celery import Celery

from events import BATCH_CONTENT_TYPE
from runtime.transport import publish_task, task_body, task_headers


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


class RecordingProducer:
    def __init__(self) -> None:
        self.published: list[tuple[Any, dict[str, Any]]] = []

    def publish(self, body: Any, **kwargs: Any) -> None:
        self.published.append((body, kwargs))


def test_given_a_batch_when_published_then_it_goes_to_its_queue_as_the_batch_type() -> None:
    producer = RecordingProducer()
    task_id = publish_task(
        producer,  # type: ignore[arg-type]
        "hyperwatch.persist.trades",
        "ingest",
        b'{"v":2}',
        "[...]",
    )
    [(body, sent)] = producer.published
    assert body == task_body(b'{"v":2}')
    # The anonymous exchange: the Redis transport pushes onto the queue's list, nothing
    # declared; the content type workers decode with orjson; no retry inside kombu.
    assert (sent["exchange"], sent["routing_key"]) == ("", "ingest")
    assert (sent["content_type"], sent["content_encoding"]) == (BATCH_CONTENT_TYPE, "utf-8")
    assert sent["headers"] == task_headers("hyperwatch.persist.trades", task_id, "[...]")
    assert sent["correlation_id"] == task_id
    assert (sent["delivery_mode"], sent["retry"]) == (2, False)
