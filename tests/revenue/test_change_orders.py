"""Change orders: recognized entries stay, the rest is re-planned to the new value."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import RevenueMethod
from q2c.canonical.money import Money
from q2c.revenue import (
    ChangeOrderBelowRecognizedError,
    EffortPeriod,
    Milestone,
    MilestoneCompleted,
    NoRemainingPeriodError,
    RevenuePlanError,
    apply_change_order,
    plan_schedule,
    recognize,
    schedule_version,
)
from tests.revenue.factories import contract, money


def amounts(schedule) -> list[str]:
    return [format(e.amount.amount, "f") for e in schedule.entries]


def total(schedule) -> Money:
    return Money.total((e.amount for e in schedule.entries), schedule.total.currency)


def straight_line_through_march():
    closed, _ = recognize(plan_schedule(contract("120000.00")), through=date(2026, 3, 31))
    return closed


def test_increase_is_spread_over_the_remaining_months():
    changed = apply_change_order(
        straight_line_through_march(), new_value=money("129000.00"), effective=date(2026, 4, 1)
    )
    assert amounts(changed) == ["10000.00"] * 3 + ["11000.00"] * 9
    assert [e.status for e in changed.entries[:3]] == ["recognized"] * 3
    assert changed.total == total(changed) == money("129000.00")
    assert schedule_version(changed) == 2 and changed.id == "ctr-1-rev-v2"


def test_extension_adds_months_at_the_new_end():
    changed = apply_change_order(
        straight_line_through_march(),
        new_value=money("150000.00"),
        effective=date(2026, 4, 1),
        new_end=date(2027, 3, 31),
    )
    assert len(changed.entries) == 15
    assert changed.entries[-1].period_end == date(2027, 3, 31)
    assert amounts(changed)[3:] == ["10000.00"] * 12


def test_open_months_before_the_effective_date_keep_the_old_terms():
    changed = apply_change_order(
        straight_line_through_march(), new_value=money("126000.00"), effective=date(2026, 5, 10)
    )
    # April (delivered, not closed) stays at 10,000.00; May..Dec share 126,000 - 40,000
    assert amounts(changed)[:4] == ["10000.00"] * 4
    assert amounts(changed)[4:] == ["10750.00"] * 8
    assert changed.entries[3].status == "planned"


def test_below_recognized_needs_a_catch_up_reversal():
    with pytest.raises(ChangeOrderBelowRecognizedError) as caught:
        apply_change_order(
            straight_line_through_march(), new_value=money("25000.00"), effective=date(2026, 4, 1)
        )
    error = caught.value
    assert "30,000.00 USD has already been recognized" in error.message
    assert "cumulative catch-up reversal of 5,000.00 USD" in error.message
    assert error.kind == "business_fix"
    assert error.context["recognized"] == "30,000.00 USD"


def test_below_what_was_earned_before_the_effective_date_is_named_too():
    with pytest.raises(ChangeOrderBelowRecognizedError, match="earned before it took effect"):
        apply_change_order(
            straight_line_through_march(), new_value=money("35000.00"), effective=date(2026, 6, 1)
        )


def test_change_after_the_term_without_a_new_end_has_nowhere_to_go():
    closed, _ = recognize(plan_schedule(contract("120000.00")), through=date(2026, 12, 31))
    with pytest.raises(NoRemainingPeriodError):
        apply_change_order(closed, new_value=money("130000.00"), effective=date(2027, 1, 1))
    extended = apply_change_order(
        closed, new_value=money("130000.00"), effective=date(2027, 1, 1), new_end=date(2027, 1, 31)
    )
    assert amounts(extended)[-1] == "10000.00"


def test_currency_mismatch_is_refused():
    with pytest.raises(RevenuePlanError, match="EUR"):
        apply_change_order(
            straight_line_through_march(),
            new_value=money("1.00", "EUR"),
            effective=date(2026, 4, 1),
        )


def test_milestones_keep_their_order_and_share_the_rest_proportionally():
    milestones = [
        Milestone("A", date(2026, 3, 31), percent=Decimal(20)),
        Milestone("B", date(2026, 6, 30), percent=Decimal(30)),
        Milestone("C", date(2026, 9, 30), percent=Decimal(50)),
    ]
    schedule = plan_schedule(
        contract("100000.00"), method=RevenueMethod.MILESTONE, milestones=milestones
    )
    done, _ = recognize(
        schedule, through=date(2026, 7, 1), completed=[MilestoneCompleted(2, date(2026, 7, 1))]
    )
    changed = apply_change_order(
        done, new_value=money("110000.00"), effective=date(2026, 7, 2), new_end=date(2026, 8, 31)
    )
    assert amounts(changed) == ["22857.14", "30000.00", "57142.86"]
    assert [e.status for e in changed.entries] == ["planned", "recognized", "planned"]
    assert changed.entries[2].period_end == date(2026, 8, 31)  # pulled in to the new end
    assert changed.entries[1] == done.entries[1]


def test_percent_complete_with_a_revised_effort_plan_re_measures():
    months = [(date(2026, m, 1), date(2026, m, 28)) for m in (1, 2, 3)]
    plan = [EffortPeriod(s, e, Decimal(100)) for s, e in months]
    schedule = plan_schedule(
        contract("30000.00"), method=RevenueMethod.PERCENT_COMPLETE, effort_plan=plan
    )
    jan, _ = recognize(schedule, through=date(2026, 1, 31))
    revised = [
        EffortPeriod(*months[0], Decimal(100), Decimal(100)),
        EffortPeriod(*months[1], Decimal(100)),
        EffortPeriod(*months[2], Decimal(100)),
    ]
    changed = apply_change_order(
        jan, new_value=money("60000.00"), effective=date(2026, 2, 1), effort_plan=revised
    )
    # cumulative catch-up: 1/3 of 60,000 should be earned by Jan; Feb takes the 10,000 gap
    assert amounts(changed) == ["10000.00", "30000.00", "20000.00"]


def test_percent_complete_without_a_plan_spreads_in_proportion():
    months = [(date(2026, m, 1), date(2026, m, 28)) for m in (1, 2, 3)]
    plan = [
        EffortPeriod(s, e, Decimal(h)) for (s, e), h in zip(months, (100, 100, 200), strict=True)
    ]
    schedule = plan_schedule(
        contract("40000.00"), method=RevenueMethod.PERCENT_COMPLETE, effort_plan=plan
    )
    jan, _ = recognize(schedule, through=date(2026, 1, 31))
    changed = apply_change_order(jan, new_value=money("55000.00"), effective=date(2026, 2, 1))
    assert amounts(changed) == ["10000.00", "15000.00", "30000.00"]
    with pytest.raises(RevenuePlanError, match="revised effort plan"):
        apply_change_order(
            jan, new_value=money("55000.00"), effective=date(2026, 2, 1), new_end=date(2026, 6, 30)
        )


def test_as_invoiced_change_moves_the_cap():
    invoices = [(date(2026, m, 28), money("4000.00")) for m in (1, 2, 3)]
    schedule = plan_schedule(
        contract("20000.00"), method=RevenueMethod.AS_INVOICED, invoices=invoices
    )
    feb, _ = recognize(schedule, through=date(2026, 2, 28))
    changed = apply_change_order(feb, new_value=money("10000.00"), effective=date(2026, 3, 1))
    assert amounts(changed) == ["4000.00", "4000.00", "2000.00"]
    assert changed.total == money("10000.00")


def test_recognized_entries_under_the_old_version_are_not_recognized_again():
    changed = apply_change_order(
        straight_line_through_march(), new_value=money("129000.00"), effective=date(2026, 4, 1)
    )
    _, journal = recognize(changed, through=date(2026, 4, 30))
    assert [j.idempotency_key for j in journal] == ["rev-ctr-1-v2-20260401-20260430"]
