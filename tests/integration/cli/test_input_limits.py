"""Input limits at the command line, against real PostgreSQL and Redis: every bad value of
``hyperwatch alerts add`` and ``hyperwatch users add`` — an extreme number, a duration or time
out of range, an implausible email — is one line naming the field, exit 2, nothing written;
every accepted value is stored exactly as given (as Decimal). Property-based over generated
extremes (huge and tiny exponents, thousands of digits, NaN and infinity spellings, digits of
other scripts, control characters, overlong strings), and case by case for each duration,
timestamp and email rule."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, text

from domain.alerts.book import VERSION_KEY
from domain.alerts.definition import (
    DEFAULT_REARM_MARGIN,
    MAX_COOLDOWN_S,
    REARM_MARGIN_DECIMALS,
    THRESHOLD_BOUNDS,
    AlertKind,
    has_places,
)
from domain.alerts.manage import MAX_EMAIL_CHARS, MAX_EMAIL_LOCAL_CHARS, MAX_SCHEDULE_AHEAD_MS
from models.alert import Alert
from models.db import Database
from models.user import User
from workers.cli import cli
from workers.commands.alerts import parse_duration

pytestmark = pytest.mark.integration

WALLET = "0x" + "ab" * 20
# Hypothesis runs many examples in one test: the database fixture empties the tables once,
# and each example leaves them as it found them.
PROPERTY = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture()
def run(
    postgres_url: str, pg_database: Database, redis_url: str
) -> Iterator[Callable[..., Result]]:
    """``hyperwatch …`` in-process, settings from the environment; BTC and ETH are known."""
    client = redis.Redis.from_url(redis_url)
    client.hset(
        "hw:latest:mid", mapping={"BTC": '{"px":"1","time":1}', "ETH": '{"px":"1","time":1}'}
    )
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8",
        "TIER_FREE_MAX_ALERTS": "100000",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    yield invoke
    client.close()


@pytest.fixture()
def channel(run: Callable[..., Result]) -> str:
    """A subscriber, ann@example.com, with a webhook channel and a tracked wallet."""
    assert run("users", "add", "ann@example.com").exit_code == 0
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "webhook",
                "--target", "http://127.0.0.1:9/hook")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert run("wallets", "track", "--user", "ann@example.com", WALLET).exit_code == 0
    return added.output.split()[1]


def state(db: Database, redis_url: str) -> tuple[int, int, int]:
    """(users, alerts, announced version): what a refused command must leave unchanged."""
    with db.session() as s:
        users = int(s.scalar(select(func.count()).select_from(User)) or 0)
        alerts = int(s.scalar(select(func.count()).select_from(Alert)) or 0)
    client = redis.Redis.from_url(redis_url)
    try:
        return users, alerts, int(client.get(VERSION_KEY) or 0)
    finally:
        client.close()


def refused_in_one_line(result: Result, fragment: str = "") -> str:
    assert result.exit_code == 2, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
    assert fragment in lines[0], lines[0]
    return lines[0]


# --- generated extremes --------------------------------------------------------------------

SPELLINGS = [
    "NaN", "nan", "-nan", "sNaN", "inf", "-inf", "Infinity", "-Infinity", "1e309",
    "1E+999999999", "1e-999999999", "1e99999999999999999999", "0x10", "1_000", "1,5", "",
    " ", ".", "-", "+", "e5", "1e", "--5", "0", "-0", "0.0", "1.", ".5", "+7", "5 ",
    # Arabic-Indic 123, fullwidth 123, Arabic-Indic 3.5, superscript 2, N'Ko 1
    "\u0661\u0662\u0663", "\uff11\uff12\uff13", "\u0663.\u0665", "\u00b2", "\u07c1",
]  # fmt: skip
CONTROL = st.text(st.characters(categories=["Cc", "Cf", "Zl", "Zp"]), min_size=1, max_size=3)
DIGITS = st.text("0123456789", min_size=1, max_size=20)


def number_texts() -> st.SearchStrategy[str]:
    """Decimal-looking text: ordinary values (often within bounds), extremes, and junk."""
    plain = st.builds(
        lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
        st.integers(-(10**13), 10**13),
        st.text("0123456789", max_size=12),
    )
    return st.one_of(
        plain,
        plain,
        st.builds("{}e{}".format, st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6)),
        st.builds("{}E{}".format, st.integers(1, 99), st.integers(-12, 12)),
        st.text("0123456789", min_size=30, max_size=5000),
        st.builds("0.{}1".format, st.text("0", min_size=5, max_size=3000)),
        st.builds("1.{}".format, st.text("0", min_size=5, max_size=3000)),
        st.sampled_from(SPELLINGS),
        st.builds("{}{}{}".format, DIGITS, CONTROL, DIGITS),
        st.text(max_size=30),
    )


def duration_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{}{}".format, st.integers(0, 10**12), st.sampled_from(["", "s", "m", "h", "d"])),
        st.builds("{}{}".format, st.integers(0, 40), st.sampled_from(["s", "m", "h", "d", "w"])),
        st.text("0123456789", min_size=10, max_size=5000),
        st.sampled_from(SPELLINGS),
        st.builds("{}{}".format, DIGITS, CONTROL),
        st.text(max_size=20),
    )


def time_texts() -> st.SearchStrategy[str]:
    moments = st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.timezones(),
    )
    return st.one_of(
        st.builds("+{}".format, duration_texts()),
        st.builds("+{}{}".format, st.integers(1, 3000), st.sampled_from(["m", "h", "d"])),
        st.integers(-(10**16), 10**16).map(str),
        st.builds(lambda d: d.isoformat(), moments),
        st.builds(lambda d: d.strftime("%Y-%m-%dT%H:%M:%SZ"), moments),
        st.sampled_from(["0", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00+01:00", "now"]),
        st.text(max_size=30),
        st.builds("2027-01-01T00:00:00Z{}".format, CONTROL),
    )


def valid_threshold(kind: AlertKind) -> st.SearchStrategy[str]:
    """A threshold the kind accepts, written plainly, in E notation or with trailing zeros."""
    bounds = THRESHOLD_BOUNDS[kind]
    step = Decimal(1).scaleb(-bounds.decimals)
    low = bounds.low if bounds.inclusive else bounds.low + step
    if kind is AlertKind.WHALE_TRADE:
        low = Decimal(1000)
    value = st.decimals(min_value=low, max_value=bounds.high, places=bounds.decimals)
    return st.one_of(
        value.map(str),
        value.map("{:E}".format),
        st.builds(lambda v, zeros: f"{v:f}{'' if '.' in f'{v:f}' else '.'}{zeros}", value,
                  st.text("0", max_size=20)),
    )  # fmt: skip


def valid_time() -> st.SearchStrategy[str]:
    ahead_s = st.integers(60, 5 * 365 * 86_400)
    return st.one_of(
        st.builds("+{}m".format, st.integers(1, 5 * 365 * 1440)),
        ahead_s.map(lambda s: str(int(time.time() * 1000) + s * 1000)),
        ahead_s.map(lambda s: (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=s)).isoformat()),
    )


KIND_OPTIONS: dict[str, list[tuple[str, st.SearchStrategy[str]]]] = {
    "price_move_pct": [("--window", st.integers(1, 86_400).map(str))],
    "oi_change_pct": [("--window", st.integers(1, 1440).map("{}m".format))],
    "liquidation_distance_below": [("--wallet", st.just(WALLET))],
    "wallet_position_change": [("--wallet", st.just(WALLET))],
    "wallet_liquidated": [("--wallet", st.just(WALLET))],
    "stale_data": [("--stream", st.sampled_from(["mids", "asset_contexts"]))],
}
COMMON_OPTIONS: list[tuple[str, st.SearchStrategy[str]]] = [
    ("--mode", st.sampled_from(["once", "recurring"])),
    ("--cooldown", st.integers(0, MAX_COOLDOWN_S).map(str)),
    ("--rearm-margin", st.decimals(0, Decimal("0.999999"), places=6).map(str)),
    ("--snooze-until", valid_time()),
    ("--expires", valid_time()),
]
# What an input may be spoiled with, per option.
EXTREMES: dict[str, st.SearchStrategy[str]] = {
    "--coin": st.text(max_size=50),
    "--threshold": number_texts(),
    "--window": duration_texts(),
    "--cooldown": duration_texts(),
    "--rearm-margin": number_texts(),
    "--snooze-until": time_texts(),
    "--expires": time_texts(),
}


@st.composite
def alert_inputs(draw: st.DrawFn) -> dict[str, str]:
    """A valid alert of any kind, then (mostly) one or two of its inputs spoiled."""
    kind = draw(st.sampled_from(list(AlertKind)))
    given: dict[str, str] = {
        "--kind": kind.value,
        "--coin": draw(st.sampled_from(["BTC", "ETH"])),
        "--threshold": draw(valid_threshold(kind)),
    }
    for option, values in KIND_OPTIONS.get(kind.value, []):
        given[option] = draw(values)
    for option, values in COMMON_OPTIONS:
        if draw(st.booleans()):
            given[option] = draw(values)
    for option in draw(st.lists(st.sampled_from(sorted(EXTREMES)), max_size=2, unique=True)):
        given[option] = draw(EXTREMES[option])
    return given


def stored_alerts(db: Database) -> list[Any]:
    with db.engine.connect() as conn:
        return list(conn.execute(select(Alert.__table__)).all())


def forget_alerts(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM alerts"))


def check_stored_alert(row: Any, given: dict[str, str], before_ms: int, after_ms: int) -> None:
    """An accepted alert holds exactly what was given, within every bound."""
    kind = AlertKind(given["--kind"])
    threshold = Decimal(given["--threshold"].strip())
    assert row.threshold == threshold, (row.threshold, given["--threshold"])
    bounds = THRESHOLD_BOUNDS[kind]
    assert bounds.low <= threshold if bounds.inclusive else bounds.low < threshold, given
    assert threshold <= bounds.high and has_places(threshold, bounds.decimals), given
    margin = given.get("--rearm-margin")
    expected_margin = DEFAULT_REARM_MARGIN if margin is None else Decimal(margin.strip())
    assert row.rearm_margin == expected_margin, (row.rearm_margin, margin)
    assert 0 <= row.rearm_margin < 1 and has_places(row.rearm_margin, REARM_MARGIN_DECIMALS)
    cooldown = given.get("--cooldown")
    assert row.cooldown_s == (0 if cooldown is None else parse_duration(cooldown, "--cooldown"))
    assert 0 <= row.cooldown_s <= MAX_COOLDOWN_S
    for option, column in (("--snooze-until", "snooze_until"), ("--expires", "expires_at")):
        value, at = given.get(option), getattr(row, column)
        if value is None:
            assert at is None
            continue
        assert before_ms < at <= after_ms + MAX_SCHEDULE_AHEAD_MS, (option, value, at)
        if re.fullmatch(r"[0-9]+", value.strip()):
            assert at == int(value.strip())


@PROPERTY
@given(given=alert_inputs())
def test_property_alerts_add_stores_exactly_what_was_given_or_refuses_in_one_line(
    run: Callable[..., Result],
    channel: str,
    pg_database: Database,
    redis_url: str,
    given: dict[str, str],
) -> None:
    before = state(pg_database, redis_url)
    args = [f"{option}={value}" for option, value in given.items()]
    before_ms = int(time.time() * 1000)

    result = run("alerts", "add", "--user", "ann@example.com", f"--channel={channel}", *args)

    after_ms = int(time.time() * 1000)
    if result.exit_code == 0:
        rows = stored_alerts(pg_database)
        assert len(rows) == 1, rows
        check_stored_alert(rows[0], given, before_ms, after_ms)
        assert state(pg_database, redis_url)[2] == before[2] + 1  # announced
        forget_alerts(pg_database)
    else:
        refused_in_one_line(result)
        assert state(pg_database, redis_url) == before


def email_texts() -> st.SearchStrategy[str]:
    local = st.one_of(
        st.text("abcdefghijklmnopqrstuvwxyzABC0123456789._+-", min_size=1, max_size=80),
        st.text(st.characters(codec="utf-8", exclude_characters="@"), min_size=1, max_size=70),
        st.text("x", min_size=60, max_size=400),
    )
    domain = st.one_of(
        st.sampled_from(["example.com", "mail.example.org", "localhost", "example.", ".com"]),
        st.builds("{}.com".format, st.text("abc-", min_size=1, max_size=300)),
        st.text(max_size=30),
    )
    plain = st.builds("{}@{}".format, local, domain)
    return st.one_of(
        plain,
        plain,
        st.builds("{}{}".format, plain, CONTROL),
        st.builds("{}{}{}".format, local, CONTROL, st.just("@example.com")),
        st.builds(" {} ".format, plain),
        st.text(max_size=40),
        st.sampled_from(["@", "a@b@c.com", "ann@example.com\r\nBcc: eve@example.com", "a @b.co"]),
    )


@PROPERTY
@given(email=email_texts())
def test_property_users_add_stores_the_address_or_refuses_in_one_line(
    run: Callable[..., Result], pg_database: Database, redis_url: str, email: str
) -> None:
    before = state(pg_database, redis_url)

    result = run("users", "add", "--", email)  # "--": an address may begin with "-"

    if result.exit_code == 0:
        with pg_database.session() as s:
            stored = s.scalars(select(User.email)).all()
        assert stored == [email.strip().lower()]
        address = stored[0]
        local = address.rpartition("@")[0]
        assert len(address) <= MAX_EMAIL_CHARS and len(local) <= MAX_EMAIL_LOCAL_CHARS
        assert address.isprintable() and email.isprintable()
        with pg_database.engine.begin() as conn:
            conn.execute(text("DELETE FROM users"))
    else:
        refused_in_one_line(result, "email")
        assert state(pg_database, redis_url) == before


# --- each duration, timestamp and email rule ------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--cooldown", "31d"), "cooldown_s must be whole seconds from 0 to 2592000"),
        (("--cooldown", "2592001"), "cooldown_s must be whole seconds from 0 to 2592000"),
        (("--cooldown", "9999999999d"), "--cooldown must be a duration"),
        (("--cooldown", "9" * 5000), "--cooldown must be a duration"),
        (("--cooldown", "\u0661\u0662\u0663"), "--cooldown must be a duration"),
        (("--cooldown", "-5"), "--cooldown must be a duration"),
        (("--cooldown", "5\x1bm"), "--cooldown must be a duration"),
        (("--expires", "0"), "expires_at 1970-01-01T00:00:00Z is not in the future"),
        (("--expires", "1970-01-01T00:00:00Z"), "expires_at 1970-01-01T00:00:00Z is not in"),
        (("--expires", "+3000d"), "expires_at"),
        (("--expires", "9999-12-31T23:59:59Z"), "expires_at 9999-12-31T23:59:59Z is more than 5 years ahead"),
        (("--expires", "999999999999999"), "expires_at must be a time in whole milliseconds"),
        (("--expires", "99999999999999999999"), "--expires must be ISO 8601"),
        (("--expires", "0001-01-01T00:00:00+01:00"), "expires_at must be a time in whole milliseconds"),
        (("--expires", "+9999999999d"), "--expires must be a duration"),
        (("--expires", "2027-01-01T00:00\r\n:00Z"), "--expires must be ISO 8601"),
        (("--expires", "1960-01-01T00:00:00Z"), "expires_at must be a time in whole milliseconds"),
        (("--snooze-until", "0"), "snooze_until 1970-01-01T00:00:00Z is not in the future"),
        (("--snooze-until", "+2000d"), "snooze_until"),
        (("--snooze-until", "\uff11\uff12\uff13"), "--snooze-until must be ISO 8601"),
        (("--snooze-until", "+1y"), "--snooze-until must be a duration"),
    ],
)  # fmt: skip
def test_an_out_of_range_duration_or_time_is_one_line_naming_the_field(
    run: Callable[..., Result],
    channel: str,
    pg_database: Database,
    redis_url: str,
    args: tuple[str, ...],
    fragment: str,
) -> None:
    before = state(pg_database, redis_url)
    option, value = args

    result = run("alerts", "add", "--user", "ann@example.com", "--channel", channel, "--coin",
                 "BTC", "--kind", "price_above", "--threshold", "100", "--mode", "recurring",
                 f"{option}={value}")  # fmt: skip

    refused_in_one_line(result, fragment)
    assert state(pg_database, redis_url) == before


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--window", "0"), "window_s must be whole seconds from 1 to 86400"),
        (("--window", "2d"), "window_s must be whole seconds from 1 to 86400"),
        (("--window", "9" * 400), "--window must be a duration"),
    ],
)
def test_an_out_of_range_window_is_one_line_naming_the_field(
    run: Callable[..., Result],
    channel: str,
    pg_database: Database,
    redis_url: str,
    args: tuple[str, ...],
    fragment: str,
) -> None:
    before = state(pg_database, redis_url)

    result = run("alerts", "add", "--user", "ann@example.com", "--channel", channel, "--coin",
                 "BTC", "--kind", "price_move_pct", "--threshold", "5", "=".join(args))  # fmt: skip

    refused_in_one_line(result, fragment)
    assert state(pg_database, redis_url) == before


@pytest.mark.parametrize(
    ("kind", "threshold", "fragment"),
    [
        ("price_above", "1E+999999", "price_above threshold 1E+999999 is above the limit"),
        ("price_above", "1000000000.01", "is above the limit of 1,000,000,000"),
        ("price_below", "1e-999999", "takes at most 8 decimals"),
        ("price_below", "0.000000001", "takes at most 8 decimals"),
        ("price_above", "1" * 5000, "at most 64 characters"),
        ("price_above", "0." + "0" * 3000 + "1", "at most 64 characters"),
        (
            "price_above",
            "\uff11\uff12\uff13",
            "threshold must be a decimal number (a finite decimal in ASCII",
        ),
        ("price_above", "Infinity", "threshold must be a decimal number (a finite decimal"),
        ("price_above", "1_000", "threshold must be a decimal number (a finite decimal"),
        ("price_move_pct", "10000.5", "above the limit of 10,000 (percent)"),
        ("funding_above", "0.00000000001", "takes at most 10 decimals"),
        ("stale_data", "2592000.5", "above the limit of 2,592,000 (seconds)"),
        ("whale_trade", "1e999999999", "above the 1,000,000,000,000 USD limit"),
    ],
)
def test_an_extreme_threshold_is_one_line_naming_the_field(
    run: Callable[..., Result],
    channel: str,
    pg_database: Database,
    redis_url: str,
    kind: str,
    threshold: str,
    fragment: str,
) -> None:
    before = state(pg_database, redis_url)
    extra = {"price_move_pct": ["--window=5m"], "stale_data": ["--stream=mids"]}.get(kind, [])

    result = run("alerts", "add", "--user", "ann@example.com", "--channel", channel, "--coin",
                 "BTC", "--kind", kind, f"--threshold={threshold}", *extra)  # fmt: skip

    refused_in_one_line(result, fragment)
    assert state(pg_database, redis_url) == before


def test_the_extreme_accepted_values_are_stored_exactly(
    run: Callable[..., Result], channel: str, pg_database: Database
) -> None:
    # Given the largest and finest values each bound accepts, written in several ways
    base = ("alerts", "add", "--user", "ann@example.com", "--channel", channel, "--coin", "BTC")
    cases = [
        ("price_above", "1E+9", ["--mode=recurring", "--rearm-margin=0.999999", "--cooldown=30d"]),
        ("price_below", "0.00000001", ["--rearm-margin=0E-20", "--expires=+1826d"]),
        ("price_above", "1.000000000000000000000000000000", ["--snooze-until=+1m"]),
        ("funding_below", "-0.0400000000", []),
        ("whale_trade", "1000000000000.00", []),
    ]
    for kind, threshold, extra in cases:
        # When each is added
        added = run(*base, "--kind", kind, f"--threshold={threshold}", *extra)
        assert added.exit_code == 0, (threshold, added.output)

    # Then each is stored equal to what was given, in a short canonical form
    rows = sorted(stored_alerts(pg_database), key=lambda r: r.id)
    assert [r.threshold for r in rows] == [Decimal(t) for _, t, _ in cases]
    assert [str(r.threshold) for r in rows] == [
        "1000000000", "1E-8", "1.00000000", "-0.0400000000", "1000000000000.00",
    ]  # fmt: skip
    assert rows[0].rearm_margin == Decimal("0.999999") and rows[0].cooldown_s == MAX_COOLDOWN_S
    assert rows[1].rearm_margin == 0


@pytest.mark.parametrize(
    ("email", "fragment"),
    [
        ("a" * 400 + "@example.com", "email local part (before the @) is at most 64 characters"),
        ("a" * 65 + "@example.com", "at most 64 characters, got 65"),
        ("ann@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 63 + "." + "e" * 63 + ".com",
         "email is at most 254 characters"),
        ("ann@" + "b" * 64 + ".com", "email domain labels are at most 63 characters"),
        ("ann@example.com\r\nBcc: eve@example.com", "email must not contain control characters"),
        ("ann@example.com\n", "email must not contain control characters"),
        ("ann\r@example.com", "email must not contain control characters"),
        ("ann@exam\x00ple.com", "email must not contain control characters"),
        ("ann@example.com\x1b[2J", "email must not contain control characters"),
        ("ann@example.com\u2028", "email must not contain control characters"),
        ("ann\u200b@example.com", "email must not contain control characters"),
        ("ann@localhost", "its domain needs a dot"),
        ("ann@example..com", "its domain needs a dot"),
        ("a@b@example.com", "is not an email address"),
        ("ann example@example.com", "is not an email address"),
        ("@example.com", "is not an email address"),
    ],
)  # fmt: skip
def test_an_implausible_email_is_one_line_naming_the_field(
    run: Callable[..., Result], pg_database: Database, redis_url: str, email: str, fragment: str
) -> None:
    before = state(pg_database, redis_url)

    refused_in_one_line(run("users", "add", email), fragment)

    assert state(pg_database, redis_url) == before


def test_the_longest_plausible_email_is_stored_lower_cased(
    run: Callable[..., Result], pg_database: Database
) -> None:
    local = "A" * MAX_EMAIL_LOCAL_CHARS
    email = f" {local}@{'b' * 63}.{'c' * 63}.{'d' * 57}.com "  # 254 characters once trimmed
    assert len(email.strip()) == MAX_EMAIL_CHARS

    assert run("users", "add", email).exit_code == 0

    with pg_database.session() as s:
        assert s.scalars(select(User.email)).all() == [email.strip().lower()]


def test_ids_and_user_references_out_of_range_are_one_line(
    run: Callable[..., Result], channel: str, pg_database: Database, redis_url: str
) -> None:
    before = state(pg_database, redis_url)
    add = ("alerts", "add", "--coin", "BTC", "--kind", "price_above", "--threshold", "1")

    refused_in_one_line(
        run(*add, "--user", "ann@example.com", "--channel", "9" * 30), "does not exist"
    )
    refused_in_one_line(
        run(*add, "--user", "ann@exam\x00ple.com", "--channel", channel), "unknown user"
    )
    refused_in_one_line(run(*add, "--user", "\u0661", "--channel", channel), "unknown user")
    refused_in_one_line(run("alerts", "pause", "9" * 30), f"alert {'9' * 30} does not exist")

    assert state(pg_database, redis_url) == before


def test_a_stored_time_beyond_the_bounds_is_listed_not_a_traceback(
    run: Callable[..., Result], channel: str, pg_database: Database
) -> None:
    # Given an alert stored before the bounds existed, expiring in the year 300,000
    assert run("alerts", "add", "--user", "ann@example.com", "--channel", channel, "--coin",
               "BTC", "--kind", "price_above", "--threshold", "1").exit_code == 0  # fmt: skip
    with pg_database.engine.begin() as conn:
        conn.execute(text("UPDATE alerts SET expires_at = 9466848000000000"))

    # When the alerts are listed
    listing = run("alerts", "list", "--all")

    # Then the raw milliseconds are shown
    assert listing.exit_code == 0 and "9466848000000000" in listing.output
