"""Which polled wallets are due, most urgent first, and how much of the budget a run may use.

Pure functions of their inputs (times come in as ``now_ms``); the poll task
(:mod:`tasks.maintenance.positions_poll`) reads the inputs from the database and Redis,
asks here, polls, and writes the new :class:`WalletState` back.

**Classes.** Every wallet the REST poller owns (tracked, not followed over WebSocket) is in
one cadence class, decided afresh at every run:

- ``hot`` — polled every ``POSITION_POLL_HOT_S`` (10 s): the wallet has an active
  ``liquidation_distance_below`` alert whose last known distance is within
  :data:`HOT_DISTANCE_FACTOR` times its threshold, or any other active alert naming the
  wallet (every wallet alert but the liquidation distance is about its positions changing,
  so it is hot however far anything is);
- ``active`` — every ``POSITION_POLL_INTERVAL_S`` (30 s): a fill of the wallet in
  ``user_fills``, or a change of its positions seen by the poller, within
  ``POSITION_POLL_ACTIVE_WINDOW_S``; and a wallet whose liquidation alert is far from its
  threshold or cannot be measured (no open position, no liquidation price): prices move,
  and the idle floor would be minutes;
- ``idle`` — every ``POSITION_POLL_IDLE_S`` (300 s): the rest.

**Due.** A wallet is due ``cadence`` after its last attempt (success or failure: a wallet
the exchange keeps refusing is not retried every run); a wallet never polled is due at
once. A run takes the wallets due by ``now + early`` (half a run period: a wallet falling due
between two runs is polled at the closer one), hot before active before idle, and within
a class the longest overdue first, as many as the run's :func:`allowance` allows. So when
the budget cannot cover every wallet, the idle wallets wait (their cadence stretches)
while the hot and active ones keep theirs.

**Allowance.** Position polling may use :data:`~runtime.rest_budget.SHARE` of
``REST_WEIGHT_PER_MINUTE`` (80 % of 1,000 = 800 weight, 400 ``clearinghouseState`` calls a
minute). A run may spend what that rate accrues over the time since the previous run
started (at most :data:`MAX_ELAPSED_TICKS` run periods): spending it evenly keeps room in
every minute for the hot wallets of the next runs, where a run that took the whole minute's
budget at once would leave them waiting until the next minute.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Final, Protocol

from runtime.rest_budget import LIGHT_WEIGHT, SHARE, Priority
from settings import Settings

WEIGHT_PER_CALL: Final = LIGHT_WEIGHT  # clearinghouseState (reference §7.1)
HOT_DISTANCE_FACTOR: Final = Decimal(2)
MAX_ELAPSED_TICKS: Final = 3  # a late run catches up on at most this many periods
LIQUIDATION_KIND: Final = "liquidation_distance_below"
_HUNDRED: Final = Decimal(100)


class CadenceClass(enum.StrEnum):
    HOT = "hot"
    ACTIVE = "active"
    IDLE = "idle"


CLASSES: Final = (CadenceClass.HOT, CadenceClass.ACTIVE, CadenceClass.IDLE)
_RANK: Final = {c: i for i, c in enumerate(CLASSES)}


@dataclass(frozen=True, slots=True)
class Cadence:
    """Seconds between two polls of a wallet, per class."""

    hot_s: float
    active_s: float
    idle_s: float

    @classmethod
    def from_settings(cls, settings: Settings) -> Cadence:
        return cls(
            settings.position_poll_hot_s,
            settings.position_poll_interval_s,
            settings.position_poll_idle_s,
        )

    def seconds(self, cadence_class: CadenceClass) -> float:
        if cadence_class is CadenceClass.HOT:
            return self.hot_s
        return self.active_s if cadence_class is CadenceClass.ACTIVE else self.idle_s


@dataclass(frozen=True, slots=True)
class WalletState:
    """What the poller keeps per wallet in Redis (``keys.POLL_WALLETS``)."""

    last: int | None = None  # ms of the last successful poll
    tried: int | None = None  # ms of the last attempt, successful or not
    cls: str | None = None  # the class it was polled in
    changed: int | None = None  # ms its positions were last seen to change
    fp: str | None = None  # digest of its open positions at the last complete poll

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes | None) -> WalletState:
        """A stored state; anything unreadable is a wallet never polled (it is polled now)."""
        if raw is None:
            return cls()
        try:
            data = json.loads(raw)
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()

        def ms(name: str) -> int | None:
            value = data.get(name)
            return value if isinstance(value, int) and not isinstance(value, bool) else None

        def text(name: str) -> str | None:
            value = data.get(name)
            return value if isinstance(value, str) else None

        return cls(ms("last"), ms("tried"), text("cls"), ms("changed"), text("fp"))


class _OpenPosition(Protocol):
    @property
    def coin(self) -> str: ...
    @property
    def szi(self) -> Decimal: ...


def fingerprint(positions: Iterable[_OpenPosition]) -> str:
    """A short digest of a wallet's open positions (coin and signed size): equal digests,
    same positions. Flat ones (szi 0) are left out."""
    text = ";".join(sorted(f"{p.coin}:{p.szi.normalize()}" for p in positions if p.szi != 0))
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class _LiquidationPosition(Protocol):
    @property
    def szi(self) -> Decimal: ...
    @property
    def liquidation_px(self) -> Decimal | None: ...
    @property
    def position_value(self) -> Decimal: ...


def liquidation_distance_pct(
    position: _LiquidationPosition | None, mark: Decimal | None
) -> Decimal | None:
    """``|mark - liquidation_px| / mark * 100`` as the alert judges it
    (``domain.alerts.judgement``); None when unknown: no open position or no liquidation
    price. Without a mark from the market view, the position's own (value / size, which
    the exchange computes at the mark) stands in."""
    if position is None or position.szi == 0 or position.liquidation_px is None:
        return None
    if mark is None or mark <= 0:
        mark = abs(position.position_value / position.szi)
    if mark <= 0:
        return None
    return abs(mark - position.liquidation_px) / mark * _HUNDRED


@dataclass(frozen=True, slots=True)
class WalletAlert:
    """An active alert naming a wallet."""

    wallet: str
    coin: str
    kind: str
    threshold: Decimal


def alert_classes(
    alerts: Iterable[WalletAlert], distances: Mapping[tuple[str, str], Decimal | None]
) -> dict[str, CadenceClass]:
    """Wallet → the class its alerts ask for (hot or active; see the module doc).
    ``distances``: (wallet, coin) → last known liquidation distance in %, None unknown."""
    out: dict[str, CadenceClass] = {}
    for alert in alerts:
        wallet = alert.wallet.lower()
        if alert.kind != LIQUIDATION_KIND:
            out[wallet] = CadenceClass.HOT
            continue
        distance = distances.get((wallet, alert.coin))
        near = distance is not None and distance <= alert.threshold * HOT_DISTANCE_FACTOR
        if near:
            out[wallet] = CadenceClass.HOT
        else:
            out.setdefault(wallet, CadenceClass.ACTIVE)
    return out


def classify(
    wallet: str,
    state: WalletState,
    alerted: Mapping[str, CadenceClass],
    last_fill_ms: Mapping[str, int],
    now_ms: int,
    active_window_ms: int,
) -> CadenceClass:
    """The wallet's class now."""
    by_alert = alerted.get(wallet)
    if by_alert is CadenceClass.HOT:
        return CadenceClass.HOT
    since = now_ms - active_window_ms
    if (
        by_alert is CadenceClass.ACTIVE
        or last_fill_ms.get(wallet, since - 1) >= since
        or (state.changed is not None and state.changed >= since)
    ):
        return CadenceClass.ACTIVE
    return CadenceClass.IDLE


def due_ms(state: WalletState, cadence_class: CadenceClass, cadence: Cadence) -> int:
    """When the wallet is next due (0: never polled, due at once)."""
    attempts = [t for t in (state.last, state.tried) if t is not None]
    if not attempts:
        return 0
    return max(attempts) + int(cadence.seconds(cadence_class) * 1000)


@dataclass(frozen=True, slots=True)
class Candidate:
    wallet: str
    cls: CadenceClass
    due_ms: int


def due_wallets(
    classes: Mapping[str, CadenceClass],
    states: Mapping[str, WalletState],
    cadence: Cadence,
    now_ms: int,
    early_ms: int,
) -> list[Candidate]:
    """The wallets due by ``now_ms + early_ms``, most urgent first: class (hot, active,
    idle), then the longest overdue, then the address (a stable order)."""
    horizon = now_ms + early_ms
    out = []
    for wallet, cadence_class in classes.items():
        due = due_ms(states.get(wallet, WalletState()), cadence_class, cadence)
        if due <= horizon:
            out.append(Candidate(wallet, cadence_class, due))
    out.sort(key=lambda c: (_RANK[c.cls], c.due_ms, c.wallet))
    return out


def polls_per_minute(rest_weight_per_minute: int) -> float:
    """The ``clearinghouseState`` calls a minute position polling may make."""
    return rest_weight_per_minute * SHARE[Priority.POSITIONS] / WEIGHT_PER_CALL


def allowance(rest_weight_per_minute: int, elapsed_s: float | None, tick_s: float) -> int:
    """Polls this run may make: the rate accrued since the previous run began (one period
    when unknown; at most :data:`MAX_ELAPSED_TICKS` periods), at least one."""
    if elapsed_s is None or elapsed_s < 0:
        elapsed_s = tick_s
    elapsed_s = min(elapsed_s, tick_s * MAX_ELAPSED_TICKS)
    return max(1, int(polls_per_minute(rest_weight_per_minute) * elapsed_s / 60))


@dataclass(frozen=True, slots=True)
class Shortfall:
    """The budget cannot poll every class at its cadence."""

    needed_per_minute: float
    capacity_per_minute: float
    hot_needed_per_minute: float
    idle_every_s: float | None  # the idle cadence the budget allows (None: none at all)

    def message(self, counts: Mapping[CadenceClass, int], cadence: Cadence) -> str:
        head = (
            f"{sum(counts.values())} polled wallets (hot {counts.get(CadenceClass.HOT, 0)}, "
            f"active {counts.get(CadenceClass.ACTIVE, 0)}, idle {counts.get(CadenceClass.IDLE, 0)})"
            f" need {self.needed_per_minute:.0f} clearinghouseState polls a minute; the REST "
            f"budget allows {self.capacity_per_minute:.0f} (80 % of REST_WEIGHT_PER_MINUTE, "
            "2 weight each)"
        )
        if self.hot_needed_per_minute > self.capacity_per_minute:
            return head + ": even hot wallets are polled less often than POSITION_POLL_HOT_S"
        if self.idle_every_s is None:
            return head + ": idle wallets are not polled at all while this lasts"
        return (
            head + f": idle wallets are polled about every {self.idle_every_s:.0f} s "
            f"instead of {cadence.idle_s:.0f} s (POSITION_POLL_IDLE_S)"
        )


def shortfall(
    counts: Mapping[CadenceClass, int], cadence: Cadence, rest_weight_per_minute: int
) -> Shortfall | None:
    """None when the budget covers every class at its cadence."""
    need = {c: counts.get(c, 0) * 60.0 / cadence.seconds(c) for c in CLASSES}
    capacity = polls_per_minute(rest_weight_per_minute)
    total = sum(need.values())
    if total <= capacity:
        return None
    left = capacity - need[CadenceClass.HOT] - need[CadenceClass.ACTIVE]
    idle = counts.get(CadenceClass.IDLE, 0)
    idle_every = idle * 60.0 / left if left > 0 and idle else None
    return Shortfall(total, capacity, need[CadenceClass.HOT], idle_every)


def count_classes(classes: Iterable[CadenceClass]) -> dict[CadenceClass, int]:
    out = dict.fromkeys(CLASSES, 0)
    for c in classes:
        out[c] += 1
    return out


def overdue(candidates: Sequence[Candidate], polled: Iterable[str], now_ms: int) -> dict[str, int]:
    """Per class, the wallets already past their due time that this run did not poll."""
    done = set(polled)
    out = dict.fromkeys((c.value for c in CLASSES), 0)
    for c in candidates:
        if c.due_ms <= now_ms and c.wallet not in done:
            out[c.cls.value] += 1
    return out


def state_after_poll(
    before: WalletState,
    cadence_class: CadenceClass,
    now_ms: int,
    ok: bool,
    digest: str | None,
) -> WalletState:
    """The wallet's state after an attempt. ``digest``: the fingerprint of a complete
    state (None when the state was incomplete or the poll failed: change unknown)."""
    if not ok:
        return WalletState(before.last, now_ms, before.cls, before.changed, before.fp)
    changed = before.changed
    if digest is not None and before.fp is not None and digest != before.fp:
        changed = now_ms
    return WalletState(
        now_ms, now_ms, cadence_class.value, changed, digest if digest is not None else before.fp
    )
