"""Role ports: the narrow surfaces flows need from outside systems.

Flows depend on these protocols only; ``q2c.connectors.<vendor>`` adapters implement them and
translate vendor errors into ``q2c.errors`` at the edge, so no vendor type leaks inward.
Every write takes an ``external_id`` derived from the step's idempotency key: the vendor's
upsert-by-external-id makes a repeated write land on the same record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Literal, Protocol, runtime_checkable

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.models import (
    Contract,
    Customer,
    ExchangeRate,
    Invoice,
    Item,
    Payment,
    Project,
    Proposal,
    TaxCode,
)
from q2c.canonical.money import Money

__all__ = [
    "AccountStatus",
    "AccountStatusPort",
    "ArCustomerStatement",
    "ArInvoiceSummary",
    "ArLedgerPort",
    "ArStatementPort",
    "BilledItem",
    "BillingCustomerRef",
    "BillingLine",
    "BillingPort",
    "ClosedWonPage",
    "CrmPort",
    "DeliveryKind",
    "DeliveryPage",
    "DeliveryRecord",
    "ErpCustomer",
    "ErpInvoice",
    "ErpInvoiceLine",
    "ErpPayment",
    "ErpPort",
    "ErpRecordRef",
    "InvoicePage",
    "InvoicePostingRefs",
    "JournalLine",
    "JournalPort",
    "JournalRequest",
    "PaymentPage",
    "PsaPort",
    "ReferenceDataPort",
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
class AccountStatus:
    """What sales sees of a customer's money on the CRM account, from the ledger."""

    status: Literal["Current", "Open Balance", "Credit"]
    open_balance: Money
    unapplied_credit: Money
    last_payment_on: date | None


@runtime_checkable
class AccountStatusPort(Protocol):
    """A CRM that keeps accounts-receivable status on the account."""

    system: str

    def update_account_status(self, account_id: str, status: AccountStatus) -> None:
        """Write the status; only fields that differ (a replay changes nothing)."""
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


# --- delivery (PSA) ------------------------------------------------------------------------

DeliveryKind = Literal["time", "expense", "milestone"]


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One approved time entry, approved expense or completed milestone, as the PSA holds it.

    Ids are the PSA's own: ``project_ref`` is the PSA project (workspace) id; the hub maps it
    to its canonical project through the cross-reference hub. ``quantity`` is in ``unit``
    (time: hours, exact to 1/1,000,000 of an hour; expense: 1; milestone: 1). ``amount`` is
    set for expenses (what was spent, in the expense's currency) and for milestones with a
    fixed amount; ``percent`` for milestones billed as a share of the contract.
    """

    kind: DeliveryKind
    system_id: str
    project_ref: str
    work_date: date
    quantity: Decimal
    unit: Literal["hour", "day", "unit", "each"]
    updated_at: datetime
    approved_at: datetime | None = None
    role: str | None = None
    service_item: str | None = None
    person: str | None = None
    amount: Money | None = None
    percent: Decimal | None = None
    description: str = ""
    expense_category: str | None = None
    billable: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    records: list[DeliveryRecord]
    watermark: str | None


@runtime_checkable
class PsaPort(Protocol):
    system: str

    def approved_delivery_since(self, watermark: str | None) -> DeliveryPage:
        """Approved time and expenses and completed milestones changed after ``watermark``
        (all pages), oldest first; the watermark to poll from next."""
        ...

    def upsert_project(
        self, project: Project, *, external_id: str, customer_name: str
    ) -> ErpRecordRef:
        """Create (or find, by ``external_id``) the PSA project people log time against."""
        ...


# --- billing platform ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BillingCustomerRef:
    billing_id: str
    external_id: str


@dataclass(frozen=True, slots=True)
class BillingLine:
    """One priced line to put on the customer's next invoice.

    ``external_id`` is the idempotency key: sending the same line twice must leave one item.
    ``amount`` is what is billed (already rated, capped and converted); quantity and unit
    price are shown to the customer and kept in metadata for reconciliation.
    """

    external_id: str
    description: str
    service_item: str
    quantity: Decimal
    unit_price: Money
    amount: Money
    period_start: date
    period_end: date
    tax_code: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class BilledItem:
    billing_id: str
    external_id: str
    invoice_id: str | None = None


@dataclass(frozen=True, slots=True)
class InvoicePage:
    invoices: list[Invoice]
    watermark: str | None


@dataclass(frozen=True, slots=True)
class PaymentPage:
    payments: list[Payment]
    watermark: str | None


@runtime_checkable
class BillingPort(Protocol):
    """The billing platform: it owns invoices; the hub feeds it lines and reads them back.

    Canonical ``Invoice``/``Payment`` objects returned here carry the billing platform's ids in
    ``xrefs[system]`` and the customer's billing id in ``customer_id``.
    """

    system: str

    def upsert_customer(self, customer: Customer, *, external_id: str) -> BillingCustomerRef: ...

    def create_invoice(
        self,
        customer_billing_id: str,
        *,
        external_id: str,
        currency: str,
        due_date: date,
        memo: str,
        metadata: dict[str, str],
    ) -> str:
        """An empty draft invoice (it takes none of the customer's other pending items, so two
        billing runs for one customer never mix); returns its id."""
        ...

    def add_invoice_items(
        self, customer_billing_id: str, lines: Sequence[BillingLine], *, invoice_id: str
    ) -> list[BilledItem]:
        """One item per line on the draft invoice, idempotent per line."""
        ...

    def finalize_invoice(self, invoice_id: str) -> Invoice: ...

    def fetch_invoice(self, invoice_id: str) -> Invoice: ...

    def finalized_invoices_since(self, watermark: str | None) -> InvoicePage: ...

    def payments_since(self, watermark: str | None) -> PaymentPage: ...

    def record_erp_reference(self, invoice_id: str, *, erp_system: str, erp_number: str) -> None:
        """Write the ERP document number back onto the invoice (metadata)."""
        ...


# --- ledger (ERP) --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class InvoicePostingRefs:
    """ERP ids an AR invoice needs, resolved from mappings and the xref hub by the flow."""

    customer_erp_id: str
    subsidiary: str
    currency_erp_id: str
    items: dict[str, str]  # canonical service item -> ERP item id
    tax_codes: dict[str, str]  # canonical tax code -> ERP tax code id
    department: str | None = None
    ar_account: str | None = None
    memo: str = ""


@dataclass(frozen=True, slots=True)
class ErpInvoiceLine:
    item_erp_id: str
    amount: Money
    tax_amount: Money
    tax_code_erp_id: str | None = None
    quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ErpInvoice:
    """An AR invoice as the ERP computed it, read back for the to-the-cent comparison."""

    erp_id: str
    external_id: str
    number: str
    currency: str
    subtotal: Money
    tax_total: Money
    total: Money
    amount_remaining: Money
    lines: list[ErpInvoiceLine]
    status: str


@dataclass(frozen=True, slots=True)
class ErpPayment:
    erp_id: str
    external_id: str
    applied: Money
    unapplied: Money


@runtime_checkable
class ArLedgerPort(Protocol):
    system: str

    def upsert_invoice(
        self, invoice: Invoice, *, external_id: str, refs: InvoicePostingRefs
    ) -> ErpRecordRef: ...

    def read_invoice(self, erp_id: str) -> ErpInvoice: ...

    def apply_payment(
        self,
        payment: Payment,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        currency_erp_id: str,
        applications: Sequence[tuple[str, Money]],  # (ERP invoice id, amount)
    ) -> ErpPayment:
        """Record the payment and apply it; what is not applied stays as unapplied credit."""
        ...


@dataclass(frozen=True, slots=True)
class ArInvoiceSummary:
    """One posted customer invoice as the ERP holds it (drafts and cancelled ones left out)."""

    erp_id: str
    external_id: str  # q2c's idempotency key; empty for an invoice entered in the ERP by hand
    number: str
    total: Money
    amount_remaining: Money


@dataclass(frozen=True, slots=True)
class ArCustomerStatement:
    """A customer's receivables in one ERP, read back from it (never from q2c's own state).

    ``balance`` is what the ERP says the customer owes in the ledger currency: open invoices
    less payments, unapplied credit included.
    """

    customer_erp_id: str
    name: str
    external_id: str | None
    balance: Money
    invoices: list[ArInvoiceSummary] = field(default_factory=list)


@runtime_checkable
class ArStatementPort(Protocol):
    """Read side of the receivables ledger, for reconciliation between two ERPs."""

    system: str

    def ar_statements(self, subsidiary: str) -> list[ArCustomerStatement]:
        """Every customer of ``subsidiary`` (an ERP id) with a posted invoice or an open
        balance, with its posted invoices."""
        ...


@dataclass(frozen=True, slots=True)
class JournalLine:
    account: str  # ERP account id
    debit: Money | None = None
    credit: Money | None = None
    memo: str = ""
    department: str | None = None


@dataclass(frozen=True, slots=True)
class JournalRequest:
    subsidiary: str
    currency_erp_id: str
    posting_date: date
    memo: str
    lines: list[JournalLine]


@runtime_checkable
class JournalPort(Protocol):
    system: str

    def post_journal(self, journal: JournalRequest, *, external_id: str) -> ErpRecordRef:
        """A balanced journal entry, idempotent by ``external_id``."""
        ...


@runtime_checkable
class ReferenceDataPort(Protocol):
    system: str

    def exchange_rates(self, on: date) -> list[ExchangeRate]: ...

    def tax_codes(self) -> list[TaxCode]: ...

    def items(self) -> list[Item]: ...

    def currencies(self) -> dict[str, str]:
        """ISO-4217 code -> ERP currency id."""
        ...
