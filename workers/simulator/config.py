"""Everything one simulator run is told: the options of ``hyperwatch simulate`` as data.

:meth:`SimulatorConfig.validate` raises ``ValueError`` naming the option (as spelled on the
command line) and what it expects; nothing else in the simulator re-checks options.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from workers.simulator.cascade import Cascade
from workers.simulator.faults import FaultPlan
from workers.simulator.ledger import FILLS_KEPT
from workers.simulator.market import sim_user_address, sim_wallet_address
from workers.simulator.universe import (
    DEFAULT_COINS,
    DEFAULT_DELISTED,
    Universe,
    UniverseError,
    coin_spec,
)

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")


@dataclass(frozen=True)
class SimulatorConfig:
    """One run's options. Defaults serve BTC, ETH, SOL (+ delisted MATIC) at 50 trades/s."""

    host: str = "127.0.0.1"
    port: int = 8765
    coins: tuple[str, ...] = DEFAULT_COINS
    delisted: tuple[str, ...] = DEFAULT_DELISTED
    users: int = 0
    user_addresses: tuple[str, ...] = ()
    user_share: float = 0.05
    wallets: int = 0  # active addresses without a ledger (sim_wallet_address 0..N-1)
    rate: float = 50.0
    trades_per_block: int | None = None
    block_ms: float = 70.0
    seed: int = 0
    start_time_ms: int | None = None
    duration_s: float = 0.0
    replay_trades: int = 10
    idle_timeout_s: float = 60.0
    ctx_interval_s: float = 1.0
    mids_interval_s: float = 2.0
    faults: FaultPlan = field(default_factory=FaultPlan)
    record_path: Path | None = None
    replay_path: Path | None = None
    archive_dir: Path | None = None
    archive_level: int = 9
    max_subscriptions: int = 1000
    max_users_tracked: int = 10
    max_messages_per_minute: int = 2000
    max_queue_bytes: int = 64 << 20
    fills_kept: int = FILLS_KEPT  # per simulated wallet (memory bound; see ledger.py)
    # Coins listed mid-run: (NAME or NAME=PRICE, seconds after the start in block time).
    list_later: tuple[tuple[str, float], ...] = ()
    # Cascade mode (workers.simulator.cascade): the rate ramps and prices move; None: off.
    cascade: Cascade | None = None

    def validate(self) -> None:
        """Raise ValueError("option: what it expects") on the first bad option."""
        checks: list[tuple[bool, str]] = [
            (0 <= self.port <= 65535, "port: 0-65535 (0 = any free port)"),
            (bool(self.coins), "coins: at least one coin"),
            (self.users >= 0, "users: a count ≥ 0"),
            (self.wallets >= 0, "wallets: a count ≥ 0"),
            (0.0 <= self.user_share <= 1.0, "user-share: a fraction between 0 and 1"),
            (self.rate > 0, "rate: trades per second > 0"),
            (self.trades_per_block is None or self.trades_per_block >= 1, "trades-per-block: ≥ 1"),
            (self.block_ms > 0, "block-ms: > 0"),
            (self.duration_s >= 0, "duration: seconds ≥ 0 (0 = forever)"),
            (self.replay_trades >= 0, "replay-trades: ≥ 0"),
            (self.idle_timeout_s > 0, "idle-timeout: seconds > 0"),
            (self.ctx_interval_s > 0, "ctx-interval: seconds > 0"),
            (self.mids_interval_s > 0, "mids-interval: seconds > 0"),
            (
                self.start_time_ms is None or self.start_time_ms >= 0,
                "start-time: ms since the epoch ≥ 0",
            ),
            (self.max_queue_bytes > 0, "max-queue-bytes: > 0"),
            (self.fills_kept >= 1, "fills-kept: fills per wallet ≥ 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
        try:
            Universe.build(self.coins, self.delisted)
        except UniverseError as exc:
            raise ValueError(f"coins: {exc}") from None
        for address in self.user_addresses:
            if not _ADDRESS.match(address):
                raise ValueError(f"user: 0x followed by 40 hex digits, got {address!r}")
        if self.replay_path is not None and not self.replay_path.is_file():
            raise ValueError(f"replay: no such capture file {str(self.replay_path)!r}")
        if (
            self.archive_dir is not None
            and self.archive_dir.exists()
            and not self.archive_dir.is_dir()
        ):
            raise ValueError(f"archive-dir: not a directory: {str(self.archive_dir)!r}")
        if not 0 <= self.archive_level <= 16:
            raise ValueError("archive-level: an LZ4 level 0-16")
        if (
            self.record_path is not None
            and self.replay_path is not None
            and self.record_path.resolve() == self.replay_path.resolve()
        ):
            raise ValueError("record: must not be the file being replayed")
        try:
            self.faults.validate()
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        self._validate_list_later()
        if self.cascade is not None:
            if self.replay_path is not None:
                raise ValueError("cascade-at: only with a generated market, not with --replay")
            self.cascade.validate()

    def _validate_list_later(self) -> None:
        if self.wallets and self.replay_path is not None:
            raise ValueError("wallets: only with a generated market, not with --replay")
        if self.list_later and self.replay_path is not None:
            raise ValueError("list-later: only with a generated market, not with --replay")
        seen = {coin_spec(token).name for token in (*self.coins, *self.delisted)}
        for token, seconds in self.list_later:
            try:
                name = coin_spec(token).name
            except UniverseError as exc:
                raise ValueError(f"list-later: {exc}") from None
            if name in seen:
                raise ValueError(f"list-later: {name} is already in the universe")
            if not seconds > 0:
                raise ValueError(f"list-later: {name}@SECONDS needs seconds > 0, got {seconds}")
            seen.add(name)

    @property
    def all_users(self) -> tuple[str, ...]:
        """Simulated wallets: ``users`` generated addresses, then explicit ones, lowercase, unique."""
        out: list[str] = [sim_user_address(i) for i in range(self.users)]
        try:
            Universe.build(self.coins, self.delisted)
        except UniverseError as exc:
            raise ValueError(f"coins: {exc}") from None
        for address in self.user_addresses:
            low = address.lower()
            if low not in out:
                out.append(low)
        return tuple(out)

    @property
    def wallet_addresses(self) -> tuple[str, ...]:
        """The ``wallets`` active addresses: they trade in the public stream, without a ledger."""
        return tuple(sim_wallet_address(i) for i in range(self.wallets))

    @property
    def effective_trades_per_block(self) -> int:
        if self.trades_per_block is not None:
            return self.trades_per_block
        return max(1, round(self.rate * self.block_ms / 1000))

    @property
    def effective_block_ms(self) -> float:
        """Block spacing that yields exactly ``rate`` trades/s with the block size in use."""
        return self.effective_trades_per_block * 1000.0 / self.rate


def parse_list_later(text: str) -> tuple[str, float]:
    """``COIN@SECONDS`` (``COIN`` may be ``NAME=PRICE``) → (coin, seconds); ValueError."""
    coin, sep, seconds = text.rpartition("@")
    try:
        value = float(seconds)
    except ValueError:
        value = -1.0
    if not sep or not coin or not value > 0:
        raise ValueError(f"list-later: COIN@SECONDS with seconds > 0, got {text!r}")
    return coin, value
