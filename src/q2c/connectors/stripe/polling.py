"""Polling Stripe's event log: the watermark, and paid invoices as canonical payments.

Stripe keeps events for 30 days and lists them newest first. A poll asks for the wanted
types from the watermark's second on (``created[gte]``), skips the events already seen at
that second, and reverses the result to oldest first. The watermark is
``<created>:<ids of the events seen at that second>``: events share whole seconds, so a
plain ``created[gt]`` would lose those arriving later in the same second and
``created[gte]`` alone would repeat them.

Payments come from two event types:

* ``invoice.paid``: the invoice's InvoicePayments link it to the PaymentIntents that paid it
  (method from the charge); an invoice with none was marked paid out of band (a wire, a
  check) and becomes one payment applied to it;
* ``payment_intent.succeeded``: a PaymentIntent with no invoice is money received but not
  applied (an unapplied credit for the ERP); one with an invoice is left to ``invoice.paid``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from q2c.canonical.models import Payment
from q2c.connectors.stripe import payloads
from q2c.connectors.stripe.rest import StripeRest
from q2c.errors import ValidationError

__all__ = ["EventCursor", "events_since", "payments_from_event"]

SYSTEM = "stripe"


@dataclass(frozen=True, slots=True)
class EventCursor:
    """Where event polling stands: the newest ``created`` second seen and its event ids."""

    created: int
    seen: frozenset[str]

    @classmethod
    def parse(cls, watermark: str | None) -> EventCursor | None:
        if not watermark:
            return None
        created, _, ids = watermark.partition(":")
        try:
            return cls(int(created), frozenset(i for i in ids.split(",") if i))
        except ValueError:
            raise ValidationError(
                f"The Stripe polling watermark {watermark!r} is not '<created>:<event ids>'",
                field="watermark",
                system=SYSTEM,
            ) from None

    def __str__(self) -> str:
        return f"{self.created}:{','.join(sorted(self.seen))}"


def events_since(
    api: StripeRest, watermark: str | None, types: Sequence[str]
) -> tuple[list[dict[str, Any]], str | None]:
    """Events of ``types`` after the watermark, oldest first, and the next watermark."""
    cursor = EventCursor.parse(watermark)
    params: dict[str, Any] = {"types": list(types)} if len(types) > 1 else {"type": types[0]}
    if cursor is not None:
        params["created"] = {"gte": cursor.created}
    events = [
        e
        for e in api.list_all("/v1/events", params)
        if cursor is None or not (e["created"] == cursor.created and e["id"] in cursor.seen)
    ]
    events.reverse()
    if not events:
        return [], watermark
    newest = max(int(e["created"]) for e in events)
    seen = {str(e["id"]) for e in events if int(e["created"]) == newest}
    if cursor is not None and cursor.created == newest:
        seen |= cursor.seen
    return events, str(EventCursor(newest, frozenset(seen)))


def payments_from_event(
    api: StripeRest, event: Mapping[str, Any], *, system: str = SYSTEM
) -> list[Payment]:
    obj = event["data"]["object"]
    if event["type"] == "invoice.paid":
        return _invoice_payments(api, obj, system)
    if event["type"] == "payment_intent.succeeded":
        return _unapplied_payment(api, obj, system)
    return []


def _intent(api: StripeRest, intent_id: str) -> dict[str, Any]:
    return api.get(f"/v1/payment_intents/{intent_id}", {"expand": ["latest_charge"]})


def _invoice_payments(api: StripeRest, invoice: Mapping[str, Any], system: str) -> list[Payment]:
    links = [
        p
        for p in api.list_all("/v1/invoice_payments", {"invoice": invoice["id"]})
        if p["status"] == "paid" and p["payment"].get("type") == "payment_intent"
    ]
    if not links:
        if int(invoice.get("amount_paid") or 0) == 0:
            return []  # nothing changed hands (a zero invoice)
        return [payloads.payment_out_of_band(invoice, system=system)]
    return [
        payloads.payment_from_intent(
            _intent(api, str(link["payment"]["payment_intent"])),
            amount=int(link["amount_paid"]),
            received=int(link["status_transitions"]["paid_at"] or link["created"]),
            invoice_id=str(invoice["id"]),
            system=system,
        )
        for link in links
    ]


def _unapplied_payment(api: StripeRest, intent: Mapping[str, Any], system: str) -> list[Payment]:
    if not intent.get("customer"):
        return []  # nobody to credit: not a receivable
    linked = api.list_all(
        "/v1/invoice_payments",
        {"payment": {"type": "payment_intent", "payment_intent": intent["id"]}},
    )
    if next(iter(linked), None) is not None:
        return []  # reported with its invoice (invoice.paid)
    expanded = _intent(api, str(intent["id"]))
    return [
        payloads.payment_from_intent(
            expanded,
            amount=int(expanded["amount_received"]),
            received=int(expanded["created"]),
            invoice_id=None,
            system=system,
        )
    ]
