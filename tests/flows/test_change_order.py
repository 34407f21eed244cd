"""Change orders: a raised not-to-exceed bills what the cap held back (never twice), a cap
below what is billed is refused, change numbers apply once and in order, and the revenue
re-plan totals the new contract value to the cent — on both stores."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from q2c.canonical.models import (
    BillingModel,
    ChangeOrder,
    Contract,
    RevenueMethod,
    RevenueSchedule,
)
from q2c.canonical.money import Money
from q2c.flows import change_order, revenue_recognition
from q2c.flows.change_order import change_order_event
from q2c.flows.delivery_to_billing import RUN
from q2c.flows.revenue_recognition import REVENUE_SCHEDULE
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.store.schema import outbox
from tests.flows.cash_world import CashWorld, time_entry, usd

NOV, DEC, JAN = date(2026, 11, 30), date(2026, 12, 31), date(2027, 1, 31)


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(
        db, clock, extra_flows=(change_order.build_flow(), revenue_recognition.build_flow())
    )
    w.seed_reference()
    return w


def order(contract_id: str, number: int, **changes: Any) -> ChangeOrder:
    return ChangeOrder(
        contract_id=contract_id,
        change_number=number,
        effective_date=changes.pop("effective_date", date(2026, 12, 1)),
        approved_by="m.jones@firm.example",
        reason="Client extended the discovery phase",
        **changes,
    )


def contract_of(world: CashWorld, contract_id: str) -> Contract:
    contract = world.records.current("contract", contract_id, Contract)
    assert contract is not None
    return contract


def published(world: CashWorld, event_type: str) -> list[dict[str, Any]]:
    with world.db.connect() as c:
        rows = c.execute(sa.select(outbox.c.payload).where(outbox.c.type == event_type)).all()
    return [json.loads(r.payload)["data"] for r in rows]


def billed_to_the_cap(world: CashWorld) -> str:
    """A T&M contract capped at 1,000.00 with 1,800.00 of approved time (Senior, 200.00/h)."""
    contract = world.seed_contract("300", not_to_exceed="1000.00")
    world.deliver(
        time_entry("te-1", "300", date(2026, 11, 3), "3"),  # 600.00
        time_entry("te-2", "300", date(2026, 11, 4), "2"),  # 400.00: reaches the cap
        time_entry("te-3", "300", date(2026, 11, 5), "1"),  # 200.00: held back
        time_entry("te-4", "300", date(2026, 11, 6), "3"),  # 600.00: held back
    )
    world.run()
    world.bill(contract, NOV)
    world.run()
    [cap] = world.open_exceptions()
    assert "reached its not-to-exceed" in cap.message
    return contract


def test_a_raised_cap_resolves_the_exception_and_the_next_run_bills_what_it_held(world):
    contract = billed_to_the_cap(world)
    assert world.billable.billed_total(contract, "USD") == usd("1000.00")

    world.accept(change_order_event(order(contract, 1, not_to_exceed=usd("1800.00"))))
    world.run()

    assert world.statuses(change_order.NAME) == {"completed": 1}
    assert world.open_exceptions() == []
    [resolved] = [e for e in world.exceptions.list(ExceptionFilter(status=None)) if e.flow == RUN]
    assert resolved.status == "resolved"
    assert "change order 1" in (resolved.resolution or "")
    assert "m.jones@firm.example" in (resolved.resolution or "")
    changed = contract_of(world, contract)
    assert changed.not_to_exceed == usd("1800.00")
    assert len(world.records.versions("contract", contract, Contract)) == 2
    # as-invoiced revenue is capped where billing is: the new not-to-exceed
    schedule = world.records.current(REVENUE_SCHEDULE, contract, RevenueSchedule)
    assert schedule is not None and schedule.total == usd("1800.00")
    [event] = published(world, "contract.changed")
    assert (event["change_number"], event["not_to_exceed"]["amount"]) == (1, "1800.00")
    assert event["previous_not_to_exceed"]["amount"] == "1000.00"
    assert {"te-3", "te-4"} <= set(event["released_event_ids"])

    world.bill(contract, DEC, start=date(2026, 12, 1))
    world.run()
    second = [i for i in world.billing.invoices.values() if i.subtotal != usd("1000.00")]
    [invoice] = second
    assert invoice.subtotal == usd("800.00")
    for held_back in ("te-3", "te-4"):
        row = world.billable.inclusion(held_back)
        assert row is not None
        assert (row["status"], row["invoice_ref"]) == ("billed", invoice.id)
    assert world.billable.billed_total(contract, "USD") == usd("1800.00")
    assert world.open_exceptions() == []

    # a later run finds nothing left: nothing is billed twice
    world.bill(contract, JAN, start=date(2027, 1, 1))
    world.run()
    assert len(world.billing.invoices) == 2
    assert world.billable.billed_total(contract, "USD") == usd("1800.00")


def test_a_cap_raised_part_way_bills_up_to_it_and_parks_the_rest_again(world):
    contract = billed_to_the_cap(world)
    world.accept(change_order_event(order(contract, 1, not_to_exceed=usd("1200.00"))))
    world.run()
    assert world.open_exceptions() == []
    world.bill(contract, DEC, start=date(2026, 12, 1))
    world.run()
    assert world.billable.billed_total(contract, "USD") == usd("1200.00")
    [cap] = world.open_exceptions()
    assert "reached its not-to-exceed of 1,200.00 USD" in cap.message


def test_a_cap_below_what_is_billed_is_refused_and_changes_nothing(world):
    contract = billed_to_the_cap(world)
    world.accept(change_order_event(order(contract, 1, not_to_exceed=usd("900.00"))))
    world.run()

    assert world.statuses(change_order.NAME) == {"parked": 1}
    [refused] = [e for e in world.open_exceptions() if e.flow == change_order.NAME]
    assert "below the 1,000.00 USD already billed" in refused.message
    assert "at least 1,000.00 USD" in refused.suggested_fix
    assert refused.context["field"] == "not_to_exceed"
    assert contract_of(world, contract).not_to_exceed == usd("1000.00")
    assert world.records.current(change_order.CHANGE_ORDER, contract, ChangeOrder) is None
    assert published(world, "contract.changed") == []
    # the cap exception stays open: nothing raised the cap
    assert any(e.flow == RUN for e in world.open_exceptions())


def test_change_numbers_apply_once_and_in_order(world):
    contract = world.seed_contract("310", not_to_exceed="1000.00")

    world.accept(change_order_event(order(contract, 2, not_to_exceed=usd("3000.00"))))
    world.run()
    [early] = world.open_exceptions()
    assert "arrived before change order 1" in early.message
    assert contract_of(world, contract).not_to_exceed == usd("1000.00")

    first = order(contract, 1, not_to_exceed=usd("2000.00"))
    world.accept(change_order_event(first))
    world.run()
    assert contract_of(world, contract).not_to_exceed == usd("2000.00")

    # the same change order again, as a duplicate delivery and as a new event
    [again] = world.accept(change_order_event(first))
    assert again.status == "duplicate"
    retyped = change_order_event(order(contract, 1, not_to_exceed=usd("2500.00")))
    [rekeyed] = world.accept(retyped.model_copy(update={"id": "typed-in-again"}))
    assert rekeyed.status == "duplicate_business_key"
    world.run()
    assert contract_of(world, contract).not_to_exceed == usd("2000.00")

    # change order 2 can now be replayed and applies on top of 1
    world.engine.replay(early.transaction_id, by="ops")
    world.run()
    assert contract_of(world, contract).not_to_exceed == usd("3000.00")
    assert len(world.records.versions("contract", contract, Contract)) == 3
    assert [e["change_number"] for e in published(world, "contract.changed")] == [1, 2]
    assert world.statuses(change_order.NAME) == {"completed": 2}


def test_revenue_re_plan_totals_the_new_value_to_the_cent(world):
    contract = world.seed_contract(
        "320", model=BillingModel.FIXED_FEE, total="60000.00", revenue=RevenueMethod.STRAIGHT_LINE
    )
    for period_end in (NOV, DEC):
        world.close_period(period_end)
    world.run()
    before = Money.total(
        (j["journal"].lines[0].debit for j in world.ledger.journals.values()), "USD"
    )
    assert before == usd("20000.00")  # two of six months

    world.accept(
        change_order_event(
            order(contract, 1, total_value=usd("75000.01"), effective_date=date(2027, 1, 1))
        )
    )
    world.run()
    schedule = world.records.current(REVENUE_SCHEDULE, contract, RevenueSchedule)
    assert schedule is not None
    assert schedule.total == usd("75000.01")
    assert Money.total((e.amount for e in schedule.entries), "USD") == usd("75000.01")
    kept = [e for e in schedule.entries if e.status == "recognized"]
    assert Money.total((e.amount for e in kept), "USD") == usd("20000.00")

    for period_end in (JAN, date(2027, 2, 28), date(2027, 3, 31), date(2027, 4, 30)):
        world.close_period(period_end)
    world.close_period(JAN, event_id="january-closed-again")  # a repeated close
    world.run()
    journals = [j["journal"].lines[0].debit for j in world.ledger.journals.values()]
    assert Money.total(journals, "USD") == usd("75000.01")
    remaining = [m.amount for m in journals[2:]]
    assert max(remaining) - min(remaining) <= Decimal("0.01")  # spread evenly over four months
