"""Fidelity: the community ``simple-salesforce`` client against the emulator over real HTTP.

The emulator runs under uvicorn on a free loopback port. simple-salesforce always speaks
``https://<domain>.salesforce.com``; a requests transport adapter sends those calls to the
emulator over plain HTTP instead. Nothing else about the client is changed: its own token
requests (client credentials with HTTP Basic, and the JWT bearer flow built from
``consumer_key`` + ``privatekey``), URLs, pagination and error handling are exercised as is.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from q2c.connectors.salesforce import SalesforceSandbox
from q2c.serving import free_port, serving
from tests.connectors.salesforce.helpers import seed_deal

pytestmark = pytest.mark.integration


class _ToEmulator(HTTPAdapter):
    """Routes https://*.salesforce.com and https://127.0.0.1 to the local plain-HTTP emulator."""

    def __init__(self, netloc: str) -> None:
        super().__init__()
        self.netloc = netloc

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url or "")
        request.url = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kwargs)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[SalesforceSandbox, str]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    sandbox = SalesforceSandbox(page_size=5, min_batch_size=2, instance_url=base, login_url=base)
    with serving(sandbox.app, port=port):
        yield sandbox, base


@pytest.fixture
def session(served: tuple[SalesforceSandbox, str]) -> requests.Session:
    http = requests.Session()
    http.mount("https://", _ToEmulator(urlsplit(served[1]).netloc))
    return http


@pytest.fixture
def sf(served: tuple[SalesforceSandbox, str], session: requests.Session) -> Salesforce:
    """Client credentials login done by simple-salesforce itself (HTTP Basic, My Domain)."""
    sandbox, _ = served
    sandbox.reset()
    return Salesforce(
        consumer_key=sandbox.client_id,
        consumer_secret=sandbox.client_secret,
        domain="q2c-sandbox.my",
        session=session,
        parse_float=Decimal,
    )


def test_session_id_and_instance_url_from_our_own_token(
    served: tuple[SalesforceSandbox, str], session: requests.Session
) -> None:
    sandbox, base = served
    token = requests.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": sandbox.client_id,
            "client_secret": sandbox.client_secret,
        },
        timeout=5,
    ).json()
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=session,
        version="62.0",
    )
    assert sf.query("SELECT Id, Username FROM User")["records"][0]["Username"] == sandbox.username


def test_crud_upsert_describe_and_errors(
    sf: Salesforce, served: tuple[SalesforceSandbox, str]
) -> None:
    created = sf.Account.create({"Name": "Simple Co", "BillingCountry": "France"})
    assert created["success"] and created["id"].startswith("001")
    account = sf.Account.get(created["id"])
    assert (account["Name"], account["BillingCountryCode"]) == ("Simple Co", "FR")
    assert sf.Account.update(created["id"], {"Industry": "Retail"}) == 204
    assert sf.Account.upsert("Q2C_External_Id__c/SS-1", {"Name": "Upserted"}) == 201
    assert sf.Account.upsert("Q2C_External_Id__c/SS-1", {"Name": "Again"}) == 200
    assert sf.Account.get_by_custom_id("Q2C_External_Id__c", "SS-1")["Name"] == "Again"
    describe = sf.Account.describe()
    assert {f["name"] for f in describe["fields"]} >= {"Name", "Tax_Id__c", "Q2C_External_Id__c"}
    assert "Opportunity" in {o["name"] for o in sf.describe()["sobjects"]}
    assert sf.limits()["DailyApiRequests"]["Max"] == 100_000
    with pytest.raises(SalesforceMalformedRequest) as bad:
        sf.Account.create({"Name": "x", "Color__c": "red"})
    assert bad.value.content[0]["errorCode"] == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get("001000000000001AAA")
    assert sf.Account.delete(created["id"]) == 204


def test_query_all_follows_pagination_and_keeps_decimals(
    sf: Salesforce, served: tuple[SalesforceSandbox, str]
) -> None:
    sandbox, _ = served
    for i in range(3):
        seed_deal(sandbox, opportunity_name=f"Simple deal {i}")
    lines = sf.query_all(
        "SELECT Id, TotalPrice, Product2.ProductCode, Quote.Opportunity.Name "
        "FROM QuoteLineItem ORDER BY LineNumber"
    )
    assert lines["totalSize"] == 6 and len(lines["records"]) == 6  # two pages of five
    assert lines["records"][1]["TotalPrice"] == Decimal("12048.80")
    assert lines["records"][0]["Quote"]["Opportunity"]["Name"] == "Simple deal 0"
    paged = list(sf.query_all_iter("SELECT Id FROM Opportunity WHERE IsWon = true"))
    assert len(paged) == 3


def test_updated_and_deleted_replication(sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    created = sf.Product2.create({"Name": "Replicated"})["id"]
    end = datetime.now(UTC) + timedelta(minutes=5)
    assert created in sf.Product2.updated(start, end)["ids"]
    sf.Product2.delete(created)
    assert [d["id"] for d in sf.Product2.deleted(start, end)["deletedRecords"]] == [created]


def test_composite_through_restful(sf: Salesforce) -> None:
    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": "/services/data/v62.0/sobjects/Account",
                    "referenceId": "a",
                    "body": {"Name": "Composite via simple-salesforce"},
                },
                {
                    "method": "GET",
                    "url": "/services/data/v62.0/sobjects/Account/@{a.id}",
                    "referenceId": "b",
                },
            ],
        },
    )
    assert [r["httpStatusCode"] for r in result["compositeResponse"]] == [201, 200]


def test_expired_session_is_refreshed_or_reported(
    sf: Salesforce, served: tuple[SalesforceSandbox, str], session: requests.Session
) -> None:
    sandbox, base = served
    before = sandbox.tokens_issued()
    sandbox.expire_tokens()
    # a client that logged in itself reacts to INVALID_SESSION_ID by logging in again
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert sandbox.tokens_issued() == before + 1
    # one handed a bare session id can only report the expiry
    bare = Salesforce(instance_url=base, session_id=sf.session_id, session=session)
    sandbox.expire_tokens()
    with pytest.raises(SalesforceExpiredSession):
        bare.query("SELECT Id FROM Account")


def test_jwt_login_through_simple_salesforce(
    served: tuple[SalesforceSandbox, str], session: requests.Session
) -> None:
    sandbox, _ = served
    before = sandbox.tokens_issued()
    sf = Salesforce(
        username=sandbox.username,
        consumer_key=sandbox.client_id,
        privatekey=sandbox.jwt_private_key_pem,
        domain="login",
        session=session,
    )
    assert sandbox.tokens_issued() == before + 1
    assert sf.query("SELECT Username FROM User")["records"][0]["Username"] == sandbox.username
    # an unknown user gets Salesforce's own wording, which simple-salesforce recognises
    with pytest.raises(SalesforceAuthenticationFailed), pytest.warns(UserWarning, match="Allow"):
        Salesforce(
            username="ghost@q2c.example",
            consumer_key=sandbox.client_id,
            privatekey=sandbox.jwt_private_key_pem,
            domain="login",
            session=session,
        )
