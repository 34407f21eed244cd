"""Invoice to ledger: every finalized invoice is posted to the ERP exactly once, and the ERP's
own totals are checked against the billing document to the cent.

    map_invoice -> post_invoice (post, read back, compare) -> write_back_billing
        -> publish_invoice_posted

The ERP invoice's external id is derived from the billing platform's invoice id, so a replay
or a duplicate delivery lands on the same ERP record. A difference between what the ERP
computed (subtotal, tax, total, any line) and the billing document is an exception a person
looks at — never silently accepted.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent, InvoicePosted, new_event
from q2c.canonical.models import Invoice
from q2c.canonical.money import Money
from q2c.errors import BusinessFixError, MappingMissingError, NotFoundError
from q2c.flows.ports import ErpInvoice, InvoicePostingRefs
from q2c.flows.services import Services
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult, XrefLink
from q2c.runtime.retry import RetryPolicy

__all__ = ["NAME", "build_flow", "compare_posting", "invoice_ref"]

NAME = "invoice_to_ledger"


def invoice_ref(invoice: Invoice) -> str:
    """The billing platform's id of the invoice (its xref, else its canonical id)."""
    return next(iter(invoice.xrefs.values()), invoice.id)


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, Invoice)
    return FlowKey(invoice_ref(data), 1, data.legal_entity or None)


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def _invoice(context: StepContext) -> Invoice:
    assert isinstance(context.data, Invoice)
    return context.data


def map_invoice(context: StepContext) -> dict[str, Any]:
    """Resolve every ERP id the posting needs; a missing mapping names itself and its fix."""
    services = _services(context)
    invoice = _invoice(context)
    billing, erp = services.billing.system, services.ledger.system
    customer_id, customer_erp_id = services.erp_customer_of(invoice.customer_id)
    if customer_erp_id is None:
        raise NotFoundError(
            f"Invoice {invoice.number or invoice_ref(invoice)}'s customer "
            f"({invoice.customer_id} in {billing}) has no {erp} customer",
            suggested_fix="Provision the customer in the ERP (opportunity-to-project) or link "
            "it in the cross-reference hub, then replay.",
            field="customer_id",
        )
    entity = invoice.legal_entity
    maps = services.maps
    items = {
        line.service_item: maps.resolve("item", line.service_item, entity, erp)
        for line in invoice.lines
    }
    # a missing mapping raises MappingMissingError naming the q2c.yaml key to add
    tax_codes = {
        code: maps.resolve("tax_code", code, entity, erp)
        for code in sorted(
            {line.tax_code for line in invoice.lines if line.tax_code}
            | {t.tax_code for t in invoice.tax_lines}
        )
    }
    currencies = services.reference.currencies()
    if invoice.currency not in currencies:
        raise MappingMissingError(
            f"Currency {invoice.currency} is not enabled in {erp}",
            suggested_fix=f"Enable {invoice.currency} in the ERP, then replay.",
            field="currency",
        )
    refs = InvoicePostingRefs(
        customer_erp_id=customer_erp_id,
        subsidiary=maps.resolve("subsidiary", entity, entity, erp),
        currency_erp_id=currencies[invoice.currency],
        items=items,
        tax_codes=tax_codes,
        memo=f"{billing} invoice {invoice.number or invoice_ref(invoice)}",
    )
    return {"customer_id": customer_id, "refs": _refs_json(refs)}


def _refs_json(refs: InvoicePostingRefs) -> dict[str, Any]:
    return {
        "customer_erp_id": refs.customer_erp_id,
        "subsidiary": refs.subsidiary,
        "currency_erp_id": refs.currency_erp_id,
        "items": refs.items,
        "tax_codes": refs.tax_codes,
        "department": refs.department,
        "ar_account": refs.ar_account,
        "memo": refs.memo,
    }


def compare_posting(invoice: Invoice, posted: ErpInvoice) -> list[str]:
    """Every difference between the billing document and the ERP's, to the cent."""
    differences = []
    for name, ours, theirs in (
        ("subtotal", invoice.subtotal, posted.subtotal),
        ("tax", invoice.tax_total, posted.tax_total),
        ("total", invoice.total, posted.total),
    ):
        if ours.rounded() != theirs.rounded():
            differences.append(f"{name}: billing {ours}, ERP {theirs}")
    if len(invoice.lines) != len(posted.lines):
        differences.append(f"lines: billing {len(invoice.lines)}, ERP {len(posted.lines)}")
    else:
        for line, erp_line in zip(invoice.lines, posted.lines, strict=True):
            if line.amount.rounded() != erp_line.amount.rounded():
                differences.append(
                    f"line {line.line_no} amount: billing {line.amount}, ERP {erp_line.amount}"
                )
            if invoice.tax_rounding == "document":
                continue  # the billing document carries tax per code, not per line
            billed_tax = line.tax_amount or Money.zero(invoice.currency)
            if billed_tax.rounded() != erp_line.tax_amount.rounded():
                differences.append(
                    f"line {line.line_no} tax: billing {billed_tax}, ERP {erp_line.tax_amount}"
                )
    return differences


def post_invoice(context: StepContext) -> StepResult:
    """Post (or update in place, by external id), then read back and compare to the cent.

    One step, so that a replay after a mismatch re-posts the corrected invoice before it
    checks again, rather than re-reading the wrong one.
    """
    services = _services(context)
    invoice = _invoice(context)
    mapped = context.output_of("map_invoice")
    ref = services.ledger.upsert_invoice(
        invoice,
        external_id=f"q2c-inv-{invoice_ref(invoice)}",
        refs=InvoicePostingRefs(**mapped["refs"]),
    )
    posted = services.ledger.read_invoice(ref.erp_id)
    differences = compare_posting(invoice, posted)
    if differences:
        raise BusinessFixError(
            f"{services.ledger.system} computed invoice {invoice.number or invoice_ref(invoice)} "
            f"differently from the billing document: {differences[0]}"
            + (f" (+{len(differences) - 1} more)" if len(differences) > 1 else ""),
            detail="; ".join(differences),
            suggested_fix="Check the tax code mapping and the ERP tax rates for this legal "
            "entity; correct them, then replay (the ERP invoice is updated in place).",
            system=services.ledger.system,
            context={"differences": differences, "erp_id": ref.erp_id},
        )
    return StepResult(
        output={
            "erp_id": ref.erp_id,
            "erp_number": posted.number,
            "erp_total": posted.total.as_json(),
            "external_id": ref.external_id,
        },
        xrefs=[
            XrefLink(f"inv:{invoice_ref(invoice)}", "invoice", services.ledger.system, ref.erp_id)
        ],
    )


def write_back_billing(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    invoice = _invoice(context)
    number = context.output_of("post_invoice")["erp_number"]
    services.billing.record_erp_reference(
        invoice_ref(invoice), erp_system=services.ledger.system, erp_number=number
    )
    return {"erp_number": number}


def publish_invoice_posted(context: StepContext) -> StepResult:
    services = _services(context)
    invoice = _invoice(context)
    posted = context.output_of("post_invoice")
    customer_id = context.output_of("map_invoice")["customer_id"]
    ref = invoice_ref(invoice)
    event = new_event(
        "invoice.posted",
        InvoicePosted(
            invoice_id=ref,
            billing_number=invoice.number,
            erp_id=posted["erp_id"],
            erp_number=posted["erp_number"],
            legal_entity=invoice.legal_entity,
            customer_id=customer_id,
            total=invoice.total,
            tax_total=invoice.tax_total,
        ),
        subject=ref,
        correlation_id=context.correlation_id,
    )
    documents = services.hub.documents if services.ledgers is not None else None

    def record(connection: Connection) -> None:
        if documents is None:
            return
        documents.upsert_in(
            connection,
            "invoice",
            ref,
            legal_entity=invoice.legal_entity,
            currency=invoice.currency,
            customer_id=customer_id,
            contract_id=invoice.contract_id,
            number=invoice.number,
            amount=invoice.total,
            tax_amount=invoice.tax_total,
            erp_id=posted["erp_id"],
            erp_number=posted["erp_number"],
            erp_amount=Money.from_json(posted["erp_total"]),
            status="posted",
        )

    return StepResult(output={"erp_id": posted["erp_id"]}, events=[event], writes=[record])


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    retry = policy or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("invoice.finalized",),
        key=_key,
        steps=(
            Step("map_invoice", map_invoice, retry=retry),
            Step("post_invoice", post_invoice, system="erp", retry=retry),
            Step("write_back_billing", write_back_billing, system="billing", retry=retry),
            Step("publish_invoice_posted", publish_invoice_posted, retry=retry),
        ),
    )
