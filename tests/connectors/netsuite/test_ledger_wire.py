"""The emulated record service for invoices, customer payments and journal entries, at the
wire: what NetSuite's REST web services compute, answer and refuse."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.sandbox import Fault
from q2c.errors import RateLimitedError, RetriableError
from tests.connectors.netsuite.helpers import error_of

RECORDS = "/services/rest/record/v1"
Ids = dict[str, dict[str, str]]


def send(api: httpx.Client, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    content = wire.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if content else {}
    return api.request(method, f"{RECORDS}/{path}", content=content, headers=headers, **kw)


def get(api: httpx.Client, path: str) -> Any:
    """A record as NetSuite sends it, amounts as exact Decimals."""
    response = send(api, "GET", path)
    assert response.status_code == 200, response.text
    return wire.loads(response.content)


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 204, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


@pytest.fixture
def customer(sandbox: NetSuiteSandbox, ledger: Ids) -> str:
    return sandbox.state.insert(
        "customer",
        {
            "companyName": "Globex GmbH",
            "subsidiary": {"id": ledger["subsidiaries"]["DE01"]},
            "currency": {"id": ledger["currencies"]["EUR"]},
        },
    )


def invoice(ledger: Ids, customer: str, *amounts: str, code: str = "DE-VAT-19") -> dict[str, Any]:
    return {
        "entity": {"id": customer},
        "tranDate": "2025-03-31",
        "item": {
            "items": [
                {
                    "item": {"id": ledger["items"]["SERVICES"]},
                    "amount": Decimal(amount),
                    "taxCode": {"id": ledger["tax_codes"][code]},
                }
                for amount in amounts
            ]
        },
    }


def payment(customer: str, amount: str, *lines: dict[str, Any]) -> dict[str, Any]:
    return {"customer": {"id": customer}, "payment": Decimal(amount), "apply": {"items": lines}}


def apply(invoice_id: str, amount: str | None = None) -> dict[str, Any]:
    line: dict[str, Any] = {"doc": {"id": invoice_id}, "apply": True}
    if amount is not None:
        line["amount"] = Decimal(amount)
    return line


def test_invoice_reads_back_as_netsuite_computed_it(
    api: httpx.Client, ledger: Ids, customer: str
) -> None:
    response = send(api, "POST", "invoice", invoice(ledger, customer, "100.00", "1.50"))
    invoice_id = created_id(response)
    body = get(api, f"invoice/{invoice_id}")
    assert body["tranId"] == "INV-10001"
    assert body["status"] == {"id": "A", "refName": "Open"}
    assert (body["subtotal"], body["taxTotal"], body["total"], body["amountRemaining"]) == (
        Decimal("101.50"),
        Decimal("19.29"),  # 19.00 + 0.285 rounded half-up to 0.29
        Decimal("120.79"),
        Decimal("120.79"),
    )
    assert body["currency"]["refName"] == "Euro"  # sourced from the customer
    assert body["subsidiary"]["id"] == ledger["subsidiaries"]["DE01"]
    assert body["item"] == {
        "links": [{"rel": "self", "href": f"{response.headers['Location']}/item"}]
    }
    lines = get(api, f"invoice/{invoice_id}?expandSubResources=true")["item"]["items"]
    assert [(ln["line"], ln["taxRate1"], ln["tax1Amt"]) for ln in lines] == [
        (1, 19, Decimal("19.00")),
        (2, 19, Decimal("0.29")),
    ]
    assert lines[0]["taxCode"]["refName"] == "DE-VAT-19"


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        ({"item": {"items": []}}, "USER_ERROR", "Please enter value(s) for: Customer"),
        ("no lines", "USER_ERROR", "You must enter at least one line item"),
        ("rate only", "USER_ERROR", "Please enter value(s) for: Amount"),
    ],
)
def test_invoice_needs_a_customer_and_lines(
    api: httpx.Client, ledger: Ids, customer: str, body: Any, code: str, text: str
) -> None:
    if body == "no lines":
        body = {"entity": {"id": customer}}
    elif body == "rate only":
        body = invoice(ledger, customer, "1.00")
        del body["item"]["items"][0]["amount"]
    detail = error_of(send(api, "POST", "invoice", body))
    assert detail["o:errorCode"] == code
    assert text in detail["detail"]


def test_payments_settle_invoices_and_release_them_when_deleted(
    api: httpx.Client, sandbox: NetSuiteSandbox, ledger: Ids, customer: str
) -> None:
    first = created_id(send(api, "POST", "invoice", invoice(ledger, customer, "100.00")))
    second = created_id(send(api, "POST", "invoice", invoice(ledger, customer, "50.00")))
    # no amount: NetSuite applies what is due, as far as the payment goes
    made = send(
        api, "POST", "customerPayment", payment(customer, "150.00", apply(first), apply(second))
    )
    payment_id = created_id(made)
    paid = get(api, f"customerPayment/{payment_id}?expandSubResources=true")
    assert [ln["amount"] for ln in paid["apply"]["items"]] == [Decimal("119.00"), Decimal("31.00")]
    assert (paid["applied"], paid["unapplied"]) == (Decimal("150.00"), Decimal("0.00"))
    assert get(api, f"invoice/{first}")["status"]["refName"] == "Paid In Full"
    assert get(api, f"invoice/{second}")["amountRemaining"] == Decimal("28.50")

    refused = error_of(send(api, "DELETE", f"invoice/{first}"))
    assert "dependent records" in refused["detail"]
    assert send(api, "DELETE", f"customerPayment/{payment_id}").status_code == 204
    assert get(api, f"invoice/{first}")["amountRemaining"] == Decimal("119.00")
    assert get(api, f"invoice/{first}")["status"]["refName"] == "Open"


def test_over_application_is_a_field_range_error(
    api: httpx.Client, ledger: Ids, customer: str
) -> None:
    invoice_id = created_id(send(api, "POST", "invoice", invoice(ledger, customer, "100.00")))
    response = send(
        api, "POST", "customerPayment", payment(customer, "200.00", apply(invoice_id, "119.01"))
    )
    assert response.status_code == 400
    detail = error_of(response)
    assert detail == {
        "detail": "Value 119.01 outside of valid min/max range for field amount",
        "o:errorCode": "INVALID_FLD_VALUE",
        "o:errorPath": "apply.items[0].amount",
    }
    zero = error_of(send(api, "POST", "customerPayment", payment(customer, "0")))
    assert zero["detail"] == "Value 0 outside of valid min/max range for field payment"


def test_apply_lines_are_keyed_by_invoice(api: httpx.Client, ledger: Ids, customer: str) -> None:
    invoice_id = created_id(send(api, "POST", "invoice", invoice(ledger, customer, "100.00")))
    body = payment(customer, "100.00", apply(invoice_id, "10.00"), apply(invoice_id, "60.00"))
    payment_id = created_id(send(api, "POST", "customerPayment", body))
    stored = get(api, f"customerPayment/{payment_id}?expandSubResources=true")
    assert [ln["amount"] for ln in stored["apply"]["items"]] == [Decimal("60.00")]
    assert stored["unapplied"] == Decimal("40.00")
    assert get(api, f"invoice/{invoice_id}")["amountRemaining"] == Decimal("59.00")


def test_invoice_cannot_drop_below_what_was_paid(
    api: httpx.Client, ledger: Ids, customer: str
) -> None:
    invoice_id = created_id(send(api, "POST", "invoice", invoice(ledger, customer, "100.00")))
    created_id(send(api, "POST", "customerPayment", payment(customer, "119.00", apply(invoice_id))))
    smaller = invoice(ledger, customer, "50.00")
    detail = error_of(send(api, "PATCH", f"invoice/{invoice_id}?replace=item", smaller))
    assert detail["o:errorCode"] == "USER_ERROR"
    assert "less than the 119 already applied" in detail["detail"]


@pytest.mark.parametrize(
    ("lines", "code", "path"),
    [
        ([("4000", "100.00", None), ("2400", None, "99.00")], "TRANS_UNBALNCD", "line"),
        ([("4000", "100.00", "100.00")], "USER_ERROR", "line.items[0]"),
        ([("4000", None, None)], "USER_ERROR", "line.items[0]"),
        ([("4000", "-5", None), ("2400", None, "-5")], "INVALID_FLD_VALUE", "line.items[0].debit"),
    ],
)
def test_journal_entry_rules(
    api: httpx.Client,
    ledger: Ids,
    lines: list[tuple[str, str | None, str | None]],
    code: str,
    path: str,
) -> None:
    accounts = {
        "4000": ledger["accounts"]["REVENUE"],
        "2400": ledger["accounts"]["DEFERRED_REVENUE"],
    }
    items = []
    for account, debit, credit in lines:
        line: dict[str, Any] = {"account": {"id": accounts[account]}}
        if debit is not None:
            line["debit"] = Decimal(debit)
        if credit is not None:
            line["credit"] = Decimal(credit)
        items.append(line)
    body = {"subsidiary": {"id": ledger["subsidiaries"]["US01"]}, "line": {"items": items}}
    detail = error_of(send(api, "POST", "journalEntry", body))
    assert (detail["o:errorCode"], detail.get("o:errorPath")) == (code, path)


def test_journal_entry_takes_the_subsidiarys_currency(api: httpx.Client, ledger: Ids) -> None:
    body = {
        "subsidiary": {"id": ledger["subsidiaries"]["DE01"]},
        "line": {
            "items": [
                {"account": {"id": ledger["accounts"]["UNBILLED"]}, "debit": Decimal("10.004")},
                {"account": {"id": ledger["accounts"]["REVENUE"]}, "credit": Decimal("10")},
            ]
        },
    }
    journal = get(api, f"journalEntry/{created_id(send(api, 'POST', 'journalEntry', body))}")
    assert journal["total"] == Decimal("10.00")  # debit 10.004 kept at cents: balanced
    assert journal["currency"]["refName"] == "Euro"
    assert journal["tranId"] == "JE-10001"
    assert journal["approved"] is True


def test_faults_reach_the_ledger_paths(
    sandbox: NetSuiteSandbox, ledger: Ids, customer: str
) -> None:
    erp = sandbox.erp_tba()
    invoice_id = sandbox.state.insert("invoice", invoice(ledger, customer, "10.00"))
    sandbox.faults.inject(Fault("server_error", status=503, path=f"{RECORDS}/invoice/*"))
    with pytest.raises(RetriableError):
        erp.read_invoice(invoice_id)
    sandbox.faults.inject(Fault("rate_limit", retry_after=3, path=f"{RECORDS}/customerPayment/*"))
    with pytest.raises(RateLimitedError) as info:
        erp.read_record("customerPayment", "1")
    assert info.value.retry_after == 3
    assert erp.read_invoice(invoice_id).total.amount == Decimal("11.90")
