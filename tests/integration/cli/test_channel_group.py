"""``hyperwatch channels group``: a channel's digest windows are stored, shown with the
defaults they fall back to, reset with 'default', and refused (exit 2, nothing written)
when out of range or for a channel that does not exist."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from models.db import Database
from models.notification_channel import NotificationChannel
from workers.cli import cli

pytestmark = pytest.mark.integration


@pytest.fixture()
def run(postgres_url: str, pg_database: Database, redis_url: str) -> Callable[..., Result]:
    env = {
        "DATABASE_URL": postgres_url,
        "REDIS_URL": redis_url,
        "NOTIFY_GROUP_WAIT_S": "2",
        "WEBHOOK_ALLOWLIST": "127.0.0.0/8",
    }

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    assert invoke("users", "add", "ann@example.com").exit_code == 0
    return invoke


def _windows(db: Database, channel_id: int) -> tuple[int | None, int | None, int | None]:
    with db.session() as s:
        c = s.get(NotificationChannel, channel_id)
        assert c is not None
        return c.group_wait_s, c.group_interval_s, c.repeat_interval_s


def test_windows_are_set_shown_reset_and_refused(
    run: Callable[..., Result], pg_database: Database
) -> None:
    # Given a Slack channel
    added = run("channels", "add", "--user", "ann@example.com", "--kind", "slack",
                "--target", "http://127.0.0.1:9/slack")  # fmt: skip
    assert added.exit_code == 0, added.output
    channel = int(added.output.split()[1])

    # When its interval and repeat are set
    done = run("channels", "group", str(channel), "--interval", "30s", "--repeat", "4h")

    # Then they are stored, and the wait shows the setting it falls back to
    assert done.exit_code == 0, done.output
    assert done.output.strip() == (
        f"channel {channel}: wait 2s (default), interval 30s, repeat 14400s"
    )
    assert _windows(pg_database, channel) == (None, 30, 14400)

    # When the interval goes back to the default, and the wait is set
    assert (
        run("channels", "group", str(channel), "--interval", "default", "--wait", "0").exit_code
        == 0
    )
    assert _windows(pg_database, channel) == (0, None, 14400)

    # When a window is out of range, none is given, or the channel does not exist
    too_long = run("channels", "group", str(channel), "--wait", "2h", "--interval", "1m")
    nothing = run("channels", "group", str(channel))
    missing = run("channels", "group", "999", "--wait", "1s")

    # Then each is refused with exit 2, naming what is wrong, and nothing is written
    assert (too_long.exit_code, nothing.exit_code, missing.exit_code) == (2, 2, 2)
    assert "group_wait_s must be between 0 and 3600 seconds, got 7200" in too_long.output
    assert "give at least one of --wait, --interval, --repeat" in nothing.output
    assert "channel 999 does not exist" in missing.output
    assert _windows(pg_database, channel) == (0, None, 14400)
