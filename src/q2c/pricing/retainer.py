"""Recurring retainer: a period fee, hours drawn down, rollover or true-up at period end.

Rules for one period (``period_start`` to ``period_end``, both inclusive), recomputable by hand:

- available hours = allowance + hours carried in from the previous period;
- used hours = the sum of the period's time entries (entries outside the period are refused);
- one fee line: quantity 1 at the period fee (rounded);
- used > available (**true-up**): one overage line, quantity = used - available at the overage
  rate, amount = round(quantity * rate); nothing carries over. Without an overage rate the
  overage is held (reason ``retainer_overage_unpriced``) for someone to price it;
- used ≤ available (**rollover**): unused = available - used; carried out =
  min(unused, rollover cap); the rest expires. A cap of 0 means no rollover.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from q2c.canonical.models import BillingEvent, BillingEventKind, Contract
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import ValidationError
from q2c.pricing.rating import HeldItem, RatedLine, RatingOutcome, line_amount

__all__ = ["RetainerSettlement", "RetainerTerms", "settle_retainer_period"]


@dataclass(frozen=True, slots=True)
class RetainerTerms:
    """The retainer's commercial terms (pricing-side; the canonical Contract has no slot)."""

    period_fee: Money
    hours_allowance: Decimal
    overage_rate: Money | None = None
    rollover_cap_hours: Decimal = Decimal(0)
    service_item: str = "RETAINER"
    overage_service_item: str = "RETAINER-OVERAGE"

    def __post_init__(self) -> None:
        for name in ("hours_allowance", "rollover_cap_hours"):
            value = getattr(self, name)
            if not isinstance(value, Decimal):
                raise TypeError(f"{name} must be a Decimal, never a float")
            if value < 0:
                raise ValueError(f"{name} must not be negative, got {value}")
        if self.overage_rate is not None and self.overage_rate.currency != self.period_fee.currency:
            raise ValueError("overage rate and period fee must be in the same currency")


@dataclass(frozen=True, slots=True)
class RetainerSettlement:
    """What a period bills, and the hour balances that explain it."""

    outcome: RatingOutcome
    hours_available: Decimal
    hours_used: Decimal
    overage_hours: Decimal
    unused_hours: Decimal
    carry_out_hours: Decimal


def settle_retainer_period(
    events: Iterable[BillingEvent],
    *,
    terms: RetainerTerms,
    contract: Contract,
    period_start: date,
    period_end: date,
    carried_in_hours: Decimal = Decimal(0),
    rounding: RoundingMode = "half_up",
) -> RetainerSettlement:
    """Bill one retainer period and compute the hours carried into the next one."""
    if terms.period_fee.currency != contract.currency:
        raise ValidationError(
            f"Retainer fee is in {terms.period_fee.currency}, contract {contract.number} "
            f"bills in {contract.currency}",
            field="period_fee",
        )
    time = [e for e in events if e.kind is BillingEventKind.TIME]
    for event in time:
        if not period_start <= event.work_date <= period_end:
            raise ValidationError(
                f"Time entry {event.id} on {event.work_date} is outside the retainer period "
                f"{period_start}..{period_end}",
                field="work_date",
            )
    used = sum((e.quantity for e in time), Decimal(0))
    available = terms.hours_allowance + carried_in_hours
    fee = terms.period_fee.rounded(rounding)
    period_id = f"{contract.id}:retainer:{period_start.isoformat()}"
    lines = [
        RatedLine(
            billing_event_ids=(period_id,),
            contract_id=contract.id,
            kind=BillingEventKind.RETAINER_PERIOD,
            description=f"Retainer {period_start}..{period_end}",
            service_item=terms.service_item,
            quantity=Decimal(1),
            unit_price=fee,
            amount=fee,
            work_date=period_start,
        )
    ]
    held: list[HeldItem] = []
    overage = max(used - available, Decimal(0))
    unused = max(available - used, Decimal(0))
    event_ids = tuple(sorted(e.id for e in time))
    if overage > 0 and terms.overage_rate is not None:
        lines.append(
            RatedLine(
                billing_event_ids=event_ids,
                contract_id=contract.id,
                kind=BillingEventKind.TIME,
                description=f"Hours over the retainer allowance {period_start}..{period_end}",
                service_item=terms.overage_service_item,
                quantity=overage,
                unit_price=terms.overage_rate,
                amount=line_amount(overage, terms.overage_rate, rounding),
                work_date=period_end,
            )
        )
    elif overage > 0:
        held.append(
            HeldItem(
                billing_event_ids=event_ids,
                contract_id=contract.id,
                kind=BillingEventKind.TIME,
                work_date=period_end,
                amount=None,
                reason="retainer_overage_unpriced",
                message=f"Contract {contract.number} used {overage} hours over its retainer "
                f"allowance in {period_start}..{period_end} and has no overage rate",
            )
        )
    return RetainerSettlement(
        outcome=RatingOutcome(tuple(lines), tuple(held)),
        hours_available=available,
        hours_used=used,
        overage_hours=overage,
        unused_hours=unused,
        carry_out_hours=min(unused, terms.rollover_cap_hours),
    )
