"""Posting rules of the emulated account: what NetSuite computes and refuses on invoices,
customer payments and journal entries.

``NetSuiteState`` calls ``Ledger.check`` on every write of these record types, after the body
checks and before the record is stored, so a refused write changes nothing; it then books a
payment's applications (``book``) and re-settles the invoices they touch.

Invoices
    The customer (or the project's customer) sources ``subsidiary`` and ``currency``; a
    subsidiary other than the customer's is ``INVALID_KEY_OR_REF`` "Invalid entity reference
    key ... for subsidiary ...", a currency that is neither the customer's primary currency
    nor in its ``currencyList`` is "Invalid currency reference key ... for entity ...".
    Line amounts are currency fields: kept at the currency's precision (half-up), defaulting
    to quantity x rate. Tax per line, as NetSuite does with its default nexus preferences
    (Tax Rounding Method "Round off", Tax Rounding Precision ".01 and below", Tax Rounding
    Level "Item Line Level", the only level U.S. nexuses offer): ``tax1Amt`` = amount x the
    tax code's percent rate, rounded half-up to the currency's minor unit (JPY 0, KWD 3);
    ``taxTotal`` is the sum of the rounded line taxes, so it can differ by a cent from
    rounding the document once. Transaction-level rounding (a VAT-nexus option) is not
    emulated. A tax code of another nexus country than the subsidiary's is an invalid line
    value; outside the U.S. and Canada (VAT nexuses) every line needs a tax code.
    ``amountRemaining`` = total - payments applied; ``status`` is A "Open" until nothing
    remains, then B "Paid In Full".

Customer payments
    ``payment`` must be positive; each ``apply`` line marked ``apply: true`` takes ``amount``
    (default: what is due, capped by what is left of the payment) from an open invoice of the
    same customer and currency. More than the invoice's amount due is refused with the field
    range error NetSuite gives (``INVALID_FLD_VALUE`` "Value ... outside of valid min/max
    range for field amount"); so is applying more than the payment. What is not applied stays
    ``unapplied`` on the payment. Apply lines are keyed by ``doc``: a second line for the same
    invoice replaces the first. Re-writing a payment first releases what it applied before.

Journal entries
    Each line has a debit or a credit (not both, not negative); the debits must equal the
    credits at the currency's precision, or NetSuite's ``TRANS_UNBALNCD`` "The transaction is
    not in balance" is returned. ``currency`` defaults to the subsidiary's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from q2c.canonical.money import minor_units
from q2c.connectors.netsuite.wire import NetSuiteApiError, plain_decimal

__all__ = ["Ledger", "Lookup", "Posting"]

Record = dict[str, Any]
# The stored record of a type by internal id (not a copy: read it, never change it).
Lookup = Callable[[str, str], Mapping[str, Any] | None]

OPEN, PAID_IN_FULL = "A", "B"
# Nexuses with sales tax rather than VAT: a line may go without a tax code (not taxable).
_SALES_TAX_COUNTRIES = frozenset({"US", "CA"})
_ZERO = Decimal(0)


@dataclass(frozen=True)
class Posting:
    """A customer payment's applications, checked and ready to book."""

    applications: dict[str, Decimal] = field(default_factory=dict)  # invoice id -> amount


class Ledger:
    """The account's receivables book: which payment applied what to which invoice."""

    def __init__(self, lookup: Lookup, today: Callable[[], date]) -> None:
        self._lookup = lookup
        self._today = today
        self._applied: dict[str, dict[str, Decimal]] = {}  # invoice id -> payment id -> amount
        self._by_payment: dict[str, dict[str, Decimal]] = {}  # payment id -> invoice -> amount

    def clear(self) -> None:
        self._applied.clear()
        self._by_payment.clear()

    # --- the rules -------------------------------------------------------------------------

    def check(self, type_name: str, record: Record, record_id: str | None) -> Posting | None:
        """Validate ``record`` and fill what NetSuite computes; raises ``NetSuiteApiError``."""
        if type_name == "invoice":
            self._invoice(record, record_id)
        elif type_name == "customerPayment":
            return self._payment(record, record_id)
        elif type_name == "journalEntry":
            self._journal(record)
        return None

    def book(self, payment_id: str, posting: Posting) -> set[str]:
        """Record a payment's applications (replacing its earlier ones); invoices touched."""
        touched = set(self._by_payment.pop(payment_id, {}))
        for invoice_id in touched:
            by_payment = self._applied.get(invoice_id, {})
            by_payment.pop(payment_id, None)
            if not by_payment:
                self._applied.pop(invoice_id, None)
        if posting.applications:
            self._by_payment[payment_id] = dict(posting.applications)
            for invoice_id, amount in posting.applications.items():
                self._applied.setdefault(invoice_id, {})[payment_id] = amount
        return touched | set(posting.applications)

    def release(self, payment_id: str) -> set[str]:
        """A deleted payment gives back what it applied; invoices touched."""
        return self.book(payment_id, Posting())

    def settle(self, invoice: Record, invoice_id: str | None) -> None:
        """Amount paid, amount remaining and status of an invoice from the payments booked."""
        total = invoice.get("total", _ZERO)
        paid = self.paid(invoice_id)
        invoice["amountPaid"] = paid
        invoice["amountRemaining"] = total - paid
        invoice["status"] = OPEN if total - paid > 0 else PAID_IN_FULL

    def paid(self, invoice_id: str | None, *, except_payment: str | None = None) -> Decimal:
        applied = self._applied.get(invoice_id or "", {})
        return sum((a for p, a in applied.items() if p != except_payment), _ZERO)

    # --- invoices ---------------------------------------------------------------------------

    def _invoice(self, record: Record, record_id: str | None) -> None:
        entity_id = _ref_id(record.get("entity"))
        customer = self._customer_of(entity_id)
        subsidiary = self._subsidiary(record, customer, entity_id, "entity")
        currency_id = self._currency(record, customer, subsidiary, entity_id)
        exponent = _exponent(self._currency_symbol(currency_id))
        record.setdefault("tranDate", self._today().isoformat())
        record.setdefault("dueDate", record["tranDate"])
        nexus = str((subsidiary or {}).get("country") or "").upper()
        subtotal = tax_total = _ZERO
        for index, line in enumerate(record.get("item") or []):
            amount = _line_amount(line, index).quantize(exponent, ROUND_HALF_UP)
            line["amount"] = amount
            rate = self._tax_rate(line, index, nexus)
            tax = (amount * rate / 100).quantize(exponent, ROUND_HALF_UP)
            line["taxRate1"], line["tax1Amt"] = rate, tax
            subtotal += amount
            tax_total += tax
        total = subtotal + tax_total
        record["subtotal"], record["taxTotal"], record["total"] = subtotal, tax_total, total
        paid = self.paid(record_id)
        if total < paid:
            raise NetSuiteApiError(
                400,
                "USER_ERROR",
                "Error while accessing a resource. The invoice total "
                f"{plain_decimal(total)} is less than the {plain_decimal(paid)} already "
                "applied to it by customer payments.",
                path="item",
            )
        self.settle(record, record_id)

    def _tax_rate(self, line: Record, index: int, nexus: str) -> Decimal:
        path = f"item.items[{index}].taxCode"
        code_id = _ref_id(line.get("taxCode"))
        if not code_id:
            if nexus and nexus not in _SALES_TAX_COUNTRIES:
                raise _missing("Tax Code", path)
            return _ZERO
        code = self._lookup("salesTaxItem", code_id) or {}
        country = str(code.get("country") or "").upper()
        if code.get("isInactive") or (country and nexus and country != nexus):
            raise _invalid_line_value(code_id, "taxCode", path)
        rate = code.get("rate", _ZERO)
        return rate if isinstance(rate, Decimal) else Decimal(rate)

    # --- customer payments ------------------------------------------------------------------

    def _payment(self, record: Record, record_id: str | None) -> Posting:
        customer_id = _ref_id(record.get("customer"))
        customer = self._lookup("customer", customer_id) or {}
        subsidiary = self._subsidiary(record, customer, customer_id, "customer")
        currency_id = self._currency(record, customer, subsidiary, customer_id)
        exponent = _exponent(self._currency_symbol(currency_id))
        record.setdefault("tranDate", self._today().isoformat())
        payment = Decimal(record["payment"]).quantize(exponent, ROUND_HALF_UP)
        if payment <= 0:
            raise _out_of_range(record["payment"], "payment", "payment")
        record["payment"] = payment
        record["apply"] = lines = _last_line_per_doc(record.get("apply") or [])
        applications: dict[str, Decimal] = {}
        applied = _ZERO
        for index, line in enumerate(lines):
            doc_id = _ref_id(line.get("doc"))
            invoice = self._lookup("invoice", doc_id) or {}
            path = f"apply.items[{index}]"
            billed_to = self._customer_of(_ref_id(invoice.get("entity")))
            if (
                str(billed_to.get("id", "")) != customer_id
                or _ref_id(invoice.get("currency")) != currency_id
            ):
                raise _invalid_line_value(doc_id, "doc", f"{path}.doc")
            due = invoice.get("total", _ZERO) - self.paid(doc_id, except_payment=record_id)
            line.update(
                type="Invoice", refNum=invoice.get("tranId"), total=invoice.get("total"), due=due
            )
            if not line.get("apply"):
                continue
            amount = line.get("amount")
            if amount is None:
                amount = min(due, payment - applied)
            amount = Decimal(amount).quantize(exponent, ROUND_HALF_UP)
            if amount <= 0 or amount > due:
                raise _out_of_range(line.get("amount", amount), "amount", f"{path}.amount")
            line["amount"] = amount
            applications[doc_id] = amount
            applied += amount
        if applied > payment:
            raise _out_of_range(payment, "payment", "payment")
        record["applied"], record["unapplied"], record["total"] = (
            applied,
            payment - applied,
            payment,
        )
        return Posting(applications)

    # --- journal entries --------------------------------------------------------------------

    def _journal(self, record: Record) -> None:
        subsidiary = self._lookup("subsidiary", _ref_id(record.get("subsidiary"))) or {}
        if not record.get("currency"):
            if not subsidiary.get("currency"):
                raise _missing("Currency", "currency")
            record["currency"] = {"id": _ref_id(subsidiary.get("currency"))}
        exponent = _exponent(self._currency_symbol(_ref_id(record.get("currency"))))
        record.setdefault("tranDate", self._today().isoformat())
        debits = credits = _ZERO
        for index, line in enumerate(record.get("line") or []):
            path = f"line.items[{index}]"
            debit, credit = line.get("debit"), line.get("credit")
            if not debit and not credit:
                raise _missing("Debit or Credit", path)
            if debit and credit:
                raise NetSuiteApiError(
                    400,
                    "USER_ERROR",
                    "Error while accessing a resource. A journal line takes either a debit "
                    "or a credit amount, not both.",
                    path=path,
                )
            for name, value in (("debit", debit), ("credit", credit)):
                if value is None:
                    continue
                if value < 0:
                    raise _out_of_range(value, name, f"{path}.{name}")
                line[name] = Decimal(value).quantize(exponent, ROUND_HALF_UP)
            debits += line.get("debit") or _ZERO
            credits += line.get("credit") or _ZERO
        if debits != credits:
            raise NetSuiteApiError(
                400,
                "TRANS_UNBALNCD",
                "The transaction is not in balance. Please make sure the total amount in the "
                "debit column equals the total amount in the credit column "
                f"(debits {plain_decimal(debits)}, credits {plain_decimal(credits)}).",
                path="line",
            )
        record["total"], record["approved"] = debits, True

    # --- sourcing ---------------------------------------------------------------------------

    def _customer_of(self, entity_id: str) -> Mapping[str, Any]:
        customer = self._lookup("customer", entity_id)
        if customer is not None:
            return customer
        job = self._lookup("job", entity_id) or {}
        return self._lookup("customer", _ref_id(job.get("parent"))) or {}

    def _subsidiary(
        self, record: Record, customer: Mapping[str, Any], entity_id: str, entity_field: str
    ) -> Mapping[str, Any] | None:
        own = _ref_id(customer.get("subsidiary"))
        given = _ref_id(record.get("subsidiary"))
        if given and own and given != own:
            raise NetSuiteApiError(
                400,
                "INVALID_KEY_OR_REF",
                f"Invalid {entity_field} reference key {entity_id} for subsidiary {given}.",
                path=entity_field,
            )
        chosen = given or own
        if not chosen:
            return None
        record["subsidiary"] = {"id": chosen}
        return self._lookup("subsidiary", chosen)

    def _currency(
        self,
        record: Record,
        customer: Mapping[str, Any],
        subsidiary: Mapping[str, Any] | None,
        entity_id: str,
    ) -> str:
        """The transaction's currency id, defaulted from the customer, checked against it."""
        primary = _ref_id(customer.get("currency"))
        allowed = {primary} | {_ref_id(c.get("currency")) for c in customer.get("currencyList", ())}
        allowed.discard("")
        given = _ref_id(record.get("currency"))
        if given and allowed and given not in allowed:
            raise NetSuiteApiError(
                400,
                "INVALID_KEY_OR_REF",
                f"Invalid currency reference key {given} for entity {entity_id}.",
                path="currency",
            )
        chosen = given or primary or _ref_id((subsidiary or {}).get("currency"))
        if not chosen:
            raise _missing("Currency", "currency")
        record["currency"] = {"id": chosen}
        return chosen

    def _currency_symbol(self, currency_id: str) -> str:
        return str((self._lookup("currency", currency_id) or {}).get("symbol") or "")


def _ref_id(value: Any) -> str:
    return str(value.get("id") or "") if isinstance(value, Mapping) else ""


def _exponent(currency_symbol: str) -> Decimal:
    """The currency's minor unit (ISO 4217); an unknown code gets NetSuite's default of 2."""
    try:
        places = minor_units(currency_symbol)
    except ValueError:
        places = 2
    return Decimal(1).scaleb(-places)


def _line_amount(line: Record, index: int) -> Decimal:
    amount = line.get("amount")
    if amount is None:
        rate = line.get("rate")
        if rate is None:
            raise _missing("Amount", f"item.items[{index}].amount")
        amount = Decimal(line.get("quantity", 1)) * rate
    return Decimal(amount)


def _last_line_per_doc(lines: list[Record]) -> list[Record]:
    """Apply lines are keyed by the document they apply to: a later line for the same
    document replaces the earlier one, in the earlier one's place."""
    by_doc: dict[str, Record] = {}
    for line in lines:
        by_doc[_ref_id(line.get("doc"))] = line
    for number, line in enumerate(by_doc.values(), start=1):
        line["line"] = number
    return list(by_doc.values())


def _missing(label: str, path: str) -> NetSuiteApiError:
    return NetSuiteApiError(
        400,
        "USER_ERROR",
        f"Error while accessing a resource. Please enter value(s) for: {label}.",
        path=path,
    )


def _invalid_line_value(value: str, field_name: str, path: str) -> NetSuiteApiError:
    return NetSuiteApiError(
        400,
        "INVALID_CONTENT",
        "Error while accessing resource: You have entered an Invalid Field Value "
        f"{value} for the following field: {field_name}",
        path=path,
    )


def _out_of_range(value: Any, field_name: str, path: str) -> NetSuiteApiError:
    shown = format(Decimal(value), "f") if not isinstance(value, str) else value
    return NetSuiteApiError(
        400,
        "INVALID_FLD_VALUE",
        f"Value {shown} outside of valid min/max range for field {field_name}",
        path=path,
    )
