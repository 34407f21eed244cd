"""Message translator for the ledger: canonical invoices, payments and journals <-> NetSuite
transaction bodies (``invoice``, ``customerPayment``, ``journalEntry``).

Pure functions, no I/O: the adapter hands in the ERP ids the flow resolved. Amounts leave as
Decimals in the document's currency (a line in another currency is refused before anything is
sent) and come back as exact ``Money``; NetSuite computes tax, totals and what remains due,
and those numbers, not q2c's, are what ``ErpInvoice`` reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from q2c.canonical.models import Invoice, Payment
from q2c.canonical.money import Money
from q2c.connectors.netsuite.payloads import amount_of, decimal_or_none, require_mapped
from q2c.errors import FatalError, ValidationError
from q2c.flows.ports import (
    ErpInvoice,
    ErpInvoiceLine,
    ErpPayment,
    InvoicePostingRefs,
    JournalRequest,
)

__all__ = [
    "erp_invoice_from_record",
    "erp_payment_from_record",
    "invoice_body",
    "journal_body",
    "payment_body",
    "ref_id",
]

SYSTEM = "netsuite"


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": str(internal_id)}


def ref_id(value: Any) -> str | None:
    """The internal id of a reference as the record service shows it (``{"id": ...}``)."""
    if isinstance(value, Mapping) and value.get("id") is not None:
        return str(value["id"])
    return None


# --- invoices --------------------------------------------------------------------------------


def invoice_body(invoice: Invoice, *, refs: InvoicePostingRefs) -> dict[str, Any]:
    """An AR invoice: one item line per invoice line, tax code per line, the billing
    platform's number as ``otherRefNum``. NetSuite computes tax and totals from it."""
    number = invoice.number or invoice.id
    document = ("invoice", number)
    require_mapped(
        "Item",
        {ln.service_item for ln in invoice.lines},
        refs.items,
        document=document,
        field="item",
        context_key="service_items",
    )
    require_mapped(
        "Tax code",
        {ln.tax_code for ln in invoice.lines if ln.tax_code},
        refs.tax_codes,
        document=document,
        field="taxCode",
        context_key="tax_codes",
    )
    currency = invoice.currency
    lines = []
    for line in invoice.lines:
        item: dict[str, Any] = {
            "item": _ref(refs.items[line.service_item]),
            "quantity": line.quantity,
            "rate": amount_of(line.unit_price, currency, f"Line {line.line_no} unit price"),
            "amount": amount_of(line.amount, currency, f"Line {line.line_no} amount"),
            "description": line.description or line.service_item,
        }
        if line.tax_code:
            item["taxCode"] = _ref(refs.tax_codes[line.tax_code])
        lines.append(item)
    body: dict[str, Any] = {
        "entity": _ref(refs.customer_erp_id),
        "subsidiary": _ref(refs.subsidiary),
        "currency": _ref(refs.currency_erp_id),
        "tranDate": invoice.issue_date.isoformat(),
        "dueDate": invoice.due_date.isoformat(),
        "otherRefNum": number,
        "memo": refs.memo or f"Invoice {number}",
        "item": {"items": lines},
    }
    if refs.department:
        body["department"] = _ref(refs.department)
    if refs.ar_account:
        body["account"] = _ref(refs.ar_account)
    return body


def erp_invoice_from_record(record: Mapping[str, Any], currency: str) -> ErpInvoice:
    """An invoice as ``GET /record/v1/invoice/{id}?expandSubResources=true`` returns it."""

    def money(value: Any) -> Money:
        return Money(decimal_or_none(value) or Decimal(0), currency)

    sublist = record.get("item")
    raw_lines = sublist.get("items") if isinstance(sublist, Mapping) else None
    if not isinstance(raw_lines, list):
        raise FatalError(
            "NetSuite returned the invoice without its lines",
            detail=f"invoice {record.get('id')}: item sublist not expanded: {sublist!r}",
            system=SYSTEM,
        )
    lines = [
        ErpInvoiceLine(
            item_erp_id=ref_id(line.get("item")) or "",
            amount=money(line.get("amount")),
            tax_amount=money(line.get("tax1Amt")),
            tax_code_erp_id=ref_id(line.get("taxCode")),
            quantity=decimal_or_none(line.get("quantity")),
        )
        for line in raw_lines
    ]
    status = record.get("status")
    return ErpInvoice(
        erp_id=str(record["id"]),
        external_id=str(record.get("externalId") or ""),
        number=str(record.get("tranId") or ""),
        currency=currency,
        subtotal=money(record.get("subtotal")),
        tax_total=money(record.get("taxTotal")),
        total=money(record.get("total")),
        amount_remaining=money(record.get("amountRemaining")),
        lines=lines,
        status=str(status.get("refName", "")) if isinstance(status, Mapping) else str(status),
    )


# --- customer payments -----------------------------------------------------------------------


def payment_body(
    payment: Payment,
    *,
    customer_erp_id: str,
    subsidiary: str,
    currency_erp_id: str,
    applications: Sequence[tuple[str, Money]],
) -> dict[str, Any]:
    """A customer payment into Undeposited Funds, applied to the given invoices.

    NetSuite keys apply lines by the invoice, so two applications to one invoice are sent as
    one line for their sum; what is not applied stays as unapplied credit on the payment.
    """
    if payment.amount.amount <= 0:
        raise ValidationError(
            f"Payment {payment.id} has no positive amount ({payment.amount})",
            detail=f"payment {payment.id}: amount {payment.amount}",
            field="amount",
            system=SYSTEM,
        )
    currency = payment.amount.currency
    per_invoice: dict[str, Decimal] = {}
    for invoice_id, amount in applications:
        what = f"The amount applied to NetSuite invoice {invoice_id}"
        per_invoice[invoice_id] = per_invoice.get(invoice_id, Decimal(0)) + amount_of(
            amount, currency, what
        )
    reference = payment.reference or payment.id
    body: dict[str, Any] = {
        "customer": _ref(customer_erp_id),
        "subsidiary": _ref(subsidiary),
        "currency": _ref(currency_erp_id),
        "tranDate": payment.received_on.isoformat(),
        "payment": payment.amount.amount,
        "undepFunds": True,
        "memo": f"Payment {reference} ({payment.method})",
        "apply": {
            "items": [
                {"doc": _ref(invoice_id), "apply": True, "amount": amount}
                for invoice_id, amount in per_invoice.items()
            ]
        },
    }
    if payment.reference:
        body["checkNum"] = payment.reference
    return body


def erp_payment_from_record(record: Mapping[str, Any], currency: str) -> ErpPayment:
    return ErpPayment(
        erp_id=str(record["id"]),
        external_id=str(record.get("externalId") or ""),
        applied=Money(decimal_or_none(record.get("applied")) or Decimal(0), currency),
        unapplied=Money(decimal_or_none(record.get("unapplied")) or Decimal(0), currency),
    )


# --- journal entries -------------------------------------------------------------------------


def journal_body(journal: JournalRequest) -> dict[str, Any]:
    """A journal entry; each line a debit or a credit. Balance is NetSuite's to check."""
    currencies = {
        money.currency for line in journal.lines for money in (line.debit, line.credit) if money
    }
    if len(currencies) > 1:
        raise ValidationError(
            f"Journal '{journal.memo}' mixes currencies {sorted(currencies)}",
            detail=f"journal lines in {sorted(currencies)}",
            field="line",
            system=SYSTEM,
        )
    lines = []
    for number, line in enumerate(journal.lines, start=1):
        if (line.debit is None) == (line.credit is None):
            raise ValidationError(
                f"Journal '{journal.memo}' line {number} needs either a debit or a credit",
                detail=f"line {number}: debit={line.debit} credit={line.credit}",
                field="line",
                system=SYSTEM,
            )
        item: dict[str, Any] = {"account": _ref(line.account)}
        if line.debit is not None:
            item["debit"] = line.debit.amount
        if line.credit is not None:
            item["credit"] = line.credit.amount
        if line.memo:
            item["memo"] = line.memo
        if line.department:
            item["department"] = _ref(line.department)
        lines.append(item)
    return {
        "subsidiary": _ref(journal.subsidiary),
        "currency": _ref(journal.currency_erp_id),
        "tranDate": journal.posting_date.isoformat(),
        "memo": journal.memo,
        "line": {"items": lines},
    }
