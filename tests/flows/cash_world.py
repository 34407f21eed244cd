"""A delivery-to-cash world for flow tests: master data in the hub, in-memory billing and
ledger ports, every delivery-to-cash flow wired like bootstrap wires them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from q2c.canonical.events import (
    BillingRunRequested,
    CloudEvent,
    DeliveryBatch,
    PeriodClosed,
    new_event,
)
from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    BillingTerms,
    Contract,
    ContractLine,
    Customer,
    ExchangeRate,
    Project,
    RateCard,
    RateCardLine,
    RevenueMethod,
    TaxCode,
)
from q2c.canonical.money import Money
from q2c.connectors.memory import InMemoryBilling, InMemoryCrm, InMemoryErp, InMemoryLedger
from q2c.flows import delivery_to_billing
from q2c.flows.services import HubLedgers, Services
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import ValueMaps
from q2c.runtime.engine import RunOutcome, SagaEngine
from q2c.runtime.exception_queue import ExceptionQueue
from q2c.runtime.flow import Flow, Mode, XrefLink
from q2c.runtime.inbox import Inbox, Receipt, Routing
from q2c.runtime.ledgers import BillableEvents, LedgerDocuments, MasterRecords
from q2c.runtime.retry import RetryPolicy
from q2c.runtime.xref import XrefHub

USD = "USD"
MAPPINGS: dict[str, Any] = {
    "subsidiary": {"US01": {"erp": "1"}, "DE01": {"erp": "2"}},
    "item": {
        code: {"*": {"erp": str(20 + n)}}
        for n, code in enumerate(
            [
                "CONSULT-SR",
                "CONSULT-JR",
                "EXPENSE",
                "MILESTONE",
                "FIXED-FEE",
                "RETAINER",
                "RETAINER-OVERAGE",
                "USAGE",
            ]
        )
    },
    "tax_code": {"US-EXEMPT": {"*": {"erp": "T0"}}, "DE-VAT19": {"*": {"erp": "T19"}}},
    "gl_account": {"deferred_revenue": {"*": {"erp": "2400"}}, "revenue": {"*": {"erp": "4000"}}},
}


def usd(amount: str) -> Money:
    return Money.of(amount, USD)


class CashWorld:
    def __init__(
        self, db: sa.Engine, clock: Any, *, attempts: int = 2, extra_flows: tuple[Flow, ...] = ()
    ) -> None:
        self.db = db
        self.clock = clock
        self.billing = InMemoryBilling()
        self.ledger = InMemoryLedger(tax_rates={"T0": Decimal(0), "T19": Decimal("0.19")})
        self.crm = InMemoryCrm()
        self.records = MasterRecords(db, now=clock)
        self.billable = BillableEvents(db, now=clock)
        self.documents = LedgerDocuments(db, now=clock)
        self.exceptions = ExceptionQueue(db, now=clock)
        self.xref = XrefHub(db, now=clock)
        self.maps = ValueMaps.from_config(MAPPINGS)
        policy = RetryPolicy(attempts=attempts, initial_seconds=1, jitter=0)
        intake, batches, run = delivery_to_billing.build_flows(policy)
        self.flows = {f.name: f for f in (intake, batches, run, *extra_flows)}
        self.inbox = Inbox(db, Routing(self.flows, lambda f, p: "live"), now=clock)
        self.engine = SagaEngine(
            db, self.flows, services=self.services, worker_id="w1", now=clock, max_replays=3
        )

    def services(self, mode: Mode) -> Services:
        return Services(
            crm=self.crm,
            erp=InMemoryErp(),
            maps=self.maps,
            ownership=OwnershipRules.from_config({}),
            xref=self.xref,
            billing_port=self.billing,
            ledger_port=self.ledger,
            journal_port=self.ledger,
            reference_port=self.ledger,
            ledgers=HubLedgers(
                self.records, self.billable, self.documents, self.exceptions, self.inbox
            ),
        )

    # --- master data -----------------------------------------------------------------------
    def seed_reference(self) -> None:
        with self.db.begin() as c:
            for code in (
                TaxCode(
                    code="US-EXEMPT",
                    name="Services exempt",
                    rate=Decimal(0),
                    jurisdiction="US",
                    legal_entity="US01",
                ),
                TaxCode(
                    code="DE-VAT19",
                    name="VAT 19%",
                    rate=Decimal("0.19"),
                    jurisdiction="DE",
                    legal_entity="DE01",
                ),
            ):
                self.records.save_in(
                    c, "tax_code", code, canonical_id=f"{code.legal_entity}:{code.code}"
                )
            rate = ExchangeRate(
                base="EUR", quote=USD, rate=Decimal("1.0800"), effective_date=date(2026, 10, 1)
            )
            self.records.save_in(c, "exchange_rate", rate, canonical_id="EURUSD:2026-10-01")
            for version, (start, end, senior, junior) in enumerate(
                [
                    (date(2026, 1, 1), date(2026, 11, 15), "200.00", "120.00"),
                    (date(2026, 11, 16), None, "210.00", "125.00"),
                ],
                start=1,
            ):
                card = RateCard(
                    id="RC-US",
                    name="US standard",
                    version=version,
                    currency=USD,
                    effective_from=start,
                    effective_to=end,
                    lines=[
                        RateCardLine(role="Senior", service_item="CONSULT-SR", rate=usd(senior)),
                        RateCardLine(role="Junior", service_item="CONSULT-JR", rate=usd(junior)),
                    ],
                )
                self.records.save_in(c, "rate_card", card, canonical_id="RC-US", version=version)

    def seed_contract(
        self,
        number: str,
        *,
        model: BillingModel = BillingModel.TIME_AND_MATERIALS,
        total: str = "100000.00",
        not_to_exceed: str | None = None,
        project_status: str = "active",
        terms: BillingTerms | None = None,
        schedule: list[dict[str, Any]] | None = None,
        revenue: RevenueMethod = RevenueMethod.AS_INVOICED,
        start: date = date(2026, 11, 1),
        end: date = date(2027, 4, 30),
        customer_key: str | None = None,
    ) -> str:
        customer_key = customer_key or number
        customer = Customer(
            id=f"cust-{customer_key}",
            legal_name=f"Customer {customer_key} Inc.",
            country="US",
            currency=USD,
            legal_entity="US01",
            tax_id=f"T{customer_key}",
        )
        contract = Contract(
            id=f"ctr-{number}",
            number=f"C-{number}",
            customer_id=customer.id,
            legal_entity="US01",
            currency=USD,
            billing_model=model,
            revenue_method=revenue,
            start_date=start,
            end_date=end,
            total_value=usd(total),
            not_to_exceed=usd(not_to_exceed) if not_to_exceed else None,
            lines=[
                ContractLine(
                    line_no=1,
                    service_item="CONSULT-SR",
                    quantity=Decimal(1),
                    unit_price=usd(total),
                    amount=usd(total),
                )
            ],
            rate_card_id="RC-US" if model is BillingModel.TIME_AND_MATERIALS else None,
            billing_terms=terms or BillingTerms(tax_code="US-EXEMPT"),
            billing_schedule=schedule or [],
        )
        project = Project(
            id=f"prj-{number}",
            code=f"P-{number}",
            name=f"Project {number}",
            customer_id=customer.id,
            contract_id=contract.id,
            legal_entity="US01",
            start_date=start,
            status=project_status,
        )  # type: ignore[arg-type]
        with self.db.begin() as c:
            self.records.save_in(
                c, "customer", customer, canonical_id=customer.id, legal_entity="US01"
            )
            self.records.save_in(
                c,
                "contract",
                contract,
                canonical_id=contract.id,
                legal_entity="US01",
                status=contract.status,
            )
            self.records.save_in(
                c,
                "project",
                project,
                canonical_id=project.id,
                legal_entity="US01",
                status=project.status,
            )
        self.xref.link(XrefLink(customer.id, "customer", "erp", f"erp-{customer_key}"))
        return contract.id

    # --- delivery --------------------------------------------------------------------------
    def deliver(self, *events: BillingEvent, event_ids: list[str] | None = None) -> list[Receipt]:
        types = {
            BillingEventKind.TIME: "time.approved",
            BillingEventKind.EXPENSE: "expense.approved",
            BillingEventKind.MILESTONE: "milestone.completed",
            BillingEventKind.USAGE: "usage.recorded",
        }
        cloud = [
            new_event(
                types[e.kind],
                e,
                source="urn:test:psa",
                subject=e.id,
                event_id=(event_ids[n] if event_ids else f"psa-{e.id}"),
            )
            for n, e in enumerate(events)
        ]
        return self.inbox.accept(cloud)

    def deliver_batch(self, batch_id: str, *events: BillingEvent) -> list[Receipt]:
        batch = DeliveryBatch(batch_id=batch_id, events=list(events))
        return self.inbox.accept(
            [new_event("delivery.batch_received", batch, source="urn:test:psa",
                       event_id=f"batch-{batch_id}")]
        )

    def close_period(self, period_end: date, *, event_id: str | None = None,
                     legal_entity: str = "US01") -> list[Receipt]:
        close = PeriodClosed(legal_entity=legal_entity, period_start=period_end.replace(day=1),
                             period_end=period_end)
        return self.inbox.accept([new_event(
            "period.closed", close, source="urn:test:erp",
            event_id=event_id or f"close-{legal_entity}-{period_end}")])

    def bill(
        self, contract_id: str, period_end: date, *, start: date | None = None
    ) -> list[Receipt]:
        request = BillingRunRequested(
            contract_id=contract_id,
            period_start=start or period_end.replace(day=1),
            period_end=period_end,
            document_date=period_end,
        )
        return self.inbox.accept([delivery_to_billing.billing_run_event(request)])

    def accept(self, *events: CloudEvent) -> list[Receipt]:
        return self.inbox.accept(list(events))

    def run(self) -> list[RunOutcome]:
        outcomes: list[RunOutcome] = []
        while True:
            batch = self.engine.run_due()
            if not batch:
                return outcomes
            outcomes.extend(batch)

    def statuses(self, flow: str) -> dict[str, int]:
        from q2c.store.schema import transactions

        with self.db.connect() as c:
            rows = c.execute(
                sa.select(transactions.c.status, sa.func.count())
                .where(transactions.c.flow == flow)
                .group_by(transactions.c.status)
            ).all()
        return {r[0]: int(r[1]) for r in rows}

    def open_exceptions(self) -> list[Any]:
        return [e for e in self.exceptions.list() if e.status == "open"]


def time_entry(
    entry_id: str,
    contract_number: str,
    day: date,
    hours: str,
    role: str = "Senior",
    service_item: str | None = "CONSULT-SR",
    **extra: Any,
) -> BillingEvent:
    return BillingEvent(
        id=entry_id,
        kind=BillingEventKind.TIME,
        project_id=f"prj-{contract_number}",
        work_date=day,
        quantity=Decimal(hours),
        role=role,
        service_item=service_item,
        description=f"{role} consulting",
        approved_at=datetime(2026, 11, 28, tzinfo=UTC),
        **extra,
    )


def expense(
    expense_id: str, contract_number: str, day: date, amount: Money, category: str = "travel"
) -> BillingEvent:
    return BillingEvent(
        id=expense_id,
        kind=BillingEventKind.EXPENSE,
        project_id=f"prj-{contract_number}",
        work_date=day,
        unit="each",
        amount=amount,
        expense_category=category,
        description=category,
    )
