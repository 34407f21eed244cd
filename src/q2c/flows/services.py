"""What the flows are given to work with: ports by role plus the hub's own services.

Built by ``q2c.bootstrap``; tests build it with the stub/emulator adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from q2c.canonical.money import Money
from q2c.errors import ConfigError
from q2c.flows.ports import (
    ArLedgerPort,
    BillingPort,
    CrmPort,
    ErpPort,
    JournalPort,
    PsaPort,
    ReferenceDataPort,
)
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import ValueMaps
from q2c.runtime.exception_queue import ExceptionQueue
from q2c.runtime.inbox import Inbox
from q2c.runtime.ledgers import BillableEvents, LedgerDocuments, MasterRecords
from q2c.runtime.xref import XrefHub

__all__ = ["ApprovalPolicy", "HubLedgers", "Services"]

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """ERP approval checks for a new customer (credit, tax registration)."""

    max_new_customer_credit_limit: Money | None = None
    require_tax_id: bool = True


@dataclass(slots=True)
class Services:
    crm: CrmPort
    erp: ErpPort
    maps: ValueMaps
    ownership: OwnershipRules
    xref: XrefHub
    approval: ApprovalPolicy = field(default_factory=ApprovalPolicy)
    enabled_entities: frozenset[str] | None = None
    shadow_log: list[dict[str, Any]] = field(default_factory=list)
    # delivery-to-cash: present when q2c.yaml names systems with these roles
    psa_port: PsaPort | None = None
    billing_port: BillingPort | None = None
    ledger_port: ArLedgerPort | None = None
    journal_port: JournalPort | None = None
    reference_port: ReferenceDataPort | None = None
    ledgers: HubLedgers | None = None

    @property
    def psa(self) -> PsaPort:
        return _require(self.psa_port, "psa")

    @property
    def billing(self) -> BillingPort:
        return _require(self.billing_port, "billing")

    @property
    def ledger(self) -> ArLedgerPort:
        return _require(self.ledger_port, "erp")

    @property
    def journal(self) -> JournalPort:
        return _require(self.journal_port, "erp")

    @property
    def reference(self) -> ReferenceDataPort:
        return _require(self.reference_port, "erp")

    def erp_customer_of(self, billing_customer_id: str) -> tuple[str, str | None]:
        """The hub's customer behind a billing platform's customer id, and its ERP id (None
        when the ERP has no such customer yet)."""
        canonical = self.xref.canonical_id(self.billing.system, "customer", billing_customer_id)
        customer_id = canonical or billing_customer_id
        return customer_id, self.xref.external_ids(customer_id, "customer").get(
            self.ledger.system
        )

    @property
    def hub(self) -> HubLedgers:
        if self.ledgers is None:
            raise ConfigError("the hub's ledgers are not wired into the flow services")
        return self.ledgers


@dataclass(frozen=True, slots=True)
class HubLedgers:
    """The hub's own state flows read (writes go through ``StepResult.writes``)."""

    records: MasterRecords
    billable: BillableEvents
    documents: LedgerDocuments
    exceptions: ExceptionQueue
    inbox: Inbox


def _require(port: P | None, role: str) -> P:
    if port is None:
        raise ConfigError(
            f"q2c.yaml: systems: no system has the role '{role}'",
            suggested_fix=f"Add '{role}' to the roles of one system in q2c.yaml.",
        )
    return port
