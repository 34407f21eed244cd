"""The emulated org's data rules: automation, roll-ups, timestamps, transactions, seeding."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from q2c.connectors.salesforce import SalesforceSandbox
from q2c.connectors.salesforce.ids import IdFactory, normalize_id
from q2c.connectors.salesforce.state import SalesforceState, ValidationRule
from q2c.connectors.salesforce.wire import ApiError, format_datetime
from tests.connectors.salesforce.helpers import seed_deal


def test_ids_are_18_characters_with_a_case_checksum() -> None:
    factory = IdFactory()
    issued = factory.new("001")
    assert len(issued) == 18 and issued.startswith("001")
    assert normalize_id(issued[:15]) == issued
    assert normalize_id(issued.lower()) == issued  # the suffix restores the case
    assert normalize_id("001A0000006Vm9r") == "001A0000006Vm9rIAC"  # documented example
    assert normalize_id("too-short") is None
    assert normalize_id("001A0000006Vm9rIAD") is None  # checksum does not match


def test_system_modstamp_strictly_increases_even_with_a_frozen_clock() -> None:
    frozen = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    state = SalesforceState(clock=lambda: frozen)
    first = state.insert("Account", {"Name": "A"})
    stamps = [state.get("Account", first)["SystemModstamp"]]
    for i in range(3):
        state.update("Account", first, {"Name": f"A{i}"})
        stamps.append(state.get("Account", first)["SystemModstamp"])
    assert stamps == sorted(set(stamps))
    assert format_datetime(stamps[0]) == "2026-11-26T10:00:00.001+0000"  # user took .000


def test_opportunity_stage_drives_won_and_closed() -> None:
    state = SalesforceState()
    opp = state.insert(
        "Opportunity", {"Name": "O", "StageName": "Prospecting", "CloseDate": date(2026, 12, 31)}
    )
    assert (state.get("Opportunity", opp)["IsWon"], state.get("Opportunity", opp)["IsClosed"]) == (
        False,
        False,
    )
    state.update("Opportunity", opp, {"StageName": "Closed Won"})
    record = state.get("Opportunity", opp)
    assert (record["IsWon"], record["IsClosed"], record["Probability"]) == (True, True, 100)
    state.update("Opportunity", opp, {"StageName": "Closed Lost"})
    assert state.get("Opportunity", opp)["IsWon"] is False


def test_seeded_deal_rolls_up_and_syncs() -> None:
    sandbox = SalesforceSandbox()
    state = sandbox.state
    ids = seed_deal(sandbox)
    quote = state.get("Quote", ids["quote_id"])
    opp = state.get("Opportunity", ids["opportunity_id"])
    # 40 x 185.50 + 120.5 x 99.99 = 7420.00 + 12048.795 -> 12048.80
    assert quote["TotalPrice"] == Decimal("19468.80")
    assert (quote["IsSyncing"], quote["Status"], quote["LineItemCount"]) == (True, "Approved", 2)
    assert quote["AccountId"] == ids["account_id"] and quote["CurrencyIsoCode"] == "EUR"
    assert opp["Amount"] == Decimal("19468.80") and opp["IsWon"] is True
    assert opp["SyncedQuoteId"] == ids["quote_id"]
    lines = state.records("QuoteLineItem")
    assert [line["LineNumber"] for line in lines] == ["00000001", "00000002"]
    assert state.get("Account", ids["account_id"])["BillingCountryCode"] == "DE"
    # a second deal for the same customer reuses the account and the products
    again = seed_deal(sandbox, opportunity_name="Phase 2")
    assert again["account_id"] == ids["account_id"]
    assert again["product_ids"] == ids["product_ids"]
    assert len(state.records("Product2")) == 2


def test_deleting_a_line_rolls_up_and_cascades() -> None:
    sandbox = SalesforceSandbox()
    ids = seed_deal(sandbox)
    state = sandbox.state
    state.delete("QuoteLineItem", ids["quote_line_ids"][1])
    assert state.get("Quote", ids["quote_id"])["TotalPrice"] == Decimal("7420.00")
    assert state.get("Opportunity", ids["opportunity_id"])["Amount"] == Decimal("7420.00")
    state.delete("Account", ids["account_id"])
    assert state.records("Opportunity") == [] and state.records("QuoteLineItem") == []


def test_sync_requires_the_quote_of_the_same_opportunity() -> None:
    sandbox = SalesforceSandbox()
    first, second = seed_deal(sandbox), seed_deal(sandbox, opportunity_name="Other")
    with pytest.raises(ApiError) as info:
        sandbox.state.update(
            "Opportunity", first["opportunity_id"], {"SyncedQuoteId": second["quote_id"]}
        )
    assert info.value.code == "FIELD_INTEGRITY_EXCEPTION"


def test_atomic_rolls_back_records_and_events() -> None:
    state = SalesforceState()
    kept = state.insert("Account", {"Name": "Kept"})
    events = len(state.change_events)
    with pytest.raises(ApiError), state.atomic():
        state.update("Account", kept, {"Name": "Changed"})
        state.insert("Account", {"Name": "New"})
        state.insert("Account", {"Phone": "no name"})
    assert [a["Name"] for a in state.records("Account")] == ["Kept"]
    assert len(state.change_events) == events


def test_validation_rules_can_be_added() -> None:
    state = SalesforceState()
    state.add_validation_rule(
        ValidationRule(
            "Account",
            "Tax_Id_Format",
            lambda r: bool(r.get("Tax_Id__c")) and " " in r["Tax_Id__c"],
            "Tax Id must not contain spaces.",
            "Tax_Id__c",
        )
    )
    with pytest.raises(ApiError) as info:
        state.insert("Account", {"Name": "A", "Tax_Id__c": "DE 123"})
    assert (info.value.code, info.value.errors[0]["fields"]) == (
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        ["Tax_Id__c"],
    )


def test_change_events_describe_each_write() -> None:
    state = SalesforceState()
    opp = state.insert(
        "Opportunity",
        {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-12-31", "Amount": "10.00"},
    )
    state.update("Opportunity", opp, {"StageName": "Closed Won"})
    create, update = [e for e in state.change_events if e["schema"] == "OpportunityChangeEvent"]
    assert create["payload"]["ChangeEventHeader"]["changeType"] == "CREATE"
    assert create["payload"]["Amount"] == Decimal("10.00")
    header = update["payload"]["ChangeEventHeader"]
    assert header["changeType"] == "UPDATE" and header["recordIds"] == [opp]
    assert {"StageName", "IsWon", "IsClosed", "LastModifiedDate"} <= set(header["changedFields"])
    assert update["payload"]["StageName"] == "Closed Won"
    assert update["event"]["replayId"] > create["event"]["replayId"]


def test_state_is_thread_safe() -> None:
    state = SalesforceState()

    def work(n: int) -> None:
        for i in range(50):
            state.insert("Account", {"Name": f"T{n}-{i}"})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = state.records("Account")
    assert len(records) == 200 and len({r["Id"] for r in records}) == 200


def test_state_refuses_floats_for_money() -> None:
    state = SalesforceState()
    with pytest.raises(ApiError) as info:
        state.insert(
            "Opportunity",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-12-31", "Amount": 0.1},
        )
    assert info.value.code == "JSON_PARSER_ERROR"


def test_unique_index_follows_rollback_and_delete() -> None:
    state = SalesforceState()
    first = state.insert("Account", {"Name": "A", "Q2C_External_Id__c": "U-1"})
    with pytest.raises(ApiError), state.atomic():
        state.update("Account", first, {"Q2C_External_Id__c": "U-2"})
        state.insert("Account", {"Name": "B", "Q2C_External_Id__c": "U-1"})
        state.insert("Account", {"Phone": "fails"})
    assert [a["Id"] for a in state.find("Account", "Q2C_External_Id__c", "u-1")] == [first]
    assert state.find("Account", "Q2C_External_Id__c", "U-2") == []
    state.delete("Account", first)
    again = state.insert("Account", {"Name": "C", "Q2C_External_Id__c": "U-1"})
    assert [a["Id"] for a in state.find("Account", "Q2C_External_Id__c", "U-1")] == [again]


def test_sandbox_closes_the_clients_it_handed_out() -> None:
    with SalesforceSandbox() as sandbox:
        client = sandbox.client()
        assert client.get("/services/data/").status_code == 200
    assert client.is_closed


def test_bulk_writes_stay_fast() -> None:
    """Unique ids are indexed and Id lookups skip the scan, so big orgs stay usable."""
    import time

    state = SalesforceState()
    started = time.perf_counter()
    for i in range(3000):
        state.insert("Account", {"Name": f"A{i}", "Q2C_External_Id__c": f"E-{i}"})
    assert len(state.find("Account", "Q2C_External_Id__c", "E-2999")) == 1
    assert time.perf_counter() - started < 5
