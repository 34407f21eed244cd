"""Shadow mode: reads go to the real systems, writes are only recorded.

Used for the phased roll-out (a flow runs in shadow for a legal entity before go-live, so
finance can compare) and for replay dry-runs ("what would be sent").
"""

from __future__ import annotations

from typing import Any

from q2c.canonical.models import Contract, Customer, Project, Proposal
from q2c.flows.ports import (
    ClosedWonPage,
    CrmPort,
    ErpCustomer,
    ErpPort,
    ErpRecordRef,
    SalesOrderRefs,
)

__all__ = ["ShadowCrm", "ShadowErp"]

SHADOW_PREFIX = "shadow:"


class ShadowCrm:
    def __init__(self, real: CrmPort, log: list[dict[str, Any]]) -> None:
        self.real = real
        self.system = real.system
        self.log = log

    def closed_won_since(self, watermark: str | None) -> ClosedWonPage:
        return self.real.closed_won_since(watermark)

    def fetch_proposal(self, opportunity_id: str) -> Proposal:
        return self.real.fetch_proposal(opportunity_id)

    def write_back(self, opportunity_id: str, erp_ids: dict[str, str]) -> None:
        self.log.append(
            {
                "system": self.system,
                "operation": "write_back",
                "record": opportunity_id,
                "values": dict(erp_ids),
            }
        )


class ShadowErp:
    def __init__(self, real: ErpPort, log: list[dict[str, Any]]) -> None:
        self.real = real
        self.system = real.system
        self.log = log

    def find_customer(
        self, *, external_id: str | None, tax_id: str | None, legal_name: str | None
    ) -> ErpCustomer | None:
        return self.real.find_customer(
            external_id=external_id, tax_id=tax_id, legal_name=legal_name
        )

    def upsert_customer(
        self, customer: Customer, *, external_id: str, subsidiary: str
    ) -> ErpCustomer:
        self._record("upsert_customer", external_id, customer.model_dump(mode="json"))
        return ErpCustomer(
            erp_id=SHADOW_PREFIX + external_id,
            number="(not created: shadow)",
            legal_name=customer.legal_name,
            subsidiary=subsidiary,
            currency=customer.currency,
            tax_id=customer.tax_id,
            external_id=external_id,
        )

    def upsert_project(
        self,
        project: Project,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        department: str | None,
    ) -> ErpRecordRef:
        self._record(
            "upsert_project",
            external_id,
            {
                **project.model_dump(mode="json"),
                "customer": customer_erp_id,
                "subsidiary": subsidiary,
                "department": department,
            },
        )
        return ErpRecordRef(erp_id=SHADOW_PREFIX + external_id, external_id=external_id)

    def upsert_sales_order(
        self, contract: Contract, *, external_id: str, refs: SalesOrderRefs
    ) -> ErpRecordRef:
        self._record(
            "upsert_sales_order",
            external_id,
            {
                **contract.model_dump(mode="json"),
                "refs": {
                    "customer": refs.customer_erp_id,
                    "project": refs.project_erp_id,
                    "subsidiary": refs.subsidiary,
                    "department": refs.department,
                    "items": refs.items,
                },
            },
        )
        return ErpRecordRef(erp_id=SHADOW_PREFIX + external_id, external_id=external_id)

    def _record(self, operation: str, external_id: str, values: dict[str, Any]) -> None:
        self.log.append(
            {
                "system": self.system,
                "operation": operation,
                "external_id": external_id,
                "values": values,
            }
        )
