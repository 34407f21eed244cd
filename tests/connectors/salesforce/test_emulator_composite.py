"""Composite, sObject collections and sObject tree on the emulated org."""

from __future__ import annotations

from q2c.connectors.salesforce import SalesforceSandbox
from tests.connectors.salesforce.helpers import OrgApi, V


def composite(org: OrgApi, subrequests: list[dict], all_or_none: bool) -> list[dict]:
    response = org.post(
        "composite", json={"allOrNone": all_or_none, "compositeRequest": subrequests}
    )
    assert response.status_code == 200, response.text
    return response.json()["compositeResponse"]


ACCOUNT = {
    "method": "POST",
    "url": f"{V}/sobjects/Account",
    "referenceId": "acct",
    "body": {"Name": "Composite Co"},
}
OPPORTUNITY = {
    "method": "POST",
    "url": f"{V}/sobjects/Opportunity",
    "referenceId": "opp",
    "body": {
        "Name": "Deal",
        "StageName": "Prospecting",
        "CloseDate": "2026-12-31",
        "AccountId": "@{acct.id}",
    },
}


def test_references_flow_between_subrequests(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    results = composite(
        org,
        [
            ACCOUNT,
            OPPORTUNITY,
            {
                "method": "GET",
                "referenceId": "q",
                "url": f"{V}/query/?q=SELECT+Id,+Account.Name+FROM+Opportunity"
                "+WHERE+Id+=+'@{opp.id}'",
            },
            {
                "method": "PATCH",
                "referenceId": "upd",
                "url": f"{V}/sobjects/Account/@{{acct.id}}",
                "body": {"Industry": "Retail", "Tax_Id__c": "@{q.records[0].Account.Name}"},
            },
        ],
        all_or_none=True,
    )
    assert [r["httpStatusCode"] for r in results] == [201, 201, 200, 204]
    assert results[0]["httpHeaders"]["Location"].startswith(f"{V}/sobjects/Account/001")
    assert results[3]["body"] is None
    account = sandbox.state.records("Account")[0]
    assert (account["Industry"], account["Tax_Id__c"]) == ("Retail", "Composite Co")
    opp = sandbox.state.records("Opportunity")[0]
    assert opp["AccountId"] == account["Id"]


def test_all_or_none_rolls_everything_back(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    bad = {
        "method": "POST",
        "url": f"{V}/sobjects/Opportunity",
        "referenceId": "bad",
        "body": {"Name": "No stage"},
    }
    after = {"method": "GET", "url": f"{V}/sobjects/Account/@{{acct.id}}", "referenceId": "after"}
    results = composite(org, [ACCOUNT, bad, after], all_or_none=True)
    assert [r["httpStatusCode"] for r in results] == [400, 400, 400]
    assert results[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    for halted in (results[0], results[2]):
        assert halted["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert sandbox.state.records("Account") == []
    assert [e["schema"] for e in sandbox.state.change_events] == []  # no event escaped


def test_without_all_or_none_only_dependents_halt(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    failing_account = {**ACCOUNT, "body": {"Phone": "no name"}}
    independent = {
        "method": "POST",
        "url": f"{V}/sobjects/Product2",
        "referenceId": "prod",
        "body": {"Name": "Kept"},
    }
    results = composite(org, [failing_account, OPPORTUNITY, independent], all_or_none=False)
    assert [r["httpStatusCode"] for r in results] == [400, 400, 201]
    assert results[0]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert results[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert "acct.id" in results[1]["body"][0]["message"]
    assert [p["Name"] for p in sandbox.state.records("Product2")] == ["Kept"]


def test_composite_request_validation(org: OrgApi) -> None:
    missing = org.post("composite", json={"allOrNone": True})
    assert missing.status_code == 400
    duplicate = org.post("composite", json={"compositeRequest": [ACCOUNT, ACCOUNT]})
    assert duplicate.status_code == 400
    assert "Duplicate referenceId" in duplicate.json()[0]["message"]
    too_many = org.post(
        "composite",
        json={"compositeRequest": [{**ACCOUNT, "referenceId": f"a{i}"} for i in range(26)]},
    )
    assert too_many.status_code == 400


def test_collections_create_update_upsert_retrieve_delete(
    org: OrgApi, sandbox: SalesforceSandbox
) -> None:
    created = org.post(
        "composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "One"},
                {"attributes": {"type": "Account"}, "Phone": "missing name"},
                {"attributes": {"type": "Product2"}, "Name": "Prod", "ProductCode": "P-1"},
                {"attributes": {"type": "Widget__c"}, "Name": "Unknown type"},
            ],
        },
    ).json()
    assert [r["success"] for r in created] == [True, False, True, False]
    assert created[3]["errors"][0]["statusCode"] == "INVALID_TYPE"
    assert created[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    one = created[0]["id"]
    updated = org.patch(
        "composite/sobjects",
        json={
            "allOrNone": False,
            "records": [{"attributes": {"type": "Account"}, "id": one, "Industry": "Finance"}],
        },
    ).json()
    assert updated == [{"id": one, "success": True, "errors": []}]
    # the shape of the shared Postman collection: the type in the path
    typed = org.patch(
        "composite/sobjects/Account",
        json={
            "allOrNone": True,
            "records": [{"attributes": {"type": "Account"}, "id": one, "Phone": "+44 20"}],
        },
    ).json()
    assert typed[0]["success"]
    upserted = org.patch(
        "composite/sobjects/Account/Q2C_External_Id__c",
        json={
            "records": [
                {"attributes": {"type": "Account"}, "Q2C_External_Id__c": "U-1", "Name": "New"},
                {"attributes": {"type": "Account"}, "Q2C_External_Id__c": "U-1", "Name": "Again"},
            ]
        },
    ).json()
    assert [r["created"] for r in upserted] == [True, False]
    retrieved = org.get(
        "composite/sobjects/Account",
        params={"ids": f"{one},001000000000001AAA", "fields": "Name,Phone"},
    ).json()
    assert retrieved[0]["Phone"] == "+44 20" and retrieved[1] is None
    deleted = org.delete("composite/sobjects", params={"ids": one}).json()
    assert deleted == [{"id": one, "success": True, "errors": []}]
    assert sandbox.state.get("Account", one) is None


def test_collections_all_or_none(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    results = org.post(
        "composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Account"}, "Name": "Good"},
                {"attributes": {"type": "Account"}, "Name": "x" * 300},
            ],
        },
    ).json()
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sandbox.state.records("Account") == []


def test_composite_all_or_none_overrides_collections(
    org: OrgApi, sandbox: SalesforceSandbox
) -> None:
    results = composite(
        org,
        [
            {
                "method": "POST",
                "url": f"{V}/composite/sobjects",
                "referenceId": "coll",
                "body": {
                    "allOrNone": False,
                    "records": [
                        {"attributes": {"type": "Account"}, "Name": "Kept?"},
                        {"attributes": {"type": "Account"}, "Phone": "no name"},
                    ],
                },
            },
        ],
        all_or_none=True,
    )
    assert results[0]["httpStatusCode"] == 200
    assert sandbox.state.records("Account") == []


def test_tree_creates_nested_records_or_nothing(org: OrgApi, sandbox: SalesforceSandbox) -> None:
    tree = {
        "records": [
            {
                "attributes": {"type": "Account", "referenceId": "acc1"},
                "Name": "Tree Co",
                "Opportunities": {
                    "records": [
                        {
                            "attributes": {"type": "Opportunity", "referenceId": "opp1"},
                            "Name": "Tree deal",
                            "StageName": "Prospecting",
                            "CloseDate": "2026-12-31",
                        }
                    ]
                },
            }
        ]
    }
    response = org.post("composite/tree/Account", json=tree)
    assert response.status_code == 201
    results = response.json()
    assert results["hasErrors"] is False
    refs = {r["referenceId"]: r["id"] for r in results["results"]}
    assert sandbox.state.get("Opportunity", refs["opp1"])["AccountId"] == refs["acc1"]
    tree["records"][0]["Opportunities"]["records"][0].pop("StageName")
    tree["records"][0]["attributes"]["referenceId"] = "acc2"
    failed = org.post("composite/tree/Account", json=tree)
    assert failed.status_code == 400
    assert failed.json()["results"][0]["referenceId"] == "opp1"
    assert len(sandbox.state.records("Account")) == 1
