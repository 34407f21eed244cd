"""Billing schedules derived from an approved proposal (pure: values in, values out).

- fixed fee: equal monthly installments over the term, split to the cent (largest remainder);
- milestone: one line per proposal line, billed at the end date unless dated otherwise;
- retainer: the period fee each month of the term;
- time & materials and usage: no schedule; they bill as delivered (delivery-to-billing flow).
"""

from __future__ import annotations

from datetime import date

from q2c.canonical.models import BillingModel, BillingScheduleLine, Proposal
from q2c.canonical.money import Money

__all__ = ["billing_schedule", "month_starts"]


def month_starts(start: date, end: date) -> list[date]:
    """First bill date of each month of the term: the start date, then the 1st of each month."""
    dates = [start]
    year, month = start.year, start.month
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        current = date(year, month, 1)
        if current > end:
            return dates
        dates.append(current)


def billing_schedule(proposal: Proposal) -> list[BillingScheduleLine]:
    model = proposal.billing_model
    if model is BillingModel.FIXED_FEE:
        dates = month_starts(proposal.start_date, proposal.end_date)
        parts = proposal.total.allocate([1] * len(dates))
        return [
            BillingScheduleLine(
                sequence=i + 1,
                bill_date=when,
                description=f"Installment {i + 1} of {len(dates)}",
                amount=part,
            )
            for i, (when, part) in enumerate(zip(dates, parts, strict=True))
        ]
    if model is BillingModel.MILESTONE:
        return [
            BillingScheduleLine(
                sequence=i + 1,
                bill_date=proposal.end_date,
                description=line.description or line.service_item,
                amount=line.amount.rounded(),
            )
            for i, line in enumerate(proposal.lines)
        ]
    if model is BillingModel.RETAINER:
        dates = month_starts(proposal.start_date, proposal.end_date)
        fee = Money.total((line.unit_price for line in proposal.lines), proposal.currency)
        return [
            BillingScheduleLine(
                sequence=i + 1,
                bill_date=when,
                description=f"Retainer {when:%B %Y}",
                amount=fee.rounded(),
            )
            for i, when in enumerate(dates)
        ]
    return []
