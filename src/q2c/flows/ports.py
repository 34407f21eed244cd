"""Role ports: the narrow surfaces flows need from outside systems.

Flows depend on these protocols only; ``q2c.connectors.<vendor>`` adapters implement them and
translate vendor errors into ``q2c.errors`` at the edge, so no vendor type leaks inward.
Every write takes an ``external_id`` derived from the step's idempotency key: the vendor's
upsert-by-external-id makes a repeated write land on the same record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.models import Contract, Customer, Project, Proposal
from q2c.canonical.money import Money

__all__ = [
    "ClosedWonPage",
    "CrmPort",
    "ErpCustomer",
    "ErpPort",
    "ErpRecordRef",
    "SalesOrderRefs",
]


@dataclass(frozen=True, slots=True)
class ClosedWonPage:
    """Closed-won opportunities changed since a watermark, and the watermark to poll from next."""

    opportunities: list[OpportunityClosedWon]
    watermark: str | None


@runtime_checkable
class CrmPort(Protocol):
    system: str

    def closed_won_since(self, watermark: str | None) -> ClosedWonPage:
        """Closed-won opportunities modified after ``watermark`` (all pages), oldest first."""
        ...

    def fetch_proposal(self, opportunity_id: str) -> Proposal:
        """Opportunity + account + its primary approved quote, as a canonical Proposal."""
        ...

    def write_back(self, opportunity_id: str, erp_ids: dict[str, str]) -> None:
        """Write ERP ids (customer, project, sales order) back onto the opportunity."""
        ...


@dataclass(frozen=True, slots=True)
class ErpCustomer:
    erp_id: str
    number: str
    legal_name: str
    subsidiary: str
    currency: str | None = None
    tax_id: str | None = None
    external_id: str | None = None
    credit_limit: Money | None = None
    on_credit_hold: bool = False


@dataclass(frozen=True, slots=True)
class ErpRecordRef:
    erp_id: str
    external_id: str
    number: str | None = None


@dataclass(frozen=True, slots=True)
class SalesOrderRefs:
    """ERP ids the sales order needs, resolved from q2c.yaml mappings by the flow."""

    customer_erp_id: str
    project_erp_id: str
    subsidiary: str
    department: str | None
    items: dict[str, str] = field(default_factory=dict)  # canonical service item -> ERP item id


@runtime_checkable
class ErpPort(Protocol):
    system: str

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        """Match in this order: external id (the CRM id), tax id, exact legal name."""
        ...

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer: ...

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef: ...

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef: ...
