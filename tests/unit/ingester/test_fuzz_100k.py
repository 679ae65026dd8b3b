"""100,000 fuzzed frames through the ingester's real per-frame path (parse → dedup → batch →
outbox), with a fixed seed so a failure replays exactly.

Unlike the hypothesis suite (test_protocol_fuzz.py: few examples, shrinking) this is
volume: mutations of the reference frames (values replaced, keys dropped, bytes flipped,
truncated, spliced, numbers pushed past 64 bits, NaN/Infinity strings, deep nesting) and
random text, bytes and JSON. The accounting must close exactly: every frame counted, every
rejection counted once under a known reason, every accepted event either batched for the
broker or counted as a duplicate — and the untouched control frames always yield events.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import orjson

from runtime.clock import ManualClock
from runtime.hyperliquid.protocol import KNOWN_CHANNELS, ParsedFrame
from runtime.metrics import DUPLICATES_DROPPED, EVENTS, FRAMES, MALFORMED, Metrics
from tests.unit.ingester import frames, mutations
from workers.ingester.batcher import Batcher
from workers.ingester.cache import LatestCache
from workers.ingester.outbox import Outbox
from workers.ingester.pipeline import Pipeline

FRAMES_TOTAL = 100_000
SEED = 20_260_707
REASONS = frozenset({"not_json", "not_object", "no_channel", "bad_data", "bad_event"})
# Channels whose frames carry events, and the metric label / dedup behaviour of each.
DATA_CHANNELS = ("trades", "allMids", "activeAssetCtx", "clearinghouseState", "userFills")
DEDUPED = ("trades", "userFills")
VALID_DATA = tuple(
    f for f in frames.ALL_VALID if orjson.loads(f).get("channel") in DATA_CHANNELS
)  # fmt: skip
DOCS = [orjson.loads(f) for f in frames.ALL_VALID]

Raw = bytes | str

_WEIRD_STRINGS = (
    "", " ", "NaN", "nan", "Infinity", "-Infinity", "inf", "1e999999", "-0", "0x10", "1_000",
    "\uff11\uff12\uff13", "1e-999999999", "9" * 400, "\x00", "'; DROP TABLE trade_snapshots; --",
    "\u202e", "\ud7ff", "B", "A", "0x" + "f" * 64,
)  # fmt: skip
_WEIRD_NUMBERS = (
    -1, 0, 2**63, 2**64 + 1, 10**30, -(2**63) - 1, 1.5, -0.0, 1e308, 1e-308, True, False,
)  # fmt: skip


def _random_json(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 3 or roll < 0.55:
        leaf = rng.randrange(6)
        if leaf == 0:
            return None
        if leaf == 1:
            return rng.random() < 0.5
        if leaf == 2:
            return rng.choice(_WEIRD_NUMBERS)
        if leaf == 3:
            return rng.randint(-(2**40), 2**40)
        if leaf == 4:
            return rng.choice(_WEIRD_STRINGS)
        return "".join(chr(rng.randrange(32, 0x2FFF)) for _ in range(rng.randrange(12)))
    if roll < 0.8:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(5))]
    keys = ("coin", "px", "sz", "time", "tid", "side", "hash", "data", "mids", "ctx", "user",
            "fills", "isSnapshot", "position", "assetPositions", "subscription", "method", "x")  # fmt: skip
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(5))}


def _drop(doc: Any, path: tuple[Any, ...]) -> Any:
    if len(path) == 1:
        if isinstance(doc, dict):
            return {k: v for k, v in doc.items() if k != path[0]}
        return [v for i, v in enumerate(doc) if i != path[0]]
    head = path[0]
    if isinstance(doc, dict):
        return {**doc, head: _drop(doc[head], path[1:])}
    copy = list(doc)
    copy[head] = _drop(doc[head], path[1:])
    return copy


def _dumps(doc: Any) -> bytes:
    # The standard library, not orjson: it writes integers beyond 64 bits and NaN, which a
    # hostile or broken peer can send and orjson refuses to produce.
    return json.dumps(doc, ensure_ascii=False).encode()


# --- the mutators: (rng, serial) → one frame ------------------------------------------------


def valid_control(rng: random.Random, serial: int) -> Raw:
    """An untouched reference data frame, its trade/fill ids made fresh so dedup keeps them."""
    doc = orjson.loads(rng.choice(VALID_DATA))
    data = doc["data"]
    if doc["channel"] == "trades":
        for i, trade in enumerate(data):
            trade["tid"] = serial * 10 + i
    elif doc["channel"] == "userFills":
        for i, fill in enumerate(data["fills"]):
            fill["tid"] = serial * 10 + i
    return _dumps(doc)


def replace_value(rng: random.Random, serial: int) -> Raw:
    doc = rng.choice(DOCS)
    path = rng.choice(mutations.paths(doc))
    return _dumps(mutations.replace(doc, path, _random_json(rng)))


def drop_key(rng: random.Random, serial: int) -> Raw:
    doc = rng.choice(DOCS)
    paths = [p for p in mutations.paths(doc) if p]
    return _dumps(_drop(doc, rng.choice(paths)))


def retype_number(rng: random.Random, serial: int) -> Raw:
    """A number or decimal string in a reference frame swapped for an edge value."""
    doc = rng.choice(DOCS)
    paths = [p for p in mutations.paths(doc) if p and p[-1] in {"px", "sz", "time", "tid", "funding",
             "markPx", "szi", "oid", "value", "fee", "openInterest", "oraclePx"}]  # fmt: skip
    if not paths:
        return _dumps(doc)
    new = rng.choice(_WEIRD_NUMBERS + _WEIRD_STRINGS)
    return _dumps(mutations.replace(doc, rng.choice(paths), new))


def flip_bytes(rng: random.Random, serial: int) -> Raw:
    raw = bytearray(rng.choice(frames.ALL_VALID))
    for _ in range(rng.randint(1, 8)):
        op = rng.randrange(3)
        at = rng.randrange(len(raw))
        if op == 0:
            raw[at] = rng.randrange(256)
        elif op == 1:
            raw.insert(at, rng.randrange(256))
        elif len(raw) > 1:
            del raw[at]
    return bytes(raw)


def truncate(rng: random.Random, serial: int) -> Raw:
    raw = rng.choice(frames.ALL_VALID)
    return raw[: rng.randrange(len(raw))]


def splice(rng: random.Random, serial: int) -> Raw:
    a, b = rng.choice(frames.ALL_VALID), rng.choice(frames.ALL_VALID)
    return a[: rng.randrange(len(a))] + b[rng.randrange(len(b)) :]


def random_text(rng: random.Random, serial: int) -> Raw:
    alphabet = '{}[]":,0123456789.-eEtruefalsn \\/abcABC\u00e9\u4e2d\U0001f600'
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(200)))


def random_bytes(rng: random.Random, serial: int) -> Raw:
    return rng.randbytes(rng.randrange(200))


def random_doc(rng: random.Random, serial: int) -> Raw:
    channel = rng.choice([*sorted(KNOWN_CHANNELS), "", "l2Book", "TRADES", None, 7])
    return _dumps({"channel": channel, "data": _random_json(rng)})


def edge_shapes(rng: random.Random, serial: int) -> Raw:
    depth = rng.choice((100, 1024, 1100, 5000))
    shapes: tuple[Callable[[], Raw], ...] = (
        lambda: b"[" * depth + b"]" * depth,
        lambda: b'{"channel":"trades","data":' + b"[" * depth + b"]" * depth + b"}",
        lambda: b'{"channel":"trades","data":[{"tid":' + b"9" * rng.randrange(20, 400) + b"}]}",
        lambda: b'{"channel":"allMids","data":{"mids":{"BTC":NaN}}}',
        lambda: b'{"channel":"trades","data":[' + b"{}," * 500 + b"{}]}",
        lambda: b'{"channel":"pong"}' * 2,
        lambda: b"\xef\xbb\xbf" + frames.PONG,
        lambda: frames.GREETING + b"!",
        lambda: b"null",
        lambda: b'"just a string"',
        lambda: b'{"channel":"userFills","data":{"user":"0xabc","fills":{}}}',
        lambda: (
            b'{"channel":"clearinghouseState","data":{"user":"0xabc","clearinghouseState":'
            b'{"time":-1,"assetPositions":[]}}}'
        ),
    )
    return rng.choice(shapes)()


# Each mutator's share of the 100,000 frames (sums to 1).
MUTATORS: tuple[tuple[Callable[[random.Random, int], Raw], float], ...] = (
    (valid_control, 0.10),
    (replace_value, 0.20),
    (drop_key, 0.08),
    (retype_number, 0.10),
    (flip_bytes, 0.15),
    (truncate, 0.08),
    (splice, 0.05),
    (random_text, 0.07),
    (random_bytes, 0.04),
    (random_doc, 0.10),
    (edge_shapes, 0.03),
)


def _counter_total(metrics: Metrics, definition: Any) -> dict[str, float]:
    """label value → counter value for a one-label counter."""
    out: dict[str, float] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == definition.name:
                out[next(iter(sample.labels.values()))] = sample.value
    return out


def test_given_100k_fuzzed_frames_when_ingested_then_every_rejection_is_counted() -> None:
    # Given the real per-frame path with an outbox large enough to hold everything
    clock = ManualClock()
    outbox = Outbox(10_000_000)
    metrics = Metrics()
    pipe = Pipeline(
        "fuzz", Batcher(500, 100, clock), outbox, LatestCache(), metrics, clock, 100_000
    )
    pipe.on_connected()
    rng = random.Random(SEED)
    mutators = [m for m, _ in MUTATORS]
    weights = [w for _, w in MUTATORS]

    rejected: Counter[str] = Counter()  # reason → frames the parser rejected
    rejected_by: Counter[str] = Counter()  # mutator → frames rejected
    produced: Counter[str] = Counter()  # mutator → frames used
    parsed_events: Counter[str] = Counter()  # channel → events the parser yielded
    control_events = 0
    started = time.perf_counter()

    # When 100,000 frames go through it, the clock moving so batches leave on time
    for serial in range(FRAMES_TOTAL):
        mutator = rng.choices(mutators, weights)[0]
        raw = mutator(rng, serial)
        produced[mutator.__name__] += 1
        pf: ParsedFrame = pipe.on_frame(raw, clock.time_ms())
        assert pf.kind in {"data", "pong", "ack", "error", "post", "ignored", "malformed"}
        if pf.malformed is not None:
            rejected[pf.malformed] += 1
            rejected_by[mutator.__name__] += 1
            if pf.kind == "malformed":
                assert pf.events == [], raw
            else:  # a data frame kept its good elements and names how many it dropped
                assert pf.malformed == "bad_event" and pf.rejected > 0, raw
        if pf.kind == "data":
            parsed_events[pf.channel] += len(pf.events)
        if mutator is valid_control:
            assert pf.kind == "data" and pf.malformed is None and pf.events, raw
            control_events += len(pf.events)
        if serial % 100 == 0:
            clock.advance(0.05)
            pipe.tick()
    pipe.flush_all()
    elapsed = time.perf_counter() - started
    published: Counter[str] = Counter()
    while (env := outbox.head(0)) is not None:
        published[env.kind] += env.count
        outbox.done(env)

    # Then every frame was counted, and nothing fell through to the parser's safety net
    frames_counted = sum(_counter_total(metrics, FRAMES).values())
    assert frames_counted == FRAMES_TOTAL == pipe.session.frames
    assert set(rejected) <= REASONS, rejected

    # And the malformed metric equals, reason by reason, what the parser rejected
    assert _counter_total(metrics, MALFORMED) == {k: float(v) for k, v in rejected.items()}
    assert pipe.session.malformed == sum(rejected.values())

    # And every kind of mutation was tried, and each was caught at least as often as its
    # damage demands (broken JSON always; a replaced value only when it breaks the shape)
    assert set(produced) == {m.__name__ for m in mutators}
    share = {name: rejected_by[name] / produced[name] for name in produced}
    for name in ("truncate", "random_bytes", "random_text", "edge_shapes"):
        assert share[name] == 1.0, (name, share)
    for name, least in (("flip_bytes", 0.9), ("splice", 0.9), ("replace_value", 0.5),
                        ("drop_key", 0.5), ("random_doc", 0.5), ("retype_number", 0.3)):  # fmt: skip
        assert share[name] >= least, (name, share)
    assert share["valid_control"] == 0.0

    # And every event the parser yielded was batched for the broker or dropped as a replay
    # (positions may gain synthetic flat entries for coins that left a wallet's state)
    accepted = _counter_total(metrics, EVENTS)
    duplicates = _counter_total(metrics, DUPLICATES_DROPPED)
    for channel in DATA_CHANNELS:
        got = accepted.get(channel, 0.0) + duplicates.get(channel, 0.0)
        if channel == "clearinghouseState":
            assert got >= parsed_events[channel]
        else:
            assert got == parsed_events[channel], (channel, got, parsed_events[channel])
    assert sum(published.values()) == sum(accepted.values()) == pipe.session.events
    assert control_events > 0 and published["trades"] > 0 and published["fills"] > 0

    # And it stayed fast: the hot path is not slowed into a denial of service by garbage
    assert elapsed < 60, f"{elapsed:.1f}s for {FRAMES_TOTAL} frames"
