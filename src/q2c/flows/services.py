"""What the flows are given to work with: ports by role plus the hub's own services.

Built by ``q2c.bootstrap``; tests build it with the stub/emulator adapters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from q2c.canonical.money import Money
from q2c.flows.ports import CrmPort, ErpPort
from q2c.mapping.ownership import OwnershipRules
from q2c.mapping.value_maps import ValueMaps
from q2c.runtime.xref import XrefHub

__all__ = ["ApprovalPolicy", "Services"]


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
