"""``hyperwatch channels rotate-secret``: a webhook channel's new signing secret, the old one
kept signing for the overlap; what is stored, what is shown, what is refused (exit 2,
nothing written), and the previous secret sealed like the current one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from sqlalchemy import select, text

from models.db import Database
from models.notification_channel import NotificationChannel
from models.secret_box import PREFIX
from settings import load_settings
from workers.cli import cli

pytestmark = pytest.mark.integration

OLD, NEW, NEWER = (f"whsec-{n}-0123456789abcdef" for n in ("old", "new", "newer"))
TOKEN = "7345123987:AAH-k3y_xYz0987654321abcdefGHIJKL"


@pytest.fixture()
def env(postgres_url: str, pg_database: Database, redis_url: str) -> dict[str, str]:
    return {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8",
    }


@pytest.fixture()
def run(env: dict[str, str]) -> Callable[..., Result]:
    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("users", "add", "ann@example.com").exit_code == 0
    return invoke


def add_webhook(run: Callable[..., Result], secret: str = OLD) -> str:
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "webhook",
                "--target", "http://127.0.0.1:9/hook", "--secret", secret)  # fmt: skip
    assert added.exit_code == 0, added.output
    return added.output.split()[1]


def stored(db: Database, channel: str) -> NotificationChannel:
    with db.session() as s:
        found = s.scalars(select(NotificationChannel).where(NotificationChannel.id == int(channel)))
        return found.one()


def test_a_rotation_keeps_the_old_secret_signing_for_the_overlap(
    run: Callable[..., Result], pg_database: Database
) -> None:
    # Given a webhook channel; When its secret is rotated with a two-hour overlap
    channel = add_webhook(run)
    before = dt.datetime.now(dt.UTC)
    rotated = run("channels", "rotate-secret", channel, "--secret", NEW, "--overlap", "2h")
    after = dt.datetime.now(dt.UTC)

    # Then the new secret is current, the old one is kept until two hours from now
    assert rotated.exit_code == 0, rotated.output
    row = stored(pg_database, channel)
    assert (row.secret, row.previous_secret) == (NEW, OLD)
    assert row.previous_secret_until is not None
    window = dt.timedelta(hours=2)
    assert before + window - dt.timedelta(seconds=1) <= row.previous_secret_until <= after + window
    # and the output says until when, without either secret; the listing says so too
    assert f"signs too until {row.previous_secret_until:%Y-%m-%dT%H:%M:%SZ} (2h)" in rotated.output
    assert OLD not in rotated.output and NEW not in rotated.output
    listing = run("channels", "list").output
    assert "set (+previous until" in listing and NEW not in listing and OLD not in listing


def test_a_generated_secret_is_shown_once_and_a_second_rotation_drops_the_oldest(
    run: Callable[..., Result], pg_database: Database
) -> None:
    channel = add_webhook(run)
    assert run("channels", "rotate-secret", channel, "--secret", NEW).exit_code == 0

    # When rotated again inside the window, the new secret generated
    again = run("channels", "rotate-secret", channel)

    # Then the generated secret is printed once and stored; the previous one is NEW
    assert again.exit_code == 0, again.output
    generated = again.output.splitlines()[1].rsplit(" ", 1)[1]
    assert again.output.count(generated) == 1 and len(generated) >= 40
    row = stored(pg_database, channel)
    assert (row.secret, row.previous_secret) == (generated, NEW)


def test_an_overlap_of_zero_ends_the_old_secret_at_once(
    run: Callable[..., Result], pg_database: Database
) -> None:
    channel = add_webhook(run)
    assert (
        run("channels", "rotate-secret", channel, "--secret", NEW, "--overlap", "0").exit_code == 0
    )
    row = stored(pg_database, channel)
    assert (row.secret, row.previous_secret, row.previous_secret_until) == (NEW, None, None)
    assert "set (+previous" not in run("channels", "list").output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--secret", "short"), "16 to 256 printable ASCII"),
        (("--secret", "0123456789 abcdef"), "16 to 256 printable ASCII"),
        (("--secret", OLD), "is the current one"),
        (("--secret", NEW, "--overlap", "31d"), "--overlap is at most 30d"),
        (("--secret", NEW, "--overlap", "soon"), "--overlap must be a duration"),
    ],
)
def test_a_bad_rotation_is_refused_and_changes_nothing(
    run: Callable[..., Result], pg_database: Database, args: tuple[str, ...], fragment: str
) -> None:
    channel = add_webhook(run)
    result = run("channels", "rotate-secret", channel, *args)
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("hyperwatch: ") and fragment in line
    row = stored(pg_database, channel)
    assert (row.secret, row.previous_secret, row.previous_secret_until) == (OLD, None, None)


def test_only_an_existing_webhook_channel_has_a_secret_to_rotate(
    run: Callable[..., Result], pg_database: Database
) -> None:
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "telegram",
                "--target", "42", "--secret", TOKEN)  # fmt: skip
    telegram = added.output.split()[1]

    refused = run("channels", "rotate-secret", telegram, "--secret", NEW)
    unknown = run("channels", "rotate-secret", "999999", "--secret", NEW)

    assert refused.exit_code == 2 and "only a webhook channel" in refused.stderr
    assert unknown.exit_code == 2 and "channel 999999 does not exist" in unknown.stderr
    assert stored(pg_database, telegram).secret == TOKEN


def test_the_previous_secret_is_sealed_and_opened_like_the_current_one(
    env: dict[str, str], run: Callable[..., Result], pg_database: Database
) -> None:
    # Given a rotated channel stored in plain text
    channel = add_webhook(run)
    assert run("channels", "rotate-secret", channel, "--secret", NEW).exit_code == 0

    # When CHANNEL_SECRET_KEYS is set and the channels are encrypted
    key = Fernet.generate_key().decode()
    keyed = {**env, "CHANNEL_SECRET_KEYS": key}
    encrypted = CliRunner().invoke(cli, ["channels", "encrypt"], env=keyed)
    assert encrypted.exit_code == 0, encrypted.output

    # Then the table holds neither secret in clear, and a keyed engine reads both back
    with pg_database.engine.connect() as conn:
        secret, previous = conn.execute(
            text("SELECT secret, previous_secret FROM notification_channels")
        ).one()
    assert secret.startswith(PREFIX) and previous.startswith(PREFIX)
    assert OLD not in previous and NEW not in secret
    reader = Database(load_settings(database_url=pg_database.url, channel_secret_keys=key))
    try:
        row = stored(reader, channel)
        assert (row.secret, row.previous_secret) == (NEW, OLD)
    finally:
        reader.dispose()

    # and decrypting writes both back in clear
    assert CliRunner().invoke(cli, ["channels", "decrypt"], env=keyed).exit_code == 0
    row = stored(pg_database, channel)
    assert (row.secret, row.previous_secret) == (NEW, OLD)
