"""COPY text for bulk inserts: plain values written as they are, anything else escaped."""

from __future__ import annotations

from decimal import Decimal
from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import BigInteger, Column, MetaData, String, Table

from events import Trade
from models import hexbytes
from models.base import Money
from models.hexbytes import HexBytes
from models.repositories import trades as trades_module
from models.repositories.bulk import copy_text
from models.repositories.wallet_ids import with_ids

# copy_text over several hex (bytea) columns: a table shaped as trade_snapshots was before
# 0012 (its buyer and seller are wallet ids since; models/repositories/wallet_ids.py).
TABLE = Table(
    "hex_rows",
    MetaData(),
    Column("coin", String(40)),
    Column("time", BigInteger),
    Column("tid", BigInteger),
    Column("px", Money()),
    Column("sz", Money()),
    Column("side", String(1)),
    Column("hash", HexBytes(66)),
    Column("buyer", HexBytes(42)),
    Column("seller", HexBytes(42)),
)
COLUMNS = ("coin", "time", "tid", "px", "sz", "side", "hash", "buyer", "seller")


def _row(**kw: object) -> tuple[object, ...]:
    base: dict[str, object] = {
        "coin": "BTC", "time": 1787052617384, "tid": 12, "px": Decimal("117342.5"),
        "sz": Decimal("0.00123"), "side": "B", "hash": "0x" + "ab" * 32,
        "buyer": "0x" + "5b" * 20, "seller": None,
    }  # fmt: skip
    base.update(kw)
    return tuple(base[c] for c in COLUMNS)


def _parse(text: str) -> list[list[str | None]]:
    """PostgreSQL's reading of COPY text format (the escapes copy_text may write)."""
    unescape = {"\\\\": "\\", "\\t": "\t", "\\n": "\n", "\\r": "\r"}
    rows = []
    for line in text.split("\n")[:-1]:
        fields: list[str | None] = []
        for raw in line.split("\t"):
            if raw == "\\N":
                fields.append(None)
                continue
            out, i = [], 0
            while i < len(raw):
                pair = raw[i : i + 2]
                if pair in unescape:
                    out.append(unescape[pair])
                    i += 2
                else:
                    out.append(raw[i])
                    i += 1
            fields.append("".join(out))
        rows.append(fields)
    return rows


def test_given_plain_rows_when_written_then_values_as_str_and_null_marker() -> None:
    text = copy_text(TABLE, COLUMNS, [_row(), _row(tid=13, buyer=None)])
    assert text.endswith("\n") and text.count("\n") == 2
    # Hashes and addresses are bytea: hex input of their encoding (tag 00, the digits).
    assert text.split("\n")[0].split("\t") == [
        "BTC", "1787052617384", "12", "117342.5", "0.00123", "B", "\\\\x00" + "ab" * 32,
        "\\\\x00" + "5b" * 20, "\\N",
    ]  # fmt: skip


def _bytea(field: str | None) -> str | None:
    """A bytea field as PostgreSQL reads it (hex input) and the column type decodes it."""
    if field is None:
        return None
    assert field.startswith("\\x"), field
    return hexbytes.decode(bytes.fromhex(field[2:]))


@pytest.mark.parametrize(
    "nasty", ["a\tb", "a\nb", "a\rb", "a\\b", "\\N", "\\", "x\\Ny", "None", "xNoney"]
)
def test_given_a_value_copy_must_escape_or_like_null_when_written_then_it_reads_back_exactly(
    nasty: str,
) -> None:
    rows = [_row(), _row(tid=13, hash=nasty), _row(tid=14)]
    parsed = _parse(copy_text(TABLE, COLUMNS, rows))
    assert [_bytea(r[6]) for r in parsed] == ["0x" + "ab" * 32, nasty, "0x" + "ab" * 32]
    assert [r[8] for r in parsed] == [None, None, None]
    assert all(len(r) == len(COLUMNS) for r in parsed)


@pytest.mark.parametrize(
    "odd", ["0xAB", "0x1", "0xh", "0x", "0x ab", "hash", "", "\x01x", "0x" + "ab" * 40, "é"]
)
def test_given_a_hex_column_value_not_canonical_when_written_then_it_reads_back_exactly(
    odd: str,
) -> None:
    # Given a batch whose other rows take the one-replace fast path
    rows = [_row(), _row(tid=13, hash=odd, seller="0x" + "0c" * 20), _row(tid=14)]
    # When written, Then every hex field reads back as the string given (the batch goes the
    # value-by-value way, or the fast one when the value is canonical: "0x" is)
    parsed = _parse(copy_text(TABLE, COLUMNS, rows))
    assert [_bytea(r[6]) for r in parsed] == ["0x" + "ab" * 32, odd, "0x" + "ab" * 32]
    assert _bytea(parsed[1][8]) == "0x" + "0c" * 20


@pytest.mark.parametrize(
    "value",
    ["0x" + "00" * 32, "0x" + "ab" * 20, "0x", "0xAB", "0x1", "h", "", "\x00", "\x01", "0xé"],
)
def test_given_any_string_when_encoded_then_decoded_back_and_canonical_hex_is_compact(
    value: str,
) -> None:
    encoded = hexbytes.encode(value)
    assert hexbytes.decode(encoded) == value
    if value.startswith("0x") and value == value.lower() and len(value) % 2 == 0:
        assert len(encoded) == 1 + (len(value) - 2) // 2


def test_given_distinct_strings_when_encoded_then_encodings_distinct() -> None:
    values = ["0xab", "0xAB", "\x01" + "0xab", "0x" + "00", "\x00", "\x01", "", "ab", "0x"]
    assert len({hexbytes.encode(v) for v in values}) == len(values)


_ADDRESS = st.sampled_from(["0x" + "5b" * 20, "0x" + "0c" * 20, "0xAB", "a\tb", None])


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["BTC", "@107", "a\\b", "None", "x\ty"]),
            st.integers(0, 2**62),
            st.integers(1, 2**62),
            st.decimals(D("0.000001"), D("1e9"), places=6),
            st.decimals(D("0.000001"), D("1e6"), places=6),
            st.sampled_from("AB"),
            st.sampled_from(["0x" + "ab" * 32, "0x", "0xab0x", "0xAB", "0x1", "h", "\\x", ""]),
            _ADDRESS,
            _ADDRESS,
        ),
        max_size=8,
    )
)
def test_given_any_trades_when_prepared_then_the_copy_text_of_the_general_function(
    rows: list[tuple],
) -> None:
    # Given trades, plain or not, and ids for some of their wallets (a missing id is NULL)
    trades = [Trade(*row) for row in rows]
    ids = {"0x" + "5b" * 20: 7, "0xAB": 12, "a\tb": 3}
    # When rendered by the trades' one-pass writer, Then exactly what the general one writes
    expected = copy_text(trades_module._TABLE, trades_module._COLUMNS, with_ids(trades, ids))
    assert trades_module._copy_text(trades, ids) == expected
