"""``hyperwatch channels``: where a subscriber's notifications go. An alert needs one.

Kinds and targets: ``webhook`` (URL; a signing secret — generated and shown once when not
given), ``slack`` / ``discord`` (incoming-webhook URL), ``telegram`` (chat id; ``--secret``
is the bot token), ``redis`` (no target: publishes on ``runtime.keys.NOTIFY_USER_CHANNEL``). URLs must
pass the SSRF guard now: private, loopback and link-local addresses are refused unless
``WEBHOOK_ALLOWLIST`` permits them. Every credential is held to its kind's shape first
(``domain.notify.credentials``: a bot token's characters, a signing secret's length), and
a refusal names the field, never the value. Listings show whether a secret is set, never the secret,
and mask the parts of URLs that are credentials themselves
(:func:`domain.notify.credentials.shown_target`).

``rotate-secret`` gives a webhook channel a new signing secret; the current one keeps
signing next to it for ``--overlap`` (default 24 h), so a receiver can switch secrets
without refusing a delivery (``domain.notify.signing``).

Targets and secrets are encrypted in the database when ``CHANNEL_SECRET_KEYS`` is set
(models/secret_box.py): ``new-key`` makes a key, ``encrypt`` rewrites every channel under
the first key (after turning encryption on, and to finish a key rotation), ``decrypt``
writes them back in plain text (before turning it off or downgrading the schema).
"""

from __future__ import annotations

import datetime as dt
import secrets

import click

from domain.alerts.manage import (
    create_channel,
    remove_channel,
    set_channel_windows,
    target_masked,
)
from domain.notify.credentials import (
    CredentialRefused,
    check_channel,
    check_webhook_secret,
    shown_target,
)
from models.notification_channel import CHANNEL_KINDS, NotificationChannel
from models.repositories import ChannelRepository
from models.secret_box import SecretBox
from runtime.clock import SYSTEM_CLOCK, utc_now
from workers.commands.alerts import parse_duration
from workers.commands.users import find_user, table, unit_of_work
from workers.context import UsageError, current_settings

# A rotation's overlap: long enough for any receiver to switch, short enough that a leaked
# old secret does not stay good for long.
MAX_OVERLAP_S = 30 * 86400


def _secret_state(channel: NotificationChannel, now: dt.datetime) -> str:
    """``set`` or ``-``; during a rotation's overlap, until when the previous one signs."""
    if not channel.secret:
        return "-"
    until = channel.previous_secret_until
    if channel.previous_secret and until is not None and until > now:
        return f"set (+previous until {until.strftime('%Y-%m-%dT%H:%M:%SZ')})"
    return "set"


@click.group()
def channels() -> None:
    """Notification channels (webhook, Slack, Discord, Telegram, Redis)."""


@channels.command("add")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.option("--kind", type=click.Choice(CHANNEL_KINDS), required=True)
@click.option("--target", default=None, help="URL, or Telegram chat id.")
@click.option("--secret", default=None, help="Webhook signing secret, or Telegram bot token.")
@click.option("--name", default="", help="A label for listings.")
def add(user_ref: str, kind: str, target: str | None, secret: str | None, name: str) -> None:
    """Add a channel for a subscriber."""
    settings = current_settings()
    generated = kind == "webhook" and not secret
    if generated:
        secret = secrets.token_urlsafe(32)
    try:
        check_channel(kind, target, secret, settings.webhook_allowlist)
    except CredentialRefused as exc:
        raise UsageError(str(exc)) from None
    if "\x00" in name or any("\ud800" <= c <= "\udfff" for c in name):
        # NUL, or an undecodable byte of argv (a lone surrogate): the database would refuse
        # them with an encoding error instead of a usage error. Anything else is a label.
        raise UsageError("--name must be text without NUL or undecodable bytes")
    with unit_of_work() as session, target_masked(kind, target):
        user = find_user(session, user_ref)
        channel = create_channel(session, settings, user, kind, target, secret, name)
    click.echo(f"channel {channel.id} {kind} {shown_target(kind, channel.target)} for {user.email}")
    if generated:
        click.echo(f"signing secret (shown once, store it now): {secret}")


@channels.command("list")
@click.option("--user", "user_ref", default=None, help="Only this subscriber's (email or id).")
def list_channels(user_ref: str | None) -> None:
    """Channels, secrets never shown."""
    now = utc_now(SYSTEM_CLOCK)
    with unit_of_work() as session:
        filters = {"user_id": find_user(session, user_ref).id} if user_ref else None
        rows = [
            (
                c.id,
                c.user_id,
                c.kind,
                shown_target(c.kind, c.target),
                _secret_state(c, now),
                c.name or "-",
                "yes" if c.active else "no",
            )
            for c in ChannelRepository(session).list(filters, limit=1000)
        ]
    table(rows, ("ID", "USER", "KIND", "TARGET", "SECRET", "NAME", "ACTIVE"))


@channels.command("rotate-secret")
@click.argument("channel_id", type=int)
@click.option(
    "--secret", default=None, help="The new signing secret (generated and shown once if not given)."
)
@click.option(
    "--overlap",
    default="24h",
    show_default=True,
    help="How long the current secret keeps signing next to the new one (0: stops now; at most 30d).",
)
def rotate_secret(channel_id: int, secret: str | None, overlap: str) -> None:
    """Give a webhook channel a new signing secret; the old one still signs for --overlap."""
    overlap_s = parse_duration(overlap, "--overlap")
    if overlap_s > MAX_OVERLAP_S:
        raise UsageError(f"--overlap is at most {MAX_OVERLAP_S // 86400}d, got {overlap!r}")
    generated = not secret
    new_secret = secrets.token_urlsafe(32) if generated else str(secret)
    try:
        check_webhook_secret(new_secret)
    except CredentialRefused as exc:
        raise UsageError(str(exc)) from None
    now = utc_now(SYSTEM_CLOCK)
    until = now + dt.timedelta(seconds=overlap_s) if overlap_s else None
    with unit_of_work() as session:
        repository = ChannelRepository(session)
        channel = repository.get(channel_id)
        if channel is None:
            raise UsageError(f"channel {channel_id} does not exist")
        if channel.kind != "webhook":
            raise UsageError(
                f"channel {channel_id} is a {channel.kind} channel: only a webhook channel has "
                "a signing secret to rotate"
            )
        if channel.secret == new_secret:
            raise UsageError("the new signing secret is the current one")
        repository.rotate_secret(channel_id, new_secret, until)
    if until is None:
        click.echo(
            f"channel {channel_id}: the new secret signs from now on, the previous one no more"
        )
    else:
        click.echo(
            f"channel {channel_id}: the new secret signs from now on; the previous one signs "
            f"too until {until.strftime('%Y-%m-%dT%H:%M:%SZ')} ({overlap})"
        )
    if generated:
        click.echo(f"signing secret (shown once, store it now): {new_secret}")


def _window(text: str | None, option: str) -> int | None:
    return None if text is None or text == "default" else parse_duration(text, option)


@channels.command("group")
@click.argument("channel_id", type=int)
@click.option("--wait", default=None, help="group_wait: e.g. 0, 10s ('default': the setting).")
@click.option("--interval", default=None, help="group_interval: e.g. 30s, 5m ('default').")
@click.option("--repeat", default=None, help="repeat_interval: e.g. 4h ('default').")
def group(channel_id: int, wait: str | None, interval: str | None, repeat: str | None) -> None:
    """Set a channel's digest windows (docs/ALERTS.md, 'Digests and rate budgets')."""
    given = {
        "group_wait_s": (wait, "--wait"),
        "group_interval_s": (interval, "--interval"),
        "repeat_interval_s": (repeat, "--repeat"),
    }
    windows = {name: _window(text, opt) for name, (text, opt) in given.items() if text is not None}
    if not windows:
        raise UsageError("give at least one of --wait, --interval, --repeat")
    settings = current_settings()
    with unit_of_work() as session:
        channel = set_channel_windows(session, None, channel_id, windows)
        shown = {
            "wait": (channel.group_wait_s, settings.notify_group_wait_s),
            "interval": (channel.group_interval_s, settings.notify_group_interval_s),
            "repeat": (channel.repeat_interval_s, settings.notify_repeat_interval_s),
        }
    parts = [
        f"{name} {own}s" if own is not None else f"{name} {default}s (default)"
        for name, (own, default) in shown.items()
    ]
    click.echo(f"channel {channel_id}: " + ", ".join(parts))


@channels.command("rm")
@click.argument("channel_id", type=int)
def rm(channel_id: int) -> None:
    """Remove a channel no active alert uses."""
    with unit_of_work() as session:
        remove_channel(session, None, channel_id)
    click.echo(f"channel {channel_id} removed")


@channels.command("new-key")
def new_key() -> None:
    """Print a new key for CHANNEL_SECRET_KEYS."""
    click.echo(SecretBox.new_key())


@channels.command("encrypt")
def encrypt() -> None:
    """Rewrite every channel's target and secret under the first CHANNEL_SECRET_KEYS key."""
    box = SecretBox.from_settings(current_settings())
    if not box.encrypts:
        raise UsageError("CHANNEL_SECRET_KEYS is not set: there is no key to encrypt with")
    with unit_of_work() as session:
        count = ChannelRepository(session).reseal(box)
    click.echo(f"{count} channel(s) encrypted under the first key")


@channels.command("decrypt")
def decrypt() -> None:
    """Rewrite every channel's target and secret in plain text."""
    box = SecretBox.from_settings(current_settings())
    with unit_of_work() as session:
        count = ChannelRepository(session).reseal(box, plain=True)
    click.echo(
        f"{count} channel(s) stored in plain text; unset CHANNEL_SECRET_KEYS now, or the "
        "next channel added is encrypted again"
    )
