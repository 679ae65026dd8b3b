"""``POST /info``: the REST info requests the simulator answers (reference §7).

:meth:`InfoService.answer` maps a request body to ``(status, payload)``:

* ``meta`` → ``{"universe": [...], "marginTables": [...]}``
* ``metaAndAssetCtxs`` → ``[meta, ctxs]``, ctxs joined to the universe by index (delisted
  coins included, with their null fields)
* ``allMids`` → flat ``{coin: mid}`` (no ``mids`` wrapper, unlike the WS frame)
* ``recentTrades`` (``coin``) → the latest trades of the coin, oldest first; null for a
  coin the exchange does not list
* ``clearinghouseState`` (``user``) → the §2.9 inner object (empty for unknown wallets)
* ``userFills`` (``user``) → up to 2000 most recent fills, newest first
* ``userFillsByTime`` (``user``, ``startTime``, optional ``endTime``, inclusive) → up to
  2000 fills, oldest first, so the last time is the next page's ``startTime``

Both read the wallet's kept fills: the most recent ``--fills-kept`` (default 2000; the
exchange keeps 10,000 reachable), so older pages come back empty sooner than live.

A body that is not JSON is HTTP 400; an unknown ``type`` or a missing/ill-typed field is
HTTP 422 with a text message, the way the exchange's JSON extractor answers.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from workers.simulator.contexts import AssetContexts
from workers.simulator.ledger import Ledger
from workers.simulator.market import Trade
from workers.simulator.universe import Universe

MAX_FILLS = 2000
_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


class InfoError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _unprocessable(detail: str) -> InfoError:
    return InfoError(422, f"Failed to deserialize the JSON body into the target type: {detail}")


def _field(body: Mapping[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None:
        if required:
            raise _unprocessable(f"missing field `{name}`")
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _unprocessable(f"{name}: invalid type, expected {kind.__name__}")
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
            "allMids": lambda _b: self.contexts.mids(),
            "recentTrades": self._recent_trades,
            "clearinghouseState": self._clearinghouse_state,
            "userFills": self._user_fills,
            "userFillsByTime": self._user_fills_by_time,
        }

    def answer_bytes(self, body: bytes) -> tuple[int, bytes, str]:
        """(status, body, content type) for a raw request body."""
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            return 400, f"Failed to parse the request body as JSON: {exc}".encode(), "text/plain"
        try:
            return 200, orjson.dumps(self.answer(request)), "application/json"
        except InfoError as exc:
            return exc.status, exc.message.encode(), "text/plain"

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
