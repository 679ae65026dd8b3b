"""``hyperwatch simulate``: a Hyperliquid-compatible exchange for demos, tests and benchmarks.

Public API (see :mod:`workers.simulator.runner` and :mod:`workers.simulator.groundtruth`)::

    SimulatorConfig, SimulatorServer, SimulatorHandle, SimulatorProcess
    read_ground_truth, iter_trades, GroundTruth, GroundTruthTrade, sim_user_address
"""

from workers.simulator.config import SimulatorConfig
from workers.simulator.faults import FaultPlan
from workers.simulator.groundtruth import (
    GroundTruth,
    GroundTruthTrade,
    iter_trades,
    read_ground_truth,
)
from workers.simulator.market import sim_user_address
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
]
