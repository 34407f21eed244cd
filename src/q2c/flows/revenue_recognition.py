"""Revenue recognition: at period close, every contract of the legal entity recognises what
its method says is earned by then, as journal entries deferred -> earned in the ERP.

    plan_recognition -> post_journals -> record_recognized

Per method (``q2c.revenue``): straight-line by month; milestone when the PSA reports the n-th
milestone completed (the n-th milestone of the contract's schedule); percent-complete on hours
delivered against the contract's hours, spread evenly over its months; as-invoiced on the
invoices posted for the contract (before tax). Each journal entry's external id is its
recognition key (contract, period, schedule version, ordinal), and entries already recorded
as recognised are left out, so a replayed or repeated close never posts revenue twice.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent, PeriodClosed, RevenueRecognized, new_event
from q2c.canonical.models import (
    BillingEventKind,
    BillingModel,
    Contract,
    RevenueMethod,
    RevenueSchedule,
)
from q2c.canonical.money import Money
from q2c.flows.ports import JournalLine, JournalRequest
from q2c.flows.services import HubLedgers, Services
from q2c.revenue import (
    EffortPeriod,
    MilestoneCompleted,
    RecognitionEntry,
    plan_schedule,
    recognize,
    update_progress,
)
from q2c.revenue.schedules import Invoiced, month_periods
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult
from q2c.runtime.retry import RetryPolicy

__all__ = [
    "NAME",
    "REVENUE_SCHEDULE",
    "build_flow",
    "current_schedule",
    "due_entries",
    "effort_plan",
]

NAME = "revenue_recognition"
REVENUE_SCHEDULE = "revenue_schedule"
"""Master-record type of a schedule re-planned by a change order (``flows.change_order``)."""
_ACCOUNTS = {"deferred": "deferred_revenue", "earned": "revenue"}


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, PeriodClosed)
    return FlowKey(f"{data.legal_entity}:{data.period_end.isoformat()}", 1, data.legal_entity)


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def _close(context: StepContext) -> PeriodClosed:
    assert isinstance(context.data, PeriodClosed)
    return context.data


def effort_plan(hub: HubLedgers, contract: Contract, through: date) -> list[EffortPeriod]:
    planned_total = sum((line.quantity for line in contract.lines), Decimal(0))
    months = month_periods(contract.start_date, contract.end_date)
    # even split to the hundredth of an hour; the last month takes the remainder (exact sum)
    even = (planned_total / len(months)).quantize(Decimal("0.01")) if months else Decimal(0)
    shares = [even] * (len(months) - 1) + [planned_total - even * (len(months) - 1)]
    actual: dict[tuple[date, date], Decimal] = {m: Decimal(0) for m in months}
    for event in hub.billable.for_contract(contract.id, BillingEventKind.TIME):
        for start, end in months:
            if start <= event.work_date <= end:
                actual[(start, end)] += event.quantity
    return [
        EffortPeriod(start, end, share, actual[(start, end)] if end <= through else None)
        for (start, end), share in zip(months, shares, strict=True)
    ]


def _as_invoiced(hub: HubLedgers, contract: Contract) -> list[Invoiced]:
    invoiced: list[Invoiced] = []
    for document in hub.documents.documents("invoice"):
        if document["contract_id"] != contract.id or document["status"] not in ("posted", "paid"):
            continue
        net = Decimal(document["amount"]) - Decimal(document["tax_amount"] or 0)
        invoiced.append((document["recorded_at"].date(), Money(net, contract.currency)))
    return invoiced


def current_schedule(hub: HubLedgers, contract: Contract, through: date) -> RevenueSchedule:
    """The schedule recognition works from: the latest one a change order re-planned, else
    one planned from the contract. As-invoiced always plans from the contract (its entries
    are the invoices, which keep coming; a change order moves its cap on the contract)."""
    method = contract.revenue_method
    progress = (
        effort_plan(hub, contract, through) if method is RevenueMethod.PERCENT_COMPLETE else None
    )
    stored = (
        None
        if method is RevenueMethod.AS_INVOICED
        else hub.records.current(REVENUE_SCHEDULE, contract.id, RevenueSchedule)
    )
    if stored is not None and stored.method is method:
        return stored if progress is None else update_progress(stored, progress)
    return plan_schedule(
        contract,
        effort_plan=progress,
        invoices=_as_invoiced(hub, contract) if method is RevenueMethod.AS_INVOICED else None,
    )


def due_entries(hub: HubLedgers, contract: Contract, through: date) -> list[RecognitionEntry]:
    """What the contract's method recognises by ``through`` and is not recognised yet."""
    method = contract.revenue_method
    completed: list[MilestoneCompleted] = []
    if method is RevenueMethod.MILESTONE:
        milestones = hub.billable.for_contract(contract.id, BillingEventKind.MILESTONE)
        completed = [
            MilestoneCompleted(sequence, event.work_date)
            for sequence, event in enumerate(milestones, start=1)
            if event.work_date <= through
        ]
    schedule = current_schedule(hub, contract, through)
    _, journal = recognize(schedule, through=through, completed=completed)
    done = {
        d["document_id"]
        for d in hub.documents.documents("revenue")
        if d["contract_id"] == contract.id
    }
    return [entry for entry in journal if entry.idempotency_key not in done]


def plan_recognition(context: StepContext) -> dict[str, Any]:
    hub = _services(context).hub
    close = _close(context)
    entries: list[dict[str, Any]] = []
    for contract in hub.records.all_current("contract", Contract, legal_entity=close.legal_entity):
        if contract.status not in ("active", "closed") or contract.start_date > close.period_end:
            continue
        if (
            contract.revenue_method is RevenueMethod.MILESTONE
            and contract.billing_model is not BillingModel.MILESTONE
            and not contract.billing_schedule
        ):
            continue  # nothing to plan milestones from; reported by reconciliation
        entries.extend(
            e.model_dump(mode="json") for e in due_entries(hub, contract, close.period_end)
        )
    return {"entries": entries}


def post_journals(context: StepContext) -> dict[str, Any]:
    """One journal per recognition entry; each is idempotent by its key, so a crash in the
    middle of the loop re-posts nothing on the retry."""
    services = _services(context)
    close = _close(context)
    erp = services.journal.system
    entity = close.legal_entity
    maps = services.maps
    currencies = services.reference.currencies()
    subsidiary = maps.resolve("subsidiary", entity, entity, erp)
    posted: dict[str, str] = {}
    for raw in context.output_of("plan_recognition")["entries"]:
        entry = RecognitionEntry.model_validate(raw)
        debit = maps.resolve("gl_account", _ACCOUNTS[entry.from_account], entity, erp)
        credit = maps.resolve("gl_account", _ACCOUNTS[entry.to_account], entity, erp)
        memo = (
            f"Revenue {entry.kind} {entry.contract_id} "
            f"{entry.period_start}..{entry.period_end} ({entry.method.value})"
        )
        ref = services.journal.post_journal(
            JournalRequest(
                subsidiary=subsidiary,
                currency_erp_id=currencies[entry.amount.currency],
                posting_date=entry.posting_date,
                memo=memo,
                lines=[
                    JournalLine(account=debit, debit=entry.amount, memo=memo),
                    JournalLine(account=credit, credit=entry.amount, memo=memo),
                ],
            ),
            external_id=entry.idempotency_key,
        )
        posted[entry.idempotency_key] = ref.erp_id
    return {"journals": posted}


def record_recognized(context: StepContext) -> StepResult:
    services = _services(context)
    close = _close(context)
    entries = [
        RecognitionEntry.model_validate(raw)
        for raw in context.output_of("plan_recognition")["entries"]
    ]
    journals: dict[str, str] = context.output_of("post_journals")["journals"]
    totals: dict[str, Money] = {}
    for entry in entries:
        signed = entry.amount if entry.kind == "recognition" else -entry.amount
        totals[signed.currency] = totals.get(signed.currency, Money.zero(signed.currency)) + signed
    documents = services.hub.documents

    def record(connection: Connection) -> None:
        for entry in entries:
            signed = entry.amount if entry.kind == "recognition" else -entry.amount
            documents.upsert_in(
                connection,
                "revenue",
                entry.idempotency_key,
                legal_entity=close.legal_entity,
                currency=entry.amount.currency,
                contract_id=entry.contract_id,
                amount=signed,
                erp_id=journals[entry.idempotency_key],
                status="recognized",
            )

    event = new_event(
        "revenue.recognized",
        RevenueRecognized(
            legal_entity=close.legal_entity,
            period_start=close.period_start,
            period_end=close.period_end,
            contract_ids=sorted({e.contract_id for e in entries}),
            journal_ids=sorted(journals.values()),
            amounts=[totals[c] for c in sorted(totals)],
        ),
        subject=context.business_key,
        correlation_id=context.correlation_id,
    )
    return StepResult(
        output={"entries": len(entries), "totals": {c: m.as_json() for c, m in totals.items()}},
        events=[event],
        writes=[record],
    )


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    retry = policy or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("period.closed",),
        key=_key,
        steps=(
            Step("plan_recognition", plan_recognition, retry=retry),
            Step("post_journals", post_journals, system="erp", retry=retry),
            Step("record_recognized", record_recognized, retry=retry),
        ),
    )
