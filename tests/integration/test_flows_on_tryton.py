"""The real flows, run by the hub (``bootstrap``), with a live Tryton server as the ERP.

A closed-won proposal becomes a Tryton party, project and sales order; approved time is billed
(in-memory billing platform) and the invoice is posted in Tryton; the customer's payments are
applied there; month end books revenue as Tryton journal entries. Every assertion about the
ERP reads Tryton's own records over JSON-RPC (``admin``), not q2c's state.

The Tryton server is the session fixture of ``tests/connectors/tryton`` (one ``trytond`` from
the cached database); every test uses its own ids (``uid``) because the database is shared.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from q2c.bootstrap import Hub, bootstrap
from q2c.canonical.events import (
    BillingRunRequested,
    PeriodClosed,
    ReferenceSyncRequested,
    new_event,
)
from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    BillingTerms,
    Invoice,
    Payment,
    PaymentApplication,
    Project,
    Proposal,
    RateCard,
    RateCardLine,
    RevenueMethod,
)
from q2c.canonical.money import Money
from q2c.config import parse_config
from q2c.connectors.memory import InMemoryBilling, InMemoryCrm
from q2c.connectors.registry import Connections
from q2c.connectors.tryton.adapter import TrytonErp, connect_tryton
from q2c.connectors.tryton.psa import TrytonPsa
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.connectors.tryton.server import TrytonServer
from q2c.connectors.tryton.servertools import free_port
from q2c.flows import (
    delivery_to_billing,
    invoice_to_ledger,
    opportunity_to_project,
    payment_to_ledger,
    revenue_recognition,
)
from q2c.runtime.engine import RunOutcome
from q2c.runtime.exception_queue import ExceptionFilter, ParkedException
from q2c.runtime.flow import XrefLink
from q2c.store.db import create_store_engine, upgrade
from q2c.store.schema import transactions
from tests.flows.helpers import approved_event, proposal

pytestmark = pytest.mark.integration

NOVEMBER = (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
FLOWS = (
    opportunity_to_project.NAME,
    delivery_to_billing.INTAKE,
    invoice_to_ledger.NAME,
    payment_to_ledger.NAME,
    revenue_recognition.NAME,
    "reference_data_sync",
)


class UniqueBilling(InMemoryBilling):
    """The in-memory billing platform, with invoice ids unique to one test: the Tryton
    database is shared by the session, and the ERP invoice's external id comes from them."""

    prefix: str = ""

    def create_invoice(self, customer_billing_id: str, *, external_id: str, **kwargs: Any) -> str:
        fresh = external_id not in self.invoice_keys
        invoice_id = super().create_invoice(customer_billing_id, external_id=external_id, **kwargs)
        if not fresh:
            return invoice_id
        unique = f"{invoice_id}_{self.prefix}"
        self.invoice_keys[external_id] = unique
        self.drafts[unique] = self.drafts.pop(invoice_id)
        return unique


def tryton_config(
    server: TrytonServer,
    store_url: str,
    *,
    attempts: int = 3,
    tax_codes: dict[str, int] | None = None,
) -> Any:
    """q2c.yaml for a firm whose ERP (and PSA) is Tryton; mappings are Tryton ids
    (``tax_codes`` replaces some of the tax code mappings)."""
    setup = server.setup
    taxes = {**setup.taxes, **(tax_codes or {})}
    deferred = _account_id(server, "2.2.2")  # Deferred Income (Unearned Revenue)
    product = {
        "CONSULT-SR": setup.products["CONSULTING-HOUR"],
        "CONSULT-JR": setup.products["CONSULTING-HOUR"],
        "PM": setup.products["PM-HOUR"],
        "EXPENSE": setup.products["TRAVEL"],
    }
    live = {
        "enabled_for": ["US01"],
        "retry": {"attempts": attempts, "initial_seconds": 1, "jitter": 0},
    }
    return parse_config(
        {
            "version": 1,
            "store": {"url": store_url},
            "legal_entities": [
                {
                    "code": "US01",
                    "name": "Q2C Consulting Inc.",
                    "country": "US",
                    "base_currency": "USD",
                }
            ],
            "systems": {
                "crm": {"vendor": "salesforce", "roles": ["crm"], "sandbox": True},
                "tryton": {"vendor": "tryton", "roles": ["erp", "psa"], "sandbox": True},
                "billing": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
            },
            "ownership": {
                "customer": {"create": ["tryton"]},
                "project": {"create": ["tryton"]},
            },
            "mappings": {
                "subsidiary": {"US01": {"tryton": str(setup.company)}},
                # Tryton has no departments without analytic accounting; the adapter ignores it
                "department": {"Consulting-US": {"US01": {"tryton": "none"}}},
                "item": {code: {"*": {"tryton": str(i)}} for code, i in product.items()},
                "tax_code": {code: {"*": {"tryton": str(i)}} for code, i in taxes.items()},
                "gl_account": {
                    "deferred_revenue": {"*": {"tryton": str(deferred)}},
                    "revenue": {"*": {"tryton": str(setup.accounts["revenue"])}},
                },
            },
            "flows": {name: live for name in FLOWS},
        },
        env={},
        source="tryton integration test",
    )


def _account_id(server: TrytonServer, code: str) -> int:
    with httpx.Client(timeout=30.0) as client:
        rows = server.rpc(client).search_read("account.account", [["code", "=", code]], ["code"])
    return int(rows[0]["id"])


class TrytonWorld:
    """A hub wired like production (``bootstrap``) with Tryton as ERP and PSA, an in-memory
    CRM and billing platform, and the helpers a test needs to drive the business."""

    def __init__(self, hub: Hub, erp: TrytonErp, billing: UniqueBilling, uid: str) -> None:
        self.hub, self.erp, self.billing, self.uid = hub, erp, billing, uid
        self.crm: InMemoryCrm = hub.connections.port("crm")

    def run(self) -> list[RunOutcome]:
        outcomes: list[RunOutcome] = []
        while batch := self.hub.engine.run_due():
            outcomes.extend(batch)
        return outcomes

    def accept(self, *events: Any) -> None:
        self.hub.inbox.accept(list(events))

    def sync_reference(self) -> None:
        """Tax codes, rates and items from Tryton into the hub, and a rate card from the CPQ."""
        card_id = f"RC-{self.uid}"
        card = RateCard(
            id=card_id, name="US standard", version=1, currency="USD",
            effective_from=dt.date(2026, 1, 1),
            lines=[
                RateCardLine(role="Senior", service_item="CONSULT-SR", rate=usd("210.00")),
                RateCardLine(role="Junior", service_item="CONSULT-JR", rate=usd("125.00")),
            ],
        )  # fmt: skip
        self.accept(
            new_event(
                "reference_data.sync_requested",
                ReferenceSyncRequested(as_of=NOVEMBER[1]),
                source="urn:test:scheduler",
                event_id=f"sync-{self.uid}",
            ),
            new_event("rate_card.published", card, source="urn:test:cpq", event_id=card_id),
        )
        self.run()

    def won(self, key: str, *, tax_id: str | None = None, **changes: Any) -> Proposal:
        """A closed-won T&M proposal for a new customer of this test."""
        opportunity = f"006{self.uid}{key}"
        base = proposal(opportunity, tax_id=tax_id or valid_ein(self.uid + key))
        customer = base.customer.model_copy(update={"legal_name": f"Customer {self.uid}{key} Ltd"})
        values: dict[str, Any] = {
            "customer": customer,
            "billing_model": BillingModel.TIME_AND_MATERIALS,
            "revenue_method": RevenueMethod.AS_INVOICED,
            "rate_card_id": f"RC-{self.uid}",
            "billing_terms": BillingTerms(tax_code="US-SALES-10"),
            "start_date": dt.date(2026, 11, 1),
            "end_date": dt.date(2027, 4, 30),
        }
        values.update(changes)
        return base.model_copy(update=values)

    def provision(self, won: Proposal) -> None:
        self.crm.proposals[won.opportunity_id] = won
        self.accept(approved_event(won))
        self.run()

    def project_of(self, won: Proposal) -> Project:
        contract = self.contract_id(won)
        return next(
            p for p in self.hub.ledgers.records.all_current("project", Project)
            if p.contract_id == contract
        )  # fmt: skip

    def contract_id(self, won: Proposal) -> str:
        erp_ids = self.crm.write_backs[won.opportunity_id]
        contract = self.hub.xref.canonical_id("tryton", "contract", erp_ids["sales_order"])
        assert contract is not None
        return contract

    def deliver_time(self, won: Proposal, *entries: tuple[str, str, str]) -> None:
        """Approved time (role, hours, day of November) on the proposal's project."""
        project = self.project_of(won)
        events = [
            new_event(
                "time.approved",
                BillingEvent(
                    id=f"te-{self.uid}-{won.opportunity_id}-{n}",
                    kind=BillingEventKind.TIME,
                    project_id=project.id,
                    work_date=dt.date(2026, 11, int(day)),
                    quantity=Decimal(hours),
                    role=role,
                    description=f"{role} consulting",
                ),
                source="urn:test:psa",
                event_id=f"psa-{self.uid}-{won.opportunity_id}-{n}",
            )
            for n, (role, hours, day) in enumerate(entries, start=1)
        ]
        self.accept(*events)
        self.run()

    def bill(self, won: Proposal) -> Invoice:
        request = BillingRunRequested(
            contract_id=self.contract_id(won),
            period_start=NOVEMBER[0],
            period_end=NOVEMBER[1],
            document_date=NOVEMBER[1],
        )
        self.accept(delivery_to_billing.billing_run_event(request))
        self.run()
        (invoice,) = [
            i for i in self.billing.invoices.values() if i.contract_id == request.contract_id
        ]
        return invoice

    def pay(self, invoice: Invoice, payment_id: str, amount: str, applied: str) -> Payment:
        payment = Payment(
            id=payment_id,
            xrefs={"billing": payment_id},
            customer_id=invoice.customer_id,
            amount=usd(amount),
            received_on=dt.date(2026, 12, 5),
            method="wire",
            reference=f"WIRE-{payment_id}",
            applications=[PaymentApplication(invoice_id=invoice.id, amount=usd(applied))],
        )
        self.accept(
            new_event("payment.received", payment, source="urn:test:billing",
                      event_id=f"evt-{payment_id}")
        )  # fmt: skip
        self.run()
        return payment

    def close_period(self, start: dt.date, end: dt.date, event_id: str) -> None:
        close = PeriodClosed(legal_entity="US01", period_start=start, period_end=end)
        self.accept(new_event("period.closed", close, source="urn:test:erp", event_id=event_id))
        self.run()

    def erp_id(self, object_type: str, canonical_id: str) -> int:
        return int(self.hub.xref.external_ids(canonical_id, object_type)["tryton"])

    def statuses(self, flow: str) -> dict[str, int]:
        with self.hub.db.connect() as c:
            rows = c.execute(
                sa.select(transactions.c.status, sa.func.count())
                .where(transactions.c.flow == flow)
                .group_by(transactions.c.status)
            ).all()
        return {str(status): int(count) for status, count in rows}

    def parked(self) -> list[ParkedException]:
        return self.hub.engine.exception_queue.list(ExceptionFilter())


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def valid_ein(seed: str) -> str:
    """A US employer id python-stdnum (Tryton's validator) accepts, distinct per seed."""
    return f"12-{int.from_bytes(seed.encode(), 'big') % 10_000_000:07d}"


def build_world(
    server: TrytonServer,
    erp: TrytonErp,
    db: sa.Engine,
    clock: Any,
    uid: str,
    attempts: int = 3,
    tax_codes: dict[str, int] | None = None,
) -> TrytonWorld:
    billing = UniqueBilling()
    billing.prefix = uid
    connections = Connections()
    connections.add("crm", ["crm"], InMemoryCrm())
    connections.add("tryton", ["erp"], erp)
    connections.add("tryton", ["psa"], TrytonPsa(erp.rpc))  # one session, two roles
    connections.add("billing", ["billing"], billing)
    config = tryton_config(server, str(db.url), attempts=attempts, tax_codes=tax_codes)
    hub = bootstrap(config, clock=clock, connections=connections, db=db, migrate=False,
                    worker_id="tryton-test")  # fmt: skip
    return TrytonWorld(hub, erp, billing, uid)


@pytest.fixture
def world(
    tryton_server: TrytonServer,
    erp: TrytonErp,
    sqlite_db: sa.Engine,
    clock: Any,
    uid: str,
) -> Iterator[TrytonWorld]:
    built = build_world(tryton_server, erp, sqlite_db, clock, uid)
    built.sync_reference()
    yield built
    built.hub.close()


@pytest.fixture
def uid() -> str:
    return uuid.uuid4().hex[:8]


# --- opportunity to project ---------------------------------------------------------------


def test_a_won_proposal_becomes_a_tryton_party_project_and_sales_order(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    won = world.won("A")
    world.provision(won)
    world.provision(won)  # the CRM announces it again: nothing new in Tryton
    assert world.statuses(opportunity_to_project.NAME) == {"completed": 1}
    erp_ids = world.crm.write_backs[won.opportunity_id]
    (party,) = admin.read("party.party", [int(erp_ids["customer"])], ["name", "identifiers"])
    assert party["name"] == won.customer.legal_name
    identifiers = admin.read("party.identifier", party["identifiers"], ["type", "code"])
    assert {(i["type"], i["code"]) for i in identifiers} == {
        (None, f"q2c-crm-{won.customer.xrefs['crm']}"),
        ("us_tin", won.customer.tax_id),
    }
    (work,) = admin.read(
        "project.work",
        [int(erp_ids["project"])],
        ["type", "party", "name", "timesheet_available", "comment"],
    )
    assert (work["type"], work["party"], work["name"]) == ("project", party["id"], won.name)
    assert work["timesheet_available"] is True
    marker = f"%[q2c-prj-{won.opportunity_id}]%"
    assert admin.search_count("project.work", [["comment", "like", marker]]) == 1
    (sale,) = admin.read(
        "sale.sale", [int(erp_ids["sales_order"])], ["state", "party", "reference"]
    )
    assert sale["state"] in ("confirmed", "processing")  # Tryton processes a confirmed sale
    assert (sale["party"], sale["reference"]) == (
        party["id"],
        f"q2c-so-{won.opportunity_id}-v{won.version}",
    )
    # the PSA side (Tryton's project module) found the same project, not a second one
    project = world.project_of(won)
    assert world.erp_id("project", project.id) == int(erp_ids["project"])
    assert world.hub.xref.external_ids(project.id, "project")["tryton"] == erp_ids["project"]


def test_a_second_deal_for_the_same_customer_reuses_the_tryton_party(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    first = world.won("B")
    second = world.won("B").model_copy(
        update={"opportunity_id": f"006{world.uid}B2", "id": f"0Q0{world.uid}B2"}
    )
    world.provision(first)
    world.provision(second)
    assert world.statuses(opportunity_to_project.NAME) == {"completed": 2}
    parties = {world.crm.write_backs[w.opportunity_id]["customer"] for w in (first, second)}
    assert len(parties) == 1
    named = admin.search("party.party", [["name", "=", first.customer.legal_name]])
    assert [str(p) for p in named] == sorted(parties)


# --- invoice to ledger --------------------------------------------------------------------


def test_a_billed_invoice_is_posted_in_tryton_with_the_same_amounts(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    won = world.won("C")
    world.provision(won)
    world.deliver_time(won, ("Senior", "7.5", "9"), ("Junior", "12.3", "10"),
                       ("Senior", "3", "17"))  # fmt: skip
    invoice = world.bill(won)
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert invoice.tax_total.amount > 0  # US-SALES-10: there is tax to compare
    erp_id = world.erp_id("invoice", f"inv:{invoice.id}")
    (row,) = admin.read(
        "account.invoice",
        [erp_id],
        ["state", "number", "party", "reference", "untaxed_amount", "tax_amount",
         "total_amount", "currency.code", "lines"],
    )  # fmt: skip
    assert row["state"] == "posted"
    assert row["reference"] == f"q2c-inv-{invoice.id}"
    assert row["party"] == int(world.crm.write_backs[won.opportunity_id]["customer"])
    assert row["currency."]["code"] == invoice.currency
    assert (row["untaxed_amount"], row["tax_amount"], row["total_amount"]) == (
        invoice.subtotal.amount,
        invoice.tax_total.amount,
        invoice.total.amount,
    )
    lines = admin.read("account.invoice.line", row["lines"], ["amount"])
    assert sorted(line["amount"] for line in lines) == sorted(
        line.amount.amount for line in invoice.lines
    )
    assert world.billing.erp_references[invoice.id] == row["number"]
    document = world.hub.ledgers.documents.get("invoice", invoice.id)
    assert document is not None and document["erp_number"] == row["number"]


def test_a_half_cent_tryton_rounds_the_other_way_is_posted_at_the_billed_tax(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    """12.25 h at 125.00 is 1531.25, taxed 153.125: the billing platform rounds half up
    (153.13), Tryton half to even (153.12). The billing document is the legal invoice, so
    Tryton posts the billed tax (Tryton's line plus a manual rounding line of 0.01)."""
    won = world.won("J")
    world.provision(won)
    world.deliver_time(won, ("Junior", "12.25", "10"))
    invoice = world.bill(won)
    assert invoice.tax_total == usd("153.13")
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert world.parked() == []
    erp_id = world.erp_id("invoice", f"inv:{invoice.id}")
    (row,) = admin.read(
        "account.invoice", [erp_id],
        ["state", "untaxed_amount", "tax_amount", "total_amount", "taxes"],
    )  # fmt: skip
    assert row["state"] == "posted"
    assert (row["untaxed_amount"], row["tax_amount"], row["total_amount"]) == (
        invoice.subtotal.amount, invoice.tax_total.amount, invoice.total.amount,
    )  # fmt: skip
    taxes = admin.read("account.invoice.tax", row["taxes"], ["manual", "base", "amount"])
    assert sorted((t["manual"], t["base"], t["amount"]) for t in taxes) == [
        (False, Decimal("1531.25"), Decimal("153.12")),
        (True, Decimal("0.00"), Decimal("0.01")),
    ]
    assert (
        world.billing.erp_references[invoice.id]
        == admin.read("account.invoice", [erp_id], ["number"])[0]["number"]
    )


def test_a_real_tax_rate_difference_is_still_parked_with_both_figures(
    tryton_server: TrytonServer,
    erp: TrytonErp,
    admin: TrytonRpc,
    sqlite_db: sa.Engine,
    clock: Any,
    uid: str,
) -> None:
    """Billing taxes at 10 % but US-SALES-10 is mapped to an 8 % tax in Tryton: not rounding,
    so the invoice stays a draft in Tryton and the difference is a business fix."""
    setup = tryton_server.setup
    (tax_account,) = admin.read("account.tax", [setup.taxes["US-SALES-10"]], ["invoice_account"])
    (eight_percent,) = admin.create(
        "account.tax",
        [{"name": f"US-SALES-8-{uid}", "description": "Sales tax 8%", "type": "percentage",
          "rate": Decimal("0.08"), "company": setup.company,
          "invoice_account": tax_account["invoice_account"],
          "credit_note_account": tax_account["invoice_account"]}],
    )  # fmt: skip
    world = build_world(tryton_server, erp, sqlite_db, clock, uid,
                        tax_codes={"US-SALES-10": eight_percent})  # fmt: skip
    try:
        world.sync_reference()
        won = world.won("R")
        world.provision(won)
        world.deliver_time(won, ("Junior", "12.25", "10"))
        invoice = world.bill(won)
        assert invoice.tax_total == usd("153.13")  # billed at 10 %
        assert world.statuses(invoice_to_ledger.NAME) == {"parked": 1}
        (parked,) = world.parked()
    finally:
        world.hub.close()
    assert (parked.kind, parked.step) == ("business_fix", "post_invoice")
    assert "tax 122.50 in Tryton vs 153.13 in q2c" in parked.message
    assert "total 1653.75 in Tryton vs 1684.38 in q2c" in parked.message
    drafts = admin.search_read(
        "account.invoice", [["reference", "=", f"q2c-inv-{invoice.id}"]], ["state", "taxes"]
    )
    assert [d["state"] for d in drafts] == ["draft"]  # nothing posted that disagrees
    taxes = admin.read("account.invoice.tax", drafts[0]["taxes"], ["manual", "amount"])
    assert [(t["manual"], t["amount"]) for t in taxes] == [(False, Decimal("122.50"))]


def test_a_duplicate_or_replayed_posting_never_creates_a_second_tryton_invoice(
    world: TrytonWorld,
    admin: TrytonRpc,
    tryton_server: TrytonServer,
    erp: TrytonErp,
    tmp_path: Path,
    clock: Any,
) -> None:
    won = world.won("D")
    world.provision(won)
    world.deliver_time(won, ("Senior", "8", "12"))
    invoice = world.bill(won)
    finalized = new_event("invoice.finalized", invoice, source="urn:test:billing",
                          event_id=f"evt-poll-{invoice.id}")  # fmt: skip
    world.accept(finalized)  # the billing platform's feed read again
    world.run()
    (transaction,) = _transactions(world, invoice_to_ledger.NAME)
    assert not world.hub.engine.replay(transaction, by="ops").accepted  # completed stays so
    # a hub that lost its store (restored from an old backup) posts the same invoice again
    amnesic_db = create_store_engine(f"sqlite:///{tmp_path / 'restored.db'}")
    upgrade(amnesic_db)
    amnesic = build_world(tryton_server, erp, amnesic_db, clock, world.uid)
    try:
        customer = world.hub.xref.canonical_id("billing", "customer", invoice.customer_id)
        assert customer is not None
        party = world.crm.write_backs[won.opportunity_id]["customer"]
        amnesic.hub.xref.link(XrefLink(customer, "customer", "billing", invoice.customer_id))
        amnesic.hub.xref.link(XrefLink(customer, "customer", "tryton", party))
        amnesic.accept(finalized)
        amnesic.run()
        assert amnesic.statuses(invoice_to_ledger.NAME) == {"completed": 1}
        reposted = amnesic.erp_id("invoice", f"inv:{invoice.id}")
    finally:
        amnesic.hub.close()
    found = admin.search("account.invoice", [["reference", "=", f"q2c-inv-{invoice.id}"]])
    assert found == [world.erp_id("invoice", f"inv:{invoice.id}")] == [reposted]


def _transactions(world: TrytonWorld, flow: str) -> list[str]:
    with world.hub.db.connect() as c:
        return [
            str(r[0])
            for r in c.execute(sa.select(transactions.c.id).where(transactions.c.flow == flow))
        ]


# --- payment to ledger --------------------------------------------------------------------


def test_payments_are_applied_and_tryton_receivable_is_open_invoices_less_payments(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    won = world.won("E")
    world.provision(won)
    world.deliver_time(won, ("Senior", "10", "3"), ("Junior", "4", "4"))
    first = world.bill(won)
    other = world.won("E").model_copy(
        update={"opportunity_id": f"006{world.uid}E2", "id": f"0Q0{world.uid}E2"}
    )
    world.provision(other)  # same customer, second contract: a second open invoice
    world.deliver_time(other, ("Junior", "6", "5"))
    second = world.bill(other)
    party = int(world.crm.write_backs[won.opportunity_id]["customer"])
    assert _receivable(admin, party) == first.total.amount + second.total.amount

    partial = Decimal("1000.00")
    world.pay(first, f"py_{world.uid}_1", str(partial), str(partial))
    assert _amount_to_pay(admin, world, first) == first.total.amount - partial
    assert _receivable(admin, party) == first.total.amount + second.total.amount - partial

    rest = first.total.amount - partial
    excess = Decimal("250.00")
    world.pay(first, f"py_{world.uid}_2", str(rest + excess), str(rest))
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 2}
    (state,) = admin.read("account.invoice", [world.erp_id("invoice", f"inv:{first.id}")],
                          ["state"])  # fmt: skip
    assert state["state"] == "paid"
    assert _amount_to_pay(admin, world, first) == 0
    # open invoices (the second, untouched) less what was paid beyond them (unapplied credit)
    assert _receivable(admin, party) == second.total.amount - excess
    open_items = admin.search_read(
        "account.move.line",
        [["party", "=", party], ["reconciliation", "=", None],
         ["account.type.receivable", "=", True]],
        ["debit", "credit"],
    )  # fmt: skip
    assert sum(Decimal(i["debit"]) - Decimal(i["credit"]) for i in open_items) == (
        second.total.amount - excess
    )


def test_a_payment_delivered_twice_is_applied_once_in_tryton(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    won = world.won("F")
    world.provision(won)
    world.deliver_time(won, ("Senior", "5", "6"))
    invoice = world.bill(won)
    payment = world.pay(invoice, f"py_{world.uid}", "300.00", "300.00")
    world.accept(
        new_event("payment.received", payment, source="urn:test:billing",
                  event_id=f"evt-retry-{payment.id}")
    )  # fmt: skip
    world.run()
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 1}
    assert _amount_to_pay(admin, world, invoice) == invoice.total.amount - Decimal("300.00")


def _receivable(admin: TrytonRpc, party: int) -> Decimal:
    (row,) = admin.read("party.party", [party], ["receivable"])
    return Decimal(row["receivable"])


def _amount_to_pay(admin: TrytonRpc, world: TrytonWorld, invoice: Invoice) -> Decimal:
    erp_id = world.erp_id("invoice", f"inv:{invoice.id}")
    (row,) = admin.read("account.invoice", [erp_id], ["amount_to_pay"])
    return Decimal(row["amount_to_pay"])


# --- revenue recognition ------------------------------------------------------------------


def test_month_end_revenue_is_a_posted_tryton_journal_entry_once(
    world: TrytonWorld,
    admin: TrytonRpc,
    tryton_server: TrytonServer,
) -> None:
    won = world.won("G")
    world.provision(won)
    world.deliver_time(won, ("Senior", "6", "11"), ("Junior", "2.5", "12"))
    invoice = world.bill(won)
    world.close_period(*NOVEMBER, event_id=f"close-{world.uid}")
    world.close_period(*NOVEMBER, event_id=f"close-again-{world.uid}")  # announced twice
    # December's close plans the contract again from scratch: November must not come back
    world.close_period(dt.date(2026, 12, 1), dt.date(2026, 12, 31), f"close-dec-{world.uid}")
    assert world.statuses(revenue_recognition.NAME) == {"completed": 2}
    documents = [
        d for d in world.hub.ledgers.documents.documents("revenue")
        if d["contract_id"] == world.contract_id(won)
    ]  # fmt: skip
    assert len(documents) == 1
    (document,) = documents
    moves = admin.search_read(
        "account.move",
        [["description", "like", f"%[{document['document_id']}]"]],
        ["state", "date", "journal", "lines"],
    )
    assert len(moves) == 1
    (move,) = moves
    assert move["state"] == "posted"
    assert NOVEMBER[0] <= move["date"] <= NOVEMBER[1]  # as invoiced: in the invoice's month
    lines = admin.read("account.move.line", move["lines"], ["account", "debit", "credit"])
    deferred = _account_id(tryton_server, "2.2.2")
    revenue = tryton_server.setup.accounts["revenue"]
    booked = {(line["account"], line["debit"], line["credit"]) for line in lines}
    # as invoiced: the invoice before tax moves from deferred to earned revenue
    net = invoice.subtotal.amount
    assert booked == {(deferred, net, Decimal(0)), (revenue, Decimal(0), net)}
    assert Decimal(document["amount"]) == net
    assert str(move["id"]) == document["erp_id"]


# --- errors: Tryton down, Tryton says no --------------------------------------------------


def test_tryton_unreachable_is_retried_then_parked_as_retriable(
    tryton_server: TrytonServer,
    sqlite_db: sa.Engine,
    clock: Any,
    uid: str,
) -> None:
    with httpx.Client(timeout=5.0) as client:
        down = connect_tryton(
            client,
            base_url=f"http://127.0.0.1:{free_port()}",  # nothing listens there
            database=tryton_server.database,
            username=tryton_server.username,
            password=tryton_server.password,
        )
        world = build_world(tryton_server, down, sqlite_db, clock, uid, attempts=2)
        try:
            world.crm.proposals[f"006{uid}H"] = won = world.won("H")
            world.accept(approved_event(won))
            (first,) = world.run()
            assert (first.status, first.step) == ("retry_wait", "resolve_customer")
            assert first.error is not None and first.error.kind == "retriable"
            clock.advance(5)
            (second,) = world.run()
            assert second.status == "parked"
            (parked,) = world.parked()
            assert (parked.kind, parked.step, parked.system) == (
                "retriable",
                "resolve_customer",
                "tryton",
            )
            assert "gave up after 2 attempts" in parked.message
        finally:
            world.hub.close()


def test_tryton_validation_error_parks_for_a_business_fix_with_trytons_message(
    world: TrytonWorld,
    admin: TrytonRpc,
) -> None:
    won = world.won("I", tax_id="US-TAX-NOT-A-TIN")
    world.provision(won)
    assert world.statuses(opportunity_to_project.NAME) == {"parked": 1}
    (parked,) = world.parked()
    assert (parked.kind, parked.step, parked.attempts) == ("business_fix", "resolve_customer", 1)
    assert parked.system == "tryton"
    assert "Tryton refused the customer" in parked.message
    assert "US-TAX-NOT-A-TIN" in parked.message  # Tryton's own words name the bad value
    assert admin.search("party.party", [["name", "=", won.customer.legal_name]]) == []
