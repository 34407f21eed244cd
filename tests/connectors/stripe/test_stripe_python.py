"""Fidelity: the official ``stripe`` package (v16) against the emulator over real HTTP.

The emulator runs under uvicorn on a free loopback port; ``stripe.StripeClient`` is pointed
at it with ``base_addresses``. Nothing else about the client is changed: its own form
encoding (indexed arrays, nested hashes), headers, auto-pagination, error classes and
idempotency keys are exercised as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import stripe

from q2c.connectors.stripe.sandbox import StripeSandbox
from q2c.serving import free_port, serving

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[StripeSandbox, str]]:
    port = free_port()
    sandbox = StripeSandbox(base_url=f"http://127.0.0.1:{port}", seed=5)
    with serving(sandbox.app, port=port) as base:
        yield sandbox, base
    sandbox.close()


@pytest.fixture
def client(served: tuple[StripeSandbox, str]) -> stripe.StripeClient:
    sandbox, base = served
    return stripe.StripeClient(sandbox.api_key, base_addresses={"api": base}, max_network_retries=0)


def test_invoice_lifecycle_through_the_official_client(
    client: stripe.StripeClient, served: tuple[StripeSandbox, str]
) -> None:
    customer = client.v1.customers.create(
        params={
            "name": "Official Client GmbH",
            "email": "ap@official.example",
            "metadata": {"q2c_id": "q2c-OC-1"},
        }
    )
    assert customer.id.startswith("cus_")
    assert customer.metadata["q2c_id"] == "q2c-OC-1"
    rate = client.v1.tax_rates.create(
        params={
            "display_name": "VAT",
            "percentage": 19.0,
            "inclusive": False,
            "metadata": {"q2c_tax_code": "DE-VAT19"},
        }
    )
    for amount in (125000, 37550):
        client.v1.invoice_items.create(
            params={
                "customer": customer.id,
                "amount": amount,
                "currency": "eur",
                "tax_rates": [rate.id],
                "description": f"Consulting {amount}",
            }
        )
    pending = client.v1.invoice_items.list(params={"customer": customer.id, "pending": True})
    assert len(pending.data) == 2
    invoice = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "currency": "eur",
            "pending_invoice_items_behavior": "include",
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"q2c_key": "q2c-run-OC"},
        }
    )
    assert invoice.status == "draft"
    assert invoice.subtotal == 162550
    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open"
    assert finalized.number == f"{customer.invoice_prefix}-0001"
    # 19 % per line, rounded half up: 23750 + 7134.5 -> 7135
    assert finalized.total == 162550 + 23750 + 7135
    assert [t.amount for t in finalized.lines.data[1].taxes] == [7135]
    paid = client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_visa"})
    assert paid.status == "paid"
    assert paid.amount_paid == finalized.total
    payments = client.v1.invoice_payments.list(params={"invoice": invoice.id})
    intent = client.v1.payment_intents.retrieve(
        payments.data[0].payment.payment_intent, params={"expand": ["latest_charge"]}
    )
    assert intent.status == "succeeded"
    assert intent.latest_charge.payment_method_details.type == "card"
    types = [e.type for e in client.v1.events.list(params={"limit": 100}).auto_paging_iter()]
    for expected in ("invoice.finalized", "invoice.paid", "payment_intent.succeeded"):
        assert expected in types
    found = client.v1.invoices.search(params={"query": "metadata['q2c_key']:'q2c-run-OC'"})
    assert [i.id for i in found.data] == [invoice.id]


def test_auto_paging_walks_every_page(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Paged Inc"})
    created = [
        client.v1.invoice_items.create(
            params={"customer": customer.id, "amount": 100 + n, "currency": "usd"}
        ).id
        for n in range(7)
    ]
    listed = client.v1.invoice_items.list(params={"customer": customer.id, "limit": 3})
    walked = [item.id for item in listed.auto_paging_iter()]
    assert walked == list(reversed(created))  # newest first, every item once


def test_invalid_request_is_raised_with_the_param(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoice_items.create(
            params={"customer": "cus_nobody", "amount": 100, "currency": "usd"}
        )
    assert info.value.param == "customer"
    assert info.value.code == "resource_missing"
    assert info.value.http_status == 404
    customer = client.v1.customers.create(params={"name": "Strict Params"})
    typo: dict[str, Any] = {"nickname": "x"}  # not a customer parameter
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        client.v1.customers.update(customer.id, params=typo)  # type: ignore[arg-type]
    assert unknown.value.param == "nickname"
    assert unknown.value.code == "parameter_unknown"


def test_finalizing_twice_is_refused(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Twice Ltd"})
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 5000, "currency": "usd"}
    )
    invoice = client.v1.invoices.create(
        params={
            "customer": customer.id,
            "pending_invoice_items_behavior": "include",
            "collection_method": "send_invoice",
            "days_until_due": 14,
        }
    )
    client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.InvalidRequestError) as info:
        client.v1.invoices.finalize_invoice(invoice.id)
    assert info.value.code == "invoice_not_editable"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.invoice_items.create(
            params={
                "customer": customer.id,
                "amount": 100,
                "currency": "usd",
                "invoice": invoice.id,
            }
        )


def test_idempotent_retry_replays_and_conflicts(
    client: stripe.StripeClient, served: tuple[StripeSandbox, str]
) -> None:
    sandbox, _ = served
    params: stripe.params.CustomerCreateParams = {
        "name": "Retry Ltd",
        "metadata": {"q2c_id": "q2c-RETRY"},
    }
    first = client.v1.customers.create(params=params, options={"idempotency_key": "k-retry-1"})
    again = client.v1.customers.create(params=params, options={"idempotency_key": "k-retry-1"})
    assert again.id == first.id
    assert again.last_response.headers["Idempotent-Replayed"] == "true"
    assert sandbox.count("customer", q2c_id="q2c-RETRY") == 1
    with pytest.raises(stripe.IdempotencyError):
        client.v1.customers.create(
            params={"name": "Someone Else"}, options={"idempotency_key": "k-retry-1"}
        )


def test_bad_key_is_an_authentication_error(served: tuple[StripeSandbox, str]) -> None:
    _, base = served
    stranger = stripe.StripeClient(
        "sk_test_not_this_account", base_addresses={"api": base}, max_network_retries=0
    )
    with pytest.raises(stripe.AuthenticationError) as info:
        stranger.v1.customers.list()
    assert "Invalid API Key provided" in str(info.value.user_message)


def test_card_decline_is_a_card_error(client: stripe.StripeClient) -> None:
    customer = client.v1.customers.create(params={"name": "Declined Co"})
    client.v1.invoice_items.create(
        params={"customer": customer.id, "amount": 9900, "currency": "usd"}
    )
    invoice = client.v1.invoices.create(
        params={"customer": customer.id, "pending_invoice_items_behavior": "include"}
    )
    client.v1.invoices.finalize_invoice(invoice.id)
    with pytest.raises(stripe.CardError) as info:
        client.v1.invoices.pay(invoice.id, params={"payment_method": "pm_card_chargeDeclined"})
    assert info.value.code == "card_declined"
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
