"""ERP migration parallel run, end to end: the NetSuite emulator (legacy) and a live Tryton
server (target) behind one hub, driven by the real flows through ``bootstrap``.

Every posting (customer, project, sales order, AR invoice, customer payment, revenue journal)
goes to both ERPs; the reconciliation reads each ERP's own receivables back (NetSuite over
SuiteQL, Tryton over JSON-RPC) and compares them per customer; cut-over is a q2c.yaml flip.
Each test gets its own Tryton database (a copy of the cached one), because the reconciliation
looks at every customer of the company.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
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
from q2c.config import Q2CConfig, parse_config
from q2c.connectors.memory import InMemoryBilling, InMemoryCrm
from q2c.connectors.netsuite.adapter import NetSuiteErp, connect_netsuite_m2m
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.netsuite.seed import DEFAULT_TAX_CODES, LedgerEntity, SeedTaxCode
from q2c.connectors.parallel_run import PAIR_PREFIX, ParallelRunErp
from q2c.connectors.registry import Connections
from q2c.connectors.tryton.adapter import TrytonErp
from q2c.connectors.tryton.server import TrytonServer
from q2c.flows import (
    delivery_to_billing,
    invoice_to_ledger,
    opportunity_to_project,
    payment_to_ledger,
    revenue_recognition,
)
from q2c.flows.erp_reconciliation import reconcile_erp_migration
from q2c.flows.ports import InvoicePostingRefs
from q2c.reconciliation.erp_ar import ErpArReconciliation
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
    "reference_data_sync",  # also publishes rate cards
)
ENTITY = LedgerEntity("US01", "Q2C Consulting Inc.", "US", "USD")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def valid_ein(seed: str) -> str:
    """A US employer id python-stdnum (Tryton's validator) accepts, distinct per seed."""
    return f"12-{int.from_bytes(seed.encode(), 'big') % 10_000_000:07d}"


class Erps:
    """The two ERPs: a seeded NetSuite emulator and a fresh Tryton database."""

    def __init__(self, server: TrytonServer) -> None:
        self.server = server
        self.netsuite_box = NetSuiteSandbox()
        ids = self.netsuite_box.seed_reference_data(
            subsidiaries={ENTITY.code: ENTITY.name},
            departments=["Consulting-US"],
            currencies=["USD"],
            items=["CONSULTING-HOUR", "PM-HOUR", "TRAVEL"],
        )
        taxed = SeedTaxCode("US-SALES-10", "Sales tax 10%", Decimal(10), "US")
        ledger = self.netsuite_box.seed_ledger_reference_data(
            entities=[ENTITY], currencies=["USD"], tax_codes=[*DEFAULT_TAX_CODES, taxed]
        )
        self.ns_ids = {key: {**ids.get(key, {}), **ledger.get(key, {})} for key in {*ids, *ledger}}
        self.ns_client = self.netsuite_box.client(timeout=10)
        box = self.netsuite_box
        self.netsuite: NetSuiteErp = connect_netsuite_m2m(
            self.ns_client,
            account_id=box.account_id,
            client_id=box.m2m.client_id,
            certificate_id=box.m2m.certificate_id,
            private_key_pem=box.m2m.private_key_pem,
            base_url=box.base_url,
        )
        self.tryton_client = httpx.Client(timeout=60)
        self.tryton: TrytonErp = server.erp(self.tryton_client)

    def config(self, store_url: str, system_of_record: str = "legacy") -> Q2CConfig:
        setup, ns = self.server.setup, self.ns_ids
        with httpx.Client(timeout=30) as client:
            rows = self.server.rpc(client).search_read(
                "account.account", [["code", "=", "2.2.2"]], ["code"]
            )
        deferred = rows[0]["id"]  # Tryton's Deferred Income (Unearned Revenue)
        products = {"CONSULT-SR": "CONSULTING-HOUR", "CONSULT-JR": "CONSULTING-HOUR",
                    "EXPENSE": "TRAVEL"}  # fmt: skip
        live = {"enabled_for": ["US01"], "retry": {"attempts": 3, "initial_seconds": 1}}
        both = ["netsuite", "tryton"]
        return parse_config(
            {
                "version": 1,
                "store": {"url": store_url},
                "legal_entities": [
                    {"code": "US01", "name": ENTITY.name, "country": "US", "base_currency": "USD"}
                ],
                "systems": {
                    "crm": {"vendor": "salesforce", "roles": ["crm"], "sandbox": True},
                    "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
                    "tryton": {"vendor": "tryton", "roles": ["erp"], "sandbox": True},
                    "billing": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
                },
                "ownership": {"customer": {"create": both}, "project": {"create": both}},
                "mappings": {
                    "subsidiary": {
                        "US01": {
                            "netsuite": ns["subsidiaries"]["US01"],
                            "tryton": str(setup.company),
                        }
                    },
                    "department": {
                        "Consulting-US": {
                            "US01": {
                                "netsuite": ns["departments"]["Consulting-US"],
                                "tryton": "none",
                            }
                        }
                    },
                    "item": {
                        code: {
                            "*": {
                                "netsuite": ns["items"][product],
                                "tryton": str(setup.products[product]),
                            }
                        }
                        for code, product in products.items()
                    },
                    "tax_code": {
                        code: {
                            "*": {
                                "netsuite": ns["tax_codes"][code],
                                "tryton": str(setup.taxes[code]),
                            }
                        }
                        for code in ("US-SALES-10", "US-EXEMPT")
                    },
                    "gl_account": {
                        "deferred_revenue": {
                            "*": {
                                "netsuite": ns["accounts"]["DEFERRED_REVENUE"],
                                "tryton": str(deferred),
                            }
                        },
                        "revenue": {
                            "*": {
                                "netsuite": ns["accounts"]["REVENUE"],
                                "tryton": str(setup.accounts["revenue"]),
                            }
                        },
                    },
                },
                "flows": {name: live for name in FLOWS},
                "erp_migration": {
                    "legacy": "netsuite",
                    "target": "tryton",
                    "system_of_record": system_of_record,
                    "legal_entities": ["US01"],
                },
            },
            env={},
            source="parallel-run integration test",
        )

    def close(self) -> None:
        self.ns_client.close()
        self.netsuite_box.close()
        self.tryton_client.close()


class ParallelWorld:
    """A hub wired like production (``bootstrap``) with both ERPs, an in-memory CRM and
    billing platform, and the helpers a test needs to drive the business."""

    def __init__(self, erps: Erps, db: sa.Engine, clock: Any) -> None:
        self.erps, self.db, self.clock = erps, db, clock
        self.crm = InMemoryCrm()
        self.billing = InMemoryBilling()
        self.hub = self._hub("legacy")

    def _hub(self, system_of_record: str) -> Hub:
        connections = Connections()
        connections.add("crm", ["crm"], self.crm)
        connections.add("netsuite", ["erp"], self.erps.netsuite)
        connections.add("tryton", ["erp"], self.erps.tryton)
        connections.add("billing", ["billing"], self.billing)
        config = self.erps.config(str(self.db.url), system_of_record)
        return bootstrap(config, clock=self.clock, connections=connections, db=self.db,
                         migrate=False, worker_id="parallel-run-test")  # fmt: skip

    def cut_over(self) -> None:
        """Restart the hub with ``erp_migration.system_of_record: target``."""
        self.hub.close()  # disposing of the store's pool leaves it usable by the next hub
        self.hub = self._hub("target")

    def run(self) -> None:
        for _ in range(50):
            if not self.hub.engine.run_due():
                return
        raise AssertionError("the engine did not settle")

    def accept(self, *events: Any) -> None:
        self.hub.inbox.accept(list(events))

    def sync_reference(self) -> None:
        """Tax codes, rates and items from the system of record, a rate card from the CPQ."""
        sync = ReferenceSyncRequested(as_of=NOVEMBER[1])
        self.accept(new_event("reference_data.sync_requested", sync, source="urn:test:cron",
                              event_id=f"sync-{self.hub.services('live').erp.system}"))  # fmt: skip
        card = RateCard(
            id="RC-US", name="US standard", version=1, currency="USD",
            effective_from=dt.date(2026, 1, 1),
            lines=[
                RateCardLine(role="Senior", service_item="CONSULT-SR", rate=usd("210.00")),
                RateCardLine(role="Junior", service_item="CONSULT-JR", rate=usd("125.00")),
            ],
        )  # fmt: skip
        self.accept(new_event("rate_card.published", card, source="urn:test:cpq", event_id="rc"))
        self.run()

    def won(self, key: str) -> Proposal:
        base = proposal(f"006PR{key}", tax_id=valid_ein(key))
        customer = base.customer.model_copy(update={"legal_name": f"Customer {key} Ltd"})
        return base.model_copy(
            update={
                "customer": customer,
                "billing_model": BillingModel.TIME_AND_MATERIALS,
                "revenue_method": RevenueMethod.AS_INVOICED,
                "rate_card_id": "RC-US",
                "billing_terms": BillingTerms(tax_code="US-SALES-10"),
                "start_date": NOVEMBER[0],
                "end_date": dt.date(2027, 4, 30),
            }
        )

    def provision(self, won: Proposal) -> None:
        self.crm.proposals[won.opportunity_id] = won
        self.accept(approved_event(won))
        self.run()

    def contract_id(self, won: Proposal) -> str:
        erp_ids = self.crm.write_backs[won.opportunity_id]
        record = self.hub.services("live").erp.system
        contract = self.hub.xref.canonical_id(record, "contract", erp_ids["sales_order"])
        assert contract is not None
        return contract

    def bill(self, won: Proposal, *entries: tuple[str, str, int]) -> Invoice:
        contract = self.contract_id(won)
        project = next(
            p for p in self.hub.ledgers.records.all_current("project", Project)
            if p.contract_id == contract
        )  # fmt: skip
        self.accept(
            *(
                new_event(
                    "time.approved",
                    BillingEvent(
                        id=f"te-{won.opportunity_id}-{n}",
                        kind=BillingEventKind.TIME,
                        project_id=project.id,
                        work_date=dt.date(2026, 11, day),
                        quantity=Decimal(hours),
                        role=role,
                        description=f"{role} consulting",
                    ),
                    source="urn:test:psa",
                    event_id=f"psa-{won.opportunity_id}-{n}",
                )
                for n, (role, hours, day) in enumerate(entries, start=1)
            )
        )
        self.run()
        request = BillingRunRequested(
            contract_id=contract,
            period_start=NOVEMBER[0],
            period_end=NOVEMBER[1],
            document_date=NOVEMBER[1],
        )
        self.accept(delivery_to_billing.billing_run_event(request))
        self.run()
        (invoice,) = [i for i in self.billing.invoices.values() if i.contract_id == contract]
        return invoice

    def pay(self, invoice: Invoice, payment_id: str, amount: str, applied: str) -> None:
        payment = Payment(
            id=payment_id, xrefs={"billing": payment_id}, customer_id=invoice.customer_id,
            amount=usd(amount), received_on=dt.date(2026, 12, 5), method="wire",
            reference=f"WIRE-{payment_id}",
            applications=[PaymentApplication(invoice_id=invoice.id, amount=usd(applied))],
        )  # fmt: skip
        self.accept(new_event("payment.received", payment, source="urn:test:billing",
                              event_id=f"evt-{payment_id}"))  # fmt: skip
        self.run()

    def close_november(self) -> None:
        close = PeriodClosed(legal_entity="US01", period_start=NOVEMBER[0],
                             period_end=NOVEMBER[1])  # fmt: skip
        self.accept(new_event("period.closed", close, source="urn:test:erp", event_id="close"))
        self.run()

    def statuses(self) -> dict[str, dict[str, int]]:
        with self.db.connect() as c:
            rows = c.execute(
                sa.select(transactions.c.flow, transactions.c.status, sa.func.count()).group_by(
                    transactions.c.flow, transactions.c.status
                )
            ).all()
        found: dict[str, dict[str, int]] = {}
        for flow, status, count in rows:
            found.setdefault(str(flow), {})[str(status)] = int(count)
        return found

    def reconcile(self) -> ErpArReconciliation:
        [report] = reconcile_erp_migration(self.hub)
        return report


@pytest.fixture
def tryton() -> Iterator[TrytonServer]:
    with TrytonServer() as server:
        yield server


@pytest.fixture
def store(tmp_path: Any) -> Iterator[sa.Engine]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'q2c.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def world(tryton: TrytonServer, store: sa.Engine, clock: Any) -> Iterator[ParallelWorld]:
    erps = Erps(tryton)
    built = ParallelWorld(erps, store, clock)
    built.sync_reference()
    yield built
    built.hub.close()
    erps.close()


def _done(world: ParallelWorld) -> None:
    statuses = world.statuses()
    assert all(set(by_status) == {"completed"} for by_status in statuses.values()), statuses


def test_every_posting_lands_in_both_erps_and_they_reconcile(world: ParallelWorld) -> None:
    assert isinstance(world.hub.services("live").erp, ParallelRunErp)
    acme, globex = world.won("A"), world.won("B")
    world.provision(acme)
    world.provision(globex)
    ns, tryton = world.erps.netsuite, world.erps.tryton
    for won in (acme, globex):
        erp_ids = world.crm.write_backs[won.opportunity_id]  # NetSuite's: system of record
        customer = ns.get_customer(erp_ids["customer"])
        assert customer.legal_name == won.customer.legal_name
        party = tryton.find_customer(
            external_id=f"q2c-crm-{won.customer.xrefs['crm']}", tax_id=None, legal_name=None
        )
        assert party is not None and party.legal_name == won.customer.legal_name
        canonical = world.hub.xref.canonical_id("netsuite", "customer", customer.erp_id)
        assert canonical is not None
        assert world.hub.xref.external_ids(canonical, "customer")["tryton"] == party.erp_id
        project = tryton.find_work(f"q2c-prj-{won.opportunity_id}", tryton.company_id)
        assert project is not None
    first = world.bill(acme, ("Senior", "7.5", 9), ("Junior", "12.3", 10))
    second = world.bill(globex, ("Senior", "4", 12))
    world.pay(first, "py_1", "1000.00", "1000.00")  # partial
    world.pay(second, "py_2", "1000.00", str(second.total.amount))  # in full, the rest credit
    world.close_november()
    _done(world)
    assert set(world.statuses()) >= {invoice_to_ledger.NAME, payment_to_ledger.NAME,
                                     revenue_recognition.NAME}  # fmt: skip
    for invoice in (first, second):
        ids = world.hub.xref.external_ids(f"inv:{invoice.id}", "invoice")
        in_ns, in_tryton = ns.read_invoice(ids["netsuite"]), tryton.read_invoice(ids["tryton"])
        for posted in (in_ns, in_tryton):
            assert (posted.subtotal, posted.tax_total, posted.total) == (
                invoice.subtotal, invoice.tax_total, invoice.total,
            )  # fmt: skip
        assert in_ns.amount_remaining == in_tryton.amount_remaining
        assert world.billing.erp_references[invoice.id] == in_ns.number  # the record's number
    journals = world.hub.ledgers.documents.documents("revenue")
    assert journals  # as-invoiced revenue for November, one journal per contract
    for journal in journals:
        pair = world.hub.xref.external_ids(journal["document_id"], PAIR_PREFIX + "journal")
        assert pair["netsuite"] == journal["erp_id"]
        moves = tryton.rpc.read("account.move", [int(pair["tryton"])], ["state"])
        assert moves == [{"id": int(pair["tryton"]), "state": "posted"}]
    report = world.reconcile()
    assert report.matched, report.lines()
    assert (report.customers_compared, report.invoices_compared) == (2, 2)
    owed = first.total - usd("1000.00") - (usd("1000.00") - second.total)
    assert report.legacy_balance == report.target_balance == {"USD": owed}
    # the receivable Tryton holds for the customer, read from Tryton itself
    party = world.hub.xref.external_ids(f"inv:{first.id}", "invoice")
    assert tryton.read_invoice(party["tryton"]).amount_remaining == first.total - usd("1000.00")


def test_an_invoice_keyed_in_one_erp_only_is_named_with_customer_and_amount(
    world: ParallelWorld,
) -> None:
    acme = world.won("C")
    world.provision(acme)
    invoice = world.bill(acme, ("Senior", "10", 9))
    _done(world)
    assert world.reconcile().matched
    tryton = world.erps.tryton
    party = world.hub.xref.external_ids(
        world.hub.xref.canonical_id(
            "netsuite", "customer", world.crm.write_backs[acme.opportunity_id]["customer"]
        )
        or "",
        "customer",
    )["tryton"]
    extra = invoice.model_copy(update={"id": "manual-1", "number": "MANUAL-1"})
    tax = str(world.erps.server.setup.taxes["US-SALES-10"])
    item = str(world.erps.server.setup.products["CONSULTING-HOUR"])
    tryton.upsert_invoice(  # keyed in by hand in the new ERP, outside q2c
        extra,
        external_id="HAND-KEYED-1",
        refs=InvoicePostingRefs(
            customer_erp_id=party,
            subsidiary="",
            currency_erp_id=tryton.currencies()["USD"],
            items={"CONSULT-SR": item},
            tax_codes={"US-SALES-10": tax},
        ),
    )
    report = world.reconcile()
    assert not report.matched
    name = acme.customer.legal_name
    assert {d.customer for d in report.differences} == {name}
    kinds = {d.kind: d for d in report.differences}
    assert set(kinds) == {"balance", "invoiced_total", "invoice_missing"}
    assert kinds["balance"].amount == invoice.total == kinds["invoice_missing"].amount
    text = "\n".join(report.lines())
    assert f"Customer '{name}': AR balance NetSuite {invoice.total}, Tryton " in text
    assert f"(Tryton {invoice.total} more)" in text
    assert f"(HAND-KEYED-1) of {invoice.total} is in Tryton only" in text


def test_cut_over_is_a_configuration_flip_and_the_flows_keep_trytons_ids(
    world: ParallelWorld,
) -> None:
    acme = world.won("D")
    world.provision(acme)
    before = world.bill(acme, ("Senior", "5", 9))
    world.cut_over()
    services = world.hub.services("live")
    assert services.ledger.system == "tryton" and services.erp.system == "tryton"
    globex = world.won("E")
    world.provision(globex)  # a new customer after cut-over: created in Tryton first
    after = world.bill(globex, ("Junior", "8", 16))
    world.pay(before, "py_1", str(before.total.amount), str(before.total.amount))
    _done(world)
    tryton, ns = world.erps.tryton, world.erps.netsuite
    after_ids = world.hub.xref.external_ids(f"inv:{after.id}", "invoice")
    assert world.billing.erp_references[after.id] == tryton.read_invoice(after_ids["tryton"]).number
    assert ns.read_invoice(after_ids["netsuite"]).total == after.total  # legacy still fed
    erp_ids = world.crm.write_backs[globex.opportunity_id]
    assert tryton.find_customer(
        external_id=f"q2c-crm-{globex.customer.xrefs['crm']}", tax_id=None, legal_name=None
    ) == tryton.find_customer(external_id=None, tax_id=None, legal_name=globex.customer.legal_name)
    assert world.hub.xref.canonical_id("tryton", "project", erp_ids["project"]) is not None
    # the invoice posted before cut-over is paid in both, through Tryton's id for it
    before_ids = world.hub.xref.external_ids(f"inv:{before.id}", "invoice")
    assert tryton.read_invoice(before_ids["tryton"]).status == "paid"
    assert ns.read_invoice(before_ids["netsuite"]).amount_remaining == usd("0.00")
    document = world.hub.ledgers.documents.get("payment", "py_1")
    assert document is not None
    assert world.hub.xref.external_ids("pay:py_1", "payment")["tryton"] == document["erp_id"]
    assert world.reconcile().matched
