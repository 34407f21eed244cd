"""REST behaviour of the emulated org: rows, upsert, describe, replication, query, errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from q2c.connectors.salesforce import SalesforceSandbox
from q2c.connectors.salesforce.ids import normalize_id
from q2c.connectors.salesforce.wire import loads, parse_datetime
from q2c.connectors.sandbox import Fault
from tests.connectors.salesforce.helpers import OrgApi, V


def errors(response: object) -> list[dict]:
    body = response.json()  # type: ignore[attr-defined]
    assert isinstance(body, list), body
    return body


def test_create_get_update_delete(org: OrgApi) -> None:
    created = org.post("sobjects/Account/", json={"Name": "Acme", "Phone": "+1 555"})
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": []}
    account_id = body["id"]
    assert account_id.startswith("001") and len(account_id) == 18
    assert normalize_id(account_id) == account_id
    assert created.headers["Location"] == f"{V}/sobjects/Account/{account_id}"
    record = org.get(f"sobjects/Account/{account_id}").json()
    assert record["attributes"] == {"type": "Account", "url": f"{V}/sobjects/Account/{account_id}"}
    assert record["Name"] == "Acme" and record["CurrencyIsoCode"] == "USD"
    assert record["CreatedDate"].endswith("+0000")
    # the 15-character form finds the same record
    assert org.get(f"sobjects/Account/{account_id[:15]}").json()["Id"] == account_id
    partial = org.get(f"sobjects/Account/{account_id}", params={"fields": "Name,phone"}).json()
    assert set(partial) == {"attributes", "Name", "Phone"}
    updated = org.patch(
        f"sobjects/Account/{account_id}", json={"Phone": None, "Industry": "Retail"}
    )
    assert updated.status_code == 204 and updated.content == b""
    after = org.get(f"sobjects/Account/{account_id}").json()
    assert (after["Phone"], after["Industry"]) == (None, "Retail")
    assert parse_datetime(after["SystemModstamp"]) > parse_datetime(record["SystemModstamp"])
    assert org.delete(f"sobjects/Account/{account_id}").status_code == 204
    gone = org.get(f"sobjects/Account/{account_id}")
    assert gone.status_code == 404 and errors(gone)[0]["errorCode"] == "ENTITY_IS_DELETED"


def test_money_round_trips_exactly(org: OrgApi) -> None:
    account = org.post("sobjects/Account", json={"Name": "A"}).json()["id"]
    opp = org.post(
        "sobjects/Opportunity",
        content=b'{"Name": "O", "StageName": "Prospecting", '
        b'"CloseDate": "2026-12-31", "AccountId": "'
        + account.encode()
        + b'", "Amount": 1234567.895}',
    ).json()["id"]
    body = loads(org.get(f"sobjects/Opportunity/{opp}").text)
    assert body["Amount"] == Decimal("1234567.90")  # currency fields keep 2 decimals, half-up
    assert b"1234567.90" in org.get(f"sobjects/Opportunity/{opp}").content


@pytest.mark.parametrize(
    ("path", "payload", "status", "code", "fields"),
    [
        ("sobjects/Account", {"Name": "A", "Color__c": "red"}, 400, "INVALID_FIELD", ["Color__c"]),
        ("sobjects/Account", {"Phone": "1"}, 400, "REQUIRED_FIELD_MISSING", ["Name"]),
        (
            "sobjects/Opportunity",
            {"Name": "O"},
            400,
            "REQUIRED_FIELD_MISSING",
            ["StageName", "CloseDate"],
        ),
        ("sobjects/Account", {"Name": "x" * 256}, 400, "STRING_TOO_LONG", ["Name"]),
        (
            "sobjects/Opportunity",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "soon"},
            400,
            "JSON_PARSER_ERROR",
            ["CloseDate"],
        ),
        (
            "sobjects/Opportunity",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-01-01", "Amount": "lots"},
            400,
            "JSON_PARSER_ERROR",
            ["Amount"],
        ),
        (
            "sobjects/Opportunity",
            {"Name": "O", "StageName": "Won-ish", "CloseDate": "2026-01-01"},
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["StageName"],
        ),
        (
            "sobjects/Opportunity",
            {
                "Name": "O",
                "StageName": "Prospecting",
                "CloseDate": "2026-01-01",
                "AccountId": "garbage",
            },
            400,
            "MALFORMED_ID",
            ["AccountId"],
        ),
        (
            "sobjects/Opportunity",
            {
                "Name": "O",
                "StageName": "Prospecting",
                "CloseDate": "2026-01-01",
                "AccountId": "006000000000001AAA",
            },
            400,
            "FIELD_INTEGRITY_EXCEPTION",
            ["AccountId"],
        ),
        (
            "sobjects/Opportunity",
            {
                "Name": "O",
                "StageName": "Prospecting",
                "CloseDate": "2026-01-01",
                "Start_Date__c": "2026-02-01",
                "End_Date__c": "2026-01-01",
            },
            400,
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            ["End_Date__c"],
        ),
        (
            "sobjects/Opportunity",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-01-01", "IsWon": True},
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["IsWon"],
        ),
        ("sobjects/Widget__c", {"Name": "x"}, 404, "NOT_FOUND", []),
        ("sobjects/Account", ["not", "an", "object"], 400, "JSON_PARSER_ERROR", []),
    ],
)
def test_write_errors_are_salesforce_shaped(
    org: OrgApi, path: str, payload: object, status: int, code: str, fields: list[str]
) -> None:
    response = org.post(path, json=payload)
    assert response.status_code == status
    error = errors(response)[0]
    assert error["errorCode"] == code
    assert error["message"]
    assert error.get("fields", []) == fields


def test_unparseable_json_and_bad_ids(org: OrgApi) -> None:
    broken = org.post(
        "sobjects/Account", content=b"{'Name': ", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and errors(broken)[0]["errorCode"] == "JSON_PARSER_ERROR"
    wrong_object = org.get("sobjects/Account/006000000000001AAA")
    assert wrong_object.status_code == 400
    assert errors(wrong_object)[0]["errorCode"] == "MALFORMED_ID"
    missing = org.get("sobjects/Account/001000000000001AAA")
    assert (missing.status_code, errors(missing)[0]["errorCode"]) == (404, "NOT_FOUND")
    not_an_id = org.get("sobjects/Account/hello")
    assert not_an_id.status_code == 404
    assert "Provided external ID field does not exist" in errors(not_an_id)[0]["message"]
    assert org.get("nowhere").status_code == 404
    assert org.call("PUT", "sobjects/Account/001000000000001AAA").status_code == 405


def test_duplicate_unique_external_id(org: OrgApi) -> None:
    first = org.post("sobjects/Account", json={"Name": "A", "Q2C_External_Id__c": "X-1"}).json()
    second = org.post("sobjects/Account", json={"Name": "B", "Q2C_External_Id__c": "x-1"})
    assert second.status_code == 400
    error = errors(second)[0]
    assert error["errorCode"] == "DUPLICATE_VALUE"
    assert first["id"] in error["message"]


def test_upsert_creates_201_then_updates_200(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    url = "sobjects/Account/Q2C_External_Id__c/CRM%2F42"  # a value with '/' survives encoding
    created = org.patch(url, json={"Name": "Upserted"})
    assert created.status_code == 201
    body = created.json()
    assert body == {"id": body["id"], "success": True, "errors": [], "created": True}
    updated = org.patch(url, json={"Name": "Renamed"})
    assert updated.status_code == 200
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}
    assert sandbox.state.get("Account", body["id"])["Q2C_External_Id__c"] == "CRM/42"
    assert org.get(url).json()["Name"] == "Renamed"
    # before API 46.0 an update answered 204 without a body
    legacy = org.patch(f"/services/data/v45.0/{url}", json={"Name": "Old API"})
    assert legacy.status_code == 204
    only_update = org.patch(
        "sobjects/Account/Q2C_External_Id__c/NEW?updateOnly=true", json={"Name": "x"}
    )
    assert only_update.status_code == 404
    not_external = org.patch("sobjects/Account/Name/Acme", json={"Phone": "1"})
    assert not_external.status_code == 404


def test_upsert_on_non_unique_external_id_answers_300(org: OrgApi) -> None:
    for name in ("A", "B"):
        org.post("sobjects/Account", json={"Name": name, "ERP_Customer_Id__c": "C-1"})
    response = org.patch("sobjects/Account/ERP_Customer_Id__c/C-1", json={"Phone": "1"})
    assert response.status_code == 300
    assert all(url.startswith(f"{V}/sobjects/Account/001") for url in response.json())


def test_describe(org: OrgApi) -> None:
    describe = org.get("sobjects/Account/describe").json()
    assert describe["name"] == "Account" and describe["keyPrefix"] == "001"
    fields = {f["name"]: f for f in describe["fields"]}
    assert fields["Name"]["nillable"] is False and fields["Name"]["length"] == 255
    assert fields["Q2C_External_Id__c"]["externalId"] and fields["Q2C_External_Id__c"]["unique"]
    assert fields["ERP_Customer_Id__c"]["externalId"]
    assert fields["Id"]["createable"] is False and fields["Tax_Id__c"]["custom"] is True
    opp = {f["name"]: f for f in org.get("sobjects/Opportunity/describe").json()["fields"]}
    assert opp["IsWon"]["updateable"] is False
    assert opp["AccountId"]["referenceTo"] == ["Account"]
    assert opp["AccountId"]["relationshipName"] == "Account"
    assert "Closed Won" in [p["value"] for p in opp["StageName"]["picklistValues"]]
    quote = org.get("sobjects/Quote/describe").json()
    assert quote["keyPrefix"] == "0Q0"
    assert {
        "childSObject": "QuoteLineItem",
        "field": "QuoteId",
        "relationshipName": "QuoteLineItems",
        "cascadeDelete": True,
    } in quote["childRelationships"]
    listing = org.get("sobjects").json()
    assert {o["name"]: o["keyPrefix"] for o in listing["sobjects"]}["QuoteLineItem"] == "0QL"
    assert org.get("sobjects/Product2").json()["objectDescribe"]["keyPrefix"] == "01t"


def test_updated_and_deleted(org: OrgApi) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    end = datetime.now(UTC) + timedelta(minutes=5)
    window = {
        "start": start.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "end": end.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
    }
    ids = [org.post("sobjects/Account", json={"Name": f"A{i}"}).json()["id"] for i in range(3)]
    updated = org.get("sobjects/Account/updated/", params=window).json()
    assert updated["ids"] == ids
    assert updated["latestDateCovered"].endswith(":00.000+0000")
    org.delete(f"sobjects/Account/{ids[0]}")
    deleted = org.get("sobjects/Account/deleted/", params=window).json()
    assert [d["id"] for d in deleted["deletedRecords"]] == [ids[0]]
    bad = org.get(
        "sobjects/Account/updated/", params={"start": window["end"], "end": window["start"]}
    )
    assert bad.status_code == 400
    assert errors(bad)[0]["errorCode"] == "INVALID_REPLICATION_DATE"


def test_query_pagination_follows_next_records_url(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    for i in range(12):
        sandbox.state.insert("Product2", {"Name": f"P{i:02d}", "ProductCode": f"C{i:02d}"})
    first = org.query("SELECT Name FROM Product2 ORDER BY Name").json()
    assert (first["totalSize"], first["done"], len(first["records"])) == (12, False, 5)
    names = [r["Name"] for r in first["records"]]
    body = first
    while not body["done"]:
        assert body["nextRecordsUrl"].startswith(f"{V}/query/01g")
        body = org.get(body["nextRecordsUrl"]).json()
        names += [r["Name"] for r in body["records"]]
    assert names == [f"P{i:02d}" for i in range(12)]
    assert "nextRecordsUrl" not in body
    # the batchSize header is honoured within the org's bounds
    small = org.query("SELECT Id FROM Product2", headers={"Sforce-Query-Options": "batchSize=3"})
    assert len(small.json()["records"]) == 3
    stale = org.get("query/01g000000000000AAA-5")
    assert stale.status_code == 400
    assert errors(stale)[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def test_query_errors(org: OrgApi) -> None:
    malformed = org.query("SELECT Id FROM")
    assert malformed.status_code == 400
    assert errors(malformed)[0]["errorCode"] == "MALFORMED_QUERY"
    assert "unexpected token" in errors(malformed)[0]["message"]
    assert errors(org.query("SELECT Nope FROM Account"))[0]["errorCode"] == "INVALID_FIELD"
    assert errors(org.query("SELECT Id FROM Nope"))[0]["errorCode"] == "INVALID_TYPE"
    assert errors(org.get("query"))[0]["errorCode"] == "MALFORMED_QUERY"


def test_org_api_limit_gives_403(client: object) -> None:
    sandbox = SalesforceSandbox(daily_api_requests=2)
    with sandbox.client() as http:
        org = OrgApi(sandbox, http)
        first = org.get("limits")
        assert first.headers["Sforce-Limit-Info"] == "api-usage=1/2"
        assert first.json()["DailyApiRequests"] == {"Max": 2, "Remaining": 1}
        org.get("sobjects")
        limited = org.get("sobjects")
        assert limited.status_code == 403
        assert limited.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        (Fault("rate_limit", retry_after=3), 429, "REQUEST_LIMIT_EXCEEDED"),
        (Fault("server_error", status=503), 503, "SERVER_UNAVAILABLE"),
        (Fault("server_error"), 500, "UNKNOWN_EXCEPTION"),
    ],
)
def test_injected_faults_carry_salesforce_bodies(
    org: OrgApi, sandbox: SalesforceSandbox, fault: Fault, status: int, code: str
) -> None:
    sandbox.faults.inject(fault)
    response = org.get("sobjects")
    assert response.status_code == status
    assert errors(response)[0]["errorCode"] == code
    if status == 429:
        assert response.headers["retry-after"] == "3"


def test_event_schema_and_unknown_apex_rest(org: OrgApi) -> None:
    schema = org.get("sobjects/OpportunityChangeEvent/eventSchema").json()
    names = [f["name"] for f in schema["fields"]]
    assert names[0] == "ChangeEventHeader" and "StageName" in names
    missing = org.get("/services/apexrest/SBQQ/ServiceRouter")
    assert missing.status_code == 404 and errors(missing)[0]["errorCode"] == "NOT_FOUND"
