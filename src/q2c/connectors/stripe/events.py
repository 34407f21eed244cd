"""Emulated event log and usage metering (``/v1/events``, ``/v1/billing/meters``,
``/v1/billing/meter_events``).

Every state change records the event Stripe would send, with a snapshot of the object.
Meter events are accepted synchronously and aggregated later, as Stripe does.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from q2c.connectors.stripe import objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    created_filter,
    decimal_value,
    fields,
    integer,
    required,
    string,
    string_list,
)
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["routes"]


# --- events ----------------------------------------------------------------------------------


def list_events(call: Call) -> dict[str, Any]:
    """``type`` (``*`` wildcards allowed) or ``types[]`` (up to 20), ``created`` bounds.

    Simplification: Stripe keeps events 30 days; the emulator keeps them all.
    """
    params = call.params
    single = params.get("type")
    many = string_list(params, "types")
    if single is not None and many:
        raise StripeApiError(
            400, "You may only specify one of these parameters: type, types.", param="types"
        )
    if len(many) > 20:
        raise StripeApiError(400, "Invalid types: at most 20 event types", param="types")
    patterns = many or ([str(single)] if single else [])
    in_range = created_filter(params)
    matches = [
        e
        for e in call.state.all_of("event")
        if in_range(e["created"])
        and (not patterns or any(fnmatch.fnmatchcase(e["type"], p) for p in patterns))
    ]
    return call.state.page(matches, params, url="/v1/events")


def retrieve_event(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("event", call.arg("event")))


# --- billing meters and meter events ---------------------------------------------------------


def create_meter(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    event_name = string(params, "event_name", max_length=100) or required(params, "event_name")
    if any(m["event_name"] == event_name for m in state.all_of("billing.meter")):
        raise StripeApiError(
            400, f"A meter with event_name {event_name} already exists.", param="event_name"
        )
    values = {
        "display_name": string(params, "display_name", max_length=250)
        or required(params, "display_name"),
        "event_name": event_name,
        "default_aggregation": params.get("default_aggregation")
        or required(params, "default_aggregation"),
        "customer_mapping": params.get("customer_mapping"),
        "value_settings": params.get("value_settings"),
    }
    meter = objects.meter(state.new_id("mtr"), state.now(), values)
    state.insert(meter)
    return state.render(meter)


def list_meters(call: Call) -> dict[str, Any]:
    return call.state.page(
        call.state.all_of("billing.meter"), call.params, url="/v1/billing/meters"
    )


def create_meter_event(call: Call) -> dict[str, Any]:
    """Accepted synchronously, aggregated later (as Stripe does).

    Stripe enforces ``identifier`` uniqueness over a rolling 24 hours by dropping duplicates
    during processing; here a duplicate is accepted and not aggregated a second time.
    """
    state, params = call.state, call.params
    event_name = string(params, "event_name", max_length=100) or required(params, "event_name")
    payload = params.get("payload")
    if not isinstance(payload, dict) or not payload:
        required({}, "payload")
    assert isinstance(payload, dict)
    meter = next((m for m in state.all_of("billing.meter") if m["event_name"] == event_name), None)
    customer_key = (
        meter["customer_mapping"]["event_payload_key"] if meter else ("stripe_customer_id")
    )
    value_key = meter["value_settings"]["event_payload_key"] if meter else "value"
    for key in (customer_key, value_key):
        if not payload.get(key):
            raise StripeApiError(
                400,
                f"Missing required param: payload[{key}].",
                code="parameter_missing",
                param=f"payload[{key}]",
            )
    if decimal_value(payload, value_key) is None:
        raise StripeApiError(400, "Invalid payload value", param=f"payload[{value_key}]")
    now = state.now()
    timestamp = integer(params, "timestamp") or now
    if timestamp < now - 35 * 86400 or timestamp > now + 300:
        raise StripeApiError(
            400,
            "Invalid timestamp: must be within the past 35 calendar days or up to 5 minutes "
            "in the future.",
            param="timestamp",
        )
    identifier = string(params, "identifier", max_length=100) or state.new_id("mev")
    event = objects.meter_event(
        now,
        event_name=event_name,
        identifier=identifier,
        payload={k: str(v) for k, v in payload.items()},
        timestamp=timestamp,
    )
    with state.lock:
        seen = state.meter_identifiers.get(identifier)
        duplicate = seen is not None and state.clock() - seen < 24 * 3600
        if not duplicate:
            state.meter_identifiers[identifier] = state.clock()
            state.meter_events.append(event)
    return dict(event)


def routes() -> list[Route]:
    return [
        Route("GET", "/v1/events", list_events, PAGING | {"created", "type", "types"}),
        Route("GET", "/v1/events/{event}", retrieve_event),
        Route(
            "POST",
            "/v1/billing/meters",
            create_meter,
            fields("display_name event_name default_aggregation customer_mapping value_settings"),
        ),
        Route("GET", "/v1/billing/meters", list_meters, PAGING | {"status"}),
        Route(
            "POST",
            "/v1/billing/meter_events",
            create_meter_event,
            fields("event_name payload identifier timestamp"),
        ),
    ]
