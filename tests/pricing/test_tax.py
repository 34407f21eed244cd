from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import Invoice, TaxCode
from q2c.errors import MappingMissingError, ValidationError
from q2c.pricing.rating import RatedLine
from q2c.pricing.tax import TaxTable, apply_tax, invoice_from_lines
from q2c.pricing.time_materials import rate_time
from tests.pricing.builders import book, contract, time_entry, usd

CODES = [
    TaxCode(code="CA", name="California", rate=Decimal("0.0725"), jurisdiction="US-CA"),
    TaxCode(code="NY", name="New York", rate=Decimal("0.08875"), jurisdiction="US-NY"),
    TaxCode(code="EXEMPT", name="Exempt", rate=Decimal(0), jurisdiction="US"),
    TaxCode(
        code="VAT20", name="UK VAT", rate=Decimal("0.20"), jurisdiction="GB", legal_entity="UK01"
    ),
]
TABLE = TaxTable(CODES, nexus_map={("US01", "US-CA-SF"): "CA"})


def lines(*amounts: str) -> list[RatedLine]:
    line = rate_time(time_entry(), contract=contract(), book=book())
    return [
        replace(
            line,
            billing_event_ids=(f"te-{i}",),
            amount=usd(a),
            unit_price=usd(a),
            quantity=Decimal(1),
        )
        for i, a in enumerate(amounts)
    ]


def test_line_and_document_rounding() -> None:
    by_line = apply_tax(
        lines("0.10", "0.10", "0.10"), table=TABLE, legal_entity="US01", nexus="US-CA"
    )
    by_doc = apply_tax(
        lines("0.10", "0.10", "0.10"),
        table=TABLE,
        legal_entity="US01",
        nexus="US-CA",
        rounding="document",
    )
    # 0.10 * 0.0725 = 0.00725 -> 0.01 per line; 0.30 * 0.0725 = 0.02175 -> 0.02 once
    assert by_line.tax_total == usd("0.03")
    assert by_doc.tax_total == usd("0.02")
    assert [t.tax_amount for t in by_line.lines] == [usd("0.01")] * 3
    assert all(t.tax_amount is None for t in by_doc.lines)
    assert by_doc.tax_lines[0].base == usd("0.30")
    assert by_line.total == usd("0.33")
    assert by_doc.total == usd("0.32")


def test_code_resolution_order() -> None:
    assert TABLE.code_for(legal_entity="US01", nexus="US-NY").code == "NY"
    assert TABLE.code_for(legal_entity="US01", nexus="US-CA-SF").code == "CA"
    assert TABLE.code_for(legal_entity="UK01", nexus="GB").code == "VAT20"
    assert TABLE.code_for(legal_entity="US01", nexus="US-NY", line_tax_code="EXEMPT").rate == 0


def test_missing_tax_code_for_nexus() -> None:
    with pytest.raises(MappingMissingError) as caught:
        apply_tax(lines("10"), table=TABLE, legal_entity="US01", nexus="US-TX")
    assert caught.value.message == "No tax code for legal entity US01 in nexus 'US-TX'"
    with pytest.raises(
        MappingMissingError, match="No tax code for legal entity US01 in nexus 'GB'"
    ):
        TABLE.code_for(legal_entity="US01", nexus="GB")
    with pytest.raises(MappingMissingError, match="'VAT20' does not exist for legal entity US01"):
        TABLE.code_for(legal_entity="US01", nexus="US-CA", line_tax_code="VAT20")


def test_ambiguous_codes_for_a_nexus() -> None:
    table = TaxTable([*CODES, CODES[0].model_copy(update={"code": "CA2"})])
    with pytest.raises(MappingMissingError, match=r"Several tax codes .* \(CA, CA2\)"):
        table.code_for(legal_entity="US01", nexus="US-CA")


def test_mixed_tax_codes_make_one_tax_line_each() -> None:
    mixed = lines("100.00", "50.00")
    mixed[1] = replace(mixed[1], tax_code="EXEMPT")
    result = apply_tax(mixed, table=TABLE, legal_entity="US01", nexus="US-CA")
    assert [(t.tax_code, t.base, t.amount) for t in result.tax_lines] == [
        ("CA", usd("100.00"), usd("7.25")),
        ("EXEMPT", usd("50.00"), usd("0.00")),
    ]


def test_invoice_builder_passes_the_canonical_validator() -> None:
    result = apply_tax(lines("1500.00", "99.99"), table=TABLE, legal_entity="US01", nexus="US-CA")
    invoice = invoice_from_lines(
        result,
        invoice_id="inv-1",
        customer_id="cust-1",
        legal_entity="US01",
        issue_date=date(2027, 3, 31),
        due_date=date(2027, 4, 30),
        contract_id="contract-100",
    )
    assert Invoice.model_validate(invoice.model_dump(mode="json")) == invoice
    assert invoice.total == usd("1715.99")  # 1599.99 + 108.75 + 7.25
    assert invoice.lines[0].rate_card_version == 1
    assert invoice.lines[1].billing_event_ids == ["te-1"]


def test_invoice_builder_refuses_empty_and_bad_dates() -> None:
    empty = apply_tax([], table=TABLE, legal_entity="US01", nexus="US-CA", currency="USD")
    with pytest.raises(ValidationError, match="has no lines"):
        invoice_from_lines(
            empty,
            invoice_id="inv-1",
            customer_id="c",
            legal_entity="US01",
            issue_date=date(2027, 3, 31),
            due_date=date(2027, 4, 30),
        )
    result = apply_tax(lines("1"), table=TABLE, legal_entity="US01", nexus="US-CA")
    with pytest.raises(ValidationError, match="due_date"):
        invoice_from_lines(
            result,
            invoice_id="inv-1",
            customer_id="c",
            legal_entity="US01",
            issue_date=date(2027, 3, 31),
            due_date=date(2027, 3, 1),
        )


def test_mixed_currencies_refused() -> None:
    with pytest.raises(ValidationError, match="the invoice in EUR"):
        apply_tax(lines("1"), table=TABLE, legal_entity="US01", nexus="US-CA", currency="EUR")
