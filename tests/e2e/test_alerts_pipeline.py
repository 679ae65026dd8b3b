"""The whole path as deployed: ``hyperwatch simulate`` → ``hyperwatch ingest`` → Redis →
``celery -A tasks worker`` (ingest, alerts, notify) → a signed webhook on a local receiver,
with the subscriber, channel and alerts created through the ``hyperwatch`` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from sqlalchemy import text

from domain.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from models.db import Database
from tests.integration.celery.support import WorkerProcess, service_env, wait_until
from tests.integration.notify.receiver import Receiver, receiving
from workers.cli import cli
from workers.simulator.runner import SimulatorProcess

pytestmark = pytest.mark.e2e


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    with receiving() as r:
        yield r


@pytest.fixture()
def system(
    tmp_path: Path, postgres_url: str, pg_database: Database, redis_url: str
) -> Iterator[dict[str, str]]:
    """Simulator, ingester and one worker (storing batches too) running; yields the
    environment they share."""
    sim = SimulatorProcess.start(["--coins", "BTC,ETH", "--rate", "20"])
    env = service_env(
        database_url=postgres_url,
        redis_url=redis_url,
        broker_url=redis_url,
        hl_ws_url=sim.ws_url,
        hl_info_url=sim.info_url,
        coins="BTC,ETH",
        ingester_health_port=0,
        worker_metrics_port=0,
        webhook_allowlist="127.0.0.0/8",
        data_dir=tmp_path / "var",
        log_level="INFO",
    )
    with (tmp_path / "ingest.log").open("wb") as log:
        ingester = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", "ingest"],
            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    worker = WorkerProcess(tmp_path, env, name="w", queues="ingest,alerts,notify", concurrency=2)
    try:
        worker.wait_ready()
        yield env
    finally:
        worker.stop()
        ingester.terminate()
        try:
            ingester.wait(15)
        except subprocess.TimeoutExpired:
            ingester.kill()
        sim.stop()


def test_an_alert_added_on_the_cli_fires_on_the_live_feed_and_reaches_the_webhook(
    system: dict[str, str], receiver: Receiver, redis_url: str, pg_database: Database
) -> None:
    cli_env = {k: v for k, v in system.items() if k.isupper() and k != "PYTHONPATH"}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=cli_env, catch_exceptions=False)

    # Given the ingester has published BTC and ETH mids (the coins the CLI accepts)
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: {b"BTC", b"ETH"} <= set(client.hkeys("hw:latest:mid")), 30, what="mids")

    # When a subscriber, a webhook channel and two alerts are added through the CLI: one the
    # live BTC price has crossed, one it cannot have; and one on a coin not ingested
    assert run("users", "add", "ann@example.com", "--tier", "pro").exit_code == 0
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "webhook",
                "--target", receiver.url(), "--secret", "e2e-secret-0123456789")  # fmt: skip
    channel = added.output.split()[1]

    def alert(*args: str) -> Result:
        return run("alerts", "add", "--user", "ann@example.com", "--channel", channel, *args)

    crossed = alert("--coin", "BTC", "--kind", "price_above", "--threshold", "1")
    assert crossed.exit_code == 0, crossed.output
    assert alert("--coin", "ETH", "--kind", "price_below", "--threshold", "0.0001").exit_code == 0
    unknown = alert("--coin", "DOGE", "--kind", "price_above", "--threshold", "1")

    # Then the next BTC batch fires the first, and the webhook gets it, signed, once
    [request] = wait_until(lambda: receiver.received(), 30, what="the webhook")
    body = json.loads(request.body)
    assert (body["coin"], body["kind"], body["threshold"]) == ("BTC", "price_above", "1")
    assert verify("e2e-secret-0123456789", request.headers[TIMESTAMP_HEADER], request.body,
                  request.headers[SIGNATURE_HEADER], now_s=time.time())  # fmt: skip
    assert unknown.exit_code == 2 and "unknown coin 'DOGE'" in unknown.stderr
    wait_until(lambda: "sent" in run("notifications", "list").output, 10, what="sent")
    time.sleep(1.0)  # a few more live batches: the once alert stays fired once
    assert len(receiver.received()) == 1
    listing = run("alerts", "list", "--all").output
    assert "inactive" in listing and "e2e-secret" not in run("channels", "list").output
    client.close()


def test_a_whale_trade_on_the_live_feed_is_stored_forwarded_and_notified_once(
    system: dict[str, str], receiver: Receiver, redis_url: str, pg_database: Database
) -> None:
    cli_env = {k: v for k, v in system.items() if k.isupper() and k != "PYTHONPATH"}

    def run(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=cli_env, catch_exceptions=False)

    # Given the ingester is feeding BTC and ETH trades (the simulator's run from about $10
    # to $100k of notional each)
    client = redis.Redis.from_url(redis_url)
    wait_until(lambda: {b"BTC", b"ETH"} <= set(client.hkeys("hw:latest:mid")), 30, what="mids")
    assert run("users", "add", "ann@example.com", "--tier", "pro").exit_code == 0
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "webhook",
                "--target", receiver.url(), "--secret", "e2e-secret-0123456789")  # fmt: skip
    channel = added.output.split()[1]

    def alert(*args: str) -> Result:
        return run("alerts", "add", "--user", "ann@example.com", "--channel", channel,
                   "--kind", "whale_trade", *args)  # fmt: skip

    # When a whale alert at 1,000 USD on BTC is added, and twins no trade can reach: the
    # same coin at a trillion, ETH at a trillion
    whale = alert("--coin", "BTC", "--threshold", "1000")
    assert whale.exit_code == 0, whale.output
    assert alert("--coin", "BTC", "--threshold", "1000000000000").exit_code == 0
    assert alert("--coin", "ETH", "--threshold", "1000000000000").exit_code == 0

    # Then the first BTC trade of 1,000 USD or more stored after it fires it: the webhook
    # gets that trade, which is in the database as described
    [request] = wait_until(lambda: receiver.received(), 30, what="the whale webhook")
    body = json.loads(request.body)
    assert (body["coin"], body["kind"], body["threshold"]) == ("BTC", "whale_trade", "1000")
    assert Decimal(body["notional"]) >= 1000
    assert body["message"].startswith("BTC whale trade: 0x")
    with pg_database.engine.connect() as conn:
        stored = (
            conn.execute(
                text("SELECT px * sz FROM trade_snapshots WHERE coin = 'BTC' AND time = :t"),
                {"t": body["event_time"]},
            )
            .scalars()
            .all()
        )
    assert Decimal(body["notional"]) in stored
    # and it stays the only notification (once), the twins never fire
    wait_until(lambda: "sent" in run("notifications", "list").output, 10, what="sent")
    time.sleep(1.0)
    assert len(receiver.received()) == 1
    client.close()


def test_an_alert_created_through_the_api_fires_on_the_live_feed_and_reaches_the_webhook(
    system: dict[str, str], receiver: Receiver, redis_url: str, tmp_path: Path
) -> None:
    from tests.support.api import ApiClient, ApiProcess

    # Given `hyperwatch api` running beside the pipeline, on the same database and Redis,
    # and the ingester publishing BTC
    process = ApiProcess(
        tmp_path, database_url=system["DATABASE_URL"], redis_url=system["REDIS_URL"],
        webhook_allowlist=system["WEBHOOK_ALLOWLIST"], hl_info_url=system["HL_INFO_URL"],
    ).wait_ready()  # fmt: skip
    api = ApiClient(process.url)
    client = redis.Redis.from_url(redis_url)
    try:
        wait_until(lambda: b"BTC" in set(client.hkeys("hw:latest:mid")), 30, what="mids")

        # When an operator issues a key and the subscriber, with it, adds a webhook channel
        # and an alert the live BTC price has crossed
        ann = api.subscriber("ann@example.com", tier="pro")
        channel = api.as_(ann, "POST", "/v1/channels", json={
            "kind": "webhook", "target": receiver.url(), "secret": "e2e-secret-0123456789"})  # fmt: skip
        assert channel.status_code == 201, channel.text
        alert = api.as_(ann, "POST", "/v1/alerts", json={
            "kind": "price_above", "coin": "BTC", "threshold": "1",
            "channel_id": channel.json()["id"]})  # fmt: skip
        assert alert.status_code == 201, alert.text

        # Then the next BTC batch fires it and the webhook gets it, signed, once
        [request] = wait_until(lambda: receiver.received(), 30, what="the webhook")
        body = json.loads(request.body)
        assert (body["coin"], body["kind"], body["alert_id"]) == ("BTC", "price_above",
                                                                  alert.json()["id"])  # fmt: skip
        assert verify("e2e-secret-0123456789", request.headers[TIMESTAMP_HEADER], request.body,
                      request.headers[SIGNATURE_HEADER], now_s=time.time())  # fmt: skip

        # And the subscriber reads it back through the API: sent, the once alert disarmed
        def sent() -> list[dict[str, object]]:
            items = api.as_(ann, "GET", "/v1/notifications", params={"status": "sent"}).json()
            return list(items["items"])

        [notification] = wait_until(sent, 10, what="sent")
        assert notification["alert_id"] == alert.json()["id"]
        fired = api.as_(ann, "GET", f"/v1/alerts/{alert.json()['id']}").json()
        assert fired["active"] is False and fired["last_fired_at"] is not None
        assert len(receiver.received()) == 1
    finally:
        client.close()
        api.close()
        assert process.stop() == 0, process.log()
