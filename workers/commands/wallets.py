"""``hyperwatch wallets``: the wallets a subscriber follows (liquidation-distance alerts
need one). Tracking an address twice is a no-op; the tier's wallet quota applies.

``track --file PATH`` (``-`` for stdin) takes one address per line; blank lines and
everything after a ``#`` are ignored, addresses are lowercased. It is all or nothing: every
bad line is reported (line number, what is wrong) and then nothing is tracked, exit 2 —
so the corrected file can be run again as it is (tracking is idempotent), and a typo
never leaves a half-imported list behind. The same holds for the quota: a file whose new
wallets would pass the tier's quota tracks none of them.

``list`` shows for each wallet how it is followed: over WebSocket (the first
``WS_USER_LIMIT`` of ``TRACKED_WALLETS`` per ingester shard) or polled over REST, and for
polled ones the cadence class of their last poll (hot, active, idle: see docs/OPERATIONS.md,
"Wallets: WebSocket and polling"), that cadence and when that poll was; and the newest
fill in ``user_fills`` (the wallet's last activity).
"""

from __future__ import annotations

import datetime as dt
import sys
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

import click
import redis

from domain.alerts.manage import track_wallet, track_wallets, untrack_wallet
from models.repositories import PollingRepository, TrackedWalletRepository
from runtime import keys
from runtime.redis_clients import cache_client
from runtime.wallets import websocket_wallets
from settings import ADDRESS_PATTERN, Settings, redact_url
from tasks.maintenance.poll_schedule import Cadence, CadenceClass, WalletState
from workers.commands.users import announce_changes, find_user, redis_client, table, unit_of_work
from workers.context import UsageError, current_settings, one_line

PAGE = 1000


@click.group()
def wallets() -> None:
    """Tracked wallets."""


@dataclass(frozen=True)
class BadLine:
    number: int
    text: str
    reason: str


def address_problem(text: str) -> str | None:
    """Why ``text`` (one line, comment stripped) is not an address; None when it is one."""
    if any(c.isspace() for c in text):
        return "one address per line (found spaces)"
    if not text.lower().startswith("0x"):
        return "an address starts with 0x"
    digits = len(text) - 2
    if digits != 40:
        return f"{digits} characters after 0x, an address has 40 hex digits"
    if not ADDRESS_PATTERN.match(text.lower()):
        return "not hexadecimal (0-9, a-f after 0x)"
    return None


LABEL_MAX = 100  # the column's length (models/tracked_wallet.py)


def label_problem(text: str) -> str | None:
    """Why ``text`` cannot be a wallet's label; None when it can. NUL and lone surrogates
    (an undecodable byte of argv) are refused — the database would refuse them with an
    encoding error — as is more than the column holds; anything else is a label, stored as
    typed, as a channel's name is (listings print labels through ``one_line``)."""
    if len(text) > LABEL_MAX:
        return f"--label: at most {LABEL_MAX} characters, got {len(text)}"
    if any(c == "\x00" or unicodedata.category(c) == "Cs" for c in text):
        return "--label: text without NUL or undecodable bytes"
    return None


def read_addresses(lines: Iterable[str]) -> tuple[list[str], list[BadLine]]:
    """(addresses lowercased in file order, bad lines). Blank lines and ``#`` comments are
    skipped. Pure."""
    good: list[str] = []
    bad: list[BadLine] = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        problem = address_problem(text)
        if problem is None:
            good.append(text.lower())
        else:
            bad.append(BadLine(number, text, problem))
    return good, bad


def _lines(path: str) -> list[str]:
    try:
        if path == "-":
            return sys.stdin.read().splitlines()
        with open(path, encoding="utf-8") as handle:
            return handle.read().splitlines()
    except OSError as exc:
        raise UsageError(f"--file: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"--file: {path} is not UTF-8 text ({exc.reason})") from None


@wallets.command("track")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.argument("address", required=False)
@click.option(
    "--file",
    "path",
    default=None,
    help="Addresses, one per line ('-': stdin); blank lines and # comments ignored. "
    "All or nothing: any bad line and nothing is tracked (exit 2).",
)
@click.option("--label", default="", help="A label for listings (every address of a --file).")
def track(user_ref: str, address: str | None, path: str | None, label: str) -> None:
    """Follow a wallet's positions (ADDRESS, or every address of --file)."""
    if (address is None) == (path is None):
        raise UsageError("give one ADDRESS or --file PATH")
    if (problem := label_problem(label)) is not None:
        raise UsageError(problem)
    settings = current_settings()
    if address is not None:
        with unit_of_work() as session:
            user = find_user(session, user_ref)
            wallet, created = track_wallet(session, settings, user, address, label)
        state = "now tracks" if created else "already tracks"
        click.echo(f"{user.email} {state} {wallet.address}")
        return
    assert path is not None
    name = "stdin" if path == "-" else path
    good, bad = read_addresses(_lines(path))
    if bad:
        for line in bad:
            click.echo(f"hyperwatch: {name} line {line.number}: {one_line(line.text)[:60]!r}: "
                       f"{line.reason}", err=True)  # fmt: skip
        raise UsageError(f"{len(bad)} bad line(s) in {name}; nothing tracked")
    if not good:
        raise UsageError(f"no address in {name}; nothing tracked")
    with unit_of_work() as session:
        user = find_user(session, user_ref)
        new, known = track_wallets(session, settings, user, good, label)
    click.echo(f"{user.email} now tracks {len(new)} new wallet(s); {len(known)} already tracked")


@wallets.command("untrack")
@click.option("--user", "user_ref", required=True, help="Email or id.")
@click.argument("address")
def untrack(user_ref: str, address: str) -> None:
    """Stop following a wallet; its wallet alerts (liquidation distance, position change,
    liquidated) are deactivated."""
    client = redis_client()
    with unit_of_work() as session:
        user = find_user(session, user_ref)
        paused = untrack_wallet(session, user, address)
    announce_changes(client, paused)
    click.echo(f"{user.email} no longer tracks {address.strip().lower()}")
    if paused:
        click.echo(f"deactivated wallet alert(s): {', '.join(map(str, paused))}")


def _when(ms: int | None) -> str | None:
    if ms is None:
        return None
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _poll_states(settings: Settings, addresses: list[str]) -> dict[str, WalletState] | None:
    """The poller's state per wallet, or None when Redis cannot be read (said on stderr:
    the listing itself comes from the database and is still shown)."""
    if not addresses:
        return {}
    client = cache_client(settings, socket_timeout=3, socket_connect_timeout=3)
    try:
        raw = client.hmget(keys.POLL_WALLETS.name(), addresses)
    except (redis.RedisError, OSError) as exc:
        click.echo(
            f"hyperwatch: redis {redact_url(settings.redis_url)} unreachable ({exc}); "
            "poll columns unknown (?)",
            err=True,
        )
        return None
    finally:
        client.close()
    return {a: WalletState.from_json(r) for a, r in zip(addresses, raw, strict=True) if r}


def _cadence(state: WalletState | None, cadence: Cadence) -> tuple[str | None, str | None]:
    if state is None or state.cls not in {c.value for c in CadenceClass}:
        return None, None
    cadence_class = CadenceClass(state.cls)
    return cadence_class.value, f"{cadence.seconds(cadence_class):g}s"


@wallets.command("list")
@click.option("--user", "user_ref", default=None, help="Only this subscriber's (email or id).")
def list_wallets(user_ref: str | None) -> None:
    """Tracked wallets: how each is followed, its last poll and its last activity."""
    settings = current_settings()
    rows: list[tuple[object, ...]] = []
    with unit_of_work() as session:
        filters = {"user_id": find_user(session, user_ref).id} if user_ref else None
        repository = TrackedWalletRepository(session)
        tracked: list[tuple[object, object, str, str]] = []
        if filters is None:
            tracked += [
                ("-", "settings", w.lower(), "TRACKED_WALLETS") for w in settings.tracked_wallets
            ]
        offset = 0
        while True:
            page = repository.list(filters, limit=PAGE, offset=offset)
            tracked += [(w.id, w.user_id, w.address, one_line(w.label) or "-") for w in page]
            if len(page) < PAGE:
                break
            offset += PAGE
        addresses = list(dict.fromkeys(address for _i, _u, address, _l in tracked))
        activity = PollingRepository(session).newest_fills(addresses)
    on_socket = websocket_wallets(
        settings.tracked_wallets, settings.ws_user_limit, settings.shard[1]
    )
    states = _poll_states(settings, [a for a in addresses if a not in on_socket])
    cadence = Cadence.from_settings(settings)
    for wallet_id, user_id, address, label in tracked:
        if address in on_socket:
            followed, cls, every, polled = "websocket", None, None, None
        elif states is None:
            followed, cls, every, polled = "polled", "?", "?", "?"
        else:
            state = states.get(address)
            cls, every = _cadence(state, cadence)
            followed, polled = "polled", _when(state.last if state else None)
        rows.append(
            (wallet_id, user_id, address, label, followed, cls, every, polled,
             _when(activity.get(address)))
        )  # fmt: skip
    table(
        rows,
        ("ID", "USER", "ADDRESS", "LABEL", "FOLLOWED", "CLASS", "CADENCE", "LAST POLL",
         "LAST ACTIVITY"),
    )  # fmt: skip
