"""The pure mapping helpers, checked against independent integer arithmetic."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from q2c.canonical.money import Money
from q2c.connectors.kantata.payloads import hours, subunits
from q2c.errors import ValidationError


@given(st.integers(min_value=0, max_value=10_000_000))
def test_hours_are_minutes_over_sixty_rounded_half_up_to_a_millionth(minutes: int) -> None:
    micro_hours = (minutes * 2_000_000 + 60) // 120  # floor(m / 60 * 1e6 + 1/2)

    assert hours(minutes) == Decimal(micro_hours).scaleb(-6)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_subunits_are_exact(amount: int) -> None:
    assert subunits(amount, "USD", 100, what="x") == Money(Decimal(amount) / 100, "USD")
    assert subunits(amount, "KWD", None, what="x") == Money(Decimal(amount) / 1000, "KWD")
    assert subunits(amount, "JPY", 1, what="x").amount == amount


def test_unknown_currency_needs_a_business_fix() -> None:
    with pytest.raises(ValidationError) as info:
        subunits(100, "XXX", None, what="expense 5")
    assert "expense 5" in info.value.message
