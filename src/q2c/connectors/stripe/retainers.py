"""Usage and retainer billing on Stripe: meter events, recurring prices, subscriptions.

* Usage is reported as Billing meter events (``POST /v1/billing/meter_events``): the
  external id is the event's ``identifier`` (Stripe drops duplicates within at least 24
  hours) and its Idempotency-Key.
* A retainer fee is a product with a recurring price found by lookup key (the external id);
  a changed fee creates a new price that takes the key over (``transfer_lookup_key``), so
  the old subscriptions keep their price and new ones get the new fee.
* The retainer subscription carries ``metadata[q2c_key]`` and is found by search before it
  is created; it is sent as invoices (``collection_method=send_invoice``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from q2c.canonical.money import Money
from q2c.connectors.stripe import payloads
from q2c.connectors.stripe.rest import StripeRest, idempotency_key

__all__ = [
    "RecurringPrice",
    "create_retainer_subscription",
    "ensure_recurring_price",
    "report_usage",
]

MAX_IDENTIFIER = 100


@dataclass(frozen=True, slots=True)
class RecurringPrice:
    product_id: str
    price_id: str


def report_usage(
    api: StripeRest,
    customer_billing_id: str,
    *,
    event_name: str,
    quantity: Decimal,
    occurred_at: datetime,
    external_id: str,
) -> str:
    """One meter event for the customer; returns its identifier."""
    identifier = (
        external_id
        if len(external_id) <= MAX_IDENTIFIER
        else hashlib.sha256(external_id.encode()).hexdigest()
    )
    when = occurred_at if occurred_at.tzinfo else occurred_at.replace(tzinfo=UTC)
    api.post(
        "/v1/billing/meter_events",
        {
            "event_name": event_name,
            "identifier": identifier,
            "timestamp": int(when.timestamp()),
            "payload": {"stripe_customer_id": customer_billing_id, "value": format(quantity, "f")},
        },
        key=idempotency_key("meter_event", identifier),
    )
    return identifier


def ensure_recurring_price(
    api: StripeRest,
    *,
    external_id: str,
    name: str,
    amount: Money,
    interval: str = "month",
    interval_count: int = 1,
) -> RecurringPrice:
    """The product and recurring price for a retainer fee, reused while the fee holds."""
    unit_amount = payloads.stripe_amount(amount, field="retainer fee")
    found = api.get("/v1/prices", {"lookup_keys": [external_id], "limit": 1})["data"]
    for price in found:
        recurring = price.get("recurring") or {}
        if (
            price["unit_amount"] == unit_amount
            and price["currency"] == amount.currency.lower()
            and recurring.get("interval") == interval
            and recurring.get("interval_count") == interval_count
        ):
            return RecurringPrice(str(price["product"]), str(price["id"]))
    product_id = str(found[0]["product"]) if found else _product(api, external_id, name)
    price = api.post(
        "/v1/prices",
        {
            "product": product_id,
            "currency": amount.currency.lower(),
            "unit_amount": unit_amount,
            "recurring": {"interval": interval, "interval_count": interval_count},
            "lookup_key": external_id,
            "transfer_lookup_key": True,
            "metadata": {"q2c_key": external_id},
        },
        key=idempotency_key(
            "price", external_id, str(unit_amount), amount.currency, interval, str(interval_count)
        ),
    )
    return RecurringPrice(product_id, str(price["id"]))


def _product(api: StripeRest, external_id: str, name: str) -> str:
    existing = api.find_by_metadata("products", "q2c_key", external_id)
    if existing is not None:
        return str(existing["id"])
    created = api.post(
        "/v1/products",
        {"name": name, "metadata": {"q2c_key": external_id}},
        key=idempotency_key("product", external_id),
    )
    return str(created["id"])


def create_retainer_subscription(
    api: StripeRest,
    customer_billing_id: str,
    *,
    external_id: str,
    price_id: str,
    days_until_due: int = 30,
    quantity: int = 1,
) -> str:
    """The subscription billing the retainer price each period; returns its id."""
    existing = api.find_by_metadata("subscriptions", "q2c_key", external_id)
    if existing is not None:
        return str(existing["id"])
    created = api.post(
        "/v1/subscriptions",
        {
            "customer": customer_billing_id,
            "items": [{"price": price_id, "quantity": quantity}],
            "collection_method": "send_invoice",
            "days_until_due": days_until_due,
            "metadata": {"q2c_key": external_id},
        },
        key=idempotency_key("subscription", external_id),
    )
    return str(created["id"])
