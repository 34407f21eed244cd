"""A Stripe test-mode account in a box: state, keys, fault plan, the ASGI app, seeding.

Tests and the demo create one ``StripeSandbox``, seed it (``seed_customer``,
``seed_tax_rate``, ``seed_pending_items``) and connect the real adapter through ``client()``
(in process) or by serving ``app`` (``q2c sandbox``, uvicorn for the official ``stripe``
client). ``webhook_delivery`` signs an event as Stripe would deliver it to a webhook
endpoint, for the hub's webhook receiver.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, cast

import httpx

from q2c.connectors.sandbox import ASGIApp, FaultInjector, FaultPlan, InProcessTransport
from q2c.connectors.stripe import invoice_objects, objects
from q2c.connectors.stripe.adapter import StripeBilling, connect_stripe
from q2c.connectors.stripe.api import Call, json_number, merge_metadata
from q2c.connectors.stripe.emulator import ApiKeys, StripeApi
from q2c.connectors.stripe.invoicing import finalize
from q2c.connectors.stripe.payments import pay_invoice
from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.webhooks import sign_payload
from q2c.connectors.stripe.wire import stripe_error_body

__all__ = ["StripeSandbox"]


class StripeSandbox:
    """One emulated Stripe account (test mode) with its secret key and webhook secret."""

    def __init__(
        self,
        *,
        base_url: str = "https://api.stripe.com",
        api_key: str | None = None,
        webhook_secret: str | None = None,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or f"sk_test_{secrets.token_urlsafe(24)}"
        self.webhook_secret = webhook_secret or f"whsec_{secrets.token_urlsafe(24)}"
        self.state = StripeState(clock=clock, seed=seed)
        self.keys = ApiKeys(active={self.api_key})
        self.faults = FaultPlan()
        self.api = StripeApi(self.state, self.keys)
        self.app: ASGIApp = FaultInjector(
            cast(ASGIApp, self.api), self.faults, error_body=stripe_error_body
        )
        self._transports: list[InProcessTransport] = []

    # --- connecting --------------------------------------------------------------------------

    def client(self, timeout: float = 5.0) -> httpx.Client:
        """An httpx client whose requests reach this sandbox in process."""
        transport = InProcessTransport(self.app)
        self._transports.append(transport)
        return httpx.Client(transport=transport, timeout=timeout, base_url=self.base_url)

    def billing(self, *, timeout: float = 5.0, **kwargs: Any) -> StripeBilling:
        """The real adapter wired to this sandbox with its secret key."""
        kwargs.setdefault("api_key", self.api_key)
        return connect_stripe(self.client(timeout), base_url=self.base_url, **kwargs)

    def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports.clear()

    # --- controlling the account -------------------------------------------------------------

    def roll_api_key(self) -> str:
        """Roll the secret key (Dashboard > API keys > Roll key): the old key expires."""
        new = f"sk_test_{secrets.token_urlsafe(24)}"
        self.keys.roll(self.api_key, new)
        self.api_key = new
        return new

    def forget_idempotency_keys(self) -> int:
        """What 24 hours do to Stripe's idempotency results: they are gone."""
        return self.state.forget_idempotency_keys()

    def count(self, object_type: str, **metadata: str) -> int:
        """How many objects of a type carry all of the given metadata values."""
        return sum(
            1
            for obj in self.state.all_of(object_type)
            if all(obj.get("metadata", {}).get(k) == v for k, v in metadata.items())
        )

    def events(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            e for e in self.state.all_of("event") if event_type is None or e["type"] == event_type
        ]

    def webhook_delivery(
        self, event: dict[str, Any], *, timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The body and headers Stripe would POST to a webhook endpoint for ``event``."""
        payload = json.dumps(self.state.render(event)).encode()
        when = int(self.state.clock()) if timestamp is None else timestamp
        return payload, {
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign_payload(payload, self.webhook_secret, when),
        }

    # --- seeding (no HTTP, no events beyond what Stripe would record) ------------------------

    def _call(self, params: dict[str, Any], **path_args: str) -> Call:
        return Call(self.state, "POST", "/__seed__", params, path_args, "req_seed")

    def seed_customer(
        self, name: str, *, email: str | None = None, metadata: dict[str, str] | None = None
    ) -> str:
        with self.state.lock:
            customer = objects.customer(
                self.state.new_id("cus"),
                self.state.now(),
                invoice_prefix=self.state.token(8, "0123456789ABCDEF"),
                params={"name": name, "email": email},
            )
            customer["metadata"] = merge_metadata({}, metadata or {})
            self.state.insert(customer)
        return str(customer["id"])

    def seed_tax_rate(self, tax_code: str, percentage: str, *, inclusive: bool = False) -> str:
        with self.state.lock:
            rate = objects.tax_rate(
                self.state.new_id("txr"),
                self.state.now(),
                {
                    "display_name": tax_code,
                    "percentage": json_number(Decimal(percentage)),
                    "inclusive": inclusive,
                },
            )
            rate["metadata"] = {"q2c_tax_code": tax_code}
            self.state.insert(rate)
        return str(rate["id"])

    def seed_pending_items(
        self,
        customer_id: str,
        amounts: Iterable[int],
        *,
        currency: str = "usd",
        description: str = "Seeded item",
    ) -> list[str]:
        """Pending invoice items straight into the account (no requests, no events)."""
        ids = []
        with self.state.lock:
            customer = self.state.get("customer", customer_id)
            customer["currency"] = customer["currency"] or currency
            now = self.state.now()
            for n, amount in enumerate(amounts, start=1):
                item = invoice_objects.invoice_item(
                    self.state.new_id("ii"),
                    now,
                    customer_id=customer_id,
                    currency=currency,
                    amount=amount,
                    description=f"{description} {n}",
                    period={"start": now, "end": now},
                    tax_rate_ids=[],
                )
                self.state.insert(item)
                self.state.items_by_customer.setdefault(customer_id, []).append(item["id"])
                ids.append(str(item["id"]))
        return ids

    def finalize(self, invoice_id: str) -> dict[str, Any]:
        """Finalize as the Dashboard would (records Stripe's events)."""
        with self.state.lock:
            invoice = self.state.get("invoice", invoice_id)
            finalize(self._call({}), invoice)
            return self.state.render(invoice)

    def pay(
        self, invoice_id: str, *, payment_method: str | None = None, out_of_band: bool = False
    ) -> dict[str, Any]:
        """Pay an invoice as the customer (test payment method) or mark it paid out of band."""
        params: dict[str, Any] = (
            {"paid_out_of_band": "true"} if out_of_band else {"payment_method": payment_method}
        )
        with self.state.lock:
            return pay_invoice(self._call(params, invoice=invoice_id))
