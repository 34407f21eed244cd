"""Builders for flow tests: an approved proposal, services on in-memory ports, an engine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from q2c.canonical.events import CloudEvent, new_event
from q2c.canonical.models import Customer, Proposal, ProposalLine
from q2c.canonical.money import Money
from q2c.connectors.memory import InMemoryCrm, InMemoryErp
from q2c.flows.opportunity_to_project import build_flow
from q2c.flows.services import ApprovalPolicy, Services
from q2c.flows.shadow import ShadowCrm, ShadowErp
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import ValueMaps
from q2c.runtime.engine import SagaEngine
from q2c.runtime.flow import Mode
from q2c.runtime.inbox import Inbox, Routing
from q2c.runtime.retry import RetryPolicy
from q2c.runtime.xref import XrefHub

MAPPINGS: dict[str, Any] = {
    "subsidiary": {"US01": {"erp": "1"}},
    "department": {"Consulting-US": {"US01": {"erp": "3"}}},
    "item": {"CONSULT-SR": {"*": {"erp": "21"}}, "CONSULT-JR": {"*": {"erp": "22"}}},
}


def proposal(opportunity: str = "006A", *, department: str = "Consulting-US",
             version: int = 1, tax_id: str | None = "default") -> Proposal:
    if tax_id == "default":
        tax_id = f"US-TAX-{opportunity}"
    usd = "USD"
    lines = [
        ProposalLine(line_no=1, service_item="CONSULT-SR", role="Senior", quantity=Decimal(100),
                     unit_price=Money.of("200.00", usd), amount=Money.of("20000.00", usd)),
        ProposalLine(line_no=2, service_item="CONSULT-JR", role="Junior", quantity=Decimal(50),
                     unit_price=Money.of("120.50", usd), amount=Money.of("6025.00", usd)),
    ]
    return Proposal(
        id=f"0Q0{opportunity}", version=version, opportunity_id=opportunity,
        name=f"Implementation {opportunity}",
        customer=Customer(id=f"001{opportunity}", xrefs={"crm": f"001{opportunity}"},
                          legal_name=f"Customer {opportunity} Ltd", tax_id=tax_id,
                          country="US", currency=usd, legal_entity="US01"),
        legal_entity="US01", currency=usd, billing_model="fixed_fee",
        revenue_method="straight_line", start_date=date(2026, 12, 1),
        end_date=date(2027, 2, 28), department=department, lines=lines,
        total=Money.of("26025.00", usd), approved_at=datetime(2026, 11, 25, tzinfo=UTC),
    )


def approved_event(p: Proposal, event_id: str | None = None) -> CloudEvent:
    return new_event("proposal.approved", p, source="urn:test:cpq", subject=p.opportunity_id,
                     event_id=event_id or f"evt-{p.opportunity_id}-{p.version}")


class World:
    """Everything a flow test needs, wired like bootstrap does it."""

    def __init__(self, db: sa.Engine, clock: Any, *, attempts: int = 3,
                 mappings: dict[str, Any] | None = None, mode: Mode = "live",
                 worker_id: str = "w1") -> None:
        self.db = db
        self.clock = clock
        self.crm = InMemoryCrm()
        self.erp = InMemoryErp()
        self.maps = ValueMaps.from_config(mappings or MAPPINGS)
        self.ownership = OwnershipRules.from_config(
            {"customer": {"create": ["erp"], "update": ["erp"]},
             "project": {"create": ["erp"], "update": ["erp"]}}
        )
        self.xref = XrefHub(db, now=clock)
        self.flow = build_flow(RetryPolicy(attempts=attempts, initial_seconds=1, jitter=0))
        self.mode = mode
        self.inbox = Inbox(db, Routing({self.flow.name: self.flow}, lambda f, p: self.mode),
                           now=clock)
        self.engine = self.make_engine(worker_id)

    def services(self, mode: Mode) -> Services:
        log: list[dict[str, Any]] = []
        crm, erp = self.crm, self.erp
        if mode == "shadow":
            crm, erp = ShadowCrm(self.crm, log), ShadowErp(self.erp, log)  # type: ignore[assignment]
        return Services(crm=crm, erp=erp, maps=self.maps, ownership=self.ownership,
                        xref=self.xref, approval=ApprovalPolicy(), shadow_log=log)

    def make_engine(self, worker_id: str) -> SagaEngine:
        return SagaEngine(self.db, {self.flow.name: self.flow}, services=self.services,
                          worker_id=worker_id, now=self.clock, max_replays=3)

    def submit(self, p: Proposal, event_id: str | None = None) -> str:
        self.crm.proposals[p.opportunity_id] = p
        receipt = self.inbox.accept([approved_event(p, event_id)])[0]
        assert receipt.transaction_id is not None
        return receipt.transaction_id

    def status(self, transaction_id: str) -> str:
        from q2c.store.schema import transactions

        with self.db.connect() as c:
            return c.execute(sa.select(transactions.c.status).where(
                transactions.c.id == transaction_id)).scalar_one()
