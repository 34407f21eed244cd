"""Rated lines, rating outcomes and caps: the shared vocabulary of every billing model.

Rounding rule (the one rule every billing model follows, so a total can be recomputed):

    line amount = round(quantity * unit_price) to the currency's minor unit, half-up unless
    the caller names another mode; unit prices keep their full precision.

Cap rule (not-to-exceed, and "never bill more than the contract value"): lines are taken in
work-date order (then billing-event id); each is billed in full while it fits under
``cap - already_billed``; the line that crosses the cap is billed partially, up to the cap,
and the rest of it (and every later line) is *held*, with a business message. Billed + held
always equals what was rated, to the cent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import ROUND_DOWN, Decimal, localcontext
from functools import cache
from typing import Literal

from q2c.canonical.models import BillingEventKind
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import BusinessFixError

__all__ = [
    "HeldItem",
    "HoldReason",
    "RatedLine",
    "RatingOutcome",
    "apply_cap",
    "line_amount",
    "sum_lines",
]

HoldReason = Literal[
    "not_to_exceed_cap",
    "contract_value_cap",
    "non_billable",
    "retainer_overage_unpriced",
]

PARTIAL_QUANTITY_PLACES = Decimal("0.0001")
"""A partially billed line shows the quantity its amount covers, rounded down to this."""

_KIND_WORDS = {
    BillingEventKind.TIME: "time",
    BillingEventKind.EXPENSE: "expenses",
    BillingEventKind.MILESTONE: "milestone billing",
    BillingEventKind.USAGE: "usage",
    BillingEventKind.RETAINER_PERIOD: "retainer",
    BillingEventKind.FIXED_FEE_INSTALLMENT: "fixed fee",
}


@cache
def _minor_unit(currency: str) -> Decimal:
    """``Money.exponent``, worked out once per currency (checked on every rated line)."""
    return Money.zero(currency).exponent


def line_amount(quantity: Decimal, unit_price: Money, rounding: RoundingMode = "half_up") -> Money:
    """``round(quantity * unit_price)``: computed with 28 significant digits, rounded once."""
    with localcontext() as ctx:
        ctx.prec = 28
        return Money(quantity * unit_price.amount, unit_price.currency).rounded(rounding)


@dataclass(frozen=True, slots=True)
class RatedLine:
    """One priced line, ready for an invoice, stamped with the rate card version used.

    ``billing_event_ids`` lists the events the line bills (several for aggregated usage, a
    synthetic ``<contract>:installment:<n>`` id for schedule-driven lines).
    """

    billing_event_ids: tuple[str, ...]
    contract_id: str | None
    kind: BillingEventKind
    description: str
    service_item: str
    quantity: Decimal
    unit_price: Money
    amount: Money
    work_date: date
    rate_card_id: str | None = None
    rate_card_version: int | None = None
    tax_code: str | None = None

    def __post_init__(self) -> None:
        if self.unit_price.currency != self.amount.currency:
            raise ValueError("unit price and amount must be in the same currency")
        amount = self.amount.amount
        if amount != amount.quantize(_minor_unit(self.amount.currency)):
            raise ValueError(f"line amount {self.amount} is not rounded to the minor unit")

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def billing_event_id(self) -> str | None:
        """The single event this line bills, or None for aggregated / synthetic lines."""
        return self.billing_event_ids[0] if len(self.billing_event_ids) == 1 else None


@dataclass(frozen=True, slots=True)
class HeldItem:
    """Something rated but not billed, with the reason an operator reads."""

    billing_event_ids: tuple[str, ...]
    contract_id: str | None
    kind: BillingEventKind
    work_date: date
    amount: Money | None
    reason: HoldReason
    message: str


@dataclass(frozen=True, slots=True)
class RatingOutcome:
    """Lines to bill and items held back; the caller parks ``held`` with their messages."""

    lines: tuple[RatedLine, ...] = ()
    held: tuple[HeldItem, ...] = ()

    def __add__(self, other: RatingOutcome) -> RatingOutcome:
        return RatingOutcome(self.lines + other.lines, self.held + other.held)

    def total(self, currency: str) -> Money:
        return Money.total((line.amount for line in self.lines), currency)

    def held_total(self, currency: str) -> Money:
        """Sum of held amounts in ``currency`` (held items in other currencies are skipped)."""
        return Money.total(
            (h.amount for h in self.held if h.amount is not None and h.amount.currency == currency),
            currency,
        )

    def raise_for_held(self) -> None:
        """Raise the first held item as a BusinessFixError (for callers that park, not split)."""
        if self.held:
            first = self.held[0]
            raise BusinessFixError(
                first.message,
                detail=f"{len(self.held)} item(s) held: " + "; ".join(h.reason for h in self.held),
                context={
                    "reason": first.reason,
                    "contract_id": first.contract_id,
                    "billing_event_ids": list(first.billing_event_ids),
                },
            )


def _order(line: RatedLine) -> tuple[date, tuple[str, ...]]:
    return line.work_date, line.billing_event_ids


def apply_cap(
    lines: Iterable[RatedLine],
    *,
    contract_label: str,
    cap: Money,
    already_billed: Money,
    reason: HoldReason = "not_to_exceed_cap",
    cap_name: str = "not-to-exceed cap",
) -> RatingOutcome:
    """Bill ``lines`` up to ``cap`` given what is already billed; hold the rest (rule above)."""
    cap = cap.rounded()
    currency = cap.currency
    ordered = sorted(lines, key=_order)
    if ordered and already_billed.currency != currency:
        raise ValueError(f"cannot combine {currency} with {already_billed.currency}")
    # the running total in Decimals, the currency checked per line: the same sums as Money
    # arithmetic without a Money per step (thousands of lines per contract and month)
    billed = already_billed.amount
    kept: list[RatedLine] = []
    held: list[HeldItem] = []
    for line in ordered:
        if line.amount.currency != currency:
            raise ValueError(f"cannot combine {line.amount.currency} with {currency}")
        remaining = cap.amount - billed
        if line.amount.amount <= remaining or line.amount.amount <= 0:
            kept.append(line)
            billed += line.amount.amount
            continue
        part = Money(remaining, currency) if remaining > 0 else Money.zero(currency)
        if part.amount > 0:
            kept.append(_partial(line, part, cap_name))
            billed += part.amount
        rest = line.amount - part
        held.append(
            HeldItem(
                billing_event_ids=line.billing_event_ids,
                contract_id=line.contract_id,
                kind=line.kind,
                work_date=line.work_date,
                amount=rest,
                reason=reason,
                message=(
                    f"Contract {contract_label} reached its {cap_name} of {cap}; "
                    f"{rest} of {_KIND_WORDS[line.kind]} on {line.work_date} was not billed"
                ),
            )
        )
    return RatingOutcome(tuple(kept), tuple(held))


def _partial(line: RatedLine, part: Money, cap_name: str) -> RatedLine:
    quantity = line.quantity
    if not line.unit_price.is_zero():
        with localcontext() as ctx:
            ctx.prec = 28
            covered = part.amount / line.unit_price.amount
        quantity = min(line.quantity, covered.quantize(PARTIAL_QUANTITY_PLACES, ROUND_DOWN))
    return replace(
        line,
        quantity=quantity,
        amount=part,
        description=f"{line.description} (partial: {cap_name} reached)",
    )


def sum_lines(lines: Sequence[RatedLine], currency: str) -> Money:
    """Sum of line amounts (all already rounded, so the sum is exact)."""
    return Money.total((line.amount for line in lines), currency)
