"""Polling the PSA and the billing platform into the inbox: once per record, chained to flows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from q2c.connectors.memory import InMemoryPsa
from q2c.flows import invoice_to_ledger
from q2c.flows.delivery_to_billing import BATCH_INTAKE, INTAKE
from q2c.flows.ports import DeliveryRecord
from q2c.runtime.flow import XrefLink
from q2c.runtime.poller import BillingPoller, DeliveryPoller
from q2c.store.schema import watermarks
from tests.flows.cash_world import CashWorld, usd


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(db, clock, extra_flows=(invoice_to_ledger.build_flow(),))
    w.seed_reference()
    return w


def record(entry_id: str, workspace: str, minutes_hours: str, updated: int) -> DeliveryRecord:
    return DeliveryRecord(
        kind="time", system_id=f"te-{entry_id}", project_ref=workspace,
        work_date=date(2026, 11, 10), quantity=Decimal(minutes_hours), unit="hour",
        updated_at=datetime(2026, 11, 20, 10, updated, tzinfo=UTC), role="Senior",
        service_item="CONSULT-SR", description="Senior consulting",
    )


def test_approved_time_is_polled_once_mapped_to_the_hub_project_and_billed(world, clock):
    contract = world.seed_contract("100")
    world.xref.link(XrefLink("prj-100", "project", "psa", "ws-1"))
    psa = InMemoryPsa(records=[record("1", "ws-1", "2.5", 1), record("2", "ws-1", "1.5", 2)])
    poller = DeliveryPoller(world.db, world.inbox, psa, world.xref, now=clock, batch_size=None)
    assert [r.status for r in poller.poll()] == ["accepted", "accepted"]
    assert poller.poll() == []  # nothing after the watermark
    # an edit after acceptance comes back with a new stamp: same business key, not rebilled
    psa.records.append(record("1", "ws-1", "9", 30))
    assert [r.status for r in poller.poll()] == ["duplicate_business_key"]
    world.run()
    assert world.statuses(INTAKE) == {"completed": 2}
    world.bill(contract, date(2026, 11, 30))
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.total == usd("800.00")
    assert world.billable.inclusion("psa:te-1")["status"] == "billed"


def test_a_page_goes_in_batches_that_a_re_poll_repeats_exactly_and_bills_once(world, clock):
    contract = world.seed_contract("103")
    world.xref.link(XrefLink("prj-103", "project", "psa", "ws-3"))
    psa = InMemoryPsa(records=[record(str(n), "ws-3", "1", n) for n in range(1, 8)])
    poller = DeliveryPoller(world.db, world.inbox, psa, world.xref, now=clock, batch_size=3)
    assert [r.status for r in poller.poll()] == ["accepted"] * 3  # 3 + 3 + 1 entries
    with world.db.begin() as c:  # a crash lost the watermark: the same page again
        c.execute(sa.delete(watermarks))
    assert [r.status for r in poller.poll()] == ["duplicate"] * 3
    # an edit after acceptance comes back in a new batch: recorded once, never rebilled
    psa.records.append(record("1", "ws-3", "9", 30))
    assert [r.status for r in poller.poll()] == ["accepted"]
    world.run()
    assert world.statuses(BATCH_INTAKE) == {"completed": 4}
    assert world.billable.status_counts() == {"ready": 7}
    world.bill(contract, date(2026, 11, 30))
    world.run()
    [invoice] = world.billing.invoices.values()
    assert invoice.total == usd("1400.00")


def test_time_for_an_unlinked_psa_project_is_parked_by_name(world, clock):
    world.seed_contract("101")
    psa = InMemoryPsa(records=[record("9", "ws-77", "1", 1)])
    DeliveryPoller(world.db, world.inbox, psa, world.xref, now=clock).poll()
    world.run()
    [parked] = world.open_exceptions()
    assert parked.message == ("Time entry psa:te-9 is for project psa:ws-77, which q2c does "
                              "not know")


def test_the_billing_poll_of_an_invoice_the_hub_billed_is_a_duplicate(world, clock):
    contract = world.seed_contract("102")
    world.xref.link(XrefLink("prj-102", "project", "psa", "ws-2"))
    psa = InMemoryPsa(records=[record("5", "ws-2", "1", 1)])
    DeliveryPoller(world.db, world.inbox, psa, world.xref, now=clock).poll()
    world.run()
    world.bill(contract, date(2026, 11, 30))
    world.run()
    receipts = BillingPoller(world.db, world.inbox, world.billing, now=clock).poll()
    assert [r.status for r in receipts] == ["duplicate_business_key"]
    world.run()
    assert len(world.ledger.invoices) == 1
