"""Milestone: one entry per milestone, by amount or percent, exact to the contract value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import BillingModel, BillingScheduleLine, RevenueMethod
from q2c.revenue import Milestone, RevenuePlanError, plan_schedule
from tests.revenue.factories import contract, money

MILESTONE = RevenueMethod.MILESTONE


def amounts(schedule) -> list[str]:
    return [format(e.amount.amount, "f") for e in schedule.entries]


def test_percent_milestones_split_the_value_exactly_on_their_due_dates():
    milestones = [
        Milestone("Design", date(2026, 3, 31), percent=Decimal("33.33")),
        Milestone("Build", date(2026, 8, 31), percent=Decimal("33.33")),
        Milestone("Go-live", date(2026, 12, 15), percent=Decimal("33.34")),
    ]
    schedule = plan_schedule(contract("100000.01"), method=MILESTONE, milestones=milestones)
    assert amounts(schedule) == ["33330.00", "33330.00", "33340.01"]
    assert [(e.period_start, e.period_end) for e in schedule.entries] == [
        (m.due, m.due) for m in milestones
    ]
    assert schedule.method is MILESTONE


def test_amount_and_percent_milestones_mix():
    milestones = [
        Milestone("Kick-off", date(2026, 1, 31), amount=money("20000.00")),
        Milestone("Acceptance", date(2026, 6, 30), percent=Decimal("80")),
    ]
    schedule = plan_schedule(contract("100000.00"), method=MILESTONE, milestones=milestones)
    assert amounts(schedule) == ["20000.00", "80000.00"]


def test_percents_short_of_100_name_the_remainder():
    milestones = [
        Milestone("Design", date(2026, 3, 31), percent=Decimal("40")),
        Milestone("Build", date(2026, 8, 31), percent=Decimal("50")),
    ]
    with pytest.raises(RevenuePlanError) as caught:
        plan_schedule(contract("120000.00"), method=MILESTONE, milestones=milestones)
    assert "add up to 90%" in caught.value.message
    assert "remaining 10% (12,000.00 USD)" in caught.value.message
    assert caught.value.kind == "business_fix"


def test_percents_over_100_say_by_how_much():
    milestones = [
        Milestone("A", date(2026, 3, 31), percent=Decimal("60")),
        Milestone("B", date(2026, 8, 31), percent=Decimal("50")),
    ]
    with pytest.raises(RevenuePlanError, match=r"10% \(12,000.00 USD\) more"):
        plan_schedule(contract("120000.00"), method=MILESTONE, milestones=milestones)


def test_amounts_short_of_the_value_name_the_unassigned_amount():
    milestones = [Milestone("A", date(2026, 3, 31), amount=money("90000.00"))]
    with pytest.raises(RevenuePlanError, match=r"remaining 30,000\.00 USD"):
        plan_schedule(contract("120000.00"), method=MILESTONE, milestones=milestones)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"amount": money("1.00"), "percent": Decimal(1)},
        {"percent": Decimal("101")},
        {"amount": money("-1.00")},
        {"amount": money("1.005")},
    ],
)
def test_a_milestone_is_an_amount_or_a_sane_percent(kwargs):
    with pytest.raises(RevenuePlanError):
        Milestone("Bad", date(2026, 1, 1), **kwargs)


def test_milestones_default_to_the_milestone_billing_schedule():
    base = contract("30000.00", method=MILESTONE, billing=BillingModel.MILESTONE)
    lines = [
        BillingScheduleLine(
            sequence=1, bill_date=date(2026, 2, 1), description="Phase 1", amount=money("10000.00")
        ),
        BillingScheduleLine(
            sequence=2, bill_date=date(2026, 5, 1), description="Phase 2", amount=money("20000.00")
        ),
    ]
    schedule = plan_schedule(base.model_copy(update={"billing_schedule": lines}))
    assert amounts(schedule) == ["10000.00", "20000.00"]
    assert [e.period_end for e in schedule.entries] == [date(2026, 2, 1), date(2026, 5, 1)]


def test_no_milestones_and_no_billing_schedule_is_a_business_error():
    with pytest.raises(RevenuePlanError, match="no milestones"):
        plan_schedule(contract(), method=MILESTONE)


def test_jpy_percent_milestones_have_no_fractional_yen():
    milestones = [
        Milestone(str(i), date(2026, i, 1), percent=Decimal(1) / 3 * 100) for i in (1, 2, 3)
    ]
    # 3 x 33.333...% sums to 99.99...%, which rounds to the whole value in yen
    schedule = plan_schedule(
        contract("1000000", currency="JPY"), method=MILESTONE, milestones=milestones
    )
    assert amounts(schedule) == ["333334", "333333", "333333"]


def test_negative_contract_value_is_refused():
    with pytest.raises(RevenuePlanError, match="negative value"):
        plan_schedule(contract("-5.00"))
