"""Usage pricing with tiers: graduated (each band at its own price) or volume (one price).

Tiers are ``(up_to, unit_price)`` with strictly increasing ``up_to`` (inclusive upper bound)
and a final open tier (``up_to=None``). Rules, recomputable by hand:

- **graduated**: the quantity is cut into bands (0, up_to1], (up_to1, up_to2], ...; each band
  becomes one line at its tier's price, amount = round(band * price). The total is the sum of
  the rounded band amounts. With non-negative prices it never decreases as quantity grows.
- **volume**: the whole quantity is priced at the tier that contains it (the first tier with
  ``quantity <= up_to``); one line, amount = round(quantity * price). Note volume pricing can
  *decrease* when a quantity crosses into a cheaper tier; that is the commercial intent.
- Tiers apply to one period's total: call ``rate_usage`` once per period with all of its usage.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from q2c.canonical.models import BillingEvent, BillingEventKind, Contract
from q2c.canonical.money import Money, RoundingMode
from q2c.errors import ValidationError
from q2c.pricing.rating import RatedLine, RatingOutcome, line_amount

__all__ = ["Band", "Tier", "TierTable", "price_usage", "rate_usage", "tier_bands"]

TierMode = Literal["graduated", "volume"]


@dataclass(frozen=True, slots=True)
class Tier:
    up_to: Decimal | None
    unit_price: Money


@dataclass(frozen=True, slots=True)
class Band:
    """A slice of quantity priced at one tier: ``lower < q <= upper`` (upper None = open)."""

    lower: Decimal
    upper: Decimal | None
    quantity: Decimal
    unit_price: Money


@dataclass(frozen=True, slots=True)
class TierTable:
    tiers: tuple[Tier, ...]
    mode: TierMode = "graduated"

    def __post_init__(self) -> None:
        if not self.tiers:
            raise ValueError("a tier table needs at least one tier")
        if self.tiers[-1].up_to is not None:
            raise ValueError("the last tier must be open (up_to=None)")
        currency = self.tiers[0].unit_price.currency
        previous = Decimal(0)
        for tier in self.tiers:
            if tier.unit_price.currency != currency:
                raise ValueError("all tiers must be priced in one currency")
            if tier.unit_price.amount < 0:
                raise ValueError(f"tier price {tier.unit_price} is negative")
        for tier in self.tiers[:-1]:
            if tier.up_to is None or not isinstance(tier.up_to, Decimal):
                raise ValueError("only the last tier may be open; bounds must be Decimals")
            if tier.up_to <= previous:
                raise ValueError(f"tier bounds must increase from 0; {tier.up_to} does not")
            previous = tier.up_to

    @property
    def currency(self) -> str:
        return self.tiers[0].unit_price.currency


def tier_bands(quantity: Decimal, table: TierTable) -> list[Band]:
    """The bands a quantity is priced in (several when graduated, one when volume)."""
    if quantity < 0:
        raise ValueError(f"usage quantity must not be negative, got {quantity}")
    if table.mode == "volume":
        lower = Decimal(0)
        for tier in table.tiers:
            if tier.up_to is None or quantity <= tier.up_to:
                return [Band(lower, tier.up_to, quantity, tier.unit_price)]
            lower = tier.up_to
        raise AssertionError("unreachable: the last tier is open")
    bands = []
    lower = Decimal(0)
    for tier in table.tiers:
        if quantity <= lower:
            break
        upper = quantity if tier.up_to is None else min(quantity, tier.up_to)
        bands.append(Band(lower, tier.up_to, upper - lower, tier.unit_price))
        if tier.up_to is None:
            break
        lower = tier.up_to
    return bands


def price_usage(
    quantity: Decimal, table: TierTable, *, rounding: RoundingMode = "half_up"
) -> Money:
    """Total price of ``quantity``: the sum of its rounded band amounts."""
    return Money.total(
        (line_amount(b.quantity, b.unit_price, rounding) for b in tier_bands(quantity, table)),
        table.currency,
    )


def rate_usage(
    events: Iterable[BillingEvent],
    *,
    table: TierTable,
    contract: Contract,
    service_item: str = "USAGE",
    description: str = "Usage",
    rounding: RoundingMode = "half_up",
) -> RatingOutcome:
    """One period's usage events priced on the tier table; one line per band."""
    usage = sorted((e for e in events), key=lambda e: (e.work_date, e.id))
    for event in usage:
        if event.kind is not BillingEventKind.USAGE:
            raise ValidationError(f"Billing event {event.id} is {event.kind}, not usage")
    if table.currency != contract.currency:
        raise ValidationError(
            f"Usage tiers are in {table.currency}, contract {contract.number} bills in "
            f"{contract.currency}",
        )
    if not usage:
        return RatingOutcome()
    total = sum((e.quantity for e in usage), Decimal(0))
    ids = tuple(e.id for e in usage)
    last = usage[-1].work_date
    lines = []
    for band in tier_bands(total, table):
        upper = "+" if band.upper is None else f"-{band.upper}"
        label = f"{description} ({band.lower}{upper})" if table.mode == "graduated" else description
        lines.append(
            RatedLine(
                billing_event_ids=ids,
                contract_id=contract.id,
                kind=BillingEventKind.USAGE,
                description=label,
                service_item=service_item,
                quantity=band.quantity,
                unit_price=band.unit_price,
                amount=line_amount(band.quantity, band.unit_price, rounding),
                work_date=last,
            )
        )
    return RatingOutcome(tuple(lines))
