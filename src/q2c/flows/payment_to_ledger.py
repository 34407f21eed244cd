"""Payment to ledger: a payment received in billing is recorded in the ERP and applied to the
invoices it pays — partially, fully, or with the excess kept as unapplied credit — and sales
sees the customer's position on the CRM account.

    map_payment -> apply_payment -> update_crm_account -> publish_payment_applied

The CRM account's status (Current / Open Balance / Credit), open balance and last payment date
come from the hub's ledger of what the ERP posted and applied, in the payment's currency; a CRM
that keeps no such fields (no ``AccountStatusPort``), or a customer with no CRM account, is
skipped and says so in the step's output.

An application to an invoice the ERP does not hold yet (invoice-to-ledger still running) is
retried, not guessed: the payment waits for the posting. The ERP payment's external id is the
billing platform's payment id, so a duplicate delivery never records the money twice.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent, PaymentApplied, new_event
from q2c.canonical.models import Customer, Payment
from q2c.canonical.money import Money
from q2c.errors import NotFoundError, RetriableError
from q2c.flows.ports import AccountStatus, AccountStatusPort
from q2c.flows.services import Services
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult, XrefLink
from q2c.runtime.retry import RetryPolicy

__all__ = ["NAME", "build_flow", "payment_ref"]

NAME = "payment_to_ledger"


def payment_ref(payment: Payment) -> str:
    return next(iter(payment.xrefs.values()), payment.id)


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, Payment)
    return FlowKey(payment_ref(data), 1, None)


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def _payment(context: StepContext) -> Payment:
    assert isinstance(context.data, Payment)
    return context.data


def map_payment(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    payment = _payment(context)
    billing, erp = services.billing.system, services.ledger.system
    customer_id, customer_erp_id = services.erp_customer_of(payment.customer_id)
    if customer_erp_id is None:
        raise NotFoundError(
            f"Payment {payment_ref(payment)} is from customer {payment.customer_id} "
            f"({billing}), who has no {erp} customer",
            suggested_fix="Link the customer in the cross-reference hub, then replay.",
            field="customer_id",
        )
    customer = services.hub.records.current("customer", customer_id, Customer)
    legal_entity = customer.legal_entity if customer is not None else None
    applications = []
    for application in payment.applications:
        erp_invoice = services.xref.external_ids(f"inv:{application.invoice_id}", "invoice").get(
            erp
        )
        if erp_invoice is None:
            raise RetriableError(
                f"Invoice {application.invoice_id} is not posted to {erp} yet; the payment "
                "waits for it",
                suggested_fix="If invoice-to-ledger parked this invoice, fix and replay it "
                "first; this payment follows.",
                system=erp,
            )
        document = services.hub.documents.get("invoice", application.invoice_id)
        if document is not None:
            legal_entity = legal_entity or document["legal_entity"]
        applications.append(
            {
                "invoice_id": application.invoice_id,
                "erp_invoice_id": erp_invoice,
                "amount": application.amount.as_json(),
            }
        )
    if legal_entity is None:
        raise NotFoundError(
            f"Payment {payment_ref(payment)}: no legal entity known for customer {customer_id}",
            suggested_fix="Load the customer into q2c (opportunity-to-project), then replay.",
        )
    currencies = services.reference.currencies()
    return {
        "customer_id": customer_id,
        "customer_erp_id": customer_erp_id,
        "legal_entity": legal_entity,
        "subsidiary": services.maps.resolve("subsidiary", legal_entity, legal_entity, erp),
        "currency_erp_id": currencies[payment.amount.currency],
        "applications": applications,
    }


def apply_payment(context: StepContext) -> StepResult:
    services = _services(context)
    payment = _payment(context)
    mapped = context.output_of("map_payment")
    result = services.ledger.apply_payment(
        payment,
        external_id=f"q2c-pay-{payment_ref(payment)}",
        customer_erp_id=mapped["customer_erp_id"],
        subsidiary=mapped["subsidiary"],
        currency_erp_id=mapped["currency_erp_id"],
        applications=[
            (a["erp_invoice_id"], Money.from_json(a["amount"])) for a in mapped["applications"]
        ],
    )
    ref = payment_ref(payment)
    documents = services.hub.documents

    def record(connection: Connection) -> None:
        documents.upsert_in(
            connection,
            "payment",
            ref,
            legal_entity=mapped["legal_entity"],
            currency=payment.amount.currency,
            customer_id=mapped["customer_id"],
            number=payment.reference,
            amount=payment.amount,
            erp_id=result.erp_id,
            erp_amount=result.applied,
            status="applied",
        )

    return StepResult(
        output={
            "erp_id": result.erp_id,
            "applied": result.applied.as_json(),
            "unapplied": result.unapplied.as_json(),
        },
        xrefs=[XrefLink(f"pay:{ref}", "payment", services.ledger.system, result.erp_id)],
        writes=[record],
    )


def update_crm_account(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    payment = _payment(context)
    crm = services.crm
    customer_id = context.output_of("map_payment")["customer_id"]
    if not isinstance(crm, AccountStatusPort):
        return {"skipped": f"{crm.system} keeps no receivable status on accounts"}
    account_id = services.xref.external_ids(customer_id, "customer").get(crm.system)
    if account_id is None:
        return {"skipped": f"customer {customer_id} has no {crm.system} account"}
    with services.hub.documents.engine.connect() as connection:
        open_balance, credit = services.hub.documents.customer_position_in(
            connection, customer_id, payment.amount.currency
        )
    status = AccountStatus(
        status="Open Balance"
        if open_balance.amount > 0
        else ("Credit" if credit.amount > 0 or open_balance.amount < 0 else "Current"),
        open_balance=open_balance,
        unapplied_credit=credit,
        last_payment_on=payment.received_on,
    )
    crm.update_account_status(account_id, status)
    return {
        "account_id": account_id,
        "status": status.status,
        "open_balance": open_balance.as_json(),
        "unapplied_credit": credit.as_json(),
    }


def publish_payment_applied(context: StepContext) -> StepResult:
    payment = _payment(context)
    mapped = context.output_of("map_payment")
    applied = context.output_of("apply_payment")
    ref = payment_ref(payment)
    event = new_event(
        "payment.applied",
        PaymentApplied(
            payment_id=ref,
            erp_id=applied["erp_id"],
            legal_entity=mapped["legal_entity"],
            customer_id=mapped["customer_id"],
            amount=payment.amount,
            applied=Money.from_json(applied["applied"]),
            unapplied=Money.from_json(applied["unapplied"]),
            invoice_ids=[a["invoice_id"] for a in mapped["applications"]],
        ),
        subject=ref,
        correlation_id=context.correlation_id,
    )
    return StepResult(output={"erp_id": applied["erp_id"]}, events=[event])


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    retry = policy or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("payment.received",),
        key=_key,
        steps=(
            Step("map_payment", map_payment, retry=retry),
            Step("apply_payment", apply_payment, system="erp", retry=retry),
            Step("update_crm_account", update_crm_account, system="crm", retry=retry),
            Step("publish_payment_applied", publish_payment_applied, retry=retry),
        ),
    )
