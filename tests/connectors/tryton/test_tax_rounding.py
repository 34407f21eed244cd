"""Rounding-only tax differences between the billing document and Tryton (pure parts)."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

import pytest

from q2c.canonical.models import Invoice, TaxCode
from q2c.connectors.tryton.payloads import line_tax_amounts
from q2c.connectors.tryton.tax_rounding import (
    ROUNDING_NOTE,
    BilledTax,
    TaxRoundingAdjustment,
    billed_taxes,
    is_rounding_line,
    rounding_adjustments,
)
from q2c.pricing.tax import TaxTable, apply_tax, invoice_from_lines
from tests.connectors.tryton.helpers import priced

CENT = Decimal("0.01")
TAX_IDS = {"US-SALES-10": "7", "US-EXEMPT": "8"}
CODES = [
    TaxCode(code="US-SALES-10", name="Sales tax", rate=Decimal("0.10"), jurisdiction="US"),
    TaxCode(code="US-EXEMPT", name="Exempt", rate=Decimal(0), jurisdiction="US"),
]


def billed_invoice(*lines: tuple[str, str, str, str]) -> Invoice:
    """An invoice as the billing platform computes it (tax per line, rounded half up)."""
    result = apply_tax(
        [priced(*line) for line in lines], table=TaxTable(CODES), legal_entity="US01",
        nexus="US", rounding="line",
    )  # fmt: skip
    return invoice_from_lines(
        result, invoice_id="inv-1", customer_id="cust-1", legal_entity="US01",
        issue_date=dt.date(2026, 11, 30), due_date=dt.date(2026, 12, 30),
    )  # fmt: skip


def tryton_half_even(*amounts: str, rate: str = "0.10") -> Decimal:
    """Tax as Tryton computes it with per-line rounding: each line half to even."""
    return sum(
        ((Decimal(a) * Decimal(rate)).quantize(CENT, rounding=ROUND_HALF_EVEN) for a in amounts),
        Decimal(0),
    )


def test_the_billed_tax_per_tryton_tax_comes_from_the_document() -> None:
    invoice = billed_invoice(
        ("CONSULTING-HOUR", "12.25", "125.00", "US-SALES-10"),
        ("TRAVEL", "1", "40.05", "US-SALES-10"),
        ("PM-HOUR", "2", "120.00", "US-EXEMPT"),
    )
    taxed = {tax.tax_id: tax for tax in billed_taxes(invoice, TAX_IDS)}
    assert taxed[7].line_amounts == (Decimal("1531.25"), Decimal("40.05"))
    assert taxed[7].amount == Decimal("153.13") + Decimal("4.01")  # each line half up
    assert taxed[7].rates == {Decimal("0.10")}
    assert taxed[8].amount == Decimal(0)
    without_tax_lines = invoice.model_copy(update={"tax_lines": []})
    (summed, _) = billed_taxes(without_tax_lines, TAX_IDS)
    assert summed.amount == taxed[7].amount and summed.rates == frozenset()


def test_a_half_cent_rounded_the_other_way_is_adjusted_to_the_billed_tax() -> None:
    invoice = billed_invoice(("CONSULTING-HOUR", "12.25", "125.00", "US-SALES-10"))
    (billed,) = billed_taxes(invoice, TAX_IDS)
    computed = tryton_half_even("1531.25")
    assert computed == Decimal("153.12")
    (adjustment,) = rounding_adjustments(
        [billed], {7: (Decimal("1531.25"), computed)}, {7: Decimal("0.10")}, CENT
    )
    assert adjustment == TaxRoundingAdjustment(7, Decimal("153.12"), Decimal("153.13"))
    assert adjustment.amount == CENT


def test_the_tolerance_grows_with_the_number_of_taxed_lines() -> None:
    """Three half-cent lines: Tryton 3 x 0.12, billing 3 x 0.13, exact 0.375. A difference of
    three cents is rounding here, but would not be on a one-line invoice."""
    amounts = ("1.25", "1.25", "1.25")
    invoice = billed_invoice(*(("TRAVEL", "1", a, "US-SALES-10") for a in amounts))
    (billed,) = billed_taxes(invoice, TAX_IDS)
    computed = tryton_half_even(*amounts)
    assert (computed, billed.amount) == (Decimal("0.36"), Decimal("0.39"))
    booked = {7: (Decimal("3.75"), computed)}
    (adjustment,) = rounding_adjustments([billed], booked, {7: Decimal("0.10")}, CENT)
    assert adjustment.amount == Decimal("0.03")
    one_line = BilledTax(7, (Decimal("3.75"),), Decimal("0.39"), frozenset())
    assert rounding_adjustments([one_line], booked, {7: Decimal("0.10")}, CENT) == []


@pytest.mark.parametrize(
    "booked, tryton_rate, why",
    [
        ((Decimal("1531.25"), Decimal("122.50")), Decimal("0.08"), "Tryton's tax is 8 %"),
        ((Decimal("1531.25"), Decimal("153.12")), Decimal("0.08"), "rates differ, amounts not"),
        ((Decimal("1500.00"), Decimal("153.12")), Decimal("0.10"), "another base"),
        ((Decimal("1531.25"), Decimal("153.10")), Decimal("0.10"), "two cents off one line"),
        ((Decimal("1531.25"), Decimal("153.12")), None, "not a percentage tax"),
    ],
)
def test_a_real_difference_is_not_adjusted(
    booked: tuple[Decimal, Decimal], tryton_rate: Decimal | None, why: str
) -> None:
    invoice = billed_invoice(("CONSULTING-HOUR", "12.25", "125.00", "US-SALES-10"))
    billed = billed_taxes(invoice, TAX_IDS)
    assert rounding_adjustments(billed, {7: booked}, {7: tryton_rate}, CENT) == [], why


def test_a_tax_already_as_billed_or_missing_in_tryton_needs_no_adjustment() -> None:
    invoice = billed_invoice(("CONSULTING-HOUR", "12.25", "125.00", "US-SALES-10"))
    billed = billed_taxes(invoice, TAX_IDS)
    rates = {7: Decimal("0.10")}
    assert rounding_adjustments(billed, {7: (Decimal("1531.25"), Decimal("153.13"))},
                                rates, CENT) == []  # fmt: skip
    assert rounding_adjustments(billed, {}, rates, CENT) == []


def test_line_taxes_follow_a_tax_set_to_the_half_up_billed_amount() -> None:
    """Tryton books 306.24 computed plus a 0.02 rounding line; each line reads back as billed
    (153.13), not 153.14 + 153.12."""
    lines = [(1, Decimal("1531.25"), [7]), (2, Decimal("1531.25"), [7])]
    taxes = [(7, Decimal("3062.50"), Decimal("306.24")), (7, Decimal(0), Decimal("0.02"))]
    per_line = line_tax_amounts(lines, taxes, {7: Decimal("0.10")}, CENT)
    assert per_line == {1: Decimal("153.13"), 2: Decimal("153.13")}
    as_computed = line_tax_amounts(lines, taxes[:1], {7: Decimal("0.10")}, CENT)
    assert as_computed == {1: Decimal("153.12"), 2: Decimal("153.12")}


def test_rounding_lines_are_recognised_by_their_note() -> None:
    assert is_rounding_line(True, Decimal(0), "Sales tax 10%" + ROUNDING_NOTE)
    assert not is_rounding_line(False, Decimal(0), "Sales tax 10%" + ROUNDING_NOTE)
    assert not is_rounding_line(True, Decimal("10.00"), "Sales tax 10%" + ROUNDING_NOTE)
    assert not is_rounding_line(True, Decimal(0), "Sales tax 10% entered by hand")
