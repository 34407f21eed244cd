"""Change order: an approved modification of a contract becomes the contract the hub bills
and recognises revenue by, from its effective date on.

    check_change_order -> replan_revenue -> update_contract -> release_held_billing
    -> publish_contract_changed

Change orders of a contract are numbered 1, 2, 3...; the business key is (contract, number),
so a repeated one is a duplicate at the inbox and one that skips a number is refused until the
missing one is applied. Nothing is written until the new terms passed every check and the
revenue re-plan worked out: a new not-to-exceed below what is already billed, or a new value
below revenue already recognised, is refused with what to do instead.

What is written (master records, each a new version): the contract, the change order itself
(who approved it and why) and the re-planned revenue schedule, which revenue recognition
works from at the next period close. Raising a cap then makes what it held back billable
again: held events go back to ready, the open cap exceptions of the contract are resolved with
a note, and the next billing run bills up to the new cap (never what was already billed).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.events import CloudEvent, ContractChanged, new_event
from q2c.canonical.models import (
    BillingEventKind,
    BillingModel,
    ChangeOrder,
    Contract,
    RevenueEntry,
    RevenueMethod,
    RevenueSchedule,
)
from q2c.canonical.money import Money
from q2c.errors import BusinessFixError, NotFoundError, ValidationError
from q2c.flows import delivery_to_billing
from q2c.flows.revenue_recognition import REVENUE_SCHEDULE, current_schedule, effort_plan
from q2c.flows.services import HubLedgers, Services
from q2c.revenue import MilestoneCompleted, apply_change_order, recognize, schedule_version
from q2c.runtime.exception_queue import ExceptionFilter
from q2c.runtime.flow import Flow, FlowKey, Step, StepContext, StepResult
from q2c.runtime.retry import RetryPolicy

__all__ = ["CHANGE_ORDER", "NAME", "build_flow", "change_order_event"]

NAME = "change_order"
CHANGE_ORDER = "change_order"
"""Master-record type of the applied change orders: one version per change number."""
_CONTRACT = "contract"


def _key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, ChangeOrder)
    return FlowKey(f"{data.contract_id}:co{data.change_number}", 1, None)


def change_order_event(order: ChangeOrder, *, source: str = "urn:q2c:cpq") -> CloudEvent:
    """The inbound event of an approved change order; its id makes a repeat a duplicate."""
    key = f"{order.contract_id}:co{order.change_number}"
    return new_event(
        "contract.change_order_approved", order, source=source, subject=key, event_id=key
    )


def _hub(context: StepContext) -> HubLedgers:
    services: Services = context.services
    return services.hub


def _order(context: StepContext) -> ChangeOrder:
    assert isinstance(context.data, ChangeOrder)
    return context.data


def _contracts(context: StepContext) -> tuple[Contract, Contract]:
    """(before, after) the change, as the check step decided them."""
    checked = context.output_of("check_change_order")
    return (
        Contract.model_validate(checked["previous"]),
        Contract.model_validate(checked["contract"]),
    )


# --- 1. check ------------------------------------------------------------------------------


def check_change_order(context: StepContext) -> dict[str, Any]:
    """The contract is known and active, this is its next change order, the money is in the
    contract's currency and the new cap is not below what is already billed."""
    hub = _hub(context)
    order = _order(context)
    contract = hub.records.current(_CONTRACT, order.contract_id, Contract)
    if contract is None:
        raise NotFoundError(
            f"Change order {order.change_number} is for contract {order.contract_id}, "
            "which q2c does not know",
            suggested_fix="Provision the contract (opportunity-to-project), then replay.",
            field="contract_id",
        )
    if contract.status != "active":
        raise BusinessFixError(
            f"Contract {contract.number} is {contract.status}; change order "
            f"{order.change_number} can only change an active contract",
            suggested_fix="Reactivate the contract, then replay the change order.",
            field="contract_id",
        )
    _check_sequence(hub, contract, order)
    _check_currency(contract, order)
    changed = _changed_contract(contract, order)
    _check_caps(hub, changed, order)
    version = len(hub.records.versions(_CONTRACT, contract.id, Contract)) + 1
    return {
        "previous": contract.model_dump(mode="json"),
        "contract": changed.model_dump(mode="json"),
        "contract_version": version,
    }


def _check_sequence(hub: HubLedgers, contract: Contract, order: ChangeOrder) -> None:
    applied = hub.records.current(CHANGE_ORDER, contract.id, ChangeOrder)
    last = applied.change_number if applied is not None else 0
    if order.change_number <= last:
        raise BusinessFixError(
            f"Change order {order.change_number} of contract {contract.number} is older than "
            f"change order {last}, which is already applied; it is not applied again",
            suggested_fix=f"Nothing to apply: dismiss this exception. To change the contract "
            f"again, approve change order {last + 1}.",
            field="change_number",
            context={"contract_id": contract.id, "last_applied": last},
        )
    if order.change_number > last + 1:
        raise BusinessFixError(
            f"Change order {order.change_number} of contract {contract.number} arrived before "
            f"change order {last + 1}; change orders are applied in order",
            suggested_fix=f"Apply change order {last + 1} first (replay it if it is parked), "
            "then replay this one.",
            field="change_number",
            context={"contract_id": contract.id, "last_applied": last},
        )


def _check_currency(contract: Contract, order: ChangeOrder) -> None:
    amounts: list[tuple[str, Money | None]] = [
        ("total_value", order.total_value),
        ("not_to_exceed", order.not_to_exceed),
    ]
    for line in order.added_lines:
        amounts += [
            (f"added_lines[{line.line_no}].unit_price", line.unit_price),
            (f"added_lines[{line.line_no}].amount", line.amount),
        ]
    for field, money in amounts:
        if money is not None and money.currency != contract.currency:
            raise ValidationError(
                f"Change order {order.change_number} states {field} in {money.currency}; "
                f"contract {contract.number} is in {contract.currency}",
                suggested_fix=f"Restate the change order in {contract.currency}, then replay.",
                field=field,
            )


def _changed_contract(contract: Contract, order: ChangeOrder) -> Contract:
    """The contract with the change order's terms; a stated value wins over added lines."""
    taken = {line.line_no for line in contract.lines}
    clash = sorted(taken & {line.line_no for line in order.added_lines})
    if clash:
        raise ValidationError(
            f"Change order {order.change_number} adds line(s) {clash} to contract "
            f"{contract.number}, which already has lines with those numbers",
            suggested_fix=f"Number the added lines after {max(taken)}, then replay.",
            field="added_lines",
        )
    total = order.total_value
    if total is None:
        total = contract.total_value + Money.total(
            (line.amount for line in order.added_lines), contract.currency
        )
    update: dict[str, Any] = {
        "total_value": total,
        "not_to_exceed": order.not_to_exceed or contract.not_to_exceed,
        "end_date": order.end_date or contract.end_date,
        "lines": [*contract.lines, *order.added_lines],
        "billing_terms": order.billing_terms or contract.billing_terms,
    }
    try:  # validate again: the model's own rules (dates) apply to the changed contract
        return Contract.model_validate({**contract.model_dump(), **update})
    except ValueError as exc:
        raise ValidationError(
            f"Change order {order.change_number} would make contract {contract.number} "
            f"invalid: {exc}",
            detail=str(exc),
            suggested_fix="Correct the change order's dates or lines, then replay.",
        ) from exc


def _billing_cap(contract: Contract) -> tuple[str, Money] | None:
    """What billing may not exceed: the not-to-exceed, else the value of a contract billed
    against its value (fixed fee, milestone); a plain T&M contract's value is an estimate."""
    if contract.not_to_exceed is not None:
        return "not-to-exceed", contract.not_to_exceed
    if contract.billing_model in (BillingModel.FIXED_FEE, BillingModel.MILESTONE):
        return "contract value", contract.total_value
    return None


def _check_caps(hub: HubLedgers, after: Contract, order: ChangeOrder) -> None:
    cap = _billing_cap(after)
    if cap is None:
        return
    name, amount = cap
    billed = hub.billable.billed_total(after.id, after.currency)
    if amount.rounded() < billed:
        field = "not_to_exceed" if name == "not-to-exceed" else "total_value"
        raise BusinessFixError(
            f"Change order {order.change_number} sets the {name} of contract {after.number} "
            f"to {amount}, below the {billed} already billed",
            suggested_fix=f"Set the {name} to at least {billed} (or credit the excess in the "
            "billing platform first), then replay the change order.",
            field=field,
            context={"contract_id": after.id, "billed": str(billed), name: str(amount)},
        )


# --- 2. revenue ----------------------------------------------------------------------------


def replan_revenue(context: StepContext) -> dict[str, Any]:
    """Re-plan what is still to be recognised so the schedule totals the new value."""
    hub = _hub(context)
    order = _order(context)
    before, after = _contracts(context)
    schedule = _as_recognized(hub, before, current_schedule(hub, before, order.effective_date))
    method = after.revenue_method
    revised = apply_change_order(
        schedule,
        new_value=_revenue_value(after),
        effective=order.effective_date,
        new_end=order.end_date,
        effort_plan=effort_plan(hub, after, order.effective_date)
        if method is RevenueMethod.PERCENT_COMPLETE
        else None,
    )
    return {
        "schedule": revised.model_dump(mode="json"),
        "total": revised.total.as_json(),
        "recognized": _recognized(revised).as_json(),
    }


def _revenue_value(contract: Contract) -> Money:
    """As-invoiced revenue stops at the cap that stops billing; other methods spread the value."""
    if contract.revenue_method is RevenueMethod.AS_INVOICED and contract.not_to_exceed:
        return contract.not_to_exceed
    return contract.total_value


def _as_recognized(
    hub: HubLedgers, contract: Contract, schedule: RevenueSchedule
) -> RevenueSchedule:
    """The schedule with the entries the ledger already recognised marked so: recognition
    derives a key per entry, and the hub keeps the keys it journaled."""
    done = {
        d["document_id"]
        for d in hub.documents.documents("revenue")
        if d["contract_id"] == contract.id
    }
    completed = [
        MilestoneCompleted(sequence, event.work_date)
        for sequence, event in enumerate(
            hub.billable.for_contract(contract.id, BillingEventKind.MILESTONE), start=1
        )
    ]
    if schedule.method is not RevenueMethod.MILESTONE:
        completed = []
    due, journal = recognize(schedule, through=date.max, completed=completed)
    keys = iter(journal)
    entries: list[RevenueEntry] = []
    for planned, recognized in zip(schedule.entries, due.entries, strict=True):
        journaled = (
            planned.status != "recognized"
            and recognized.status == "recognized"
            and not recognized.amount.is_zero()
        )
        if journaled and next(keys).idempotency_key in done:
            entries.append(recognized)
        else:
            entries.append(planned)
    return schedule.model_copy(update={"entries": entries})


def _recognized(schedule: RevenueSchedule) -> Money:
    return Money.total(
        (e.amount for e in schedule.entries if e.status == "recognized"), schedule.total.currency
    )


# --- 3. contract ---------------------------------------------------------------------------


def update_contract(context: StepContext) -> StepResult:
    """New versions of the contract, the applied change orders and the revenue schedule, in
    one commit: the next billing run uses the new cap, the next close the new schedule."""
    hub = _hub(context)
    order = _order(context)
    _, after = _contracts(context)
    version: int = context.output_of("check_change_order")["contract_version"]
    schedule = RevenueSchedule.model_validate(context.output_of("replan_revenue")["schedule"])

    def write(connection: Connection) -> None:
        records = hub.records
        entity = after.legal_entity
        records.save_in(
            connection,
            _CONTRACT,
            after,
            canonical_id=after.id,
            version=version,
            legal_entity=entity,
            status=after.status,
        )
        records.save_in(
            connection,
            CHANGE_ORDER,
            order,
            canonical_id=after.id,
            version=order.change_number,
            legal_entity=entity,
        )
        records.save_in(
            connection,
            REVENUE_SCHEDULE,
            schedule,
            canonical_id=after.id,
            version=schedule_version(schedule),
            legal_entity=entity,
        )

    return StepResult(
        output={
            "contract_version": version,
            "revenue_schedule_id": schedule.id,
            "approved_by": order.approved_by,
            "reason": order.reason,
        },
        writes=[write],
    )


# --- 4. billing ----------------------------------------------------------------------------


def release_held_billing(context: StepContext) -> StepResult:
    """What a raised cap held back becomes billable again, and its exceptions are resolved."""
    hub = _hub(context)
    order = _order(context)
    before, after = _contracts(context)
    raised = _raised_cap(before, after)
    if raised is None:
        return StepResult(output={"released_event_ids": [], "resolved_exceptions": []})
    name, amount = raised
    held = hub.billable.held_ids_for(after.id, reason_contains=f"reached its {name}")
    parked = [
        e
        for e in hub.exceptions.list(
            ExceptionFilter(
                status="open",
                flow=delivery_to_billing.RUN,
                message_contains=f"Contract {after.number} reached its {name}",
            ),
            limit=1000,
        )
        if e.context.get("contract_id") == after.id
    ]
    named = [i for e in parked for i in e.context.get("event_ids", [])]
    note = (
        f"{name} of contract {after.number} raised to {amount} by change order "
        f"{order.change_number} (approved by {order.approved_by}: {order.reason}); the next "
        "billing run bills the held events up to it"
    )

    def write(connection: Connection) -> None:
        hub.billable.release_held_in(connection, held)
        for exception in parked:
            hub.exceptions.resolve_in(connection, exception.id, resolution=note)

    return StepResult(
        output={
            "released_event_ids": sorted({*held, *named}),
            "resolved_exceptions": [e.id for e in parked],
        },
        writes=[write],
    )


def _raised_cap(before: Contract, after: Contract) -> tuple[str, Money] | None:
    """The billing cap the change raised (name and new amount), if it raised one."""
    old, new = _billing_cap(before), _billing_cap(after)
    if new is None:
        return None
    # a cap that appears where there was none cannot have held anything back
    if old is None or old[0] != new[0] or new[1] > old[1]:
        return new
    return None


# --- 5. publish ----------------------------------------------------------------------------


def publish_contract_changed(context: StepContext) -> StepResult:
    order = _order(context)
    before, after = _contracts(context)
    updated = context.output_of("update_contract")
    released = context.output_of("release_held_billing")
    changed = ContractChanged(
        contract_id=after.id,
        contract_number=after.number,
        contract_version=updated["contract_version"],
        legal_entity=after.legal_entity,
        change_number=order.change_number,
        effective_date=order.effective_date,
        total_value=after.total_value,
        not_to_exceed=after.not_to_exceed,
        previous_total_value=before.total_value,
        previous_not_to_exceed=before.not_to_exceed,
        end_date=after.end_date,
        revenue_schedule_id=updated["revenue_schedule_id"],
        released_event_ids=released["released_event_ids"],
        resolved_exceptions=released["resolved_exceptions"],
        approved_by=order.approved_by,
        reason=order.reason,
    )
    event = new_event(
        "contract.changed",
        changed,
        subject=after.id,
        correlation_id=context.correlation_id,
        event_id=f"contract-changed:{context.business_key}",
    )
    return StepResult(output={"event_id": event.id}, events=[event])


def build_flow(policy: RetryPolicy | None = None) -> Flow:
    retry = policy or RetryPolicy()
    return Flow(
        name=NAME,
        triggers=("contract.change_order_approved",),
        key=_key,
        steps=(
            Step("check_change_order", check_change_order, retry=retry),
            Step("replan_revenue", replan_revenue, retry=retry),
            Step("update_contract", update_contract, retry=retry),
            Step("release_held_billing", release_held_billing, retry=retry),
            Step("publish_contract_changed", publish_contract_changed, retry=retry),
        ),
    )
