"""Emulated invoice items (``/v1/invoiceitems``): pending items and their place on drafts.

An item is pending until an invoice takes it (``pending_invoice_items_behavior=include``) or
it is created on a draft (``invoice=``). Items on a finalized invoice can no longer be
edited or deleted (``invoice_not_editable``). Items are kept per customer, so listing one
customer's pending items stays quick with thousands of them.
"""

from __future__ import annotations

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
    string_list,
)
from q2c.connectors.stripe.invoicing import attach_line, check_room, not_editable, recompute
from q2c.connectors.stripe.objects import deleted
from q2c.connectors.stripe.state import StripeState
from q2c.connectors.stripe.wire import StripeApiError

__all__ = ["routes"]


def _tax_rate_ids(state: StripeState, params: dict[str, Any]) -> list[str]:
    ids = string_list(params, "tax_rates")
    if len(ids) > 10:
        raise StripeApiError(400, "You can add up to 10 tax rates to an item.", param="tax_rates")
    for rate_id in ids:
        rate = state.get("tax_rate", rate_id, param="tax_rates")
        if not rate["active"]:
            raise StripeApiError(
                400, f"Tax rate {rate_id} is archived and cannot be used.", param="tax_rates"
            )
    return ids


def _period(state: StripeState, params: dict[str, Any]) -> dict[str, int]:
    now = state.now()
    spec = params.get("period")
    if spec is None:
        return {"start": now, "end": now}
    if not isinstance(spec, dict):
        raise StripeApiError(400, "Invalid hash", param="period")
    start = integer(spec, "start")
    end = integer(spec, "end")
    if start is None:
        required({}, "period[start]")
    if end is None:
        required({}, "period[end]")
    assert start is not None and end is not None
    if end < start:
        raise StripeApiError(
            400, "The period end must be on or after the period start.", param="period[end]"
        )
    return {"start": start, "end": end}


_ITEM_FIELDS = frozenset(
    {
        "customer",
        "amount",
        "currency",
        "description",
        "period",
        "metadata",
        "tax_rates",
        "invoice",
        "discountable",
    }
)


def create_item(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    customer_id = str(required(params, "customer"))
    amount = integer(params, "amount")
    if amount is None:
        required(params, "amount")
    assert amount is not None
    requested = currency(params)
    customer = state.get("customer", customer_id, param="customer")
    code = requested or customer["currency"]
    if code is None:
        required(params, "currency")
    description = string(params, "description", max_length=500)
    tax_rates = _tax_rate_ids(state, params)
    period = _period(state, params)
    invoice = None
    if params.get("invoice"):
        invoice = state.get("invoice", str(params["invoice"]), param="invoice")
        if invoice["status"] != "draft":
            raise not_editable(
                "You can only add invoice items to draft invoices; this invoice is "
                f"{invoice['status']}.",
                "invoice",
            )
        if invoice["customer"] != customer["id"] or invoice["currency"] != code:
            raise StripeApiError(
                400,
                "The invoice item's customer and currency must match the invoice's.",
                param="invoice",
            )
        check_room(state, invoice)
    metadata = merge_metadata({}, params.get("metadata"))
    item = objects.invoice_item(
        state.new_id("ii"),
        state.now(),
        customer_id=customer["id"],
        currency=str(code),
        amount=amount,
        description=description,
        period=period,
        tax_rate_ids=tax_rates,
    )
    item["metadata"] = metadata
    if "discountable" in params:
        item["discountable"] = boolean(params, "discountable")
    with state.lock:
        state.insert(item)
        state.items_by_customer.setdefault(customer["id"], []).append(item["id"])
        if customer["currency"] is None:
            customer["currency"] = code
        if invoice is not None:
            attach_line(state, invoice, item)
            recompute(state, invoice)
    call.emit("invoiceitem.created", item)
    return state.render(item)


def _editable_item(state: StripeState, item: dict[str, Any]) -> dict[str, Any] | None:
    """The draft the item sits on (or None when pending); refuses finalized invoices."""
    if item["invoice"] is None:
        return None
    invoice = state.get("invoice", item["invoice"])
    if invoice["status"] != "draft":
        raise not_editable(
            f"The invoice item {item['id']} is on a finalized invoice and can no longer be "
            "edited or deleted.",
        )
    return invoice


def retrieve_item(call: Call) -> dict[str, Any]:
    item = call.state.get("invoiceitem", call.arg("invoiceitem"))
    return call.state.render(item)


def update_item(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    item = state.get("invoiceitem", call.arg("invoiceitem"))
    invoice = _editable_item(state, item)
    if "amount" in params:
        item["amount"] = item["net_amount"] = integer(params, "amount")
        item["pricing"]["unit_amount_decimal"] = str(item["amount"])
    if "description" in params:
        item["description"] = string(params, "description", max_length=500)
    if "tax_rates" in params:
        item["_tax_rates"] = _tax_rate_ids(state, params)
    if "period" in params:
        item["period"] = _period(state, params)
    item["metadata"] = merge_metadata(item["metadata"], params.get("metadata"))
    if invoice is not None:
        for line in state.invoice_lines[invoice["id"]]:
            if line["_invoice_item"] == item["id"]:
                line.update(
                    amount=item["amount"],
                    subtotal=item["amount"],
                    description=item["description"],
                    metadata=dict(item["metadata"]),
                    period=dict(item["period"]),
                    _tax_rates=list(item["_tax_rates"]),
                )
        recompute(state, invoice)
    call.emit("invoiceitem.updated", item)
    return state.render(item)


def delete_item(call: Call) -> dict[str, Any]:
    state = call.state
    item = state.get("invoiceitem", call.arg("invoiceitem"))
    invoice = _editable_item(state, item)
    with state.lock:
        if invoice is not None:
            state.invoice_lines[invoice["id"]] = [
                line
                for line in state.invoice_lines[invoice["id"]]
                if line["_invoice_item"] != item["id"]
            ]
            recompute(state, invoice)
        state.items_by_customer[item["customer"]].remove(item["id"])
        state.remove(item["id"])
    call.emit("invoiceitem.deleted", item)
    return deleted(item["id"], "invoiceitem")


def list_items(call: Call) -> dict[str, Any]:
    state, params = call.state, call.params
    pending = boolean(params, "pending")
    invoice_id = params.get("invoice")
    if params.get("customer"):
        ids = state.items_by_customer.get(str(params["customer"]), [])
        candidates = [state.objects[i] for i in ids]
    else:
        candidates = state.all_of("invoiceitem")
    in_range = created_filter(params)
    matches = [
        item
        for item in candidates
        if (pending is None or (item["invoice"] is None) == pending)
        and (invoice_id is None or item["invoice"] == invoice_id)
        and in_range(item["date"])
    ]
    return state.page(matches, params, url="/v1/invoiceitems")


def routes() -> list[Route]:
    return [
        Route("POST", "/v1/invoiceitems", create_item, _ITEM_FIELDS),
        Route(
            "GET",
            "/v1/invoiceitems",
            list_items,
            PAGING | fields("customer invoice pending created"),
        ),
        Route("GET", "/v1/invoiceitems/{invoiceitem}", retrieve_item),
        Route(
            "POST",
            "/v1/invoiceitems/{invoiceitem}",
            update_item,
            fields("amount description metadata tax_rates period"),
        ),
        Route("DELETE", "/v1/invoiceitems/{invoiceitem}", delete_item),
    ]
