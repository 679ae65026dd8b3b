"""``hyperwatch channels add``: each credential is held to its kind's shape before anything
is written, and a refusal never repeats a credential (a Slack or Discord URL is one)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from models.db import Database
from models.notification_channel import NotificationChannel
from workers.cli import cli

pytestmark = pytest.mark.integration

TOKEN = "7345123987:AAH-k3y_xYz0987654321abcdefGHIJKL"
ADD = ("channels", "add", "--user", "ann@example.com")


@pytest.fixture()
def run(postgres_url: str, pg_database: Database, redis_url: str) -> Callable[..., Result]:
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url, "WEBHOOK_ALLOWLIST": "127.0.0.0/8"}

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("users", "add", "ann@example.com").exit_code == 0
    return invoke


def channels(db: Database) -> list[NotificationChannel]:
    with db.session() as s:
        return list(s.scalars(select(NotificationChannel).order_by(NotificationChannel.id)))


def count(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count()).select_from(NotificationChannel)) or 0)


def refused_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hyperwatch: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "token",
    [
        "123:AAAAAAAAAAAAAAAAAAAA/../../setWebhook",
        "123:AAAAAAAAAAAAAAAAAAAA?url=https://evil.example/x",
        "123:AAAAAAAAAAAAAAAAAAAA%2F..%2Fadmin",
        "123:bot-token",
    ],
)
def test_a_telegram_token_that_is_not_a_bot_token_is_refused_and_not_repeated(
    run: Callable[..., Result], pg_database: Database, token: str
) -> None:
    # When a Telegram channel is added with a token that could name another API path
    line = refused_line(run(*ADD, "--kind", "telegram", "--target", "-100123", "--secret", token))

    # Then one line names the field, without the token, and nothing is written
    assert "telegram bot token must look like" in line and token not in line
    assert count(pg_database) == 0


@pytest.mark.parametrize(
    ("target", "fragment"),
    [
        ("http://10.1.2.3/services/T0/B0/Secr3tSlackPath", "private address 10.1.2.3"),
        ("ftp://hooks.slack.com/services/T0/B0/Secr3tSlackPath", "only http and https"),
        ("http://127.0.0.1:9/services/T0/B0/Secr3tSlackPath\u202e", "printable characters"),
        ("http://[::1/services/T0/B0/Secr3tSlackPath", "malformed"),
    ],
)
@pytest.mark.parametrize("kind", ["slack", "discord"])
def test_a_refused_slack_or_discord_url_is_not_echoed_back(
    run: Callable[..., Result], pg_database: Database, kind: str, target: str, fragment: str
) -> None:
    line = refused_line(run(*ADD, "--kind", kind, "--target", target))
    assert line.startswith(f"hyperwatch: the {kind} URL cannot be used: ") and fragment in line
    assert "Secr3tSlackPath" not in line and "services" not in line
    assert count(pg_database) == 0


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--kind", "webhook", "--target", "http://127.0.0.1:9/h", "--secret", "s3cret"),
         "16 to 256 printable ASCII"),
        (("--kind", "webhook", "--target", "http://127.0.0.1:9/h", "--secret", "0123456789 abcdef"),
         "16 to 256 printable ASCII"),
        (("--kind", "slack", "--target", "http://127.0.0.1:9/s", "--secret", "0123456789abcdef"),
         "takes no secret"),
        (("--kind", "redis", "--secret", "0123456789abcdef"), "takes no secret"),
        (("--kind", "telegram", "--target", "@a/../b", "--secret", TOKEN), "chat id"),
    ],
)  # fmt: skip
def test_a_credential_a_kind_does_not_take_or_of_the_wrong_shape_is_refused(
    run: Callable[..., Result], pg_database: Database, args: tuple[str, ...], fragment: str
) -> None:
    assert fragment in refused_line(run(*ADD, *args))
    assert count(pg_database) == 0


def test_well_formed_credentials_are_stored_exactly_as_given(
    run: Callable[..., Result], pg_database: Database
) -> None:
    # When a Telegram bot, a Slack webhook and a webhook with its own secret are added
    slack = "http://127.0.0.1:9/services/T0/B0/Secr3tSlackPath"
    added = [
        run(*ADD, "--kind", "telegram", "--target", "@hyperwatch_ops", "--secret", TOKEN),
        run(*ADD, "--kind", "slack", "--target", slack),
        run(*ADD, "--kind", "webhook", "--target", "http://127.0.0.1:9/h?k=1", "--secret",
            "whsec-Secr3t-0c9d8e7f"),
    ]  # fmt: skip

    # Then each is stored as given, and the output never shows a credential
    assert [r.exit_code for r in added] == [0, 0, 0], [r.output for r in added]
    stored = [(c.kind, c.target, c.secret) for c in channels(pg_database)]
    assert stored == [
        ("telegram", "@hyperwatch_ops", TOKEN),
        ("slack", slack, None),
        ("webhook", "http://127.0.0.1:9/h?k=1", "whsec-Secr3t-0c9d8e7f"),
    ]
    output = "".join(r.output for r in added)
    assert TOKEN not in output and "Secr3t" not in output


def test_a_refusal_from_inside_the_transaction_shows_the_url_as_listings_do() -> None:
    # The URL checks run again when the row is written (DNS may answer differently then);
    # such a refusal quotes the target, which must be masked like in a listing.
    from domain.alerts.manage import Refused
    from domain.alerts.manage import target_masked as _target_masked

    url = "https://hooks.slack.com/services/T0/B0/Secr3tSlackPath"
    with pytest.raises(Refused) as info, _target_masked("slack", url):
        raise Refused(f"{url!r} cannot be used: its host does not resolve")
    assert (
        str(info.value) == "'https://hooks.slack.com/***' cannot be used: its host does not resolve"
    )
