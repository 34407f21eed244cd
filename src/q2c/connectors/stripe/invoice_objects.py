"""Stripe billing objects for the emulator: invoice items, invoices, line items, subscriptions.

Built with every top-level field Stripe returns (checked against Stripe's fixtures by the
fidelity tests); see ``objects.py`` for the conventions.
"""

from __future__ import annotations

from typing import Any

from q2c.connectors.stripe.objects import list_object

__all__ = [
    "invoice",
    "invoice_item",
    "line_item",
    "subscription",
    "subscription_item",
]


def invoice_item(
    object_id: str,
    created: int,
    *,
    customer_id: str,
    currency: str,
    amount: int,
    description: str | None,
    period: dict[str, int],
    tax_rate_ids: list[str],
) -> dict[str, Any]:
    """An item created with ``amount``: quantity 1, no Price object behind it.

    Simplification: Stripe backs such items with an inline price; the emulator leaves
    ``pricing.price_details`` null instead of creating hidden prices and products.
    """
    return {
        "id": object_id,
        "object": "invoiceitem",
        "amount": amount,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "date": created,
        "description": description,
        "discountable": True,
        "discounts": [],
        "invoice": None,
        "livemode": False,
        "metadata": {},
        "net_amount": amount,
        "parent": None,
        "period": period,
        "pricing": {
            "price_details": None,
            "type": "price_details",
            "unit_amount_decimal": str(amount),
        },
        "proration": False,
        "quantity": 1,
        "quantity_decimal": "1",
        "tax_rates": [],  # rendered from _tax_rates
        "test_clock": None,
        "_tax_rates": list(tax_rate_ids),
    }


def line_item(
    object_id: str,
    *,
    invoice_id: str,
    amount: int,
    currency: str,
    description: str | None,
    metadata: dict[str, str],
    period: dict[str, int],
    quantity: int,
    taxes: list[dict[str, Any]],
    invoice_item_id: str | None = None,
    subscription_id: str | None = None,
    subscription_item_id: str | None = None,
    price_id: str | None = None,
    product_id: str | None = None,
) -> dict[str, Any]:
    if subscription_item_id is not None:
        parent: dict[str, Any] = {
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
            "type": "subscription_item_details",
        }
    else:
        parent = {
            "invoice_item_details": {
                "invoice_item": invoice_item_id,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": None,
            },
            "subscription_item_details": None,
            "type": "invoice_item_details",
        }
    price_details = {"price": price_id, "product": product_id} if price_id is not None else None
    return {
        "id": object_id,
        "object": "line_item",
        "amount": amount,
        "currency": currency,
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": False,
        "metadata": dict(metadata),
        "parent": parent,
        "period": dict(period),
        "pretax_credit_amounts": [],
        "pricing": {
            "price_details": price_details,
            "type": "price_details",
            "unit_amount_decimal": str(amount // quantity if quantity else amount),
        },
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription_id,
        "subtotal": amount,
        "taxes": taxes,
    }


def invoice(
    object_id: str,
    created: int,
    *,
    customer: dict[str, Any],
    currency: str,
    account_country: str,
    account_name: str,
    params: dict[str, Any],
    billing_reason: str = "manual",
    subscription_id: str | None = None,
) -> dict[str, Any]:
    """A draft invoice; amounts are filled in by ``invoicing.recompute``."""
    collection = params.get("collection_method") or "charge_automatically"
    return {
        "id": object_id,
        "object": "invoice",
        "account_country": account_country,
        "account_name": account_name,
        "account_tax_ids": None,
        "amount_due": 0,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_remaining": 0,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": params.get("auto_advance", False),
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": collection,
        "created": created,
        "currency": currency,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": customer["address"],
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": customer["phone"],
        "customer_shipping": customer["shipping"],
        "customer_tax_exempt": customer["tax_exempt"],
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "due_date": params.get("due_date"),
        "effective_at": params.get("effective_at"),
        "ending_balance": None,
        "footer": params.get("footer"),
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": None,  # rendered from the invoice's line items
        "livemode": False,
        "metadata": {},
        "next_payment_attempt": None,
        "number": None,
        "on_behalf_of": None,
        "parent": (
            {
                "quote_details": None,
                "subscription_details": {"metadata": None, "subscription": subscription_id},
                "type": "subscription_details",
            }
            if subscription_id
            else None
        ),
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": created,
        "period_start": created,
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "draft",
        "status_transitions": {
            "finalized_at": None,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subscription": subscription_id,
        "subtotal": 0,
        "subtotal_excluding_tax": 0,
        "test_clock": None,
        "total": 0,
        "total_discount_amounts": [],
        "total_excluding_tax": 0,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": None,
        "_days_until_due": params.get("days_until_due"),
    }


def subscription_item(
    object_id: str,
    created: int,
    *,
    subscription_id: str,
    price_object: dict[str, Any],
    quantity: int,
    period: tuple[int, int],
) -> dict[str, Any]:
    recurring = price_object["recurring"] or {}
    return {
        "id": object_id,
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": period[1],
        "current_period_start": period[0],
        "discounts": [],
        "metadata": {},
        "plan": {
            "id": price_object["id"],
            "object": "plan",
            "active": price_object["active"],
            "amount": price_object["unit_amount"],
            "amount_decimal": price_object["unit_amount_decimal"],
            "billing_scheme": "per_unit",
            "created": price_object["created"],
            "currency": price_object["currency"],
            "interval": recurring.get("interval"),
            "interval_count": recurring.get("interval_count"),
            "livemode": False,
            "metadata": {},
            "meter": recurring.get("meter"),
            "nickname": price_object["nickname"],
            "product": price_object["product"],
            "tiers_mode": None,
            "transform_usage": None,
            "trial_period_days": None,
            "usage_type": recurring.get("usage_type", "licensed"),
        },
        "price": dict(price_object),
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    object_id: str,
    created: int,
    *,
    customer_id: str,
    currency: str,
    items: list[dict[str, Any]],
    period: tuple[int, int],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Active from creation; no trials, schedules, pauses or renewals are emulated."""
    return {
        "id": object_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": period[0],
        "billing_cycle_anchor_config": None,
        "billing_mode": {"flexible": None, "type": "classic"},
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": params.get("collection_method") or "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": params.get("days_until_due"),
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": params.get("description"),
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": list_object(
            items, has_more=False, url=f"/v1/subscription_items?subscription={object_id}"
        ),
        "latest_invoice": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": "active",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": None,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": None,
    }
