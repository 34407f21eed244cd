"""CloudEvents 1.0 envelope (structured JSON mode, and batches) and the q2c event catalogue.

``id`` + ``source`` is the idempotency key of an inbound event; ``subject`` carries the
business key (an opportunity id, an invoice number); the ``correlationid`` extension follows
one business transaction across every system.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from q2c.canonical.base import CanonicalModel
from q2c.canonical.models import (
    BillingEvent,
    ChangeOrder,
    Invoice,
    Payment,
    Proposal,
    RateCard,
)
from q2c.canonical.money import Money

__all__ = [
    "INBOUND_TYPES",
    "MAX_DELIVERY_BATCH",
    "OUTBOUND_TYPES",
    "BillingRunRequested",
    "CloudEvent",
    "ContractChanged",
    "DeliveryBatch",
    "InvoicePosted",
    "OpportunityClosedWon",
    "PaymentApplied",
    "PeriodClosed",
    "ProjectActivated",
    "ReferenceSyncRequested",
    "RevenueRecognized",
    "TransactionFailed",
    "new_event",
    "validate_data",
]

# a PSA poll page is cut into batches of this many entries at most; it keeps one batch's event
# well under the API's 1 MiB body limit
MAX_DELIVERY_BATCH = 1000

_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event in structured mode. Extensions are kept as extra attributes."""

    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: str = Field(description='Always "1.0"')
    id: str = Field(min_length=1, max_length=200)
    source: str = Field(min_length=1, max_length=500)
    type: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=500)
    time: datetime | None = None
    datacontenttype: str | None = "application/json"
    dataschema: str | None = None
    correlationid: str | None = Field(default=None, max_length=200)
    data: Any = None

    @field_validator("specversion")
    @classmethod
    def _spec(cls, value: str) -> str:
        if value != "1.0":
            raise ValueError(f'specversion must be "1.0", got {value!r}')
        return value

    @field_validator("time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("time must carry a UTC offset (RFC 3339), e.g. 2026-11-26T10:00:00Z")
        return value

    def model_post_init(self, __context: Any) -> None:
        for name in self.model_extra or {}:
            if not _EXTENSION_NAME.match(name):
                raise ValueError(
                    f"extension attribute {name!r} is invalid: CloudEvents attribute names are "
                    "lower-case letters and digits, at most 20 characters"
                )

    @property
    def idempotency_key(self) -> tuple[str, str]:
        return (self.source, self.id)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json", exclude_none=True))


# --- event data ----------------------------------------------------------------------------


class OpportunityClosedWon(CanonicalModel):
    opportunity_id: str = Field(min_length=1)
    account_id: str | None = None
    quote_id: str | None = None
    amount: Money | None = None
    close_date: date | None = None
    proposal_version: int = Field(default=1, ge=1)
    legal_entity: str | None = None
    crm: str = "salesforce"


class PeriodClosed(CanonicalModel):
    legal_entity: str
    period_start: date
    period_end: date

    @model_validator(mode="after")
    def _coherent(self) -> PeriodClosed:
        if self.period_end < self.period_start:
            raise ValueError(
                f"period_end {self.period_end} is before period_start {self.period_start}"
            )
        return self


class BillingRunRequested(CanonicalModel):
    """Bill a contract's approved, not yet billed delivery up to ``period_end``."""

    contract_id: str = Field(min_length=1)
    period_start: date
    period_end: date
    document_date: date

    @model_validator(mode="after")
    def _coherent(self) -> BillingRunRequested:
        if self.period_end < self.period_start:
            raise ValueError(
                f"period_end {self.period_end} is before period_start {self.period_start}"
            )
        return self


class DeliveryBatch(CanonicalModel):
    """Approved delivery in bulk (a PSA poll page, an API batch). Intake checks and records the
    whole batch in one commit; an entry it cannot bill is handed on alone, to be parked by
    name, so nothing else in the batch waits for it."""

    batch_id: str = Field(min_length=1, max_length=200)
    events: list[BillingEvent] = Field(min_length=1, max_length=MAX_DELIVERY_BATCH)


class ReferenceSyncRequested(CanonicalModel):
    """Copy the ERP's exchange rates (effective by ``as_of``), tax codes and items into the
    hub; scheduled by ``flows.reference_data_sync.schedule`` or requested by hand."""

    as_of: date


class InvoicePosted(CanonicalModel):
    invoice_id: str
    billing_number: str | None
    erp_id: str
    erp_number: str | None
    legal_entity: str
    customer_id: str
    total: Money
    tax_total: Money


class PaymentApplied(CanonicalModel):
    payment_id: str
    erp_id: str
    legal_entity: str
    customer_id: str
    amount: Money
    applied: Money
    unapplied: Money
    invoice_ids: list[str]


class RevenueRecognized(CanonicalModel):
    legal_entity: str
    period_start: date
    period_end: date
    contract_ids: list[str]
    journal_ids: list[str]
    amounts: list[Money] = Field(description="recognised total per currency")


class ProjectActivated(CanonicalModel):
    opportunity_id: str
    proposal_version: int
    customer_id: str
    project_id: str
    contract_id: str
    legal_entity: str
    xrefs: dict[str, dict[str, str]]


class ContractChanged(CanonicalModel):
    """A change order was applied: the contract's new terms, as the hub now bills them."""

    contract_id: str
    contract_number: str
    contract_version: int
    legal_entity: str
    change_number: int
    effective_date: date
    total_value: Money
    not_to_exceed: Money | None
    previous_total_value: Money
    previous_not_to_exceed: Money | None
    end_date: date
    revenue_schedule_id: str
    released_event_ids: list[str] = Field(
        description="billing events the raised cap had held back; the next billing run bills them"
    )
    resolved_exceptions: list[int] = Field(description="cap exceptions the change resolved")
    approved_by: str
    reason: str


class TransactionFailed(CanonicalModel):
    transaction_id: str
    flow: str
    business_key: str
    step: str
    message: str
    suggested_fix: str


INBOUND_TYPES: dict[str, type[BaseModel]] = {
    "proposal.approved": Proposal,
    "opportunity.closed_won": OpportunityClosedWon,
    "time.approved": BillingEvent,
    "expense.approved": BillingEvent,
    "milestone.completed": BillingEvent,
    "usage.recorded": BillingEvent,
    "delivery.batch_received": DeliveryBatch,
    "invoice.finalized": Invoice,
    "payment.received": Payment,
    "period.closed": PeriodClosed,
    "billing.run_requested": BillingRunRequested,
    "reference_data.sync_requested": ReferenceSyncRequested,
    "rate_card.published": RateCard,
    "contract.change_order_approved": ChangeOrder,
}

OUTBOUND_TYPES: dict[str, type[BaseModel]] = {
    "project.activated": ProjectActivated,
    "invoice.posted": InvoicePosted,
    "payment.applied": PaymentApplied,
    "revenue.recognized": RevenueRecognized,
    "contract.changed": ContractChanged,
    "transaction.failed": TransactionFailed,
}

_ADAPTERS: dict[str, TypeAdapter[Any]] = {
    name: TypeAdapter(model) for name, model in {**INBOUND_TYPES, **OUTBOUND_TYPES}.items()
}


def validate_data(event: CloudEvent) -> BaseModel:
    """Validate ``event.data`` against the model of its type; raises pydantic.ValidationError."""
    model: BaseModel = _ADAPTERS[event.type].validate_python(event.data)
    return model


def new_event(
    type_: str,
    data: BaseModel | dict[str, Any],
    *,
    source: str = "urn:q2c:hub",
    subject: str | None = None,
    correlation_id: str | None = None,
    event_id: str | None = None,
) -> CloudEvent:
    payload = data.model_dump(mode="json") if isinstance(data, BaseModel) else data
    return CloudEvent(
        specversion="1.0",
        id=event_id or str(uuid.uuid4()),
        source=source,
        type=type_,
        subject=subject,
        time=datetime.now(UTC),
        correlationid=correlation_id,
        data=payload,
    )
