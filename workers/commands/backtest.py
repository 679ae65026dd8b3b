"""``hyperwatch alerts backtest``: when would an alert have fired, and what would it have sent?

``hyperwatch alerts backtest (ALERT_ID | --kind K --coin C --threshold T [options]) --from T
[--to T] [--json]`` replays the stored asset contexts (and the mids they carry), positions
and trades of the rule's coin through the same judgement, holds and firing semantics as
the alert workers (``domain.alerts.backtest``), reading them with server-side cursors in
time order (``models.repositories.market_history``) behind a progress bar on stderr. A
stored alert is replayed from armed, as if created at ``--from``. Nothing is written and
nothing is sent. Exit 0; bad input exits 2 naming it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any

import click
from sqlalchemy.orm import Session

from domain.alerts.backtest import NOT_REPLAYED, Gap, Replay, Report, messages
from domain.alerts.book import rule_from_row
from domain.alerts.definition import (
    EVENT_KINDS,
    AlertKind,
    AlertRule,
    Direction,
    InvalidAlert,
    Mode,
    PriceSource,
    parse_rule,
)
from domain.alerts.hold import HoldPolicy
from domain.notify.grouping import Windows
from models.notification_channel import NotificationChannel
from models.repositories import AlertRepository, ChannelRepository, market_history
from runtime.clock import SYSTEM_CLOCK
from settings import Settings
from tasks.notify.deliver import windows_of
from workers.commands.users import unit_of_work
from workers.context import UsageError, current_settings

PROGRESS_EVERY = 1_000


def _choices(enum: Any) -> click.Choice:
    return click.Choice([str(m) for m in enum], case_sensitive=False)


def _time(text: str, option: str) -> int:
    """ISO 8601, epoch ms, ``+<duration>`` from now, or ``-<duration>`` ago."""
    from workers.commands.alerts import parse_duration, parse_when

    raw = text.strip()
    if raw.startswith("-"):
        return SYSTEM_CLOCK.time_ms() - parse_duration(raw[1:], option) * 1000
    return parse_when(raw, option)


def _stored_rule(alert_id: int) -> tuple[AlertRule, int | None]:
    """The stored alert, armed as if new, and its channel id."""
    with unit_of_work() as session:
        rows = AlertRepository(session).by_ids([alert_id])
        rule = rule_from_row(rows[0]) if rows else None
        channel_id = rows[0].channel_id if rows else None
    if rule is None:
        raise UsageError(f"alert {alert_id} does not exist")
    return replace(rule, armed=True, last_fired_at=None), channel_id


def _channel_windows(settings: Settings, channel_id: int | None) -> tuple[Windows, str]:
    """The channel's digest windows and budget (its kind's); without a channel, the
    NOTIFY_GROUP_* settings and no budget (a webhook)."""
    if channel_id is None:
        return windows_of(settings, NotificationChannel(kind="webhook")), "webhook"
    with unit_of_work() as session:
        channel = ChannelRepository(session).get(channel_id)
        if channel is None:
            raise UsageError(f"channel {channel_id} does not exist")
        return windows_of(settings, channel), channel.kind


def _policy(settings: Settings) -> HoldPolicy:
    return HoldPolicy(
        mids_ms=int(settings.alert_hold_mids_s * 1000),
        contexts_ms=int(settings.alert_hold_contexts_s * 1000),
        positions_ms=int(settings.alert_hold_positions_s * 1000),
    )


def run_backtest(
    unit: Callable[[], AbstractContextManager[Session]],
    settings: Settings,
    rules: Sequence[AlertRule],
    from_ms: int,
    to_ms: int,
    progress: bool = False,
) -> Report:
    """Replay ``rules`` (of one coin or several) over [from_ms, to_ms) of what is stored
    (see module), read in one unit of work from ``unit`` (``Database.session``)."""
    coins = sorted({r.coin for r in rules})
    wallets = sorted({r.wallet for r in rules if r.wallet})
    trades = any(r.kind is AlertKind.WHALE_TRADE for r in rules)
    with unit() as session:
        gaps = [Gap(*g) for g in market_history.trade_gaps(session, coins, from_ms, to_ms)]
        replay = Replay(
            rules,
            max_age_ms=int(settings.alert_max_age_s * 1000),
            position_max_age_ms=int(settings.alert_position_max_age_s * 1000),
            policy=_policy(settings),
            gaps=gaps,
        )
        span = market_history.Span(coins, wallets, from_ms, to_ms, trades)
        total = market_history.count(session, span) if progress else 0
        stream = market_history.events(session, span)
        with click.progressbar(
            length=total, label="replaying", file=sys.stderr, hidden=not progress
        ) as bar:
            for n, event in enumerate(stream, 1):
                replay.feed(event)
                if n % PROGRESS_EVERY == 0:
                    bar.update(PROGRESS_EVERY)
    return replay.report


@click.command("backtest")
@click.argument("alert_id", type=int, required=False)
@click.option("--kind", type=_choices(AlertKind), default=None, help="An ad-hoc rule's kind.")
@click.option("--coin", default=None)
@click.option("--threshold", default=None)
@click.option("--source", type=_choices(PriceSource), default=None)
@click.option("--window", default=None, help="price_move_pct / oi_change_pct window (5m …).")
@click.option("--direction", type=_choices(Direction), default=None)
@click.option("--wallet", default=None)
@click.option("--mode", type=_choices(Mode), default="once", show_default=True)
@click.option("--cooldown", default=None)
@click.option("--rearm-margin", default=None)
@click.option("--from", "from_", required=True, help="ISO 8601, epoch ms, or -1d (ago).")
@click.option("--to", default=None, help="ISO 8601, epoch ms, or -1h (default: now).")
@click.option(
    "--channel",
    "channel_id",
    type=int,
    default=None,
    help="Whose digest windows and budget to apply (default: the alert's channel).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def backtest(
    alert_id: int | None,
    kind: str | None,
    coin: str | None,
    threshold: str | None,
    source: str | None,
    window: str | None,
    direction: str | None,
    wallet: str | None,
    mode: str,
    cooldown: str | None,
    rearm_margin: str | None,
    from_: str,
    to: str | None,
    channel_id: int | None,
    as_json: bool,
) -> None:
    """Replay stored market data through an alert: when it would have fired, and what it
    would have sent."""
    # The alerts group registers this command: its module imports this one.
    from workers.commands.alerts import _when, parse_duration

    settings = current_settings()
    from_ms = _time(from_, "--from")
    to_ms = SYSTEM_CLOCK.time_ms() if to is None else _time(to, "--to")
    if to_ms <= from_ms:
        raise UsageError("--to must be after --from")
    if (alert_id is None) == (kind is None):
        raise UsageError("give an ALERT_ID or --kind, --coin and --threshold (not both)")
    if alert_id is not None:
        rule, stored_channel = _stored_rule(alert_id)
        channel_id = channel_id if channel_id is not None else stored_channel
    else:
        fields = {
            "kind": kind, "coin": coin or "", "threshold": threshold, "price_source": source,
            "window_s": None if window is None else parse_duration(window, "--window"),
            "direction": direction, "wallet": wallet, "mode": mode,
            "cooldown_s": None if cooldown is None else parse_duration(cooldown, "--cooldown"),
            "rearm_margin": rearm_margin,
        }  # fmt: skip
        try:
            rule = parse_rule(fields)
        except InvalidAlert as exc:
            raise UsageError(str(exc)) from None
    if rule.kind in NOT_REPLAYED:
        raise UsageError(f"{rule.kind} alerts cannot be backtested (no stored data drives them)")
    windows, channel_kind = _channel_windows(settings, channel_id)
    report = run_backtest(unit_of_work, settings, [rule], from_ms, to_ms, progress=not as_json)
    sent = messages(report.fired, windows, channel_kind)
    if as_json:
        doc = {
            "alert_id": alert_id,
            "kind": str(rule.kind),
            "coin": rule.coin,
            "threshold": str(rule.threshold),
            "from_ms": from_ms,
            "to_ms": to_ms,
            "events": report.events,
            "held": report.held,
            "rearmed": report.rearmed,
            "fired": [f.to_dict() for f in report.fired],
            "channel_kind": channel_kind,
            "sent": [m.to_dict() for m in sent],
        }
        click.echo(json.dumps(doc))
        return
    what = (
        f"alert {alert_id}" if alert_id is not None else f"{rule.kind} {rule.coin} {rule.threshold}"
    )
    click.echo(
        f"{what}: {len(report.fired)} firing(s) over {report.events} stored event(s) "
        f"from {_when(from_ms)} to {_when(to_ms)}; {report.held} judgement(s) held"
        + ("" if rule.kind in EVENT_KINDS else f", {report.rearmed} re-arm(s)")
    )
    for fired in report.fired:
        click.echo(f"{_when(fired.event_time)}  {fired.message}")
    digests = sum(m.digest for m in sent)
    click.echo(
        f"would have sent {len(sent)} {channel_kind} message(s), {digests} of them digest(s)"
    )
    for message in sent:
        if message.digest:
            first = message.text.splitlines()[0]
            click.echo(f"{_when(message.at)}  digest: {first}")
