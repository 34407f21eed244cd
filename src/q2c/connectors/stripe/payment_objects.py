"""Stripe payment objects for the emulator: payment intents, charges, invoice payments.

Built with every top-level field Stripe returns (checked against Stripe's fixtures by the
fidelity tests); see ``objects.py`` for the conventions.
"""

from __future__ import annotations

from typing import Any

from q2c.connectors.stripe.objects import NO_ADDRESS, list_object

__all__ = [
    "charge",
    "invoice_payment",
    "payment_intent",
]


def payment_intent(
    object_id: str,
    created: int,
    *,
    amount: int,
    currency: str,
    customer_id: str | None,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Card-like payment methods only; no next actions (3-D Secure) are emulated."""
    types = params.get("payment_method_types") or ["card"]
    return {
        "id": object_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": "automatic",
        "client_secret": f"{object_id}_secret_{object_id[-12:]}",
        "confirmation_method": "automatic",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "customer_account": None,
        "description": params.get("description"),
        "excluded_payment_method_types": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "managed_payments": None,
        "metadata": {},
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": params.get("payment_method"),
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": list(types),
        "processing": None,
        "receipt_email": params.get("receipt_email"),
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "requires_payment_method"
        if not params.get("payment_method")
        else "requires_confirmation",
        "transfer_data": None,
        "transfer_group": None,
    }


def charge(
    object_id: str,
    created: int,
    *,
    intent: dict[str, Any],
    method_type: str,
    brand: str | None,
    last4: str | None,
) -> dict[str, Any]:
    """A succeeded charge of a payment intent (no balance transactions, refunds or disputes)."""
    details: dict[str, Any] = {"type": method_type}
    if method_type == "card":
        details["card"] = {
            "brand": brand,
            "country": "US",
            "exp_month": 12,
            "exp_year": 2034,
            "funding": "credit",
            "last4": last4,
            "network": brand,
        }
    else:
        details[method_type] = {"last4": last4}
    return {
        "id": object_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"],
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": None,
        "billing_details": {
            "address": dict(NO_ADDRESS),
            "email": None,
            "name": None,
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "Q2C SANDBOX",
        "captured": True,
        "created": created,
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None,
        "failure_message": None,
        "fraud_details": {},
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": {
            "advice_code": None,
            "network_advice_code": None,
            "network_decline_code": None,
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "seller_message": "Payment complete.",
            "type": "authorized",
        },
        "paid": True,
        "payment_intent": intent["id"],
        "payment_method": intent["payment_method"],
        "payment_method_details": details,
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "refunds": list_object([], has_more=False, url=f"/v1/charges/{object_id}/refunds"),
        "review": None,
        "shipping": None,
        "source": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded",
        "transfer_data": None,
        "transfer_group": None,
    }


def invoice_payment(
    object_id: str,
    created: int,
    *,
    invoice: dict[str, Any],
    amount: int,
    payment_intent_id: str,
) -> dict[str, Any]:
    return {
        "id": object_id,
        "object": "invoice_payment",
        "amount_paid": amount,
        "amount_requested": amount,
        "created": created,
        "currency": invoice["currency"],
        "invoice": invoice["id"],
        "is_default": True,
        "livemode": False,
        "payment": {"payment_intent": payment_intent_id, "type": "payment_intent"},
        "status": "paid",
        "status_transitions": {"canceled_at": None, "paid_at": created},
    }
