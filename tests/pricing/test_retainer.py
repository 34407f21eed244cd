from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import BillingEvent, BillingModel, Contract
from q2c.errors import ValidationError
from q2c.pricing.retainer import RetainerTerms, settle_retainer_period
from tests.pricing.builders import contract, time_entry, usd

START, END = date(2027, 3, 1), date(2027, 3, 31)


def terms(**changes: object) -> RetainerTerms:
    base = {
        "period_fee": usd("5000.00"),
        "hours_allowance": Decimal(40),
        "overage_rate": usd("150.00"),
        "rollover_cap_hours": Decimal(10),
    }
    return RetainerTerms(**{**base, **changes})  # type: ignore[arg-type]


def entries(*hours: str) -> list[BillingEvent]:
    return [time_entry(f"te-{i}", date(2027, 3, 1 + i), h) for i, h in enumerate(hours)]


def retainer() -> Contract:
    return contract(model=BillingModel.RETAINER)


def test_unused_hours_roll_over_up_to_the_cap() -> None:
    result = settle_retainer_period(
        entries("8", "7"), terms=terms(), contract=retainer(), period_start=START, period_end=END
    )
    assert [line.amount for line in result.outcome.lines] == [usd("5000.00")]
    assert (result.unused_hours, result.carry_out_hours) == (Decimal(25), Decimal(10))


def test_overage_is_trued_up_at_the_rate() -> None:
    result = settle_retainer_period(
        entries("30", "12.5"),
        terms=terms(),
        contract=retainer(),
        carried_in_hours=Decimal(2),
        period_start=START,
        period_end=END,
    )
    fee, overage = result.outcome.lines
    assert fee.amount == usd("5000.00")
    assert overage.quantity == Decimal("0.5")
    assert overage.amount == usd("75.00")
    assert overage.billing_event_ids == ("te-0", "te-1")
    assert result.carry_out_hours == 0


def test_overage_without_rate_is_held() -> None:
    result = settle_retainer_period(
        entries("41"),
        terms=terms(overage_rate=None),
        contract=retainer(),
        period_start=START,
        period_end=END,
    )
    assert len(result.outcome.lines) == 1
    assert result.outcome.held[0].reason == "retainer_overage_unpriced"
    assert "used 1 hours over its retainer allowance" in result.outcome.held[0].message


def test_time_outside_the_period_is_refused() -> None:
    late = [time_entry("te-9", date(2027, 4, 1))]
    with pytest.raises(ValidationError, match="outside the retainer period"):
        settle_retainer_period(
            late, terms=terms(), contract=retainer(), period_start=START, period_end=END
        )


def test_terms_refuse_floats_and_negative_hours() -> None:
    with pytest.raises(TypeError):
        terms(hours_allowance=40.0)
    with pytest.raises(ValueError, match="must not be negative"):
        terms(rollover_cap_hours=Decimal(-1))
