"""Invoice to ledger and payment to ledger: posted once, checked to the cent, applied once."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from q2c.canonical.events import new_event
from q2c.canonical.models import BillingTerms, Payment, PaymentApplication
from q2c.flows import invoice_to_ledger, payment_to_ledger
from q2c.mapping.value_maps import ValueMaps
from q2c.runtime.flow import XrefLink
from q2c.store.schema import outbox, steps
from tests.flows.cash_world import MAPPINGS, CashWorld, time_entry, usd

NOV = date(2026, 11, 30)


@pytest.fixture
def world(db, clock) -> CashWorld:
    w = CashWorld(
        db, clock, extra_flows=(invoice_to_ledger.build_flow(), payment_to_ledger.build_flow())
    )
    w.seed_reference()
    return w


def billed_invoice(
    world: CashWorld, number: str = "100", hours: str = "10", terms: BillingTerms | None = None
) -> str:
    contract = world.seed_contract(number, terms=terms)
    world.deliver(time_entry(f"te-{number}", number, date(2026, 11, 10), hours))
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice_id] = [i for i, inv in world.billing.invoices.items() if inv.contract_id == contract]
    return invoice_id


def outbound_types(world: CashWorld) -> list[str]:
    with world.db.connect() as c:
        return [r.type for r in c.execute(sa.select(outbox.c.type).order_by(outbox.c.id))]


def test_a_billed_invoice_is_posted_verified_and_written_back(world):
    invoice_id = billed_invoice(world)
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    [posted] = world.ledger.invoices.values()
    erp = world.ledger.read_invoice(posted["id"])
    assert erp.total == usd("2000.00")
    assert world.billing.erp_references == {invoice_id: f"INV-{posted['id']}"}
    doc = world.documents.get("invoice", invoice_id)
    assert doc is not None
    assert (doc["status"], doc["erp_amount"], doc["erp_id"]) == ("posted", "2000.00", posted["id"])
    assert "invoice.posted" in outbound_types(world)


def test_a_duplicate_finalized_invoice_from_the_billing_platform_posts_nothing_new(world):
    invoice_id = billed_invoice(world)
    invoice = world.billing.invoices[invoice_id]
    receipts = world.accept(
        new_event("invoice.finalized", invoice, source="urn:test:stripe", event_id="evt_poll_1")
    )
    assert receipts[0].status == "duplicate_business_key"
    world.run()
    assert len(world.ledger.invoices) == 1


def test_an_erp_that_computes_different_tax_is_an_exception_then_a_replay_fixes_it(world):
    world.ledger.tax_rates["T0"] = Decimal("0.05")  # the ERP taxes what billing exempted
    billed_invoice(world)
    assert world.statuses(invoice_to_ledger.NAME) == {"parked": 1}
    [parked] = world.open_exceptions()
    assert "differently from the billing document" in parked.message
    assert "tax: billing 0.00 USD, ERP 100.00 USD" in parked.detail
    world.ledger.tax_rates["T0"] = Decimal(0)
    world.engine.replay(parked.transaction_id, by="finance-ops")
    world.run()
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert len(world.ledger.invoices) == 1  # updated in place, not posted twice
    assert world.open_exceptions() == []


def test_a_missing_tax_code_mapping_parks_with_the_key_to_add(world):
    world.maps = ValueMaps.from_config({k: v for k, v in MAPPINGS.items() if k != "tax_code"})
    billed_invoice(world)
    [parked] = world.open_exceptions()
    assert parked.message == "Tax code 'US-EXEMPT' has no ERP mapping for subsidiary US01"
    assert 'mappings.tax_code."US-EXEMPT".US01.erp' in parked.suggested_fix
    world.maps = world.maps.with_mapping("tax_code", "US-EXEMPT", "US01", "erp", "T0")
    world.engine.replay(parked.transaction_id, by="finance-ops")
    world.run()
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}


def pay(
    world: CashWorld,
    payment_id: str,
    invoice_id: str,
    amount: str,
    applied: str,
    event_id: str | None = None,
) -> None:
    invoice = world.billing.invoices[invoice_id]
    payment = Payment(
        id=payment_id,
        xrefs={"billing": payment_id},
        customer_id=invoice.customer_id,
        amount=usd(amount),
        received_on=date(2026, 12, 20),
        method="ach",
        applications=[PaymentApplication(invoice_id=invoice_id, amount=usd(applied))],
    )
    world.accept(
        new_event(
            "payment.received",
            payment,
            source="urn:test:stripe",
            event_id=event_id or f"evt_{payment_id}",
        )
    )


def test_partial_then_over_payment_leaves_unapplied_credit(world):
    invoice_id = billed_invoice(world)
    world.xref.link(XrefLink("cust-100", "customer", "crm", "001ACME"))
    pay(world, "py_1", invoice_id, "500.00", "500.00")
    world.run()
    [posted] = world.ledger.invoices.values()
    assert world.ledger.read_invoice(posted["id"]).amount_remaining == usd("1500.00")
    # sales sees the open balance on the CRM account
    status = world.crm.account_status["001ACME"]
    assert (status.status, status.open_balance, status.unapplied_credit) == (
        "Open Balance", usd("1500.00"), usd("0.00"))
    assert status.last_payment_on == date(2026, 12, 20)
    pay(world, "py_2", invoice_id, "1600.00", "1500.00")
    world.run()
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 2}
    assert world.ledger.read_invoice(posted["id"]).amount_remaining == usd("0.00")
    assert world.ledger.payments["q2c-pay-py_2"].unapplied == usd("100.00")
    assert outbound_types(world).count("payment.applied") == 2
    status = world.crm.account_status["001ACME"]
    assert (status.status, status.open_balance, status.unapplied_credit) == (
        "Credit", usd("0.00"), usd("100.00"))


def test_a_customer_without_a_crm_account_is_skipped_by_name(world):
    invoice_id = billed_invoice(world, "101")
    pay(world, "py_9", invoice_id, "100.00", "100.00")
    world.run()
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 1}
    assert world.crm.account_status == {}
    with world.db.connect() as c:
        output = c.execute(sa.select(steps.c.output).where(
            steps.c.step == "update_crm_account")).scalar_one()
    assert "customer cust-101 has no crm account" in output


def test_a_payment_delivered_twice_is_recorded_once(world):
    invoice_id = billed_invoice(world)
    pay(world, "py_1", invoice_id, "500.00", "500.00")
    pay(world, "py_1", invoice_id, "500.00", "500.00", event_id="evt_webhook_retry")
    world.run()
    replayed = world.engine.replay(_transaction_of(world, "py_1"), by="ops")
    assert not replayed.accepted  # a completed payment is not run again
    world.run()
    assert len(world.ledger.payments) == 1
    [posted] = world.ledger.invoices.values()
    assert world.ledger.read_invoice(posted["id"]).amount_remaining == usd("1500.00")


def _transaction_of(world: CashWorld, business_key: str) -> str:
    from q2c.store.schema import transactions

    with world.db.connect() as c:
        return str(
            c.execute(
                sa.select(transactions.c.id).where(transactions.c.business_key == business_key)
            ).scalar_one()
        )


def test_a_payment_for_an_invoice_not_yet_posted_waits_for_the_posting(world, clock):
    world.ledger.tax_rates["T0"] = Decimal("0.05")  # posting parks first
    invoice_id = billed_invoice(world)
    pay(world, "py_1", invoice_id, "2000.00", "2000.00")
    world.run()
    assert world.statuses(payment_to_ledger.NAME) == {"retry_wait": 1}
    world.ledger.tax_rates["T0"] = Decimal(0)
    [parked] = world.open_exceptions()
    world.engine.replay(parked.transaction_id, by="ops")
    world.run()
    clock.advance(120)
    world.run()
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 1}
    [posted] = world.ledger.invoices.values()
    assert world.ledger.read_invoice(posted["id"]).status == "paidInFull"
