"""RabbitMQ: quorum queues with a delivery limit, publisher confirms, and poison moved from
the dead-letter queue into ``dead_letters``. A private node (tests/support/rabbitmq.py) on
spare ports; it takes ~10 s to boot, so these run with the broker suites
(`make test-brokers`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kombu import Connection, Consumer
from sqlalchemy import select

from models.db import Database
from models.dead_letter import DeadLetter
from runtime.brokers import AmqpBroker
from runtime.keys import QUEUE_NAMES
from tasks.maintenance.dead_letters import collect
from tests.support.rabbitmq import RabbitNode
from workers.ingester.broker import PERSIST_TRADES, BrokerClient

pytestmark = [pytest.mark.integration, pytest.mark.heavy, pytest.mark.brokers]


@pytest.fixture(scope="module")
def node() -> Iterator[RabbitNode]:
    node = RabbitNode().start()
    try:
        yield node
    finally:
        node.close()


def test_given_a_batch_that_keeps_failing_when_it_reaches_the_delivery_limit_then_it_is_a_dead_letter(
    node: RabbitNode, pg_database: Database
) -> None:
    # Given quorum queues with a delivery limit of 2, declared by the ingester's client,
    # and one batch published with confirms
    broker = AmqpBroker(node.url, delivery_limit=2)
    sender = BrokerClient(node.url, kind=broker)
    sender.send(PERSIST_TRADES, b'{"v":2,"poison":true}', "batch")
    assert broker.queue_depths(QUEUE_NAMES)["ingest"] == 1

    # When consumers take it and give it back (a worker dying on it) past the limit
    with Connection(node.url) as conn:
        returned = 0

        def give_back(_body: object, message: object) -> None:
            nonlocal returned
            returned += 1
            message.requeue()  # type: ignore[attr-defined]

        queue = broker.queues(("ingest",))[0]
        with Consumer(conn.channel(), [queue], callbacks=[give_back], accept=None):
            for _ in range(10):
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    break

        # Then RabbitMQ dead-letters it, and the job moves it into dead_letters
        assert returned == 3  # the first delivery and 2 returns; the third return dead-letters
        assert broker.queue_depths(("ingest",)) == {"ingest": 0}
        assert collect(broker, conn, pg_database) == 1
        assert collect(broker, conn, pg_database) == 0  # acknowledged once recorded
    with pg_database.session() as session:
        rows = session.scalars(select(DeadLetter)).all()
    assert [row.task for row in rows] == [PERSIST_TRADES.task]
    assert "dead-lettered by RabbitMQ" in rows[0].reason and "poison" in rows[0].payload
    sender.close()
    broker.close()
