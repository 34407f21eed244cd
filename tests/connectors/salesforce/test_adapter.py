"""SalesforceCrm against the emulated org: proposals, write-back, polling, errors, auth."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import httpx
import pytest

from q2c.canonical.models import BillingModel, RevenueMethod
from q2c.canonical.money import Money
from q2c.connectors.http import Exchange
from q2c.connectors.salesforce import SalesforceCrm, SalesforceSandbox, connect_salesforce
from q2c.connectors.sandbox import Fault, InProcessTransport
from q2c.errors import (
    AuthError,
    ConfigError,
    NotFoundError,
    RateLimitedError,
    RetriableError,
    ValidationError,
)
from q2c.flows.ports import CrmPort
from tests.connectors.salesforce.helpers import seed_deal


class Recorder:
    def __init__(self) -> None:
        self.exchanges: list[Exchange] = []

    def __call__(self, exchange: Exchange) -> None:
        self.exchanges.append(exchange)

    def calls(self) -> list[str]:
        return [f"{e.method} {httpx.URL(e.url).path}" for e in self.exchanges]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def recorded_crm(
    sandbox: SalesforceSandbox, client: httpx.Client, recorder: Recorder
) -> SalesforceCrm:
    return connect_salesforce(
        client,
        login_url=sandbox.login_url,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
        recorder=recorder,
    )


def _floats(value: Any) -> list[Any]:
    if isinstance(value, float):
        return [value]
    if isinstance(value, dict):
        return [f for v in value.values() for f in _floats(v)]
    if isinstance(value, list | tuple):
        return [f for v in value for f in _floats(v)]
    return []


# --- fetch_proposal -------------------------------------------------------------------------


def test_crm_satisfies_the_port(crm: SalesforceCrm) -> None:
    assert isinstance(crm, CrmPort) and crm.system == "salesforce"


def test_fetch_proposal_builds_the_canonical_proposal(
    sandbox: SalesforceSandbox, recorded_crm: SalesforceCrm, recorder: Recorder
) -> None:
    ids = seed_deal(sandbox)
    proposal = recorded_crm.fetch_proposal(ids["opportunity_id"])
    assert recorder.calls() == ["POST /services/data/v62.0/composite"]  # one round trip
    assert (proposal.id, proposal.xrefs) == (ids["quote_id"], {"salesforce": ids["quote_id"]})
    assert proposal.version == 1 and proposal.opportunity_id == ids["opportunity_id"]
    assert proposal.name == "Nordwind Logistik GmbH - Consulting-EMEA"
    assert proposal.currency == "EUR" and proposal.legal_entity == "EU01"
    assert proposal.billing_model is BillingModel.TIME_AND_MATERIALS
    assert proposal.revenue_method is RevenueMethod.AS_INVOICED
    assert proposal.department == "Consulting-EMEA"
    assert (proposal.start_date, proposal.end_date) == (date(2026, 12, 1), date(2027, 5, 31))
    customer = proposal.customer
    assert customer.id == ids["account_id"] and customer.xrefs == {"salesforce": ids["account_id"]}
    assert (customer.legal_name, customer.tax_id, customer.country, customer.currency) == (
        "Nordwind Logistik GmbH",
        "DE811234567",
        "DE",
        "EUR",
    )
    address = customer.billing_address
    assert address is not None
    assert (address.line1, address.line2, address.city, address.postal_code, address.country) == (
        "Hafenstrasse 12",
        "Gebaeude B",
        "Hamburg",
        "20457",
        "DE",
    )
    first, second = proposal.lines
    assert (first.line_no, first.service_item, first.role, first.description) == (
        1,
        "SVC-ARCH",
        "Architect",
        "Solution architect",
    )
    assert first.quantity == Decimal("40") and first.unit_price == Money.of("185.50", "EUR")
    assert first.amount == Money.of("7420.00", "EUR")
    assert second.amount == Money.of("12048.80", "EUR")  # 120.5 x 99.99, rounded half-up
    assert proposal.total == Money.of("19468.80", "EUR")
    assert proposal.approved_at.tzinfo is not None
    assert _floats(proposal.model_dump()) == []


def test_fetch_proposal_version_and_country_codes(
    sandbox: SalesforceSandbox, crm: SalesforceCrm
) -> None:
    ids = seed_deal(
        sandbox,
        country="US",
        currency="USD",
        tax_id="US-77",
        version=3,
        billing_model="Fixed Fee",
        revenue_method="Straight Line",
    )
    proposal = crm.fetch_proposal(ids["opportunity_id"][:15])  # the 15-character id works too
    assert proposal.version == 3 and proposal.customer.country == "US"
    assert proposal.billing_model is BillingModel.FIXED_FEE
    assert proposal.revenue_method is RevenueMethod.STRAIGHT_LINE


def _expect(
    crm: SalesforceCrm, opportunity_id: str, kind: type[Exception], field: str | None, text: str
) -> None:
    with pytest.raises(kind) as info:
        crm.fetch_proposal(opportunity_id)
    error = info.value
    assert text in error.message  # type: ignore[attr-defined]
    if field is not None:
        assert error.field == field  # type: ignore[attr-defined]


def test_fetch_proposal_business_errors(sandbox: SalesforceSandbox, crm: SalesforceCrm) -> None:
    state = sandbox.state
    _expect(crm, "006000000000001AAA", NotFoundError, None, "does not exist")
    _expect(crm, "not-an-id", NotFoundError, None, "is not a Salesforce Opportunity id")
    open_deal = seed_deal(sandbox, stage="Negotiation/Review", opportunity_name="Open")
    _expect(
        crm,
        open_deal["opportunity_id"],
        ValidationError,
        "StageName",
        "is not Closed Won (its stage is 'Negotiation/Review')",
    )
    unsynced = seed_deal(sandbox, opportunity_name="Unsynced")
    state.update("Opportunity", unsynced["opportunity_id"], {"SyncedQuoteId": None})
    _expect(
        crm,
        unsynced["opportunity_id"],
        ValidationError,
        "SyncedQuoteId",
        "has no approved quote synced",
    )
    draft = seed_deal(sandbox, opportunity_name="Draft", quote_status="Draft")
    _expect(crm, draft["opportunity_id"], ValidationError, "Status", "is 'Draft', not Approved")
    empty = seed_deal(sandbox, opportunity_name="Empty")
    for line_id in empty["quote_line_ids"]:
        state.delete("QuoteLineItem", line_id)
    _expect(crm, empty["opportunity_id"], ValidationError, "QuoteLineItems", "has no line items")


@pytest.mark.parametrize(
    ("overrides", "field", "text"),
    [
        ({"legal_entity": ""}, "Legal_Entity__c", "has no legal entity"),
        ({"billing_model": "Barter"}, "Billing_Model__c", "Billing Model 'Barter', which q2c does"),
        ({"revenue_method": "Vibes"}, "Revenue_Method__c", "Revenue Method 'Vibes'"),
        ({"country": "Atlantis"}, "BillingCountry", "no recognisable billing country ('Atlantis')"),
        ({"department": ""}, "Department__c", "has no Department"),
    ],
)
def test_fetch_proposal_data_errors_name_the_field(
    sandbox: SalesforceSandbox,
    crm: SalesforceCrm,
    overrides: dict[str, str],
    field: str,
    text: str,
) -> None:
    ids = seed_deal(sandbox, tax_id=None, account_name=f"Case {field}", **overrides)
    with pytest.raises(ValidationError) as info:
        crm.fetch_proposal(ids["opportunity_id"])
    assert info.value.field == field
    assert text in info.value.message
    assert info.value.context["record_id"] in (ids["opportunity_id"], ids["account_id"])


def test_cpq_billing_terms_rate_card_and_cap_reach_the_proposal(
    sandbox: SalesforceSandbox, crm: SalesforceCrm
) -> None:
    terms = (
        '{"tax_code": "DE-VAT19", "payment_terms_days": 14, '
        '"expenses": {"markup_percent": "7.5", "non_billable_categories": ["meals"]}}'
    )
    ids = seed_deal(sandbox, account_name="Terms GmbH", rate_card="RC-EU",
                    not_to_exceed=Decimal("90000.00"), billing_terms=terms)
    proposal = crm.fetch_proposal(ids["opportunity_id"])
    assert proposal.rate_card_id == "RC-EU"
    assert proposal.not_to_exceed == Money.of("90000.00", "EUR")
    assert proposal.billing_terms is not None
    assert proposal.billing_terms.tax_code == "DE-VAT19"
    assert proposal.billing_terms.expenses.markup_percent == Decimal("7.5")
    assert proposal.billing_terms.expenses.non_billable_categories == ["meals"]


def test_malformed_billing_terms_name_the_field_and_the_problem(
    sandbox: SalesforceSandbox, crm: SalesforceCrm
) -> None:
    ids = seed_deal(sandbox, account_name="Bad Terms GmbH",
                    billing_terms='{"payment_terms_days": 999}')
    with pytest.raises(ValidationError) as info:
        crm.fetch_proposal(ids["opportunity_id"])
    assert info.value.field == "Billing_Terms__c"
    assert "payment_terms_days" in info.value.message
    assert info.value.context["record_id"] == ids["opportunity_id"]


# --- write_back ---------------------------------------------------------------------------------


def test_write_back_is_one_composite_and_idempotent(
    sandbox: SalesforceSandbox, recorded_crm: SalesforceCrm, recorder: Recorder
) -> None:
    ids = seed_deal(sandbox)
    erp = {"customer": "C-1042", "project": "PRJ-77", "sales_order": "SO-5"}
    recorded_crm.write_back(ids["opportunity_id"], erp)
    assert recorder.calls() == [
        "GET /services/data/v62.0/query",
        "POST /services/data/v62.0/composite",
    ]
    opp = sandbox.state.get("Opportunity", ids["opportunity_id"])
    assert (
        opp["ERP_Customer_Id__c"],
        opp["ERP_Project_Id__c"],
        opp["ERP_Sales_Order_Id__c"],
        opp["Q2C_Status__c"],
    ) == ("C-1042", "PRJ-77", "SO-5", "Provisioned")
    assert sandbox.state.get("Account", ids["account_id"])["ERP_Customer_Id__c"] == "C-1042"
    stamp = opp["SystemModstamp"]
    recorder.exchanges.clear()
    recorded_crm.write_back(ids["opportunity_id"], erp)  # a replay writes nothing
    assert recorder.calls() == ["GET /services/data/v62.0/query"]
    assert sandbox.state.get("Opportunity", ids["opportunity_id"])["SystemModstamp"] == stamp


def test_write_back_accepts_key_aliases(sandbox: SalesforceSandbox, crm: SalesforceCrm) -> None:
    ids = seed_deal(sandbox)
    crm.write_back(
        ids["opportunity_id"],
        {"erp_project_id": "P-1", "salesorder_id": "S-1", "subsidiary": "ignored"},
    )
    opp = sandbox.state.get("Opportunity", ids["opportunity_id"])
    assert (opp["ERP_Project_Id__c"], opp["ERP_Sales_Order_Id__c"]) == ("P-1", "S-1")


def test_write_back_errors_roll_back(sandbox: SalesforceSandbox, crm: SalesforceCrm) -> None:
    ids = seed_deal(sandbox)
    with pytest.raises(ValidationError) as info:
        crm.write_back(ids["opportunity_id"], {"customer": "C-1", "project": "P" * 41})
    assert info.value.field == "ERP_Project_Id__c"
    assert "Salesforce rejected the Opportunity" in info.value.message
    assert sandbox.state.get("Opportunity", ids["opportunity_id"])["ERP_Customer_Id__c"] is None
    with pytest.raises(NotFoundError):
        crm.write_back("006000000000001AAA", {"customer": "C-1"})
    with pytest.raises(ValidationError):
        crm.write_back(ids["opportunity_id"], {"nothing": "known"})


def test_account_status_is_written_once_and_a_replay_writes_nothing(
    sandbox: SalesforceSandbox, recorded_crm: SalesforceCrm, recorder: Recorder
) -> None:
    from datetime import date as day

    from q2c.canonical.money import Money
    from q2c.flows.ports import AccountStatus

    ids = seed_deal(sandbox)
    status = AccountStatus(
        status="Open Balance",
        open_balance=Money.of("1500.00", "USD"),
        unapplied_credit=Money.of("0.00", "USD"),
        last_payment_on=day(2026, 12, 20),
    )
    recorded_crm.update_account_status(ids["account_id"], status)
    account = sandbox.state.get("Account", ids["account_id"])
    assert (account["AR_Status__c"], account["Open_Balance__c"],
            account["Last_Payment_Date__c"]) == ("Open Balance", Decimal("1500.00"),
                                                  day(2026, 12, 20))
    stamp = account["SystemModstamp"]
    recorder.exchanges.clear()
    recorded_crm.update_account_status(ids["account_id"], status)
    assert [c for c in recorder.calls() if not c.startswith("GET")] == []
    assert sandbox.state.get("Account", ids["account_id"])["SystemModstamp"] == stamp


# --- closed_won_since -----------------------------------------------------------------------------


def test_closed_won_since_pages_and_moves_the_watermark(
    sandbox: SalesforceSandbox, recorded_crm: SalesforceCrm, recorder: Recorder
) -> None:
    won = [seed_deal(sandbox, opportunity_name=f"Won {i}")["opportunity_id"] for i in range(7)]
    seed_deal(sandbox, opportunity_name="Still open", stage="Proposal/Price Quote")
    page = recorded_crm.closed_won_since(None)
    assert [e.opportunity_id for e in page.opportunities] == won  # oldest first, all pages
    assert any("/query/01g" in call for call in recorder.calls())  # followed nextRecordsUrl
    event = page.opportunities[0]
    assert event.amount == Money.of("19468.80", "EUR") and event.quote_id
    stamps = [sandbox.state.get("Opportunity", i)["SystemModstamp"] for i in won]
    assert page.watermark is not None and page.watermark.startswith(
        max(stamps).strftime("%Y-%m-%dT%H:%M:%S")
    )
    again = recorded_crm.closed_won_since(page.watermark)
    assert (again.opportunities, again.watermark) == ([], page.watermark)
    sandbox.state.update("Opportunity", won[2], {"Name": "Won 2 (renamed)"})
    changed = recorded_crm.closed_won_since(page.watermark)
    assert [e.opportunity_id for e in changed.opportunities] == [won[2]]
    # q2c's write-back echoes once with the same version (the inbox drops it) ...
    recorded_crm.write_back(won[2], {"project": "P-1"})
    echo = recorded_crm.closed_won_since(changed.watermark)
    assert [(e.opportunity_id, e.proposal_version) for e in echo.opportunities] == [(won[2], 1)]
    # ... while a re-approved quote comes round with its new version
    quote_id = echo.opportunities[0].quote_id
    assert quote_id is not None
    sandbox.state.update("Quote", quote_id, {"Q2C_Version__c": 2})
    sandbox.state.update("Opportunity", won[2], {"Name": "Won 2 (v2)"})
    again = recorded_crm.closed_won_since(echo.watermark)
    assert [(e.opportunity_id, e.proposal_version) for e in again.opportunities] == [(won[2], 2)]


def test_closed_won_events_carry_version_and_legal_entity(
    sandbox: SalesforceSandbox, crm: SalesforceCrm
) -> None:
    ids = seed_deal(sandbox, version=4)
    [event] = crm.closed_won_since(None).opportunities
    assert (event.opportunity_id, event.proposal_version, event.legal_entity) == (
        ids["opportunity_id"],
        4,
        "EU01",
    )


def test_skip_provisioned_leaves_written_back_deals_out(
    sandbox: SalesforceSandbox, crm: SalesforceCrm
) -> None:
    ids = seed_deal(sandbox)
    crm.write_back(ids["opportunity_id"], {"project": "P-1"})
    quiet = SalesforceCrm(crm.rest, skip_provisioned=True)
    assert quiet.closed_won_since(None).opportunities == []
    assert len(crm.closed_won_since(None).opportunities) == 1


def test_closed_won_since_rejects_a_bad_watermark(crm: SalesforceCrm) -> None:
    with pytest.raises(ValidationError):
        crm.closed_won_since("yesterday")


# --- errors, limits, auth -------------------------------------------------------------------------


def test_org_limit_is_rate_limited_error() -> None:
    sandbox = SalesforceSandbox(daily_api_requests=1)
    with sandbox.client() as http:
        crm = connect_salesforce(
            http,
            login_url=sandbox.login_url,
            client_id=sandbox.client_id,
            client_secret=sandbox.client_secret,
        )
        crm.query_all("SELECT Id FROM Account")
        with pytest.raises(RateLimitedError) as info:
            crm.query_all("SELECT Id FROM Account")
    assert "API request limit" in info.value.message


def test_upsert_and_get_helpers(crm: SalesforceCrm) -> None:
    first = crm.upsert("Account", "Q2C_External_Id__c", "H-1", {"Name": "Helper"})
    second = crm.upsert("Account", "Q2C_External_Id__c", "H-1", {"Phone": "1"})
    assert (first.created, second.created, first.id) == (True, False, second.id)
    assert crm.get("Account", first.id, ["Name", "Phone"])["Phone"] == "1"
    with pytest.raises(NotFoundError):
        crm.get("Account", "001000000000001AAA")


def test_bad_secret_is_auth_error_with_salesforce_description(
    sandbox: SalesforceSandbox, client: httpx.Client
) -> None:
    crm = connect_salesforce(
        client, login_url=sandbox.login_url, client_id=sandbox.client_id, client_secret="wrong"
    )
    with pytest.raises(AuthError) as info:
        crm.query_all("SELECT Id FROM Account")
    assert "invalid client credentials" in info.value.message


def test_token_endpoint_outage_is_retriable(sandbox: SalesforceSandbox, crm: SalesforceCrm) -> None:
    sandbox.faults.inject(Fault("server_error", status=503, path="/services/oauth2/token"))
    with pytest.raises(RetriableError) as info:
        crm.query_all("SELECT Id FROM Account")
    assert not isinstance(info.value, AuthError)
    sandbox.faults.inject(Fault("rate_limit", retry_after=9, path="/services/oauth2/token"))
    with pytest.raises(RateLimitedError) as limited:
        crm.query_all("SELECT Id FROM Account")
    assert limited.value.retry_after == 9
    assert crm.query_all("SELECT Id FROM Account") == []


def test_persistent_401_is_auth_error(sandbox: SalesforceSandbox, crm: SalesforceCrm) -> None:
    crm.query_all("SELECT Id FROM Account")
    sandbox.oauth.session_seconds = 0  # every new session is born expired
    sandbox.expire_tokens()
    with pytest.raises(AuthError):
        crm.query_all("SELECT Id FROM Account")


@pytest.fixture
def split_org() -> Iterator[tuple[SalesforceSandbox, httpx.Client]]:
    sandbox = SalesforceSandbox(
        login_url="https://login.salesforce.com", instance_url="https://nordwind.my.salesforce.com"
    )
    # no base_url: API paths are relative and the auth routes them to the token's instance_url
    with httpx.Client(transport=InProcessTransport(sandbox.app)) as http:
        yield sandbox, http


def test_jwt_bearer_and_instance_url_routing(
    split_org: tuple[SalesforceSandbox, httpx.Client], recorder: Recorder
) -> None:
    sandbox, http = split_org
    crm = connect_salesforce(
        http,
        login_url="https://login.salesforce.com",
        client_id=sandbox.client_id,
        username=sandbox.username,
        jwt_private_key=sandbox.jwt_private_key_pem,
        recorder=recorder,
    )
    assert crm.query_all("SELECT Id FROM User")[0]["Id"] == sandbox.state.user_id
    assert httpx.URL(recorder.exchanges[0].url).host == "nordwind.my.salesforce.com"
    assert sandbox.tokens_issued() == 1


def test_connect_configuration_errors(client: httpx.Client) -> None:
    with pytest.raises(ConfigError):
        connect_salesforce(client, login_url="https://x", client_id="c")
    with pytest.raises(ConfigError):
        connect_salesforce(
            client, login_url="https://x", client_id="c", client_secret="s", jwt_private_key="k"
        )
    with pytest.raises(ConfigError):
        connect_salesforce(client, login_url="https://x", client_id="c", jwt_private_key="k")
    broken = connect_salesforce(
        client, login_url="https://x", client_id="c", username="u", jwt_private_key="not a pem key"
    )
    with pytest.raises(ConfigError):
        broken.query_all("SELECT Id FROM Account")
