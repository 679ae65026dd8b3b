"""Simulator options: validation and derived values."""

from __future__ import annotations

from pathlib import Path

import pytest

from workers.simulator.config import SimulatorConfig, parse_list_later
from workers.simulator.market import sim_user_address, sim_wallet_address


def test_block_size_derives_from_rate_and_block_ms() -> None:
    config = SimulatorConfig(rate=1000, block_ms=70)
    assert config.effective_trades_per_block == 70
    assert config.effective_block_ms == 70.0
    explicit = SimulatorConfig(rate=200, trades_per_block=10)
    assert explicit.effective_block_ms == 50.0


def test_users_generated_then_explicit_lowercase_unique() -> None:
    explicit = "0x" + "AB" * 20
    config = SimulatorConfig(users=2, user_addresses=(explicit, explicit.lower()))
    assert config.all_users == (sim_user_address(0), sim_user_address(1), explicit.lower())


@pytest.mark.parametrize(
    ("kwargs", "option"),
    [
        ({"rate": 0}, "rate"),
        ({"port": 70000}, "port"),
        ({"trades_per_block": 0}, "trades-per-block"),
        ({"idle_timeout_s": 0}, "idle-timeout"),
        ({"user_addresses": ("0x12",)}, "user"),
        ({"wallets": -1}, "wallets"),
        ({"replay_path": Path("/nonexistent/capture.jsonl")}, "replay"),
        ({"coins": ()}, "coins"),
        ({"coins": ("BTC", "bad name")}, "coins"),
        ({"list_later": (("ETH", 5.0),)}, "list-later"),
        ({"list_later": (("MATIC", 5.0),)}, "list-later"),
        ({"list_later": (("XRP", 0.0),)}, "list-later"),
        ({"list_later": (("XRP", 1.0), ("XRP", 2.0))}, "list-later"),
        ({"list_later": (("bad name", 1.0),)}, "list-later"),
    ],
)
def test_bad_options_name_themselves(kwargs: dict, option: str) -> None:
    with pytest.raises(ValueError, match=f"^{option}:"):
        SimulatorConfig(**kwargs).validate()


def test_wallets_are_generated_addresses_and_need_a_generated_market(tmp_path: Path) -> None:
    config = SimulatorConfig(wallets=3, users=1)
    assert config.wallet_addresses == tuple(sim_wallet_address(i) for i in range(3))
    assert config.all_users == (sim_user_address(0),)  # wallets have no ledger
    capture = tmp_path / "capture.jsonl"
    capture.write_text("")
    with pytest.raises(ValueError, match=r"^wallets: only with a generated market"):
        SimulatorConfig(wallets=3, replay_path=capture).validate()


def test_list_later_parses_coin_at_seconds() -> None:
    assert parse_list_later("XRP@2.5") == ("XRP", 2.5)
    assert parse_list_later("NEW=1.5@10") == ("NEW=1.5", 10.0)
    for bad in ("XRP", "XRP@", "@3", "XRP@soon", "XRP@-1", "XRP@0"):
        with pytest.raises(ValueError, match=r"^list-later:"):
            parse_list_later(bad)
    SimulatorConfig(list_later=(("XRP", 1.0), ("DOGE=0.2", 2.0))).validate()
