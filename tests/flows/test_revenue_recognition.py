"""Revenue recognition at period close: by method, journaled deferred -> earned, never twice."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import BillingEvent, BillingEventKind, BillingModel, RevenueMethod
from q2c.canonical.money import Money
from q2c.flows import invoice_to_ledger, revenue_recognition
from q2c.mapping.value_maps import ValueMaps
from tests.flows.cash_world import MAPPINGS, CashWorld, time_entry, usd

MONTH_ENDS = [date(2026, 11, 30), date(2026, 12, 31), date(2027, 1, 31), date(2027, 2, 28),
              date(2027, 3, 31), date(2027, 4, 30)]


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(db, clock, extra_flows=(invoice_to_ledger.build_flow(),
                                          revenue_recognition.build_flow()))
    w.seed_reference()
    return w


def journal_total(world: CashWorld) -> Money:
    return Money.total((j["journal"].lines[0].debit for j in world.ledger.journals.values()),
                       "USD")


def test_straight_line_recognises_by_month_and_totals_the_contract_to_the_cent(world):
    world.seed_contract("100", model=BillingModel.FIXED_FEE, total="100000.00",
                        revenue=RevenueMethod.STRAIGHT_LINE)
    world.close_period(MONTH_ENDS[0])
    world.run()
    first = journal_total(world)
    assert Decimal(0) < first.amount < Decimal("100000.00")
    [journal] = world.ledger.journals.values()
    debit, credit = journal["journal"].lines
    assert (debit.account, credit.account) == ("2400", "4000")  # deferred -> revenue
    assert debit.debit == credit.credit == first
    for period_end in MONTH_ENDS[1:]:
        world.close_period(period_end)
        world.run()
    assert journal_total(world) == usd("100000.00")
    assert world.statuses(revenue_recognition.NAME) == {"completed": 6}


def test_closing_a_period_twice_never_recognises_twice(world):
    world.seed_contract("101", model=BillingModel.FIXED_FEE, total="60000.00",
                        revenue=RevenueMethod.STRAIGHT_LINE)
    world.close_period(MONTH_ENDS[0])
    world.close_period(MONTH_ENDS[0])  # duplicate delivery
    world.close_period(MONTH_ENDS[0], event_id="close-again-by-hand")  # a new event, same key
    world.run()
    # a later close re-plans from scratch and must skip what November already recognised
    world.close_period(MONTH_ENDS[1])
    world.run()
    assert len(world.ledger.journals) == 2
    keys = {d["document_id"] for d in world.documents.documents("revenue")}
    assert keys == set(world.ledger.journals)


def test_as_invoiced_recognises_the_posted_invoices_before_tax(world):
    contract = world.seed_contract("102")  # T&M, as-invoiced
    world.deliver(time_entry("te-1", "102", date(2026, 11, 10), "10"))
    world.run()
    world.bill(contract, MONTH_ENDS[0])
    world.run()
    world.close_period(MONTH_ENDS[0])
    world.run()
    assert journal_total(world) == usd("2000.00")


def test_milestone_revenue_waits_for_the_completion(world):
    schedule = [
        {"sequence": 1, "bill_date": date(2026, 11, 20), "description": "Design",
         "amount": usd("30000.00")},
        {"sequence": 2, "bill_date": date(2027, 1, 20), "description": "Build",
         "amount": usd("70000.00")},
    ]
    world.seed_contract("103", model=BillingModel.MILESTONE, total="100000.00",
                        revenue=RevenueMethod.MILESTONE, schedule=schedule)
    world.close_period(MONTH_ENDS[0])
    world.run()
    assert world.ledger.journals == {}  # due in November, but not completed yet
    world.deliver(BillingEvent(id="ms-1", kind=BillingEventKind.MILESTONE, project_id="prj-103",
                               work_date=date(2026, 12, 3), unit="each",
                               amount=usd("30000.00")))
    world.run()
    world.close_period(MONTH_ENDS[1])
    world.run()
    assert journal_total(world) == usd("30000.00")


def test_a_missing_revenue_account_mapping_parks_the_close(world):
    world.maps = ValueMaps.from_config({k: v for k, v in MAPPINGS.items() if k != "gl_account"})
    world.seed_contract("104", model=BillingModel.FIXED_FEE, total="60000.00",
                        revenue=RevenueMethod.STRAIGHT_LINE)
    world.close_period(MONTH_ENDS[0])
    world.run()
    [parked] = world.open_exceptions()
    assert "deferred_revenue" in parked.message
    assert world.ledger.journals == {}
    world.maps = ValueMaps.from_config(MAPPINGS)
    world.engine.replay(parked.transaction_id, by="controller")
    world.run()
    assert len(world.ledger.journals) == 1
