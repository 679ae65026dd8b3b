"""Silence watch: one silent cadence stream is resubscribed, a silent socket is dead. Pure."""

from __future__ import annotations

from runtime.hyperliquid.protocol import ParsedFrame
from workers.ingester.watch import StreamWatch

BTC = {"type": "activeAssetCtx", "coin": "BTC"}
ETH = {"type": "activeAssetCtx", "coin": "ETH"}
MIDS = {"type": "allMids"}


def ctx(coin: str) -> ParsedFrame:
    return ParsedFrame("data", "activeAssetCtx", stream_key=coin)


def watch_of(*subs: dict[str, str], silence_s: float = 2.0) -> StreamWatch:
    watch = StreamWatch(silence_s)
    for sub in subs:
        watch.acked(sub, 0.0)
    return watch


def test_given_one_context_silent_while_another_delivers_then_it_alone_is_due_once() -> None:
    watch = watch_of(BTC, ETH)  # threshold max(2 s, 3 x 1 s) = 3 s
    for t in (0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        watch.delivered(ctx("BTC"), t)
        assert watch.due(t) == []
    assert not watch.dead(3.0)
    assert watch.due(3.2) == []  # overdue, but nothing has delivered since: not yet proven
    # ETH overdue since t=3 and BTC delivered after that: ETH is due, marked silent
    watch.delivered(ctx("BTC"), 3.6)
    assert watch.due(3.6) == [ETH]
    assert watch.silent_names() == ["activeAssetCtx:ETH"]
    # Its clock restarted: not due again on the next look, only after another threshold
    assert watch.due(3.7) == []
    watch.delivered(ctx("BTC"), 6.7)
    assert watch.due(6.7) == [ETH]
    # When it delivers again it is no longer silent
    watch.delivered(ctx("ETH"), 6.8)
    assert watch.silent_names() == []


def test_given_every_stream_silent_when_watched_then_the_socket_is_dead_not_resubscribed() -> None:
    watch = watch_of(BTC, ETH)
    watch.delivered(ctx("ETH"), 0.5)
    watch.delivered(ctx("BTC"), 1.0)
    # A stall: nothing after t=1. No stream is resubscribed (nothing delivered after any
    # threshold passed); the socket is dead once the contexts' threshold (3 s, three
    # pushes) has passed since the last frame
    for t in (2.5, 3.0, 3.4, 3.6, 4.0):
        assert watch.due(t) == []
    assert not watch.dead(4.0) and watch.dead(4.01)
    assert watch.silent_names() == []


def test_given_the_default_silence_when_a_socket_goes_quiet_then_dead_after_it() -> None:
    watch = watch_of(BTC, MIDS, silence_s=15.0)
    watch.delivered(ctx("BTC"), 1.0)
    assert not watch.dead(16.0) and watch.dead(16.01)


def test_given_only_wallets_and_mids_when_quiet_then_their_slower_threshold_applies() -> None:
    chs = {"type": "clearinghouseState", "user": "0x" + "a" * 40}
    watch = watch_of(chs, MIDS, silence_s=15.0)  # thresholds: 30 s and 15 s
    assert not watch.dead(15.0) and watch.dead(15.01)
    watch.forget(MIDS)
    assert not watch.dead(30.0) and watch.dead(30.01)


def test_given_trades_and_fills_when_silent_then_never_watched() -> None:
    watch = watch_of(
        {"type": "trades", "coin": "BTC"}, {"type": "userFills", "user": "0x" + "a" * 40}, BTC
    )
    for t in range(1, 60):
        watch.delivered(ctx("BTC"), float(t))
        assert watch.due(float(t)) == []
    assert not watch.dead(60.0)


def test_given_slow_mids_when_watched_then_their_threshold_follows_their_cadence() -> None:
    watch = watch_of(BTC, MIDS, silence_s=1.5)
    assert watch.threshold(BTC) == 3.0 and watch.threshold(MIDS) == 15.0
    for t in range(1, 15):
        watch.delivered(ctx("BTC"), float(t))
        assert watch.due(float(t)) == []  # allMids every 5 s is not silence
    watch.delivered(ctx("BTC"), 15.5)
    assert watch.due(15.5) == [MIDS]


def test_given_a_dropped_stream_when_forgotten_then_it_is_no_longer_watched() -> None:
    watch = watch_of(BTC, ETH)
    watch.forget(ETH)
    for t in range(1, 10):
        watch.delivered(ctx("BTC"), float(t))
        assert watch.due(float(t)) == []
