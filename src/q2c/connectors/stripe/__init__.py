"""Stripe connector: the billing adapter (Stripe Billing, API v1) and its sandbox.

Production code needs only the adapter side, importable from here. The emulated account
(``StripeSandbox``, ASGI app) lives in ``q2c.connectors.stripe.sandbox`` and is imported
explicitly by tests, the demo and ``q2c sandbox``.

    adapter.py          StripeBilling (BillingPort, usage, retainers), connect_stripe
    rest.py             Stripe's wire for the adapter: form posts with Idempotency-Key, lists,
                        search
    tax_rates.py        one Stripe tax rate per canonical tax code
    polling.py          the event-log watermark; paid invoices -> canonical payments
    retainers.py        meter events, recurring prices, retainer subscriptions
    payloads.py         canonical objects <-> Stripe parameters and objects, metadata limits
    auth.py             secret-key bearer auth, pinned Stripe-Version, rolled-key refresh
    errors.py           Stripe error objects -> q2c.errors
    webhooks.py         Stripe-Signature signing and verification
    forms.py            Stripe's nested form encoding, both ways
    wire.py             API version, error bodies, Stripe's currency exponents (both sides)

    sandbox.py          StripeSandbox: state + keys + faults + app + seeding
    emulator.py         the ASGI app: auth, parameters, idempotency, routing, expansion
    api.py              routes, calls and Stripe's parameter checks
    state.py            the account's objects, events, lists and idempotency results
    objects.py, invoice_objects.py, payment_objects.py
                        Stripe objects with every top-level field Stripe returns
    customers.py        customers and tax rates
    catalog.py          products and prices
    events.py           the event log, billing meters and meter events
    invoice_items.py    invoice items
    invoicing.py        invoices, tax and totals, finalization
    payments.py         paying invoices, payment intents, charges, invoice payments
    subscriptions.py    subscriptions and their first invoice
    search.py           the Search API's query language
"""

from q2c.connectors.stripe.adapter import (
    EventCursor,
    RecurringPrice,
    StripeBilling,
    connect_stripe,
)
from q2c.connectors.stripe.errors import translate_error
from q2c.connectors.stripe.webhooks import (
    MalformedSignatureError,
    SignatureMismatchError,
    TimestampOutsideToleranceError,
    WebhookSignatureError,
    sign_payload,
    verify_signature,
)

__all__ = [
    "EventCursor",
    "MalformedSignatureError",
    "RecurringPrice",
    "SignatureMismatchError",
    "StripeBilling",
    "TimestampOutsideToleranceError",
    "WebhookSignatureError",
    "connect_stripe",
    "sign_payload",
    "translate_error",
    "verify_signature",
]
