"""``hyperwatch users|channels|alerts|wallets|notifications`` against real PostgreSQL and
Redis: what they write, what they print (never a secret), and bad input → one line on
stderr, exit 2, nothing written."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result
from sqlalchemy import func, select, text

from domain.alerts.book import VERSION_KEY
from models.alert import Alert
from models.db import Database
from models.notification_channel import NotificationChannel
from models.repositories import NotificationRepository
from models.tracked_wallet import TrackedWallet
from models.user import User
from workers.cli import cli

pytestmark = pytest.mark.integration

WALLET = "0x" + "ab" * 20


@pytest.fixture()
def run(
    postgres_url: str, pg_database: Database, redis_url: str
) -> Iterator[Callable[..., Result]]:
    """Invoke ``hyperwatch …`` in-process with settings from the environment, as a
    deployed process reads them; BTC and ETH are coins the ingester has seen."""
    client = redis.Redis.from_url(redis_url)
    client.hset(
        "hw:latest:mid", mapping={"BTC": '{"px":"1","time":1}', "ETH": '{"px":"1","time":1}'}
    )
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8",
        "TIER_FREE_MAX_ALERTS": "2",
        "TIER_FREE_MAX_WALLETS": "1",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    yield invoke
    client.close()


def counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {
            model.__tablename__: int(s.scalar(select(func.count()).select_from(model)) or 0)
            for model in (User, NotificationChannel, Alert, TrackedWallet)
        }


def version(redis_url: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return int(client.get(VERSION_KEY) or 0)
    finally:
        client.close()


def refused(result: Result, fragment: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
    assert fragment in lines[0], lines[0]


@pytest.fixture()
def seeded(run: Callable[..., Result]) -> dict[str, Any]:
    """A free user with a webhook channel (loopback is allowlisted)."""
    assert run("users", "add", "Ann@Example.com").exit_code == 0
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "webhook",
                "--target", "http://127.0.0.1:9/hook")  # fmt: skip
    assert added.exit_code == 0, added.output
    secret = added.output.splitlines()[1].rsplit(" ", 1)[1]
    return {"channel": added.output.split()[1], "secret": secret}


def test_users_add_list_and_set_tier(run: Callable[..., Result], pg_database: Database) -> None:
    # Given a user added; When listed and moved to pro
    assert run("users", "add", "bob@example.com", "--tier", "free").output.startswith("user ")
    assert run("users", "set-tier", "bob@example.com", "pro").exit_code == 0
    listing = run("users", "list").output

    # Then the listing shows the pro quotas; a second add of the same email is refused
    assert "bob@example.com" in listing and "pro" in listing and "0/100" in listing
    refused(run("users", "add", "BOB@example.com"), "already exists")
    refused(run("users", "add", "not-an-email"), "is not an email address")
    refused(run("users", "set-tier", "nobody@example.com", "pro"), "unknown user")
    assert counts(pg_database)["users"] == 1


def test_channels_show_the_generated_secret_once_and_never_in_listings(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database
) -> None:
    # Given a webhook channel added without a secret (one was generated and shown once)
    assert len(seeded["secret"]) >= 40

    # and a Slack webhook, whose URL is a credential itself
    slack = run("channels", "add", "--user", "ann@example.com", "--kind", "slack",
                "--target", "http://127.0.0.1:9/services/T0/B0/slack-token")  # fmt: skip
    assert slack.exit_code == 0 and "slack-token" not in slack.output

    # When channels are listed
    listing = run("channels", "list", "--user", "ann@example.com").output

    # Then the secret is not there, only that one is set; the Slack URL shows its host only
    assert seeded["secret"] not in listing and " set " in listing
    assert "slack-token" not in listing and "http://127.0.0.1:9/***" in listing
    with pg_database.session() as s:
        stored = s.scalars(
            select(NotificationChannel).where(NotificationChannel.kind == "webhook")
        ).one()
    assert stored.secret == seeded["secret"]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--kind", "webhook", "--target", "http://10.1.2.3/hook"), "private address 10.1.2.3"),
        (("--kind", "webhook", "--target", "http://169.254.169.254/latest"), "link-local"),
        (("--kind", "slack", "--target", "not a url"), "cannot be used"),
        (("--kind", "discord", "--target", "ftp://127.0.0.1/x"), "only http and https"),
        (("--kind", "slack",), "needs its URL"),
        (("--kind", "telegram", "--target", "12345"), "needs a secret"),
        (("--kind", "telegram", "--target", "chat", "--secret", "t"), "chat id"),
    ],
)  # fmt: skip
def test_bad_channels_are_refused_with_one_line_and_nothing_written(
    run: Callable[..., Result],
    seeded: dict[str, Any],
    pg_database: Database,
    args: tuple[str, ...],
    fragment: str,
) -> None:
    before = counts(pg_database)
    refused(run("channels", "add", "--user", "ann@example.com", *args), fragment)
    assert counts(pg_database) == before


def test_alert_writes_are_stored_and_announced_to_workers(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database, redis_url: str
) -> None:
    # Given a user with a channel; When an alert is added, paused, resumed and removed
    v0 = version(redis_url)
    added = run("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--kind",
                "price_above", "--threshold", "117000.5", "--channel", seeded["channel"],
                "--mode", "recurring", "--cooldown", "5m", "--expires", "+1d")  # fmt: skip
    assert added.exit_code == 0, added.output
    alert_id = added.output.split()[1]
    with pg_database.session() as s:
        alert = s.get(Alert, int(alert_id))
        assert alert is not None
        assert (str(alert.threshold), alert.mode, alert.cooldown_s) == (
            "117000.5",
            "recurring",
            300,
        )
    assert version(redis_url) == v0 + 1
    assert run("alerts", "pause", alert_id).output.strip() == f"alert {alert_id} paused"
    assert "BTC" not in run("alerts", "list").output
    assert "inactive" in run("alerts", "list", "--all").output
    assert run("alerts", "resume", alert_id).output.strip() == f"alert {alert_id} resumed"
    assert run("alerts", "rm", alert_id).exit_code == 0

    # Then every write moved the version workers watch, and the alert is gone
    assert version(redis_url) == v0 + 4
    assert counts(pg_database)["alerts"] == 0
    refused(run("alerts", "pause", alert_id), f"alert {alert_id} does not exist")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--coin", "NOPE", "--kind", "price_above", "--threshold", "1"), "unknown coin 'NOPE'"),
        (("--coin", "BTC", "--kind", "price_above", "--threshold", "-5"), "above zero"),
        (("--coin", "BTC", "--kind", "price_above", "--threshold", "abc"), "decimal number"),
        (("--coin", "BTC", "--kind", "funding_above", "--threshold", "10"), "cap"),
        (("--coin", "BTC", "--kind", "price_move_pct", "--threshold", "5"), "needs window_s"),
        (("--coin", "BTC", "--kind", "price_above", "--threshold", "1", "--window", "5m"),
         "apply only to"),
        (("--coin", "BTC", "--kind", "liquidation_distance_below", "--threshold", "5",
          "--wallet", WALLET), "does not track wallet"),
        (("--coin", "BTC", "--kind", "price_above", "--threshold", "1", "--expires", "soon"),
         "--expires must be"),
        (("--coin", "BTC", "--kind", "price_above", "--threshold", "1", "--cooldown", "x"),
         "--cooldown must be a duration"),
        (("--coin", "BTC", "--kind", "whale_trade", "--threshold", "2E+12"),
         "above the 1,000,000,000,000 USD limit"),
        (("--coin", "BTC", "--kind", "whale_trade", "--threshold", "250000.125"),
         "at most 2 decimals"),
        (("--coin", "BTC", "--kind", "whale_trade", "--threshold", "0"), "above zero"),
        (("--coin", "BTC", "--kind", "whale_trade", "--threshold", "1000", "--wallet", WALLET),
         "a wallet applies only to"),
        (("--coin", "BTC", "--kind", "wallet_position_change", "--threshold", "1000",
          "--wallet", WALLET), "does not track wallet"),
        (("--coin", "BTC", "--kind", "wallet_liquidated", "--threshold", "1000"),
         "needs the tracked wallet"),
    ],
)  # fmt: skip
def test_bad_alerts_are_refused_with_one_line_and_nothing_written(
    run: Callable[..., Result],
    seeded: dict[str, Any],
    pg_database: Database,
    redis_url: str,
    args: tuple[str, ...],
    fragment: str,
) -> None:
    before, v0 = counts(pg_database), version(redis_url)
    refused(
        run("alerts", "add", "--user", "ann@example.com", "--channel", seeded["channel"], *args),
        fragment,
    )
    assert counts(pg_database) == before
    assert version(redis_url) == v0


def test_unknown_user_or_channel_and_the_alert_quota_are_refused(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database
) -> None:
    base = ("alerts", "add", "--coin", "ETH", "--kind", "price_below", "--threshold", "10")
    refused(run(*base, "--user", "zed@example.com", "--channel", seeded["channel"]), "unknown user")
    refused(
        run(*base, "--user", "ann@example.com", "--channel", "999"), "channel 999 does not exist"
    )
    # Given the free tier allows 2 alerts here; When a third is added
    for _ in range(2):
        assert (
            run(*base, "--user", "ann@example.com", "--channel", seeded["channel"]).exit_code == 0
        )
    before = counts(pg_database)
    refused(
        run(*base, "--user", "ann@example.com", "--channel", seeded["channel"]),
        "ann@example.com (free tier) already has 2 active alert(s) and the tier allows 2",
    )
    # Then nothing was written, and the channel cannot be removed while alerts use it
    assert counts(pg_database) == before
    refused(run("channels", "rm", seeded["channel"]), "is used by active alert(s)")


def test_wallets_track_untrack_list_and_quota(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database
) -> None:
    # Given a wallet tracked (twice: idempotent), a liquidation alert on it
    assert (
        "now tracks"
        in run(
            "wallets", "track", "--user", "ann@example.com", WALLET.upper().replace("0X", "0x")
        ).output
    )
    assert "already tracks" in run("wallets", "track", "--user", "ann@example.com", WALLET).output
    alert = run("alerts", "add", "--user", "ann@example.com", "--coin", "BTC", "--kind",
                "liquidation_distance_below", "--threshold", "5", "--wallet", WALLET,
                "--channel", seeded["channel"])  # fmt: skip
    assert alert.exit_code == 0, alert.output
    assert WALLET in run("wallets", "list").output

    # When a second wallet exceeds the quota, a bad address is given, and the first untracked
    refused(run("wallets", "track", "--user", "ann@example.com", "0x" + "cd" * 20), "tier allows 1")
    refused(
        run("wallets", "track", "--user", "ann@example.com", "0x123"), "is not a wallet address"
    )
    untracked = run("wallets", "untrack", "--user", "ann@example.com", WALLET)

    # Then its liquidation alert was deactivated with it
    assert "deactivated wallet alert(s)" in untracked.output
    with pg_database.engine.connect() as conn:
        assert conn.execute(text("SELECT active FROM alerts")).scalar_one() is False
    assert counts(pg_database)["tracked_wallets"] == 0


def test_notifications_list_filters_by_status_and_shows_the_error(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database
) -> None:
    # Given a sent and a failed notification
    with pg_database.session() as s:
        user_id = s.scalars(select(User.id)).one()
        outbox = NotificationRepository(s)
        for key, status, error in (
            ("a", "sent", None),
            ("b", "failed", "permanent error: HTTP 404"),
        ):
            outbox.enqueue(user_id=user_id, channel_kind="webhook", idempotency_key=key,
                           payload={"message": f"msg {key}"}, status=status, reason=error)  # fmt: skip

    # When listed with --status failed
    listing = run("notifications", "list", "--status", "failed").output

    # Then only the failed one shows, with its error
    assert "msg b" in listing and "permanent error: HTTP 404" in listing
    assert "msg a" not in listing
    refused(run("notifications", "list", "--user", "who@example.com"), "unknown user")


def test_event_alerts_are_added_and_a_wallets_go_with_it(
    run: Callable[..., Result], seeded: dict[str, Any], pg_database: Database
) -> None:
    # Given a tracked wallet; When a whale alert and a position-change alert are added
    assert run("wallets", "track", "--user", "ann@example.com", WALLET).exit_code == 0
    base = ("alerts", "add", "--user", "ann@example.com", "--channel", seeded["channel"])
    whale = run(*base, "--coin", "BTC", "--kind", "whale_trade", "--threshold", "1000000")
    change = run(*base, "--coin", "ETH", "--kind", "wallet_position_change", "--threshold",
                 "250000.50", "--wallet", WALLET, "--direction", "down")  # fmt: skip

    # Then both are stored as given
    assert whale.exit_code == 0 and change.exit_code == 0, (whale.output, change.output)
    assert "whale_trade BTC 1000000" in whale.output
    with pg_database.engine.connect() as conn:
        rows = conn.execute(text("SELECT kind, threshold, wallet, direction FROM alerts")).all()
    assert sorted((k, Decimal(t), w, d) for k, t, w, d in rows) == [
        ("wallet_position_change", Decimal("250000.5"), WALLET, "down"),
        ("whale_trade", Decimal("1000000"), None, None),
    ]

    # When the wallet is untracked, its position-change alert stops with it (the whale
    # alert watches no wallet)
    run("wallets", "untrack", "--user", "ann@example.com", WALLET)
    with pg_database.engine.connect() as conn:
        states: dict[str, bool] = dict(conn.execute(text("SELECT kind, active FROM alerts")).all())
    assert states == {"wallet_position_change": False, "whale_trade": True}
