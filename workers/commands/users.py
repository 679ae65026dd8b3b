"""``hyperwatch users``: subscribers, their tiers and their API keys (``issue-key``,
``keys``, ``revoke-key``: the same as the API's admin routes, for an operator at the
machine) — plus the helpers every subscriber command (channels, alerts, wallets,
notifications) shares.

Conventions for those commands: bad input (unknown user, coin or alert, a malformed or
forbidden URL, a quota) is one line ``hyperwatch: …`` and exit 2 with nothing written —
every check runs before the write, inside the one transaction that would write. An
unreachable database or Redis is exit 1. Listings never print a secret.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
import redis
from sqlalchemy.exc import DataError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.orm import Session

from domain.access.api_keys import KeyRefused, check_name, issue_key
from domain.alerts.book import announce
from domain.alerts.manage import MAX_ID, Refused, check_email, create_user
from models.db import get_database
from models.repositories import (
    AlertRepository,
    ApiKeyRepository,
    TrackedWalletRepository,
    UserRepository,
)
from models.secret_box import SecretUnavailable
from models.user import TIERS, User
from runtime.clock import SYSTEM_CLOCK, utc_now
from runtime.redis_clients import cache_client
from settings import redact_url
from workers.context import UsageError, current_settings, one_line


class Unavailable(click.ClickException):
    """A service the command needs is down: one line, exit 1."""

    exit_code = 1

    def show(self, file: object = None) -> None:
        click.echo(f"hyperwatch: {self.format_message()}", err=True)


@contextmanager
def unit_of_work() -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back on any error; a
    :class:`Refused` becomes a usage error (exit 2), an unreachable database exit 1."""
    settings = current_settings()
    try:
        with get_database(settings).session() as session:
            yield session
    except Refused as exc:
        raise UsageError(str(exc)) from None
    except SecretUnavailable as exc:
        raise Unavailable(str(exc)) from None
    except DataError as exc:
        # A value the checks let through but a column cannot hold (too long, out of range).
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise UsageError(f"the database refused a value ({reason}); nothing written") from None
    except (OperationalError, ProgrammingError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise Unavailable(
            f"database {redact_url(settings.database_url)} unusable: {reason} "
            "(is it running and migrated? `hyperwatch db upgrade`)"
        ) from None


def redis_client() -> redis.Redis:
    """A Redis client that answered a ping (workers must hear about alert changes)."""
    settings = current_settings()
    client = cache_client(settings, socket_timeout=3, socket_connect_timeout=3)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise Unavailable(
            f"redis {redact_url(settings.redis_url)} unreachable ({exc}); nothing written"
        ) from None
    return client


def announce_changes(client: redis.Redis, alert_ids: Sequence[int]) -> None:
    """Tell the workers (after the commit). If Redis went away in between, the workers'
    periodic catch-up finds the change within a couple of minutes; say so."""
    try:
        announce(client, alert_ids)
    except (redis.RedisError, OSError) as exc:
        click.echo(
            f"hyperwatch: saved, but workers were not notified ({exc}); "
            "they pick the change up within about two minutes",
            err=True,
        )


def find_user(session: Session, ref: str) -> User:
    """A user by email or numeric id; unknown → usage error."""
    if not ref.isprintable():  # NUL or a control character: never an email we stored
        raise UsageError(f"unknown user {ref[:80]!r}")
    repository = UserRepository(session)
    # An id is ASCII digits that fit BIGINT: "²" is a digit int() refuses, "١٢" one it takes.
    is_id = ref.isascii() and ref.isdecimal() and len(ref) <= 18
    user = repository.get(int(ref)) if is_id else repository.by_email(ref)
    if user is None:
        raise UsageError(f"unknown user {ref!r}")
    return user


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> None:
    """Print aligned columns; ``(none)`` for an empty listing."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[str(c) for c in header]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@click.group()
def users() -> None:
    """Subscribers and their tiers."""


@users.command("add")
@click.argument("email")
@click.option("--tier", type=click.Choice(TIERS), default="free", show_default=True)
def add(email: str, tier: str) -> None:
    """Add a subscriber."""
    try:
        address = check_email(email)  # before connecting: a bad address needs no database
    except Refused as exc:
        raise UsageError(str(exc)) from None
    try:
        with unit_of_work() as session:
            user = create_user(session, address, tier)
    except IntegrityError:
        raise UsageError(f"user {address} already exists") from None
    click.echo(f"user {user.id} {user.email} ({user.tier})")


@users.command("list")
def list_users() -> None:
    """Every subscriber with their tier and usage."""
    settings = current_settings()
    with unit_of_work() as session:
        rows = []
        for user in UserRepository(session).list(limit=1000):
            quota = settings.tier_quota(user.tier)  # type: ignore[arg-type]
            alerts = AlertRepository(session).count_active_for_user(user.id)
            wallets = TrackedWalletRepository(session).count_for_user(user.id)
            rows.append(
                (
                    user.id,
                    user.email,
                    user.tier,
                    "yes" if user.active else "no",
                    f"{alerts}/{quota.max_alerts}",
                    f"{wallets}/{quota.max_wallets}",
                    quota.notifications_per_hour,
                )
            )
    table(rows, ("ID", "EMAIL", "TIER", "ACTIVE", "ALERTS", "WALLETS", "NOTIFY/H"))


@users.command("set-tier")
@click.argument("user")
@click.argument("tier", type=click.Choice(TIERS))
def set_tier(user: str, tier: str) -> None:
    """Change a subscriber's tier (USER: email or id)."""
    settings = current_settings()
    with unit_of_work() as session:
        found = find_user(session, user)
        UserRepository(session).set_tier(found.id, tier)
        active = AlertRepository(session).count_active_for_user(found.id)
        limit = settings.tier_quota(tier).max_alerts  # type: ignore[arg-type]
    click.echo(f"user {found.id} {found.email} is now {tier}")
    if active > limit:
        click.echo(
            f"note: {active} active alerts exceed the {tier} quota of {limit}; "
            "they keep running, new ones are refused",
            err=True,
        )


@users.command("issue-key")
@click.argument("user")
@click.option("--name", default="", help="A label for listings (e.g. the subscriber's bot).")
def issue_key_command(user: str, name: str) -> None:
    """Issue an API key for a subscriber (USER: email or id); it is printed once."""
    try:
        label = check_name(name)
    except KeyRefused as exc:
        raise UsageError(f"--name: {exc}") from None
    with unit_of_work() as session:
        found = find_user(session, user)
        issued = issue_key(session, found, label)
        key_id, prefix = issued.row.id, issued.row.prefix
    click.echo(f"key {key_id} ({prefix}) for {found.email}")
    click.echo(f"API key (shown once, store it now): {issued.plaintext}")


@users.command("keys")
@click.argument("user")
def list_keys(user: str) -> None:
    """A subscriber's API keys: prefix, name, created, last used, revoked. Never the key."""
    with unit_of_work() as session:
        found = find_user(session, user)
        rows = [
            (k.id, k.prefix, one_line(k.name) or "-", _at(k.created_at), _at(k.last_used_at),
             _at(k.revoked_at))
            for k in ApiKeyRepository(session).of_user(found.id)
        ]  # fmt: skip
    table(rows, ("ID", "PREFIX", "NAME", "CREATED", "LAST USED", "REVOKED"))


@users.command("revoke-key")
@click.argument("key_id", type=int)
def revoke_key(key_id: int) -> None:
    """Revoke an API key: it authenticates nothing from the next request on."""
    with unit_of_work() as session:
        repository = ApiKeyRepository(session)
        key = repository.get(key_id) if 0 < key_id <= MAX_ID else None
        if key is None:
            raise UsageError(f"API key {key_id} does not exist")
        changed = repository.revoke(key_id, utc_now(SYSTEM_CLOCK))
    click.echo(f"API key {key_id} revoked" if changed else f"API key {key_id} already revoked")


def _at(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")
