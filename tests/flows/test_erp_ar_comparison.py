"""The pure comparison of two ERPs' receivables: pairing customers and wording differences."""

from __future__ import annotations

from q2c.canonical.money import Money
from q2c.flows.ports import ArCustomerStatement, ArInvoiceSummary
from q2c.reconciliation.erp_ar import Side, compare_receivables

LEGACY = Side("netsuite", "NetSuite", "legacy")
TARGET = Side("tryton", "Tryton", "target")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def invoice(erp_id: str, key: str, total: str, remaining: str | None = None) -> ArInvoiceSummary:
    return ArInvoiceSummary(erp_id, key, f"N-{erp_id}", usd(total), usd(remaining or total))


def statement(
    erp_id: str, name: str, balance: str, *invoices: ArInvoiceSummary, key: str | None = None
) -> ArCustomerStatement:
    return ArCustomerStatement(erp_id, name, key, usd(balance), list(invoices))


def test_customers_pair_by_xref_then_external_id_then_name() -> None:
    legacy = [
        statement("10", "Acme Corp", "100.00", invoice("1", "q2c-inv-a", "100.00")),
        statement("11", "Globex", "50.00", invoice("2", "q2c-inv-b", "50.00"), key="crm-11"),
        statement("12", "Initech LLC", "0.00"),
    ]
    target = [
        statement("7", "ACME Corporation", "100.00", invoice("31", "q2c-inv-a", "100.00")),
        statement("8", "Globex Inc", "50.00", invoice("32", "q2c-inv-b", "50.00"), key="crm-11"),
        statement("9", "initech llc ", "0.00"),
    ]
    report = compare_receivables("US01", LEGACY, TARGET, legacy, target, {"10": "7"})
    assert report.matched, report.lines()
    assert (report.customers_compared, report.invoices_compared) == (3, 2)


def test_a_customer_in_one_erp_only_is_reported_with_its_balance_and_invoices() -> None:
    legacy = [statement("10", "Acme Corp", "120.00", invoice("1", "q2c-inv-a", "120.00"))]
    report = compare_receivables("US01", LEGACY, TARGET, legacy, [], {})
    [difference] = report.differences
    assert difference.kind == "customer_missing" and difference.amount == usd("-120.00")
    assert difference.message == (
        "Customer 'Acme Corp' is in NetSuite but not in Tryton "
        "(balance 120.00 USD, 1 invoice invoiced 120.00 USD)"
    )


def test_differing_amounts_are_worded_for_finance() -> None:
    legacy = [
        statement(
            "10", "Acme Corp", "300.00",
            invoice("1", "q2c-inv-a", "100.00"), invoice("2", "q2c-inv-b", "200.00"),
        )
    ]  # fmt: skip
    target = [
        statement(
            "7", "Acme Corp", "290.00",
            invoice("31", "q2c-inv-a", "90.00"), invoice("32", "q2c-inv-b", "200.00"),
        )
    ]  # fmt: skip
    report = compare_receivables("US01", LEGACY, TARGET, legacy, target, {"10": "7"})
    assert [d.kind for d in report.differences] == ["balance", "invoiced_total", "invoice_total"]
    assert [d.amount for d in report.differences] == [usd("-10.00")] * 3
    assert report.lines()[1:] == [
        "  Customer 'Acme Corp': AR balance NetSuite 300.00 USD, Tryton 290.00 USD "
        "(Tryton 10.00 USD less)",
        "  Customer 'Acme Corp': invoiced NetSuite 300.00 USD in 2 invoices, Tryton 290.00 USD "
        "in 2 invoices (Tryton 10.00 USD less)",
        "  Customer 'Acme Corp': invoice N-1 / N-31 (q2c-inv-a) totals NetSuite 100.00 USD, "
        "Tryton 90.00 USD (Tryton 10.00 USD less)",
    ]
    assert report.as_dict()["differences"][0]["amount"] == {"amount": "-10.00", "currency": "USD"}


def test_sub_cent_noise_is_not_a_difference_but_a_currency_mismatch_is() -> None:
    legacy = [statement("10", "Acme Corp", "100.004")]
    target = [statement("7", "Acme Corp", "100.00")]
    assert compare_receivables("US01", LEGACY, TARGET, legacy, target, {"10": "7"}).matched
    euro = [ArCustomerStatement("7", "Acme Corp", None, Money.of("100.00", "EUR"), [])]
    report = compare_receivables("US01", LEGACY, TARGET, legacy, euro, {"10": "7"})
    [difference] = report.differences
    assert "USD against EUR: compare by hand" in difference.message
    assert difference.amount is None
