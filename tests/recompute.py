"""An independent recomputation of the demo's November invoices, from the scenario's plain
data and the documented billing rules — deliberately *not* through ``q2c.pricing``.

Rules, as the contracts state them:

- time: hours = minutes / 60 to six places (half-up); amount per entry = round(hours x rate of
  the role on the rate card version effective on the work date); entries of one role and rate
  version form one invoice line;
- expenses: categories not billable are left out; amount x (1 + markup %), converted at the
  rate on the document date, rounded once; one line each;
- a not-to-exceed cap bills entries in work-date order (then id) until the cap, the crossing
  entry partially;
- retainer: the period fee, plus hours over the allowance at the overage rate;
- usage: the month's quantity on graduated tiers, each band rounded;
- fixed fee: the first monthly installment (the total split evenly, largest remainder first);
- milestone: the completed milestone's percent of the contract value;
- tax: per invoice line, round(line amount x rate).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from q2c.scenario import RATE_CHANGE, ROLES, Scenario

CENT = Decimal("0.01")
TAX = {"US01": Decimal(0), "DE01": Decimal("0.19")}


def _round(value: Decimal, places: Decimal = CENT) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Expected:
    subtotal: Decimal
    tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.subtotal + self.tax


def _not_billable(category: str, excluded: list[str]) -> bool:
    return category.casefold() in {c.casefold() for c in excluded}


def _rate(role: str, currency: str, work_date: date) -> Decimal:
    spec = ROLES[role]
    column = (2 if currency == "USD" else 4) + (1 if work_date >= RATE_CHANGE else 0)
    return Decimal(spec[column])


def expected_invoices(
    scenario: Scenario,
    *,
    event_ids: dict[str, str],
    eur_usd: Decimal,
) -> dict[str, Expected]:
    """Expected November invoice per deal key. ``event_ids`` maps each delivered (approved)
    time entry and expense of the plan to its billing event id, which orders entries of one
    work date under a cap."""
    billed_time = {k for k in event_ids if k.startswith("T")}
    billed_expenses = {k for k in event_ids if k.startswith("E")}
    results: dict[str, Expected] = {}
    for deal in scenario.deals:
        lines: list[Decimal] = []
        if deal.billing_model in ("time_and_materials", "retainer"):
            entries = sorted(
                (t for t in scenario.time if t.deal == deal.key and t.key in billed_time),
                key=lambda t: (t.work_date, event_ids[t.key]),
            )
        else:
            entries = []
        if deal.billing_model == "time_and_materials":
            priced = []
            for entry in entries:
                hours = _round(Decimal(entry.minutes) / 60, Decimal("0.000001"))
                rate = _rate(entry.role, deal.currency, entry.work_date)
                version = 2 if entry.work_date >= RATE_CHANGE else 1
                priced.append((entry.work_date, event_ids[entry.key], (entry.role, version),
                               _round(hours * rate)))
            expenses = []
            for expense in scenario.expenses:
                if expense.deal != deal.key or expense.key not in billed_expenses:
                    continue
                if _not_billable(expense.category, deal.terms.expenses.non_billable_categories):
                    continue
                amount = expense.amount.amount * (1 + deal.terms.expenses.markup_percent / 100)
                if expense.amount.currency != deal.currency:
                    amount *= eur_usd
                expenses.append((expense.work_date, event_ids[expense.key],
                                 ("expense", expense.key), _round(amount)))
            ordered = sorted(priced + expenses, key=lambda p: (p[0], p[1]))
            if deal.not_to_exceed is not None:
                ordered = _capped(ordered, deal.not_to_exceed)
            groups: dict[tuple[str, object], Decimal] = defaultdict(Decimal)
            for _, _, key, amount in ordered:
                groups[key] += amount
            lines = [amount for amount in groups.values() if amount]
        elif deal.billing_model == "retainer":
            terms = deal.terms.retainer
            assert terms is not None
            hours = sum((_round(Decimal(t.minutes) / 60, Decimal("0.000001")) for t in entries),
                        Decimal(0))
            lines = [terms.period_fee.amount]
            over = hours - terms.hours_allowance
            if over > 0 and terms.overage_rate is not None:
                lines.append(_round(over * terms.overage_rate.amount))
            for expense in scenario.expenses:
                if (expense.deal == deal.key and expense.key in billed_expenses
                        and not _not_billable(expense.category,
                                              deal.terms.expenses.non_billable_categories)):
                    amount = expense.amount.amount * (1 + deal.terms.expenses.markup_percent / 100)
                    if expense.amount.currency != deal.currency:
                        amount *= eur_usd
                    lines.append(_round(amount))
        elif deal.billing_model == "usage":
            usage = deal.terms.usage
            assert usage is not None
            quantity = sum((u.quantity for u in scenario.usage if u.deal == deal.key),
                           Decimal(0))
            lower = Decimal(0)
            for tier in usage.tiers:
                upper = tier.up_to
                band = (min(quantity, upper) if upper is not None else quantity) - lower
                if band > 0:
                    lines.append(_round(band * tier.unit_price.amount))
                if upper is None or quantity <= upper:
                    break
                lower = upper
        elif deal.billing_model == "fixed_fee":
            months = 3 if deal.end.month == 1 else 6
            cents = int(deal.total * 100)
            first = cents // months + (1 if cents % months else 0)
            lines = [Decimal(first) / 100]
        elif deal.billing_model == "milestone":
            done = [m for m in scenario.milestones if m.deal == deal.key]
            lines = [_round(deal.total * m.percent / 100) for m in done]
        subtotal = sum(lines, Decimal(0))
        tax = sum((_round(line * TAX[deal.entity]) for line in lines), Decimal(0))
        if lines:
            results[deal.key] = Expected(subtotal, tax)
    return results


Priced = tuple[date, str, tuple[str, object], Decimal]


def _capped(ordered: list[Priced], cap: Decimal) -> list[Priced]:
    kept, room = [], cap
    for work_date, event_id, key, amount in ordered:
        if room <= 0:
            break
        part = min(amount, room)
        kept.append((work_date, event_id, key, part.quantize(CENT, rounding=ROUND_DOWN)))
        room -= part
    return kept
