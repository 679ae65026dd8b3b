"""``hyperwatch gaps`` against real PostgreSQL: the ledger and the gaps behind it."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal as D

import orjson
import pytest
from click.testing import CliRunner, Result

from events import Trade
from models.db import Database
from models.repositories import GapRepository, TradeRepository
from workers.cli import cli
from workers.commands.gaps import parse_since

pytestmark = pytest.mark.integration
HOUR = 3_600_000


@pytest.fixture()
def run(postgres_url: str, pg_database: Database) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, ["gaps", *args], env={"DATABASE_URL": postgres_url})

    return invoke


def seed(db: Database) -> int:
    now = int(time.time() * 1000)
    hour = now - now % HOUR
    with db.session() as s:
        TradeRepository(s).add_batch(
            [Trade("ETH", hour + 5, 1, D("1.5"), D("2"), "B", "0x" + "00" * 32)], fold_bars=True
        )
        TradeRepository(s).add_batch(
            [Trade("BTC", hour + 5, 2, D("9.5"), D("1"), "A", "0x" + "00" * 32)], fold_bars=True
        )
        GapRepository(s).record(
            [
                {
                    "id": "a",
                    "source": "i",
                    "stream": "trades",
                    "key": "ETH",
                    "from_ms": hour + 10,
                    "ended_by": "shutdown",
                },
                {
                    "id": "b",
                    "source": "i",
                    "stream": "trades",
                    "key": "BTC",
                    "from_ms": hour + 10,
                    "to_ms": hour + 20,
                    "ended_by": "closed",
                },
            ]
        )
        GapRepository(s).settle("b", "healed", "rest", 1)
        s.commit()
    return hour


def test_given_gaps_when_listed_as_json_then_ledger_and_gaps(run, pg_database) -> None:
    hour = seed(pg_database)
    result = run("--json")
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    ledger = {(r["coin"], r["status"], r["trades"]) for r in doc["ledger"]}
    assert ledger == {("ETH", "open", 1), ("BTC", "healed", 1)}
    assert {(g["key"], g["status"], g["ended_by"]) for g in doc["gaps"]} == {
        ("ETH", "open", "shutdown"),
        ("BTC", "healed", "closed"),
    }
    assert all(
        r["hour"].startswith(time.strftime("%Y-%m-%dT%H", time.gmtime(hour / 1000)))
        for r in doc["ledger"]
    )


def test_given_open_filter_and_coin_when_listed_then_only_those(run, pg_database) -> None:
    seed(pg_database)
    result = run("--open", "--json")
    doc = orjson.loads(result.output)
    assert [g["key"] for g in doc["gaps"]] == ["ETH"] and [r["coin"] for r in doc["ledger"]] == [
        "ETH"
    ]
    table = run("--coin", "BTC").output
    assert "BTC" in table and "healed" in table and "ETH" not in table


def test_given_a_bad_since_when_listed_then_one_line_and_exit_2(run) -> None:
    result = run("--since", "yesterday")
    assert result.exit_code == 2 and "--since takes" in result.output


def test_relative_and_iso_since() -> None:
    assert parse_since("90m", 10_000_000) == 10_000_000 - 5_400_000
    assert parse_since("2026-01-01T00:00", 0) == 1_767_225_600_000
