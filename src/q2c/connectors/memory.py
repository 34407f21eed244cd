"""In-memory CRM and ERP that implement the role ports: for fast tests and benchmarks of the
runtime, where the vendor wire format is not what is being tested (the emulators cover that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.models import Contract, Customer, Project, Proposal
from q2c.errors import NotFoundError, Q2CError
from q2c.flows.ports import ClosedWonPage, ErpCustomer, ErpRecordRef, SalesOrderRefs

__all__ = ["InMemoryCrm", "InMemoryErp"]

FaultHook = Callable[[str], None]


def _no_fault(operation: str) -> None:
    del operation


@dataclass
class InMemoryCrm:
    system: str = "crm"
    proposals: dict[str, Proposal] = field(default_factory=dict)
    write_backs: dict[str, dict[str, str]] = field(default_factory=dict)
    write_back_calls: int = 0
    fault: FaultHook = _no_fault

    def closed_won_since(self, watermark: str | None) -> ClosedWonPage:
        items = [
            OpportunityClosedWon(
                opportunity_id=p.opportunity_id,
                proposal_version=p.version,
                legal_entity=p.legal_entity,
            )
            for p in self.proposals.values()
        ]
        return ClosedWonPage(items, watermark)

    def fetch_proposal(self, opportunity_id: str) -> Proposal:
        self.fault("fetch_proposal")
        try:
            return self.proposals[opportunity_id]
        except KeyError:
            raise NotFoundError(f"Opportunity {opportunity_id} does not exist") from None

    def write_back(self, opportunity_id: str, erp_ids: dict[str, str]) -> None:
        self.fault("write_back")
        self.write_back_calls += 1
        self.write_backs[opportunity_id] = dict(erp_ids)


@dataclass
class InMemoryErp:
    """Upserts keyed by external id, like NetSuite's ``eid:`` record paths."""

    system: str = "erp"
    customers: dict[str, ErpCustomer] = field(default_factory=dict)
    projects: dict[str, dict[str, Any]] = field(default_factory=dict)
    sales_orders: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: int = 0
    fault: FaultHook = _no_fault
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _next_id(self) -> str:
        with self._lock:
            self.calls += 1
            return str(1000 + len(self.customers) + len(self.projects) + len(self.sales_orders))

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        self.fault("find_customer")
        customers = list(self.customers.values())
        for found in (
            [c for c in customers if external_id is not None and c.external_id == external_id],
            [c for c in customers if tax_id is not None and c.tax_id == tax_id],
            [c for c in customers
             if legal_name is not None and c.legal_name.lower() == legal_name.lower()],
        ):
            if found:
                return found[0]
        return None

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer:
        self.fault("upsert_customer")
        existing = self.customers.get(external_id)
        erp_id = existing.erp_id if existing else self._next_id()
        record = ErpCustomer(
            erp_id=erp_id,
            number=f"CUST-{erp_id}",
            legal_name=customer.legal_name,
            subsidiary=subsidiary,
            currency=customer.currency,
            tax_id=customer.tax_id,
            external_id=external_id,
            credit_limit=customer.credit_limit,
        )
        self.customers[external_id] = record
        return record

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef:
        self.fault("upsert_project")
        return self._upsert(
            self.projects,
            external_id,
            {
                "name": project.name,
                "customer": customer_erp_id,
                "subsidiary": subsidiary,
                "department": department,
            },
        )

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef:
        self.fault("upsert_sales_order")
        for line in contract.lines:
            if line.service_item not in refs.items:
                raise Q2CError(f"item {line.service_item} not mapped")
        return self._upsert(
            self.sales_orders,
            external_id,
            {
                "customer": refs.customer_erp_id,
                "project": refs.project_erp_id,
                "total": contract.total_value.as_json(),
                "lines": len(contract.lines),
            },
        )

    def _upsert(
        self, table: dict[str, dict[str, Any]], external_id: str, values: dict[str, Any]
    ) -> ErpRecordRef:
        existing = table.get(external_id)
        erp_id = existing["id"] if existing else self._next_id()
        table[external_id] = {**values, "id": erp_id}
        return ErpRecordRef(erp_id=erp_id, external_id=external_id, number=f"N{erp_id}")
