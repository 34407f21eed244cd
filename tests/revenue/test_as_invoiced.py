"""As-invoiced: entries mirror invoices; never above the cap unless uncapped T&M."""

from __future__ import annotations

from datetime import date

import pytest

from q2c.canonical.models import BillingModel, RevenueMethod
from q2c.revenue import RevenuePlanError, plan_schedule
from tests.revenue.factories import contract, money

AS_INVOICED = RevenueMethod.AS_INVOICED


def amounts(schedule) -> list[str]:
    return [format(e.amount.amount, "f") for e in schedule.entries]


def test_entries_mirror_invoices_in_date_order():
    invoices = [(date(2026, 2, 28), money("3000.00")), (date(2026, 1, 31), money("2500.00"))]
    schedule = plan_schedule(contract("10000.00"), method=AS_INVOICED, invoices=invoices)
    assert [(e.period_start, e.period_end) for e in schedule.entries] == [
        (date(2026, 1, 31), date(2026, 1, 31)),
        (date(2026, 2, 28), date(2026, 2, 28)),
    ]
    assert amounts(schedule) == ["2500.00", "3000.00"]
    assert schedule.total == money("10000.00")  # the cap; 4,500.00 is not invoiced yet


def test_fixed_fee_revenue_stops_at_the_contract_value():
    invoices = [(date(2026, m, 28), money("4000.00")) for m in (1, 2, 3, 4)]
    schedule = plan_schedule(contract("10000.00"), method=AS_INVOICED, invoices=invoices)
    assert amounts(schedule) == ["4000.00", "4000.00", "2000.00"]


def test_capped_time_and_materials_stops_at_the_not_to_exceed():
    base = contract(
        "10000.00", billing=BillingModel.TIME_AND_MATERIALS, not_to_exceed=money("12000.00")
    )
    invoices = [(date(2026, m, 28), money("5000.00")) for m in (1, 2, 3)]
    schedule = plan_schedule(base, method=AS_INVOICED, invoices=invoices)
    assert amounts(schedule) == ["5000.00", "5000.00", "2000.00"]
    assert schedule.total == money("12000.00")


def test_uncapped_time_and_materials_recognizes_all_it_invoices():
    base = contract("10000.00", billing=BillingModel.TIME_AND_MATERIALS)
    invoices = [(date(2026, m, 28), money("6000.00")) for m in (1, 2)]
    schedule = plan_schedule(base, method=AS_INVOICED, invoices=invoices)
    assert amounts(schedule) == ["6000.00", "6000.00"]
    assert schedule.total == money("12000.00")


def test_credit_note_reduces_revenue_only_below_the_cap():
    invoices = [
        (date(2026, 1, 31), money("8000.00")),
        (date(2026, 2, 28), money("4000.00")),  # 2,000.00 above the cap
        (date(2026, 3, 15), money("-3000.00")),  # 2,000.00 of it cancels the excess
    ]
    schedule = plan_schedule(contract("10000.00"), method=AS_INVOICED, invoices=invoices)
    assert amounts(schedule) == ["8000.00", "2000.00", "-1000.00"]


def test_no_invoices_yet_is_an_empty_schedule():
    schedule = plan_schedule(contract("10000.00"), method=AS_INVOICED)
    assert schedule.entries == []


def test_invoice_in_another_currency_is_refused():
    with pytest.raises(RevenuePlanError, match="EUR"):
        plan_schedule(
            contract(), method=AS_INVOICED, invoices=[(date(2026, 1, 1), money("1.00", "EUR"))]
        )
