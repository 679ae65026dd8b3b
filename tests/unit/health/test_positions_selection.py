"""Which wallets the REST poller takes, and in what order. Pure."""

from __future__ import annotations

from settings import load_settings
from tasks.maintenance.positions_poll import rotated, wallets_to_poll

A, B, C, D = (f"0x{c * 40}" for c in "abcd")


def test_given_configured_wallets_when_selecting_then_they_are_left_to_the_ingester() -> None:
    # Given A, B, C followed by the ingester (WS up to the limit, its own REST poller beyond)
    settings = load_settings(tracked_wallets=f"{A},{B},{C}", ws_user_limit=2)
    # When the database also tracks B (any case), D and C
    # Then only D, which the ingester does not know, is polled here
    assert wallets_to_poll(settings, [B.upper().replace("0X", "0x"), D, C]) == [D]


def test_given_database_wallets_when_selecting_then_each_is_polled_once() -> None:
    settings = load_settings(tracked_wallets=f"{A}", ws_user_limit=0)
    assert wallets_to_poll(settings, [A, B, B, C]) == [B, C]


def test_given_runs_when_rotating_then_each_run_starts_where_the_budget_stopped() -> None:
    wallets = [A, B, C, D]
    assert rotated(wallets, now_s=0, period_s=30, per_run=3) == [A, B, C, D]
    assert rotated(wallets, now_s=30, period_s=30, per_run=3) == [D, A, B, C]
    assert rotated(wallets, now_s=61, period_s=30, per_run=3) == [C, D, A, B]
    assert rotated([], now_s=5, period_s=30, per_run=3) == []
