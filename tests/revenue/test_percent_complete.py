"""Percent-complete: cumulative revenue = value x hours to date / estimate at completion."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import RevenueMethod
from q2c.revenue import (
    EffortPeriod,
    NoRemainingPeriodError,
    RevenuePlanError,
    plan_schedule,
    recognize,
    update_progress,
)
from q2c.revenue.schedules import progress_cumulatives
from tests.revenue.factories import contract, money

POC = RevenueMethod.PERCENT_COMPLETE


def quarter(planned: list[int], actual: list[int | None]) -> list[EffortPeriod]:
    months = [
        (date(2026, 1, 1), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
    ]
    return [
        EffortPeriod(start, end, Decimal(p), None if a is None else Decimal(a))
        for (start, end), p, a in zip(months, planned, actual, strict=True)
    ]


def amounts(schedule) -> list[str]:
    return [format(e.amount.amount, "f") for e in schedule.entries]


def test_plan_follows_planned_hours():
    schedule = plan_schedule(
        contract("90000.00"), method=POC, effort_plan=quarter([100, 200, 300], [None] * 3)
    )
    assert amounts(schedule) == ["15000.00", "30000.00", "45000.00"]
    assert [e.period_end for e in schedule.entries] == [
        date(2026, 1, 31),
        date(2026, 2, 28),
        date(2026, 3, 31),
    ]


def test_actuals_replace_the_plan_and_the_estimate_moves_with_them():
    # Jan: 150 actual (plan 100); EAC = 150 + 200 + 300 = 650
    schedule = plan_schedule(
        contract("65000.00"), method=POC, effort_plan=quarter([100, 200, 300], [150, None, None])
    )
    assert amounts(schedule) == ["15000.00", "20000.00", "30000.00"]


def test_estimate_increase_after_recognition_is_a_cumulative_catch_up_reversal():
    value = contract("100000.00")
    schedule = plan_schedule(
        value, method=POC, effort_plan=quarter([500, 250, 250], [500, None, None])
    )
    closed, _ = recognize(schedule, through=date(2026, 1, 31))
    assert amounts(closed)[0] == "50000.00"
    # February worked 100 h, and the team now expects 1,900 h more in March: EAC 2,500
    revised = update_progress(closed, quarter([500, 250, 1900], [500, 100, None]))
    # cumulative after Feb = 600 / 2,500 = 24% = 24,000.00: Feb reverses 26,000.00
    assert amounts(revised) == ["50000.00", "-26000.00", "76000.00"]
    assert revised.entries[0] == closed.entries[0]
    assert sum(e.amount.amount for e in revised.entries) == Decimal("100000.00")


def test_estimate_decrease_is_a_positive_catch_up():
    schedule = plan_schedule(
        contract("100000.00"), method=POC, effort_plan=quarter([250, 250, 500], [250, None, None])
    )
    closed, _ = recognize(schedule, through=date(2026, 1, 31))
    revised = update_progress(closed, quarter([250, 250, 0], [250, 250, None]))
    assert amounts(revised) == ["25000.00", "75000.00", "0.00"]


def test_cumulative_never_exceeds_value_and_ends_on_it():
    cumulatives = progress_cumulatives(money("1000.00"), quarter([1, 1, 1], [1, 1, 1]))
    assert [format(c.amount, "f") for c in cumulatives] == ["333.33", "666.67", "1000.00"]


@pytest.mark.parametrize(
    "plan",
    [
        [],
        quarter([0, 0, 0], [None, None, None]),
        quarter([1, 1, 1], [None, 5, None]),
        [
            EffortPeriod(date(2026, 2, 1), date(2026, 2, 28), Decimal(1)),
            EffortPeriod(date(2026, 1, 1), date(2026, 1, 31), Decimal(1)),
        ],
    ],
    ids=["empty", "zero-hours", "actual-after-gap", "out-of-order"],
)
def test_bad_effort_plans_are_business_errors(plan):
    with pytest.raises(RevenuePlanError):
        plan_schedule(contract(), method=POC, effort_plan=plan)


def test_negative_or_float_hours_are_refused():
    with pytest.raises(RevenuePlanError):
        EffortPeriod(date(2026, 1, 1), date(2026, 1, 31), Decimal(-1))
    with pytest.raises(ValueError, match="float"):
        EffortPeriod(date(2026, 1, 1), date(2026, 1, 31), 1.5)  # type: ignore[arg-type]


def test_effort_period_straddling_a_recognized_period_is_refused():
    schedule = plan_schedule(
        contract("100.00"), method=POC, effort_plan=quarter([1, 1, 1], [1, None, None])
    )
    closed, _ = recognize(schedule, through=date(2026, 1, 31))
    bad = [EffortPeriod(date(2026, 1, 15), date(2026, 3, 31), Decimal(3), Decimal(1))]
    with pytest.raises(RevenuePlanError, match="straddles"):
        update_progress(closed, bad)


def test_value_left_after_every_period_is_recognized_has_nowhere_to_go():
    schedule = plan_schedule(
        contract("100.00"), method=POC, effort_plan=quarter([1, 1, 1], [1, 1, 1])
    )
    closed, _ = recognize(schedule, through=date(2026, 3, 31))
    with pytest.raises(NoRemainingPeriodError):
        update_progress(
            closed.model_copy(update={"total": money("150.00")}), quarter([1, 1, 1], [1, 1, 1])
        )


def test_percent_complete_needs_an_effort_plan():
    with pytest.raises(RevenuePlanError, match="no effort plan"):
        plan_schedule(contract(), method=POC)
