"""Fixed fee installments and milestones: billing that never exceeds the contract value.

Rules (recomputable by hand):

- **Fixed fee**: each line of the contract's billing schedule whose ``bill_date`` is on or
  before ``through`` and whose sequence is not yet billed becomes one line, at the schedule
  amount rounded to the minor unit.
- **Milestone by amount**: one line at the milestone amount, rounded.
- **Milestone by percent**: percentages are *cumulative*. With contract value V, percent
  already billed P0 and milestones taken in completion order (then id), the k-th milestone bills
  ``round(V * Pk / 100) - round(V * P(k-1) / 100)`` where Pk is the cumulative percent after
  it. The parts telescope: together they bill ``round(V * Pn / 100)``, so 100 % bills exactly V
  and percentages can never add up to more than V. A cumulative percent above 100 is refused.
- Every line is then subject to the cap rule of ``rating`` with the contract value as the cap
  (reason ``contract_value_cap``): installments or amounts that would exceed the contract value
  are billed up to it and the rest is held.
- All these lines have quantity 1 and their amount as unit price.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, localcontext

from q2c.canonical.models import BillingEvent, BillingEventKind, Contract
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import BusinessFixError, ValidationError
from q2c.pricing.rating import RatedLine, RatingOutcome, apply_cap

__all__ = [
    "Milestone",
    "milestone_from_event",
    "percent_amounts",
    "rate_installments",
    "rate_milestones",
]


@dataclass(frozen=True, slots=True)
class Milestone:
    """A completed milestone, priced by a fixed ``amount`` or a ``percent`` of the contract."""

    id: str
    description: str
    completed_on: date
    amount: Money | None = None
    percent: Decimal | None = None
    service_item: str = "MILESTONE"

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.percent is None):
            raise ValueError(f"milestone {self.id} needs exactly one of amount or percent")
        if self.percent is not None:
            if not isinstance(self.percent, Decimal):
                raise TypeError("milestone percent must be a Decimal, never a float")
            if not 0 <= self.percent <= 100:
                raise ValueError(f"milestone {self.id} percent {self.percent} is not 0..100")


def milestone_from_event(event: BillingEvent, *, percent: Decimal | None = None) -> Milestone:
    """A milestone from a ``milestone.completed`` event: its amount, or the given percent."""
    if event.kind is not BillingEventKind.MILESTONE:
        raise ValidationError(f"Billing event {event.id} is {event.kind}, not a milestone")
    if percent is None and event.amount is None:
        raise ValidationError(
            f"Milestone {event.id} has neither an amount nor a percent of the contract",
            field="amount",
        )
    return Milestone(
        id=event.id,
        description=event.description or f"Milestone {event.id}",
        completed_on=event.work_date,
        amount=None if percent is not None else event.amount,
        percent=percent,
        service_item=event.service_item or "MILESTONE",
    )


def percent_amounts(
    value: Money,
    percents: Iterable[Decimal],
    *,
    billed_percent: Decimal = Decimal(0),
    rounding: RoundingMode = "half_up",
) -> list[Money]:
    """Cumulative-percent amounts (rule above); refuses a cumulative percent over 100."""

    def at(cumulative: Decimal) -> Money:
        with localcontext() as ctx:
            ctx.prec = 28
            return Money(value.amount * cumulative / 100, value.currency).rounded(rounding)

    amounts = []
    cumulative = billed_percent
    for pct in percents:
        after = cumulative + pct
        if after > 100:
            raise BusinessFixError(
                f"Milestones would bill {after}% of the contract value; at most 100% can be billed",
                suggested_fix="Correct the milestone percentages in the billing system.",
                context={"billed_percent": str(billed_percent), "cumulative": str(after)},
            )
        amounts.append(at(after) - at(cumulative))
        cumulative = after
    return amounts


def _line(
    contract: Contract,
    ids: tuple[str, ...],
    kind: BillingEventKind,
    description: str,
    service_item: str,
    amount: Money,
    when: date,
) -> RatedLine:
    return RatedLine(
        billing_event_ids=ids,
        contract_id=contract.id,
        kind=kind,
        description=description,
        service_item=service_item,
        quantity=Decimal(1),
        unit_price=amount,
        amount=amount,
        work_date=when,
    )


def _value_cap(
    contract: Contract, lines: list[RatedLine], already_billed: Money | None
) -> RatingOutcome:
    return apply_cap(
        lines,
        contract_label=contract.number,
        cap=contract.total_value,
        already_billed=already_billed or Money.zero(contract.currency),
        reason="contract_value_cap",
        cap_name="contract value",
    )


def rate_installments(
    contract: Contract,
    *,
    through: date,
    billed_sequences: Collection[int] = (),
    already_billed: Money | None = None,
    service_item: str = "FIXED-FEE",
    rounding: RoundingMode = "half_up",
) -> RatingOutcome:
    """Fixed-fee installments due on or before ``through`` and not billed yet."""
    lines = [
        _line(
            contract,
            (f"{contract.id}:installment:{row.sequence}",),
            BillingEventKind.FIXED_FEE_INSTALLMENT,
            row.description,
            service_item,
            row.amount.rounded(rounding),
            row.bill_date,
        )
        for row in sorted(contract.billing_schedule, key=lambda r: r.sequence)
        if row.bill_date <= through and row.sequence not in billed_sequences
    ]
    return _value_cap(contract, lines, already_billed)


def rate_milestones(
    milestones: Iterable[Milestone],
    *,
    contract: Contract,
    billed_percent: Decimal = Decimal(0),
    already_billed: Money | None = None,
    rounding: RoundingMode = "half_up",
) -> RatingOutcome:
    """Completed milestones, by amount or cumulative percent, never above the contract value."""
    ordered = sorted(milestones, key=lambda m: (m.completed_on, m.id))
    by_percent = [m for m in ordered if m.percent is not None]
    parts = percent_amounts(
        contract.total_value,
        [m.percent for m in by_percent if m.percent is not None],
        billed_percent=billed_percent,
        rounding=rounding,
    )
    percent_amount = {m.id: part for m, part in zip(by_percent, parts, strict=True)}
    lines = []
    for m in ordered:
        if m.amount is not None:
            if m.amount.currency != contract.currency:
                raise ValidationError(
                    f"Milestone {m.id} is in {m.amount.currency}, contract {contract.number} "
                    f"bills in {contract.currency}",
                    field="amount",
                )
            amount = m.amount.rounded(rounding)
            description = m.description
        else:
            amount = percent_amount[m.id]
            description = f"{m.description} ({m.percent}% of contract value)"
        lines.append(
            _line(
                contract,
                (m.id,),
                BillingEventKind.MILESTONE,
                description,
                m.service_item,
                amount,
                m.completed_on,
            )
        )
    return _value_cap(contract, lines, already_billed)
