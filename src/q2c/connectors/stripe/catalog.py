"""Emulated products and prices (``/v1/products``, ``/v1/prices``).

Per-unit prices only, one-time or recurring (``day``/``week``/``month``/``year``,
``licensed`` or ``metered``). A ``lookup_key`` belongs to one price at a time; a new price
takes it over with ``transfer_lookup_key=true``. A product's first price becomes its
``default_price``.
"""

from __future__ import annotations

from typing import Any

from q2c.connectors.stripe import objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    boolean,
    currency,
    fields,
    integer,
    merge_metadata,
    required,
    string,
    string_list,
)
from q2c.connectors.stripe.search import search_page
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["routes"]


# --- products and prices ---------------------------------------------------------------------


def create_product(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    product_id = string(params, "id") or state.new_id("prod")
    if state.find(product_id) is not None:
        raise StripeApiError(
            400,
            "Product already exists.",
            code="resource_already_exists",
            param="id",
        )
    values = {
        "name": string(params, "name", max_length=250) or required(params, "name"),
        "active": boolean(params, "active") if "active" in params else True,
        "description": string(params, "description"),
        "statement_descriptor": string(params, "statement_descriptor", max_length=22),
        "tax_code": string(params, "tax_code"),
        "unit_label": string(params, "unit_label", max_length=12),
    }
    product = objects.product(product_id, state.now(), values)
    product["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(product)
    call.emit("product.created", product)
    return state.render(product)


def retrieve_product(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("product", call.arg("product")))


def list_products(call: Call) -> dict[str, Any]:
    active = boolean(call.params, "active")
    matches = [p for p in call.state.all_of("product") if active is None or p["active"] == active]
    return call.state.page(matches, call.params, url="/v1/products")


def search_products(call: Call) -> dict[str, Any]:
    return search_page(
        call.state,
        "product",
        call.params,
        fields=frozenset({"active", "created", "description", "metadata", "name"}),
        resource="products",
    )


def create_price(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    code = currency(params) or required(params, "currency")
    product_id = params.get("product")
    if product_id is None and params.get("product_data") is None:
        required(params, "product")
    if product_id is not None:
        state.get("product", str(product_id), param="product")
    else:
        data = params["product_data"]
        if not isinstance(data, dict) or not data.get("name"):
            required({}, "product_data[name]")
        product = objects.product(state.new_id("prod"), state.now(), {"name": data["name"]})
        product["metadata"] = merge_metadata({}, data.get("metadata"))
        state.insert(product)
        product_id = product["id"]
    unit_amount = integer(params, "unit_amount", minimum=0)
    if unit_amount is None:
        required(params, "unit_amount")
    assert unit_amount is not None
    recurring = None
    if params.get("recurring") is not None:
        spec = params["recurring"]
        if not isinstance(spec, dict):
            raise StripeApiError(400, "Invalid hash", param="recurring")
        interval = spec.get("interval")
        if interval not in ("day", "week", "month", "year"):
            raise StripeApiError(
                400, f"Invalid recurring[interval]: {interval}", param="recurring[interval]"
            )
        recurring = {
            "interval": interval,
            "interval_count": integer(spec, "interval_count", minimum=1) or 1,
            "meter": spec.get("meter"),
            "trial_period_days": None,
            "usage_type": spec.get("usage_type") or "licensed",
        }
    lookup_key = string(params, "lookup_key", max_length=200)
    if lookup_key is not None:
        taken = [p for p in state.all_of("price") if p["lookup_key"] == lookup_key]
        if taken and boolean(params, "transfer_lookup_key"):
            for other in taken:
                other["lookup_key"] = None
        elif taken:
            raise StripeApiError(
                400,
                f"A price (`{taken[0]['id']}`) already uses that lookup key.",
                param="lookup_key",
            )
    price = objects.price(
        state.new_id("price"),
        state.now(),
        currency=str(code),
        product_id=str(product_id),
        unit_amount=unit_amount,
        recurring=recurring,
        params={
            "lookup_key": lookup_key,
            "nickname": string(params, "nickname"),
            "tax_behavior": params.get("tax_behavior"),
        },
    )
    price["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(price)
    product_obj = state.get("product", str(product_id))
    if product_obj["default_price"] is None:
        product_obj["default_price"] = price["id"]
    call.emit("price.created", price)
    return state.render(price)


def retrieve_price(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("price", call.arg("price")))


def list_prices(call: Call) -> dict[str, Any]:
    params = call.params
    keys = string_list(params, "lookup_keys")
    product_id, active = params.get("product"), boolean(params, "active")
    matches = [
        p
        for p in call.state.all_of("price")
        if (not keys or p["lookup_key"] in keys)
        and (product_id is None or p["product"] == product_id)
        and (active is None or p["active"] == active)
    ]
    return call.state.page(matches, params, url="/v1/prices")


def routes() -> list[Route]:
    return [
        Route(
            "POST",
            "/v1/products",
            create_product,
            fields("id name active description metadata statement_descriptor tax_code unit_label"),
        ),
        Route("GET", "/v1/products/search", search_products, fields("query limit page")),
        Route("GET", "/v1/products", list_products, PAGING | {"active"}),
        Route("GET", "/v1/products/{product}", retrieve_product),
        Route(
            "POST",
            "/v1/prices",
            create_price,
            fields(
                "currency product product_data unit_amount recurring lookup_key "
                "transfer_lookup_key nickname metadata tax_behavior active"
            ),
        ),
        Route("GET", "/v1/prices", list_prices, PAGING | {"lookup_keys", "product", "active"}),
        Route("GET", "/v1/prices/{price}", retrieve_price),
    ]
