"""Bad input tried against the real processes: nothing crashes, nothing is written half,
every rejection is counted.

- Malformed task payloads at a real ``celery -A tasks worker`` (private Redis, fresh
  PostgreSQL): every rejection lands in ``dead_letters`` with its reason and in
  ``hyperwatch_dead_letters_total`` on the worker's ``/metrics``; no table changes; a good
  batch sent afterwards is stored.
- Bad CLI input and bad settings across the ``hyperwatch`` commands: exit 2, one line
  ``hyperwatch: …`` on stderr, nothing written.
- Oversize frames (5 MB) at a real ``hyperwatch ingest``: rejected and counted, the
  process keeps ingesting.

The 100,000-frame parser fuzz lives in tests/unit/ingester/test_fuzz_100k.py.
"""

# ruff: noqa: F811 - pytest fixtures imported from the shared module are parameters here

from __future__ import annotations

import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from click.testing import CliRunner, Result
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from events import Trade
from models.db import Database
from tasks.application import HyperwatchCelery
from tests.integration.celery.fixtures import (  # noqa: F401 - fixtures
    celery_settings,
    publisher,
    spawn_worker,
    worker_env,
)
from tests.integration.celery.support import (
    drained,
    expected_bars,
    make_trades,
    service_env,
    stored_bars,
    trades_payload,
    wait_until,
)
from tests.integration.ingester.support import read_queues
from tests.support.services import free_port, wait_for_port
from tests.support.stack import IngesterProcess
from workers.cli import cli
from workers.simulator import SimulatorConfig, SimulatorHandle, SimulatorServer

pytestmark = pytest.mark.e2e

# Every table a command or task could write (dead_letters is checked on its own).
DATA_TABLES = (
    "users", "notification_channels", "alerts", "tracked_wallets", "notifications",
    "trade_snapshots", "trade_bars", "asset_context_snapshots", "position_snapshots",
    "user_fills", "sessions", "health_metrics",
)  # fmt: skip
USER = "0x" + "ab" * 20


def table_counts(db: Database, tables: tuple[str, ...] = DATA_TABLES) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one())  # noqa: S608
            for t in tables
        }


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Metric sample name → {sorted labels → value} from a /metrics endpoint."""
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


# --- malformed task payloads at a real worker ------------------------------------------------


def trades_with(index: int = 1, n: int = 3, **change: Any) -> dict[str, Any]:
    """A good trade batch whose event ``index`` (an array of the fields) has ``change``
    applied; None is a missing value (JSON null)."""
    payload = trades_payload(make_trades(n))
    event = payload["events"][index]
    for key, value in change.items():
        event[Trade._fields.index(key)] = value
    return payload


def good(kind: str, event: dict[str, Any]) -> dict[str, Any]:
    return {"v": 1, "kind": kind, "source": "t", "seq": 0, "events": [event]}


CONTEXT = {
    "coin": "BTC", "time": 1_787_052_600_000, "funding": "0.0000125", "open_interest": "1000.5",
    "mark_px": "117000", "oracle_px": "117001", "mid_px": None, "premium": None,
    "day_ntl_vlm": "1e9", "prev_day_px": "116000",
}  # fmt: skip
POSITION = {
    "user": USER, "coin": "ETH", "time": 1_787_052_600_000, "szi": "-1.5", "entry_px": "3500.1",
    "position_value": "5250.15", "unrealized_pnl": "-12.5", "return_on_equity": "-0.01",
    "liquidation_px": None, "leverage_type": "cross", "leverage_value": 10, "margin_used": "525",
}  # fmt: skip
FILL = {
    "user": USER, "coin": "ETH", "time": 1_787_052_600_000, "tid": 77, "oid": 900,
    "px": "3500.1", "sz": "1.5", "side": "A", "dir": "Open Short", "start_position": "0",
    "closed_pnl": "0", "fee": "0.35", "fee_token": "USDC", "crossed": True, "hash": "0x" + "01" * 32,
}  # fmt: skip


@dataclass(frozen=True)
class Poison:
    name: str
    task: str  # short name after "hyperwatch."
    payload: Any
    reason: str  # a fragment of the dead-letter reason


OVERSIZE_TRADES = 25_000  # ≈ 5.5 MB of JSON in one message


def oversize_batch() -> dict[str, Any]:
    """Megabytes of good trades whose very last one the database refuses (hash too long: its
    bytes break the CHECK that holds it to 66 characters, as VARCHAR(66) did):
    the COPY fails at the end, so any partial write would show."""
    payload = trades_payload(make_trades(OVERSIZE_TRADES))
    payload["events"][-1][Trade._fields.index("hash")] = "0x" + "ab" * 40
    return payload


POISON: tuple[Poison, ...] = (
    Poison("version 3", "persist.trades", {**trades_with(), "v": 3}, "unsupported batch version 3"),
    Poison("trade not an array", "persist.trades", {**trades_with(), "events": [{"coin": "BTC"}]},
           "event 0: a trade must be an array of its 9 fields"),
    Poison("not JSON text", "persist.trades", '{"v": 2, "kind": "trades", "events": [',
           "batch is not JSON"),
    Poison("no version", "persist.trades", {k: v for k, v in trades_with().items() if k != "v"},
           "unsupported batch version None"),
    Poison("wrong kind", "persist.trades", {**trades_with(), "kind": "fills"},
           "expected a trades batch, got fills"),
    Poison("unknown kind", "persist.fills", {**trades_with(), "kind": "orders"},
           "unknown batch kind 'orders'"),
    Poison("not an object", "persist.positions", ["not", "a", "batch"],
           "batch must be an object, got list"),
    Poison("null", "persist.asset_contexts", None, "batch must be an object, got NoneType"),
    Poison("events not a list", "persist.trades", {**trades_with(), "events": {"0": 1}},
           "batch.events must be a list"),
    Poison("bad decimal", "persist.trades", trades_with(px="12O.5"),
           "event 1: trades.px: not a decimal: '12O.5'"),
    Poison("NaN", "persist.trades", trades_with(sz="NaN"), "event 1: trades.sz: not a finite"),
    Poison("float price", "persist.trades", trades_with(px=1.5),
           "event 1: trades.px: expected a decimal string, got float"),
    Poison("missing tid", "persist.trades", trades_with(tid=None),
           "event 1: trades.tid: expected an integer, got NoneType"),
    Poison("bool time", "persist.trades", trades_with(time=True),
           "event 1: trades.time: expected an integer, got bool"),
    Poison("time past year 9999", "persist.trades", trades_with(time=2**62),
           "event 1: trades.time: time out of range"),
    Poison("bad side", "persist.trades", trades_with(side="X"), "trades.side: side must be"),
    Poison("context missing funding", "persist.asset_contexts",
           good("asset_contexts", {k: v for k, v in CONTEXT.items() if k != "funding"}),
           "asset_contexts.funding: expected a decimal string, got NoneType"),
    Poison("position leverage as text", "persist.positions",
           good("positions", {**POSITION, "leverage_value": "10"}),
           "positions.leverage_value: expected an integer, got str"),
    Poison("fill crossed as text", "persist.fills", good("fills", {**FILL, "crossed": "yes"}),
           "fills.crossed: expected a boolean, got str"),
    Poison("session without id", "persist.session", {"started_at": 1}, "session.id"),
    Poison("session time as text", "persist.session", {"id": "s1", "started_at": "yesterday"},
           "session.started_at"),
    Poison("session time past year 9999", "persist.session", {"id": "s1", "started_at": 2**62},
           "session.started_at"),
    Poison("session NUL in id", "persist.session", {"id": "s\x00", "started_at": 1},
           "session.id: contains a NUL character"),
    Poison("session negative counter", "persist.session",
           {"id": "s1", "started_at": 1, "frames": -1}, "session.frames"),
    # (every batch kind is an alert input now: trades and fills carry whale and liquidation
    # events, so a kind that does not exist is the poison here)
    Poison("evaluate an unknown kind", "alerts.evaluate", {**trades_with(), "kind": "orders"},
           "unknown batch kind 'orders'"),
    Poison("evaluate garbage", "alerts.evaluate", "garbage", "batch is not JSON"),
    Poison("evaluate a JSON string", "alerts.evaluate", '"garbage"',
           "batch must be an object, got str"),
    # Valid on the wire, refused by PostgreSQL: dead-lettered as data errors.
    # refused by COPY itself (the raw driver error)
    Poison("NUMERIC overflow", "persist.trades", trades_with(px="1e200000"),
           "NumericValueOutOfRange: value overflows numeric format"),
    # a size NUMERIC holds, whose bar (28-digit context) it does not: the trades are inserted,
    # then the bar upsert (one statement on the raw driver cursor) fails in the same
    # transaction — which must take the trades with it
    Poison("NUMERIC overflow after the insert", "persist.trades", trades_with(sz="9" * 131_072),
           "NumericValueOutOfRange: value overflows numeric format"),
    Poison("BIGINT overflow", "persist.fills", good("fills", {**FILL, "tid": 2**63}),
           "out of range for type bigint"),
    Poison("INTEGER overflow", "persist.positions",
           good("positions", {**POSITION, "leverage_value": 2**40}), "out of range"),
    Poison("100k-char coin", "persist.trades", trades_with(coin="X" * 100_000),
           "value too long for type character varying(40)"),
    Poison("NUL in coin", "persist.asset_contexts", good("asset_contexts", {**CONTEXT, "coin": "B\x00"}),
           "0x00"),
    Poison("oversize batch", "persist.trades", oversize_batch(),
           'violates check constraint "ck_trade_snapshots_hash_length"'),
)  # fmt: skip


def test_given_malformed_payloads_when_a_real_worker_takes_them_then_each_is_dead_lettered_counted_and_nothing_is_written(
    spawn_worker: Callable[..., Any],
    publisher: HyperwatchCelery,
    pg_database: Database,
    redis_url: str,
) -> None:
    # Given a real worker on the ingest and alerts queues, serving /metrics
    port = free_port()
    worker = spawn_worker(
        {"worker_metrics_port": port}, name="poisoned", queues="ingest,alerts", concurrency=1
    ).wait_ready()
    wait_for_port(port)
    before = table_counts(pg_database)
    broker = redis.Redis.from_url(redis_url)

    # When every kind of poison is sent, plus messages that are not tasks of ours: an
    # unknown task name, and a task called with the wrong number of arguments
    publisher.send_task("hyperwatch.persist.no_such_task", args=[trades_with()])
    publisher.send_task("hyperwatch.persist.trades", args=[trades_with(), "extra"])
    publisher.send_task("hyperwatch.persist.trades", args=[])
    for poison in POISON:
        publisher.send_task(f"hyperwatch.{poison.task}", args=[poison.payload])

    def dead_letters() -> list[Any]:
        with pg_database.engine.connect() as conn:
            return list(
                conn.execute(
                    text(
                        "SELECT task, reason, length(payload) AS size FROM dead_letters ORDER BY id"
                    )
                )
            )

    try:
        wait_until(lambda: len(dead_letters()) >= len(POISON), 60, what="every poison")
        wait_until(lambda: drained(broker, "ingest") and drained(broker, "alerts"), 30)
    except AssertionError as exc:
        tail = worker.log()[-6000:]
        raise AssertionError(f"{exc}; {len(dead_letters())} dead letters\n{tail}") from None

    # Then the worker is alive, and each payload is a dead letter with its reason, in order
    assert worker.process.poll() is None, worker.log()[-4000:]
    rows = dead_letters()
    assert len(rows) == len(POISON)
    by_task: dict[str, list[Any]] = {}
    for row in rows:
        by_task.setdefault(row.task, []).append(row)
    for task, got in by_task.items():
        expected = [p for p in POISON if f"hyperwatch.{p.task}" == task]
        assert len(got) == len(expected), task
        for poison, row in zip(expected, got, strict=True):
            assert poison.reason in row.reason, (poison.name, row.reason)
            assert "\n" not in row.reason and len(row.reason) <= 2000
            assert 0 < row.size <= 65_536, poison.name  # kept for diagnosis, bounded
    assert max(r.size for r in rows) == 65_536  # the oversize payloads were truncated

    # And nothing was written anywhere else: not even part of the 25,000-trade batch
    assert table_counts(pg_database) == before

    # And every rejection is counted on the worker's /metrics, per task
    metrics = scrape(port)
    counted = {dict(k)["task"]: v for k, v in metrics["hyperwatch_dead_letters_total"].items()}
    assert counted == {t: float(n) for t, n in Counter(r.task for r in rows).items()}
    # the two calls with the wrong arity are bugs of the sender, counted as failed tasks
    failed = {dict(k)["task"]: v for k, v in metrics["hyperwatch_tasks_failed_total"].items()}
    assert failed == {"hyperwatch.persist.trades": 2.0}
    # and the unknown task and the wrong arity were refused in the log
    log = worker.log()
    assert "Received unregistered task of type 'hyperwatch.persist.no_such_task'" in log
    assert "takes 2 positional arguments but 3 were given" in log

    # When a good batch follows
    trades = make_trades(200, first_tid=10_000)
    publisher.send_task("hyperwatch.persist.trades", args=[trades_payload(trades, seq=1)])

    # Then it is stored whole, with its bars
    def stored() -> int:
        return table_counts(pg_database, ("trade_snapshots",))["trade_snapshots"]

    wait_until(lambda: stored() == 200, 30, what="the good batch stored")
    with pg_database.engine.connect() as conn:
        assert stored_bars(conn) == expected_bars(trades)
    assert worker.process.poll() is None
    broker.close()


# Items pushed onto a queue list that are not kombu messages, each with what the worker's
# log gives as the reason. (Without runtime/transport.py's _brpop_read the first stops a worker with
# "Unrecoverable error: JSONDecodeError", celery#1113, and is lost.)
JUNK: tuple[tuple[bytes, str], ...] = (
    (b"\x00not a kombu message{", "JSONDecodeError"),
    (b"\xff\xfe\x00 not UTF-8", "JSONDecodeError"),
    (b'{"body": "e30=", "headers": {}}', "KeyError: 'properties'"),
    (b'["a", "list"]', "TypeError"),
    (b"{" + b"x" * 70_000, "JSONDecodeError"),  # kept: its first 64 KiB
    (
        orjson.dumps({"body": "", "properties": {"delivery_tag": "t1", "body_encoding": "utf-8"}}),
        "delivery_info lacks exchange and routing_key",
    ),
)


def test_given_junk_on_a_queue_list_when_a_worker_pops_it_then_it_is_set_aside_and_the_worker_goes_on(
    spawn_worker: Callable[..., Any],
    publisher: HyperwatchCelery,
    pg_database: Database,
    redis_url: str,
) -> None:
    broker = redis.Redis.from_url(redis_url)
    # Given a good batch, then every kind of junk, then another good batch, on the queue
    # (kombu pops from the right: the first pushed is the first taken)
    first, second = make_trades(50, first_tid=1), make_trades(50, first_tid=1_000)
    publisher.send_task("hyperwatch.persist.trades", args=[trades_payload(first, seq=1)])
    for item, _ in JUNK:
        broker.lpush("ingest", item)
    publisher.send_task("hyperwatch.persist.trades", args=[trades_payload(second, seq=2)])

    # When a worker serving /metrics takes them all
    port = free_port()
    worker = spawn_worker(
        {"worker_metrics_port": port}, name="junked", queues="ingest"
    ).wait_ready()
    wait_until(lambda: drained(broker, "ingest"), 30, what="queue drained")
    wait_until(
        lambda: table_counts(pg_database, ("trade_snapshots",))["trade_snapshots"] == 100,
        30,
        what="both batches stored",
    )

    # Then it is still running, both good batches are stored exactly once with their bars
    assert worker.process.poll() is None, worker.log()[-4000:]
    with pg_database.engine.connect() as conn:
        assert stored_bars(conn) == expected_bars(first + second)
    # and every junk item is kept, byte for byte up to 64 KiB, newest first
    kept = [item[:65_536] for item, _ in reversed(JUNK)]
    assert broker.lrange("hw:undecodable", 0, -1) == kept
    # and each one was logged with its queue and reason, and counted
    log = worker.log()
    assert "Unrecoverable error" not in log
    lines = [line for line in log.splitlines() if "undecodable message on queue 'ingest'" in line]
    assert len(lines) == len(JUNK), lines
    for (_, reason), line in zip(JUNK, lines, strict=True):
        assert reason in line and "kept in Redis list hw:undecodable" in line, line
    counted = scrape(port)["hyperwatch_dead_letters_total"]
    assert {dict(k)["task"]: v for k, v in counted.items()} == {"undecodable:ingest": len(JUNK)}
    broker.close()


# --- bad CLI input ------------------------------------------------------------------------------

WALLET = "0x" + "cd" * 20
BIG = "9" * 25
ALERT = ("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--channel", "{channel}")
WEBHOOK = ("channels", "add", "--user", "ann@example.com", "--kind", "webhook", "--target")

# (arguments, a fragment of the one line it must print). "{channel}" is the seeded channel.
BAD_COMMANDS: tuple[tuple[tuple[str, ...], str], ...] = (
    # click's own parsing: one line too, never a four-line usage block
    (("frobnicate",), "No such command 'frobnicate'"),
    (("users", "add"), "Missing argument 'EMAIL'"),
    (("users", "add", "x@example.com", "--tier", "gold"), "Invalid value for '--tier'"),
    (("users", "list", "--bogus"), "No such option '--bogus'"),
    (("alerts", "pause", "abc"), "Invalid value for 'ALERT_ID'"),
    (("channels", "rm", "1.5"), "Invalid value for 'CHANNEL_ID'"),
    (("notifications", "list", "--limit", "0"), "Invalid value for '--limit'"),
    (("notifications", "list", "--status", "lost"), "Invalid value for '--status'"),
    (("db", "partitions", "--ahead", "367"), "Invalid value for '--ahead'"),
    (("health", "worker", "--max-age", "soon"), "Invalid value for '--max-age'"),
    (("config", "show", "--yaml"), "No such option '--yaml'"),
    (("simulate", "--rate", "fast"), "Invalid value for '--rate'"),
    (("up", "--feed", "mainnet"), "Invalid value for '--feed'"),
    (("ingest", "--coins", "BTC"), "No such option '--coins'"),
    # users
    (("users", "add", "not-an-email"), "is not an email address"),
    (("users", "add", ""), "is not an email address"),
    (("users", "add", "Ann@Example.com"), "already exists"),
    (("users", "add", "a" * 330 + "@example.com"), "email local part (before the @) is at most 64"),
    (("users", "set-tier", "nobody@example.com", "pro"), "unknown user"),
    (("users", "set-tier", "²", "pro"), "unknown user '²'"),
    (("users", "set-tier", BIG, "pro"), "unknown user"),
    # channels: the SSRF guard, required parts, what the columns can hold
    ((*WEBHOOK, "http://10.1.2.3/hook"), "private address 10.1.2.3"),
    ((*WEBHOOK, "http://169.254.169.254/latest/meta-data"), "link-local"),
    ((*WEBHOOK, "http://2852039166/latest"), "link-local address 169.254.169.254"),
    ((*WEBHOOK, "http://0251.0376.0251.0376/"), "link-local address 169.254.169.254"),
    ((*WEBHOOK, "http://[fd00::1]/x"), "private address fd00::1"),
    ((*WEBHOOK, "http://[fe80::1]/x"), "link-local"),
    ((*WEBHOOK, "http://[::ffff:10.0.0.1]/x"), "private address 10.0.0.1 (embedded"),
    ((*WEBHOOK, "http://user:pw@hooks.example.com/"), "credentials"),
    ((*WEBHOOK, "javascript:alert(1)"), "only http and https"),
    ((*WEBHOOK, "http://127.0.0.1:9/" + "a" * 3000), "a channel target is at most 2048 characters"),
    ((*WEBHOOK, "http://127.0.0.1:9/h", "--secret", "s" * 300), "a channel secret is at most 256 characters"),
    (("channels", "add", "--user", "ann@example.com", "--kind", "redis", "--name", "n" * 150),
     "the database refused a value"),
    (("channels", "add", "--user", "ann@example.com", "--kind", "pager"), "Invalid value for '--kind'"),
    (("channels", "add", "--user", "ann@example.com", "--kind", "telegram", "--target", "12345"),
     "needs a secret"),
    (("channels", "add", "--user", "nobody@example.com", "--kind", "redis"), "unknown user"),
    (("channels", "rm", "999999"), "channel 999999 does not exist"),
    (("channels", "rm", "{channel}"), "is used by active alert"),
    # wallets
    (("wallets", "track", "--user", "ann@example.com", "0x123"), "is not a wallet address"),
    (("wallets", "track", "--user", "ann@example.com", "' OR 1=1 --"), "is not a wallet address"),
    (("wallets", "track", "--user", "ann@example.com", WALLET, "--label", "l" * 150),
     "--label: at most 100 characters, got 150"),
    (("wallets", "untrack", "--user", "ann@example.com", WALLET), "does not track"),
    # alerts
    ((*ALERT, "--coin", "DOGE", "--kind", "price_above", "--threshold", "1"), "unknown coin 'DOGE'"),
    ((*ALERT, "--kind", "price_above", "--threshold", "abc"), "threshold must be a decimal"),
    ((*ALERT, "--kind", "price_above", "--threshold", "NaN"), "finite decimal"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1e200000"), "is above the limit"),
    ((*ALERT, "--kind", "price_move_pct", "--threshold", "5", "--window", "5x"),
     "--window must be a duration"),
    ((*ALERT, "--kind", "price_move_pct", "--threshold", "5", "--window", BIG),
     "--window must be a duration"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1", "--expires", "9999-99-99"),
     "--expires must be ISO 8601"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1", "--expires", BIG),
     "--expires must be ISO 8601"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1", "--snooze-until", f"+{BIG}d"),
     "--snooze-until must be a duration"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1", "--mode", "recurring", "--cooldown", BIG),
     "--cooldown must be a duration"),
    ((*ALERT, "--kind", "price_above", "--threshold", "1", "--mode", "recurring",
      "--rearm-margin", "2"), "rearm_margin must be"),
    ((*ALERT, "--kind", "liquidation_distance_below", "--threshold", "5", "--wallet", WALLET),
     "does not track wallet"),
    (("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--channel", "999999",
      "--kind", "price_above", "--threshold", "1"), "channel 999999 does not exist"),
    (("alerts", "pause", "999999"), "alert 999999 does not exist"),
    (("alerts", "rm", BIG), f"alert {BIG} does not exist"),
    (("alerts", "list", "--user", "' OR 1=1 --"), "unknown user"),
    (("notifications", "list", "--user", "nobody@example.com"), "unknown user"),
    # db
    (("db", "upgrade", "no_such_revision"), "Can't locate revision"),
    (("db", "downgrade", "'; DROP TABLE users; --"), "Can't locate revision"),
)  # fmt: skip


@pytest.fixture()
def cli_env(postgres_url: str, pg_database: Database, redis_url: str) -> Iterator[dict[str, str]]:
    """Settings as a deployed command reads them; BTC is a coin the ingester has seen."""
    client = redis.Redis.from_url(redis_url)
    client.hset("hw:latest:mid", mapping={"BTC": '{"px":"1","time":1}'})
    client.close()
    yield {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "WEBHOOK_ALLOWLIST": "127.0.0.0/8"}


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=True)


def alerts_version(redis_url: str) -> bytes | None:
    client = redis.Redis.from_url(redis_url)
    try:
        value = client.get("hw:alerts:version")
        return value if isinstance(value, bytes) else None
    finally:
        client.close()


@pytest.mark.parametrize(("args", "fragment"), BAD_COMMANDS, ids=lambda v: str(v)[:50])
def test_given_bad_cli_input_when_run_then_exit_2_one_line_and_nothing_written(
    cli_env: dict[str, str],
    pg_database: Database,
    redis_url: str,
    args: tuple[str, ...],
    fragment: str,
) -> None:
    # Given a pro subscriber with a webhook channel and one active alert on it
    assert invoke(cli_env, "users", "add", "ann@example.com", "--tier", "pro").exit_code == 0
    added = invoke(cli_env, *WEBHOOK, "http://127.0.0.1:9/hook", "--secret", "s3cret-0123456789")
    assert added.exit_code == 0, added.output
    channel = added.output.split()[1]
    alert = (a.replace("{channel}", channel) for a in ALERT)
    made = invoke(cli_env, *alert, "--kind", "price_above", "--threshold", "1")
    assert made.exit_code == 0, made.output
    before = (table_counts(pg_database), alerts_version(redis_url))

    # When the bad command runs
    result = invoke(cli_env, *(a.replace("{channel}", channel) for a in args))

    # Then exit 2, one line naming the problem, no traceback, and nothing written or announced
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
    assert fragment in lines[0], lines[0]
    assert result.stdout == ""
    assert (table_counts(pg_database), alerts_version(redis_url)) == before


# --- bad settings ---------------------------------------------------------------------------------

SECRET = "Zx9-s3cr3t-pw"  # must never be echoed back by a settings error

# (command, environment, variable named, text that must not appear)
BAD_SETTINGS: tuple[tuple[tuple[str, ...], dict[str, str], str], ...] = (
    (("config", "show"), {"PING_INTERVAL_S": "soon"}, "PING_INTERVAL_S"),
    (("db", "upgrade"), {"DATABASE_URL": f"mysql://app:{SECRET}@db/x"}, "DATABASE_URL"),
    (("db", "current"), {"DATABASE_URL": f"postgresql+psycopg2://app:{SECRET}@db"}, "DATABASE_URL"),
    (("users", "list"), {"REDIS_URL": f"http://:{SECRET}@cache:6379"}, "REDIS_URL"),
    # RabbitMQ is a broker kind now: a malformed amqp:// URL (the port) is what is refused
    (("alerts", "list"), {"BROKER_URL": f"amqp://guest:{SECRET}@mq:port//"}, "BROKER_URL"),
    (("channels", "list"), {"SENTRY_DSN": f"not-a-dsn-{SECRET}"}, "SENTRY_DSN"),
    (("wallets", "list"), {"FLOWER_BASIC_AUTH": f"ops{SECRET}"}, "FLOWER_BASIC_AUTH"),
    (("notifications", "list"), {"TRACKED_WALLETS": "0x123"}, "TRACKED_WALLETS"),
    (("health",), {"HEALTH_QUEUE_DEPTH_DEGRADED": "10", "HEALTH_QUEUE_DEPTH_UNHEALTHY": "5"},
     "HEALTH_QUEUE_DEPTH_UNHEALTHY"),
    (("ingest",), {"COINS": "BTC ETH"}, "COINS"),
    (("ingest",), {"INGEST_BATCH_SIZE": "0"}, "INGEST_BATCH_SIZE"),
    (("up", "--feed", "sim"), {"PONG_TIMEOUT_S": "50"}, "PONG_TIMEOUT_S"),
    (("db", "partitions"), {"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
    (("users", "add", "bob@example.com"), {"DATABASE_CONNECTION_TIMEOUT": "-1"},
     "DATABASE_CONNECTION_TIMEOUT"),
    (("channels", "add", "--user", "ann@example.com", "--kind", "webhook", "--target",
      "http://127.0.0.1:9/h"), {"WEBHOOK_ALLOWLIST": "not a host!"}, "WEBHOOK_ALLOWLIST"),
    (("users", "list"), {".env": "INGEST_BATCH_MS=0\n"}, "INGEST_BATCH_MS"),
)  # fmt: skip


def test_given_bad_settings_when_any_command_starts_then_exit_2_one_line_naming_the_variable(
    cli_env: dict[str, str], pg_database: Database, redis_url: str, tmp_path: Path
) -> None:
    # Given a subscriber (so writes would succeed if the settings were accepted)
    assert invoke(cli_env, "users", "add", "ann@example.com").exit_code == 0
    before = (table_counts(pg_database), alerts_version(redis_url))
    base = service_env(None, **{k.lower(): v for k, v in cli_env.items()})

    # When each command starts, as a real process, with one bad setting (in parallel)
    runs = []
    for index, (args, bad, _variable) in enumerate(BAD_SETTINGS):
        cwd = tmp_path / f"run{index}"
        cwd.mkdir()
        env = dict(base)
        if ".env" in bad:
            (cwd / ".env").write_text(bad[".env"])
        else:
            env.update(bad)
        process = subprocess.Popen(
            [sys.executable, "-m", "workers.cli", *args],
            cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        runs.append((process, cwd))

    # Then each exits 2 with one line naming the variable and never echoing a secret, having
    # written nothing: no row, no announcement, no file in its working directory
    for (process, cwd), (args, bad, variable) in zip(runs, BAD_SETTINGS, strict=True):
        out, err = process.communicate(timeout=60)
        lines = err.strip().splitlines()
        assert process.returncode == 2, (args, bad, err[-2000:])
        assert len(lines) == 1, (args, err)
        assert lines[0].startswith(f"hyperwatch: invalid setting {variable}: "), lines[0]
        assert SECRET not in err + out
        assert out == ""
        assert sorted(p.name for p in cwd.iterdir()) == ([".env"] if ".env" in bad else [])
    assert (table_counts(pg_database), alerts_version(redis_url)) == before


# --- oversize frames at a real ingester -----------------------------------------------------------

FIVE_MB = 5 * 1024 * 1024


def oversize_frames(now_ms: int) -> dict[str, tuple[bytes, str | None]]:
    """name → (a ~5 MB text frame, the malformed reason it must be counted under or None)."""
    junk_trade = b'{"coin":"BTC","side":"Q","px":"x","sz":"1","time":1,"hash":"0x","tid":1},'
    junk_mid = b'"C%07d":"not-a-price",'
    valid = [
        {"coin": "BTC", "side": "B", "px": "117000.5", "sz": "0.01", "time": now_ms,
         "hash": "0x" + "ee" * 32, "tid": 9_000_000_000 + i}
        for i in range(FIVE_MB // 120)
    ]  # fmt: skip
    depth = FIVE_MB // 2
    return {
        "text": (b"x" * FIVE_MB, "not_json"),
        "array": (b"[" + b"1," * (FIVE_MB // 2) + b"1]", "not_object"),
        "nesting": (b"[" * depth + b"]" * depth, "not_json"),
        "junk trades": (
            b'{"channel":"trades","data":['
            + junk_trade * (FIVE_MB // len(junk_trade))
            + junk_trade[:-1]
            + b"]}",
            "bad_event",
        ),
        "junk mids": (
            b'{"channel":"allMids","data":{"mids":{'
            + b"".join(junk_mid % i for i in range(FIVE_MB // 24))
            + b'"BTC":"1"}}}',
            "bad_event",
        ),
        "valid trades": (orjson.dumps({"channel": "trades", "data": valid}), None),
    }


def ingester_metrics(port: int) -> dict[str, float]:
    """'name{label=value}' → value, for the ingester's counters."""
    out: dict[str, float] = {}
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}"] = s.value
    return out


@pytest.fixture()
def exchange(tmp_path: Path) -> Iterator[SimulatorHandle]:
    handle = SimulatorServer(
        SimulatorConfig(port=0, rate=100, seed=5, coins=("BTC", "ETH"))
    ).start_in_thread()
    yield handle
    handle.stop()


def test_given_5mb_frames_when_the_ingester_receives_them_then_each_is_counted_and_ingestion_goes_on(
    exchange: SimulatorHandle, redis_url: str, tmp_path: Path
) -> None:
    # Given a real ingester subscribed to the simulator, publishing to a private Redis
    port = free_port()
    env = service_env(
        hl_ws_url=exchange.ws_url, hl_info_url=exchange.info_url, redis_url=redis_url,
        coins="BTC,ETH", ingester_health_port=port, log_level="INFO", data_dir=tmp_path / "var",
    )  # fmt: skip
    ingester = IngesterProcess(tmp_path, env).wait_ready()
    try:
        wait_until(lambda: len(read_queues(redis_url).trade_keys()) > 0, 20, what="first trades")
        before = ingester_metrics(port)
        frames = oversize_frames(int(time.time() * 1000))

        # When six ~5 MB frames arrive on its socket, between ordinary market data
        def push(ex: Any) -> int:
            sent = 0
            for conn in list(ex.hub.connections.values()):
                sent += sum(conn.send(frame) for frame, _reason in frames.values())
            return sent

        assert exchange.call(push) == len(frames)
        expected = Counter(reason for _frame, reason in frames.values() if reason)

        # Then each bad one is counted under its reason, and the process neither died nor
        # reconnected
        def counted() -> bool:
            now = ingester_metrics(port)
            return all(
                now.get(f"hyperwatch_ingest_malformed_frames_total{{reason={r}}}", 0)
                - before.get(f"hyperwatch_ingest_malformed_frames_total{{reason={r}}}", 0)
                >= n
                for r, n in expected.items()
            )

        wait_until(counted, 30, what="the oversize frames counted")
        after = ingester_metrics(port)
        for reason, n in expected.items():
            key = f"hyperwatch_ingest_malformed_frames_total{{reason={reason}}}"
            assert after[key] - before.get(key, 0) == n, reason
        assert ingester.process.poll() is None
        reconnects = {
            k: v for k, v in after.items() if k.startswith("hyperwatch_ingest_reconnects")
        }
        assert reconnects == {k: v for k, v in before.items() if k in reconnects}
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200

        # And the oversize valid frame was ingested whole, and ordinary trades keep flowing
        valid_tids = {t["tid"] for t in orjson.loads(frames["valid trades"][0])["data"]}
        published_before = len(read_queues(redis_url).trade_keys())

        def ingested() -> bool:
            keys = read_queues(redis_url).trade_keys()
            tids = {tid for (_coin, _time, tid) in keys}
            return valid_tids <= tids and len(keys) > published_before

        wait_until(ingested, 30, interval=0.5, what="the big valid frame and fresh trades")

        # And the log holds short samples of the garbage, not megabytes of it
        assert (tmp_path / "ingester.log").stat().st_size < 200_000
    finally:
        assert ingester.stop() == 0, ingester.log()[-4000:]
