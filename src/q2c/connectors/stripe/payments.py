"""Emulated payments: paying invoices, payment intents, charges, invoice payments.

``POST /v1/invoices/{id}/pay`` either records a payment made outside Stripe
(``paid_out_of_band=true``) or charges a payment method through a new PaymentIntent, which
leaves a Charge and an InvoicePayment linking the two (the API's link between invoices and
payments since 2025-03-31.basil). Payment methods are Stripe's test tokens: ``pm_card_visa``,
``pm_card_mastercard``, ``pm_card_amex``, ``pm_usBankAccount_success`` succeed;
``pm_card_chargeDeclined`` and ``pm_card_chargeDeclinedInsufficientFunds`` are declined with
402 ``card_error``. Simplifications: bank debits succeed at once (Stripe keeps them
``processing`` for days); no 3-D Secure, refunds, disputes or partial payments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from q2c.connectors.stripe import payment_objects as objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    boolean,
    created_filter,
    currency,
    integer,
    merge_metadata,
    required,
    string,
    string_list,
)
from q2c.connectors.stripe.invoicing import finalize
from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["TEST_PAYMENT_METHODS", "SandboxPaymentMethod", "routes"]


@dataclass(frozen=True)
class SandboxPaymentMethod:
    method_type: str
    brand: str | None
    last4: str
    decline_code: str | None = None


TEST_PAYMENT_METHODS = {
    "pm_card_visa": SandboxPaymentMethod("card", "visa", "4242"),
    "pm_card_mastercard": SandboxPaymentMethod("card", "mastercard", "4444"),
    "pm_card_amex": SandboxPaymentMethod("card", "amex", "8431"),
    "pm_usBankAccount_success": SandboxPaymentMethod("us_bank_account", None, "6789"),
    "pm_card_chargeDeclined": SandboxPaymentMethod("card", "visa", "0002", "generic_decline"),
    "pm_card_chargeDeclinedInsufficientFunds": SandboxPaymentMethod(
        "card", "visa", "9995", "insufficient_funds"
    ),
}
_DECLINE_MESSAGES = {
    "generic_decline": "Your card was declined.",
    "insufficient_funds": "Your card has insufficient funds.",
}


def _payment_method(payment_method_id: str) -> SandboxPaymentMethod:
    found = TEST_PAYMENT_METHODS.get(payment_method_id)
    if found is None:
        raise StripeApiError(
            404,
            f"No such PaymentMethod: '{payment_method_id}'",
            code="resource_missing",
            param="payment_method",
        )
    return found


def _attempt(call: Call, intent: dict[str, Any], payment_method_id: str) -> bool:
    """Confirm ``intent`` with a test payment method; True when it succeeded."""
    state = call.state
    method = _payment_method(payment_method_id)
    intent["payment_method"] = payment_method_id
    if method.decline_code is not None:
        intent["status"] = "requires_payment_method"
        intent["last_payment_error"] = {
            "code": "card_declined",
            "decline_code": method.decline_code,
            "message": _DECLINE_MESSAGES[method.decline_code],
            "type": "card_error",
        }
        call.emit("payment_intent.payment_failed", intent)
        return False
    charge = objects.charge(
        state.new_id("ch"),
        state.now(),
        intent=intent,
        method_type=method.method_type,
        brand=method.brand,
        last4=method.last4,
    )
    state.insert(charge)
    intent.update(
        status="succeeded",
        amount_received=intent["amount"],
        latest_charge=charge["id"],
        last_payment_error=None,
        payment_method_types=[method.method_type],
    )
    call.emit("charge.succeeded", charge)
    call.emit("payment_intent.succeeded", intent)
    return True


def _declined(intent: dict[str, Any], state: StripeState) -> StripeApiError:
    error = intent["last_payment_error"]
    return StripeApiError(
        402,
        error["message"],
        error_type="card_error",
        code="card_declined",
        extra={"decline_code": error["decline_code"], "payment_intent": state.render(intent)},
    )


# --- invoices --------------------------------------------------------------------------------


def pay_invoice(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    invoice = state.get("invoice", call.arg("invoice"))
    if invoice["status"] == "paid":
        raise StripeApiError(400, "Invoice is already paid", code="invoice_not_editable")
    if invoice["status"] == "void":
        raise StripeApiError(400, "You cannot pay a void invoice.", code="invoice_not_editable")
    if invoice["status"] == "draft":
        finalize(call, invoice)
        if invoice["status"] == "paid":
            return state.render(invoice)
    now = state.now()
    amount = invoice["amount_remaining"]
    if boolean(params, "paid_out_of_band"):
        _mark_paid(call, invoice, amount, now)
        return state.render(invoice)
    customer = state.get("customer", invoice["customer"])
    payment_method = (
        params.get("payment_method") or customer["invoice_settings"]["default_payment_method"]
    )
    if not payment_method:
        raise StripeApiError(
            400,
            "This customer has no attached payment source or default payment method. "
            "Please consider adding a default payment method.",
            param="payment_method",
        )
    intent = objects.payment_intent(
        state.new_id("pi"),
        now,
        amount=amount,
        currency=invoice["currency"],
        customer_id=invoice["customer"],
        params={"description": f"Payment for Invoice {invoice['number']}"},
    )
    state.insert(intent)
    call.emit("payment_intent.created", intent)
    invoice["attempted"] = True
    invoice["attempt_count"] += 1
    if not _attempt(call, intent, str(payment_method)):
        call.emit("invoice.payment_failed", invoice)
        raise _declined(intent, state)
    payment = objects.invoice_payment(
        state.new_id("inpay"), now, invoice=invoice, amount=amount, payment_intent_id=intent["id"]
    )
    state.insert(payment)
    call.emit("invoice_payment.paid", payment)
    _mark_paid(call, invoice, amount, now, by_payment=True)
    return state.render(invoice)


def _mark_paid(
    call: Call, invoice: dict[str, Any], amount: int, now: int, *, by_payment: bool = False
) -> None:
    invoice["amount_paid"] += amount
    invoice["amount_remaining"] = 0
    invoice["status"] = "paid"
    invoice["status_transitions"]["paid_at"] = now
    if by_payment:
        call.emit("invoice.payment_succeeded", invoice)
    call.emit("invoice.paid", invoice)


# --- payment intents -------------------------------------------------------------------------


def create_intent(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    amount = integer(params, "amount", minimum=1)
    if amount is None:
        required(params, "amount")
    assert amount is not None
    code = currency(params) or required(params, "currency")
    customer_id = params.get("customer")
    if customer_id:
        state.get("customer", str(customer_id), param="customer")
    types = string_list(params, "payment_method_types")
    intent = objects.payment_intent(
        state.new_id("pi"),
        state.now(),
        amount=amount,
        currency=str(code),
        customer_id=str(customer_id) if customer_id else None,
        params={
            "description": string(params, "description", max_length=1000),
            "payment_method": params.get("payment_method"),
            "payment_method_types": types,
            "receipt_email": string(params, "receipt_email"),
        },
    )
    intent["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(intent)
    call.emit("payment_intent.created", intent)
    if boolean(params, "confirm"):
        if not intent["payment_method"]:
            required(params, "payment_method")
        if not _attempt(call, intent, str(intent["payment_method"])):
            raise _declined(intent, state)
    return state.render(intent)


def confirm_intent(call: Call) -> dict[str, Any]:
    state = call.state
    intent = state.get("payment_intent", call.arg("intent"))
    if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
        raise StripeApiError(
            400,
            f"This PaymentIntent's status is {intent['status']}, so it cannot be confirmed.",
            code="payment_intent_unexpected_state",
        )
    payment_method = call.params.get("payment_method") or intent["payment_method"]
    if not payment_method:
        required(call.params, "payment_method")
    if not _attempt(call, intent, str(payment_method)):
        raise _declined(intent, state)
    return state.render(intent)


def retrieve_intent(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("payment_intent", call.arg("intent")))


def list_intents(call: Call) -> dict[str, Any]:
    customer = call.params.get("customer")
    in_range = created_filter(call.params)
    matches = [
        i
        for i in call.state.all_of("payment_intent")
        if (customer is None or i["customer"] == customer) and in_range(i["created"])
    ]
    return call.state.page(matches, call.params, url="/v1/payment_intents")


# --- charges and invoice payments ------------------------------------------------------------


def retrieve_charge(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("charge", call.arg("charge")))


def list_charges(call: Call) -> dict[str, Any]:
    intent, customer = call.params.get("payment_intent"), call.params.get("customer")
    matches = [
        c
        for c in call.state.all_of("charge")
        if (intent is None or c["payment_intent"] == intent)
        and (customer is None or c["customer"] == customer)
    ]
    return call.state.page(matches, call.params, url="/v1/charges")


def list_invoice_payments(call: Call) -> dict[str, Any]:
    params = call.params
    invoice_id, status = params.get("invoice"), params.get("status")
    payment = params.get("payment") or {}
    if not isinstance(payment, dict):
        raise StripeApiError(400, "Invalid hash", param="payment")
    intent = payment.get("payment_intent")
    matches = [
        p
        for p in call.state.all_of("invoice_payment")
        if (invoice_id is None or p["invoice"] == invoice_id)
        and (status is None or p["status"] == status)
        and (intent is None or p["payment"].get("payment_intent") == intent)
    ]
    return call.state.page(matches, params, url="/v1/invoice_payments")


def retrieve_invoice_payment(call: Call) -> dict[str, Any]:
    found = call.state.get("invoice_payment", call.arg("payment"))
    return call.state.render(found)


def routes() -> list[Route]:
    return [
        Route(
            "POST",
            "/v1/invoices/{invoice}/pay",
            pay_invoice,
            frozenset({"paid_out_of_band", "payment_method", "off_session", "forgive"}),
        ),
        Route(
            "POST",
            "/v1/payment_intents",
            create_intent,
            frozenset(
                {
                    "amount",
                    "currency",
                    "customer",
                    "description",
                    "metadata",
                    "payment_method",
                    "payment_method_types",
                    "confirm",
                    "receipt_email",
                }
            ),
        ),
        Route("GET", "/v1/payment_intents", list_intents, PAGING | {"customer", "created"}),
        Route("GET", "/v1/payment_intents/{intent}", retrieve_intent),
        Route(
            "POST",
            "/v1/payment_intents/{intent}/confirm",
            confirm_intent,
            frozenset({"payment_method"}),
        ),
        Route("GET", "/v1/charges", list_charges, PAGING | {"payment_intent", "customer"}),
        Route("GET", "/v1/charges/{charge}", retrieve_charge),
        Route(
            "GET",
            "/v1/invoice_payments",
            list_invoice_payments,
            PAGING | {"invoice", "payment", "status"},
        ),
        Route("GET", "/v1/invoice_payments/{payment}", retrieve_invoice_payment),
    ]
