"""Emulated invoices (``/v1/invoices``): drafts, totals, finalization, voiding, search.

State transitions are Stripe's: items join a draft (``pending_invoice_items_behavior=include``
or ``invoice=``), a draft is edited and finalized once (``open``, numbered
``<customer invoice_prefix>-<4-digit sequence>``), an open invoice is paid or voided; a
finalized invoice refuses new items and edits other than metadata (``invoice_not_editable``).

Tax (tax rates, ``inclusive=false`` or ``true``) is computed per line item and per rate and
rounded to the smallest currency unit, half up, before it is summed: Stripe's support article
on rounding (support.stripe.com, "rounding rules") shows line taxes of 0.0645 and 0.7265
becoming 0.06 and 0.73, totalling 0.79; that is Stripe's default "round per line item"
invoice setting. The invoice's ``total_taxes`` sums the rounded line taxes per rate;
``total`` is subtotal plus exclusive tax. A customer with ``tax_exempt=exempt`` (or
``reverse``) is charged no tax (``customer_exempt`` / ``reverse_charge``). Simplification:
discounts, credit notes, customer balances and Stripe's "round at invoice level" account
setting are not emulated.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from q2c.connectors.stripe import invoice_objects as objects
from q2c.connectors.stripe.api import (
    PAGING,
    Call,
    Route,
    boolean,
    created_filter,
    currency,
    fields,
    integer,
    merge_metadata,
    required,
    string,
)
from q2c.connectors.stripe.search import search_page
from q2c.connectors.stripe.state import StripeState, public_line
from q2c.connectors.stripe.wire import StripeApiError

__all__ = [
    "MAX_INVOICE_ITEMS",
    "attach_line",
    "check_room",
    "finalize",
    "line_taxes",
    "new_draft",
    "not_editable",
    "recompute",
    "routes",
]

_DAY = 86400


def not_editable(message: str, param: str | None = None) -> StripeApiError:
    return StripeApiError(400, message, code="invoice_not_editable", param=param)


# --- tax and totals -------------------------------------------------------------------------


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_taxes(
    state: StripeState, amount: int, rate_ids: list[str], tax_exempt: str
) -> list[dict[str, Any]]:
    """One entry per tax rate on a line: its amount rounded half up to the smallest unit."""
    taxes = []
    for rate_id in rate_ids:
        rate = state.get("tax_rate", rate_id, param="tax_rates")
        percentage = Decimal(str(rate["percentage"]))
        behavior = "inclusive" if rate["inclusive"] else "exclusive"
        if tax_exempt in ("exempt", "reverse"):
            tax, reason = 0, "customer_exempt" if tax_exempt == "exempt" else "reverse_charge"
        elif rate["inclusive"]:
            tax = _round(Decimal(amount) * percentage / (100 + percentage))
            reason = "not_available"
        else:
            tax, reason = _round(Decimal(amount) * percentage / 100), "not_available"
        taxes.append(
            {
                "amount": tax,
                "tax_behavior": behavior,
                "tax_rate_details": {"tax_rate": rate_id},
                "taxability_reason": reason,
                "taxable_amount": amount - tax if rate["inclusive"] else amount,
                "type": "tax_rate_details",
            }
        )
    return taxes


def recompute(state: StripeState, invoice: dict[str, Any]) -> None:
    """Line taxes and the invoice's amounts, from its lines (drafts are recomputed on edit)."""
    customer = state.get("customer", invoice["customer"])
    lines = state.invoice_lines.get(invoice["id"], [])
    subtotal = inclusive = exclusive = 0
    totals: dict[tuple[str, str], dict[str, Any]] = {}
    for line in lines:
        line["taxes"] = line_taxes(
            state, line["amount"], line["_tax_rates"], customer["tax_exempt"]
        )
        subtotal += line["amount"]
        for tax in line["taxes"]:
            if tax["tax_behavior"] == "inclusive":
                inclusive += tax["amount"]
            else:
                exclusive += tax["amount"]
            key = (tax["tax_rate_details"]["tax_rate"], tax["tax_behavior"])
            entry = totals.setdefault(key, {**tax, "amount": 0, "taxable_amount": 0})
            entry["amount"] += tax["amount"]
            entry["taxable_amount"] += tax["taxable_amount"]
    total = subtotal + exclusive
    invoice.update(
        subtotal=subtotal,
        subtotal_excluding_tax=subtotal - inclusive,
        total_excluding_tax=subtotal - inclusive,
        total=total,
        total_taxes=list(totals.values()),
        amount_due=max(total - invoice["starting_balance"], 0),
    )
    invoice["amount_remaining"] = max(invoice["amount_due"] - invoice["amount_paid"], 0)
    if lines:
        invoice["period_start"] = min(line["period"]["start"] for line in lines)
        invoice["period_end"] = max(line["period"]["end"] for line in lines)


# Stripe refuses a 251st invoice item on one invoice (API changelog 2016-02-22)
MAX_INVOICE_ITEMS = 250


def check_room(state: StripeState, invoice: dict[str, Any], adding: int = 1) -> None:
    if len(state.invoice_lines.get(invoice["id"], [])) + adding > MAX_INVOICE_ITEMS:
        raise StripeApiError(
            400,
            f"You cannot add more than {MAX_INVOICE_ITEMS} invoice items to an invoice.",
            param="invoice",
        )


def attach_line(state: StripeState, invoice: dict[str, Any], item: dict[str, Any]) -> None:
    """Put a pending invoice item on a draft invoice as a line item."""
    check_room(state, invoice)
    item["invoice"] = invoice["id"]
    line = objects.line_item(
        state.new_id("il"),
        invoice_id=invoice["id"],
        amount=item["amount"],
        currency=item["currency"],
        description=item["description"],
        metadata=item["metadata"],
        period=item["period"],
        quantity=item["quantity"],
        taxes=[],
        invoice_item_id=item["id"],
    )
    line["_sequence"] = state.next_sequence()
    line["_tax_rates"] = list(item["_tax_rates"])
    line["_invoice_item"] = item["id"]
    state.invoice_lines.setdefault(invoice["id"], []).append(line)


# --- invoices --------------------------------------------------------------------------------

_INVOICE_FIELDS = frozenset(
    {
        "customer",
        "auto_advance",
        "collection_method",
        "days_until_due",
        "due_date",
        "description",
        "footer",
        "metadata",
        "currency",
        "pending_invoice_items_behavior",
        "effective_at",
        "subscription",
    }
)


def _collection(params: dict[str, Any], *, draft: dict[str, Any] | None = None) -> dict[str, Any]:
    """collection_method with days_until_due / due_date, checked as Stripe checks them."""
    method = params.get("collection_method") or (
        draft["collection_method"] if draft else "charge_automatically"
    )
    if method not in ("charge_automatically", "send_invoice"):
        raise StripeApiError(400, f"Invalid collection_method: {method}", param="collection_method")
    days = integer(params, "days_until_due", minimum=0)
    due = integer(params, "due_date")
    if days is not None and due is not None:
        raise StripeApiError(
            400,
            "You may only specify one of these parameters: days_until_due, due_date.",
            param="due_date",
        )
    if method == "charge_automatically" and (days is not None or due is not None):
        raise StripeApiError(
            400,
            "Invoices with collection_method=charge_automatically cannot have a due date.",
            param="due_date" if due is not None else "days_until_due",
        )
    if method == "send_invoice" and days is None and due is None and draft is None:
        raise StripeApiError(
            400,
            "Invoices with collection_method=send_invoice need either days_until_due or due_date.",
            code="parameter_missing",
            param="days_until_due",
        )
    return {"collection_method": method, "days_until_due": days, "due_date": due}


def new_draft(
    call: Call,
    customer: dict[str, Any],
    code: str,
    params: dict[str, Any],
    *,
    billing_reason: str = "manual",
    subscription_id: str | None = None,
) -> dict[str, Any]:
    state = call.state
    now = state.now()
    collection = _collection(params)
    due = collection["due_date"]
    if collection["days_until_due"] is not None:
        due = now + collection["days_until_due"] * _DAY
    values = {
        **params,
        **collection,
        "due_date": due,
        "auto_advance": boolean(params, "auto_advance")
        if "auto_advance" in params
        else billing_reason != "manual",
        "description": string(params, "description", max_length=1500),
        "footer": string(params, "footer", max_length=5000),
        "effective_at": integer(params, "effective_at"),
    }
    invoice = objects.invoice(
        state.new_id("in"),
        now,
        customer=customer,
        currency=code,
        account_country=state.account_country,
        account_name=state.account_name,
        params=values,
        billing_reason=billing_reason,
        subscription_id=subscription_id,
    )
    invoice["metadata"] = merge_metadata({}, params.get("metadata"))
    state.insert(invoice)
    state.invoice_lines[invoice["id"]] = []
    return invoice


def create_invoice(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    customer = state.get("customer", str(required(params, "customer")), param="customer")
    behavior = params.get("pending_invoice_items_behavior") or "exclude"
    if behavior not in ("include", "exclude"):
        raise StripeApiError(
            400,
            f"Invalid pending_invoice_items_behavior: {behavior}",
            param="pending_invoice_items_behavior",
        )
    code = currency(params) or customer["currency"] or "usd"
    with state.lock:
        pending = [
            state.objects[item_id]
            for item_id in state.items_by_customer.get(customer["id"], [])
            if behavior == "include"
            and state.objects[item_id]["invoice"] is None
            and state.objects[item_id]["currency"] == code
        ]
        if len(pending) > MAX_INVOICE_ITEMS:  # refused before anything is created
            raise StripeApiError(
                400,
                f"You cannot add more than {MAX_INVOICE_ITEMS} invoice items to an invoice "
                f"(the customer has {len(pending)} pending).",
                param="pending_invoice_items_behavior",
            )
        invoice = new_draft(call, customer, str(code), params)
        for item in pending:
            attach_line(state, invoice, item)
        if customer["currency"] is None:
            customer["currency"] = code
        recompute(state, invoice)
    call.emit("invoice.created", invoice)
    return state.render(invoice)


def retrieve_invoice(call: Call) -> dict[str, Any]:
    return call.state.render(call.state.get("invoice", call.arg("invoice")))


def update_invoice(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    invoice = state.get("invoice", call.arg("invoice"))
    draft_only = set(params) - {"metadata", "auto_advance", "expand"}
    if invoice["status"] != "draft" and draft_only:
        raise not_editable(
            "Finalized invoices can't be updated in this way; only metadata and "
            "auto_advance can change after finalization.",
            sorted(draft_only)[0],
        )
    previous = {"metadata": dict(invoice["metadata"])}
    if draft_only:
        collection = _collection(params, draft=invoice)
        invoice["collection_method"] = collection["collection_method"]
        if collection["days_until_due"] is not None:
            invoice["_days_until_due"] = collection["days_until_due"]
            invoice["due_date"] = state.now() + collection["days_until_due"] * _DAY
        if collection["due_date"] is not None:
            invoice["_days_until_due"] = None
            invoice["due_date"] = collection["due_date"]
        for name, limit in (("description", 1500), ("footer", 5000)):
            if name in params:
                invoice[name] = string(params, name, max_length=limit)
    if "auto_advance" in params:
        invoice["auto_advance"] = boolean(params, "auto_advance")
    invoice["metadata"] = merge_metadata(invoice["metadata"], params.get("metadata"))
    call.emit("invoice.updated", invoice, previous_attributes=previous)
    return state.render(invoice)


def finalize(call: Call, invoice: dict[str, Any]) -> None:
    """draft -> open (or paid when nothing is due): number, due date, hosted URLs, event."""
    state = call.state
    if invoice["status"] != "draft":
        raise StripeApiError(
            400,
            "This invoice is already finalized, you can't re-finalize a non-draft invoice.",
            code="invoice_not_editable",
        )
    now = state.now()
    with state.lock:
        customer = state.get("customer", invoice["customer"])
        recompute(state, invoice)
        sequence = customer["next_invoice_sequence"]
        customer["next_invoice_sequence"] = sequence + 1
        token = state.token(24, "abcdefghijklmnopqrstuvwxyz0123456789")
        days = invoice.pop("_days_until_due", None)
        if days is not None:
            invoice["due_date"] = now + days * _DAY
        invoice.update(
            number=f"{customer['invoice_prefix']}-{sequence:04d}",
            status="open",
            effective_at=invoice["effective_at"] or now,
            hosted_invoice_url=f"https://invoice.stripe.com/i/{state.account_id}/test_{token}",
            invoice_pdf=f"https://pay.stripe.com/invoice/{state.account_id}/test_{token}/pdf",
        )
        invoice["status_transitions"]["finalized_at"] = now
        invoice["_days_until_due"] = None
    call.emit("invoice.finalized", invoice)
    if invoice["amount_due"] == 0:
        invoice["status"] = "paid"
        invoice["status_transitions"]["paid_at"] = now
        call.emit("invoice.paid", invoice)


def finalize_invoice(call: Call) -> dict[str, Any]:
    invoice = call.state.get("invoice", call.arg("invoice"))
    if "auto_advance" in call.params:
        invoice["auto_advance"] = boolean(call.params, "auto_advance")
    finalize(call, invoice)
    return call.state.render(invoice)


def void_invoice(call: Call) -> dict[str, Any]:
    invoice = call.state.get("invoice", call.arg("invoice"))
    if invoice["status"] not in ("open", "uncollectible"):
        raise StripeApiError(
            400,
            f"You can only void an open or uncollectible invoice; this one is {invoice['status']}.",
            code="invoice_not_editable",
        )
    invoice["status"] = "void"
    invoice["status_transitions"]["voided_at"] = call.state.now()
    call.emit("invoice.voided", invoice)
    return call.state.render(invoice)


def list_invoices(call: Call) -> dict[str, Any]:
    params = call.params
    status = params.get("status")
    if status is not None and status not in ("draft", "open", "paid", "uncollectible", "void"):
        raise StripeApiError(400, f"Invalid status: {status}", param="status")
    customer, subscription = params.get("customer"), params.get("subscription")
    method = params.get("collection_method")
    in_range = created_filter(params)
    matches = [
        i
        for i in call.state.all_of("invoice")
        if (customer is None or i["customer"] == customer)
        and (status is None or i["status"] == status)
        and (subscription is None or i["subscription"] == subscription)
        and (method is None or i["collection_method"] == method)
        and in_range(i["created"])
    ]
    return call.state.page(matches, params, url="/v1/invoices")


def search_invoices(call: Call) -> dict[str, Any]:
    return search_page(
        call.state,
        "invoice",
        call.params,
        fields=frozenset(
            {
                "created",
                "currency",
                "customer",
                "metadata",
                "number",
                "receipt_number",
                "status",
                "subscription",
                "total",
            }
        ),
        resource="invoices",
    )


def invoice_lines(call: Call) -> dict[str, Any]:
    state = call.state
    invoice = state.get("invoice", call.arg("invoice"))
    lines = state.invoice_lines.get(invoice["id"], [])
    return state.page(
        lines,
        call.params,
        url=f"/v1/invoices/{invoice['id']}/lines",
        render=public_line,
        newest_first=False,
    )


def routes() -> list[Route]:
    return [
        Route("POST", "/v1/invoices", create_invoice, _INVOICE_FIELDS),
        Route("GET", "/v1/invoices/search", search_invoices, fields("query limit page")),
        Route(
            "GET",
            "/v1/invoices",
            list_invoices,
            PAGING | fields("customer status subscription collection_method created"),
        ),
        Route("GET", "/v1/invoices/{invoice}", retrieve_invoice),
        Route(
            "POST",
            "/v1/invoices/{invoice}",
            update_invoice,
            fields(
                "metadata auto_advance collection_method days_until_due due_date description footer"
            ),
        ),
        Route("GET", "/v1/invoices/{invoice}/lines", invoice_lines, PAGING),
        Route("POST", "/v1/invoices/{invoice}/finalize", finalize_invoice, fields("auto_advance")),
        Route("POST", "/v1/invoices/{invoice}/void_invoice", void_invoice),
    ]
