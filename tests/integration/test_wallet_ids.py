"""The wallet dictionary's writer side (models/repositories/wallet_ids.py) on real databases:
two workers meeting the same new address end with one id; a rolled-back id is never cached;
trades written through every path read back with their addresses."""

from __future__ import annotations

import threading
import uuid
from dataclasses import replace
from decimal import Decimal as D

import pytest
from sqlalchemy import func, select, text

from events import Trade
from models.db import Database
from models.repositories import TradeRepository
from models.repositories.wallet_ids import WalletIds, cached, ids_for
from models.wallet import Wallet

pytestmark = pytest.mark.integration

T0 = 1_787_052_600_000


def _address() -> str:
    return "0x" + uuid.uuid4().hex + uuid.uuid4().hex[:8]


def test_given_two_workers_and_one_new_address_when_both_insert_it_then_both_get_one_id(
    pg_database: Database,
) -> None:
    address = _address()
    first_inserted = threading.Event()
    got: dict[str, int] = {}
    errors: list[BaseException] = []

    def second() -> None:
        try:
            first_inserted.wait(10)
            with pg_database.session() as s:
                # Blocks on the first's uncommitted row, then does nothing and reads its id.
                got["second"] = ids_for(s, [address])[address]
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    with pg_database.session() as s:
        got["first"] = ids_for(s, [address])[address]
        first_inserted.set()
        # Let the second reach the unique index and wait on this transaction (watched from
        # a third connection: a transaction sees one snapshot of pg_stat_activity).
        pause = threading.Event()
        for _ in range(100):
            with pg_database.engine.connect() as watcher:
                waiting = watcher.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                        "AND datname = current_database()"
                    )
                ).scalar_one()
            if waiting:
                break
            pause.wait(0.1)
        assert waiting, "the second worker never waited on the first's insert"
    thread.join(10)
    assert not errors, errors
    assert got["first"] == got["second"]
    with pg_database.session() as s:
        count = s.scalar(select(func.count()).where(Wallet.address == address))
        assert count == 1


def test_given_an_insert_rolled_back_when_asked_again_then_the_id_is_a_stored_one(
    database: Database,
) -> None:
    address = _address()
    with pytest.raises(RuntimeError), database.session() as s:
        ids_for(s, [address])
        raise RuntimeError("the batch failed")
    assert address not in cached(database.engine)
    with database.session() as s:
        wallet_id = ids_for(s, [address])[address]
    assert cached(database.engine)[address] == wallet_id
    with database.session() as s:
        assert s.scalar(select(Wallet.address).where(Wallet.id == wallet_id)) == address


def test_given_trades_through_every_write_path_when_read_then_the_addresses_come_back(
    database: Database,
) -> None:
    new, known, odd = _address(), _address(), "0xh"
    with database.session() as s:
        ids_for(s, [known])

    def trade(tid: int, buyer: str | None, seller: str | None) -> Trade:
        return Trade("BTC", T0 + tid, tid, D("1.5"), D("2"), "B", "0x" + "ab" * 32, buyer, seller)

    plain = [trade(1, new, known), trade(2, None, odd)]
    prepared = [trade(3, known, new), trade(4, odd, None)]
    shipped = [trade(5, new, new), trade(6, known, known)]
    # A bulk loader's parser resolving ids on its own connection (WalletIds): another new
    # address, one it alone meets, is committed by the resolver before the trades are.
    mine = _address()
    resolved = [trade(7, mine, known), trade(8, None, new), trade(9, odd, mine)]
    with database.session() as s:
        repository = TradeRepository(s)
        assert repository.add_batch(plain).new == 2
        assert repository.add_batch(TradeRepository.prepare(prepared)).new == 2
        if database.dialect == "postgresql":
            ship = replace(TradeRepository.prepare(shipped), trades=())
            assert repository.add_batch(ship).new == 2
        else:
            assert repository.add_batch(shipped).new == 2
    with database.session() as s:
        repository = TradeRepository(s)
        if database.dialect == "postgresql":
            resolver = WalletIds.connect(database.url)
            try:
                ahead = replace(TradeRepository.prepare(resolved, resolve=resolver), trades=())
            finally:
                resolver.close()
            assert ahead.resolved and ahead.addresses == ()
            assert repository.add_batch(ahead).new == 3
        else:
            assert repository.add_batch(resolved).new == 3
    with database.session() as s:
        stored = [(t.tid, t.buyer, t.seller) for t in TradeRepository(s).for_coin("BTC")]
    expected = plain + prepared + shipped + resolved
    assert stored == [(t.tid, t.buyer, t.seller) for t in expected]
