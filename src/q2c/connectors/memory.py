"""In-memory CRM, ERP, billing platform and ledger that implement the role ports: for fast
tests and benchmarks of the runtime and the flows, where the vendor wire format is not what
is being tested (the emulators cover that).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from q2c.canonical.events import OpportunityClosedWon
from q2c.canonical.models import (
    Contract,
    Customer,
    ExchangeRate,
    Invoice,
    InvoiceLine,
    Item,
    Payment,
    Project,
    Proposal,
    TaxCode,
)
from q2c.canonical.money import Money
from q2c.errors import NotFoundError, Q2CError, ValidationError
from q2c.flows.ports import (
    AccountStatus,
    ArCustomerStatement,
    ArInvoiceSummary,
    BilledItem,
    BillingCustomerRef,
    BillingLine,
    ClosedWonPage,
    DeliveryPage,
    DeliveryRecord,
    ErpCustomer,
    ErpInvoice,
    ErpInvoiceLine,
    ErpPayment,
    ErpRecordRef,
    InvoicePage,
    InvoicePostingRefs,
    JournalRequest,
    PaymentPage,
    SalesOrderRefs,
)

__all__ = ["InMemoryBilling", "InMemoryCrm", "InMemoryErp", "InMemoryLedger", "InMemoryPsa"]

FaultHook = Callable[[str], None]


def _no_fault(operation: str) -> None:
    del operation


@dataclass
class InMemoryCrm:
    system: str = "crm"
    proposals: dict[str, Proposal] = field(default_factory=dict)
    write_backs: dict[str, dict[str, str]] = field(default_factory=dict)
    write_back_calls: int = 0
    account_status: dict[str, AccountStatus] = field(default_factory=dict)
    fault: FaultHook = _no_fault

    def update_account_status(self, account_id: str, status: AccountStatus) -> None:
        self.fault("update_account_status")
        self.account_status[account_id] = status

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
            [
                c
                for c in customers
                if legal_name is not None and c.legal_name.lower() == legal_name.lower()
            ],
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


@dataclass
class InMemoryBilling:
    """A billing platform in memory: draft invoices that take the items put on them, tax per
    line at the rate the line carries (``metadata['q2c_tax_rate']``), half-up."""

    system: str = "billing"
    max_invoice_lines: int | None = None
    customers: dict[str, str] = field(default_factory=dict)  # external id -> billing id
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # external id -> item
    invoices: dict[str, Invoice] = field(default_factory=dict)
    invoice_keys: dict[str, str] = field(default_factory=dict)  # external id -> invoice id
    drafts: dict[str, dict[str, Any]] = field(default_factory=dict)
    erp_references: dict[str, str] = field(default_factory=dict)
    payments: list[Payment] = field(default_factory=list)
    item_calls: int = 0
    fault: FaultHook = _no_fault

    def upsert_customer(self, customer: Customer, *, external_id: str) -> BillingCustomerRef:
        self.fault("upsert_customer")
        billing_id = self.customers.setdefault(external_id, f"cus_{len(self.customers) + 1}")
        return BillingCustomerRef(billing_id, external_id)

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
        self.fault("create_invoice")
        if external_id not in self.invoice_keys:
            self.invoice_keys[external_id] = f"in_{len(self.invoice_keys) + 1}"
            self.drafts[self.invoice_keys[external_id]] = {
                "customer": customer_billing_id,
                "currency": currency,
                "due": due_date,
                "metadata": dict(metadata),
            }
        return self.invoice_keys[external_id]

    def add_invoice_items(
        self, customer_billing_id: str, lines: Sequence[BillingLine], *, invoice_id: str
    ) -> list[BilledItem]:
        self.fault("add_invoice_items")
        self.item_calls += 1
        if invoice_id in self.invoices:
            raise ValidationError(f"Invoice {invoice_id} is finalized; items cannot be added")
        on_invoice = sum(1 for item in self.items.values() if item["invoice"] == invoice_id)
        new = sum(1 for line in lines if line.external_id not in self.items)
        if self.max_invoice_lines is not None and on_invoice + new > self.max_invoice_lines:
            raise ValidationError(
                f"Invoice {invoice_id} would have {on_invoice + new} items; at most "
                f"{self.max_invoice_lines} are allowed"
            )
        for line in lines:
            self.items.setdefault(
                line.external_id,
                {
                    "id": f"ii_{len(self.items) + 1}",
                    "customer": customer_billing_id,
                    "line": line,
                    "invoice": invoice_id,
                },
            )
        return [
            BilledItem(self.items[line.external_id]["id"], line.external_id, invoice_id)
            for line in lines
        ]

    def finalize_invoice(self, invoice_id: str) -> Invoice:
        """Tax per line at the rate the line carries, half-up; numbered on finalization."""
        self.fault("finalize_invoice")
        if invoice_id in self.invoices:
            return self.invoices[invoice_id]
        draft = self.drafts[invoice_id]
        currency = draft["currency"]
        items = [i for i in self.items.values() if i["invoice"] == invoice_id]
        if not items:
            raise ValidationError(f"Invoice {invoice_id} has no items to finalize")
        lines = []
        for number, item in enumerate(items, start=1):
            line: BillingLine = item["line"]
            rate = Decimal(line.metadata.get("q2c_tax_rate", "0"))
            lines.append(
                InvoiceLine(
                    line_no=number,
                    description=line.description,
                    service_item=line.service_item,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    amount=line.amount,
                    tax_code=line.tax_code,
                    tax_amount=Money(line.amount.amount * rate, currency).rounded(),
                )
            )
        subtotal = Money.total((x.amount for x in lines), currency)
        tax = Money.total((x.tax_amount for x in lines if x.tax_amount), currency)
        invoice = Invoice(
            id=invoice_id,
            xrefs={self.system: invoice_id},
            number=f"INV-{len(self.invoices) + 1:04d}",
            customer_id=draft["customer"],
            contract_id=draft["metadata"].get("q2c_contract_id"),
            legal_entity=draft["metadata"].get("q2c_legal_entity", ""),
            currency=currency,
            issue_date=draft["due"],
            due_date=draft["due"],
            lines=lines,
            subtotal=subtotal,
            tax_total=tax,
            total=subtotal + tax,
            status="finalized",
        )
        self.invoices[invoice_id] = invoice
        return invoice

    def fetch_invoice(self, invoice_id: str) -> Invoice:
        try:
            return self.invoices[invoice_id]
        except KeyError:
            raise NotFoundError(f"Invoice {invoice_id} does not exist") from None

    def finalized_invoices_since(self, watermark: str | None) -> InvoicePage:
        done = [i for i in self.invoices.values() if i.status != "draft"]
        return InvoicePage(done, watermark)

    def payments_since(self, watermark: str | None) -> PaymentPage:
        return PaymentPage(list(self.payments), watermark)

    def record_erp_reference(self, invoice_id: str, *, erp_system: str, erp_number: str) -> None:
        self.fault("record_erp_reference")
        self.erp_references[invoice_id] = erp_number


@dataclass
class InMemoryLedger:
    """AR, journals and reference data in memory; tax per line at the ERP's own rates."""

    system: str = "erp"
    tax_rates: dict[str, Decimal] = field(default_factory=dict)  # ERP tax code id -> rate
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)  # external id -> record
    payments: dict[str, ErpPayment] = field(default_factory=dict)
    journals: dict[str, dict[str, Any]] = field(default_factory=dict)
    rates: list[ExchangeRate] = field(default_factory=list)
    codes: list[TaxCode] = field(default_factory=list)
    catalogue: list[Item] = field(default_factory=list)
    currency_ids: dict[str, str] = field(
        default_factory=lambda: {"USD": "1", "EUR": "4", "GBP": "2"}
    )
    customer_names: dict[str, str] = field(default_factory=dict)  # ERP customer id -> name
    payers: dict[str, tuple[str, str]] = field(default_factory=dict)  # payment -> (cust, sub)
    fault: FaultHook = _no_fault

    def upsert_invoice(
        self, invoice: Invoice, *, external_id: str, refs: InvoicePostingRefs
    ) -> ErpRecordRef:
        self.fault("upsert_invoice")
        existing = self.invoices.get(external_id)
        erp_id = existing["id"] if existing else str(7000 + len(self.invoices))
        lines = []
        for line in invoice.lines:
            code = refs.tax_codes.get(line.tax_code or "", "")
            rate = self.tax_rates.get(code, Decimal(0))
            lines.append(
                ErpInvoiceLine(
                    item_erp_id=refs.items[line.service_item],
                    amount=line.amount,
                    tax_amount=Money(line.amount.amount * rate, invoice.currency).rounded(),
                    tax_code_erp_id=code or None,
                    quantity=line.quantity,
                )
            )
        self.invoices[external_id] = {
            "id": erp_id,
            "lines": lines,
            "currency": invoice.currency,
            "paid": existing["paid"] if existing else Money.zero(invoice.currency),
            "refs": refs,
        }
        return ErpRecordRef(erp_id, external_id, f"INV-{erp_id}")

    def read_invoice(self, erp_id: str) -> ErpInvoice:
        self.fault("read_invoice")
        for external_id, record in self.invoices.items():
            if record["id"] == erp_id:
                currency = record["currency"]
                subtotal = Money.total((x.amount for x in record["lines"]), currency)
                tax = Money.total((x.tax_amount for x in record["lines"]), currency)
                total = subtotal + tax
                return ErpInvoice(
                    erp_id,
                    external_id,
                    f"INV-{erp_id}",
                    currency,
                    subtotal,
                    tax,
                    total,
                    total - record["paid"],
                    list(record["lines"]),
                    "paidInFull" if record["paid"] == total else "open",
                )
        raise NotFoundError(f"Invoice {erp_id} does not exist")

    def apply_payment(
        self,
        payment: Payment,
        *,
        external_id: str,
        customer_erp_id: str,
        subsidiary: str,
        currency_erp_id: str,
        applications: Sequence[tuple[str, Money]],
    ) -> ErpPayment:
        self.fault("apply_payment")
        if external_id in self.payments:
            return self.payments[external_id]
        applied = Money.zero(payment.amount.currency)
        for erp_id, amount in applications:
            record = next(r for r in self.invoices.values() if r["id"] == erp_id)
            remaining = self.read_invoice(erp_id).amount_remaining
            if amount > remaining:
                raise ValidationError(
                    f"Payment of {amount} exceeds invoice {erp_id}'s amount due {remaining}"
                )
            record["paid"] = record["paid"] + amount
            applied = applied + amount
        result = ErpPayment(
            str(9000 + len(self.payments)), external_id, applied, payment.amount - applied
        )
        self.payments[external_id] = result
        self.payers[external_id] = (customer_erp_id, subsidiary)
        return result

    def ar_statements(self, subsidiary: str) -> list[ArCustomerStatement]:
        """Per customer: posted invoices, and open invoices less unapplied payments."""
        invoices: dict[str, list[ArInvoiceSummary]] = {}
        balances: dict[str, Money] = {}
        for external_id, record in self.invoices.items():
            refs: InvoicePostingRefs = record["refs"]
            if refs.subsidiary != subsidiary:
                continue
            read = self.read_invoice(record["id"])
            customer = refs.customer_erp_id
            invoices.setdefault(customer, []).append(
                ArInvoiceSummary(
                    read.erp_id, external_id, read.number, read.total, read.amount_remaining
                )
            )
            balances[customer] = balances.get(customer, Money.zero(read.currency)) + (
                read.amount_remaining
            )
        for external_id, (customer, paid_for) in self.payers.items():
            credit = self.payments[external_id].unapplied
            if paid_for == subsidiary and credit.amount:
                balances[customer] = balances.get(customer, Money.zero(credit.currency)) - credit
        return [
            ArCustomerStatement(
                customer_erp_id=customer,
                name=self.customer_names.get(customer, customer),
                external_id=None,
                balance=balance,
                invoices=invoices.get(customer, []),
            )
            for customer, balance in sorted(balances.items())
        ]

    def post_journal(self, journal: JournalRequest, *, external_id: str) -> ErpRecordRef:
        self.fault("post_journal")
        debits = sum((x.debit.amount for x in journal.lines if x.debit), Decimal(0))
        credits = sum((x.credit.amount for x in journal.lines if x.credit), Decimal(0))
        if debits != credits:
            raise ValidationError(f"Journal is out of balance: {debits} debit, {credits} credit")
        existing = self.journals.get(external_id)
        erp_id = existing["id"] if existing else str(5000 + len(self.journals))
        self.journals[external_id] = {"id": erp_id, "journal": journal}
        return ErpRecordRef(erp_id, external_id, f"JE-{erp_id}")

    def exchange_rates(self, on: date) -> list[ExchangeRate]:
        return [r for r in self.rates if r.effective_date <= on]

    def tax_codes(self) -> list[TaxCode]:
        return list(self.codes)

    def items(self) -> list[Item]:
        return list(self.catalogue)

    def currencies(self) -> dict[str, str]:
        return dict(self.currency_ids)


@dataclass
class InMemoryPsa:
    """A PSA in memory: approved delivery listed after an ``updated_at`` watermark."""

    system: str = "psa"
    records: list[DeliveryRecord] = field(default_factory=list)
    projects: dict[str, str] = field(default_factory=dict)  # external id -> PSA project id
    fault: FaultHook = _no_fault

    def approved_delivery_since(self, watermark: str | None) -> DeliveryPage:
        self.fault("approved_delivery_since")
        after = datetime.fromisoformat(watermark) if watermark else None
        fresh = sorted(
            (r for r in self.records if after is None or r.updated_at > after),
            key=lambda r: (r.updated_at, r.system_id),
        )
        mark = fresh[-1].updated_at.isoformat() if fresh else watermark
        return DeliveryPage(fresh, mark)

    def upsert_project(
        self, project: Project, *, external_id: str, customer_name: str
    ) -> ErpRecordRef:
        self.fault("upsert_project")
        psa_id = self.projects.setdefault(external_id, f"ws-{len(self.projects) + 1}")
        return ErpRecordRef(psa_id, external_id)
