"""Exact number spelling."""

from __future__ import annotations

from decimal import Decimal

import pytest

from workers.simulator.money import dec_str, to_units, units_str


@pytest.mark.parametrize(
    ("units", "decimals", "text"),
    [
        (117341, 0, "117341.0"),
        (43217, 1, "4321.7"),
        (18640, 2, "186.4"),
        (425, 5, "0.00425"),
        (0, 3, "0.0"),
        (-125, 2, "-1.25"),
        (100, 2, "1.0"),
    ],
)
def test_units_str(units: int, decimals: int, text: str) -> None:
    assert units_str(units, decimals) == text
    assert Decimal(text) == Decimal(units).scaleb(-decimals)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("1E+2", "100.0"),
        ("0.000012500", "0.0000125"),
        ("-0", "0.0"),
        ("3.10", "3.1"),
        ("-7", "-7.0"),
    ],
)
def test_dec_str(value: str, text: str) -> None:
    assert dec_str(Decimal(value)) == text


def test_to_units_rounds_half_even() -> None:
    assert to_units(Decimal("1.005"), 2) == 100
    assert to_units(Decimal("1.015"), 2) == 102
