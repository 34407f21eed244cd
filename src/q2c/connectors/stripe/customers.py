"""Emulated customers and tax rates (``/v1/customers``, ``/v1/tax_rates``).

Customers get Stripe's invoice numbering: an ``invoice_prefix`` (3-12 upper-case letters or
digits, generated when not given) and ``next_invoice_sequence``. Their ``currency`` is set by
their first invoice item or invoice. Tax rates are percentage rates (up to 4 decimal places,
``inclusive`` or not); Stripe sends ``percentage`` as a JSON number.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from q2c.connectors.stripe import objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    boolean,
    created_filter,
    decimal_value,
    fields,
    json_number,
    merge_metadata,
    required,
    string,
    string_list,
)
from q2c.connectors.stripe.search import search_page
from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["routes"]

_FOUR_PLACES = Decimal("0.0001")


# --- customers -------------------------------------------------------------------------------

_CUSTOMER_FIELDS = fields(
    "address description email invoice_prefix invoice_settings metadata name phone "
    "preferred_locales tax_exempt"
)


def _customer_values(params: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, limit in (("description", 350), ("email", 512), ("name", 256), ("phone", 20)):
        if name in params:
            values[name] = string(params, name, max_length=limit)
    if "address" in params:
        values["address"] = objects.address(params["address"] or None)
    if "tax_exempt" in params:
        exempt = params["tax_exempt"]
        if exempt not in ("none", "exempt", "reverse"):
            raise StripeApiError(400, f"Invalid tax_exempt: {exempt}", param="tax_exempt")
        values["tax_exempt"] = exempt
    if "preferred_locales" in params:
        values["preferred_locales"] = string_list(params, "preferred_locales")
    return values


def _invoice_settings(current: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """``invoice_settings[default_payment_method]`` and ``[footer]``, merged."""
    update = params.get("invoice_settings")
    if update is None:
        return current
    if not isinstance(update, dict) or not set(update) <= {"default_payment_method", "footer"}:
        raise StripeApiError(400, "Invalid invoice_settings", param="invoice_settings")
    return {**current, **{k: v or None for k, v in update.items()}}


def _invoice_prefix(state: StripeState, params: dict[str, Any]) -> str:
    prefix = params.get("invoice_prefix")
    if prefix is None:
        return state.token(8, "0123456789ABCDEF")
    if not (3 <= len(prefix) <= 12 and prefix.isalnum() and prefix == prefix.upper()):
        raise StripeApiError(
            400,
            "Invalid invoice_prefix: must be 3-12 uppercase letters or numbers",
            param="invoice_prefix",
        )
    return str(prefix)


def create_customer(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    customer = objects.customer(
        state.new_id("cus"),
        state.now(),
        invoice_prefix=_invoice_prefix(state, params),
        params=params,
    )
    customer.update(_customer_values(params))
    customer["invoice_settings"] = _invoice_settings(customer["invoice_settings"], params)
    customer["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(customer)
    call.emit("customer.created", customer)
    return state.render(customer)


def retrieve_customer(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("customer", call.arg("customer")))


def update_customer(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    customer = state.get("customer", call.arg("customer"))
    before = {k: customer[k] for k in _CUSTOMER_FIELDS if k in customer}
    customer.update(_customer_values(params))
    customer["invoice_settings"] = _invoice_settings(customer["invoice_settings"], params)
    if "invoice_prefix" in params:
        customer["invoice_prefix"] = _invoice_prefix(state, params)
    customer["metadata"] = merge_metadata(customer["metadata"], params.get("metadata"))
    changed = {k: v for k, v in before.items() if customer.get(k) != v}
    if changed:
        call.emit("customer.updated", customer, previous_attributes=changed)
    return state.render(customer)


def list_customers(call: Call) -> dict[str, Any]:
    params = call.params
    email = params.get("email")
    in_range = created_filter(params)
    matches = [
        c
        for c in call.state.all_of("customer")
        if (email is None or c["email"] == email) and in_range(c["created"])
    ]
    return call.state.page(matches, params, url="/v1/customers")


def search_customers(call: Call) -> dict[str, Any]:
    return search_page(
        call.state,
        "customer",
        call.params,
        fields=frozenset({"created", "email", "metadata", "name", "phone"}),
        resource="customers",
    )


# --- tax rates -------------------------------------------------------------------------------


def create_tax_rate(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    percentage = decimal_value(params, "percentage")
    if percentage is None:
        required(params, "percentage")
    assert percentage is not None
    if not 0 <= percentage <= 100 or percentage != percentage.quantize(_FOUR_PLACES):
        raise StripeApiError(
            400,
            "Invalid percentage: must be between 0 and 100 with at most 4 decimal places",
            param="percentage",
        )
    inclusive = boolean(params, "inclusive")
    if inclusive is None:
        required(params, "inclusive")
    values = {
        "display_name": string(params, "display_name", max_length=50)
        or required(params, "display_name"),
        "percentage": json_number(percentage),
        "inclusive": inclusive,
        "active": boolean(params, "active") if "active" in params else True,
        "country": string(params, "country"),
        "description": string(params, "description"),
        "jurisdiction": string(params, "jurisdiction", max_length=50),
        "state": string(params, "state"),
        "tax_type": string(params, "tax_type"),
    }
    rate = objects.tax_rate(state.new_id("txr"), state.now(), values)
    rate["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(rate)
    call.emit("tax_rate.created", rate)
    return state.render(rate)


def retrieve_tax_rate(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("tax_rate", call.arg("tax_rate")))


def update_tax_rate(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    rate = state.get("tax_rate", call.arg("tax_rate"))
    for name in ("country", "description", "jurisdiction", "state", "tax_type", "display_name"):
        if name in params:
            rate[name] = string(params, name)
    if "active" in params:
        rate["active"] = boolean(params, "active")
    rate["metadata"] = merge_metadata(rate["metadata"], params.get("metadata"))
    call.emit("tax_rate.updated", rate)
    return state.render(rate)


def list_tax_rates(call: Call) -> dict[str, Any]:
    params = call.params
    active, inclusive = boolean(params, "active"), boolean(params, "inclusive")
    in_range = created_filter(params)
    matches = [
        r
        for r in call.state.all_of("tax_rate")
        if (active is None or r["active"] == active)
        and (inclusive is None or r["inclusive"] == inclusive)
        and in_range(r["created"])
    ]
    return call.state.page(matches, params, url="/v1/tax_rates")


def routes() -> list[Route]:
    created = fields("created")
    return [
        Route("POST", "/v1/customers", create_customer, _CUSTOMER_FIELDS),
        Route("GET", "/v1/customers/search", search_customers, fields("query limit page")),
        Route("GET", "/v1/customers", list_customers, PAGING | created | {"email"}),
        Route("GET", "/v1/customers/{customer}", retrieve_customer),
        Route("POST", "/v1/customers/{customer}", update_customer, _CUSTOMER_FIELDS),
        Route(
            "POST",
            "/v1/tax_rates",
            create_tax_rate,
            fields(
                "display_name percentage inclusive active country description jurisdiction "
                "metadata state tax_type"
            ),
        ),
        Route("GET", "/v1/tax_rates", list_tax_rates, PAGING | created | {"active", "inclusive"}),
        Route("GET", "/v1/tax_rates/{tax_rate}", retrieve_tax_rate),
        Route(
            "POST",
            "/v1/tax_rates/{tax_rate}",
            update_tax_rate,
            fields("active country description display_name jurisdiction metadata state tax_type"),
        ),
    ]
