"""OpportunityChangeEvent payloads (CometD JSON and Pub/Sub bitmap form) to closed-won events."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.money import Money
from q2c.connectors.salesforce import SalesforceSandbox, parse_opportunity_change_event
from q2c.connectors.salesforce.cdc import changed_fields, encode_bitmap
from q2c.errors import ValidationError
from tests.connectors.salesforce.helpers import OrgApi, seed_deal


def header(**overrides: object) -> dict:
    return {
        "entityName": "Opportunity",
        "changeType": "UPDATE",
        "recordIds": ["0068d00000000AbAAI"],
        "changedFields": ["StageName", "LastModifiedDate"],
        **overrides,
    }


def test_stage_changed_to_closed_won() -> None:
    payload = {
        "ChangeEventHeader": header(),
        "StageName": "Closed Won",
        "Amount": Decimal("5000.00"),
        "CurrencyIsoCode": "USD",
        "CloseDate": "2026-11-30",
    }
    [event] = parse_opportunity_change_event({"payload": payload, "event": {"replayId": 7}})
    assert event.opportunity_id == "0068d00000000AbAAI"
    assert event.amount == Money.of("5000.00", "USD")
    assert event.close_date == date(2026, 11, 30) and event.crm == "salesforce"


@pytest.mark.parametrize(
    "payload",
    [
        {"ChangeEventHeader": header(), "StageName": "Negotiation/Review"},
        {"ChangeEventHeader": header(changedFields=["Amount"]), "StageName": "Closed Won"},
        {"ChangeEventHeader": header(entityName="Account"), "StageName": "Closed Won"},
        {"ChangeEventHeader": header(changeType="DELETE")},
        {"ChangeEventHeader": header(changeType="GAP_UPDATE")},
    ],
)
def test_other_changes_announce_nothing(payload: dict) -> None:
    assert parse_opportunity_change_event(payload) == []


def test_create_won_and_multiple_record_ids_and_avro_values() -> None:
    payload = {
        "ChangeEventHeader": header(
            changeType="CREATE", changedFields=[], recordIds=["006A", "006B"]
        ),
        "StageName": "Closed Won",
        "Amount": 5000.1,
        "CurrencyIsoCode": "USD",
        "CloseDate": 20_000,
        "AccountId": "001X",
    }
    events = parse_opportunity_change_event(payload)
    assert [e.opportunity_id for e in events] == ["006A", "006B"]
    assert events[0].amount is None  # an Avro double is not trusted with money
    assert events[0].close_date == date(2024, 10, 4)  # days since the epoch
    assert events[0].account_id == "001X"


def test_bitmap_changed_fields_need_the_schema(org: OrgApi) -> None:
    schema = org.get("sobjects/OpportunityChangeEvent/eventSchema").json()
    order = [f["name"] for f in schema["fields"]]
    bitmap = encode_bitmap(["StageName", "IsWon", "LastModifiedDate"], order)
    assert bitmap[0].startswith("0x")
    decoded = changed_fields({"changedFields": bitmap}, field_order=order)
    assert set(decoded) == {"StageName", "IsWon", "LastModifiedDate"}
    payload = {"ChangeEventHeader": header(changedFields=bitmap), "StageName": "Closed Won"}
    assert len(parse_opportunity_change_event(payload, field_order=order)) == 1
    with pytest.raises(ValidationError):
        parse_opportunity_change_event(payload)
    nested = changed_fields({"changedFields": ["0x1", "2-0x01"]}, field_order=order)
    assert nested == [order[0], order[2]]


def test_events_emitted_by_the_emulator_parse(sandbox: SalesforceSandbox) -> None:
    ids = seed_deal(sandbox)
    won = [
        event
        for message in sandbox.state.change_events
        for event in parse_opportunity_change_event(message)
    ]
    assert [e.opportunity_id for e in won] == [ids["opportunity_id"]]
    assert won[0].amount is None  # the stage change did not carry the (unchanged) amount
    with pytest.raises(ValidationError):
        parse_opportunity_change_event({"payload": {"no": "header"}})
