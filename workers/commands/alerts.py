"""``hyperwatch alerts``: a subscriber's alerts. Every write is announced to the workers
(``runtime.keys.ALERTS_VERSION``) right after its commit, so evaluation follows within one batch.

Numbers are decimal strings (never floats): ``--threshold 117000.5``; funding is the hourly
rate as a fraction (``0.0001`` = 0.01 % an hour); percentages are percent (``5`` = 5 %);
``stale_data`` takes seconds; ``whale_trade``, ``wallet_position_change`` and
``wallet_liquidated`` take USD of notional, to the cent (docs/ALERTS.md). Durations: ``300``, ``90s``, ``5m``, ``4h``, ``1d``. Times
(``--snooze-until``, ``--expires``): ISO 8601 (``2026-12-01T12:00:00Z``), epoch ms, or
relative (``+2h``). Every number, duration and time has a range (docs/ALERTS.md, "Accepted
ranges"): outside it, one line naming the field and exit 2.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

from domain.alerts.coins import CoinsUnknown, known_coins
from domain.alerts.definition import AlertKind, Direction, Mode, PriceSource, shorten
from domain.alerts.manage import create_alert, owned_alert, set_alert_active
from domain.alerts.view import Stream
from models.repositories import AlertRepository
from runtime.clock import SYSTEM_CLOCK, Clock
from workers.commands.users import (
    announce_changes,
    find_user,
    redis_client,
    table,
    unit_of_work,
)
from workers.context import UsageError, current_settings

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# ASCII digits only (``\d`` and int() would take '١٢٣'), and few enough that the product
# stays an ordinary number: the definition's bounds then refuse what is too long.
_DURATION = re.compile(r"([0-9]{1,9})([smhd]?)")
_EPOCH_MS = re.compile(r"[0-9]{1,15}")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def parse_duration(text: str, option: str) -> int:
    """Whole seconds from ``300``, ``90s``, ``5m``, ``4h``, ``1d``."""
    match = _DURATION.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(
            f"{option} must be a duration such as 300, 90s, 5m, 4h or 1d (at most 9 digits), "
            f"got {shorten(repr(text))}"
        )
    return int(match[1]) * _UNITS[match[2] or "s"]


def parse_when(text: str, option: str, clock: Clock = SYSTEM_CLOCK) -> int:
    """Epoch ms from ISO 8601, epoch ms, or ``+<duration>`` from now. How far ahead is for
    the definition and ``manage.check_schedule`` to judge."""
    raw = text.strip()
    if raw.startswith("+"):
        return clock.time_ms() + parse_duration(raw[1:], option) * 1000
    if _EPOCH_MS.fullmatch(raw):
        return int(raw)
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        # Whole milliseconds computed exactly (a float timestamp rounds microseconds).
        return (when - _EPOCH) // dt.timedelta(milliseconds=1)
    except (ValueError, OverflowError):  # year 1 at +01:00 is before datetime.min in UTC
        raise UsageError(
            f"{option} must be ISO 8601 (2026-12-01T12:00:00Z), epoch ms or +2h, "
            f"got {shorten(repr(text))}"
        ) from None


def _when(value: int | None) -> str:
    if value is None:
        return "-"
    try:
        return dt.datetime.fromtimestamp(value / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):  # a row stored before the bounds existed
        return str(value)


@click.group()
def alerts() -> None:
    """Subscribers' alerts."""


def _choices(enum: Any) -> click.Choice:
    return click.Choice([e.value for e in enum])


@alerts.command("add")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.option("--coin", required=True, help="As Hyperliquid spells it: BTC, kPEPE …")
@click.option("--kind", type=_choices(AlertKind), required=True)
@click.option("--threshold", required=True, help="Decimal; units depend on the kind.")
@click.option("--channel", "channel_id", type=int, required=True, help="Channel id to notify.")
@click.option(
    "--source", type=_choices(PriceSource), default=None, help="Price kinds: mid or mark."
)
@click.option("--window", default=None, help="price_move_pct / oi_change_pct window (5m …).")
@click.option(
    "--direction",
    type=_choices(Direction),
    default=None,
    help="Windows: which way the value moved; wallet_position_change: up = opened or "
    "increased, down = reduced or closed (a flip is both); default any.",
)
@click.option(
    "--wallet",
    default=None,
    help="liquidation_distance_below, wallet_position_change, wallet_liquidated: a wallet "
    "the user tracks.",
)
@click.option("--stream", type=_choices(Stream), default=None, help="stale_data: the feed.")
@click.option("--mode", type=_choices(Mode), default="once", show_default=True)
@click.option("--cooldown", default=None, help="Recurring: least time between firings.")
@click.option("--rearm-margin", default=None, help="Recurring: fraction of |threshold|.")
@click.option("--snooze-until", default=None)
@click.option("--expires", default=None)
def add(
    user_ref: str,
    coin: str,
    kind: str,
    threshold: str,
    channel_id: int,
    source: str | None,
    window: str | None,
    direction: str | None,
    wallet: str | None,
    stream: str | None,
    mode: str,
    cooldown: str | None,
    rearm_margin: str | None,
    snooze_until: str | None,
    expires: str | None,
) -> None:
    """Add an alert."""
    settings = current_settings()
    fields: dict[str, Any] = {
        "kind": kind, "coin": coin, "threshold": threshold, "price_source": source,
        "window_s": None if window is None else parse_duration(window, "--window"),
        "direction": direction, "wallet": wallet, "stream": stream, "mode": mode,
        "cooldown_s": None if cooldown is None else parse_duration(cooldown, "--cooldown"),
        "rearm_margin": rearm_margin,
        "snooze_until": None if snooze_until is None else parse_when(snooze_until, "--snooze-until"),
        "expires_at": None if expires is None else parse_when(expires, "--expires"),
    }  # fmt: skip
    client = redis_client()
    try:
        coins = known_coins(settings, client)
    except CoinsUnknown as exc:
        raise UsageError(f"cannot check coin {coin!r}: {exc}") from None
    with unit_of_work() as session:
        user = find_user(session, user_ref)
        alert = create_alert(session, settings, user, fields, channel_id, known_coins=coins)
    announce_changes(client, [alert.id])
    click.echo(f"alert {alert.id} {alert.kind} {alert.coin} {alert.threshold} for {user.email}")


@alerts.command("list")
@click.option("--user", "user_ref", default=None, help="Only this subscriber's (email or id).")
@click.option("--all", "show_all", is_flag=True, help="Include paused, fired and expired ones.")
def list_alerts(user_ref: str | None, show_all: bool) -> None:
    """Alerts with their state."""
    with unit_of_work() as session:
        user_id = find_user(session, user_ref).id if user_ref else None
        rows = [
            (
                a.id,
                a.user_id,
                a.coin,
                a.kind,
                a.threshold,
                a.mode,
                "active" if a.active else "inactive",
                "armed" if a.armed else "disarmed",
                _when(a.last_fired_at),
                _when(a.expires_at),
                a.channel_id,
            )
            for a in AlertRepository(session).for_user(user_id, include_inactive=show_all)
        ]
    table(
        rows,
        ("ID", "USER", "COIN", "KIND", "THRESHOLD", "MODE", "STATE", "ARMED", "LAST FIRED",
         "EXPIRES", "CHANNEL"),
    )  # fmt: skip


def _toggle(alert_id: int, active: bool) -> None:
    settings = current_settings()
    client = redis_client()
    with unit_of_work() as session:
        alert = owned_alert(session, alert_id)
        changed = set_alert_active(session, settings, alert, active)
    if changed:
        announce_changes(client, [alert_id])
    verb = "resumed" if active else "paused"
    click.echo(f"alert {alert_id} {verb}" if changed else f"alert {alert_id} already {verb}")


@alerts.command("pause")
@click.argument("alert_id", type=int)
def pause(alert_id: int) -> None:
    """Stop evaluating an alert (it keeps its definition)."""
    _toggle(alert_id, False)


@alerts.command("resume")
@click.argument("alert_id", type=int)
def resume(alert_id: int) -> None:
    """Evaluate a paused alert again, armed (counts against the quota)."""
    _toggle(alert_id, True)


@alerts.command("rm")
@click.argument("alert_id", type=int)
def rm(alert_id: int) -> None:
    """Delete an alert (its past notifications stay, unlinked)."""
    client = redis_client()
    with unit_of_work() as session:
        owned_alert(session, alert_id)
        AlertRepository(session).delete(alert_id)
    announce_changes(client, [alert_id])
    click.echo(f"alert {alert_id} removed")


# Registered here so that ``hyperwatch alerts --help`` lists it; its module imports this one.
from workers.commands.backtest import backtest  # noqa: E402

alerts.add_command(backtest)
