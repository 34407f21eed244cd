"""NetSuiteErp as the AR ledger and journal (ArLedgerPort, JournalPort), against the emulator."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from q2c.canonical.models import Invoice, InvoiceLine, Payment
from q2c.canonical.money import Money
from q2c.connectors.http import Exchange
from q2c.connectors.netsuite.adapter import NetSuiteErp
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.netsuite.seed import LedgerEntity, SeedTaxCode
from q2c.connectors.sandbox import Fault
from q2c.errors import MappingMissingError, NotFoundError, RetriableError, ValidationError
from q2c.flows.ports import (
    ArLedgerPort,
    ErpPort,
    InvoicePostingRefs,
    JournalLine,
    JournalPort,
    JournalRequest,
    ReferenceDataPort,
)

Ids = dict[str, dict[str, str]]
Line = tuple[str, str, str, str | None]  # service item, quantity, unit price, tax code
PERCENT = {"VAT19": Decimal(19), "VAT7": Decimal(7), "EXEMPT": Decimal(0), "US0": Decimal(0)}


@pytest.fixture
def erp(sandbox: NetSuiteSandbox, ledger: Ids) -> NetSuiteErp:
    return sandbox.erp_m2m(page_size=3)


def seed_customer(
    sandbox: NetSuiteSandbox, ids: Ids, entity: str, currency: str, name: str, **fields: Any
) -> str:
    body = {
        "companyName": name,
        "subsidiary": {"id": ids["subsidiaries"][entity]},
        "currency": {"id": ids["currencies"][currency]},
        **fields,
    }
    return sandbox.state.insert("customer", body)


def posting_refs(ids: Ids, customer: str, entity: str, currency: str) -> InvoicePostingRefs:
    return InvoicePostingRefs(
        customer_erp_id=customer,
        subsidiary=ids["subsidiaries"][entity],
        currency_erp_id=ids["currencies"][currency],
        items={code: ids["items"][code] for code in ("SERVICES", "EXPENSES", "FEES", "USAGE")},
        tax_codes={
            "VAT19": ids["tax_codes"]["DE-VAT-19"],
            "VAT7": ids["tax_codes"]["DE-VAT-7"],
            "EXEMPT": ids["tax_codes"]["DE-EXEMPT"],
            "US0": ids["tax_codes"]["US-SERVICES"],
        },
        department=ids["departments"]["Consulting"],
        ar_account=ids["accounts"]["AR"],
    )


@pytest.fixture
def de_refs(sandbox: NetSuiteSandbox, ledger: Ids) -> InvoicePostingRefs:
    customer = seed_customer(sandbox, ledger, "DE01", "EUR", "Globex GmbH")
    return posting_refs(ledger, customer, "DE01", "EUR")


@pytest.fixture
def us_refs(sandbox: NetSuiteSandbox, ledger: Ids) -> InvoicePostingRefs:
    customer = seed_customer(sandbox, ledger, "US01", "USD", "Initech LLC")
    return posting_refs(ledger, customer, "US01", "USD")


def an_invoice(*lines: Line, currency: str = "EUR", number: str = "in_1001") -> Invoice:
    """A billing platform's invoice, its tax rounded once per document and code."""
    built = [
        InvoiceLine(
            line_no=n,
            description=f"{item} for March",
            service_item=item,
            quantity=Decimal(quantity),
            unit_price=Money.of(price, currency),
            amount=Money(Decimal(quantity) * Decimal(price), currency).rounded(),
            tax_code=tax,
        )
        for n, (item, quantity, price, tax) in enumerate(lines, start=1)
    ]
    subtotal = Money.total((ln.amount for ln in built), currency)
    bases: dict[str, Decimal] = {}
    for ln in built:
        bases[ln.tax_code or ""] = bases.get(ln.tax_code or "", Decimal(0)) + ln.amount.amount
    tax = Money.total(
        (
            Money(base * PERCENT.get(code, Decimal(0)) / 100, currency).rounded()
            for code, base in bases.items()
        ),
        currency,
    )
    return Invoice(
        id=f"q2c-{number}",
        number=number,
        customer_id="cust-1",
        legal_entity="DE01",
        currency=currency,
        issue_date=date(2025, 3, 31),
        due_date=date(2025, 4, 30),
        lines=built,
        tax_rounding="document",
        subtotal=subtotal,
        tax_total=tax,
        total=subtotal + tax,
    )


def a_payment(amount: str, currency: str = "EUR", *, pid: str = "py_1") -> Payment:
    return Payment(
        id=pid,
        customer_id="cust-1",
        amount=Money.of(amount, currency),
        received_on=date(2025, 4, 10),
        method="wire",
        reference=f"WIRE-{pid}",
    )


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def test_one_object_serves_every_erp_role(erp: NetSuiteErp) -> None:
    for port in (ErpPort, ArLedgerPort, JournalPort, ReferenceDataPort):
        assert isinstance(erp, port)


# --- invoices --------------------------------------------------------------------------------


def test_upsert_invoice_is_idempotent(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs
) -> None:
    invoice = an_invoice(("SERVICES", "10", "150.00", "VAT19"), ("EXPENSES", "1", "84.20", "VAT7"))
    first = erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs)
    second = erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs)
    assert first == second
    assert (first.number, first.external_id) == ("INV-10001", "inv-in_1001")
    assert sandbox.state.count("invoice") == 1
    (stored,) = sandbox.state.records("invoice")
    assert len(stored["item"]) == 2  # ?replace=item: the lines are not appended again
    assert stored["otherRefNum"] == "in_1001"
    assert stored["account"] == {"id": de_refs.ar_account}
    assert stored["entity"] == {"id": de_refs.customer_erp_id}
    assert stored["department"] == {"id": de_refs.department}
    assert (stored["tranDate"], stored["dueDate"]) == ("2025-03-31", "2025-04-30")

    corrected = an_invoice(("SERVICES", "12", "150.00", "VAT19"))
    third = erp.upsert_invoice(corrected, external_id="inv-in_1001", refs=de_refs)
    assert third.erp_id == first.erp_id
    read = erp.read_invoice(first.erp_id)
    assert [ln.amount for ln in read.lines] == [eur("1800.00")]
    assert read.total == eur("2142.00")


def test_invoice_retried_after_a_timeout_lands_on_the_same_record(
    sandbox: NetSuiteSandbox, ledger: Ids, de_refs: InvoicePostingRefs
) -> None:
    erp = sandbox.erp_m2m(timeout=0.5)
    erp.currencies()  # sign in first, so the fault hits the write
    sandbox.faults.inject(
        Fault("timeout", path="/services/rest/record/v1/invoice/*", method="PUT", delay=5.0)
    )
    invoice = an_invoice(("SERVICES", "8", "175.00", "VAT19"))
    with pytest.raises(RetriableError):
        erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs)
    assert sandbox.state.count("invoice") == 1  # NetSuite applied it; the answer was lost
    made = erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs)
    assert sandbox.state.count("invoice") == 1
    assert made.number == "INV-10001"


def test_read_back_is_netsuites_line_level_tax_to_the_cent(
    erp: NetSuiteErp, de_refs: InvoicePostingRefs
) -> None:
    # 1.50 at 19 % is 0.285: NetSuite rounds each line half-up (0.29 + 0.29 = 0.58), where
    # rounding the document once gives 0.57 -- the cent the comparison must surface.
    invoice = an_invoice(
        ("SERVICES", "1", "1.50", "VAT19"),
        ("SERVICES", "1", "1.50", "VAT19"),
        ("EXPENSES", "3", "33.333", "VAT7"),  # 99.999 -> 100.00; tax 7.00
        ("FEES", "1", "25.00", "EXEMPT"),
    )
    assert invoice.tax_total == eur("7.57")  # document-level rounding, as billed
    made = erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs)
    read = erp.read_invoice(made.erp_id)
    assert [(ln.amount, ln.tax_amount) for ln in read.lines] == [
        (eur("1.50"), eur("0.29")),
        (eur("1.50"), eur("0.29")),
        (eur("100.00"), eur("7.00")),
        (eur("25.00"), eur("0.00")),
    ]
    assert [ln.tax_code_erp_id for ln in read.lines] == [
        de_refs.tax_codes[code] for code in ("VAT19", "VAT19", "VAT7", "EXEMPT")
    ]
    assert [ln.item_erp_id for ln in read.lines] == [
        de_refs.items[code] for code in ("SERVICES", "SERVICES", "EXPENSES", "FEES")
    ]
    assert read.lines[2].quantity == Decimal(3)
    assert (read.subtotal, read.tax_total, read.total) == (
        eur("128.00"),
        eur("7.58"),
        eur("135.58"),
    )
    assert read.tax_total != invoice.tax_total
    assert read.amount_remaining == read.total
    assert (read.status, read.number, read.external_id, read.currency) == (
        "Open",
        "INV-10001",
        "inv-in_1001",
        "EUR",
    )
    assert all(isinstance(ln.amount.amount, Decimal) for ln in read.lines)


def test_tax_rounds_to_the_currencys_minor_unit(sandbox: NetSuiteSandbox, ledger: Ids) -> None:
    ids = sandbox.seed_ledger_reference_data(
        entities=[LedgerEntity("JP01", "Acme Consulting KK", "JP", "JPY")],
        currencies=["JPY"],
        tax_codes=[SeedTaxCode("JP-CT-10", "Japanese consumption tax 10%", Decimal(10), "JP")],
        rates=[],
    )
    customer = seed_customer(sandbox, sandbox.reference, "JP01", "JPY", "Kaisha KK")
    refs = dataclasses.replace(
        posting_refs(sandbox.reference, customer, "JP01", "JPY"),
        tax_codes={"CT10": ids["tax_codes"]["JP-CT-10"]},
    )
    invoice = an_invoice(
        ("SERVICES", "1", "1005", "CT10"), ("SERVICES", "1", "995", "CT10"), currency="JPY"
    )
    erp = sandbox.erp_tba()
    read = erp.read_invoice(erp.upsert_invoice(invoice, external_id="jp-1", refs=refs).erp_id)
    # 100.5 -> 101 and 99.5 -> 100: half-up to whole yen, per line
    assert [ln.tax_amount for ln in read.lines] == [Money.of("101", "JPY"), Money.of("100", "JPY")]
    assert read.total == Money.of("2201", "JPY")


def test_line_amounts_are_kept_at_the_currencys_precision(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, us_refs: InvoicePostingRefs
) -> None:
    service = {"id": us_refs.items["SERVICES"]}
    invoice_id = sandbox.state.insert(
        "invoice",
        {
            "entity": {"id": us_refs.customer_erp_id},
            "item": {
                "items": [
                    {"item": service, "quantity": Decimal("7.5"), "rate": Decimal("95.2381")},
                    {"item": service, "amount": Decimal("10.005")},
                ]
            },
        },
    )
    read = erp.read_invoice(invoice_id)
    # 7.5 x 95.2381 = 714.28575: NetSuite keeps currency fields at cents, half-up
    assert [ln.amount for ln in read.lines] == [
        Money.of("714.29", "USD"),
        Money.of("10.01", "USD"),
    ]
    assert read.subtotal == Money.of("724.30", "USD")
    # subsidiary and currency came from the customer
    (stored,) = sandbox.state.records("invoice")
    assert stored["subsidiary"] == {"id": us_refs.subsidiary}
    assert stored["currency"] == {"id": us_refs.currency_erp_id}


# --- invoice validation ----------------------------------------------------------------------


def test_unknown_item_names_the_line(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs
) -> None:
    refs = dataclasses.replace(de_refs, items={**de_refs.items, "FEES": "999999"})
    invoice = an_invoice(("SERVICES", "1", "100.00", "VAT19"), ("FEES", "1", "50.00", "VAT19"))
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(invoice, external_id="inv-1", refs=refs)
    assert info.value.field == "item.items[1].item"
    assert info.value.message.startswith("NetSuite rejected the invoice line 2 field 'item': ")
    assert "Invalid Field Value 999999" in info.value.message
    assert sandbox.state.count("invoice") == 0


def test_vat_nexus_needs_a_tax_code_on_every_line(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs
) -> None:
    invoice = an_invoice(("SERVICES", "1", "100.00", "VAT19"), ("FEES", "1", "50.00", None))
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(invoice, external_id="inv-1", refs=de_refs)
    assert info.value.field == "item.items[1].taxCode"
    assert info.value.message == (
        "NetSuite refused the invoice line 2 field 'taxCode': Error while accessing a "
        "resource. Please enter value(s) for: Tax Code."
    )
    assert sandbox.state.count("invoice") == 0


def test_sales_tax_nexus_takes_lines_without_tax_code(
    erp: NetSuiteErp, us_refs: InvoicePostingRefs
) -> None:
    invoice = an_invoice(("SERVICES", "4", "200.00", None), currency="USD")
    read = erp.read_invoice(erp.upsert_invoice(invoice, external_id="i", refs=us_refs).erp_id)
    assert read.tax_total == Money.of("0", "USD")
    assert read.lines[0].tax_code_erp_id is None


def test_tax_code_of_another_nexus_is_refused(
    erp: NetSuiteErp, de_refs: InvoicePostingRefs
) -> None:
    invoice = an_invoice(("SERVICES", "1", "100.00", "US0"))
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(invoice, external_id="inv-1", refs=de_refs)
    assert info.value.field == "item.items[0].taxCode"
    assert "line 1 field 'taxCode'" in info.value.message
    assert f"Invalid Field Value {de_refs.tax_codes['US0']}" in info.value.message


def test_currency_must_be_one_of_the_customers(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids, de_refs: InvoicePostingRefs
) -> None:
    refs = dataclasses.replace(de_refs, currency_erp_id=ledger["currencies"]["USD"])
    invoice = an_invoice(("SERVICES", "1", "100.00", "VAT19"), currency="USD")
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(invoice, external_id="inv-1", refs=refs)
    assert info.value.field == "currency"
    assert info.value.message == (
        "NetSuite rejected the invoice field 'currency': Invalid currency reference key "
        f"{ledger['currencies']['USD']} for entity {de_refs.customer_erp_id}."
    )
    # a customer that may also be billed in USD (Financial subtab: currencies) takes it
    sandbox.state.update(
        "customer",
        de_refs.customer_erp_id,
        {"currencyList": {"items": [{"currency": {"id": ledger["currencies"]["USD"]}}]}},
    )
    read = erp.read_invoice(erp.upsert_invoice(invoice, external_id="inv-1", refs=refs).erp_id)
    assert read.currency == "USD" and read.total == Money.of("119.00", "USD")


def test_customer_of_another_subsidiary_is_refused(
    erp: NetSuiteErp, ledger: Ids, de_refs: InvoicePostingRefs
) -> None:
    refs = dataclasses.replace(de_refs, subsidiary=ledger["subsidiaries"]["US01"])
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(
            an_invoice(("SERVICES", "1", "1.00", "VAT19")), external_id="i", refs=refs
        )
    assert info.value.field == "entity"
    assert "Invalid entity reference key" in info.value.message


def test_unmapped_codes_send_nothing(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs
) -> None:
    exchanges: list[Exchange] = []
    erp = sandbox.erp_m2m(recorder=exchanges.append)
    with pytest.raises(MappingMissingError) as info:
        erp.upsert_invoice(
            an_invoice(("SERVICES", "1", "1.00", "VAT16")), external_id="i", refs=de_refs
        )
    assert info.value.message == "Tax code 'VAT16' has no NetSuite mapping"
    assert info.value.field == "taxCode"
    with pytest.raises(MappingMissingError, match="Item 'WORKSHOP' has no NetSuite mapping"):
        erp.upsert_invoice(
            an_invoice(("WORKSHOP", "1", "1.00", "VAT19")), external_id="i", refs=de_refs
        )
    assert not [e for e in exchanges if e.method == "PUT"]


def test_currency_mapped_to_the_wrong_netsuite_currency(
    erp: NetSuiteErp, ledger: Ids, de_refs: InvoicePostingRefs
) -> None:
    refs = dataclasses.replace(de_refs, currency_erp_id=ledger["currencies"]["GBP"])
    with pytest.raises(MappingMissingError) as info:
        erp.upsert_invoice(
            an_invoice(("SERVICES", "1", "1.00", "VAT19")), external_id="i", refs=refs
        )
    assert info.value.message.startswith("Invoice in_1001 is in EUR, but the NetSuite currency")
    assert "is GBP" in info.value.message


def test_read_invoice_that_does_not_exist(erp: NetSuiteErp) -> None:
    with pytest.raises(NotFoundError, match="NetSuite has no such invoice"):
        erp.read_invoice("424242")


# --- customer payments -----------------------------------------------------------------------


@pytest.fixture
def invoice_id(erp: NetSuiteErp, de_refs: InvoicePostingRefs) -> str:
    invoice = an_invoice(("SERVICES", "10", "100.00", "VAT19"))  # 1000.00 + 190.00 VAT
    return erp.upsert_invoice(invoice, external_id="inv-in_1001", refs=de_refs).erp_id


def pay(
    erp: NetSuiteErp,
    refs: InvoicePostingRefs,
    amount: str,
    applications: list[tuple[str, Money]],
    *,
    external_id: str = "pay-py_1",
) -> Any:
    return erp.apply_payment(
        a_payment(amount, pid=external_id),
        external_id=external_id,
        customer_erp_id=refs.customer_erp_id,
        subsidiary=refs.subsidiary,
        currency_erp_id=refs.currency_erp_id,
        applications=applications,
    )


def test_partial_payments_leave_an_amount_remaining(
    erp: NetSuiteErp, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    first = pay(erp, de_refs, "500.00", [(invoice_id, eur("500.00"))])
    assert (first.applied, first.unapplied) == (eur("500.00"), eur("0.00"))
    after_first = erp.read_invoice(invoice_id)
    assert (after_first.amount_remaining, after_first.status) == (eur("690.00"), "Open")

    second = pay(erp, de_refs, "690.00", [(invoice_id, eur("690.00"))], external_id="pay-py_2")
    assert second.erp_id != first.erp_id
    paid = erp.read_invoice(invoice_id)
    assert (paid.amount_remaining, paid.status) == (eur("0.00"), "Paid In Full")


def test_over_payment_stays_as_unapplied_credit(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    made = pay(erp, de_refs, "1500.00", [(invoice_id, eur("1190.00"))])
    assert (made.applied, made.unapplied) == (eur("1190.00"), eur("310.00"))
    assert made.external_id == "pay-py_1"
    assert erp.read_invoice(invoice_id).status == "Paid In Full"
    (stored,) = sandbox.state.records("customerPayment")
    (line,) = stored["apply"]
    assert (line["refNum"], line["due"], line["total"]) == (
        "INV-10001",
        Decimal("1190.00"),
        Decimal("1190.00"),
    )
    assert stored["tranId"] == "PYMT-10001" and stored["undepFunds"] is True


def test_applying_more_than_remains_is_refused(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    pay(erp, de_refs, "1000.00", [(invoice_id, eur("1000.00"))])
    with pytest.raises(ValidationError) as info:
        pay(erp, de_refs, "200.00", [(invoice_id, eur("200.00"))], external_id="pay-py_2")
    error = info.value
    assert error.message == (
        "Payment WIRE-pay-py_2 applies 200.00 EUR to NetSuite invoice INV-10001, which has only "
        "190.00 EUR left to pay"
    )
    assert error.field == "apply.items[0].amount"
    assert error.context["netsuite_code"] == "INVALID_FLD_VALUE"
    assert error.context["amount_remaining"] == "190.00"
    assert "outside of valid min/max range for field amount" in error.detail
    assert sandbox.state.count("customerPayment") == 1  # nothing recorded
    assert erp.read_invoice(invoice_id).amount_remaining == eur("190.00")


def test_applying_more_than_the_payment_is_refused(
    erp: NetSuiteErp, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    with pytest.raises(ValidationError) as info:
        pay(erp, de_refs, "100.00", [(invoice_id, eur("150.00"))])
    assert info.value.field == "payment"
    assert "Value 100.00 outside of valid min/max range for field payment" in info.value.message


def test_payment_is_idempotent_even_after_a_timeout(
    sandbox: NetSuiteSandbox, erp: NetSuiteErp, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    slow = sandbox.erp_m2m(timeout=0.5)
    slow.currencies()
    sandbox.faults.inject(
        Fault("timeout", path="/services/rest/record/v1/customerPayment/*", delay=5.0)
    )
    with pytest.raises(RetriableError):
        pay(slow, de_refs, "400.00", [(invoice_id, eur("400.00"))])
    again = pay(slow, de_refs, "400.00", [(invoice_id, eur("400.00"))])
    once_more = pay(erp, de_refs, "400.00", [(invoice_id, eur("400.00"))])
    assert again == once_more
    assert sandbox.state.count("customerPayment") == 1
    # applied once, not three times
    assert erp.read_invoice(invoice_id).amount_remaining == eur("790.00")


def test_payment_in_another_currency_than_the_invoice(
    erp: NetSuiteErp,
    sandbox: NetSuiteSandbox,
    ledger: Ids,
    de_refs: InvoicePostingRefs,
    invoice_id: str,
) -> None:
    sandbox.state.update(
        "customer",
        de_refs.customer_erp_id,
        {"currencyList": {"items": [{"currency": {"id": ledger["currencies"]["USD"]}}]}},
    )
    usd = dataclasses.replace(de_refs, currency_erp_id=ledger["currencies"]["USD"])
    with pytest.raises(ValidationError) as info:
        erp.apply_payment(
            a_payment("100.00", "USD"),
            external_id="pay-usd",
            customer_erp_id=usd.customer_erp_id,
            subsidiary=usd.subsidiary,
            currency_erp_id=usd.currency_erp_id,
            applications=[(invoice_id, Money.of("100.00", "USD"))],
        )
    assert info.value.field == "apply.items[0].doc"
    assert "application 1 field 'doc'" in info.value.message


def test_invoice_of_another_customer_cannot_be_paid(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids, invoice_id: str
) -> None:
    other = seed_customer(sandbox, ledger, "DE01", "EUR", "Someone Else AG")
    refs = posting_refs(ledger, other, "DE01", "EUR")
    with pytest.raises(ValidationError) as info:
        pay(erp, refs, "10.00", [(invoice_id, eur("10.00"))])
    assert info.value.field == "apply.items[0].doc"


def test_payments_and_invoices_are_in_suiteql(
    erp: NetSuiteErp, de_refs: InvoicePostingRefs, invoice_id: str
) -> None:
    pay(erp, de_refs, "1500.00", [(invoice_id, eur("1000.00"))])
    rows = list(
        erp.query(
            "SELECT t.tranid, t.type, t.foreigntotal, t.taxtotal, t.foreignamountremaining, "
            "t.foreignpaymentamountunused, t.status FROM transaction t "
            "WHERE t.type IN ('CustInvc', 'CustPymt') ORDER BY t.id"
        )
    )
    assert rows == [
        {
            "tranid": "INV-10001",
            "type": "CustInvc",
            "foreigntotal": "1190",
            "taxtotal": "190",
            "foreignamountremaining": "190",
            "status": "A",
        },
        {
            "tranid": "PYMT-10001",
            "type": "CustPymt",
            "foreigntotal": "1500",
            "foreignpaymentamountunused": "500",
        },
    ]


# --- journal entries -------------------------------------------------------------------------


def a_journal(ledger: Ids, debit: str, credit: str, *, entity: str = "DE01") -> JournalRequest:
    return JournalRequest(
        subsidiary=ledger["subsidiaries"][entity],
        currency_erp_id=ledger["currencies"]["EUR"],
        posting_date=date(2025, 3, 31),
        memo="Revenue recognition March 2025, contract K-1",
        lines=[
            JournalLine(
                account=ledger["accounts"]["DEFERRED_REVENUE"],
                debit=eur(debit),
                memo="release deferred revenue",
            ),
            JournalLine(
                account=ledger["accounts"]["REVENUE"],
                credit=eur(credit),
                department=ledger["departments"]["Consulting"],
            ),
        ],
    )


def test_balanced_journal_posts_once(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    journal = a_journal(ledger, "2500.00", "2500.00")
    first = erp.post_journal(journal, external_id="rev-K-1-2025-03")
    second = erp.post_journal(journal, external_id="rev-K-1-2025-03")
    assert first == second
    assert (first.number, first.external_id) == ("JE-10001", "rev-K-1-2025-03")
    (stored,) = sandbox.state.records("journalEntry")
    assert [(ln.get("debit"), ln.get("credit")) for ln in stored["line"]] == [
        (Decimal("2500.00"), None),
        (None, Decimal("2500.00")),
    ]
    assert stored["line"][1]["department"] == {"id": ledger["departments"]["Consulting"]}
    assert stored["currency"] == {"id": ledger["currencies"]["EUR"]}
    rows = list(
        erp.query(
            "SELECT tl.expenseaccount, tl.debitforeignamount, tl.creditforeignamount "
            f"FROM transactionline tl WHERE tl.transaction = {first.erp_id} "
            "AND tl.mainline = 'F' ORDER BY tl.linesequencenumber"
        )
    )
    assert rows == [
        {"expenseaccount": ledger["accounts"]["DEFERRED_REVENUE"], "debitforeignamount": "2500"},
        {"expenseaccount": ledger["accounts"]["REVENUE"], "creditforeignamount": "2500"},
    ]


def test_unbalanced_journal_is_refused(
    erp: NetSuiteErp, sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    with pytest.raises(ValidationError) as info:
        erp.post_journal(a_journal(ledger, "2500.00", "2499.99"), external_id="rev-1")
    assert info.value.message.startswith(
        "NetSuite refused the journal entry: The transaction is not in balance."
    )
    assert "debits 2500, credits 2499.99" in info.value.message
    assert info.value.context["netsuite_code"] == "TRANS_UNBALNCD"
    assert sandbox.state.count("journalEntry") == 0


def test_journal_line_with_debit_and_credit_is_refused_before_sending(
    sandbox: NetSuiteSandbox, ledger: Ids
) -> None:
    exchanges: list[Exchange] = []
    erp = sandbox.erp_m2m(recorder=exchanges.append)
    journal = a_journal(ledger, "1.00", "1.00")
    both = dataclasses.replace(journal.lines[0], credit=eur("1.00"))
    with pytest.raises(ValidationError, match="line 1 needs either a debit or a credit"):
        erp.post_journal(
            dataclasses.replace(journal, lines=[both, journal.lines[1]]), external_id="j"
        )
    assert not exchanges
