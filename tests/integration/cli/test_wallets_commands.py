"""``hyperwatch wallets track --file`` and ``wallets list`` against real PostgreSQL and Redis:
bulk tracking is all or nothing (every bad line named, exit 2, nothing written), and the
listing says how each wallet is followed, when it was last polled and last active."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from decimal import Decimal as Dec
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from events import Fill
from models.db import Database
from models.repositories import FillRepository
from models.tracked_wallet import TrackedWallet
from tasks.maintenance.poll_schedule import WalletState
from workers.cli import cli
from workers.commands.wallets import read_addresses

pytestmark = pytest.mark.integration

A, B, C, D = (f"0x{c * 40}" for c in "abcd")
W = [f"0x{i:040x}" for i in range(1, 8)]
POLLED_MS = 1_787_052_600_000  # 2026-08-18 13:30:00Z


@pytest.fixture()
def run(
    postgres_url: str, pg_database: Database, redis_url: str
) -> Iterator[Callable[..., Result]]:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "TIER_FREE_MAX_WALLETS": "5",
        "TRACKED_WALLETS": f"{A},{B}",
        "WS_USER_LIMIT": "1",
    }

    def invoke(*args: str, stdin: str | None = None, **overrides: str) -> Result:
        return CliRunner().invoke(
            cli, list(args), env={**env, **overrides}, input=stdin, catch_exceptions=False
        )

    assert invoke("users", "add", "ann@example.com").exit_code == 0
    yield invoke


def tracked(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(TrackedWallet)) or 0)


def test_reading_a_file_skips_blanks_and_comments_and_names_what_is_wrong() -> None:
    good, bad = read_addresses(
        [
            "# wallets to watch",
            "",
            f"  {W[0].upper().replace('0X', '0x')}  # the desk",
            W[1],
            "0x12345",
            "ab" * 21,
            "0x" + "g" * 40,
            f"{W[2]} {W[3]}",
        ]
    )
    assert good == [W[0], W[1]]
    assert [(b.number, b.reason) for b in bad] == [
        (5, "5 characters after 0x, an address has 40 hex digits"),
        (6, "an address starts with 0x"),
        (7, "not hexadecimal (0-9, a-f after 0x)"),
        (8, "one address per line (found spaces)"),
    ]


def test_given_a_file_with_bad_lines_when_tracked_then_each_is_named_and_nothing_written(
    run: Callable[..., Result], pg_database: Database, tmp_path: Path
) -> None:
    # Given a file of three good addresses and two bad lines
    path = tmp_path / "wallets.txt"
    path.write_text(f"# desk\n{W[0]}\n\n{W[1]}\n0xnothex\n{W[2]}\n{W[3][:-1]}\n")
    # When it is tracked
    result = run("wallets", "track", "--user", "ann@example.com", "--file", str(path))
    # Then each bad line is named with its number, then one summary line; exit 2
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"hyperwatch: {path} line 5: '0xnothex': 6 characters after 0x, an address has 40 hex digits",
        f"hyperwatch: {path} line 7: '{W[3][:-1]}': 39 characters after 0x, an address has 40 hex "
        "digits",
        f"hyperwatch: 2 bad line(s) in {path}; nothing tracked",
    ]
    # And not even the good addresses were written
    assert tracked(pg_database) == 0

    # When the file is fixed, it tracks all, and running it again is a no-op
    path.write_text(f"# desk\n{W[0]}\n\n{W[1]}\n{W[1].upper().replace('0X', '0x')}\n{W[2]}\n")
    first = run("wallets", "track", "--user", "ann@example.com", "--file", str(path))
    assert first.exit_code == 0, first.output
    assert first.output == "ann@example.com now tracks 3 new wallet(s); 0 already tracked\n"
    again = run("wallets", "track", "--user", "ann@example.com", "--file", str(path))
    assert again.output == "ann@example.com now tracks 0 new wallet(s); 3 already tracked\n"
    assert tracked(pg_database) == 3


def test_given_stdin_and_a_quota_when_tracked_then_over_the_quota_nothing_is_written(
    run: Callable[..., Result], pg_database: Database
) -> None:
    # Given 2 wallets tracked already (the free tier allows 5 here)
    lines = "\n".join(W[:2]) + "\n"
    assert (
        run("wallets", "track", "--user", "ann@example.com", "--file", "-", stdin=lines).exit_code
        == 0
    )
    # When 4 more come on stdin
    result = run(
        "wallets", "track", "--user", "ann@example.com", "--file", "-", stdin="\n".join(W[2:6])
    )
    # Then the quota refuses them all: one line, exit 2, still 2 tracked
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "hyperwatch: ann@example.com (free tier) already tracks 2 wallet(s); 4 more would pass "
        "the 5 the tier allows; untrack some, track fewer, or raise the tier"
    )
    assert tracked(pg_database) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--file", "/nonexistent/w.txt"), "--file: cannot read /nonexistent/w.txt: No such file"),
        ((A, "--file", "-"), "give one ADDRESS or --file PATH"),
        ((), "give one ADDRESS or --file PATH"),
    ],
)
def test_given_no_usable_input_when_tracking_then_one_line_and_exit_2(
    run: Callable[..., Result], pg_database: Database, args: tuple[str, ...], message: str
) -> None:
    result = run("wallets", "track", "--user", "ann@example.com", *args)
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(f"hyperwatch: {message}")
    assert tracked(pg_database) == 0


def test_an_empty_file_tracks_nothing_and_says_so(run: Callable[..., Result]) -> None:
    result = run("wallets", "track", "--user", "ann@example.com", "--file", "-", stdin="# no\n\n")
    assert (
        result.exit_code == 2
        and result.stderr == "hyperwatch: no address in stdin; nothing tracked\n"
    )


def rows(output: str) -> dict[str, list[str]]:
    """ADDRESS → the other columns, split on runs of two spaces or more."""
    lines = output.splitlines()
    out = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        out[cells[2]] = cells
    return out


def test_the_listing_says_how_each_wallet_is_followed_polled_and_last_active(
    run: Callable[..., Result], pg_database: Database, redis_url: str
) -> None:
    # Given A on WebSocket, B configured beyond WS_USER_LIMIT, C and D tracked by Ann
    assert run("wallets", "track", "--user", "ann@example.com", C, "--label", "desk").exit_code == 0
    assert run("wallets", "track", "--user", "ann@example.com", D).exit_code == 0
    # C was polled (hot) and traded; D was never polled
    cache = redis.Redis.from_url(redis_url)
    cache.hset("hw:poll:wallets", C, WalletState(POLLED_MS, POLLED_MS, "hot").to_json())
    cache.close()
    fill_ms = POLLED_MS - 90_000
    with pg_database.session() as s:
        FillRepository(s).add_batch(
            [Fill(C, "ETH", fill_ms, 1, 2, Dec(1), Dec(1), "B", "Open Long", Dec(0), Dec(0),
                  Dec(0), "USDC", True, "0x" + "0" * 64)]
        )  # fmt: skip
    # When listed
    result = run("wallets", "list")
    assert result.exit_code == 0, result.output
    header, *_ = result.output.splitlines()
    assert header.split() == [
        "ID", "USER", "ADDRESS", "LABEL", "FOLLOWED", "CLASS", "CADENCE", "LAST", "POLL", "LAST",
        "ACTIVITY",
    ]  # fmt: skip
    listed = rows(result.output)
    # Then A is on a socket, B, C and D polled; C's class, cadence, poll and fill times
    assert listed[A][3:] == ["TRACKED_WALLETS", "websocket", "-", "-", "-", "-"]
    assert listed[B][3:] == ["TRACKED_WALLETS", "polled", "-", "-", "-", "-"]
    polled = dt.datetime.fromtimestamp(POLLED_MS / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    active = dt.datetime.fromtimestamp(fill_ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    assert listed[C][3:] == ["desk", "polled", "hot", "10s", polled, active]
    assert listed[D][3:] == ["-", "polled", "-", "-", "-", "-"]
    # And --user lists only Ann's, without the configured ones
    assert set(rows(run("wallets", "list", "--user", "ann@example.com").output)) == {C, D}


def test_given_redis_down_when_listed_then_the_poll_columns_are_unknown_not_empty(
    run: Callable[..., Result],
) -> None:
    assert run("wallets", "track", "--user", "ann@example.com", C).exit_code == 0
    result = run("wallets", "list", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.exit_code == 0
    assert "poll columns unknown" in result.stderr and len(result.stderr.splitlines()) == 1
    assert rows(result.output)[C][4:8] == ["polled", "?", "?", "?"]
