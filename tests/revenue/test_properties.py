"""Properties: exact totals, no stray negatives, monotonic progress, idempotent recognition."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from q2c.canonical.models import RevenueMethod, RevenueSchedule
from q2c.canonical.money import Money
from q2c.revenue import (
    ChangeOrderBelowRecognizedError,
    EffortPeriod,
    Milestone,
    MilestoneCompleted,
    apply_change_order,
    plan_schedule,
    recognize,
    update_progress,
)
from q2c.revenue.schedules import month_periods, progress_cumulatives
from tests.revenue.factories import contract

CURRENCIES = st.sampled_from(["USD", "EUR", "JPY", "KWD", "CLF"])
MINOR = st.integers(min_value=0, max_value=10**13)
STARTS = st.dates(min_value=date(2020, 1, 1), max_value=date(2032, 12, 31))
LENGTHS = st.integers(min_value=0, max_value=1500)
HOURS = st.integers(min_value=0, max_value=10_000).map(Decimal)

fast = settings(max_examples=150, deadline=None)


def entries_total(schedule: RevenueSchedule) -> Money:
    return Money.total((e.amount for e in schedule.entries), schedule.total.currency)


@st.composite
def straight_line_contracts(draw):
    currency = draw(CURRENCIES)
    start = draw(STARTS)
    end = start + timedelta(days=draw(LENGTHS))
    return contract(Money.from_minor(draw(MINOR), currency), start=start, end=end)


@st.composite
def effort_plans(draw, min_periods: int = 1):
    months = month_periods(date(2026, 1, 1), date(2027, 12, 31))
    count = draw(st.integers(min_value=min_periods, max_value=12))
    planned = draw(st.lists(HOURS, min_size=count, max_size=count))
    reported = draw(st.integers(min_value=0, max_value=count))
    actual = draw(st.lists(HOURS, min_size=reported, max_size=reported))
    plan = [
        EffortPeriod(s, e, p, actual[i] if i < reported else None)
        for i, ((s, e), p) in enumerate(zip(months[:count], planned, strict=True))
    ]
    if sum(p.hours for p in plan) == 0:
        plan[-1] = EffortPeriod(plan[-1].period_start, plan[-1].period_end, Decimal(1))
    return plan


@fast
@given(straight_line_contracts())
def test_straight_line_sums_exactly_and_covers_the_term(ctr):
    schedule = plan_schedule(ctr)
    assert entries_total(schedule) == schedule.total == ctr.total_value
    assert all(e.amount.amount >= 0 and e.amount.is_rounded() for e in schedule.entries)
    assert schedule.entries[0].period_start == ctr.start_date
    assert schedule.entries[-1].period_end == ctr.end_date
    for before, after in pairwise(schedule.entries):
        assert after.period_start == before.period_end + timedelta(days=1)


@fast
@given(
    CURRENCIES,
    MINOR,
    st.lists(st.integers(min_value=1, max_value=9999), min_size=0, max_size=8, unique=True),
)
def test_percent_milestones_sum_exactly(currency, minor, cuts):
    # cut 100.00% at random basis points into milestones whose percents add to exactly 100
    points = [0, *sorted(cuts), 10_000]
    percents = [Decimal(b - a) / 100 for a, b in pairwise(points)]
    milestones = [
        Milestone(f"M{i}", date(2026, 1, 1) + timedelta(days=i), percent=p)
        for i, p in enumerate(percents)
    ]
    value = Money.from_minor(minor, currency)
    schedule = plan_schedule(contract(value), method=RevenueMethod.MILESTONE, milestones=milestones)
    assert entries_total(schedule) == value
    assert all(e.amount.amount >= 0 for e in schedule.entries)


@fast
@given(CURRENCIES, MINOR, effort_plans())
def test_percent_complete_sums_exactly_never_exceeds_and_never_goes_back(currency, minor, plan):
    value = Money.from_minor(minor, currency)
    schedule = plan_schedule(
        contract(value), method=RevenueMethod.PERCENT_COMPLETE, effort_plan=plan
    )
    assert entries_total(schedule) == value
    assert all(e.amount.amount >= 0 for e in schedule.entries)  # no catch-up in a fresh plan
    cumulatives = progress_cumulatives(value, plan)
    assert all(c <= value for c in cumulatives)
    assert cumulatives == sorted(cumulatives, key=lambda m: m.amount)
    assert cumulatives[-1] == value


@fast
@given(MINOR, effort_plans(), st.integers(min_value=1, max_value=1000).map(Decimal))
def test_cumulative_to_date_grows_when_actuals_grow(minor, plan, extra):
    reported = [i for i, p in enumerate(plan) if p.actual_hours is not None]
    last = reported[-1] if reported else 0
    period = plan[last]
    grown = [*plan]
    grown[last] = EffortPeriod(
        period.period_start, period.period_end, period.planned_hours, period.hours + extra
    )
    value = Money.from_minor(minor, "USD")
    before = progress_cumulatives(value, plan)[last]
    after = progress_cumulatives(value, grown)[last]
    assert before <= after <= value


@fast
@given(MINOR, effort_plans(min_periods=2), st.data())
def test_re_measuring_keeps_recognized_revenue_and_the_total(minor, plan, data):
    value = Money.from_minor(minor, "USD")
    schedule = plan_schedule(
        contract(value),
        method=RevenueMethod.PERCENT_COMPLETE,
        effort_plan=[EffortPeriod(p.period_start, p.period_end, p.planned_hours) for p in plan],
    )
    cut = data.draw(st.integers(min_value=0, max_value=len(plan) - 1))
    closed, _ = recognize(
        schedule,
        through=plan[cut].period_end - timedelta(days=1) if cut == 0 else plan[cut - 1].period_end,
    )
    revised = update_progress(closed, plan)
    recognized = [e for e in closed.entries if e.status == "recognized"]
    assert revised.entries[: len(recognized)] == recognized
    assert entries_total(revised) == value
    # only the first open entry may be negative: the documented catch-up reversal
    assert all(e.amount.amount >= 0 for e in revised.entries[len(recognized) + 1 :])


@fast
@given(straight_line_contracts(), st.data())
def test_recognition_is_idempotent_and_splits_cleanly(ctr, data):
    schedule = plan_schedule(ctr)
    span = (ctr.end_date - ctr.start_date).days + 40
    first = ctr.start_date + timedelta(days=data.draw(st.integers(-5, span)))
    second = first + timedelta(days=data.draw(st.integers(0, span)))
    step1, journal1 = recognize(schedule, through=first)
    step2, journal2 = recognize(step1, through=second)
    direct, journal = recognize(schedule, through=second)
    assert step2 == direct
    keys = [j.idempotency_key for j in journal]
    assert [j.idempotency_key for j in journal1 + journal2] == keys
    assert len(set(keys)) == len(keys)
    assert recognize(direct, through=second) == (direct, [])
    booked = Money.total(
        (e.amount for e in direct.entries if e.status == "recognized"), ctr.currency
    )
    assert Money.total((j.amount for j in journal), ctr.currency) == booked


@fast
@given(straight_line_contracts(), st.data())
def test_change_orders_keep_recognized_entries_and_hit_the_new_value(ctr, data):
    schedule = plan_schedule(ctr)
    periods = len(schedule.entries)
    closes = data.draw(st.integers(min_value=0, max_value=periods - 1))
    through = (
        schedule.entries[closes - 1].period_end if closes else ctr.start_date - timedelta(days=1)
    )
    closed, _ = recognize(schedule, through=through)
    recognized = [e for e in closed.entries if e.status == "recognized"]
    booked = Money.total((e.amount for e in recognized), ctr.currency)
    new_value = Money.from_minor(data.draw(MINOR), ctr.currency)
    effective = through + timedelta(days=1)
    new_end = data.draw(
        st.none() | st.dates(min_value=max(effective, ctr.start_date), max_value=date(2036, 12, 31))
    )
    if new_value < booked:
        with pytest.raises(ChangeOrderBelowRecognizedError):
            apply_change_order(closed, new_value=new_value, effective=effective, new_end=new_end)
        return
    changed = apply_change_order(closed, new_value=new_value, effective=effective, new_end=new_end)
    assert changed.entries[: len(recognized)] == recognized
    assert entries_total(changed) == changed.total == new_value
    assert all(e.amount.amount >= 0 for e in changed.entries)
    assert changed.entries[-1].period_end == (new_end or ctr.end_date)


@fast
@given(CURRENCIES, MINOR, MINOR, st.integers(min_value=2, max_value=6), st.data())
def test_milestone_change_orders_keep_completed_ones(currency, minor, new_minor, count, data):
    value = Money.from_minor(minor, currency)
    milestones = [
        Milestone(f"M{i}", date(2026, i, 1), percent=Decimal(100) / count)
        for i in range(1, count + 1)
    ]
    schedule = plan_schedule(contract(value), method=RevenueMethod.MILESTONE, milestones=milestones)
    done = data.draw(st.sets(st.integers(min_value=1, max_value=count - 1)))
    closed, _ = recognize(
        schedule,
        through=date(2027, 1, 1),
        completed=[MilestoneCompleted(n, date(2026, 6, 1)) for n in done],
    )
    new_value = Money.from_minor(new_minor, currency)
    booked = Money.total((e.amount for e in closed.entries if e.status == "recognized"), currency)
    if new_value < booked:
        with pytest.raises(ChangeOrderBelowRecognizedError):
            apply_change_order(closed, new_value=new_value, effective=date(2026, 6, 2))
        return
    changed = apply_change_order(closed, new_value=new_value, effective=date(2026, 6, 2))
    for before, after in zip(closed.entries, changed.entries, strict=True):
        if before.status == "recognized":
            assert after == before
    assert entries_total(changed) == new_value
