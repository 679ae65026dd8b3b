"""A backtest over a stored stream equals the live firings recorded for the same stream:
the same events go once through the alert worker (real Redis and PostgreSQL, one event a
batch, judged at its own time) and into storage as the persist tasks store them, then
``hyperwatch alerts backtest`` replays storage. Also the command's output and refusals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from domain.alerts.book import rule_from_row
from domain.alerts.definition import AlertRule
from events import AssetContext, Position, Trade, encode_batch
from models.alert import Alert
from models.db import Database
from models.notification_channel import NotificationChannel
from models.repositories import AssetContextRepository, PositionRepository, TradeRepository
from runtime import lifecycle
from settings import Settings
from tasks.alerts.evaluate import Evaluator
from tasks.application import HyperwatchCelery, create_app
from tests.integration.alerts.support import (
    WALLET,
    add_alert,
    add_channel,
    add_user,
    add_wallet,
    context,
    notifications,
    position,
)
from workers.cli import cli
from workers.commands.backtest import run_backtest

pytestmark = pytest.mark.integration

MINUTE = 60_000
T0 = 1_760_130_000_000  # a whole minute: stored contexts keep one per minute bucket


@pytest.fixture()
def evaluator(alert_settings: Settings, pg_database: Database) -> Iterator[Evaluator]:
    app: HyperwatchCelery = create_app(alert_settings)
    client = redis.Redis.from_url(alert_settings.redis_url)
    yield Evaluator(app, alert_settings, pg_database, client)
    client.close()
    app.close()
    lifecycle.registry.reset()


def _trade(t: int, tid: int, px: str, sz: str) -> Trade:
    return Trade("AVAX", t, tid, Decimal(px), Decimal(sz), "B", "0x" + f"{tid:064x}")


def _stream() -> list[AssetContext | Position | Trade]:
    """Twenty minutes of AVAX: the mark climbs through 30 and back (twice), funding spikes,
    a tracked wallet's position nears liquidation and grows, whale trades now and then."""
    marks = ["28", "29", "30.5", "31", "29", "28", "30.2", "27", "26", "25",
             "24", "23.5", "25", "27", "29", "31", "32", "29.5", "28", "27"]  # fmt: skip
    out: list[AssetContext | Position | Trade] = []
    for i, mark in enumerate(marks):
        t = T0 + i * MINUTE
        funding = "0.0002" if i in (3, 4, 12) else "0.00001"
        out.append(context("AVAX", t, mark=mark, funding=funding))
        size = "10" if i < 10 else "25"
        out.append(position("AVAX", t + 500, liq="24", szi=size))
        if i % 3 == 0:
            out.append(_trade(t + 1_000, i, mark, "5000" if i % 2 == 0 else "10"))
    return out


def _live(evaluator: Evaluator, events: list[AssetContext | Position | Trade]) -> None:
    for event in events:
        if isinstance(event, AssetContext):
            batch = encode_batch("asset_contexts", [event])
        elif isinstance(event, Position):
            batch = encode_batch("positions", [event])
        else:
            batch = encode_batch("trades", [event])
        evaluator.evaluate_batch(batch, event.time)


def _store(db: Database, events: list[AssetContext | Position | Trade]) -> None:
    with db.session() as s:
        AssetContextRepository(s).add_batch(
            [e for e in events if isinstance(e, AssetContext)], MINUTE
        )
        PositionRepository(s).add_batch([e for e in events if isinstance(e, Position)])
        TradeRepository(s).add_batch([e for e in events if isinstance(e, Trade)])


def test_a_backtest_over_the_stored_stream_equals_the_live_firings(
    evaluator: Evaluator, alert_settings: Settings, pg_database: Database,
    redis_client: redis.Redis,
) -> None:  # fmt: skip
    # Given recurring and once alerts of the kinds asset contexts, positions and trades drive
    user = add_user(pg_database)
    add_wallet(pg_database, alert_settings, user)
    channel = add_channel(pg_database, alert_settings, user, "http://127.0.0.1:9/h")
    specs: list[dict[str, Any]] = [
        {"kind": "price_above", "threshold": "30", "price_source": "mark", "mode": "recurring",
         "rearm_margin": "0.05"},
        {"kind": "price_below", "threshold": "25", "price_source": "mark"},
        {"kind": "funding_above", "threshold": "0.0001", "mode": "recurring",
         "rearm_margin": "0.5", "cooldown_s": 300},
        {"kind": "liquidation_distance_below", "threshold": "5", "wallet": WALLET,
         "mode": "recurring", "rearm_margin": "0.5"},
        {"kind": "whale_trade", "threshold": "100000", "mode": "recurring", "cooldown_s": 300},
        {"kind": "wallet_position_change", "threshold": "10", "wallet": WALLET},
    ]  # fmt: skip
    ids = [
        add_alert(pg_database, alert_settings, redis_client, user, channel, coin="AVAX", **spec)
        for spec in specs
    ]
    with pg_database.session() as s:
        rules: list[AlertRule] = [
            r for r in (rule_from_row(s.get(Alert, i)) for i in ids) if r is not None
        ]

    # When the stream goes through the live worker, and into storage
    events = _stream()
    _live(evaluator, events)
    _store(pg_database, events)
    live = sorted(
        (n.alert_id, n.event_time, n.payload["message"])
        for n in notifications(pg_database)
        if n.alert_id is not None
    )

    # Then replaying storage finds exactly the live firings, with the same messages
    report = run_backtest(pg_database.session, alert_settings, rules, T0, T0 + 20 * MINUTE)
    replayed = sorted((f.alert_id, f.event_time, f.message) for f in report.fired)
    assert replayed == live
    fired_kinds = {rules[ids.index(a)].kind for a, _, _ in live}
    assert len(fired_kinds) == len(specs)  # every kind fired at least once
    assert len(live) >= 10


def test_the_command_lists_firings_as_text_or_json_and_refuses_bad_input(
    alert_settings: Settings, pg_database: Database, postgres_url: str, redis_url: str,
) -> None:  # fmt: skip
    # Given the stored stream
    _store(pg_database, _stream())
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}

    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["alerts", "backtest", *args], env=env)
        return result.exit_code, result.output

    span = ["--from", str(T0), "--to", str(T0 + 20 * MINUTE)]

    # When an ad-hoc mark alert is backtested, as JSON and as text
    code, out = run("--kind", "price_above", "--coin", "AVAX", "--threshold", "31",
                    "--source", "mark", *span, "--json")  # fmt: skip
    text_code, text = run("--kind", "price_above", "--coin", "AVAX", "--threshold", "31",
                          "--source", "mark", *span)  # fmt: skip

    # Then it fired once (a once alert), at the first minute the mark reached 31
    assert code == 0, out
    doc = json.loads(out)
    assert [f["event_time"] for f in doc["fired"]] == [T0 + 3 * MINUTE]
    assert doc["events"] > 20 and doc["fired"][0]["value"] == "31"
    assert [(m["at"], m["count"]) for m in doc["sent"]] == [(T0 + 3 * MINUTE, 1)]
    assert (
        text_code == 0
        and "1 firing(s) over" in text
        and "2025-10-10T21:03:00Z  AVAX mark price 31" in text
    )
    assert "would have sent 1 webhook message(s), 0 of them digest(s)" in text

    # When a recurring rule is replayed for a channel with a 15-minute group interval
    user = add_user(pg_database, "bob@example.com")
    channel = add_channel(pg_database, alert_settings, user, "http://127.0.0.1:9/b")
    with pg_database.session() as s:
        stored = s.get(NotificationChannel, channel)
        assert stored is not None
        stored.group_interval_s = 900
    code, out = run("--kind", "price_above", "--coin", "AVAX", "--threshold", "31",
                    "--source", "mark", "--mode", "recurring", "--rearm-margin", "0.05",
                    "--channel", str(channel), *span, "--json")  # fmt: skip

    # Then it fired at 21:03 and 21:15; the second firing waited for the interval's end
    assert code == 0, out
    doc = json.loads(out)
    assert [f["event_time"] for f in doc["fired"]] == [T0 + 3 * MINUTE, T0 + 15 * MINUTE]
    assert [(m["at"], m["count"]) for m in doc["sent"]] == [
        (T0 + 3 * MINUTE, 1), (T0 + 18 * MINUTE, 1),
    ]  # fmt: skip

    # When the input is wrong: both an id and a kind, an unknown alert, a kind nothing
    # stored drives, a bad threshold, an empty span
    bad = [
        run("7", "--kind", "price_above", *span),
        run("99999", *span),
        run("--kind", "wallet_liquidated", "--coin", "AVAX", "--threshold", "1",
            "--wallet", WALLET, *span),
        run("--kind", "price_above", "--coin", "AVAX", "--threshold", "-1", *span),
        run("--kind", "price_above", "--coin", "AVAX", "--threshold", "1",
            "--from", str(T0), "--to", str(T0)),
        run("--kind", "price_above", "--coin", "AVAX", "--threshold", "1", "--channel", "999",
            *span),
    ]  # fmt: skip

    # Then each exits 2 with one line naming the problem
    assert [c for c, _ in bad] == [2] * 6
    assert "channel 999 does not exist" in bad[5][1]
    assert "not both" in bad[0][1]
    assert "alert 99999 does not exist" in bad[1][1]
    assert "wallet_liquidated alerts cannot be backtested" in bad[2][1]
    assert "threshold" in bad[3][1]
    assert "--to must be after --from" in bad[4][1]
