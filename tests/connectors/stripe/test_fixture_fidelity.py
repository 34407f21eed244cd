"""Fidelity: the emulator's objects have the fields and JSON types of Stripe's own fixtures.

``fixtures3.json`` (stripe/openapi, see ``../shared/specs/README.md``) holds one example
object per API resource. For every resource the emulator serves, a real object is produced
through the API and compared with the fixture: the same top-level fields, each with the same
JSON type. A null is accepted where the fixture has null or where the official ``stripe``
package declares the field ``Optional`` (its classes are generated from Stripe's OpenAPI
spec, the reference the docs are generated from too).
"""

from __future__ import annotations

import json
import typing
from pathlib import Path
from typing import Any

import pytest
import stripe

from q2c.connectors.stripe.sandbox import StripeSandbox
from tests.connectors.stripe.helpers import Wire

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared/specs/stripe/fixtures3.json"
CLASSES: dict[str, type[Any]] = {
    "customer": stripe.Customer,
    "tax_rate": stripe.TaxRate,
    "invoiceitem": stripe.InvoiceItem,
    "invoice": stripe.Invoice,
    "line_item": stripe.InvoiceLineItem,
    "invoice_payment": stripe.InvoicePayment,
    "payment_intent": stripe.PaymentIntent,
    "charge": stripe.Charge,
    "product": stripe.Product,
    "price": stripe.Price,
    "subscription": stripe.Subscription,
    "subscription_item": stripe.SubscriptionItem,
    "billing.meter": stripe.billing.Meter,
    "billing.meter_event": stripe.billing.MeterEvent,
    "event": stripe.Event,
}
LIST_KEYS = {"object", "data", "has_more", "url"}


@pytest.fixture(scope="module")
def fixtures() -> dict[str, dict[str, Any]]:
    resources: dict[str, dict[str, Any]] = json.loads(FIXTURES.read_text())["resources"]
    return resources


@pytest.fixture(scope="module")
def produced() -> Any:
    """One object of every served resource, made through the API like a client would."""
    box = StripeSandbox(seed=11)
    wire = Wire(box.client(timeout=5.0), box.api_key)
    ok = wire.ok
    customer = ok(wire.post("/v1/customers", {"name": "Fidelity Ltd", "email": "ap@fid.io"}))
    rate = ok(
        wire.post("/v1/tax_rates", {"display_name": "VAT", "percentage": "19", "inclusive": False})
    )
    item = ok(
        wire.post(
            "/v1/invoiceitems",
            {
                "customer": customer["id"],
                "amount": 125000,
                "currency": "eur",
                "tax_rates": [rate["id"]],
                "metadata": {"q2c_key": "L1"},
            },
        )
    )
    draft = ok(
        wire.post(
            "/v1/invoices",
            {
                "customer": customer["id"],
                "pending_invoice_items_behavior": "include",
                "collection_method": "send_invoice",
                "days_until_due": 30,
                "currency": "eur",
            },
        )
    )
    ok(wire.post(f"/v1/invoices/{draft['id']}/finalize"))
    invoice = ok(wire.post(f"/v1/invoices/{draft['id']}/pay", {"payment_method": "pm_card_visa"}))
    payment = ok(wire.get("/v1/invoice_payments", {"invoice": invoice["id"]}))["data"][0]
    intent = ok(wire.get(f"/v1/payment_intents/{payment['payment']['payment_intent']}"))
    charge = ok(wire.get(f"/v1/charges/{intent['latest_charge']}"))
    product = ok(wire.post("/v1/products", {"name": "Retainer"}))
    price = ok(
        wire.post(
            "/v1/prices",
            {
                "product": product["id"],
                "currency": "eur",
                "unit_amount": 500000,
                "recurring": {"interval": "month"},
            },
        )
    )
    subscription = ok(
        wire.post(
            "/v1/subscriptions",
            {
                "customer": customer["id"],
                "items": [{"price": price["id"]}],
                "collection_method": "send_invoice",
                "days_until_due": 30,
            },
        )
    )
    meter = ok(
        wire.post(
            "/v1/billing/meters",
            {
                "display_name": "API calls",
                "event_name": "api_calls",
                "default_aggregation": {"formula": "sum"},
            },
        )
    )
    meter_event = ok(
        wire.post(
            "/v1/billing/meter_events",
            {
                "event_name": "api_calls",
                "payload": {"stripe_customer_id": customer["id"], "value": "3"},
            },
        )
    )
    event = ok(wire.get("/v1/events", {"type": "invoice.paid"}))["data"][0]
    lists = {
        "invoice.lines": invoice["lines"],
        "subscription.items": subscription["items"],
        "charge.refunds": charge["refunds"],
        "GET /v1/customers": ok(wire.get("/v1/customers")),
        "GET /v1/invoices/{id}/lines": ok(wire.get(f"/v1/invoices/{invoice['id']}/lines")),
        "GET /v1/events": ok(wire.get("/v1/events")),
    }
    objects = {
        "customer": customer,
        "tax_rate": rate,
        "invoiceitem": item,
        "invoice": invoice,
        "line_item": invoice["lines"]["data"][0],
        "invoice_payment": payment,
        "payment_intent": intent,
        "charge": charge,
        "product": product,
        "price": price,
        "subscription": subscription,
        "subscription_item": subscription["items"]["data"][0],
        "billing.meter": meter,
        "billing.meter_event": meter_event,
        "event": event,
    }
    yield objects, lists
    box.close()


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", list: "array", dict: "object"}[type(value)]


def optional_fields(cls: type[Any]) -> set[str]:
    """Fields the stripe package types as ``Optional[...]`` / ``Union[..., None]``."""
    return {
        name for name, hint in cls.__annotations__.items() if type(None) in typing.get_args(hint)
    }


@pytest.mark.parametrize("resource", sorted(CLASSES))
def test_same_top_level_fields_as_stripe_fixture(
    resource: str, fixtures: dict[str, dict[str, Any]], produced: Any
) -> None:
    ours = produced[0][resource]
    theirs = fixtures[resource]
    assert sorted(set(theirs) - set(ours)) == [], "fields Stripe returns that we do not"
    assert sorted(set(ours) - set(theirs)) == [], "fields we return that Stripe does not"
    assert ours["object"] == theirs["object"]


@pytest.mark.parametrize("resource", sorted(CLASSES))
def test_same_json_types_as_stripe_fixture(
    resource: str, fixtures: dict[str, dict[str, Any]], produced: Any
) -> None:
    ours, theirs = produced[0][resource], fixtures[resource]
    nullable = optional_fields(CLASSES[resource])
    mismatches = []
    for name, expected in theirs.items():
        got = json_type(ours.get(name))
        want = json_type(expected)
        if got == want or want == "null":
            continue
        if got == "null" and name in nullable:
            continue
        mismatches.append(f"{name}: fixture {want}, emulator {got}")
    assert mismatches == []


def test_nullable_rule_is_not_vacuous(produced: Any) -> None:
    """The Optional look-up finds fields: an empty set would let any null through."""
    assert {"due_date", "number", "effective_at"} <= optional_fields(stripe.Invoice)
    assert "total" not in optional_fields(stripe.Invoice)
    assert produced[0]["invoice"]["total"] > 0


@pytest.mark.parametrize(
    "which",
    [
        "invoice.lines",
        "subscription.items",
        "charge.refunds",
        "GET /v1/customers",
        "GET /v1/invoices/{id}/lines",
        "GET /v1/events",
    ],
)
def test_lists_are_stripe_list_objects(which: str, produced: Any) -> None:
    listed = produced[1][which]
    assert set(listed) == LIST_KEYS
    assert listed["object"] == "list"
    assert isinstance(listed["data"], list)
    assert isinstance(listed["has_more"], bool)
    assert listed["url"].startswith("/v1/")


def test_fixture_objects_keep_their_id_prefixes(produced: Any) -> None:
    prefixes = {
        "customer": "cus_",
        "tax_rate": "txr_",
        "invoiceitem": "ii_",
        "invoice": "in_",
        "line_item": "il_",
        "payment_intent": "pi_",
        "charge": "ch_",
        "product": "prod_",
        "price": "price_",
        "subscription": "sub_",
        "subscription_item": "si_",
        "event": "evt_",
    }
    for resource, prefix in prefixes.items():
        assert produced[0][resource]["id"].startswith(prefix), resource
