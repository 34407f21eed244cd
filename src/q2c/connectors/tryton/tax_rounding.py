"""Rounding-only tax differences between the billing document and Tryton, and their fix.

The billing document is the legal invoice, so the ledger must carry exactly the tax the customer
was billed. Tryton rounds each line's tax half to even; the billing platform (Stripe, q2c's own
pricing) rounds half up, so 12.25 h x 125.00 at 10 % is 153.12 in Tryton and 153.13 billed. Such
a difference is only rounding when both figures are roundings of the *same* exact tax: the same
rate on the same base, each within half a minor unit per taxed line of sum(line amount x rate).
A wrong rate or tax code lands much further away and is not adjusted here, so the comparison
before posting still refuses the invoice.

The fix is a manual ``account.invoice.tax`` line for the same tax and account with base 0 and the
difference as amount. Tryton keeps manual tax lines through its own recomputation, books them in
the tax report under the same tax without counting the base twice, and copies them into a credit
note, so a credit reverses exactly what was billed. (Turning the computed line manual, or
replacing it by a manual one, does not work: Tryton re-creates the computed line when it posts,
and the invoice then carries the tax twice.)

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from q2c.canonical.models import Invoice

__all__ = [
    "ROUNDING_NOTE",
    "BilledTax",
    "TaxRoundingAdjustment",
    "billed_taxes",
    "is_rounding_line",
    "rounding_adjustments",
]

ROUNDING_NOTE = " (rounding as billed)"  # ends the description of q2c's manual tax lines


@dataclass(frozen=True, slots=True)
class BilledTax:
    """What the billing document says about one Tryton tax (the q2c tax codes mapped to it)."""

    tax_id: int
    line_amounts: tuple[Decimal, ...]  # amounts of the lines carrying the tax
    amount: Decimal  # the tax billed
    rates: frozenset[Decimal]  # the billed rates, when the document states them


@dataclass(frozen=True, slots=True)
class TaxRoundingAdjustment:
    """Tryton's tax ``computed`` for ``tax_id``, set to the ``billed`` amount."""

    tax_id: int
    computed: Decimal
    billed: Decimal

    @property
    def amount(self) -> Decimal:
        return self.billed - self.computed


def billed_taxes(invoice: Invoice, tax_ids: Mapping[str, str]) -> list[BilledTax]:
    """Per Tryton tax, the billed lines and tax. Prefers the document's tax lines (per code,
    whatever its rounding); without them, sums the lines' tax. A tax whose billed amount the
    document does not state is left out (nothing to round to)."""
    lines_by_tax: dict[int, list[tuple[str, Decimal, Decimal | None]]] = {}
    for line in invoice.lines:
        mapped_id = tax_ids.get(line.tax_code or "")
        if mapped_id is None or not str(mapped_id).isdigit():
            continue
        line_tax = line.tax_amount.amount if line.tax_amount is not None else None
        lines_by_tax.setdefault(int(mapped_id), []).append(
            (str(line.tax_code), line.amount.amount, line_tax)
        )
    stated = {tax.tax_code: tax for tax in invoice.tax_lines}
    result = []
    for tax_id, lines in sorted(lines_by_tax.items()):
        codes = {code for code, _, _ in lines}
        if codes <= stated.keys():
            amount = sum((stated[code].amount.amount for code in codes), Decimal(0))
            rates = frozenset(stated[code].rate for code in codes)
        elif all(line_tax is not None for _, _, line_tax in lines):
            amount = sum((line_tax or Decimal(0) for _, _, line_tax in lines), Decimal(0))
            rates = frozenset()
        else:
            continue
        line_amounts = tuple(amount for _, amount, _ in lines)
        result.append(BilledTax(tax_id, line_amounts, amount, rates))
    return result


def rounding_adjustments(
    billed: Sequence[BilledTax],
    booked: Mapping[int, tuple[Decimal, Decimal]],
    rates: Mapping[int, Decimal | None],
    exponent: Decimal,
) -> list[TaxRoundingAdjustment]:
    """The taxes whose Tryton amount differs from the billed one by rounding only.

    ``booked``: Tryton's (base, amount) per tax id; ``rates``: Tryton's rate per tax id (None
    for a tax that is not a percentage); ``exponent``: the currency's minor unit (0.01). Each
    rounded line can be off the exact tax by half a minor unit, so with n taxed lines either
    side may be n/2 minor units away from sum(amount x rate), and the two sides up to n apart.
    """
    adjustments = []
    for tax in billed:
        if tax.tax_id not in booked:
            continue
        base, computed = booked[tax.tax_id]
        rate = rates.get(tax.tax_id)
        if computed == tax.amount or rate is None or any(r != rate for r in tax.rates):
            continue
        if base != sum(tax.line_amounts, Decimal(0)):
            continue
        exact = sum((amount * rate for amount in tax.line_amounts), Decimal(0))
        tolerance = exponent / 2 * len(tax.line_amounts)
        if abs(computed - exact) <= tolerance and abs(tax.amount - exact) <= tolerance:
            adjustments.append(TaxRoundingAdjustment(tax.tax_id, computed, tax.amount))
    return adjustments


def is_rounding_line(manual: bool, base: Decimal, description: str | None) -> bool:
    """Whether an ``account.invoice.tax`` line is one of q2c's rounding adjustments."""
    return manual and base == 0 and str(description or "").endswith(ROUNDING_NOTE)
