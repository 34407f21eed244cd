"""SuiteQL against the emulator: real SQL over the record mirror, paged like NetSuite."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx
import pytest

from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from tests.connectors.netsuite.helpers import error_of

SUITEQL = "/services/rest/query/v1/suiteql"
Ids = dict[str, dict[str, str]]


def suiteql(api: httpx.Client, q: str, *, prefer: bool = True, **params: Any) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if prefer:
        headers["Prefer"] = "transient"
    return api.post(SUITEQL, content=wire.dumps({"q": q}), headers=headers, params=params)


@pytest.fixture
def customers(sandbox: NetSuiteSandbox, ids: Ids) -> list[str]:
    us, de = ids["subsidiaries"]["US01"], ids["subsidiaries"]["DE01"]
    eur = ids["currencies"]["EUR"]
    made = []
    for n in range(25):
        fields: dict[str, Any] = {
            "companyName": f"Customer {n:02d}",
            "subsidiary": {"id": de if n % 5 == 0 else us},
            "creditLimit": Decimal(f"{n}000.5"),
        }
        if n % 5 == 0:
            fields["currency"] = {"id": eur}
        made.append(sandbox.state.insert("customer", fields))
    return made


def test_pages_follow_next_links(api: httpx.Client, customers: list[str]) -> None:
    first = suiteql(api, "SELECT id, companyname FROM customer ORDER BY id", limit=10).json()
    assert (first["count"], first["hasMore"], first["offset"], first["totalResults"]) == (
        10,
        True,
        0,
        25,
    )
    rows = list(first["items"])
    page = first
    while page["hasMore"]:
        nxt = next(ln["href"] for ln in page["links"] if ln["rel"] == "next")
        page = api.post(
            nxt,
            content=wire.dumps({"q": "SELECT id, companyname FROM customer ORDER BY id"}),
            headers={"Prefer": "transient"},
        ).json()
        rows += page["items"]
    assert [r["id"] for r in rows] == customers
    assert page["count"] == 5
    assert not any(ln["rel"] == "next" for ln in page["links"])


def test_rows_look_like_netsuite_rows(api: httpx.Client, customers: list[str]) -> None:
    body = suiteql(
        api,
        "SELECT id, companyName, creditlimit, currency, isinactive, datecreated "
        "FROM customer WHERE id = " + customers[1],
    ).json()
    (row,) = body["items"]
    assert row["links"] == []
    assert row["id"] == customers[1]  # every value is a string
    assert row["companyname"] == "Customer 01"  # column names come back lowercase
    assert row["creditlimit"] == "1000.5"
    assert row["isinactive"] == "F"
    assert "currency" not in row  # nulls are left out
    month, day, year = row["datecreated"].split("/")  # M/D/YYYY
    assert len(year) == 4 and 1 <= int(month) <= 12 and 1 <= int(day) <= 31


def test_real_sql_works(api: httpx.Client, customers: list[str], ids: Ids) -> None:
    q = (
        "SELECT s.name AS subsidiary, COUNT(*) AS n, SUM(c.creditlimit) AS credit "
        "FROM customer c JOIN subsidiary s ON s.id = c.subsidiary "
        "WHERE UPPER(c.companyname) LIKE 'CUSTOMER 1%' GROUP BY s.name ORDER BY n DESC"
    )
    rows = suiteql(api, q).json()["items"]
    assert [(r["subsidiary"], r["n"], r["credit"]) for r in rows] == [
        ("Acme Consulting US Inc.", "8", "120004"),
        ("Acme Consulting GmbH", "2", "25001"),
    ]
    eur = suiteql(
        api,
        "SELECT c.id FROM customer c LEFT JOIN currency cur ON cur.id = c.currency"
        " WHERE cur.symbol = 'EUR' ORDER BY c.id DESC",
    ).json()["items"]
    assert [r["id"] for r in eur] == customers[::5][::-1]


def test_sales_orders_are_transactions(
    api: httpx.Client, sandbox: NetSuiteSandbox, ids: Ids
) -> None:
    customer_id = sandbox.state.insert(
        "customer", {"companyName": "Initech", "subsidiary": {"id": ids["subsidiaries"]["US01"]}}
    )
    item = ids["items"]["CONSULTING-HOUR"]
    sandbox.state.insert(
        "salesOrder",
        {
            "entity": {"id": customer_id},
            "department": {"id": ids["departments"]["Advisory"]},
            "item": {
                "items": [{"item": {"id": item}, "quantity": 2, "rate": wire.loads("150.25")}]
            },
        },
    )
    q = (
        "SELECT t.tranid, t.type, t.foreigntotal, tl.mainline, tl.department, tl.item "
        "FROM transaction t JOIN transactionline tl ON tl.transaction = t.id "
        "WHERE t.type = 'SalesOrd' ORDER BY tl.linesequencenumber"
    )
    rows = [{k: v for k, v in r.items() if k != "links"} for r in suiteql(api, q).json()["items"]]
    assert rows == [
        {
            "tranid": "SO-01001",
            "type": "SalesOrd",
            "foreigntotal": "300.5",
            "mainline": "T",
            "department": ids["departments"]["Advisory"],
        },
        {
            "tranid": "SO-01001",
            "type": "SalesOrd",
            "foreigntotal": "300.5",
            "mainline": "F",
            "item": item,
        },
    ]


@pytest.mark.parametrize(
    "q",
    [
        "DELETE FROM customer",
        "UPDATE customer SET companyname = 'x'",
        "INSERT INTO customer (id) VALUES (1)",
        "DROP TABLE customer",
        "SELECT id FROM customer; DELETE FROM customer",
        "CREATE TABLE evil AS SELECT * FROM customer",
        "ATTACH 'other.db'",
        "SET lock_configuration = false",
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT id FROM nowhere",
        "SELEC id FROM customer",
        "",
    ],
)
def test_only_a_single_select_runs(api: httpx.Client, customers: list[str], q: str) -> None:
    response = suiteql(api, q)
    assert response.status_code == 400
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"
    assert detail["detail"].startswith("Invalid search query.")
    total = suiteql(api, "SELECT COUNT(*) AS n FROM customer").json()["items"][0]["n"]
    assert total == "25"


def test_suiteql_needs_prefer_transient(api: httpx.Client) -> None:
    detail = error_of(suiteql(api, "SELECT id FROM currency", prefer=False))
    assert detail["o:errorCode"] == "INVALID_HEADER"
    assert detail["o:errorHeader"] == "Prefer"


def test_suiteql_page_size_is_capped(api: httpx.Client) -> None:
    detail = error_of(suiteql(api, "SELECT id FROM currency", limit=1001))
    assert detail["o:errorQueryParam"] == "limit"
    assert suiteql(api, "SELECT id FROM currency", limit=1000).status_code == 200


def test_suiteql_nvl_and_default_page(api: httpx.Client, customers: list[str]) -> None:
    body = suiteql(api, "SELECT NVL(currency, 0) AS c FROM customer").json()
    assert body["count"] == 25 and not body["hasMore"]
    assert {r["c"] for r in body["items"]} == {"0", "2"}
