"""CloudEvents 1.0 envelope and the event catalogue, checked against the official SDK too."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkCoreEvent
from cloudevents.v1.conversion import to_json as sdk_to_json
from cloudevents.v1.http import CloudEvent as SdkHttpEvent
from cloudevents.v1.http import from_json as sdk_from_json
from pydantic import ValidationError as PydanticValidationError

from q2c.canonical.events import (
    INBOUND_TYPES,
    OUTBOUND_TYPES,
    CloudEvent,
    new_event,
    validate_data,
)
from q2c.canonical.models import BillingEvent, Proposal
from tests.canonical.factories import EVENT_PAYLOADS, edit


def envelope(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "specversion": "1.0",
        "id": "evt-1",
        "source": "urn:salesforce:acme",
        "type": "opportunity.closed_won",
        "subject": "006A",
        "time": "2026-11-26T10:00:00Z",
        "correlationid": "corr-1",
        "data": EVENT_PAYLOADS["opportunity.closed_won"](),
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not ...}


def only_error(payload: dict[str, object]) -> dict[str, object]:
    with pytest.raises(PydanticValidationError) as caught:
        CloudEvent.model_validate(payload)
    errors = caught.value.errors()
    assert len(errors) == 1, errors
    return errors[0]


# --- envelope validation ---------------------------------------------------------------------


def test_a_valid_event_keeps_every_attribute():
    event = CloudEvent.model_validate(envelope(tenant="acme"))
    assert event.idempotency_key == ("urn:salesforce:acme", "evt-1")
    assert event.subject == "006A"
    assert event.correlationid == "corr-1"
    assert event.time == datetime(2026, 11, 26, 10, tzinfo=UTC)
    assert event.model_extra == {"tenant": "acme"}


@pytest.mark.parametrize("version", ["0.3", "1", "1.0.0", ""])
def test_specversion_must_be_1_0(version):
    error = only_error(envelope(specversion=version))
    assert error["loc"] == ("specversion",)
    assert error["msg"] == f'Value error, specversion must be "1.0", got {version!r}'


@pytest.mark.parametrize("attribute", ["specversion", "id", "source", "type"])
def test_required_attributes_are_named_when_missing(attribute):
    error = only_error(envelope(**{attribute: ...}))
    assert error["loc"] == (attribute,)
    assert error["msg"] == "Field required"


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_required_attributes_cannot_be_empty(attribute):
    error = only_error(envelope(**{attribute: ""}))
    assert error["loc"] == (attribute,)
    assert error["msg"] == "String should have at least 1 character"


def test_time_without_an_offset_is_refused():
    error = only_error(envelope(time="2026-11-26T10:00:00"))
    assert error["loc"] == ("time",)
    assert error["msg"] == (
        "Value error, time must carry a UTC offset (RFC 3339), e.g. 2026-11-26T10:00:00Z"
    )


def test_time_with_an_offset_is_kept():
    event = CloudEvent.model_validate(envelope(time="2026-11-26T11:00:00+01:00"))
    assert event.time == datetime(2026, 11, 26, 10, tzinfo=UTC)


@pytest.mark.parametrize("name", ["Tenant", "tenant_id", "tenant-id", "a" * 21, "région"])
def test_extension_names_follow_the_spec(name):
    error = only_error(envelope(**{name: "x"}))
    assert error["loc"] == ()
    assert error["msg"] == (
        f"Value error, extension attribute {name!r} is invalid: CloudEvents attribute names are "
        "lower-case letters and digits, at most 20 characters"
    )


@pytest.mark.parametrize("name", ["tenant", "traceparent", "partitionkey", "a" * 20, "x1"])
def test_valid_extension_names_are_accepted(name):
    assert CloudEvent.model_validate(envelope(**{name: "x"})).model_extra == {name: "x"}


def test_new_event_fills_id_time_and_correlation():
    event = new_event(
        "period.closed",
        EVENT_PAYLOADS["period.closed"](),
        subject="US01:2026-11",
        correlation_id="corr-9",
    )
    assert event.specversion == "1.0"
    assert event.id and event.source == "urn:q2c:hub"
    assert event.time is not None and event.time.tzinfo is not None
    assert event.correlationid == "corr-9"


def test_to_json_is_structured_mode_without_nulls_and_round_trips():
    event = new_event(
        "proposal.approved",
        Proposal.model_validate(EVENT_PAYLOADS["proposal.approved"]()),
        event_id="evt-7",
        source="urn:test:cpq",
    )
    body = orjson.loads(event.to_json())
    assert "dataschema" not in body and "correlationid" not in body
    assert body["data"]["total"] == {"amount": "26025.00", "currency": "USD"}
    assert CloudEvent.model_validate_json(event.to_json()) == event


# --- event data per type ---------------------------------------------------------------------


CATALOGUE = {**INBOUND_TYPES, **OUTBOUND_TYPES}


def test_every_catalogued_type_has_a_sample():
    assert set(EVENT_PAYLOADS) == set(CATALOGUE)


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_validate_data_returns_the_model_of_the_type(event_type):
    event = new_event(event_type, EVENT_PAYLOADS[event_type]())
    data = validate_data(event)
    assert isinstance(data, CATALOGUE[event_type])


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_validate_data_refuses_unknown_keys_in_every_type(event_type):
    event = new_event(event_type, {**EVENT_PAYLOADS[event_type](), "surprise": 1})
    with pytest.raises(PydanticValidationError) as caught:
        validate_data(event)
    assert [(e["loc"], e["type"]) for e in caught.value.errors()] == [
        (("surprise",), "extra_forbidden")
    ]


def test_validate_data_reports_the_broken_field_of_the_payload():
    payload = edit(EVENT_PAYLOADS["time.approved"](), "quantity", 7.5)
    with pytest.raises(PydanticValidationError) as caught:
        validate_data(new_event("time.approved", payload))
    [error] = caught.value.errors()
    assert error["loc"] == ("quantity",)
    assert "floating-point number 7.5" in error["msg"]


def test_billing_event_types_share_one_model():
    for event_type in (
        "time.approved",
        "expense.approved",
        "milestone.completed",
        "usage.recorded",
    ):
        assert isinstance(
            validate_data(new_event(event_type, EVENT_PAYLOADS[event_type]())), BillingEvent
        )


def test_validate_data_needs_a_payload():
    with pytest.raises(PydanticValidationError):
        validate_data(new_event("period.closed", {}))


# --- independent check: the official CloudEvents SDK reads what we write ---------------------


@pytest.mark.parametrize("event_type", sorted(CATALOGUE))
def test_official_sdk_parses_our_structured_json(event_type):
    ours = new_event(
        event_type,
        EVENT_PAYLOADS[event_type](),
        source="urn:q2c:test",
        subject="key-1",
        correlation_id="corr-1",
    )
    parsed = sdk_from_json(ours.to_json())
    assert parsed["specversion"] == "1.0"
    assert parsed["id"] == ours.id
    assert parsed["source"] == "urn:q2c:test"
    assert parsed["type"] == event_type
    assert parsed["subject"] == "key-1"
    assert parsed["correlationid"] == "corr-1"
    assert parsed["time"] == ours.time.isoformat().replace("+00:00", "Z")
    assert parsed.data == orjson.loads(ours.to_json())["data"]


def test_official_sdk_core_validates_our_event_strictly():
    ours = new_event(
        "invoice.finalized", EVENT_PAYLOADS["invoice.finalized"](), correlation_id="corr-2"
    )
    parsed = JSONFormat().read(None, ours.to_json())
    assert isinstance(parsed, SdkCoreEvent)
    assert parsed.get_id() == ours.id
    assert parsed.get_time() == ours.time
    assert parsed.get_extension("correlationid") == "corr-2"
    assert parsed.get_data() == orjson.loads(ours.to_json())["data"]


def test_we_parse_what_the_official_sdk_writes():
    attributes = {
        "type": "period.closed",
        "source": "urn:erp:netsuite",
        "subject": "US01",
        "correlationid": "corr-3",
    }
    sdk_event = SdkHttpEvent(attributes, EVENT_PAYLOADS["period.closed"]())
    body = sdk_to_json(sdk_event)
    ours = CloudEvent.model_validate_json(body)
    assert ours.id == sdk_event["id"]
    assert ours.correlationid == "corr-3"
    assert ours.time is not None and ours.time.tzinfo is not None
    assert validate_data(ours).legal_entity == "US01"
