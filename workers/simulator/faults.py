"""The fault plan: how the simulated exchange misbehaves, on a schedule or on request.

Kinds (the same words in ``--*`` options, ``POST /_sim/fault`` and ground-truth lines):

* ``drop``: abort every client socket at once, with no close frame (the client sees 1006).
* ``stall``: the sockets open at that moment get nothing for ``seconds``: no data, no
  pongs, no acks; what they send meanwhile is read and ignored. Data produced during the
  stall (or queued but not yet written when it began) is not delivered to them later (it
  stays in the ground truth). New connections
  are not stalled, so a client that reconnects recovers.
* ``malformed``: garbage text frames (torn JSON, wrong types, unknown channels, non-JSON
  text) are sent *in addition to* real frames: at ``--malformed-rate`` (a fraction of data
  frames, per connection) or ``count`` of them to every open connection on request. They
  never replace a real frame, so the ground truth stays what a good client must store.
* ``duplicate``: every connection is sent its last trades frame again (a replay the
  client must dedupe).
* ``silence``: one stream (``channel`` plus ``coin`` or ``user``; ``allMids`` needs
  neither) stops being pushed to the connections subscribed to it at that moment, while
  everything else on them flows and pongs answer. It lasts until the connection
  unsubscribes the stream (a resubscribe cures it, as one would hope it does on the
  exchange) or closes; what the stream missed stays missed.

Fault randomness has its own stream (derived from the seed) so faults never change the
market's trade sequence.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Literal

import orjson

FaultKind = Literal["drop", "stall", "malformed", "duplicate", "silence"]
FAULT_KINDS: tuple[FaultKind, ...] = ("drop", "stall", "malformed", "duplicate", "silence")
# A silenced channel → the prefix of its hub topic (protocol.Subscription.topic).
SILENCE_TOPICS: dict[str, str] = {
    "activeAssetCtx": "ctx:",
    "trades": "trades:",
    "clearinghouseState": "chs:",
    "userFills": "fills:",
    "allMids": "allMids",
}


class FaultRequestError(ValueError):
    """A fault request that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class FaultPlan:
    """Scheduled faults; zero disables each."""

    drop_every_s: float = 0.0
    stall_every_s: float = 0.0
    stall_seconds: float = 3.0
    malformed_rate: float = 0.0
    duplicate_every_s: float = 0.0

    def validate(self) -> None:
        for name in ("drop_every_s", "stall_every_s", "duplicate_every_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.removesuffix('_s').replace('_', '-')} must be ≥ 0 seconds")
        if self.stall_seconds <= 0:
            raise ValueError("stall-seconds must be positive")
        if not 0.0 <= self.malformed_rate <= 1.0:
            raise ValueError("malformed-rate must be a fraction between 0 and 1")


@dataclass(frozen=True)
class FaultRequest:
    """One fault asked for over ``POST /_sim/fault``."""

    kind: FaultKind
    seconds: float = 0.0
    count: int = 1
    topic: str = ""  # silence: the hub topic of the silenced stream

    @classmethod
    def parse(cls, body: Any) -> FaultRequest:
        if not isinstance(body, dict) or body.get("kind") not in FAULT_KINDS:
            raise FaultRequestError(f"expected {{'kind': one of {list(FAULT_KINDS)}}}")
        kind: FaultKind = body["kind"]
        if kind == "stall":
            seconds = body.get("seconds", 3)
            if (
                isinstance(seconds, bool)
                or not isinstance(seconds, int | float)
                or not 0 < seconds <= 3600
            ):
                raise FaultRequestError("stall needs 'seconds' between 0 and 3600")
            return cls(kind, seconds=float(seconds))
        if kind == "malformed":
            count = body.get("count", 1)
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 10_000:
                raise FaultRequestError("malformed needs an integer 'count' between 1 and 10000")
            return cls(kind, count=count)
        if kind == "silence":
            return cls(kind, topic=silence_topic(body))
        return cls(kind)


def silence_topic(body: dict[str, Any]) -> str:
    channel = body.get("channel")
    prefix = SILENCE_TOPICS.get(channel) if isinstance(channel, str) else None
    if prefix is None:
        raise FaultRequestError(f"silence needs 'channel': one of {list(SILENCE_TOPICS)}")
    if channel == "allMids":
        return prefix
    field = "user" if channel in ("clearinghouseState", "userFills") else "coin"
    key = body.get(field)
    if not isinstance(key, str) or not key:
        raise FaultRequestError(f"silence of {channel} needs '{field}'")
    return prefix + (key.lower() if field == "user" else key)


MALFORMED_VARIANTS = (
    "truncated",
    "not_json",
    "wrong_types",
    "unknown_channel",
    "data_not_array",
    "null_data",
    "banner",
)


def malformed_frame(rng: random.Random, sample: bytes | None) -> tuple[str, bytes]:
    """One garbage frame and the name of its variant. ``sample`` is a real frame to tear."""
    variant = MALFORMED_VARIANTS[rng.randrange(len(MALFORMED_VARIANTS))]
    if variant == "truncated":
        base = (
            sample
            if sample and len(sample) > 2
            else b'{"channel":"trades","data":[{"coin":"BTC","px":"1.0"}]}'
        )
        return variant, base[: rng.randrange(1, len(base) - 1)]
    if variant == "not_json":
        return variant, b"\x7fgarbage <html>502 Bad Gateway</html>"
    if variant == "wrong_types":
        # Shaped like a trade but with numbers where strings belong and a string tid: a
        # strict parser rejects it; a lenient one would store a trade that never happened.
        bad = {
            "coin": "BTC",
            "side": "X",
            "px": 1.5,
            "sz": None,
            "time": "soon",
            "hash": 7,
            "tid": "abc",
            "users": "x",
        }
        return variant, orjson.dumps({"channel": "trades", "data": [bad]})
    if variant == "unknown_channel":
        return variant, b'{"channel":"simulatorNoise","data":{"x":1}}'
    if variant == "data_not_array":
        return variant, b'{"channel":"trades","data":{"coin":"ETH"}}'
    if variant == "null_data":
        return variant, b'{"channel":"userFills","data":null}'
    return variant, b"Websocket connection established."
