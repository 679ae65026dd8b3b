"""``hyperwatch simulate``: a Hyperliquid-compatible exchange for demos, tests and benchmarks.

One port serves the WebSocket (``/ws``: trades, contexts, mids, wallets' fills and states)
and ``POST /info`` (:mod:`~workers.simulator.info`): ``meta``, ``metaAndAssetCtxs``,
``allMids``, ``recentTrades``, ``l2Book``, ``candleSnapshot``, ``fundingHistory``,
``clearinghouseState``, ``userFills``, ``userFillsByTime``, and the start-up reads of stock
clients (``spotMeta``, ``spotMetaAndAssetCtxs``, ``perpDexs``). Everything REST answers is
derived from the simulator's own market: candles from the trades it generated
(:mod:`~workers.simulator.candles`), funding rows from the rates it charges each hour.

Public API (see :mod:`workers.simulator.runner` and :mod:`workers.simulator.groundtruth`)::

    SimulatorConfig, SimulatorServer, SimulatorHandle, SimulatorProcess
    read_ground_truth, iter_trades, GroundTruth, GroundTruthTrade, sim_user_address,
    sim_wallet_address
"""

from workers.simulator.config import SimulatorConfig
from workers.simulator.faults import FaultPlan
from workers.simulator.groundtruth import (
    GroundTruth,
    GroundTruthTrade,
    iter_trades,
    read_ground_truth,
)
from workers.simulator.market import sim_user_address, sim_wallet_address
from workers.simulator.runner import SimulatorHandle, SimulatorProcess, SimulatorServer

__all__ = [
    "FaultPlan",
    "GroundTruth",
    "GroundTruthTrade",
    "SimulatorConfig",
    "SimulatorHandle",
    "SimulatorProcess",
    "SimulatorServer",
    "iter_trades",
    "read_ground_truth",
    "sim_user_address",
    "sim_wallet_address",
]
