"""``hyperwatch gaps``: the completeness ledger — per coin and hour, what is stored and how
much of the hour lay inside gaps — and the gaps behind it (models/gap.py)."""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

import click
import orjson

from models.gap import Gap
from models.repositories import GapRepository
from workers.commands.users import table, unit_of_work
from workers.context import UsageError

_RELATIVE = re.compile(r"^(\d+)([mhd])$")
_UNIT_MS = {"m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_since(text: str, now_ms: int) -> int:
    """``90m``, ``24h``, ``7d`` before now, or an ISO date/time (UTC unless it says)."""
    match = _RELATIVE.match(text.strip())
    if match:
        return now_ms - int(match.group(1)) * _UNIT_MS[match.group(2)]
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"--since takes 90m, 24h, 7d or an ISO time such as 2026-12-01T10:00, got {text!r}"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def gap_dict(g: Gap, now_ms: int) -> dict[str, Any]:
    end = g.to_ms if g.to_ms is not None else now_ms
    return {
        "id": g.id,
        "stream": g.stream,
        "key": g.key,
        "from": _iso(g.from_ms),
        "to": _iso(g.to_ms) if g.to_ms is not None else None,
        "seconds": round(max(0, end - g.from_ms) / 1000, 3),
        "ended_by": g.ended_by,
        "status": g.status,
        "healed_by": g.healed_by,
        "filled": g.filled,
        "source": g.source,
    }


@click.command()
@click.option("--coin", default=None, help="Only this coin (a wallet address for userFills gaps).")
@click.option("--open", "only_open", is_flag=True, help="Only what is not yet filled.")
@click.option("--since", default="24h", show_default=True, help="90m, 24h, 7d or an ISO time.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document: ledger and gaps.")
def gaps(coin: str | None, only_open: bool, since: str, as_json: bool) -> None:
    """Completeness per coin and hour, and the gaps behind it."""
    now_ms = int(time.time() * 1000)
    since_ms = parse_since(since, now_ms)
    with unit_of_work() as session:
        repo = GapRepository(session)
        ledger = [r.to_dict() for r in repo.ledger(since_ms, now_ms, coin=coin, now_ms=now_ms)]
        listed = [
            gap_dict(g, now_ms)
            for g in repo.listing(key=coin, only_open=only_open, since_ms=since_ms)
        ]
    if only_open:
        ledger = [r for r in ledger if r["status"] == "open"]
    if as_json:
        click.echo(orjson.dumps({"ledger": ledger, "gaps": listed}, option=orjson.OPT_INDENT_2))
        return
    table(
        [
            (r["coin"], r["hour"][:13] + "h", r["trades"], r["open_s"], r["healed_s"], r["status"])
            for r in ledger
        ],
        ("COIN", "HOUR", "TRADES", "OPEN_S", "HEALED_S", "STATUS"),
    )
    click.echo()
    table(
        [
            (
                g["key"][:14],
                g["stream"],
                g["from"],
                g["to"] or "open",
                g["seconds"],
                g["ended_by"],
                g["status"],
                g["healed_by"] or "-",
                g["filled"],
            )
            for g in listed
        ],
        ("KEY", "STREAM", "FROM", "TO", "SECONDS", "ENDED_BY", "STATUS", "BY", "FILLED"),
    )
