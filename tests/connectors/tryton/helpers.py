"""Canonical test objects for the Tryton tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from q2c.canonical.models import Address, BillingEventKind, Customer, Invoice, Payment, TaxCode
from q2c.canonical.money import Money
from q2c.connectors.tryton.adapter import TrytonErp
from q2c.flows.ports import ErpCustomer, InvoicePostingRefs
from q2c.pricing.rating import RatedLine, line_amount
from q2c.pricing.tax import TaxTable, apply_tax, invoice_from_lines

TODAY = dt.date.today()


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def make_customer(uid: str, **changes: object) -> Customer:
    values: dict[str, object] = {
        "id": f"cust-{uid}",
        "legal_name": f"Northwind {uid} LLC",
        "country": "US",
        "currency": "USD",
        "legal_entity": "US01",
        "tax_id": None,
        "email": f"ap-{uid}@northwind.example",
        "billing_address": Address(
            line1="500 Main Street", city="Springfield", postal_code="62701", country="US"
        ),
    }
    values.update(changes)
    return Customer.model_validate(values)


def new_customer(erp: TrytonErp, uid: str) -> ErpCustomer:
    return erp.upsert_customer(make_customer(uid), external_id=f"q2c-crm-{uid}", subsidiary="")


def priced(item: str, quantity: str, price: str, tax_code: str) -> RatedLine:
    unit_price = usd(price)
    return RatedLine(
        billing_event_ids=(f"ev-{item}-{quantity}",),
        contract_id=None,
        kind=BillingEventKind.TIME,
        description=f"{item} x {quantity}",
        service_item=item,
        quantity=Decimal(quantity),
        unit_price=unit_price,
        amount=line_amount(Decimal(quantity), unit_price),
        work_date=TODAY,
        tax_code=tax_code,
    )


def canonical_invoice(
    erp: TrytonErp, uid: str, lines: list[RatedLine], codes: list[TaxCode] | None = None
) -> Invoice:
    """An invoice as q2c's own tax engine computes it, with the tax codes read from Tryton."""
    table = TaxTable(codes if codes is not None else erp.tax_codes())
    result = apply_tax(lines, table=table, legal_entity="US01", nexus="US", rounding="line")
    return invoice_from_lines(
        result,
        invoice_id=f"inv-{uid}",
        customer_id=f"cust-{uid}",
        legal_entity="US01",
        issue_date=TODAY,
        due_date=TODAY + dt.timedelta(days=30),
        number=f"BILL-{uid}",
    )


def posting_refs(erp: TrytonErp, customer: ErpCustomer) -> InvoicePostingRefs:
    taxes = {code: str(i) for code, i in _tax_ids(erp).items()}
    items = {
        row["code"]: str(row["id"])
        for row in erp.rpc.search_read("product.product", [["code", "!=", None]], ["code"])
    }
    return InvoicePostingRefs(
        customer_erp_id=customer.erp_id,
        subsidiary="",
        currency_erp_id=erp.currencies()["USD"],
        items=items,
        tax_codes=taxes,
        memo="Services rendered",
    )


def _tax_ids(erp: TrytonErp) -> dict[str, int]:
    rows = erp.rpc.search_read("account.tax", [], ["name"])
    return {row["name"]: row["id"] for row in rows}


def payment(uid: str, amount: str, *, reference: str | None = None) -> Payment:
    return Payment(
        id=f"pay-{uid}",
        customer_id=f"cust-{uid}",
        amount=usd(amount),
        received_on=TODAY,
        method="wire",
        reference=reference or f"WIRE-{uid}",
    )
