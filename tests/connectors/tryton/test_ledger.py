"""ArLedgerPort and JournalPort against a real Tryton: post, replay, pay, journal."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from q2c.canonical.models import TaxCode
from q2c.connectors.tryton.adapter import TrytonErp
from q2c.connectors.tryton.rpc import TrytonRpc
from q2c.errors import ValidationError
from q2c.flows.ports import ErpCustomer, JournalLine, JournalRequest
from tests.connectors.tryton.helpers import (
    TODAY,
    canonical_invoice,
    new_customer,
    payment,
    posting_refs,
    priced,
    usd,
)

pytestmark = pytest.mark.integration


def _post(erp: TrytonErp, customer: ErpCustomer, uid: str, *lines: tuple[str, str, str, str]):
    invoice = canonical_invoice(erp, uid, [priced(*line) for line in lines])
    ref = erp.upsert_invoice(
        invoice, external_id=f"q2c-inv-{uid}", refs=posting_refs(erp, customer)
    )
    return invoice, ref


def test_posted_invoice_has_the_canonical_amounts(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    customer = new_customer(erp, uid)
    invoice, ref = _post(
        erp, customer, uid,
        ("CONSULTING-HOUR", "12.5", "150.00", "US-SALES-10"),
        ("TRAVEL", "3", "33.33", "US-SALES-10"),
        ("PM-HOUR", "2.25", "120.00", "US-EXEMPT"),
    )  # fmt: skip
    assert invoice.subtotal == usd("2244.99") and invoice.tax_total == usd("197.50")
    (row,) = admin.read(
        "account.invoice",
        [int(ref.erp_id)],
        ["state", "number", "untaxed_amount", "tax_amount", "total_amount", "amount_to_pay"],
    )
    assert row["state"] == "posted"
    assert row["number"] == ref.number and ref.number.startswith(f"INV/{TODAY.year}/")
    assert row["untaxed_amount"] == invoice.subtotal.amount
    assert row["tax_amount"] == invoice.tax_total.amount
    assert row["total_amount"] == invoice.total.amount
    read = erp.read_invoice(ref.erp_id)
    assert (read.subtotal, read.tax_total, read.total) == (
        invoice.subtotal,
        invoice.tax_total,
        invoice.total,
    )
    assert read.amount_remaining == invoice.total
    assert read.external_id == f"q2c-inv-{uid}" and read.status == "posted"
    assert [x.amount for x in read.lines] == [x.amount for x in invoice.lines]
    assert [x.tax_amount for x in read.lines] == [x.tax_amount for x in invoice.lines]


def test_replayed_posting_never_creates_a_second_invoice(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    customer = new_customer(erp, uid)
    invoice, first = _post(erp, customer, uid, ("CONSULTING-HOUR", "8", "150.00", "US-SALES-10"))
    again = erp.upsert_invoice(
        invoice, external_id=f"q2c-inv-{uid}", refs=posting_refs(erp, customer)
    )
    assert again == first
    found = admin.search("account.invoice", [["reference", "=", f"q2c-inv-{uid}"]])
    assert found == [int(first.erp_id)]


def test_disagreeing_totals_leave_a_draft_that_a_replay_replaces(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    customer = new_customer(erp, uid)
    wrong_rate = [
        TaxCode(code="US-SALES-10", name="stale", rate=Decimal("0.19"), jurisdiction="US")
    ]
    stale = canonical_invoice(erp, uid, [priced("CONSULTING-HOUR", "4", "150.00", "US-SALES-10")],
                              codes=wrong_rate)  # fmt: skip
    refs = posting_refs(erp, customer)
    with pytest.raises(ValidationError) as info:
        erp.upsert_invoice(stale, external_id=f"q2c-inv-{uid}", refs=refs)
    assert "tax 60.00 in Tryton vs 114.00 in q2c" in info.value.message
    drafts = admin.search_read("account.invoice", [["reference", "=", f"q2c-inv-{uid}"]], ["state"])
    assert [d["state"] for d in drafts] == ["draft"]
    fixed = canonical_invoice(erp, uid, [priced("CONSULTING-HOUR", "4", "150.00", "US-SALES-10")])
    ref = erp.upsert_invoice(fixed, external_id=f"q2c-inv-{uid}", refs=refs)
    invoices = admin.search_read(
        "account.invoice", [["reference", "=", f"q2c-inv-{uid}"]], ["state", "total_amount"]
    )
    assert [(i["id"], i["state"], i["total_amount"]) for i in invoices] == [
        (int(ref.erp_id), "posted", Decimal("660.00"))
    ]


def _receivable(admin: TrytonRpc, customer: ErpCustomer) -> Decimal:
    (row,) = admin.read("party.party", [int(customer.erp_id)], ["receivable"])
    return Decimal(row["receivable"])


def test_partial_then_full_payment_with_unapplied_credit(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    customer = new_customer(erp, uid)
    a_invoice, a = _post(
        erp, customer, f"{uid}a", ("CONSULTING-HOUR", "10", "100.00", "US-SALES-10")
    )
    b_invoice, b = _post(erp, customer, f"{uid}b", ("PM-HOUR", "5", "100.00", "US-EXEMPT"))
    assert (a_invoice.total, b_invoice.total) == (usd("1100.00"), usd("500.00"))
    assert _receivable(admin, customer) == Decimal("1600.00")
    kwargs = {"customer_erp_id": customer.erp_id, "subsidiary": "", "currency_erp_id": "1"}

    partial = erp.apply_payment(
        payment(f"{uid}1", "600.00"), external_id=f"q2c-pay-{uid}-1",
        applications=[(a.erp_id, usd("600.00"))], **kwargs,
    )  # fmt: skip
    assert (partial.applied, partial.unapplied) == (usd("600.00"), usd("0.00"))
    assert erp.read_invoice(a.erp_id).amount_remaining == usd("500.00")
    assert erp.read_invoice(a.erp_id).status == "posted"
    assert _receivable(admin, customer) == Decimal("1000.00")  # open 1600 - applied 600

    full = erp.apply_payment(
        payment(f"{uid}2", "1100.00"), external_id=f"q2c-pay-{uid}-2",
        applications=[(a.erp_id, usd("500.00")), (b.erp_id, usd("500.00"))], **kwargs,
    )  # fmt: skip
    assert (full.applied, full.unapplied) == (usd("1000.00"), usd("100.00"))
    for ref in (a, b):
        read = erp.read_invoice(ref.erp_id)
        assert (read.status, read.amount_remaining) == ("paid", usd("0.00"))
    # open invoices 0 - unapplied credit 100, read from Tryton's books
    assert _receivable(admin, customer) == Decimal("-100.00")
    assert erp.receivable_balance(customer.erp_id) == usd("-100.00")
    credit = admin.search_read(
        "account.move.line",
        [["party", "=", int(customer.erp_id)], ["reconciliation", "=", None],
         ["credit", ">", 0]],
        ["credit", "account.code"],
    )  # fmt: skip
    assert [(c["credit"], c["account."]["code"]) for c in credit] == [(Decimal("100.00"), "1.2.1")]

    moves_before = admin.search_count("account.move", [])
    replay = erp.apply_payment(
        payment(f"{uid}2", "1100.00"), external_id=f"q2c-pay-{uid}-2",
        applications=[(a.erp_id, usd("500.00")), (b.erp_id, usd("500.00"))], **kwargs,
    )  # fmt: skip
    assert replay == full
    assert len(replay.erp_id.split(",")) == 3  # two wizard payments + the credit
    assert admin.search_count("account.move", []) == moves_before
    assert _receivable(admin, customer) == Decimal("-100.00")


def test_application_above_the_amount_to_pay_is_refused(erp: TrytonErp, uid: str) -> None:
    customer = new_customer(erp, uid)
    _, ref = _post(erp, customer, uid, ("PM-HOUR", "1", "100.00", "US-EXEMPT"))
    with pytest.raises(ValidationError) as info:
        erp.apply_payment(
            payment(uid, "150.00"), external_id=f"q2c-pay-{uid}",
            customer_erp_id=customer.erp_id, subsidiary="", currency_erp_id="1",
            applications=[(ref.erp_id, usd("150.00"))],
        )  # fmt: skip
    assert "exceeds invoice" in info.value.message
    assert erp.read_invoice(ref.erp_id).amount_remaining == usd("100.00")


def _journal(erp: TrytonErp, memo: str, debit: str, credit: str) -> JournalRequest:
    accounts = {
        row["code"]: str(row["id"])
        for row in erp.rpc.search_read(
            "account.account", [["code", "in", ["1.1.1", "3.1.1"]]], ["code"]
        )
    }
    return JournalRequest(
        subsidiary="",
        currency_erp_id="1",
        posting_date=TODAY,
        memo=memo,
        lines=[
            JournalLine(account=accounts["1.1.1"], debit=usd(debit), memo="cash in"),
            JournalLine(account=accounts["3.1.1"], credit=usd(credit), memo="capital"),
        ],
    )


def test_journal_entry_is_posted_balanced_and_once(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    request = _journal(erp, f"Capital injection {uid}", "2500.00", "2500.00")
    first = erp.post_journal(request, external_id=f"q2c-je-{uid}")
    again = erp.post_journal(request, external_id=f"q2c-je-{uid}")
    assert again == first
    (move,) = admin.read("account.move", [int(first.erp_id)], ["state", "lines", "description"])
    assert move["state"] == "posted"
    assert move["description"] == f"Capital injection {uid} [q2c-je-{uid}]"
    lines = admin.read("account.move.line", move["lines"], ["debit", "credit"])
    assert sum(x["debit"] for x in lines) == sum(x["credit"] for x in lines) == Decimal("2500.00")
    assert admin.search("account.move", [["description", "like", f"%[q2c-je-{uid}]"]]) == [
        int(first.erp_id)
    ]


def test_unbalanced_journal_entry_creates_nothing(
    erp: TrytonErp, admin: TrytonRpc, uid: str
) -> None:
    with pytest.raises(ValidationError) as info:
        erp.post_journal(
            _journal(erp, f"Bad {uid}", "100.00", "99.99"), external_id=f"q2c-je-{uid}"
        )
    assert "out of balance" in info.value.message
    assert admin.search("account.move", [["description", "like", f"%q2c-je-{uid}%"]]) == []


def test_reference_data(erp: TrytonErp) -> None:
    currencies = erp.currencies()
    assert set(currencies) >= {"USD", "EUR", "GBP"}
    rates = {r.quote: r for r in erp.exchange_rates(TODAY)}
    assert rates["EUR"].base == "USD" and rates["EUR"].rate == Decimal("0.92")
    assert erp.exchange_rates(dt.date(1990, 1, 1)) == []
    codes = {c.code: c for c in erp.tax_codes()}
    assert codes["US-SALES-10"].rate == Decimal("0.10")
    assert codes["US-EXEMPT"].rate == Decimal(0)
    assert codes["US-SALES-10"].jurisdiction == "US"
    items = {i.code: i for i in erp.items()}
    assert (items["CONSULTING-HOUR"].unit, items["CONSULTING-HOUR"].kind) == ("hour", "service")
    assert items["CONSULTING-HOUR"].income_account == "4.1.2"
    assert items["TRAVEL"].unit == "unit"
