"""An invoice's total recomputed by hand from events and the rate card, per the docstrings."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from q2c.canonical.models import TaxCode
from q2c.pricing.tax import TaxTable, apply_tax, invoice_from_lines
from q2c.pricing.time_materials import ExpensePolicy, rate_time_and_materials
from tests.pricing.builders import book, card, contract, expense, time_entry, usd

CENT = Decimal("0.01")


def test_invoice_total_matches_the_documented_rules() -> None:
    rates = book(
        card(1, date(2027, 1, 1), date(2027, 3, 14), rates={"Senior": "200.00"}),
        card(2, date(2027, 3, 15), rates={"Senior": "212.50"}),
    )
    events = [
        time_entry("te-1", date(2027, 3, 14), "7.33"),
        time_entry("te-2", date(2027, 3, 15), "3.17"),
        expense("ex-1", usd("45.67")),
    ]
    outcome = rate_time_and_materials(
        events,
        contract=contract(),
        book=rates,
        expense_policy=ExpensePolicy(markup_percent=Decimal("12.5")),
    )
    taxed = apply_tax(
        outcome.lines,
        table=TaxTable(
            [TaxCode(code="CA", name="CA", rate=Decimal("0.0725"), jurisdiction="US-CA")]
        ),
        legal_entity="US01",
        nexus="US-CA",
        rounding="document",
    )
    invoice = invoice_from_lines(
        taxed,
        invoice_id="inv-9",
        customer_id="cust-1",
        legal_entity="US01",
        issue_date=date(2027, 3, 31),
        due_date=date(2027, 4, 30),
    )

    def r(x: Decimal) -> Decimal:
        return x.quantize(CENT, ROUND_HALF_UP)

    lines = [
        r(Decimal("7.33") * 200),
        r(Decimal("3.17") * Decimal("212.50")),
        r(Decimal("45.67") * Decimal("1.125")),
    ]
    subtotal = sum(lines, Decimal(0))
    expected = subtotal + r(subtotal * Decimal("0.0725"))
    assert invoice.total.amount == expected
    assert [line.rate_card_version for line in invoice.lines] == [1, 2, None]
