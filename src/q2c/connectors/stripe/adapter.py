"""Stripe Billing as q2c's billing platform: ``BillingPort`` over Stripe's v1 API.

Idempotency has two layers, because Stripe keeps ``Idempotency-Key`` results for about 24
hours only:

1. every POST carries an ``Idempotency-Key`` derived from the port's external ids
   (``q2c:invoiceitem:<line external id>``, ``q2c:invoice:<external id>``, ...), so a retry
   after a timeout replays Stripe's first answer instead of writing twice;
2. the external id is also stored on the object (``metadata[q2c_key]`` / ``[q2c_id]``) and
   looked up before writing: the customer's pending invoice items are listed (lists are
   strongly consistent) and lines already present are skipped; invoices and customers are
   found with the Search API.

Search is eventually consistent (Stripe indexes within about a minute), which layer 1
covers. When Stripe reports that a key was first used with other parameters (the data
changed between attempts), the adapter looks the record up again instead of failing.

Polling and payment mapping live in ``polling.py``, tax rates in ``tax_rates.py``, usage and
retainers in ``retainers.py``; the wire conventions in ``rest.py``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import httpx

from q2c.canonical.models import Customer, Invoice, Payment
from q2c.canonical.money import Money
from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket
from q2c.connectors.stripe import forms, payloads, polling, retainers
from q2c.connectors.stripe.auth import StripeKeyAuth
from q2c.connectors.stripe.errors import IdempotencyConflictError, translate_error
from q2c.connectors.stripe.payloads import TaxRateInfo
from q2c.connectors.stripe.polling import EventCursor
from q2c.connectors.stripe.rest import StripeRest, idempotency_key
from q2c.connectors.stripe.retainers import RecurringPrice
from q2c.connectors.stripe.tax_rates import TaxRateBook
from q2c.errors import BusinessFixError, RetriableError, ValidationError
from q2c.flows.ports import (
    BilledItem,
    BillingCustomerRef,
    BillingLine,
    InvoicePage,
    PaymentPage,
)

__all__ = ["EventCursor", "RecurringPrice", "StripeBilling", "connect_stripe"]

SYSTEM = "stripe"


class StripeBilling:
    """The billing port for one Stripe account."""

    system = SYSTEM
    max_invoice_lines = 250  # Stripe refuses a 251st invoice item (changelog 2016-02-22)

    def __init__(self, api: StripeRest, *, default_legal_entity: str = "") -> None:
        self.api = api
        self.default_legal_entity = default_legal_entity
        self.taxes = TaxRateBook(api)

    # --- customers ---------------------------------------------------------------------------

    def upsert_customer(self, customer: Customer, *, external_id: str) -> BillingCustomerRef:
        params = payloads.customer_params(customer, external_id=external_id)
        existing = self.api.find_by_metadata("customers", "q2c_id", external_id)
        if existing is None:
            try:
                created = self.api.post(
                    "/v1/customers", params, key=idempotency_key("customer", external_id)
                )
                return BillingCustomerRef(str(created["id"]), external_id)
            except IdempotencyConflictError:
                # the first attempt was applied with other data: find it, then update it
                existing = self._indexed("customers", "q2c_id", external_id, "customer")
        digest = hashlib.sha256(forms.encode(params).encode()).hexdigest()[:16]
        self.api.post(
            f"/v1/customers/{existing['id']}",
            params,
            key=idempotency_key("customer-update", external_id, digest),
        )
        return BillingCustomerRef(str(existing["id"]), external_id)

    def _indexed(self, resource: str, name: str, value: str, what: str) -> dict[str, Any]:
        found = self.api.find_by_metadata(resource, name, value)
        if found is None:
            raise RetriableError(
                f"Stripe has not indexed the {what} q2c created moments ago yet",
                detail=f"{what} {value}: Idempotency-Key used with other parameters, "
                "search still empty",
                system=SYSTEM,
            )
        return found

    # --- invoice items -----------------------------------------------------------------------

    def pending_invoice_items(self, customer_billing_id: str) -> list[dict[str, Any]]:
        """The customer's invoice items not yet on an invoice (all pages)."""
        return list(
            self.api.list_all(
                "/v1/invoiceitems", {"customer": customer_billing_id, "pending": True}
            )
        )

    def invoice_items(self, invoice_id: str) -> list[dict[str, Any]]:
        """The items already on a (draft) invoice (all pages)."""
        return list(self.api.list_all("/v1/invoiceitems", {"invoice": invoice_id}))

    def add_invoice_items(
        self, customer_billing_id: str, lines: Sequence[BillingLine], *, invoice_id: str
    ) -> list[BilledItem]:
        """One item per line on the draft invoice; lines already on it (by
        ``metadata[q2c_key]``) are kept as they are and not sent again. Every line is checked
        before any is sent."""
        keys = [line.external_id for line in lines]
        if len(set(keys)) != len(keys):
            raise ValidationError(
                "Two billing lines share one external id", field="external_id", system=SYSTEM
            )
        rates = self.taxes.for_lines(lines)
        prepared = [
            (
                line,
                {
                    **payloads.item_params(
                        line,
                        customer_billing_id=customer_billing_id,
                        tax_rate_id=rates[line.tax_code].rate_id if line.tax_code else None,
                    ),
                    "invoice": invoice_id,
                },
            )
            for line in lines
        ]
        pending = {
            str(item["metadata"]["q2c_key"]): item
            for item in self.invoice_items(invoice_id)
            if (item.get("metadata") or {}).get("q2c_key")
        }
        billed: list[BilledItem] = []
        for line, params in prepared:
            item = pending.get(line.external_id) or self._create_item(line, params)
            billed.append(BilledItem(str(item["id"]), line.external_id, item.get("invoice")))
        return billed

    def _create_item(self, line: BillingLine, params: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return self.api.post(
                "/v1/invoiceitems", params, key=idempotency_key("invoiceitem", line.external_id)
            )
        except IdempotencyConflictError as exc:
            raise BusinessFixError(
                f"Invoice line {line.external_id} was already sent to Stripe with other values "
                "and is no longer pending (it is on an invoice)",
                detail=exc.detail,
                suggested_fix="Check the line on the customer's Stripe invoice; credit or void "
                "it there if it is wrong, then replay.",
                system=SYSTEM,
                context={"line": line.external_id},
            ) from exc

    def tax_rates(self, *, refresh: bool = False) -> dict[str, TaxRateInfo]:
        """The account's tax rates by id (cached; ``refresh`` reads them again)."""
        return self.taxes.all(refresh=refresh)

    # --- invoices ----------------------------------------------------------------------------

    def create_invoice(
        self,
        customer_billing_id: str,
        *,
        external_id: str,
        currency: str,
        due_date: date,
        memo: str,
        metadata: dict[str, str],
    ) -> str:
        existing = self.api.find_by_metadata("invoices", "q2c_key", external_id)
        if existing is not None:
            return str(existing["id"])
        params = {
            "customer": customer_billing_id,
            "currency": currency.lower(),
            "collection_method": "send_invoice",
            "due_date": payloads.timestamp(due_date),
            "description": memo,
            "auto_advance": False,
            "pending_invoice_items_behavior": "exclude",
            "metadata": payloads.check_metadata(
                {**metadata, "q2c_key": external_id}, subject=f"invoice {external_id}"
            ),
        }
        try:
            created = self.api.post(
                "/v1/invoices", params, key=idempotency_key("invoice", external_id)
            )
        except IdempotencyConflictError:
            created = self._indexed("invoices", "q2c_key", external_id, "invoice")
        return str(created["id"])

    def finalize_invoice(self, invoice_id: str) -> Invoice:
        """Finalize a draft (a finalized one is read as it is). Stripe answers the finalize
        call with the finalized invoice, so it is not read back a second time."""
        current = self.api.get(f"/v1/invoices/{invoice_id}")
        if current["status"] != "draft":
            return self._invoice(current)
        try:
            finalized = self.api.post(
                f"/v1/invoices/{invoice_id}/finalize",
                {},
                key=idempotency_key("finalize", invoice_id),
            )
        except ValidationError as exc:
            # finalized meanwhile by another attempt: read what Stripe holds
            if exc.context.get("stripe_code") != "invoice_not_editable":
                raise
            return self.fetch_invoice(invoice_id)
        return self._invoice(finalized)

    def invoice_lines(self, invoice: Mapping[str, Any]) -> list[dict[str, Any]]:
        """All line items of an invoice: the embedded first page, then ``/lines`` pages."""
        embedded = invoice.get("lines") or {}
        lines = list(embedded.get("data") or [])
        if embedded.get("has_more"):
            query = {"starting_after": lines[-1]["id"]} if lines else {}
            lines.extend(self.api.list_all(f"/v1/invoices/{invoice['id']}/lines", query))
        return lines

    def fetch_invoice(self, invoice_id: str) -> Invoice:
        return self._invoice(self.api.get(f"/v1/invoices/{invoice_id}"))

    def _invoice(self, invoice: dict[str, Any]) -> Invoice:
        """A Stripe invoice as Stripe returned it, with all its lines, as a canonical one."""
        lines = self.invoice_lines(invoice)
        rate_ids = {
            str(t["tax_rate_details"]["tax_rate"])
            for line in lines
            for t in line.get("taxes") or []
            if t.get("type") == "tax_rate_details"
        }
        return payloads.invoice_from_stripe(
            invoice,
            lines,
            self.taxes.by_id(rate_ids),
            system=self.system,
            default_legal_entity=self.default_legal_entity,
        )

    def record_erp_reference(self, invoice_id: str, *, erp_system: str, erp_number: str) -> None:
        metadata = payloads.check_metadata(
            {f"q2c_erp_{erp_system}": erp_number}, subject=f"invoice {invoice_id}"
        )
        self.api.post(
            f"/v1/invoices/{invoice_id}",
            {"metadata": metadata},
            key=idempotency_key("erp-reference", invoice_id, erp_system, erp_number),
        )

    # --- polling -----------------------------------------------------------------------------

    def finalized_invoices_since(self, watermark: str | None) -> InvoicePage:
        """Invoices finalized after the watermark (``invoice.finalized``), as they are now."""
        events, next_mark = polling.events_since(self.api, watermark, ["invoice.finalized"])
        invoices: list[Invoice] = []
        done: set[str] = set()
        for event in events:
            snapshot = event["data"]["object"]
            if snapshot["id"] in done or not (snapshot.get("lines") or {}).get("data"):
                continue  # seen already, or empty: no money to post
            done.add(snapshot["id"])
            invoices.append(self.fetch_invoice(str(snapshot["id"])))
        return InvoicePage(invoices, next_mark)

    def payments_since(self, watermark: str | None) -> PaymentPage:
        """Paid invoices (by payment intent or out of band) and payment intents not tied to
        an invoice (unapplied cash), as canonical payments, oldest first."""
        events, next_mark = polling.events_since(
            self.api, watermark, ["invoice.paid", "payment_intent.succeeded"]
        )
        payments: dict[str, Payment] = {}
        for event in events:
            for payment in polling.payments_from_event(self.api, event, system=self.system):
                payments.setdefault(payment.id, payment)
        return PaymentPage(list(payments.values()), next_mark)

    # --- usage and retainers -----------------------------------------------------------------

    def report_usage(
        self,
        customer_billing_id: str,
        *,
        event_name: str,
        quantity: Decimal,
        occurred_at: datetime,
        external_id: str,
    ) -> str:
        """One Billing meter event, idempotent by ``external_id``; returns its identifier."""
        return retainers.report_usage(
            self.api,
            customer_billing_id,
            event_name=event_name,
            quantity=quantity,
            occurred_at=occurred_at,
            external_id=external_id,
        )

    def ensure_recurring_price(
        self,
        *,
        external_id: str,
        name: str,
        amount: Money,
        interval: str = "month",
        interval_count: int = 1,
    ) -> RecurringPrice:
        """The product and recurring price for a retainer fee (found by lookup key)."""
        return retainers.ensure_recurring_price(
            self.api,
            external_id=external_id,
            name=name,
            amount=amount,
            interval=interval,
            interval_count=interval_count,
        )

    def create_retainer_subscription(
        self,
        customer_billing_id: str,
        *,
        external_id: str,
        price_id: str,
        days_until_due: int = 30,
        quantity: int = 1,
    ) -> str:
        """The subscription billing a retainer price each period; returns its id."""
        return retainers.create_retainer_subscription(
            self.api,
            customer_billing_id,
            external_id=external_id,
            price_id=price_id,
            days_until_due=days_until_due,
            quantity=quantity,
        )


def connect_stripe(
    client: httpx.Client,
    *,
    api_key: str,
    base_url: str = "https://api.stripe.com",
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    api_key_source: Callable[[], str] | None = None,
    page_size: int = 100,
    default_legal_entity: str = "",
) -> StripeBilling:
    """A ``StripeBilling`` authenticating with a secret (or restricted) key.

    ``api_key_source``, when given, is asked for the key again when Stripe reports the key
    expired (rolled), and the request is repeated once with the new key.
    ``default_legal_entity`` names the legal entity of invoices q2c did not create (those
    carry none in ``metadata[q2c_legal_entity]``).
    """
    rest = RestClient(
        system=SYSTEM,
        client=client,
        translate_error=translate_error,
        auth=StripeKeyAuth(api_key, key_source=api_key_source),
        bucket=bucket,
        recorder=recorder,
    )
    api = StripeRest(rest, base_url=base_url, page_size=page_size)
    return StripeBilling(api, default_legal_entity=default_legal_entity)
