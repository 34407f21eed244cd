"""ERP migration parallel run on in-memory ERPs: every posting lands in both, a failure on the
secondary is never silent, reconciliation reads both, and cut-over is configuration only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from q2c.canonical.events import new_event
from q2c.canonical.models import Payment, PaymentApplication
from q2c.config import parse_config
from q2c.connectors.memory import InMemoryErp, InMemoryLedger
from q2c.connectors.parallel_run import PAIR_PREFIX, ErpSide, ParallelRunErp
from q2c.errors import RetriableError
from q2c.flows import invoice_to_ledger, payment_to_ledger, revenue_recognition
from q2c.flows.erp_reconciliation import reconcile_erps
from q2c.flows.ports import InvoicePostingRefs
from q2c.flows.services import Services
from q2c.mapping.value_maps import ValueMaps
from q2c.reconciliation.erp_ar import ErpArReconciliation
from q2c.runtime.flow import Mode, XrefLink
from tests.flows.cash_world import MAPPINGS, CashWorld, time_entry, usd

NOV = date(2026, 11, 30)
LEGACY, TARGET = "erp", "target"


@dataclass
class MemoryErpSystem(InMemoryErp, InMemoryLedger):
    """One in-memory ERP with every ERP role, like the NetSuite and Tryton adapters."""


def _target_mappings() -> dict[str, Any]:
    """MAPPINGS for the legacy ERP ("erp"), plus the target's own ids ("t-...")."""
    mappings: dict[str, Any] = {}
    for dimension, values in MAPPINGS.items():
        mappings[dimension] = {}
        for value, targets in values.items():
            if LEGACY in targets:  # the shorthand {system: id}
                mappings[dimension][value] = {**targets, TARGET: f"t-{targets[LEGACY]}"}
                continue
            mappings[dimension][value] = {
                entity: {**systems, TARGET: f"t-{systems[LEGACY]}"}
                for entity, systems in targets.items()
            }
    return mappings


class ParallelWorld(CashWorld):
    """The delivery-to-cash world with two ERPs behind one parallel-run port."""

    def __init__(self, db: Any, clock: Any) -> None:
        rates = {"T0": Decimal(0), "T19": Decimal("0.19")}
        self.legacy = MemoryErpSystem(system=LEGACY, tax_rates=dict(rates))
        self.target = MemoryErpSystem(
            system=TARGET,
            tax_rates={f"t-{code}": rate for code, rate in rates.items()},
            currency_ids={"USD": "t-usd", "EUR": "t-eur"},
        )
        self.system_of_record = "legacy"
        self.migrating = ["US01"]
        super().__init__(
            db,
            clock,
            extra_flows=(
                invoice_to_ledger.build_flow(),
                payment_to_ledger.build_flow(),
                revenue_recognition.build_flow(),
            ),
        )
        self.maps = ValueMaps.from_config(_target_mappings())
        self.ledger = self.legacy  # what CashWorld's helpers read

    @property
    def port(self) -> ParallelRunErp:
        legacy, target = ErpSide(self.legacy, "Legacy ERP"), ErpSide(self.target, "Target ERP")
        record, secondary = (
            (legacy, target) if self.system_of_record == "legacy" else (target, legacy)
        )
        return ParallelRunErp(
            record, secondary, xref=self.xref, maps=lambda: self.maps, legal_entities=self.migrating
        )

    def services(self, mode: Mode) -> Services:
        services = super().services(mode)
        port = self.port
        services.erp = services.ledger_port = services.journal_port = port
        services.reference_port = port
        return services

    def migrate_customer(self, customer_key: str) -> None:
        """What the data migration does before the parallel run: the customer is in both."""
        canonical = f"cust-{customer_key}"
        self.xref.link(XrefLink(canonical, "customer", TARGET, f"t-erp-{customer_key}"))

    def reconcile(self) -> ErpArReconciliation:
        config = parse_config(
            {
                "version": 1,
                "legal_entities": [
                    {"code": "US01", "name": "US", "country": "US", "base_currency": "USD"}
                ],
                "systems": {  # as q2c.yaml names them; the adapters file ids as erp / target
                    "netsuite": {"vendor": "netsuite", "roles": ["erp"], "sandbox": True},
                    "tryton": {"vendor": "tryton", "roles": ["erp"], "sandbox": True},
                },
                "mappings": {"subsidiary": {"US01": {"netsuite": "1", "tryton": "t-1"}}},
                "erp_migration": {
                    "legacy": "netsuite",
                    "target": "tryton",
                    "legal_entities": ["US01"],
                },
            },
            env={},
        )
        [report] = reconcile_erps(
            config, legacy=self.legacy, target=self.target, xref=self.xref, maps=self.maps
        )
        return report


@pytest.fixture
def world(db, clock) -> ParallelWorld:
    w = ParallelWorld(db, clock)
    w.seed_reference()
    return w


def bill(world: ParallelWorld, number: str, hours: str = "10", migrate: bool = True) -> str:
    contract = world.seed_contract(number)
    world.legacy.customer_names[f"erp-{number}"] = f"Customer {number} Inc."
    world.target.customer_names[f"t-erp-{number}"] = f"Customer {number} Inc."
    if migrate:
        world.migrate_customer(number)
    world.deliver(time_entry(f"te-{number}", number, date(2026, 11, 10), hours))
    world.run()
    world.bill(contract, NOV)
    world.run()
    [invoice_id] = [i for i, inv in world.billing.invoices.items() if inv.contract_id == contract]
    return invoice_id


def pay(world: ParallelWorld, payment_id: str, invoice_id: str, amount: str, applied: str) -> None:
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
    world.accept(new_event("payment.received", payment, source="urn:test:stripe",
                           event_id=f"evt_{payment_id}"))  # fmt: skip
    world.run()


def test_invoice_and_payment_land_in_both_erps_with_each_erps_own_ids(world):
    invoice_id = bill(world, "100")
    pay(world, "py_1", invoice_id, "1500.00", "1500.00")
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 1}
    external_id = f"q2c-inv-{invoice_id}"
    legacy, target = world.legacy.invoices[external_id], world.target.invoices[external_id]
    assert legacy["refs"].customer_erp_id == "erp-100" and legacy["refs"].items == {
        "CONSULT-SR": "20"
    }
    theirs: InvoicePostingRefs = target["refs"]
    assert (theirs.customer_erp_id, theirs.subsidiary, theirs.currency_erp_id) == (
        "t-erp-100",
        "t-1",
        "t-usd",
    )
    assert theirs.items == {"CONSULT-SR": "t-20"} and theirs.tax_codes == {"US-EXEMPT": "t-T0"}
    for ledger, record in ((world.legacy, legacy), (world.target, target)):
        assert ledger.read_invoice(record["id"]).amount_remaining == usd("500.00")
    # the flows keep the system of record's ids; the hub knows the target's too
    assert world.xref.external_ids(f"inv:{invoice_id}", "invoice") == {
        LEGACY: legacy["id"],
        TARGET: target["id"],
    }
    assert world.billing.erp_references[invoice_id] == f"INV-{legacy['id']}"
    assert world.target.payers["q2c-pay-py_1"] == ("t-erp-100", "t-1")
    assert world.xref.external_ids("pay:py_1", "payment")[TARGET] == (
        world.target.payments["q2c-pay-py_1"].erp_id
    )


def test_both_erps_reconcile_to_zero_differences(world):
    first = bill(world, "100")
    bill(world, "101", hours="4")
    pay(world, "py_1", first, "2100.00", "2000.00")  # pays in full, 100.00 left as credit
    report = world.reconcile()
    assert report.matched, report.lines()
    assert (report.customers_compared, report.invoices_compared) == (2, 2)
    assert report.legacy_balance == report.target_balance == {"USD": usd("700.00")}
    assert report.lines() == [
        "US01: NetSuite (legacy) vs Tryton (target): 2 customers, 2 invoices compared, "
        "no differences"
    ]


def test_an_invoice_posted_in_one_erp_only_is_named_with_its_customer_and_amount(world):
    invoice_id = bill(world, "100")
    invoice = world.billing.invoices[invoice_id].model_copy(update={"id": "manual"})
    world.target.upsert_invoice(  # keyed in by hand in the new ERP, outside q2c
        invoice,
        external_id="TRY-MANUAL-1",
        refs=world.target.invoices[f"q2c-inv-{invoice_id}"]["refs"],
    )
    report = world.reconcile()
    kinds = {d.kind: d for d in report.differences}
    assert set(kinds) == {"balance", "invoiced_total", "invoice_missing"}
    assert {d.customer for d in report.differences} == {"Customer 100 Inc."}
    assert kinds["balance"].amount == usd("2000.00")
    assert kinds["invoice_missing"].invoice == "TRY-MANUAL-1"
    text = "\n".join(report.lines())
    assert "Customer 'Customer 100 Inc.': AR balance NetSuite 2,000.00 USD, " in text
    assert "Tryton 4,000.00 USD (Tryton 2,000.00 USD more)" in text
    assert "invoice INV-" in text and "(TRY-MANUAL-1) of 2,000.00 USD is in Tryton only" in text
    assert "3 differences" in report.lines()[0]


def test_a_secondary_outage_retries_the_step_and_never_doubles_either_side(world, clock):
    outages = iter([RetriableError("Target ERP timed out")])

    def fault(operation: str) -> None:
        if operation == "upsert_invoice":
            error = next(outages, None)
            if error is not None:
                raise error

    world.target.fault = fault
    invoice_id = bill(world, "100")
    assert world.statuses(invoice_to_ledger.NAME) == {"retry_wait": 1}
    assert len(world.legacy.invoices) == 1 and not world.target.invoices
    clock.advance(60)
    world.run()
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert len(world.legacy.invoices) == len(world.target.invoices) == 1
    assert world.billing.erp_references[invoice_id].startswith("INV-")


def test_a_secondary_refusal_is_parked_saying_the_system_of_record_has_it(world):
    world.target.tax_rates["t-T0"] = Decimal("0.05")  # the target taxes what billing exempted
    bill(world, "100")
    assert world.statuses(invoice_to_ledger.NAME) == {"parked": 1}
    [parked] = world.open_exceptions()
    assert parked.message.startswith(
        "Parallel run: invoice INV-0001 is in Legacy ERP (system of record) but not in "
        "Target ERP: Target ERP computed invoice INV-0001 differently from the billing document"
    )
    assert "Replaying is safe" in parked.suggested_fix
    world.target.tax_rates["t-T0"] = Decimal(0)
    world.engine.replay(parked.transaction_id, by="finance-ops")
    world.run()
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert len(world.legacy.invoices) == len(world.target.invoices) == 1


def test_a_customer_the_target_does_not_have_is_a_business_fix(world):
    bill(world, "100", migrate=False)
    [parked] = world.open_exceptions()
    assert "Customer erp-100 of Legacy ERP has no counterpart in Target ERP" in parked.message
    assert "Migrate the customer to Target ERP" in parked.suggested_fix
    world.migrate_customer("100")
    world.engine.replay(parked.transaction_id, by="finance-ops")
    world.run()
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert len(world.legacy.invoices) == len(world.target.invoices) == 1


def test_revenue_journals_go_to_both_erps_with_each_erps_accounts(world):
    bill(world, "100")
    world.close_period(NOV)
    world.run()
    assert world.statuses(revenue_recognition.NAME) == {"completed": 1}
    [(key, legacy)] = world.legacy.journals.items()
    target = world.target.journals[key]
    assert [line.account for line in legacy["journal"].lines] == ["2400", "4000"]
    assert [line.account for line in target["journal"].lines] == ["t-2400", "t-4000"]
    assert target["journal"].subsidiary == "t-1" and target["journal"].currency_erp_id == "t-usd"
    assert [line.debit for line in target["journal"].lines] == [
        line.debit for line in legacy["journal"].lines
    ]


def test_a_legal_entity_outside_the_parallel_run_posts_to_the_system_of_record_only(world):
    world.migrating = ["DE01"]
    bill(world, "100", migrate=False)
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 1}
    assert len(world.legacy.invoices) == 1 and not world.target.invoices


def test_cut_over_makes_the_flows_keep_the_targets_ids_without_a_flow_change(world):
    before = bill(world, "100")
    world.system_of_record = "target"  # the q2c.yaml flip: erp_migration.system_of_record
    after = bill(world, "101", hours="4")
    assert world.statuses(invoice_to_ledger.NAME) == {"completed": 2}
    new_target = world.target.invoices[f"q2c-inv-{after}"]
    assert world.billing.erp_references[after] == f"INV-{new_target['id']}"
    assert new_target["refs"].customer_erp_id == "t-erp-101"
    # the legacy ERP still receives every posting, translated back to its own ids
    assert world.legacy.invoices[f"q2c-inv-{after}"]["refs"].customer_erp_id == "erp-101"
    # a payment for an invoice posted before cut-over applies to the target's copy of it
    pay(world, "py_1", before, "2000.00", "2000.00")
    assert world.statuses(payment_to_ledger.NAME) == {"completed": 1}
    old_target = world.target.invoices[f"q2c-inv-{before}"]
    assert world.target.read_invoice(old_target["id"]).status == "paidInFull"
    old_legacy = world.legacy.invoices[f"q2c-inv-{before}"]
    assert world.legacy.read_invoice(old_legacy["id"]).status == "paidInFull"
    assert world.documents.get("payment", "py_1")["erp_id"] == (
        world.target.payments["q2c-pay-py_1"].erp_id
    )
    assert world.reconcile().matched


def test_created_customers_are_paired_and_linked_once_the_hub_knows_them(world):
    from q2c.canonical.models import Customer, Project

    port = world.port
    customer = Customer(id="c-new", legal_name="Fabrikam", country="US", currency="USD",
                        legal_entity="US01", tax_id="US-1")  # fmt: skip
    created = port.upsert_customer(customer, external_id="q2c-crm-001F", subsidiary="1")
    again = port.upsert_customer(customer, external_id="q2c-crm-001F", subsidiary="1")
    assert created == again and len(world.legacy.customers) == len(world.target.customers) == 1
    mirrored = world.target.customers["q2c-crm-001F"]
    assert mirrored.subsidiary == "t-1"
    assert world.xref.external_ids("q2c-crm-001F", PAIR_PREFIX + "customer") == {
        LEGACY: created.erp_id,
        TARGET: mirrored.erp_id,
    }
    # the flow links the canonical customer to the system of record after the step
    world.xref.link(XrefLink("cust-F", "customer", LEGACY, created.erp_id))
    project = Project(id="p-1", code="P-1", name="Rollout", customer_id="cust-F",
                      legal_entity="US01", start_date=date(2026, 12, 1))  # fmt: skip
    port.upsert_project(project, external_id="q2c-prj-1", customer_erp_id=created.erp_id,
                        subsidiary="1", department=None)  # fmt: skip
    assert world.target.projects["q2c-prj-1"]["customer"] == mirrored.erp_id
    assert world.xref.external_ids("cust-F", "customer")[TARGET] == mirrored.erp_id
