"""The emulator's Stripe objects, built with every top-level field Stripe returns.

Each builder returns a new object as it is stored: the API representation plus private
bookkeeping keys starting with ``_`` (stripped when rendered). Field lists follow Stripe's
published fixtures (stripe/openapi ``fixtures3.json``, checked by the fidelity tests); fields
the emulator has no behaviour for carry Stripe's neutral value (null, ``[]``, ``{}``, 0).
Simplifications are noted where they apply.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "NO_ADDRESS",
    "address",
    "customer",
    "deleted",
    "event",
    "list_object",
    "meter",
    "meter_event",
    "price",
    "product",
    "tax_rate",
]

NO_ADDRESS = {
    "city": None,
    "country": None,
    "line1": None,
    "line2": None,
    "postal_code": None,
    "state": None,
}


def address(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return None
    return {**NO_ADDRESS, **{k: v or None for k, v in value.items() if k in NO_ADDRESS}}


def list_object(data: list[Any], *, has_more: bool, url: str) -> dict[str, Any]:
    return {"object": "list", "data": data, "has_more": has_more, "url": url}


def deleted(object_id: str, object_type: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_type, "deleted": True}


def customer(
    object_id: str, created: int, *, invoice_prefix: str, params: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "customer",
        "address": address(params.get("address")),
        "balance": 0,
        "created": created,
        "currency": None,  # set by the customer's first invoice item or invoice
        "default_source": None,
        "delinquent": False,
        "description": params.get("description"),
        "discount": None,
        "email": params.get("email"),
        "invoice_prefix": invoice_prefix,
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": {},
        "name": params.get("name"),
        "next_invoice_sequence": 1,
        "phone": params.get("phone"),
        "preferred_locales": list(params.get("preferred_locales") or []),
        "shipping": None,
        "tax_exempt": params.get("tax_exempt") or "none",
        "test_clock": None,
    }


def tax_rate(object_id: str, created: int, params: dict[str, Any]) -> dict[str, Any]:
    """Percentage rates only (no ``flat_amount`` rates)."""
    return {
        "id": object_id,
        "object": "tax_rate",
        "active": params.get("active", True),
        "country": params.get("country"),
        "created": created,
        "description": params.get("description"),
        "display_name": params["display_name"],
        "effective_percentage": params["percentage"],
        "flat_amount": None,
        "inclusive": params["inclusive"],
        "jurisdiction": params.get("jurisdiction"),
        "jurisdiction_level": None,
        "livemode": False,
        "metadata": {},
        "percentage": params["percentage"],
        "rate_type": "percentage",
        "state": params.get("state"),
        "tax_type": params.get("tax_type"),
    }


def product(object_id: str, created: int, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "product",
        "active": params.get("active", True),
        "created": created,
        "default_price": None,
        "description": params.get("description"),
        "images": [],
        "livemode": False,
        "marketing_features": [],
        "metadata": {},
        "name": params["name"],
        "package_dimensions": None,
        "shippable": None,
        "statement_descriptor": params.get("statement_descriptor"),
        "tax_code": params.get("tax_code"),
        "type": "service",
        "unit_label": params.get("unit_label"),
        "updated": created,
        "url": None,
    }


def price(
    object_id: str,
    created: int,
    *,
    currency: str,
    product_id: str,
    unit_amount: int,
    recurring: dict[str, Any] | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Per-unit prices only (no tiers, no custom unit amounts)."""
    return {
        "id": object_id,
        "object": "price",
        "active": params.get("active", True),
        "billing_scheme": "per_unit",
        "created": created,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": False,
        "lookup_key": params.get("lookup_key"),
        "metadata": {},
        "nickname": params.get("nickname"),
        "product": product_id,
        "recurring": recurring,
        "tax_behavior": params.get("tax_behavior") or "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring" if recurring else "one_time",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def meter(object_id: str, created: int, params: dict[str, Any]) -> dict[str, Any]:
    mapping = params.get("customer_mapping") or {}
    values = params.get("value_settings") or {}
    return {
        "id": object_id,
        "object": "billing.meter",
        "created": created,
        "customer_mapping": {
            "event_payload_key": mapping.get("event_payload_key", "stripe_customer_id"),
            "type": "by_id",
        },
        "default_aggregation": {
            "formula": (params.get("default_aggregation") or {}).get("formula", "sum")
        },
        "display_name": params["display_name"],
        "event_name": params["event_name"],
        "event_time_window": params.get("event_time_window"),
        "livemode": False,
        "status": "active",
        "status_transitions": {"deactivated_at": None},
        "updated": created,
        "value_settings": {"event_payload_key": values.get("event_payload_key", "value")},
    }


def meter_event(
    created: int, *, event_name: str, identifier: str, payload: dict[str, str], timestamp: int
) -> dict[str, Any]:
    return {
        "object": "billing.meter_event",
        "created": created,
        "event_name": event_name,
        "identifier": identifier,
        "livemode": False,
        "payload": dict(payload),
        "timestamp": timestamp,
    }


def event(
    object_id: str,
    created: int,
    *,
    event_type: str,
    data_object: dict[str, Any],
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    previous_attributes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {"object": data_object}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": object_id,
        "object": "event",
        "api_version": api_version,
        "created": created,
        "data": data,
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
