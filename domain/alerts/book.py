"""Which alerts this worker evaluates: its threshold indexes, kept in step with the database.

Every alert write — the CLI's add / pause / resume / rm, a firing, a re-arm, an expiry —
calls :func:`announce` after its commit: ``INCR keys.ALERTS_VERSION`` and the changed ids
recorded in ``keys.ALERTS_CHANGES`` (a sorted set scored by version; the newest
:data:`CHANGES_KEPT` kept). A worker reads the version at the start of every task (one
``GET`` in a pipeline it sends anyway) and, when behind, reloads only the changed ids — or
everything when it fell further behind than the log reaches, or Redis lost the key.

Self-healing, so no single missed announcement leaves an alert wrong for long:

- a candidate the database no longer has, or has in another state (fired elsewhere,
  paused), is dropped or re-placed as soon as a tick makes it a candidate;
- every :data:`CATCH_UP_S` the alerts updated since the previous catch-up (with slack) are
  reloaded: covers a writer that died between its commit and its announcement.

The book holds ids in two :class:`~domain.alerts.index.ThresholdIndex` — FIRE (armed) and
REARM (disarmed recurring, at their re-arm level) — and the few *direct* rules (kinds with
no single level: windows, liquidation distance, stale data) in full, because evaluation
needs their coin, wallet and window to know what data to fetch. The event kinds are direct
rules too; :meth:`AlertBook.event_rules` lists the armed ones of a coin, cheapest threshold
first, and :meth:`AlertBook.floors` the cheapest threshold per coin (the ingest workers'
prefilter, ``tasks.alerts.forward``, keeps a book of just those kinds: ``kinds``). Not
thread-safe: one book per worker process.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Iterable, Sequence
from decimal import Decimal
from typing import Any, Final

import redis
from sqlalchemy.orm import Session

from domain.alerts.definition import EVENT_KINDS, AlertKind, AlertRule, InvalidAlert, parse_rule
from domain.alerts.index import Purpose, ThresholdIndex, index_key
from domain.alerts.view import Series
from models.alert import Alert
from models.repositories import AlertRepository
from runtime import keys
from runtime.clock import SYSTEM_CLOCK, Clock, utc_now

log = logging.getLogger(__name__)

VERSION_KEY: Final = keys.ALERTS_VERSION.name()
CHANGES_KEY: Final = keys.ALERTS_CHANGES.name()
CHANGES_KEPT: Final = 10_000
CATCH_UP_S: Final = 60.0
CATCH_UP_SLACK: Final = dt.timedelta(minutes=2)

# KEYS[1] version, KEYS[2] changes; ARGV[1] comma-separated ids, ARGV[2] entries kept.
_ANNOUNCE: Final = """
local v = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], v, v .. ':' .. ARGV[1])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -(tonumber(ARGV[2]) + 1))
return v
"""

# The series each windowed kind measures (its history must be kept and mirrored).
WINDOW_SERIES: Final = {
    AlertKind.PRICE_MOVE_PCT: Series.MID,
    AlertKind.OI_CHANGE_PCT: Series.OPEN_INTEREST,
}
_COLUMNS: Final = tuple(c.key for c in Alert.__table__.columns)


def announce(client: redis.Redis, alert_ids: Iterable[int]) -> int | None:
    """Tell every worker these alerts changed (call after the commit). Returns the new
    version, or None when there was nothing to announce."""
    ids = sorted({int(i) for i in alert_ids})
    if not ids:
        return None
    script = client.register_script(_ANNOUNCE)
    return int(
        script(keys=[VERSION_KEY, CHANGES_KEY], args=[",".join(map(str, ids)), CHANGES_KEPT])
    )


def rule_from_row(row: Any) -> AlertRule | None:
    """The rule of a stored alert (ORM object or plain row); None, logged, if the stored
    definition is not valid any more (it is then never evaluated)."""
    data = row._mapping if hasattr(row, "_mapping") else {c: getattr(row, c) for c in _COLUMNS}
    try:
        return parse_rule(data)
    except InvalidAlert as exc:
        log.warning("alert %s cannot be evaluated and is skipped: %s", data.get("id"), exc)
        return None


def _parse_changes(members: Sequence[bytes]) -> set[int]:
    ids: set[int] = set()
    for member in members:
        _version, _, listed = member.decode().partition(":")
        ids.update(int(i) for i in listed.split(",") if i)
    return ids


class AlertBook:
    """This worker's indexes of the active alerts (of ``kinds`` only, when given), and what
    evaluating them needs."""

    def __init__(
        self, clock: Clock = SYSTEM_CLOCK, kinds: Collection[AlertKind] | None = None
    ) -> None:
        self._clock = clock
        self.kinds = None if kinds is None else frozenset(kinds)
        self.fire = ThresholdIndex(Purpose.FIRE)
        self.rearm = ThresholdIndex(Purpose.REARM)
        self.direct: dict[int, AlertRule] = {}
        self.version: int | None = None
        self._caught_up_mono = clock.monotonic()
        self._caught_up_wall = utc_now(clock)
        self._plans: dict[str, Any] | None = None

    # --- keeping in step -----------------------------------------------------------------

    def sync(self, client: redis.Redis, session: Callable[[], Any], remote: int) -> None:
        """Bring the book to the database's state as of version ``remote`` (see module).
        ``session`` opens a unit of work (``Database.session``)."""
        if self.version is None or remote < self.version:
            with session() as s:
                self.load_all(s)
            self.version = remote
            return
        if remote > self.version:
            members = client.zrangebyscore(CHANGES_KEY, self.version + 1, remote)
            if len(members) != remote - self.version:
                log.info("alert change log does not reach back to %d; reloading", self.version)
                with session() as s:
                    self.load_all(s)
            else:
                with session() as s:
                    self.reload(s, _parse_changes(members))
            self.version = remote
        if self._clock.monotonic() - self._caught_up_mono >= CATCH_UP_S:
            self._catch_up(session)

    def _catch_up(self, session: Callable[[], Any]) -> None:
        started = utc_now(self._clock)
        with session() as s:
            ids = AlertRepository(s).changed_since(self._caught_up_wall - CATCH_UP_SLACK)
            self.reload(s, ids)
        self._caught_up_mono = self._clock.monotonic()
        self._caught_up_wall = started

    def load_all(self, session: Session) -> None:
        """Rebuild both indexes from every active alert (one streamed query)."""
        kinds = None if self.kinds is None else [str(k) for k in self.kinds]
        rows = AlertRepository(session).active_rows(kinds=kinds)
        rules = [r for r in map(rule_from_row, rows) if r]
        self.fire = ThresholdIndex.build(rules, Purpose.FIRE)
        self.rearm = ThresholdIndex.build(rules, Purpose.REARM)
        self.direct = {r.id: r for r in rules if index_key(r) is None}
        self._plans = None
        log.info("alert book loaded: %d armed, %d re-armable", len(self.fire), len(self.rearm))

    def reload(self, session: Session, alert_ids: Iterable[int]) -> None:
        """Re-read these alerts: place the active ones, drop the rest."""
        ids = set(alert_ids)
        if not ids:
            return
        rows = AlertRepository(session).rows_by_ids(sorted(ids))
        for row in rows:
            rule = rule_from_row(row) if row.active else None
            if rule is None or (self.kinds is not None and rule.kind not in self.kinds):
                self.drop(row.id)
            else:
                self.put(rule)
            ids.discard(row.id)
        for gone in ids:
            self.drop(gone)

    def put(self, rule: AlertRule) -> None:
        """Index ``rule`` where it belongs now (armed → FIRE, disarmed recurring → REARM)."""
        self.fire.add(rule)
        self.rearm.add(rule)
        if index_key(rule) is None:
            self.direct[rule.id] = rule
            self._plans = None

    def drop(self, alert_id: int) -> None:
        self.fire.remove(alert_id)
        self.rearm.remove(alert_id)
        if self.direct.pop(alert_id, None) is not None:
            self._plans = None

    def misplaced(self, rule: AlertRule) -> bool:
        """Whether the index disagrees with ``rule``'s stored state."""
        return (rule.id in self.fire) != self.fire.belongs(rule) or (
            rule.id in self.rearm
        ) != self.rearm.belongs(rule)

    # --- what evaluation needs -------------------------------------------------------------

    def _plan(self) -> dict[str, Any]:
        if self._plans is None:
            windows: dict[Series, dict[str, int]] = {Series.MID: {}, Series.OPEN_INTEREST: {}}
            wallets: dict[str, set[str]] = {}
            events: dict[tuple[AlertKind, str], list[AlertRule]] = {}
            for rule in self.direct.values():
                if rule.kind in EVENT_KINDS:
                    if rule.armed:
                        events.setdefault((rule.kind, rule.coin), []).append(rule)
                    continue
                series = WINDOW_SERIES.get(rule.kind)
                if series is not None:
                    span = (rule.window_s or 0) * 1000
                    per_coin = windows[series]
                    per_coin[rule.coin] = max(per_coin.get(rule.coin, 0), span)
                elif rule.kind is AlertKind.LIQUIDATION_DISTANCE_BELOW and rule.wallet:
                    wallets.setdefault(rule.coin, set()).add(rule.wallet)
            for rules in events.values():
                rules.sort(key=lambda r: (r.threshold, r.id))
            floors: dict[AlertKind, dict[str, Decimal]] = {kind: {} for kind in EVENT_KINDS}
            for (kind, coin), rules in events.items():
                floors[kind][coin] = rules[0].threshold
            self._plans = {"windows": windows, "wallets": wallets, "events": events}
            self._plans["floors"] = floors
        return self._plans

    def history_windows(self, series: Series) -> dict[str, int]:
        """coin → the longest window (ms) of its direct alerts on ``series``."""
        windows: dict[Series, dict[str, int]] = self._plan()["windows"]
        return windows[series]

    def wallets(self, coin: str) -> set[str]:
        """Wallets with a liquidation-distance alert on ``coin``."""
        wallets: dict[str, set[str]] = self._plan()["wallets"]
        return wallets.get(coin, set())

    def event_rules(self, kind: AlertKind, coin: str) -> list[AlertRule]:
        """The armed rules of event kind ``kind`` on ``coin``, cheapest threshold first."""
        events: dict[tuple[AlertKind, str], list[AlertRule]] = self._plan()["events"]
        return events.get((kind, coin), [])

    def floors(self, kind: AlertKind) -> dict[str, Decimal]:
        """coin → the smallest threshold among the armed rules of event kind ``kind``: an
        event below it on that coin concerns no rule."""
        floors: dict[AlertKind, dict[str, Decimal]] = self._plan()["floors"]
        return floors[kind]

    def direct_candidates(
        self, coins: Iterable[str], kinds: frozenset[AlertKind]
    ) -> tuple[list[int], list[int]]:
        """Direct ids of ``kinds`` on ``coins``: (armed ones, re-armable ones)."""
        armed: list[int] = []
        rearmable: list[int] = []
        for coin in coins:
            for index, out in ((self.fire, armed), (self.rearm, rearmable)):
                for alert_id in index.direct(coin):
                    rule = self.direct.get(alert_id)
                    if rule is not None and rule.kind in kinds:
                        out.append(alert_id)
        return armed, rearmable

    def of_kind(self, kind: AlertKind) -> list[AlertRule]:
        return [rule for rule in self.direct.values() if rule.kind is kind]
