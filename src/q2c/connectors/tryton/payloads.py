"""Message translator between q2c's canonical objects and Tryton record values.

Pure functions, no I/O: the adapter resolves ids (party, currency, product, account) and hands
them in. Where q2c's external id lives in Tryton, so that a repeated write finds its record:

    customer       party.identifier, type empty ("Other"), code = external id
    project        project.work comment, last line "[<external id>]"
    sales order    sale.sale reference = external id
    AR invoice     account.invoice reference = external id
    journal entry  account.move description "<memo> [<external id>]"
    payment        account.move description "... [<external id>:inv<invoice id>]" for each
                   application (the pay wizard's move) and "[<external id>:unapplied]"

Markers in free text are searched with LIKE and then checked exactly here (``has_marker``), so
LIKE's wildcards in an id cannot produce a false match.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Any

from q2c.canonical.models import Address, Customer
from q2c.canonical.money import Money
from q2c.errors import MappingMissingError, ValidationError

__all__ = [
    "EU_MEMBER_STATES",
    "address_values",
    "amount_in",
    "check_external_id",
    "customer_contacts",
    "duration_from",
    "has_marker",
    "hours_from",
    "invoice_line_figures",
    "like_marker",
    "line_tax_amounts",
    "mapped",
    "normalize_tax_id",
    "tax_identifier",
    "with_marker",
]

SYSTEM = "tryton"
EU_MEMBER_STATES = frozenset(
    "AT BE BG CY CZ DE DK EE ES FI FR GR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK".split()  # noqa: SIM905
)
# Tryton's tax identifier type per country (party.party TAX_IDENTIFIER_TYPES); Tryton checks
# the number with python-stdnum. EU members use the generic "eu_vat" (country prefix included).
TAX_ID_TYPES = {
    "GB": "gb_vat",
    "US": "us_tin",
    "CA": "ca_bn",
    "CH": "ch_vat",
    "AU": "au_abn",
    "NO": "no_mva",
    "IN": "in_gstin",
    "MX": "mx_rfc",
    "JP": "jp_cn",
    "NZ": "nz_ird",
    "SG": "sg_uen",
}
HOUR = Decimal("0.000001")  # delivery quantities are exact to 1/1,000,000 of an hour
PRICE_DIGITS = 4  # account.invoice.line.unit_price: Tryton's [product] price_decimal default


def check_external_id(external_id: str) -> str:
    """External ids end up in codes and markers: refuse the characters that would break them."""
    if not external_id or any(ch in external_id for ch in "[]\\") or not external_id.isprintable():
        raise ValidationError(
            f"The external id {external_id!r} cannot be stored in Tryton",
            detail="external ids must be printable and free of '[', ']' and '\\'",
            system=SYSTEM,
        )
    return external_id


def with_marker(text: str, external_id: str) -> str:
    return f"{text} [{check_external_id(external_id)}]".strip()


def has_marker(text: str | None, external_id: str) -> bool:
    return bool(text) and str(text).rstrip().endswith(f"[{external_id}]")


def like_marker(external_id: str) -> str:
    return f"%[{check_external_id(external_id)}]%"


def normalize_tax_id(tax_id: str) -> str:
    """Compact form: letters and digits only, upper case ("de 123-456" -> "DE123456")."""
    return "".join(ch for ch in tax_id if ch.isalnum()).upper()


def tax_identifier(country: str, tax_id: str) -> dict[str, Any]:
    """The ``party.identifier`` values for a customer's tax id, typed by country."""
    code = tax_id.strip()
    if country in EU_MEMBER_STATES:
        prefix = "EL" if country == "GR" else country
        compact = normalize_tax_id(code)
        if not compact[:2].isalpha():
            code = prefix + compact
        return {"type": "eu_vat", "code": code}
    kind = TAX_ID_TYPES.get(country)
    return {"type": kind, "code": code} if kind else {"type": None, "code": code}


def address_values(address: Address, country_id: int | None) -> dict[str, Any]:
    street = "\n".join(part for part in (address.line1, address.line2) if part)
    values: dict[str, Any] = {
        "street": street,
        "city": address.city,
        "postal_code": address.postal_code or None,
    }
    if country_id is not None:
        values["country"] = country_id
    return values


def customer_contacts(customer: Customer) -> list[dict[str, Any]]:
    contacts = []
    if customer.email:
        contacts.append({"type": "email", "value": customer.email})
    if customer.phone:
        contacts.append({"type": "phone", "value": customer.phone})
    return contacts


def mapped(mapping: Mapping[str, str], key: str, what: str, context: str) -> int:
    """A Tryton id from a q2c mapping (``refs.items``, ``refs.tax_codes``) or MappingMissing."""
    value = mapping.get(key)
    if value is None or not str(value).isdigit():
        raise MappingMissingError(
            f"{what} '{key}' has no Tryton mapping",
            detail=f"{context}: {what} {key!r} not in {sorted(mapping)} (or not a Tryton id)",
            field=what.lower(),
            system=SYSTEM,
            context={"value": key},
        )
    return int(value)


def amount_in(money: Money, currency: str, what: str) -> Decimal:
    if money.currency != currency:
        raise ValidationError(
            f"{what} is in {money.currency} but the document is in {currency}",
            detail=f"{what}={money}",
            system=SYSTEM,
        )
    return money.amount


def hours_from(duration: dt.timedelta) -> Decimal:
    """Hours of a Tryton duration, exact to 1/1,000,000 of an hour (half-even)."""
    micros = (duration.days * 86_400 + duration.seconds) * 1_000_000 + duration.microseconds
    return (Decimal(micros) / Decimal(3_600_000_000)).quantize(HOUR, rounding=ROUND_HALF_EVEN)


def duration_from(hours: Decimal) -> dt.timedelta:
    micros = (hours * Decimal(3_600_000_000)).to_integral_value(rounding=ROUND_HALF_EVEN)
    return dt.timedelta(microseconds=int(micros))


def line_tax_amounts(
    lines: Sequence[tuple[int, Decimal, Sequence[int]]],
    invoice_taxes: Sequence[tuple[int, Decimal, Decimal]],
    rates: Mapping[int, Decimal],
    exponent: Decimal,
) -> dict[int, Decimal]:
    """Tax per invoice line, consistent with the invoice's tax records.

    Tryton keeps tax per invoice (``account.invoice.tax``: tax, base, amount), not per line;
    a tax can have several records (q2c's manual rounding adjustment next to the computed one),
    which are added up. Each line gets round(amount x rate) for each of its taxes: half to even,
    as Tryton rounds, or half up when that is what adds up to the booked amount (a tax set to
    what the billing platform rounded half up). Any remaining difference goes to the tax's
    largest line, so the lines add up to what Tryton booked. ``lines``: (line id, amount, tax
    ids); ``invoice_taxes``: (tax id, base, amount).
    """
    booked: dict[int, Decimal] = {}
    for tax_id, _base, amount in invoice_taxes:
        booked[tax_id] = booked.get(tax_id, Decimal(0)) + amount
    per_line: dict[int, Decimal] = {line_id: Decimal(0) for line_id, _, _ in lines}
    for tax_id, total in booked.items():
        rate = rates.get(tax_id, Decimal(0))
        taxed = [(line_id, amount) for line_id, amount, taxes in lines if tax_id in taxes]
        if not taxed:
            continue
        for rounding in (ROUND_HALF_EVEN, ROUND_HALF_UP):
            shares = {
                line_id: (amount * rate).quantize(exponent, rounding=rounding)
                for line_id, amount in taxed
            }
            if sum(shares.values(), Decimal(0)) == total:
                break
        else:
            shares = {
                line_id: (amount * rate).quantize(exponent, rounding=ROUND_HALF_EVEN)
                for line_id, amount in taxed
            }
            largest = max(taxed, key=lambda item: (abs(item[1]), -item[0]))[0]
            shares[largest] += total - sum(shares.values(), Decimal(0))
        for line_id, share in shares.items():
            per_line[line_id] += share
    return per_line


def invoice_line_figures(
    quantity: Decimal, unit_price: Decimal, amount: Decimal, *, unit_digits: int, exponent: Decimal
) -> tuple[Decimal, Decimal, bool]:
    """(quantity, unit price, as billed?) for a Tryton invoice line whose amount must be
    exactly the billing document's ``amount``.

    Tryton computes a line's amount as round(quantity x unit price) (half-even, currency
    digits) and refuses a quantity with more decimals than its unit has (hour: 2, unit: 0) or
    a price with more than ``PRICE_DIGITS``. Billed lines do not always fit: 0.7161 h left under
    a not-to-exceed cap, graduated usage tiers (amount is not quantity x one price), prorated
    fees. Those go as one unit at the line amount (``as billed`` False: the caller names the
    billed quantity and price in the description), so the ledger still gets the exact amount.
    """
    fits = (
        quantity == quantity.quantize(Decimal(1).scaleb(-unit_digits))
        and unit_price == unit_price.quantize(Decimal(1).scaleb(-PRICE_DIGITS))
        and (quantity * unit_price).quantize(exponent, rounding=ROUND_HALF_EVEN) == amount
    )
    if fits:
        return quantity, unit_price, True
    return Decimal(1), amount, False
