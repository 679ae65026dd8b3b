"""``POST /info``: the REST info requests the simulator answers (reference §7).

:meth:`InfoService.answer` maps a request body to ``(status, payload)``:

* ``meta`` → ``{"universe": [...], "marginTables": [...]}``
* ``metaAndAssetCtxs`` → ``[meta, ctxs]``, ctxs joined to the universe by index (delisted
  coins included, with their null fields)
* ``spotMeta`` → ``{"universe": [], "tokens": [USDC]}`` (no spot pairs);
  ``spotMetaAndAssetCtxs`` → ``[spotMeta, []]``; ``perpDexs`` → ``[null]`` (only the
  default dex). These are what stock clients ask at start-up.
* ``allMids`` → flat ``{coin: mid}`` (no ``mids`` wrapper, unlike the WS frame)
* ``recentTrades`` (``coin``) → the latest trades of the coin, oldest first; null for a
  coin the exchange does not list
* ``l2Book`` (``coin``, optional ``nSigFigs``, ``mantissa``) → ``{coin, time, levels:
  [bids, asks]}``, up to 20 levels a side around the market's touch (:mod:`.book`); null
  for a coin the exchange does not list
* ``candleSnapshot`` (``req``: ``coin``, ``interval``, ``startTime``, optional ``endTime``)
  → the bars overlapping the range, oldest first, folded from the trades the simulator
  generated (:mod:`.candles`: the 5,000 most recent 1m bars are kept, larger intervals
  are aggregated from them)
* ``fundingHistory`` (``coin``, ``startTime``, optional ``endTime``, inclusive) → up to 500
  hourly rows ``{coin, fundingRate, premium, time}`` of the rates the contexts settled
  each hour (and the ledger charged), oldest first, so the last time is the next page's
  ``startTime``
* ``clearinghouseState`` (``user``) → the §2.9 inner object (empty for unknown wallets)
* ``userFills`` (``user``) → up to 2000 most recent fills, newest first
* ``userFillsByTime`` (``user``, ``startTime``, optional ``endTime``, inclusive) → up to
  2000 fills, oldest first, so the last time is the next page's ``startTime``

Both fill reads use the wallet's kept fills: the most recent ``--fills-kept`` (default 2000; the
exchange keeps 10,000 reachable), so older pages come back empty sooner than live. A
``dex`` field (always the default dex here) and ``aggregateByTime`` are accepted and
ignored. An omitted ``endTime`` means now.

A body that is not JSON is HTTP 400; an unknown ``type`` or a missing/ill-typed field is
HTTP 422 with a text message, the way the exchange's JSON extractor answers.

Every request is weighed as the exchange weighs it (reference §7.1, :func:`request_weight`):
2 for ``l2Book``, ``allMids``, ``clearinghouseState`` (and the other light types), 60 for
``userRole``, 20 for every other type, plus one per 20 items returned by the paginated
reads (per 60 for ``candleSnapshot``). A refused request is charged its type's base weight
(20 when the type is unknown): a client must not count on errors being free. The server adds
each weight to the simulator's per-minute accounting (``stats``), so tests can check a
client against the exchange's 1,200 a minute as the exchange would count it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from workers.simulator.book import MANTISSAS, SIG_FIGS, l2_book
from workers.simulator.candles import INTERVALS
from workers.simulator.contexts import AssetContexts
from workers.simulator.ledger import Ledger
from workers.simulator.market import Trade
from workers.simulator.universe import Universe, spot_meta

MAX_FILLS = 2000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")

# Weights (reference §7.1).
LIGHT_TYPES = frozenset(
    {"l2Book", "allMids", "clearinghouseState", "orderStatus", "spotClearinghouseState",
     "exchangeStatus"}
)  # fmt: skip
LIGHT_WEIGHT = 2
BASE_WEIGHT = 20
TYPE_WEIGHTS = {"userRole": 60}
PER_20_ITEMS = frozenset(
    {"recentTrades", "historicalOrders", "userFills", "userFillsByTime", "fundingHistory",
     "userFunding", "nonUserFundingUpdates", "twapHistory", "userTwapSliceFills",
     "userTwapSliceFillsByTime", "delegatorHistory", "delegatorRewards", "validatorStats"}
)  # fmt: skip
PER_60_ITEMS = frozenset({"candleSnapshot"})


def request_weight(kind: Any, payload: Any = None) -> int:
    """The exchange's weight for a request of type ``kind`` answered with ``payload``."""
    if kind in LIGHT_TYPES:
        weight = LIGHT_WEIGHT
    else:
        weight = TYPE_WEIGHTS.get(kind, BASE_WEIGHT) if isinstance(kind, str) else BASE_WEIGHT
    items = len(payload) if isinstance(payload, list) else 0
    if kind in PER_20_ITEMS:
        weight += items // 20
    elif kind in PER_60_ITEMS:
        weight += items // 60
    return weight


class InfoError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unprocessable(detail: str) -> InfoError:
    return InfoError(422, f"Failed to deserialize the JSON body into the target type: {detail}")


def _field(
    body: Mapping[str, Any], name: str, kind: type, required: bool = True, within: str = ""
) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise _unprocessable(
                f"{within}: missing field `{name}`" if within else f"missing field `{name}`"
            )
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        path = f"{within}.{name}" if within else name
        raise _unprocessable(f"{path}: invalid type, expected {kind.__name__}")
    return value


def _time(body: Mapping[str, Any], name: str, required: bool = True, within: str = "") -> Any:
    value: int | None = _field(body, name, int, required, within)
    if value is not None and value < 0:
        path = f"{within}.{name}" if within else name
        raise _unprocessable(f"{path}: invalid value: integer `{value}`, expected u64")
    return value


def _choice(body: Mapping[str, Any], name: str, allowed: tuple[Any, ...], kind: type) -> Any:
    value = _field(body, name, kind, required=False)
    if value is not None and value not in allowed:
        expected = ", ".join(str(a) for a in allowed)
        raise _unprocessable(f"{name}: invalid value `{value}`, expected one of {expected}")
    return value


def _user(body: Mapping[str, Any]) -> str:
    user: str = _field(body, "user", str)
    if not _ADDRESS.match(user):
        raise _unprocessable("user: invalid address")
    return user.lower()


class InfoService:
    """Answers info requests from the exchange's live state. Owned by the server's loop."""

    def __init__(
        self,
        universe: Universe,
        contexts: AssetContexts,
        ledger: Ledger,
        recent: Mapping[str, deque[Trade]],
        now_ms: Callable[[], int],
    ) -> None:
        self.universe = universe
        self.contexts = contexts
        self.ledger = ledger
        self.recent = recent
        self.now_ms = now_ms
        self._handlers: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "meta": lambda _b: self.universe.meta(),
            "metaAndAssetCtxs": self._meta_and_ctxs,
            "spotMeta": lambda _b: spot_meta(),
            "spotMetaAndAssetCtxs": lambda _b: [spot_meta(), []],
            "perpDexs": lambda _b: [None],
            "allMids": lambda _b: self.contexts.mids(),
            "recentTrades": self._recent_trades,
            "l2Book": self._l2_book,
            "candleSnapshot": self._candle_snapshot,
            "fundingHistory": self._funding_history,
            "clearinghouseState": self._clearinghouse_state,
            "userFills": self._user_fills,
            "userFillsByTime": self._user_fills_by_time,
        }

    def answer_bytes(self, body: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for a raw request body."""
        status, reply, content_type, _weight = self.answer_weighed(body)
        return status, reply, content_type

    def answer_weighed(self, body: bytes) -> tuple[int, bytes, str, int]:
        """(status, body, content type, the exchange's weight) for a raw request body."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            reason = f"Failed to parse the request body as JSON: {exc}".encode()
            return 400, reason, "text/plain", BASE_WEIGHT
        kind = request.get("type") if isinstance(request, dict) else None
        try:
            payload = self.answer(request)
        except InfoError as exc:
            return exc.status, exc.message.encode(), "text/plain", request_weight(kind)
        return 200, orjson.dumps(payload), "application/json", request_weight(kind, payload)

    def answer(self, request: Any) -> Any:
        """The payload for a decoded request; raises :class:`InfoError` when refused."""
        if not isinstance(request, dict):
            raise _unprocessable("invalid type, expected an object")
        kind = request.get("type")
        if not isinstance(kind, str):
            raise _unprocessable("missing field `type`")
        handler = self._handlers.get(kind)
        if handler is None:
            raise _unprocessable(
                f"unknown variant `{kind}`, expected one of {', '.join(self._handlers)}"
            )
        return handler(request)

    def _meta_and_ctxs(self, _body: Mapping[str, Any]) -> list[Any]:
        return [
            self.universe.meta(),
            [self.contexts.ctx(spec.name) for spec in self.universe.specs],
        ]

    def _recent_trades(self, body: Mapping[str, Any]) -> list[Trade] | None:
        coin: str = _field(body, "coin", str)
        if self.universe.get(coin) is None:
            return None
        return list(self.recent.get(coin, ()))

    def _l2_book(self, body: Mapping[str, Any]) -> dict[str, Any] | None:
        coin: str = _field(body, "coin", str)
        n_sig_figs: int | None = _choice(body, "nSigFigs", SIG_FIGS, int)
        mantissa: int | None = _choice(body, "mantissa", MANTISSAS, int)
        if mantissa is not None and n_sig_figs != 5:
            raise _unprocessable("mantissa: only allowed with nSigFigs 5")
        spec = self.universe.get(coin)
        if spec is None:
            return None
        touch = self.contexts.market.best_bid_ask(coin)
        return l2_book(spec, touch, self.now_ms(), n_sig_figs, mantissa)

    def _candle_snapshot(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        req: dict[str, Any] = _field(body, "req", dict)
        coin: str = _field(req, "coin", str, within="req")
        interval: str = _field(req, "interval", str, within="req")
        if interval not in INTERVALS:
            raise _unprocessable(
                f"req.interval: unknown variant `{interval}`, expected one of {', '.join(INTERVALS)}"
            )
        start: int = _time(req, "startTime", within="req")
        end: int | None = _time(req, "endTime", required=False, within="req")
        bars = self.contexts.market.candles(coin)
        if bars is None:
            return []
        return bars.snapshot(interval, start, end if end is not None else self.now_ms())

    def _funding_history(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        coin: str = _field(body, "coin", str)
        start: int = _time(body, "startTime")
        end: int | None = _time(body, "endTime", required=False)
        return self.contexts.funding_history(coin, start, end if end is not None else self.now_ms())

    def _clearinghouse_state(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self.ledger.clearinghouse_state(_user(body), self.contexts.marks(), self.now_ms())

    def _user_fills(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        fills = self.ledger.fills(_user(body))
        return fills[::-1][:MAX_FILLS]

    def _user_fills_by_time(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        user = _user(body)
        start: int = _field(body, "startTime", int)
        end: int | None = _field(body, "endTime", int, required=False)
        upper = end if end is not None else self.now_ms()
        chosen = [f for f in self.ledger.fills(user) if start <= f["time"] <= upper]
        return chosen[:MAX_FILLS]
