"""Channel credentials encrypted at rest (CHANNEL_SECRET_KEYS): what the database holds,
delivery through a real worker, key rotation, and the CLI that manages it."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import text

from domain.notify.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from models.db import Database
from models.repositories import ChannelRepository
from models.secret_box import PREFIX, SecretUnavailable, box_for
from settings import Settings, load_settings
from tasks.application import HyperwatchCelery
from tasks.notify.deliver import Deliverer
from tasks.notify.outbox import redis_client as make_redis
from tests.integration.alerts.support import SECRET, add_channel, add_user, wait_until
from tests.integration.notify.receiver import Receiver
from tests.integration.notify.support import outbox_row, row, settled
from workers.cli import cli

pytestmark = pytest.mark.integration

K1, K2 = Fernet.generate_key().decode(), Fernet.generate_key().decode()
# A Slack-style incoming-webhook URL (its path is the credential), on loopback: no DNS here.
SLACK = "http://127.0.0.1:9/services/T000/B000/XXXXXXXXXXXXXXXXXXXXXXXX"


@pytest.fixture()
def alert_settings(alert_settings: Settings) -> Settings:
    """The notify fixtures' settings, with channel credentials encrypted under K1."""
    return alert_settings.model_copy(update={"channel_secret_keys": SecretStr(K1)})


def raw_channels(db: Database) -> list[tuple[int, str, str | None]]:
    with db.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, target, secret FROM notification_channels ORDER BY id")
        )
        return [(int(i), t, s) for i, t, s in rows]


def keyed(db: Database, keys: str | None) -> Database:
    """Another engine on the same database, holding ``keys``."""
    return Database(load_settings(database_url=db.url, channel_secret_keys=keys))


def test_given_keys_when_a_webhook_channel_is_used_then_the_database_holds_no_credential_and_delivery_signs_with_it(
    worker: HyperwatchCelery, alert_settings: Settings, pg_database: Database, receiver: Receiver
) -> None:
    # Given a webhook channel added while CHANNEL_SECRET_KEYS is set
    db = keyed(pg_database, K1)
    user_id = add_user(db)
    channel_id = add_channel(db, alert_settings, user_id, receiver.url())
    notification_id = outbox_row(db, alert_settings, user_id, channel_id)

    # Then the table holds neither the URL nor the signing secret
    [(_, target, secret)] = raw_channels(pg_database)
    assert target.startswith(PREFIX) and secret is not None and secret.startswith(PREFIX)
    assert receiver.url() not in target and SECRET not in secret

    # When the worker delivers a notification through it
    worker.send_task("hyperwatch.notify.deliver", args=[notification_id])
    wait_until(lambda: settled(pg_database, notification_id), 30, what="notification settled")

    # Then it reached the URL, signed with the secret in clear
    assert row(pg_database, notification_id).status == "sent"
    [request] = receiver.received()
    assert verify(
        SECRET, request.headers[TIMESTAMP_HEADER], request.body,
        request.headers[SIGNATURE_HEADER], now_s=time.time(),
    )  # fmt: skip
    db.dispose()


def test_given_channels_stored_in_plain_then_encrypt_rotate_and_decrypt_keep_them_readable(
    database: Database, settings_for: Callable[..., Settings]
) -> None:
    # Given a Slack channel stored before any key was set
    settings = settings_for(database_url=database.url, webhook_allowlist="127.0.0.0/8")
    user_id = add_user(database)
    add_channel(database, settings, user_id, SLACK, kind="slack", secret=None)
    assert raw_channels(database)[0][1] == SLACK

    def read(db: Database) -> tuple[str, str | None]:
        with db.session() as s:
            [channel] = ChannelRepository(s).list()
            return channel.target, channel.secret

    # When keys are set, it is still read as it is; `encrypt` then seals it under K1
    with_k1 = keyed(database, K1)
    assert read(with_k1) == (SLACK, None)
    with with_k1.session() as s:
        assert ChannelRepository(s).reseal(box_for(with_k1.engine.dialect)) == 1
    sealed_k1 = raw_channels(database)[0][1]
    assert sealed_k1.startswith(PREFIX) and "XXXXXXXX" not in sealed_k1
    assert read(with_k1) == (SLACK, None)

    # And an engine without the key refuses to read it, saying which setting is missing
    with pytest.raises(SecretUnavailable, match="CHANNEL_SECRET_KEYS is not set"):
        read(database)

    # When K2 is put first (rotation) and `encrypt` runs again, K2 alone opens it
    rotating = keyed(database, f"{K2},{K1}")
    assert read(rotating) == (SLACK, None)
    with rotating.session() as s:
        ChannelRepository(s).reseal(box_for(rotating.engine.dialect))
    with_k2 = keyed(database, K2)
    assert read(with_k2) == (SLACK, None)
    with pytest.raises(SecretUnavailable, match="not in CHANNEL_SECRET_KEYS"):
        read(with_k1)

    # And `decrypt` writes it back in plain text, readable without keys
    with with_k2.session() as s:
        ChannelRepository(s).reseal(box_for(with_k2.engine.dialect), plain=True)
    assert raw_channels(database)[0][1] == SLACK and read(database) == (SLACK, None)
    for db in (with_k1, rotating, with_k2):
        db.dispose()


def test_channel_key_commands(pg_database: Database, postgres_url: str, redis_url: str) -> None:
    def run(*args: str, keys: str | None = None) -> Result:
        env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url}
        env["WEBHOOK_ALLOWLIST"] = "127.0.0.0/8"
        if keys is not None:
            env["CHANNEL_SECRET_KEYS"] = keys
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    # new-key prints a key the setting accepts
    made = run("channels", "new-key")
    assert made.exit_code == 0 and load_settings(channel_secret_keys=made.output.strip())

    # encrypt without keys is refused, saying why
    refused = run("channels", "encrypt")
    assert refused.exit_code == 2 and "CHANNEL_SECRET_KEYS is not set" in refused.stderr

    # a channel added with keys is listed in clear with them, and refused in one line without
    assert run("users", "add", "ann@example.com").exit_code == 0
    added = run(
        "channels", "add", "--user", "ann@example.com", "--kind", "slack", "--target", SLACK,
        keys=K1,
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    listed = run("channels", "list", keys=K1)
    assert listed.exit_code == 0 and "http://127.0.0.1:9/***" in listed.output
    blind = run("channels", "list")
    assert blind.exit_code == 1
    assert blind.stderr.strip().splitlines() == [
        "hyperwatch: a notification channel credential is encrypted but CHANNEL_SECRET_KEYS "
        "is not set"
    ]
    assert K1 not in blind.stderr + listed.output

    # decrypt stores it in plain text again
    plain = run("channels", "decrypt", keys=K1)
    assert plain.exit_code == 0 and "1 channel(s) stored in plain text" in plain.output
    assert raw_channels(pg_database)[0][1] == SLACK
    assert run("channels", "encrypt", keys=K1).output.startswith("1 channel(s) encrypted")
    assert raw_channels(pg_database)[0][1].startswith(PREFIX)


def test_given_an_overlong_secret_or_target_then_the_channel_is_refused(
    database: Database, settings_for: Callable[..., Settings]
) -> None:
    from domain.alerts.manage import Refused

    settings = settings_for(database_url=database.url, webhook_allowlist="127.0.0.0/8")
    user_id = add_user(database)
    with pytest.raises(Refused, match="at most 256 characters"):
        add_channel(database, settings, user_id, "http://127.0.0.1/x", secret="s" * 257)
    with pytest.raises(Refused, match="at most 2048 characters"):
        add_channel(database, settings, user_id, "http://127.0.0.1/" + "x" * 2048)
    assert raw_channels(database) == []


def test_given_a_worker_without_the_key_then_delivery_fails_loudly_and_the_notification_waits(
    alert_settings: Settings,
    pg_database: Database,
    receiver: Receiver,
) -> None:
    # Given a notification through a channel sealed under K1
    db = keyed(pg_database, K1)
    user_id = add_user(db)
    channel_id = add_channel(db, alert_settings, user_id, receiver.url())
    notification_id = outbox_row(db, alert_settings, user_id, channel_id)
    client = make_redis(alert_settings)

    # When a deliverer whose process lacks the key attempts it, the attempt raises
    keyless = alert_settings.model_copy(update={"channel_secret_keys": None})
    keyless_db = keyed(pg_database, None)
    blind = Deliverer(keyless, keyless_db, client)
    with pytest.raises(SecretUnavailable, match="CHANNEL_SECRET_KEYS is not set"):
        blind.attempt(notification_id)
    blind.close()
    keyless_db.dispose()

    # Then nothing was sent and the row is untouched: still pending, no attempt counted,
    # so the sweeper hands it to a worker that has the key
    stored = row(pg_database, notification_id)
    assert (stored.status, stored.attempts, receiver.received()) == ("pending", 0, [])
    keyed_deliverer = Deliverer(alert_settings, db, client)
    assert keyed_deliverer.attempt(notification_id).action == "sent"
    keyed_deliverer.close()
    client.close()
    db.dispose()
