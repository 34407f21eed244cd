"""Canonical objects <-> Stripe request parameters and objects (no I/O).

What q2c keeps on Stripe objects, in metadata (Stripe's limits: 50 keys, keys up to 40
characters, values up to 500; checked here before anything is sent):

    customer     q2c_id (the external id), q2c_legal_entity, q2c_tax_id
    invoice item q2c_key (the line's external id), q2c_service_item, q2c_quantity,
                 q2c_unit_price, q2c_tax_code, q2c_event_ids[_2, _3, ...] (comma-separated
                 billing event ids, chunked to fit; dropped with q2c_event_ids_omitted=<n>
                 when they cannot), plus the flow's own q2c_* keys (q2c_rate_card "id@vN")
    invoice      q2c_key, q2c_legal_entity, q2c_contract_id, q2c_erp_<system>
    tax rate     q2c_tax_code

Amounts are integers in Stripe's smallest unit (``wire.to_stripe_amount``); dates travel as
Unix timestamps at 00:00 UTC and come back as UTC dates.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from q2c.canonical.models import (
    Customer,
    Invoice,
    InvoiceLine,
    Payment,
    PaymentApplication,
    TaxLine,
)
from q2c.canonical.money import Money
from q2c.connectors.stripe.wire import (
    UnsupportedAmountError,
    from_stripe_amount,
    stripe_exponent,
    to_stripe_amount,
)
from q2c.errors import ValidationError
from q2c.flows.ports import BillingLine

__all__ = [
    "METADATA_MAX_KEYS",
    "METADATA_MAX_KEY_LENGTH",
    "METADATA_MAX_VALUE_LENGTH",
    "TaxRateInfo",
    "check_metadata",
    "customer_params",
    "day",
    "invoice_from_stripe",
    "item_params",
    "method_of",
    "payment_from_intent",
    "payment_out_of_band",
    "stripe_amount",
    "timestamp",
]

SYSTEM = "stripe"
PaymentMethod = Literal["card", "ach", "wire", "check", "sepa", "other"]
InvoiceStatus = Literal["draft", "finalized", "posted", "paid", "void"]
METADATA_MAX_KEYS = 50
METADATA_MAX_KEY_LENGTH = 40
METADATA_MAX_VALUE_LENGTH = 500
DESCRIPTION_MAX_LENGTH = 500
EVENT_IDS_KEY = "q2c_event_ids"
_METHODS: dict[str, PaymentMethod] = {
    "card": "card",
    "card_present": "card",
    "link": "card",
    "us_bank_account": "ach",
    "ach_debit": "ach",
    "ach_credit_transfer": "ach",
    "sepa_debit": "sepa",
    "sepa_credit_transfer": "sepa",
    "customer_balance": "wire",
    "paper_check": "check",
}
_STATUSES: dict[str, InvoiceStatus] = {
    "draft": "draft",
    "open": "finalized",
    "uncollectible": "finalized",
    "paid": "paid",
    "void": "void",
}


@dataclass(frozen=True, slots=True)
class TaxRateInfo:
    """What the adapter needs of a Stripe tax rate: its canonical code and percentage."""

    rate_id: str
    tax_code: str
    percentage: Decimal
    active: bool = True

    @property
    def fraction(self) -> Decimal:
        return self.percentage / 100


def timestamp(on: date) -> int:
    """A date as the Unix timestamp of its 00:00 UTC."""
    return int(datetime.combine(on, time(0), tzinfo=UTC).timestamp())


def day(unix: int) -> date:
    return datetime.fromtimestamp(unix, UTC).date()


def stripe_amount(money: Money, *, field: str) -> int:
    try:
        return to_stripe_amount(money)
    except UnsupportedAmountError as exc:
        raise ValidationError(
            f"Stripe cannot bill {field} {money}: {exc}",
            detail=str(exc),
            field=field,
            system=SYSTEM,
        ) from exc


def check_metadata(metadata: Mapping[str, str], *, subject: str) -> dict[str, str]:
    """Refuse metadata Stripe would refuse, naming the key (before anything is sent)."""
    if len(metadata) > METADATA_MAX_KEYS:
        raise ValidationError(
            f"The {subject} would carry {len(metadata)} metadata keys; Stripe allows "
            f"{METADATA_MAX_KEYS}",
            field="metadata",
            system=SYSTEM,
            suggested_fix="Send fewer q2c_* metadata keys for this line, then replay.",
        )
    for key, value in metadata.items():
        if not key or len(key) > METADATA_MAX_KEY_LENGTH or "[" in key or "]" in key:
            raise ValidationError(
                f"The {subject} has the metadata key '{key}', which Stripe refuses "
                f"(1 to {METADATA_MAX_KEY_LENGTH} characters, no square brackets)",
                field=f"metadata[{key}]",
                system=SYSTEM,
            )
        if len(value) > METADATA_MAX_VALUE_LENGTH:
            raise ValidationError(
                f"The {subject}'s metadata '{key}' is {len(value)} characters long; Stripe "
                f"allows {METADATA_MAX_VALUE_LENGTH}",
                field=f"metadata[{key}]",
                system=SYSTEM,
            )
    return dict(metadata)


# --- customers -----------------------------------------------------------------------------


def customer_params(customer: Customer, *, external_id: str) -> dict[str, Any]:
    metadata = {
        "q2c_id": external_id,
        "q2c_legal_entity": customer.legal_entity,
    }
    if customer.tax_id:
        metadata["q2c_tax_id"] = customer.tax_id
    params: dict[str, Any] = {
        "name": customer.legal_name,
        "metadata": check_metadata(metadata, subject=f"customer {customer.legal_name}"),
    }
    if customer.email:
        params["email"] = customer.email
    if customer.phone:
        params["phone"] = customer.phone
    if customer.display_name and customer.display_name != customer.legal_name:
        params["description"] = customer.display_name
    address = customer.billing_address
    if address is not None:
        params["address"] = {
            "line1": address.line1,
            "line2": address.line2 or "",
            "city": address.city,
            "state": address.region or "",
            "postal_code": address.postal_code or "",
            "country": address.country,
        }
    return params


# --- invoice items -------------------------------------------------------------------------


def _event_id_metadata(ids: Sequence[str], room: int) -> dict[str, str]:
    """Billing event ids, comma-separated in chunks of up to 500 characters, if they fit."""
    chunks: list[str] = []
    current = ""
    for event_id in ids:
        candidate = f"{current},{event_id}" if current else event_id
        if len(candidate) <= METADATA_MAX_VALUE_LENGTH:
            current = candidate
            continue
        chunks.append(current)
        current = event_id
    if current:
        chunks.append(current)
    if len(chunks) > room or any(len(c) > METADATA_MAX_VALUE_LENGTH for c in chunks):
        return {f"{EVENT_IDS_KEY}_omitted": str(len(ids))}
    keys = [EVENT_IDS_KEY, *(f"{EVENT_IDS_KEY}_{n}" for n in range(2, len(chunks) + 1))]
    return dict(zip(keys, chunks, strict=True))


def item_params(
    line: BillingLine, *, customer_billing_id: str, tax_rate_id: str | None
) -> dict[str, Any]:
    """The ``POST /v1/invoiceitems`` parameters for one line (amount already rated)."""
    currency = line.amount.currency
    if line.unit_price.currency != currency:
        raise ValidationError(
            f"Line {line.external_id}: unit price is in {line.unit_price.currency}, the amount "
            f"in {currency}",
            field="unit_price",
            system=SYSTEM,
        )
    metadata: dict[str, str] = {
        "q2c_key": line.external_id,
        "q2c_service_item": line.service_item,
        "q2c_quantity": format(line.quantity, "f"),
        "q2c_unit_price": format(line.unit_price.amount, "f"),
    }
    if line.tax_code:
        metadata["q2c_tax_code"] = line.tax_code
    extra = dict(line.metadata)
    event_ids = [e for e in extra.pop(EVENT_IDS_KEY, "").split(",") if e]
    metadata.update({k: v for k, v in extra.items() if v != ""})
    if event_ids:
        room = METADATA_MAX_KEYS - len(metadata)
        metadata.update(_event_id_metadata(event_ids, room))
    description = line.description
    if len(description) > DESCRIPTION_MAX_LENGTH:
        description = description[: DESCRIPTION_MAX_LENGTH - 1] + "…"
    params: dict[str, Any] = {
        "customer": customer_billing_id,
        "amount": stripe_amount(line.amount, field=f"line {line.external_id} amount"),
        "currency": currency.lower(),
        "description": description,
        "period": {"start": timestamp(line.period_start), "end": timestamp(line.period_end)},
        "metadata": check_metadata(metadata, subject=f"invoice line {line.external_id}"),
    }
    if tax_rate_id is not None:
        params["tax_rates"] = [tax_rate_id]
    return params


# --- invoices ------------------------------------------------------------------------------


def _decimal(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


def _rate_card(value: str | None) -> tuple[str | None, int | None]:
    if not value:
        return None, None
    card, sep, version = value.rpartition("@v")
    if sep and version.isdigit():
        return card, int(version)
    return value, None


def _event_ids(metadata: Mapping[str, str]) -> list[str]:
    chunks = [metadata.get(EVENT_IDS_KEY, "")]
    n = 2
    while f"{EVENT_IDS_KEY}_{n}" in metadata:
        chunks.append(metadata[f"{EVENT_IDS_KEY}_{n}"])
        n += 1
    return [e for chunk in chunks for e in chunk.split(",") if e]


def _line(
    number: int, line: Mapping[str, Any], currency: str, rates: Mapping[str, TaxRateInfo]
) -> tuple[InvoiceLine, list[tuple[TaxRateInfo, int, int]]]:
    metadata: Mapping[str, str] = line.get("metadata") or {}
    taxes = [
        (rates[t["tax_rate_details"]["tax_rate"]], int(t["amount"]), int(t["taxable_amount"]))
        for t in line.get("taxes") or []
        if t.get("type") == "tax_rate_details"
    ]
    inclusive = sum(
        int(t["amount"]) for t in line.get("taxes") or [] if t.get("tax_behavior") == "inclusive"
    )
    amount = from_stripe_amount(int(line["amount"]) - inclusive, currency)
    quantity = _decimal(metadata.get("q2c_quantity")) or Decimal(line.get("quantity") or 1)
    unit = _decimal(metadata.get("q2c_unit_price"))
    if unit is None:
        raw = _decimal((line.get("pricing") or {}).get("unit_amount_decimal"))
        unit = raw.scaleb(-stripe_exponent(currency)) if raw is not None else amount.amount
    details = ((line.get("pricing") or {}).get("price_details")) or {}
    card_id, card_version = _rate_card(metadata.get("q2c_rate_card"))
    tax_total = sum(tax for _, tax, _ in taxes)
    return (
        InvoiceLine(
            line_no=number,
            description=line.get("description") or "",
            service_item=metadata.get("q2c_service_item") or details.get("product") or "STRIPE",
            quantity=quantity,
            unit_price=Money(unit, currency),
            amount=amount,
            tax_code=taxes[0][0].tax_code if taxes else metadata.get("q2c_tax_code"),
            tax_amount=from_stripe_amount(tax_total, currency) if taxes else None,
            billing_event_ids=_event_ids(metadata),
            rate_card_id=card_id,
            rate_card_version=card_version,
        ),
        taxes,
    )


def invoice_from_stripe(
    invoice: Mapping[str, Any],
    lines: Iterable[Mapping[str, Any]],
    rates: Mapping[str, TaxRateInfo],
    *,
    system: str = SYSTEM,
    default_legal_entity: str = "",
) -> Invoice:
    """A Stripe invoice (with all its line items) as a canonical Invoice."""
    currency = str(invoice["currency"]).upper()
    metadata: Mapping[str, str] = invoice.get("metadata") or {}
    canonical_lines: list[InvoiceLine] = []
    by_code: dict[str, list[tuple[TaxRateInfo, int, int]]] = defaultdict(list)
    for number, line in enumerate(lines, start=1):
        canonical, taxes = _line(number, line, currency, rates)
        canonical_lines.append(canonical)
        for info, tax, base in taxes:
            by_code[info.tax_code].append((info, tax, base))
    if not canonical_lines:
        raise ValidationError(
            f"Stripe invoice {invoice.get('number') or invoice['id']} has no lines",
            detail=f"invoice {invoice['id']} has no line items",
            system=SYSTEM,
            suggested_fix="Void the empty invoice in Stripe; there is nothing to post.",
        )
    tax_lines = [
        TaxLine(
            tax_code=code,
            rate=entries[0][0].fraction,
            base=from_stripe_amount(sum(base for _, _, base in entries), currency),
            amount=from_stripe_amount(sum(tax for _, tax, _ in entries), currency),
        )
        for code, entries in sorted(by_code.items())
    ]
    transitions = invoice.get("status_transitions") or {}
    issued = invoice.get("effective_at") or transitions.get("finalized_at") or invoice["created"]
    issue_date = day(int(issued))
    due = invoice.get("due_date")
    due_date = max(day(int(due)), issue_date) if due else issue_date
    tax_total = sum(int(t["amount"]) for t in invoice.get("total_taxes") or [])
    customer = invoice["customer"]
    return Invoice(
        id=str(invoice["id"]),
        xrefs={system: str(invoice["id"])},
        number=invoice.get("number"),
        customer_id=str(customer["id"] if isinstance(customer, Mapping) else customer),
        contract_id=metadata.get("q2c_contract_id"),
        legal_entity=metadata.get("q2c_legal_entity") or default_legal_entity,
        currency=currency,
        issue_date=issue_date,
        due_date=due_date,
        lines=canonical_lines,
        tax_lines=tax_lines,
        tax_rounding="line",
        subtotal=from_stripe_amount(int(invoice["total_excluding_tax"]), currency),
        tax_total=from_stripe_amount(tax_total, currency),
        total=from_stripe_amount(int(invoice["total"]), currency),
        status=_STATUSES.get(str(invoice["status"]), "finalized"),
    )


# --- payments ------------------------------------------------------------------------------


def method_of(charge: Mapping[str, Any] | None) -> PaymentMethod:
    """The canonical payment method of a charge (``payment_method_details.type``)."""
    details = (charge or {}).get("payment_method_details") or {}
    return _METHODS.get(str(details.get("type")), "other")


def payment_from_intent(
    intent: Mapping[str, Any],
    *,
    amount: int,
    received: int,
    invoice_id: str | None,
    system: str = SYSTEM,
) -> Payment:
    """A succeeded PaymentIntent (``latest_charge`` expanded) as a canonical Payment."""
    currency = str(intent["currency"]).upper()
    money = from_stripe_amount(amount, currency)
    charge = intent.get("latest_charge")
    customer = intent.get("customer")
    return Payment(
        id=str(intent["id"]),
        xrefs={system: str(intent["id"])},
        customer_id=str(customer["id"] if isinstance(customer, Mapping) else customer),
        amount=money,
        received_on=day(received),
        method=method_of(charge if isinstance(charge, Mapping) else None),
        reference=str(charge["id"]) if isinstance(charge, Mapping) else str(intent["id"]),
        applications=[PaymentApplication(invoice_id=invoice_id, amount=money)]
        if invoice_id
        else [],
    )


def payment_out_of_band(invoice: Mapping[str, Any], *, system: str = SYSTEM) -> Payment:
    """An invoice marked paid outside Stripe (a wire, a check) as a canonical Payment."""
    currency = str(invoice["currency"]).upper()
    money = from_stripe_amount(int(invoice["amount_paid"]), currency)
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or invoice["created"]
    customer = invoice["customer"]
    payment_id = f"{invoice['id']}-paid-out-of-band"
    return Payment(
        id=payment_id,
        xrefs={system: str(invoice["id"])},
        customer_id=str(customer["id"] if isinstance(customer, Mapping) else customer),
        amount=money,
        received_on=day(int(paid_at)),
        method="other",
        reference=invoice.get("number"),
        applications=[PaymentApplication(invoice_id=str(invoice["id"]), amount=money)],
    )
