"""The emulated record service, at the wire: what NetSuite's REST web services answer."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx
import pytest

from q2c.connectors.netsuite import wire
from q2c.connectors.netsuite.sandbox import NetSuiteSandbox
from q2c.connectors.sandbox import Fault
from tests.connectors.netsuite.helpers import error_of

RECORDS = "/services/rest/record/v1"
Ids = dict[str, dict[str, str]]


def send(api: httpx.Client, method: str, path: str, body: Any = None, **kw: Any) -> httpx.Response:
    content = wire.dumps(body) if body is not None else None
    headers = {"Content-Type": "application/json"} if content else {}
    return api.request(method, f"{RECORDS}/{path}", content=content, headers=headers, **kw)


def customer(ids: Ids, **fields: Any) -> dict[str, Any]:
    return {
        "companyName": "Globex Corporation",
        "subsidiary": {"id": ids["subsidiaries"]["US01"]},
        **fields,
    }


def sales_order(ids: Ids, customer_id: str, *lines: dict[str, Any]) -> dict[str, Any]:
    return {
        "entity": {"id": customer_id},
        "subsidiary": {"id": ids["subsidiaries"]["US01"]},
        "item": {"items": list(lines)},
    }


def line(ids: Ids, item: str = "CONSULTING-HOUR", **fields: Any) -> dict[str, Any]:
    return {"item": {"id": ids["items"][item]}, "quantity": 1, "rate": Decimal("100.00"), **fields}


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 204, response.text
    assert response.content == b""
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_create_answers_204_with_location(api: httpx.Client, ids: Ids) -> None:
    response = send(api, "POST", "customer", customer(ids))
    record_id = created_id(response)
    assert response.headers["Location"] == (
        f"https://1234567-sb1.suitetalk.api.netsuite.com{RECORDS}/customer/{record_id}"
    )
    record = send(api, "GET", f"customer/{record_id}").json()
    assert record["links"] == [{"rel": "self", "href": response.headers["Location"]}]
    assert record["id"] == record_id
    assert record["entityId"] == "CUST-01001"  # auto-numbered
    assert record["subsidiary"]["refName"] == "Acme Consulting US Inc."
    assert record["subsidiary"]["links"][0]["href"].endswith(
        f"/subsidiary/{ids['subsidiaries']['US01']}"
    )
    assert record["dateCreated"].endswith("Z")


def test_select_fields_read_back_with_refname(api: httpx.Client, ids: Ids) -> None:
    record_id = created_id(send(api, "POST", "customer", customer(ids, creditHoldOverride="ON")))
    record = send(api, "GET", f"customer/{record_id}").json()
    assert record["creditHoldOverride"] == {"id": "ON", "refName": "On"}
    bad = send(api, "PATCH", f"customer/{record_id}", {"creditHoldOverride": {"id": "MAYBE"}})
    assert error_of(bad)["o:errorCode"] == "INVALID_VALUE"


def test_duplicate_external_id_on_post_is_refused(api: httpx.Client, ids: Ids) -> None:
    created_id(send(api, "POST", "customer", customer(ids, externalId="crm-1")))
    again = send(api, "POST", "customer", customer(ids, externalId="crm-1"))
    assert again.status_code == 400
    assert error_of(again)["o:errorCode"] == "DUP_ENTITY"


def test_duplicate_customer_number_is_refused(api: httpx.Client, ids: Ids) -> None:
    created_id(send(api, "POST", "customer", customer(ids, entityId="C-42")))
    again = send(api, "POST", "customer", customer(ids, entityId="C-42"))
    assert error_of(again)["o:errorCode"] == "UNIQUE_CUST_ID_REQD"


def test_upsert_by_external_id_creates_then_updates(
    api: httpx.Client, ids: Ids, sandbox: NetSuiteSandbox
) -> None:
    first = created_id(send(api, "PUT", "customer/eid:crm-7", customer(ids)))
    second = created_id(
        send(api, "PUT", "customer/eid:crm-7", {"companyName": "Globex Corp (renamed)"})
    )
    assert first == second
    assert sandbox.state.count("customer", external_id="crm-7") == 1
    record = send(api, "GET", "customer/eid:crm-7").json()
    assert record["companyName"] == "Globex Corp (renamed)"
    assert record["externalId"] == "crm-7"
    assert record["subsidiary"]["id"] == ids["subsidiaries"]["US01"]  # untouched fields stay


def test_external_ids_with_reserved_characters(api: httpx.Client, ids: Ids) -> None:
    record_id = created_id(send(api, "PUT", "customer/eid:crm%2F7%20a", customer(ids)))
    assert send(api, "GET", "customer/eid:crm%2F7%20a").json()["id"] == record_id
    assert send(api, "GET", f"customer/{record_id}").json()["externalId"] == "crm/7 a"


def test_put_needs_an_external_id(api: httpx.Client, ids: Ids) -> None:
    record_id = created_id(send(api, "POST", "customer", customer(ids)))
    response = send(api, "PUT", f"customer/{record_id}", customer(ids))
    assert response.status_code == 405


def test_patch_merges_and_null_clears(api: httpx.Client, ids: Ids) -> None:
    record_id = created_id(
        send(api, "POST", "customer", customer(ids, email="ap@globex.test", phone="+1 555 0100"))
    )
    created_id(send(api, "PATCH", f"customer/{record_id}", {"email": None, "phone": "+1 555 0199"}))
    record = send(api, "GET", f"customer/{record_id}").json()
    assert "email" not in record
    assert record["phone"] == "+1 555 0199"
    assert record["companyName"] == "Globex Corporation"


def test_sublist_lines_append_unless_replaced(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    order = sales_order(ids, customer_id, line(ids))
    order_id = created_id(send(api, "PUT", "salesOrder/eid:so-1", order))
    created_id(send(api, "PUT", "salesOrder/eid:so-1", order))
    expanded = {"expandSubResources": "true"}
    lines = send(api, "GET", f"salesOrder/{order_id}", params=expanded).json()["item"]["items"]
    assert len(lines) == 2  # NetSuite appends non-keyed lines: the trap ?replace= avoids
    created_id(send(api, "PUT", "salesOrder/eid:so-1", order, params={"replace": "item"}))
    record = send(api, "GET", f"salesOrder/{order_id}", params=expanded).json()
    assert [ln["line"] for ln in record["item"]["items"]] == [1]
    assert record["total"] == 100


def test_keyed_line_is_updated_in_place(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    order_id = created_id(
        send(
            api,
            "POST",
            "salesOrder",
            sales_order(ids, customer_id, line(ids), line(ids, "PM-HOUR")),
        )
    )
    created_id(
        send(
            api,
            "PATCH",
            f"salesOrder/{order_id}",
            {"item": {"items": [{"line": 2, "quantity": 3}]}},
        )
    )
    sublist = send(api, "GET", f"salesOrder/{order_id}/item").json()
    assert [(ln["line"], ln["quantity"]) for ln in sublist["items"]] == [(1, 1), (2, 3)]


def test_sublists_are_links_unless_expanded(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    order_id = created_id(send(api, "POST", "salesOrder", sales_order(ids, customer_id, line(ids))))
    plain = send(api, "GET", f"salesOrder/{order_id}").json()
    assert plain["item"] == {
        "links": [{"rel": "self", "href": plain["links"][0]["href"] + "/item"}]
    }
    expanded = send(
        api, "GET", f"salesOrder/{order_id}", params={"expandSubResources": "true"}
    ).json()
    first = expanded["item"]["items"][0]
    assert first["item"]["refName"] == "CONSULTING-HOUR"
    assert first["amount"] == 100  # computed from quantity x rate
    assert expanded["tranId"] == "SO-01001"


def test_invalid_reference_names_the_field(api: httpx.Client, ids: Ids) -> None:
    body = customer(ids)
    job = {"companyName": "Rollout", "parent": {"id": "999"}, "department": {"id": "31337"}}
    customer_id = created_id(send(api, "POST", "customer", body))
    job["parent"] = {"id": customer_id}
    response = send(api, "POST", "job", job)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/vnd.oracle.resource+json")
    assert response.json()["type"] == "https://www.rfc-editor.org/rfc/rfc9110.html#section-15.5.1"
    detail = error_of(response)
    assert detail == {
        "detail": "Invalid value for the resource or sub-resource field 'department'. "
        "Provide a valid value.",
        "o:errorCode": "INVALID_VALUE",
        "o:errorPath": "department",
    }


def test_reference_to_a_record_of_the_wrong_type_is_invalid(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    wrong = customer(ids, subsidiary={"id": customer_id})  # a customer is no subsidiary
    assert error_of(send(api, "POST", "customer", wrong))["o:errorPath"] == "subsidiary"


def test_reference_by_external_id(api: httpx.Client, ids: Ids) -> None:
    body = customer(ids, subsidiary={"externalId": "DE01"}, currency={"externalId": "EUR"})
    record = send(api, "GET", f"customer/{created_id(send(api, 'POST', 'customer', body))}").json()
    assert record["subsidiary"]["id"] == ids["subsidiaries"]["DE01"]
    assert record["currency"]["refName"] == "Euro"


def test_invalid_line_item_points_into_the_sublist(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    order = sales_order(ids, customer_id, line(ids), {"item": {"id": 9999}, "amount": 1})
    detail = error_of(send(api, "POST", "salesOrder", order))
    assert detail["o:errorCode"] == "INVALID_CONTENT"
    assert detail["o:errorPath"] == "item.items[1].item"
    assert "Invalid Field Value 9999" in detail["detail"]


@pytest.mark.parametrize(
    ("path", "body", "code", "text"),
    [
        (
            "customer",
            {"subsidiary": {"id": "1"}},
            "USER_ERROR",
            "Please enter value(s) for: Company Name",
        ),
        ("customer", {"companyName": "X"}, "USER_ERROR", "Primary Subsidiary"),
        (
            "customer",
            {"companyName": "X", "subsidiary": {"id": "1"}, "colour": "red"},
            "INVALID_CONTENT",
            "'colour'",
        ),
        (
            "customer",
            {"companyName": 42, "subsidiary": {"id": "1"}},
            "INVALID_VALUE",
            "companyName",
        ),
        (
            "customer",
            {"companyName": "X", "subsidiary": {"id": "1"}, "creditLimit": "lots"},
            "INVALID_VALUE",
            "creditLimit",
        ),
        (
            "job",
            {"companyName": "X", "parent": {"id": "1001"}, "startDate": "31/01/2025"},
            "INVALID_VALUE",
            "startDate",
        ),
        ("salesOrder", {"entity": {"id": "1001"}}, "USER_ERROR", "at least one line item"),
        (
            "salesOrder",
            {"entity": {"id": "1001"}, "item": [{"item": {"id": "201"}}]},
            "INVALID_CONTENT",
            "items",
        ),
    ],
    ids=[
        "no-name",
        "no-subsidiary",
        "unknown-field",
        "not-text",
        "not-number",
        "bad-date",
        "no-lines",
        "sublist-shape",
    ],
)
def test_body_errors(
    api: httpx.Client, ids: Ids, path: str, body: dict[str, Any], code: str, text: str
) -> None:
    created_id(send(api, "POST", "customer", customer(ids)))  # internal id 1001
    response = send(api, "POST", path, body)
    assert response.status_code == 400
    detail = error_of(response)
    assert detail["o:errorCode"] == code
    assert text in detail["detail"]


def test_malformed_json_is_invalid_content(api: httpx.Client) -> None:
    response = api.post(
        f"{RECORDS}/customer", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert error_of(response)["o:errorCode"] == "INVALID_CONTENT"


@pytest.mark.parametrize("path", ["customer/424242", "customer/eid:nobody", "unicorn/1"])
def test_missing_records_are_nonexistent_id(api: httpx.Client, ids: Ids, path: str) -> None:
    response = send(api, "GET", path)
    assert response.status_code == 404
    assert error_of(response)["o:errorCode"] == "NONEXISTENT_ID"


def test_delete_and_dependent_records(api: httpx.Client, ids: Ids) -> None:
    customer_id = created_id(send(api, "POST", "customer", customer(ids)))
    job_id = created_id(
        send(api, "POST", "job", {"companyName": "Rollout", "parent": {"id": customer_id}})
    )
    blocked = send(api, "DELETE", f"customer/{customer_id}")
    assert error_of(blocked)["o:errorCode"] == "USER_ERROR"
    assert send(api, "DELETE", f"job/{job_id}").status_code == 204
    assert send(api, "DELETE", f"customer/{customer_id}").status_code == 204
    assert send(api, "GET", f"customer/{customer_id}").status_code == 404


def test_list_pages_with_links(api: httpx.Client, sandbox: NetSuiteSandbox, ids: Ids) -> None:
    for n in range(7):
        sandbox.state.insert("customer", customer(ids, companyName=f"Customer {n}"))
    first = send(api, "GET", "customer", params={"limit": 3}).json()
    assert (first["count"], first["hasMore"], first["offset"], first["totalResults"]) == (
        3,
        True,
        0,
        7,
    )
    links = {link["rel"]: link["href"] for link in first["links"]}
    assert set(links) == {"self", "first", "next", "last"}
    assert links["next"].endswith("/customer?limit=3&offset=3")
    assert links["last"].endswith("offset=6")
    assert first["items"][0]["links"][0]["href"].endswith(f"/customer/{first['items'][0]['id']}")
    seen: list[str] = []
    page = first
    while True:
        seen += [item["id"] for item in page["items"]]
        nxt = next((ln["href"] for ln in page["links"] if ln["rel"] == "next"), None)
        if nxt is None:
            break
        page = api.get(nxt).json()
    assert len(seen) == len(set(seen)) == 7
    assert not page["hasMore"]
    assert any(link["rel"] == "prev" for link in page["links"])


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"limit": "x"}])
def test_list_rejects_bad_paging(api: httpx.Client, params: dict[str, Any]) -> None:
    response = send(api, "GET", "customer", params=params)
    detail = error_of(response)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"
    assert detail["o:errorQueryParam"] in params


def test_amounts_keep_every_digit(api: httpx.Client, ids: Ids) -> None:
    raw = (
        b'{"companyName": "Exact Ltd", "subsidiary": {"id": "1"}, '
        b'"creditLimit": 1234567890123.123456789}'
    )
    record_id = created_id(
        api.post(f"{RECORDS}/customer", content=raw, headers={"Content-Type": "application/json"})
    )
    answer = send(api, "GET", f"customer/{record_id}")
    assert b'"creditLimit":1234567890123.123456789' in answer.content
    assert wire.loads(answer.content)["creditLimit"] == Decimal("1234567890123.123456789")


def test_permission_violation(api: httpx.Client, sandbox: NetSuiteSandbox, ids: Ids) -> None:
    sandbox.deny("customer", "write")
    response = send(api, "POST", "customer", customer(ids))
    assert response.status_code == 403
    detail = error_of(response)
    assert detail["o:errorCode"] == "INSUFFICIENT_PERMISSION"
    assert "Permission Violation" in detail["detail"]
    assert send(api, "GET", "customer").status_code == 200


def test_concurrency_limit_answers_429(api: httpx.Client, sandbox: NetSuiteSandbox) -> None:
    sandbox.concurrency_limit = 1
    sandbox.faults.inject(Fault("slow", delay=0.4, path=f"{RECORDS}/currency"))
    slow: list[httpx.Response] = []
    worker = threading.Thread(target=lambda: slow.append(send(api, "GET", "currency")))
    worker.start()
    deadline = time.monotonic() + 2
    while sandbox.governor.in_flight == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    blocked = send(api, "GET", "department")
    worker.join()
    assert slow[0].status_code == 200
    assert blocked.status_code == 429
    assert error_of(blocked)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert send(api, "GET", "department").status_code == 200  # the slot was given back


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("rate_limit", 429, "CONCURRENCY_LIMIT_EXCEEDED"),
        ("server_error", 500, "UNEXPECTED_ERROR"),
        ("unavailable", 503, "UNEXPECTED_ERROR"),
    ],
)
def test_injected_faults_speak_netsuite(
    api: httpx.Client, sandbox: NetSuiteSandbox, kind: str, status: int, code: str
) -> None:
    sandbox.faults.inject(Fault(kind))  # type: ignore[arg-type]
    response = send(api, "GET", "customer")
    assert response.status_code == status
    assert error_of(response)["o:errorCode"] == code


def test_admin_endpoints(sandbox: NetSuiteSandbox, ids: Ids) -> None:
    with sandbox.client() as admin:
        inserted = admin.post("/__sandbox__/records/customer", content=wire.dumps(customer(ids)))
        assert inserted.status_code == 201
        state = admin.get("/__sandbox__/state").json()
        assert state["account"] == "1234567_SB1"
        assert [c["id"] for c in state["records"]["customer"]] == [inserted.json()["id"]]
        assert admin.delete("/__sandbox__/tokens").status_code == 204
        assert admin.post("/__sandbox__/reset").status_code == 204
        assert admin.get("/__sandbox__/state").json()["records"] == {}


def test_custom_fields_round_trip(api: httpx.Client, ids: Ids) -> None:
    body = customer(ids, custentity_region="EMEA")
    record = send(api, "GET", f"customer/{created_id(send(api, 'POST', 'customer', body))}")
    assert record.json()["custentity_region"] == "EMEA"
    typo = send(api, "POST", "customer", customer(ids, customerRegion="EMEA"))
    assert error_of(typo)["o:errorPath"] == "customerRegion"


def test_parallel_upserts_land_on_one_record(
    api: httpx.Client, ids: Ids, sandbox: NetSuiteSandbox
) -> None:
    def upsert(_: int) -> str:
        return created_id(send(api, "PUT", "customer/eid:crm-race", customer(ids)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        record_ids = set(pool.map(upsert, range(16)))
    assert len(record_ids) == 1
    assert sandbox.state.count("customer", external_id="crm-race") == 1
