"""Client → server WebSocket requests: pure parsing, normalisation and the server's replies.

:func:`parse_request` is total: any frame becomes exactly one request object, never an
exception. What it decides mirrors the exchange (reference §1.2-§1.7):

* ``{"method":"ping"}`` → :class:`Ping` (answered ``{"channel":"pong"}``).
* a well-formed ``subscribe``/``unsubscribe`` → :class:`Subscribe` / :class:`Unsubscribe`
  carrying the *normalised* subscription the ack echoes (optional parameters filled in,
  addresses lowercased).
* ``post`` with an integer ``id`` → :class:`Post`.
* anything else that does not fit the request grammar (not JSON, unknown method or type,
  a coin list, a missing field) → :class:`ParseError`, answered with an error frame whose
  data is ``Error parsing JSON into valid websocket request: <the frame>``.
* a subscribe naming a coin (or dex) the exchange does not list, mis-cased names included,
  → :class:`SilentClose`: the exchange drops the whole socket without a word (§1.7).
  Delisted coins are listed, so they are acknowledged. An *unsubscribe* naming an unknown
  coin is only a parse error: nothing could have been subscribed under that name.
* subscription types other than the five simulated channels are parse errors too (the
  simulator does not pretend to serve ``l2Book`` and the like).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from workers.simulator.universe import Universe

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
PONG = b'{"channel":"pong"}'
PARSE_ERROR_PREFIX = "Error parsing JSON into valid websocket request: "
SUPPORTED_TYPES = ("trades", "allMids", "activeAssetCtx", "clearinghouseState", "userFills")


@dataclass(frozen=True, slots=True)
class Subscription:
    """A normalised subscription: what the ack echoes, its identity and its data topic."""

    type: str
    echo: dict[str, Any]
    key: str  # compact JSON of ``echo``: identity for "Already subscribed"
    topic: (
        str  # where its data comes from: "trades:BTC", "ctx:BTC", "allMids", "chs:0x…", "fills:0x…"
    )
    coin: str | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Subscribe:
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    subscription: Subscription


@dataclass(frozen=True, slots=True)
class Post:
    id: int
    kind: str  # "info" or "action"
    payload: Any


@dataclass(frozen=True, slots=True)
class ParseError:
    frame: str

    @property
    def message(self) -> str:
        return PARSE_ERROR_PREFIX + self.frame


@dataclass(frozen=True, slots=True)
class SilentClose:
    reason: str


Request = Ping | Subscribe | Unsubscribe | Post | ParseError | SilentClose


class _Invalid(Exception):
    pass


class _Unknown(Exception):
    pass


def parse_request(frame: str | bytes, universe: Universe) -> Request:
    """Decide what one client frame asks for. Never raises."""
    text = frame if isinstance(frame, str) else frame.decode("utf-8", errors="replace")
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return ParseError(text)
    if not isinstance(message, dict):
        return ParseError(text)
    method = message.get("method")
    try:
        if method == "ping":
            return Ping()
        if method in ("subscribe", "unsubscribe"):
            subscription = _subscription(message.get("subscription"), universe)
            return Subscribe(subscription) if method == "subscribe" else Unsubscribe(subscription)
        if method == "post":
            return _post(message)
    except _Invalid:
        return ParseError(text)
    except _Unknown as exc:
        if method == "unsubscribe":
            return ParseError(text)
        return SilentClose(str(exc))
    return ParseError(text)


def _post(message: dict[str, Any]) -> Post:
    post_id = message.get("id")
    request = message.get("request")
    if isinstance(post_id, bool) or not isinstance(post_id, int) or not isinstance(request, dict):
        raise _Invalid
    kind = request.get("type")
    if kind not in ("info", "action") or "payload" not in request:
        raise _Invalid
    return Post(post_id, kind, request["payload"])


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise _Invalid
    return value


def _coin(sub: dict[str, Any], universe: Universe) -> str:
    coin = _string(sub.get("coin"))
    if universe.get(coin) is None:
        raise _Unknown(f"unknown coin {coin!r}")
    return coin


def _user(sub: dict[str, Any]) -> str:
    user = _string(sub.get("user"))
    if not _ADDRESS.match(user):
        raise _Invalid
    return user.lower()


def _dex(sub: dict[str, Any]) -> str | None:
    if "dex" not in sub or sub["dex"] is None:
        return None
    dex = _string(sub["dex"])
    if dex:  # only the first perp dex ("") is simulated
        raise _Unknown(f"unknown dex {dex!r}")
    return dex


def _subscription(sub: Any, universe: Universe) -> Subscription:
    if not isinstance(sub, dict):
        raise _Invalid
    kind = sub.get("type")
    coin = user = None
    if kind == "trades" or kind == "activeAssetCtx":
        coin = _coin(sub, universe)
        echo: dict[str, Any] = {"type": kind, "coin": coin}
        topic = f"trades:{coin}" if kind == "trades" else f"ctx:{coin}"
    elif kind == "allMids":
        dex = _dex(sub)
        echo = {"type": kind} if dex is None else {"type": kind, "dex": dex}
        topic = "allMids"
    elif kind == "clearinghouseState":
        user = _user(sub)
        _dex(sub)
        echo = {"type": kind, "user": user, "dex": ""}
        topic = f"chs:{user}"
    elif kind == "userFills":
        user = _user(sub)
        aggregate = sub.get("aggregateByTime", False)
        if not isinstance(aggregate, bool):
            raise _Invalid
        echo = {"type": kind, "user": user, "aggregateByTime": aggregate}
        topic = f"fills:{user}"
    else:
        raise _Invalid
    return Subscription(kind, echo, orjson.dumps(echo).decode(), topic, coin, user)


# --- server → client frames -------------------------------------------------------------------


def ack(method: str, subscription: Subscription) -> bytes:
    return orjson.dumps(
        {
            "channel": "subscriptionResponse",
            "data": {"method": method, "subscription": subscription.echo},
        }
    )


def error(message: str) -> bytes:
    return orjson.dumps({"channel": "error", "data": message})


def already_subscribed(subscription: Subscription) -> bytes:
    return error(f"Already subscribed: {subscription.key}")


def already_unsubscribed(subscription: Subscription) -> bytes:
    return error(f"Already unsubscribed: {subscription.key}")


def post_response(post_id: int, kind: str, payload: Any) -> bytes:
    return orjson.dumps(
        {"channel": "post", "data": {"id": post_id, "response": {"type": kind, "payload": payload}}}
    )
