"""Straight-line: ratable by calendar month, partial months prorated by days."""

from __future__ import annotations

from datetime import date

import pytest

from q2c.canonical.models import RevenueMethod
from q2c.canonical.money import Money
from q2c.revenue import plan_schedule, schedule_version
from q2c.revenue.schedules import month_periods, month_weight
from tests.revenue.factories import contract, money


def amounts(schedule) -> list[str]:
    return [format(e.amount.amount, "f") for e in schedule.entries]


def test_a_year_is_twelve_equal_months_whatever_their_length():
    schedule = plan_schedule(contract("120000.00"))
    assert schedule.method is RevenueMethod.STRAIGHT_LINE
    assert amounts(schedule) == ["10000.00"] * 12
    assert [e.period_start for e in schedule.entries] == [date(2026, m, 1) for m in range(1, 13)]
    assert schedule.entries[1].period_end == date(2026, 2, 28)
    assert all(e.status == "planned" for e in schedule.entries)
    assert schedule.total == money("120000.00")


def test_mid_month_start_prorates_first_and_last_month_by_days():
    # 16-31 Jan = 16/31 of a month, Feb and Mar whole, 1-15 Apr = 15/30: 3.016129 months
    schedule = plan_schedule(contract("100000.00", start=date(2026, 1, 16), end=date(2026, 4, 15)))
    assert [(e.period_start, e.period_end) for e in schedule.entries] == [
        (date(2026, 1, 16), date(2026, 1, 31)),
        (date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 3, 1), date(2026, 3, 31)),
        (date(2026, 4, 1), date(2026, 4, 15)),
    ]
    assert amounts(schedule) == ["17112.30", "33155.08", "33155.08", "16577.54"]
    assert Money.total((e.amount for e in schedule.entries), "USD") == money("100000.00")


def test_leftover_cents_go_to_the_largest_remainders():
    schedule = plan_schedule(contract("100.00", end=date(2026, 3, 31)))
    assert amounts(schedule) == ["33.34", "33.33", "33.33"]


def test_single_day_contract_is_one_entry():
    schedule = plan_schedule(contract("999.99", start=date(2026, 5, 7), end=date(2026, 5, 7)))
    assert amounts(schedule) == ["999.99"]


@pytest.mark.parametrize(
    ("currency", "value", "expected"),
    [
        ("JPY", "1000000", ["333334", "333333", "333333"]),
        ("KWD", "1000.000", ["333.334", "333.333", "333.333"]),
    ],
)
def test_currencies_without_and_with_three_minor_units(currency, value, expected):
    schedule = plan_schedule(contract(value, end=date(2026, 3, 31), currency=currency))
    assert amounts(schedule) == expected
    assert all(e.amount.currency == currency for e in schedule.entries)


def test_sub_cent_contract_value_is_rounded_before_it_is_split():
    schedule = plan_schedule(contract("1000.005", end=date(2026, 2, 28)))
    assert schedule.total == money("1000.01")
    assert amounts(schedule) == ["500.01", "500.00"]


def test_leap_february_is_a_whole_month():
    assert month_weight(date(2028, 2, 1), date(2028, 2, 29)) == month_weight(
        date(2028, 1, 1), date(2028, 1, 31)
    )
    assert month_periods(date(2028, 2, 10), date(2028, 3, 5)) == [
        (date(2028, 2, 10), date(2028, 2, 29)),
        (date(2028, 3, 1), date(2028, 3, 5)),
    ]


def test_schedule_id_carries_version_one():
    schedule = plan_schedule(contract())
    assert schedule.id == "ctr-1-rev-v1"
    assert schedule_version(schedule) == 1
    assert schedule.contract_id == "ctr-1"
