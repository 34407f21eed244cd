"""Delivery to billing: every approved hour, expense, milestone and usage record becomes an
invoice line exactly once.

Two sagas, because intake is per event and billing is per contract and period (batched):

    intake (per billing event):   check_delivery -> record_billable
    billing run (per contract and period end):
        collect -> rate -> ensure_billing_customer -> create_invoice (an empty draft)
            -> send_lines (onto that draft) -> finalize_invoice -> record_inclusion

Intake refuses what cannot be billed (closed project, unknown role, negative quantity, an
expense in a currency with no rate) with a business message, and records the rest once in the
hub's billable-events ledger. A billing run rates the contract's ready events by its billing
model (``q2c.pricing``), creates a draft invoice in the billing platform and puts one item
per line on it (idempotent per line; two runs for one customer never mix), finalizes it,
checks the platform's totals against its own to the cent, and records which invoice line
every event landed on — in the same commit as the step, so an event is never billed twice.
The finalized invoice is handed to invoice-to-ledger in that commit too.

Line grouping (so an invoice does not carry 10,000 lines): time lines of one rate (service
item, role, unit price, rate card version, tax code) become one invoice line; its quantity is
the sum of hours and its amount the sum of the per-entry rounded amounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection

from q2c.canonical.base import CanonicalModel
from q2c.canonical.events import BillingRunRequested, CloudEvent, DeliveryBatch, new_event
from q2c.canonical.models import (
    BillingEvent,
    BillingEventKind,
    BillingModel,
    Contract,
    Customer,
    ExchangeRate,
    Invoice,
    Project,
    RateCard,
    TaxCode,
)
from q2c.canonical.money import Money
from q2c.errors import BusinessFixError, NotFoundError, ValidationError
from q2c.flows.ports import BillingLine
from q2c.flows.services import HubLedgers, Services
from q2c.pricing.fx import ExchangeRateTable
from q2c.pricing.installments import milestone_from_event, rate_installments, rate_milestones
from q2c.pricing.rate_cards import RateCardBook
from q2c.pricing.rating import HeldItem, RatedLine, RatingOutcome
from q2c.pricing.retainer import RetainerTerms, settle_retainer_period
from q2c.pricing.tax import TaxTable, apply_tax
from q2c.pricing.time_materials import ExpensePolicy, rate_time_and_materials
from q2c.pricing.usage import Tier, TierTable, rate_usage
from q2c.runtime.flow import (
    Flow,
    FlowKey,
    HubWrite,
    Step,
    StepContext,
    StepResult,
    XrefLink,
)
from q2c.runtime.ledgers import BilledLine, RecordedDelivery
from q2c.runtime.retry import RetryPolicy

__all__ = [
    "BATCH_INTAKE",
    "INTAKE",
    "RUN",
    "DeliveryReferences",
    "RateCardUse",
    "billing_run_event",
    "build_flows",
    "rate_contract",
]

INTAKE = "delivery_to_billing"
BATCH_INTAKE = "delivery_batch_intake"
RUN = "billing_run"
TRIGGERS = ("time.approved", "expense.approved", "milestone.completed", "usage.recorded")

_KIND_WORDS = {
    BillingEventKind.TIME: "Time entry",
    BillingEventKind.EXPENSE: "Expense",
    BillingEventKind.MILESTONE: "Milestone",
    BillingEventKind.USAGE: "Usage record",
    BillingEventKind.RETAINER_PERIOD: "Retainer period",
    BillingEventKind.FIXED_FEE_INSTALLMENT: "Installment",
}

# Which delivery each billing model bills; the rest is recorded and held as not billable.
_BILLED_KINDS = {
    BillingModel.TIME_AND_MATERIALS: {BillingEventKind.TIME, BillingEventKind.EXPENSE},
    BillingModel.FIXED_FEE: {BillingEventKind.EXPENSE},
    BillingModel.MILESTONE: {BillingEventKind.MILESTONE, BillingEventKind.EXPENSE},
    BillingModel.RETAINER: {BillingEventKind.TIME, BillingEventKind.EXPENSE},
    BillingModel.USAGE: {BillingEventKind.USAGE, BillingEventKind.EXPENSE},
}


def _services(context: StepContext) -> Services:
    return context.services  # type: ignore[no-any-return]


def _what(event: BillingEvent) -> str:
    return f"{_KIND_WORDS[event.kind]} {event.id}"


# --- reference data the rating needs, read from the hub's master records -------------------


class RateCardUse(CanonicalModel):
    """The latest work date a rate card version billed: a later version may not start
    before it (``RateCardBook`` refuses)."""

    rate_card_id: str
    version: int
    last_used_on: date


def rate_card_use_id(rate_card_id: str, version: int) -> str:
    return f"{rate_card_id}:v{version}"


def rate_book(hub: HubLedgers, rate_card_id: str, *, with_use: bool = True) -> RateCardBook:
    """Every version of a rate card, with the dates billed lines used them on (needed to
    judge a new version; reading a rate does not need them)."""
    book = RateCardBook()
    for card in hub.records.versions("rate_card", rate_card_id, RateCard):
        book.add_version(card)
        if not with_use:
            continue
        use = hub.records.current(
            "rate_card_use", rate_card_use_id(card.id, card.version), RateCardUse
        )
        if use is not None:
            book.mark_used(card.id, card.version, on=use.last_used_on)
    return book


def fx_table(hub: HubLedgers) -> ExchangeRateTable:
    return ExchangeRateTable(hub.records.all_current("exchange_rate", ExchangeRate))


def tax_table(hub: HubLedgers) -> TaxTable:
    return TaxTable(hub.records.all_current("tax_code", TaxCode))


def _contract(hub: HubLedgers, contract_id: str) -> Contract:
    contract = hub.records.current("contract", contract_id, Contract)
    if contract is None:
        raise NotFoundError(
            f"Contract {contract_id} is not known to q2c",
            suggested_fix="Provision it through opportunity-to-project (or load it), then replay.",
            field="contract_id",
        )
    return contract


# --- intake --------------------------------------------------------------------------------


def _intake_key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, BillingEvent)
    return FlowKey(data.id, 1, None)


class DeliveryReferences:
    """The master data intake checks against, each record read once: one event reads a few,
    a batch of a thousand reads each project, contract and rate card once."""

    def __init__(self, hub: HubLedgers) -> None:
        self.hub = hub
        self._projects: dict[str, Project | None] = {}
        self._contracts: dict[str, Contract | None] = {}
        self._books: dict[str, RateCardBook] = {}
        self._fx: ExchangeRateTable | None = None

    def preload(self, events: Iterable[BillingEvent]) -> None:
        """Read the projects and contracts of a batch in one query each."""
        project_ids = {e.project_id for e in events} - set(self._projects)
        projects = self.hub.records.current_many("project", project_ids, Project)
        for project_id in project_ids:
            self._projects[project_id] = projects.get(project_id)
        contract_ids = {e.contract_id for e in events if e.contract_id} | {
            p.contract_id for p in projects.values() if p.contract_id
        }
        contract_ids -= set(self._contracts)
        contracts = self.hub.records.current_many("contract", contract_ids, Contract)
        for contract_id in contract_ids:
            self._contracts[contract_id] = contracts.get(contract_id)

    def project(self, project_id: str) -> Project | None:
        if project_id not in self._projects:
            self._projects[project_id] = self.hub.records.current("project", project_id, Project)
        return self._projects[project_id]

    def contract(self, contract_id: str) -> Contract:
        if contract_id not in self._contracts:
            self._contracts[contract_id] = self.hub.records.current(
                "contract", contract_id, Contract
            )
        contract = self._contracts[contract_id]
        if contract is None:
            return _contract(self.hub, contract_id)  # raises the business message
        return contract

    def rate_book(self, rate_card_id: str) -> RateCardBook:
        if rate_card_id not in self._books:
            self._books[rate_card_id] = rate_book(self.hub, rate_card_id, with_use=False)
        return self._books[rate_card_id]

    def fx(self) -> ExchangeRateTable:
        if self._fx is None:
            self._fx = fx_table(self.hub)
        return self._fx


def check_billing_event(event: BillingEvent, references: DeliveryReferences) -> dict[str, Any]:
    """Project active, contract active, billing rules present, the entry itself billable;
    raises a business-fix error naming the entry otherwise."""
    project = references.project(event.project_id)
    if project is None:
        raise NotFoundError(
            f"{_what(event)} is for project {event.project_id}, which q2c does not know",
            suggested_fix="Provision the project (opportunity-to-project) or link the PSA "
            "project to it in the cross-reference hub, then replay.",
            field="project_id",
        )
    if project.status != "active":
        raise ValidationError(
            f"{_what(event)} of {event.work_date} is for project {project.code} "
            f"'{project.name}', which is {project.status}",
            suggested_fix="Move the entry to an open project in the PSA (or reopen the project "
            "in the ERP), then replay; or dismiss it if it must not be billed.",
            field="project_id",
        )
    contract_id = event.contract_id or project.contract_id
    if contract_id is None:
        raise BusinessFixError(
            f"Project {project.code} has no contract, so there are no billing rules for "
            f"{_what(event)}",
            suggested_fix="Link the project to its contract, then replay.",
            field="contract_id",
        )
    contract = references.contract(contract_id)
    if contract.status not in ("active", "closed"):
        raise ValidationError(
            f"Contract {contract.number} is {contract.status}; {_what(event)} cannot be billed",
            suggested_fix="Reactivate the contract, then replay.",
            field="contract_id",
        )
    if event.quantity < 0:
        raise ValidationError(
            f"{_what(event)} has a negative quantity ({event.quantity} {event.unit})",
            suggested_fix="Correct the original entry in the PSA instead of logging a negative "
            "one; then dismiss this exception.",
            field="quantity",
        )
    billed = event.kind in _BILLED_KINDS[contract.billing_model] and event.billable
    if billed:
        _check_billing_rules(references, event, contract)
    return {
        "contract_id": contract.id,
        "legal_entity": contract.legal_entity,
        "project_code": project.code,
        "billing_model": contract.billing_model.value,
        "billable": billed,
    }


def check_delivery(context: StepContext) -> dict[str, Any]:
    event = context.data
    assert isinstance(event, BillingEvent)
    return check_billing_event(event, DeliveryReferences(_services(context).hub))


def _check_billing_rules(
    references: DeliveryReferences, event: BillingEvent, contract: Contract
) -> None:
    if event.kind is BillingEventKind.TIME and contract.billing_model is (
        BillingModel.TIME_AND_MATERIALS
    ):
        if contract.rate_card_id is None:
            raise BusinessFixError(
                f"Contract {contract.number} bills time and materials but has no rate card",
                suggested_fix="Attach a rate card to the contract, then replay.",
                field="rate_card_id",
            )
        references.rate_book(contract.rate_card_id).rate_for(
            contract.rate_card_id,
            role=event.role,
            service_item=event.service_item,
            on=event.work_date,
        )
    elif event.kind is BillingEventKind.EXPENSE:
        if event.amount is None:
            raise ValidationError(f"{_what(event)} has no amount", field="amount")
        if event.amount.currency != contract.currency:
            references.fx().rate(event.amount.currency, contract.currency, event.work_date)
    elif event.kind is BillingEventKind.MILESTONE:
        if event.amount is None and event.percent is None:
            raise ValidationError(
                f"{_what(event)} has neither an amount nor a percent of the contract",
                suggested_fix="Set the milestone's billing amount or percent in the PSA.",
                field="amount",
            )
    elif event.kind is BillingEventKind.USAGE and contract.billing_terms.usage is None:
        raise BusinessFixError(
            f"Contract {contract.number} has no usage price tiers for {_what(event)}",
            suggested_fix="Add usage pricing to the contract's billing terms, then replay.",
            field="billing_terms.usage",
        )
    elif event.kind is BillingEventKind.TIME and contract.billing_terms.retainer is None:
        raise BusinessFixError(
            f"Contract {contract.number} is a retainer without retainer terms",
            suggested_fix="Add the retainer terms (period fee, hours) to the contract.",
            field="billing_terms.retainer",
        )


def record_billable(context: StepContext) -> StepResult:
    hub = _services(context).hub
    event = context.data
    assert isinstance(event, BillingEvent)
    checked = context.output_of("check_delivery")

    def write(connection: Connection) -> None:
        hub.billable.record_ready_in(
            connection,
            event,
            contract_id=checked["contract_id"],
            legal_entity=checked["legal_entity"],
        )
        if not checked["billable"]:
            hub.billable.mark_held_in(
                connection,
                [(event.id, f"not billed under a {checked['billing_model']} contract")],
                billing_run="intake",
            )

    return StepResult(output={"status": "ready" if checked["billable"] else "held"}, writes=[write])


# --- batched intake ------------------------------------------------------------------------

# the event type each kind of delivery arrives under when it comes alone
SINGLE_EVENT_TYPES = {
    BillingEventKind.TIME: "time.approved",
    BillingEventKind.EXPENSE: "expense.approved",
    BillingEventKind.MILESTONE: "milestone.completed",
    BillingEventKind.USAGE: "usage.recorded",
}


def _batch_key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, DeliveryBatch)
    return FlowKey(data.batch_id, 1, None)


def intake_batch(context: StepContext) -> StepResult:
    """Check a whole batch against master data read once, and record what can be billed in
    one commit. An entry that fails its check is handed, in that same commit, to the
    per-event intake under its own business key: there it is parked by name with its fix and
    can be replayed alone, while the rest of the batch goes on to billing now."""
    hub = _services(context).hub
    batch = context.data
    assert isinstance(batch, DeliveryBatch)
    with hub.records.engine.connect() as connection:
        already = hub.billable.recorded_ids_in(connection, [e.id for e in batch.events])
    references = DeliveryReferences(hub)
    references.preload(e for e in batch.events if e.id not in already)
    passed: list[tuple[BillingEvent, dict[str, Any]]] = []
    refused: list[BillingEvent] = []
    for event in batch.events:
        if event.id in already:
            continue
        try:
            passed.append((event, check_billing_event(event, references)))
        except BusinessFixError:
            refused.append(event)
    recorded: set[str] = set()

    def write(connection: Connection) -> None:
        recorded.update(
            hub.billable.record_ready_many_in(
                connection,
                [
                    RecordedDelivery(event, checked["contract_id"], checked["legal_entity"])
                    for event, checked in passed
                ],
            )
        )
        hub.billable.mark_held_in(
            connection,
            [
                (event.id, f"not billed under a {checked['billing_model']} contract")
                for event, checked in passed
                if not checked["billable"] and event.id in recorded
            ],
            billing_run="intake",
        )
        hub.inbox.accept_in(connection, [_single_delivery(event) for event in refused])

    return StepResult(
        output={
            "entries": len(batch.events),
            "already_recorded": len(already),
            "passed": len(passed),
            "refused": [event.id for event in refused],
        },
        writes=[write],
    )


def _single_delivery(event: BillingEvent) -> CloudEvent:
    # one source and id per entry whichever batch carried it: a re-polled page hands it on once
    return new_event(
        SINGLE_EVENT_TYPES[event.kind],
        event,
        source="urn:q2c:batch-intake",
        subject=event.id,
        event_id=f"{event.id}@batch",
    )


# --- billing run ---------------------------------------------------------------------------


def _run_key(event: CloudEvent, data: BaseModel) -> FlowKey:
    assert isinstance(data, BillingRunRequested)
    return FlowKey(f"{data.contract_id}:{data.period_end.isoformat()}", 1, None)


def billing_run_event(request: BillingRunRequested) -> CloudEvent:
    """The event that starts one billing run; its id makes a repeated request a duplicate."""
    key = f"{request.contract_id}:{request.period_end.isoformat()}"
    return new_event("billing.run_requested", request, subject=key, event_id=f"billing-run:{key}")


def _request(context: StepContext) -> BillingRunRequested:
    assert isinstance(context.data, BillingRunRequested)
    return context.data


def collect(context: StepContext) -> dict[str, Any]:
    """Snapshot the events this run bills: a replay bills exactly the same set."""
    hub = _services(context).hub
    request = _request(context)
    contract = _contract(hub, request.contract_id)
    if contract.status == "suspended":
        raise BusinessFixError(
            f"Contract {contract.number} is suspended; billing is on hold",
            suggested_fix="Reactivate the contract, then replay this billing run.",
        )
    event_ids = hub.billable.ready_ids_for(contract.id, through=request.period_end)
    return {"event_ids": event_ids, "contract_number": contract.number}


class RetainerBalance(CanonicalModel):
    """Hours carried from one retainer period into the next."""

    hours: Decimal
    period_end: date


@dataclass(slots=True)
class ContractRating:
    """A rating outcome plus what the run must remember."""

    outcome: RatingOutcome
    not_billed: list[HeldItem] = field(default_factory=list)
    retainer_carry_out: Decimal | None = None


def rate_contract(
    contract: Contract,
    events: Sequence[BillingEvent],
    *,
    request: BillingRunRequested,
    hub: HubLedgers,
) -> ContractRating:
    """Rate one contract's events under its billing model (pure pricing, hub reads only)."""
    billed = _BILLED_KINDS[contract.billing_model]
    chosen = [e for e in events if e.kind in billed and e.billable]
    not_billed = [
        HeldItem(
            (e.id,),
            contract.id,
            e.kind,
            e.work_date,
            e.amount,
            "non_billable",
            f"{_what(e)} is not billed under a {contract.billing_model.value} contract",
        )
        for e in events
        if not (e.kind in billed and e.billable)
    ]
    expenses = [e for e in chosen if e.kind is BillingEventKind.EXPENSE]
    terms = contract.billing_terms
    policy = ExpensePolicy(
        markup_percent=terms.expenses.markup_percent,
        non_billable_categories=frozenset(terms.expenses.non_billable_categories),
    )
    already = hub.billable.billed_total(contract.id, contract.currency)
    book = (
        rate_book(hub, contract.rate_card_id, with_use=False)
        if contract.rate_card_id
        else RateCardBook()
    )
    fx = fx_table(hub)
    model = contract.billing_model
    carry_out: Decimal | None = None
    if model is BillingModel.TIME_AND_MATERIALS:
        outcome = rate_time_and_materials(
            chosen,
            contract=contract,
            book=book,
            already_billed=already,
            expense_policy=policy,
            fx=fx,
            document_date=request.document_date,
            expenses_count_toward_cap=terms.expenses_count_toward_cap,
        )
    else:
        outcome = (
            rate_time_and_materials(
                expenses,
                contract=contract,
                book=book,
                expense_policy=policy,
                fx=fx,
                document_date=request.document_date,
            )
            if expenses
            else RatingOutcome()
        )
        if model is BillingModel.FIXED_FEE:
            done = hub.billable.billed_ids(contract.id, BillingEventKind.FIXED_FEE_INSTALLMENT)
            outcome += rate_installments(
                contract,
                through=request.period_end,
                billed_sequences={int(i.rsplit(":", 1)[1]) for i in done},
                already_billed=already,
            )
        elif model is BillingModel.MILESTONE:
            billed_before = hub.billable.events(
                hub.billable.billed_ids(contract.id, BillingEventKind.MILESTONE)
            )
            outcome += rate_milestones(
                [
                    milestone_from_event(e, percent=e.percent)
                    for e in chosen
                    if e.kind is BillingEventKind.MILESTONE
                ],
                contract=contract,
                billed_percent=sum((e.percent or Decimal(0) for e in billed_before), Decimal(0)),
                already_billed=already,
            )
        elif model is BillingModel.USAGE:
            assert terms.usage is not None
            table = TierTable(
                tuple(Tier(t.up_to, t.unit_price) for t in terms.usage.tiers), terms.usage.mode
            )
            usage = [e for e in chosen if e.kind is BillingEventKind.USAGE]
            if usage:
                outcome += rate_usage(
                    usage, table=table, contract=contract, service_item=terms.usage.service_item
                )
        elif model is BillingModel.RETAINER:
            assert terms.retainer is not None
            balance = hub.records.current("retainer_balance", contract.id, RetainerBalance)
            settlement = settle_retainer_period(
                [
                    e
                    for e in chosen
                    if e.kind is BillingEventKind.TIME
                    and request.period_start <= e.work_date <= request.period_end
                ],
                terms=RetainerTerms(
                    period_fee=terms.retainer.period_fee,
                    hours_allowance=terms.retainer.hours_allowance,
                    overage_rate=terms.retainer.overage_rate,
                    rollover_cap_hours=terms.retainer.rollover_cap_hours,
                ),
                contract=contract,
                period_start=request.period_start,
                period_end=request.period_end,
                carried_in_hours=balance.hours if balance is not None else Decimal(0),
            )
            outcome += settlement.outcome
            carry_out = settlement.carry_out_hours
    return ContractRating(outcome, not_billed, carry_out)


def _group_key(line: RatedLine) -> tuple[Any, ...]:
    if line.kind is not BillingEventKind.TIME or line.billing_event_id is None:
        return ("single", line.billing_event_ids)
    return (
        line.kind,
        line.service_item,
        line.description,
        line.unit_price.amount,
        line.rate_card_id,
        line.rate_card_version,
        line.tax_code,
    )


def _merged(group: list[RatedLine]) -> RatedLine:
    """One invoice line for a group: hours summed, amount the sum of the entries' amounts."""
    first = group[0]
    if len(group) == 1:
        return first
    if first.kind is not BillingEventKind.TIME:  # pooled items of differing prices
        amount = Money.total((line.amount for line in group), first.currency)
        return RatedLine(
            billing_event_ids=tuple(i for line in group for i in line.billing_event_ids),
            contract_id=first.contract_id,
            kind=first.kind,
            description=f"{_KIND_WORDS[first.kind]}s: {first.service_item} ({len(group)} items)",
            service_item=first.service_item,
            quantity=Decimal(1),  # at the summed amount: quantity times price is the amount
            unit_price=amount,
            amount=amount,
            work_date=max(line.work_date for line in group),
            tax_code=first.tax_code,
        )
    return RatedLine(
        billing_event_ids=tuple(i for line in group for i in line.billing_event_ids),
        contract_id=first.contract_id,
        kind=first.kind,
        description=f"{first.description} ({len(group)} entries)",
        service_item=first.service_item,
        quantity=sum((line.quantity for line in group), Decimal(0)),
        unit_price=first.unit_price,
        amount=Money.total((line.amount for line in group), first.currency),
        work_date=max(line.work_date for line in group),
        rate_card_id=first.rate_card_id,
        rate_card_version=first.rate_card_version,
        tax_code=first.tax_code,
    )


def _within_line_limit(
    groups: list[list[RatedLine]], limit: int | None, *, contract: Contract, billing: str
) -> list[list[RatedLine]]:
    """A billing platform's cap on lines per invoice (Stripe: 250): past it, single lines of
    one kind, service item and tax code (expenses, usage, milestones) become one line each;
    if the invoice is still too long, the run is parked rather than split silently."""
    if limit is None or len(groups) <= limit:
        return groups
    kept: list[list[RatedLine]] = []
    pooled: dict[tuple[Any, ...], list[RatedLine]] = {}
    for group in groups:
        first = group[0]
        if _group_key(first)[0] == "single" and first.kind is not BillingEventKind.TIME:
            pooled.setdefault((first.kind, first.service_item, first.tax_code), []).extend(group)
        else:
            kept.append(group)
    consolidated = kept + list(pooled.values())
    if len(consolidated) > limit:
        raise BusinessFixError(
            f"Contract {contract.number}'s billing run has {len(consolidated)} invoice lines "
            f"even after consolidation; {billing} accepts at most {limit} per invoice",
            suggested_fix="Bill this contract more often (a shorter billing period), or "
            "consolidate its rates, then replay the billing run.",
            field="lines",
            system=billing,
        )
    return consolidated


def _grouped(lines: Iterable[RatedLine]) -> list[list[RatedLine]]:
    groups: dict[tuple[Any, ...], list[RatedLine]] = {}
    for line in lines:
        groups.setdefault(_group_key(line), []).append(line)
    return list(groups.values())


def rate(context: StepContext) -> dict[str, Any]:
    services = _services(context)
    hub = services.hub
    request = _request(context)
    contract = _contract(hub, request.contract_id)
    customer = hub.records.current("customer", contract.customer_id, Customer)
    if customer is None:
        raise NotFoundError(
            f"Customer {contract.customer_id} of contract {contract.number} is not known to q2c",
            suggested_fix="Provision the customer (opportunity-to-project), then replay.",
        )
    events = hub.billable.events(context.output_of("collect")["event_ids"])
    rating = rate_contract(contract, events, request=request, hub=hub)
    cap_held = [
        h for h in rating.outcome.held if h.reason in ("not_to_exceed_cap", "contract_value_cap")
    ]
    other_held = [h for h in rating.outcome.held if h not in cap_held] + rating.not_billed
    lines: list[dict[str, Any]] = []
    if rating.outcome.lines:
        groups = _within_line_limit(
            _grouped(rating.outcome.lines),
            getattr(services.billing, "max_invoice_lines", None),
            contract=contract,
            billing=services.billing.system,
        )
        # tax per invoice line, as the billing platform and the ERP compute it
        default_code = contract.billing_terms.tax_code
        taxed = apply_tax(
            [
                replace(merged, tax_code=merged.tax_code or default_code)
                for merged in (_merged(group) for group in groups)
            ],
            table=tax_table(hub),
            legal_entity=contract.legal_entity,
            nexus=customer.country,
            currency=contract.currency,
        )
        for number, (group, line) in enumerate(zip(groups, taxed.lines, strict=True), start=1):
            first = group[0]
            lines.append(
                {
                    "external_id": f"q2c-{context.business_key}-L{number}",
                    "description": line.line.description,
                    "service_item": first.service_item,
                    "kind": first.kind.value,
                    "quantity": str(line.line.quantity),
                    "unit_price": line.line.unit_price.as_json(),
                    "amount": line.line.amount.as_json(),
                    "tax_code": line.tax_code,
                    "tax_rate": str(line.tax_rate),
                    "tax_amount": line.tax_amount.as_json() if line.tax_amount else None,
                    "rate_card_id": first.rate_card_id,
                    "rate_card_version": first.rate_card_version,
                    "period_start": min(x.work_date for x in group).isoformat(),
                    "period_end": max(x.work_date for x in group).isoformat(),
                    "events": _event_amounts(group),
                }
            )
        if contract.billing_model is BillingModel.RETAINER:
            _cover_retainer_time(lines, events, request)
        totals = {
            "subtotal": taxed.subtotal.as_json(),
            "tax_total": taxed.tax_total.as_json(),
            "total": taxed.total.as_json(),
        }
    else:
        zero = Money.zero(contract.currency).as_json()
        totals = {"subtotal": zero, "tax_total": zero, "total": zero}
    return {
        "currency": contract.currency,
        "lines": lines,
        **totals,
        "cap_held": [_held(h) for h in cap_held],
        "held": [_held(h) for h in other_held],
        "retainer_carry_out": None
        if rating.retainer_carry_out is None
        else str(rating.retainer_carry_out),
    }


def _event_amounts(group: list[RatedLine]) -> dict[str, dict[str, str]]:
    """What each event billed: a line billing several events (retainer overage, aggregated
    usage) is carried by its first event, the others at zero, so the sum is the line."""
    amounts: dict[str, dict[str, str]] = {}
    for line in group:
        first, *rest = line.billing_event_ids
        amounts[first] = line.amount.as_json()
        for event_id in rest:
            amounts.setdefault(event_id, Money.zero(line.currency).as_json())
    return amounts


def _cover_retainer_time(
    lines: list[dict[str, Any]], events: Sequence[BillingEvent], request: BillingRunRequested
) -> None:
    """Hours inside the allowance are billed by the period fee: put them on its line."""
    fee = next((line for line in lines if line["kind"] == "retainer_period"), None)
    if fee is None:
        return
    on_lines = {event_id for line in lines for event_id in line["events"]}
    zero = Money.zero(fee["amount"]["currency"]).as_json()
    for event in events:
        if (
            event.kind is BillingEventKind.TIME
            and event.id not in on_lines
            and request.period_start <= event.work_date <= request.period_end
        ):
            fee["events"][event.id] = zero


def _held(item: HeldItem) -> dict[str, Any]:
    return {
        "event_ids": list(item.billing_event_ids),
        "reason": item.reason,
        "message": item.message,
        "amount": item.amount.as_json() if item.amount is not None else None,
    }


def _rated(context: StepContext) -> dict[str, Any]:
    return context.output_of("rate")


def ensure_billing_customer(context: StepContext) -> StepResult:
    services = _services(context)
    if not _rated(context)["lines"]:
        return StepResult(output={"skipped": "nothing to bill"})
    contract = _contract(services.hub, _request(context).contract_id)
    billing = services.billing
    known = services.xref.external_ids(contract.customer_id, "customer").get(billing.system)
    if known is not None:
        return StepResult(output={"billing_customer_id": known})
    customer = services.hub.records.current("customer", contract.customer_id, Customer)
    assert customer is not None
    ref = billing.upsert_customer(customer, external_id=f"q2c-{customer.id}")
    return StepResult(
        output={"billing_customer_id": ref.billing_id},
        xrefs=[XrefLink(customer.id, "customer", billing.system, ref.billing_id)],
    )


def send_lines(context: StepContext) -> dict[str, Any]:
    rated = _rated(context)
    if not rated["lines"]:
        return {"skipped": "nothing to bill"}
    services = _services(context)
    customer_id = context.output_of("ensure_billing_customer")["billing_customer_id"]
    lines = [
        BillingLine(
            external_id=line["external_id"],
            description=line["description"],
            service_item=line["service_item"],
            quantity=Decimal(line["quantity"]),
            unit_price=Money.from_json(line["unit_price"]),
            amount=Money.from_json(line["amount"]),
            period_start=date.fromisoformat(line["period_start"]),
            period_end=date.fromisoformat(line["period_end"]),
            tax_code=line["tax_code"],
            metadata={
                "q2c_kind": line["kind"],
                "q2c_events": str(len(line["events"])),
                "q2c_rate_card": f"{line['rate_card_id']}@v{line['rate_card_version']}"
                if line["rate_card_id"]
                else "",
                "q2c_tax_rate": line["tax_rate"],
            },
        )
        for line in rated["lines"]
    ]
    items = services.billing.add_invoice_items(
        customer_id, lines, invoice_id=context.output_of("create_invoice")["invoice_id"]
    )
    return {"items": {item.external_id: item.billing_id for item in items}}


def create_invoice(context: StepContext) -> dict[str, Any]:
    rated = _rated(context)
    if not rated["lines"]:
        return {"skipped": "nothing to bill"}
    services = _services(context)
    request = _request(context)
    contract = _contract(services.hub, request.contract_id)
    invoice_id = services.billing.create_invoice(
        context.output_of("ensure_billing_customer")["billing_customer_id"],
        external_id=f"q2c-{context.business_key}",
        currency=contract.currency,
        due_date=request.document_date + timedelta(days=contract.billing_terms.payment_terms_days),
        memo=f"Contract {contract.number}, services through {request.period_end:%d %b %Y}",
        metadata={
            "q2c_legal_entity": contract.legal_entity,
            "q2c_contract_id": contract.id,
            "q2c_billing_run": context.business_key,
        },
    )
    return {"invoice_id": invoice_id}


def finalize_invoice(context: StepContext) -> dict[str, Any]:
    """Finalize, then compare the platform's totals with ours to the cent (never silent)."""
    rated = _rated(context)
    if not rated["lines"]:
        return {"skipped": "nothing to bill"}
    services = _services(context)
    invoice = services.billing.finalize_invoice(context.output_of("create_invoice")["invoice_id"])
    differences = [
        f"{name}: {services.billing.system} {actual}, q2c {rated[name]['amount']}"
        for name, actual in (
            ("subtotal", invoice.subtotal),
            ("tax_total", invoice.tax_total),
            ("total", invoice.total),
        )
        if actual.rounded() != Money.from_json(rated[name]).rounded()
    ]
    if differences:
        raise BusinessFixError(
            f"The billing platform computed invoice {invoice.number or invoice.id} differently "
            f"from q2c's rating ({'; '.join(differences)})",
            detail="; ".join(differences),
            suggested_fix="Compare the billing platform's tax rates with the ERP tax codes "
            "synced into q2c; void the invoice there and replay.",
            system=services.billing.system,
        )
    return {"invoice": invoice.model_dump(mode="json")}


def _rests_of_partly_billed(
    hub: HubLedgers, contract: Contract, rated: dict[str, Any], run: str
) -> list[BillingEvent]:
    """An entry a cap billed in part is billed (its line says how much); what it was not
    billed becomes a new ready entry priced at that rest, so a raised cap bills it — never
    lost, never billed twice. Time and materials only: the other models' raters price from the
    contract, and their value cap is the contract's total."""
    if contract.billing_model is not BillingModel.TIME_AND_MATERIALS:
        return []
    service_items = {
        event_id: line["service_item"] for line in rated["lines"] for event_id in line["events"]
    }
    partly = {
        event_id: Money.from_json(item["amount"])
        for item in rated["cap_held"]
        if item["amount"] is not None
        for event_id in item["event_ids"]
        if event_id in service_items
    }
    rests = []
    for event in hub.billable.events(sorted(partly)):
        rests.append(
            BillingEvent(
                id=f"{event.id}:rest@{run}",
                kind=event.kind,
                project_id=event.project_id,
                contract_id=contract.id,
                work_date=event.work_date,
                unit=event.unit,
                role=event.role,
                service_item=service_items[event.id],
                description=f"Rest of {_what(event).lower()} of {event.work_date} "
                "(held by the cap)",
                source_system=event.source_system,
                rest_of=event.rest_of or event.id,
                priced_amount=partly[event.id],
            )
        )
    return rests


def record_inclusion(context: StepContext) -> StepResult:
    """Which invoice line each event landed on, the invoice in the ledger, the hand-over to
    invoice-to-ledger, and what was held — all in the step's one commit."""
    services = _services(context)
    hub = services.hub
    request = _request(context)
    contract = _contract(hub, request.contract_id)
    rated = _rated(context)
    run = context.business_key
    writes: list[HubWrite] = []
    output: dict[str, Any] = {"billed_events": 0, "held_events": 0}
    if rated["lines"]:
        invoice = Invoice.model_validate(context.output_of("finalize_invoice")["invoice"])
        invoice_ref = invoice.xrefs.get(services.billing.system, invoice.id)
        billed = [
            BilledLine(event_id, invoice_ref, line["external_id"], Money.from_json(amount))
            for line in rated["lines"]
            for event_id, amount in line["events"].items()
        ]
        synthetic = [
            _synthetic_event(event_id, contract, request)
            for line in rated["lines"]
            for event_id in line["events"]
            if line["kind"] in ("fixed_fee_installment", "retainer_period")
            and event_id.startswith(f"{contract.id}:")
        ]
        rests = _rests_of_partly_billed(hub, contract, rated, run)
        used_cards: dict[tuple[str, int], date] = {}
        for line in rated["lines"]:
            if line["rate_card_id"]:
                key = (line["rate_card_id"], line["rate_card_version"])
                last = date.fromisoformat(line["period_end"])
                used_cards[key] = max(last, used_cards.get(key, last))
        handover = new_event(
            "invoice.finalized",
            invoice,
            subject=invoice_ref,
            event_id=f"q2c-billing-run:{run}",
            correlation_id=context.correlation_id,
        )

        def write_invoice(connection: Connection) -> None:
            for event in synthetic:
                hub.billable.record_ready_in(
                    connection,
                    event,
                    contract_id=contract.id,
                    legal_entity=contract.legal_entity,
                )
            hub.billable.mark_billed_in(connection, billed, billing_run=run)
            hub.billable.record_ready_many_in(
                connection,
                [RecordedDelivery(rest, contract.id, contract.legal_entity) for rest in rests],
            )
            for (card_id, version), last_used in used_cards.items():
                hub.records.set_status_in(connection, "rate_card", card_id, version, "used")
                use_id = rate_card_use_id(card_id, version)
                known = hub.records.current_in(connection, "rate_card_use", use_id, RateCardUse)
                if known is None or known.last_used_on < last_used:
                    hub.records.save_in(
                        connection,
                        "rate_card_use",
                        RateCardUse(rate_card_id=card_id, version=version, last_used_on=last_used),
                        canonical_id=use_id,
                    )
            hub.documents.upsert_in(
                connection,
                "invoice",
                invoice_ref,
                legal_entity=contract.legal_entity,
                currency=contract.currency,
                customer_id=contract.customer_id,
                contract_id=contract.id,
                number=invoice.number,
                amount=invoice.total,
                tax_amount=invoice.tax_total,
                status="finalized",
            )
            hub.inbox.accept_in(connection, [handover])

        writes.append(write_invoice)
        output.update(
            invoice_ref=invoice_ref,
            number=invoice.number,
            total=invoice.total.as_json(),
            billed_events=len(billed),
            rests_after_cap=[rest.id for rest in rests],
        )
    held = [(event_id, item["message"]) for item in rated["held"] for event_id in item["event_ids"]]
    if held:
        writes.append(lambda c: hub.billable.mark_held_in(c, held, billing_run=run))
        output["held_events"] = len(held)
    if rated["retainer_carry_out"] is not None:
        balance = RetainerBalance(
            hours=Decimal(rated["retainer_carry_out"]), period_end=request.period_end
        )
        writes.append(
            lambda c: hub.records.save_in(
                c,
                "retainer_balance",
                balance,
                canonical_id=contract.id,
                version=_period_version(request.period_end),
                legal_entity=contract.legal_entity,
            )
        )
    if rated["cap_held"]:
        writes.append(_park_cap(context, contract, rated["cap_held"]))
        output["cap_held_events"] = sum(len(h["event_ids"]) for h in rated["cap_held"])
    return StepResult(output=output, writes=writes)


def _period_version(period_end: date) -> int:
    """Monotonic per period so the latest balance is the current one (yyyymmdd)."""
    return period_end.year * 10000 + period_end.month * 100 + period_end.day


def _synthetic_event(
    event_id: str, contract: Contract, request: BillingRunRequested
) -> BillingEvent:
    kind = (
        BillingEventKind.FIXED_FEE_INSTALLMENT
        if ":installment:" in event_id
        else BillingEventKind.RETAINER_PERIOD
    )
    return BillingEvent(
        id=event_id,
        kind=kind,
        project_id=f"contract:{contract.id}",
        contract_id=contract.id,
        work_date=request.period_end,
        unit="each",
        description=f"{kind.value} {event_id}",
    )


def _park_cap(context: StepContext, contract: Contract, cap_held: list[dict[str, Any]]) -> Any:
    """Reaching a cap bills up to it and parks what is over, for a person to decide."""
    hub = _services(context).hub
    count = sum(len(h["event_ids"]) for h in cap_held)
    amounts = [Money.from_json(h["amount"]) for h in cap_held if h["amount"]]
    over = Money.total(amounts, contract.currency) if amounts else None
    error = BusinessFixError(
        f"Contract {contract.number} reached its "
        f"{'not-to-exceed' if contract.not_to_exceed else 'contract value'} of "
        f"{contract.not_to_exceed or contract.total_value}: {count} billing event(s)"
        f"{f' worth {over}' if over else ''} were not billed",
        detail=cap_held[0]["message"],
        suggested_fix="Raise the cap with a change order (the held events are billed by the "
        "next run) or write them off, then dismiss this exception.",
        context={
            "contract_id": contract.id,
            "event_ids": [i for h in cap_held for i in h["event_ids"]][:50],
        },
    )

    def park(connection: Connection) -> None:
        hub.exceptions.park_in(
            connection,
            transaction_id=context.transaction_id,
            flow=context.flow,
            business_key=context.business_key,
            step=context.step,
            error=error,
            attempts=1,
        )

    return park


def build_flows(policy: RetryPolicy | None = None) -> tuple[Flow, Flow, Flow]:
    retry = policy or RetryPolicy()
    batches = Flow(
        name=BATCH_INTAKE,
        triggers=("delivery.batch_received",),
        key=_batch_key,
        steps=(Step("intake_batch", intake_batch, retry=retry),),
    )
    intake = Flow(
        name=INTAKE,
        triggers=TRIGGERS,
        key=_intake_key,
        steps=(
            Step("check_delivery", check_delivery, retry=retry),
            Step("record_billable", record_billable, retry=retry),
        ),
    )
    run = Flow(
        name=RUN,
        triggers=("billing.run_requested",),
        key=_run_key,
        steps=(
            Step("collect", collect, retry=retry),
            Step("rate", rate, retry=retry),
            Step("ensure_billing_customer", ensure_billing_customer, system="billing", retry=retry),
            Step("create_invoice", create_invoice, system="billing", retry=retry),
            Step("send_lines", send_lines, system="billing", retry=retry),
            Step("finalize_invoice", finalize_invoice, system="billing", retry=retry),
            Step("record_inclusion", record_inclusion, retry=retry),
        ),
    )
    return intake, batches, run
