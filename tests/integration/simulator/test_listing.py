"""A coin listed mid-run (``--list-later``): unknown before, listed and trading after."""

from __future__ import annotations

import subprocess
import sys
import time

from tests.integration.simulator.conftest import http_post


def names(sim) -> list[str]:
    status, meta = http_post(sim.info_url, {"type": "meta"})
    assert status == 200
    return [asset["name"] for asset in meta["universe"]]


def test_a_coin_listed_later_is_unknown_before_and_trades_after(start_sim, clients) -> None:
    # Given a simulator that lists XRP 1 s after its start
    sim = start_sim(list_later=(("XRP", 1.0),))
    # Then before that, meta does not list it and subscribing to it drops the socket
    assert names(sim) == ["BTC", "ETH", "SOL", "MATIC"]
    early = clients(sim.ws_url)
    early.subscribe({"type": "trades", "coin": "XRP"})
    assert early.dropped_without_close_frame()
    # And after it, meta lists it at the end, with a context, and its trades flow
    deadline = time.monotonic() + 5
    while "XRP" not in names(sim):
        assert time.monotonic() < deadline, "XRP was never listed"
        time.sleep(0.05)
    assert names(sim) == ["BTC", "ETH", "SOL", "MATIC", "XRP"]
    status, (_meta, ctxs) = http_post(sim.info_url, {"type": "metaAndAssetCtxs"})
    assert status == 200 and len(ctxs) == 5 and ctxs[4]["midPx"] is not None
    client = clients(sim.ws_url)
    client.subscribe({"type": "trades", "coin": "XRP"})
    frame = client.recv_until(lambda m: m["channel"] == "trades" and m["data"])
    assert {t["coin"] for t in frame["data"]} == {"XRP"}
    assert sim.stats()["coins_listed"] == 1


def test_list_later_option_is_checked_on_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "workers.cli", "simulate", "--port", "0", "--list-later", "XRP"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.returncode == 2
    assert "list-later" in result.stderr and result.stdout == ""
