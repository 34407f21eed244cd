"""Emulated subscriptions: created active, with a first invoice for the first period.

Creating a subscription bills its first period at once, as Stripe does: an invoice with
``billing_reason=subscription_create`` and one line per subscription item is created and
finalized (``latest_invoice``). Simplifications: no trials, proration, schedules, pauses,
cancellation or renewals (the next period is not billed by the emulator); metered prices
add no line to the first invoice.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any

from q2c.connectors.stripe import invoice_objects as objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    created_filter,
    integer,
    merge_metadata,
    required,
    string,
)
from q2c.connectors.stripe.invoicing import finalize, new_draft, recompute
from q2c.connectors.stripe.search import search_page
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["period_end", "routes"]


def period_end(start: int, interval: str, count: int) -> int:
    """The end of a billing period (calendar months and years, like Stripe's anchors)."""
    begin = datetime.fromtimestamp(start, UTC)
    if interval in ("day", "week"):
        days = count * (7 if interval == "week" else 1)
        return int((begin + timedelta(days=days)).timestamp())
    months = count * (12 if interval == "year" else 1)
    year, month = divmod(begin.month - 1 + months, 12)
    year, month = begin.year + year, month + 1
    day = min(begin.day, calendar.monthrange(year, month)[1])
    return int(begin.replace(year=year, month=month, day=day).timestamp())


def create_subscription(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    customer = state.get("customer", str(required(params, "customer")), param="customer")
    specs = params.get("items")
    if not isinstance(specs, list) or not specs:
        required({}, "items")
    assert isinstance(specs, list)
    prices = []
    for index, spec in enumerate(specs):
        if not isinstance(spec, dict) or not spec.get("price"):
            required({}, f"items[{index}][price]")
        price = state.get("price", str(spec["price"]), param=f"items[{index}][price]")
        if price["recurring"] is None:
            raise StripeApiError(
                400,
                "The price specified is set to `type=one_time` but this field only accepts "
                "prices with `type=recurring`.",
                param=f"items[{index}][price]",
            )
        quantity = integer(spec, "quantity", minimum=0)
        prices.append((price, 1 if quantity is None else quantity))
    currencies = {p["currency"] for p, _ in prices}
    intervals = {(p["recurring"]["interval"], p["recurring"]["interval_count"]) for p, _ in prices}
    if len(currencies) > 1 or len(intervals) > 1:
        raise StripeApiError(
            400,
            "All prices on a subscription must have the same currency and billing interval.",
            param="items",
        )
    code = currencies.pop()
    interval, count = intervals.pop()
    now = state.now()
    period = (now, period_end(now, interval, count))
    subscription_id = state.new_id("sub")
    items = [
        objects.subscription_item(
            state.new_id("si"),
            now,
            subscription_id=subscription_id,
            price_object=state.render(price),
            quantity=quantity,
            period=period,
        )
        for price, quantity in prices
    ]
    subscription = objects.subscription(
        subscription_id,
        now,
        customer_id=customer["id"],
        currency=code,
        items=items,
        period=period,
        params={
            "collection_method": params.get("collection_method"),
            "days_until_due": integer(params, "days_until_due", minimum=0),
            "description": string(params, "description", max_length=500),
        },
    )
    subscription["metadata"] = merge_metadata({}, params.get("metadata"))
    with state.lock:
        state.insert(subscription)
        if customer["currency"] is None:
            customer["currency"] = code
    call.emit("customer.subscription.created", subscription)
    invoice_params = {
        "collection_method": subscription["collection_method"],
        "auto_advance": "true",
    }
    if subscription["collection_method"] == "send_invoice":
        invoice_params["days_until_due"] = str(subscription["days_until_due"] or 30)
    invoice = new_draft(
        call,
        customer,
        code,
        invoice_params,
        billing_reason="subscription_create",
        subscription_id=subscription_id,
    )
    for item, (price, quantity) in zip(items, prices, strict=True):
        if price["recurring"]["usage_type"] == "metered":
            continue
        product = state.find(price["product"]) or {"name": price["product"]}
        line = objects.line_item(
            state.new_id("il"),
            invoice_id=invoice["id"],
            amount=price["unit_amount"] * quantity,
            currency=code,
            description=f"{quantity} x {product['name']} (at {price['unit_amount']} / {interval})",
            metadata={},
            period={"start": period[0], "end": period[1]},
            quantity=quantity,
            taxes=[],
            subscription_id=subscription_id,
            subscription_item_id=item["id"],
            price_id=price["id"],
            product_id=price["product"],
        )
        line["_sequence"] = state.next_sequence()
        line["_tax_rates"] = []
        line["_invoice_item"] = None
        state.invoice_lines[invoice["id"]].append(line)
    recompute(state, invoice)
    call.emit("invoice.created", invoice)
    finalize(call, invoice)
    subscription["latest_invoice"] = invoice["id"]
    return state.render(subscription)


def retrieve_subscription(call: Call) -> dict[str, Any]:
    found = call.state.get("subscription", call.arg("subscription"))
    return call.state.render(found)


def list_subscriptions(call: Call) -> dict[str, Any]:
    params = call.params
    customer, status, price = params.get("customer"), params.get("status"), params.get("price")
    in_range = created_filter(params)
    matches = [
        s
        for s in call.state.all_of("subscription")
        if (customer is None or s["customer"] == customer)
        and (status in (None, "all") or s["status"] == status)
        and (price is None or any(i["price"]["id"] == price for i in s["items"]["data"]))
        and in_range(s["created"])
    ]
    return call.state.page(matches, params, url="/v1/subscriptions")


def search_subscriptions(call: Call) -> dict[str, Any]:
    return search_page(
        call.state,
        "subscription",
        call.params,
        fields=frozenset({"created", "metadata", "status"}),
        resource="subscriptions",
    )


def routes() -> list[Route]:
    return [
        Route(
            "POST",
            "/v1/subscriptions",
            create_subscription,
            frozenset(
                {
                    "customer",
                    "items",
                    "collection_method",
                    "days_until_due",
                    "description",
                    "metadata",
                }
            ),
        ),
        Route(
            "GET",
            "/v1/subscriptions/search",
            search_subscriptions,
            frozenset({"query", "limit", "page"}),
        ),
        Route(
            "GET",
            "/v1/subscriptions",
            list_subscriptions,
            PAGING | {"customer", "status", "price", "created"},
        ),
        Route("GET", "/v1/subscriptions/{subscription}", retrieve_subscription),
    ]
