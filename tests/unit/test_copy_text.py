"""COPY text for bulk inserts: plain values written as they are, anything else escaped."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Table

from models.repositories.bulk import copy_text
from models.trade import TradeSnapshot

TABLE: Table = TradeSnapshot.__table__  # type: ignore[assignment]
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
    assert text.split("\n")[0].split("\t") == [
        "BTC", "1787052617384", "12", "117342.5", "0.00123", "B", "0x" + "ab" * 32,
        "0x" + "5b" * 20, "\\N",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "nasty", ["a\tb", "a\nb", "a\rb", "a\\b", "\\N", "\\", "x\\Ny", "None", "xNoney"]
)
def test_given_a_value_copy_must_escape_or_like_null_when_written_then_it_reads_back_exactly(
    nasty: str,
) -> None:
    rows = [_row(), _row(tid=13, hash=nasty), _row(tid=14)]
    parsed = _parse(copy_text(TABLE, COLUMNS, rows))
    assert [r[6] for r in parsed] == ["0x" + "ab" * 32, nasty, "0x" + "ab" * 32]
    assert [r[8] for r in parsed] == [None, None, None]
    assert all(len(r) == len(COLUMNS) for r in parsed)
