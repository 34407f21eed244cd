"""Revenue schedules planned from a contract (ASC 606 / IFRS 15), pure: values in, values out.

A schedule says when the contract value becomes revenue. Every method below produces entries
that add up *exactly* to the contract value rounded to the currency's minor unit, because
amounts are split with ``Money.allocate`` (largest remainder) or taken as differences of
rounded cumulative figures (which telescope to the total). The one documented exception is
as-invoiced, whose entries are the invoices so far (see its section).

Versioning: the canonical ``RevenueSchedule`` has no version field yet, so the version lives
at the end of the schedule id (``<contract id>-rev-v<N>``); ``schedule_version`` reads it back.
A change order writes version N+1; recognition puts the version into its idempotency keys.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from itertools import pairwise

from q2c.canonical.models import (
    BillingModel,
    Contract,
    RevenueEntry,
    RevenueMethod,
    RevenueSchedule,
)
from q2c.canonical.money import Money, parse_decimal
from q2c.revenue.errors import NoRemainingPeriodError, RevenuePlanError

__all__ = [
    "EffortPeriod",
    "Invoiced",
    "Milestone",
    "as_invoiced_entries",
    "milestone_entries",
    "month_periods",
    "month_weight",
    "percent_complete_entries",
    "plan_schedule",
    "progress_cumulatives",
    "schedule_id",
    "schedule_version",
    "straight_line_entries",
    "update_progress",
]

Invoiced = tuple[date, Money]
"""An invoice as revenue sees it: its date and its amount before tax (credit notes negative)."""


# --- shared --------------------------------------------------------------------------------

_VERSION = re.compile(r"-v(\d+)$")


def schedule_id(contract_id: str, version: int = 1) -> str:
    return f"{contract_id}-rev-v{version}"


def schedule_version(schedule: RevenueSchedule) -> int:
    """The version carried in the schedule id; 1 for an id that does not follow the rule."""
    match = _VERSION.search(schedule.id)
    return int(match.group(1)) if match else 1


def plan_schedule(
    contract: Contract,
    *,
    method: RevenueMethod | None = None,
    milestones: Sequence[Milestone] | None = None,
    effort_plan: Sequence[EffortPeriod] | None = None,
    invoices: Sequence[Invoiced] | None = None,
    version: int = 1,
) -> RevenueSchedule:
    """Plan the revenue of ``contract`` by ``method`` (the contract's own method by default).

    Milestone plans default to the contract's billing schedule lines (one milestone per line,
    due on its bill date); percent-complete needs ``effort_plan``; as-invoiced takes the
    invoices posted so far (none: an empty schedule that fills as invoices post).
    """
    chosen = method or contract.revenue_method
    value = _contract_value(contract)
    if chosen is RevenueMethod.STRAIGHT_LINE:
        entries = straight_line_entries(value, contract.start_date, contract.end_date)
        total = value
    elif chosen is RevenueMethod.MILESTONE:
        entries = milestone_entries(value, _milestones_of(contract, milestones), contract.number)
        total = value
    elif chosen is RevenueMethod.PERCENT_COMPLETE:
        if not effort_plan:
            raise RevenuePlanError(
                f"Contract {contract.number} recognizes revenue by percent complete but has "
                "no effort plan (planned hours per period).",
                field="effort_plan",
            )
        entries = percent_complete_entries(value, effort_plan)
        total = value
    else:
        cap = _revenue_cap(contract)
        entries = as_invoiced_entries(invoices or (), cap=cap, currency=contract.currency)
        total = cap if cap is not None else Money.total((e.amount for e in entries), value.currency)
    return RevenueSchedule(
        id=schedule_id(contract.id, version),
        contract_id=contract.id,
        method=chosen,
        total=total,
        entries=entries,
    )


def _contract_value(contract: Contract) -> Money:
    value = contract.total_value
    if value.currency != contract.currency:
        raise RevenuePlanError(
            f"Contract {contract.number} is in {contract.currency} but its value is in "
            f"{value.currency}.",
            field="total_value",
        )
    if value.amount < 0:
        raise RevenuePlanError(
            f"Contract {contract.number} has a negative value ({value}); revenue cannot be "
            "planned from it.",
            field="total_value",
        )
    return value.rounded()


def _entry(start: date, end: date, amount: Money) -> RevenueEntry:
    return RevenueEntry(period_start=start, period_end=end, amount=amount)


# --- straight-line (ratable by calendar month) ---------------------------------------------
#
# Time elapsed is the measure of progress (ASC 606-10-55-17) for a service delivered evenly.
# Day-count rule: a whole calendar month weighs 1; a partial first or last month weighs
# (days covered / days in that calendar month), both ends inclusive. So 120,000.00 over a
# calendar year is 10,000.00 every month (not more for January than for February), and a
# term starting on 16 January earns 16/31 of a month in January. Weights are exact integers
# (days * lcm(28..31) / days in month) so the split never suffers a rounding of its own.

_DAY_UNITS = 377_580  # lcm(28, 29, 30, 31): every month's length divides it


def month_periods(start: date, end: date) -> list[tuple[date, date]]:
    """Calendar-month slices of [start, end], the first and last possibly partial.

    Same months as ``q2c.pricing.schedules.month_starts`` bills by; kept here so that revenue
    does not depend on a sibling domain package.
    """
    periods = []
    current = start
    while current <= end:
        last_day = calendar.monthrange(current.year, current.month)[1]
        period_end = min(current.replace(day=last_day), end)
        periods.append((current, period_end))
        current = period_end + timedelta(days=1)
    return periods


def month_weight(period_start: date, period_end: date) -> int:
    """Share of a calendar month covered by [period_start, period_end], in 1/377,580ths."""
    days_in_month = calendar.monthrange(period_start.year, period_start.month)[1]
    covered = (period_end - period_start).days + 1
    return covered * (_DAY_UNITS // days_in_month)


def straight_line_entries(value: Money, start: date, end: date) -> list[RevenueEntry]:
    periods = month_periods(start, end)
    if not periods:
        raise NoRemainingPeriodError(
            f"{value} has no period to be recognized in: {start} is after {end}."
        )
    parts = value.allocate([month_weight(s, e) for s, e in periods])
    return [_entry(s, e, part) for (s, e), part in zip(periods, parts, strict=True)]


# --- milestone (point in time, on completion) ----------------------------------------------
#
# A milestone is recognized when it is completed, i.e. when control of that deliverable
# passes (ASC 606-10-25-30, milestones reached as an output measure, 55-17). The plan dates
# each entry on the milestone's due date; recognition moves it to the completion date.
# Entries keep the caller's milestone order: the n-th entry *is* milestone n.


@dataclass(frozen=True, slots=True)
class Milestone:
    """A milestone worth a fixed ``amount`` or a ``percent`` of the contract value."""

    name: str
    due: date
    amount: Money | None = None
    percent: Decimal | None = None

    def __post_init__(self) -> None:
        if (self.amount is None) == (self.percent is None):
            raise RevenuePlanError(
                f"Milestone {self.name!r} needs either an amount or a percent of the "
                "contract value, not both and not neither.",
                field="milestones",
            )
        if self.percent is not None:
            percent = parse_decimal(self.percent, field="percent")
            object.__setattr__(self, "percent", percent)
            if not 0 <= percent <= 100:
                raise RevenuePlanError(
                    f"Milestone {self.name!r} is {percent}% of the contract; a percent must "
                    "be between 0 and 100.",
                    field="milestones",
                )
        if self.amount is not None and (self.amount.amount < 0 or not self.amount.is_rounded()):
            raise RevenuePlanError(
                f"Milestone {self.name!r} amount {self.amount} must be positive and whole in "
                "the currency's minor unit.",
                field="milestones",
            )


def _milestones_of(contract: Contract, milestones: Sequence[Milestone] | None) -> list[Milestone]:
    if milestones:
        return list(milestones)
    if contract.billing_model is BillingModel.MILESTONE and contract.billing_schedule:
        return [
            Milestone(line.description, line.bill_date, amount=line.amount.rounded())
            for line in contract.billing_schedule
        ]
    raise RevenuePlanError(
        f"Contract {contract.number} recognizes revenue by milestone but no milestones were "
        "given and it has no milestone billing schedule.",
        field="milestones",
    )


def milestone_entries(
    value: Money, milestones: Sequence[Milestone], contract_number: str
) -> list[RevenueEntry]:
    """Fixed amounts first; the percent milestones then share what is left, exactly."""
    fixed = Money.zero(value.currency)
    for milestone in milestones:
        if milestone.amount is not None:
            if milestone.amount.currency != value.currency:
                raise RevenuePlanError(
                    f"Milestone {milestone.name!r} is in {milestone.amount.currency}; contract "
                    f"{contract_number} is in {value.currency}.",
                    field="milestones",
                )
            fixed = fixed + milestone.amount
    percents = [m.percent for m in milestones if m.percent is not None]
    percent_total = sum(percents, Decimal(0))
    left = value - fixed
    covered = fixed + Money(value.amount * percent_total / 100, value.currency).rounded()
    if covered != value:
        raise RevenuePlanError(
            _milestone_gap(value, covered, percent_total, fixed, contract_number),
            field="milestones",
            context={"contract_value": str(value), "milestones_total": str(covered)},
        )
    shares = iter(left.allocate(list(percents)) if percent_total > 0 else [])
    zero = Money.zero(value.currency)
    return [
        _entry(m.due, m.due, m.amount if m.amount is not None else next(shares, zero))
        for m in milestones
    ]


def _milestone_gap(
    value: Money, covered: Money, percent_total: Decimal, fixed: Money, number: str
) -> str:
    gap = value - covered
    if fixed.is_zero():
        missing = 100 - percent_total
        if missing > 0:
            return (
                f"Milestone percentages add up to {percent_total}%; the remaining {missing}% "
                f"({gap}) of contract {number} is not assigned to any milestone."
            )
        return (
            f"Milestone percentages add up to {percent_total}%, {-missing}% ({-gap}) more "
            f"than the value of contract {number}."
        )
    if gap.amount > 0:
        return (
            f"Milestones of contract {number} add up to {covered}; the remaining {gap} of its "
            f"value {value} is not assigned to any milestone."
        )
    return (
        f"Milestones of contract {number} add up to {covered}, {-gap} more than its value {value}."
    )


# --- percent-complete (effort-based input method) ------------------------------------------
#
# Labour hours expended are the measure of progress (ASC 606-10-55-20). Cumulative revenue at
# the end of a period = value * hours to date / estimate at completion (EAC), rounded to the
# minor unit and never above the value; the period's revenue is the cumulative minus what came
# before. EAC = hours actually reported + hours still planned, so a revised plan is a change
# in estimate taken as a cumulative catch-up in the first open period (ASC 606-10-25-35).
# That catch-up may be negative when the estimate grows: the one documented reversal entry.


@dataclass(frozen=True, slots=True)
class EffortPeriod:
    """Planned hours for a period and, once the period is worked, the actual hours."""

    period_start: date
    period_end: date
    planned_hours: Decimal
    actual_hours: Decimal | None = None

    def __post_init__(self) -> None:
        planned = parse_decimal(self.planned_hours, field="planned_hours")
        actual = (
            None
            if self.actual_hours is None
            else parse_decimal(self.actual_hours, field="actual_hours")
        )
        object.__setattr__(self, "planned_hours", planned)
        object.__setattr__(self, "actual_hours", actual)
        if planned < 0 or (actual is not None and actual < 0):
            raise RevenuePlanError(
                f"Effort for {self.period_start}..{self.period_end} has negative hours.",
                field="effort_plan",
            )
        if self.period_end < self.period_start:
            raise RevenuePlanError(
                f"Effort period ends ({self.period_end}) before it starts ({self.period_start}).",
                field="effort_plan",
            )

    @property
    def hours(self) -> Decimal:
        """Actual hours once reported, else the plan: the best estimate for the period."""
        return self.planned_hours if self.actual_hours is None else self.actual_hours


def _check_effort_plan(plan: Sequence[EffortPeriod]) -> None:
    if not plan:
        raise RevenuePlanError("The effort plan has no periods.", field="effort_plan")
    for before, after in pairwise(plan):
        if after.period_start <= before.period_end:
            raise RevenuePlanError(
                f"Effort periods overlap or are out of order: {after.period_start} starts "
                f"before {before.period_end} ends.",
                field="effort_plan",
            )
        if before.actual_hours is None and after.actual_hours is not None:
            raise RevenuePlanError(
                f"Actual hours are reported for {after.period_start} but not for the earlier "
                f"period starting {before.period_start}; report actuals in period order.",
                field="effort_plan",
            )
    if sum((p.hours for p in plan), Decimal(0)) <= 0:
        raise RevenuePlanError(
            "The effort plan estimates zero hours at completion; percent complete cannot be "
            "measured.",
            field="effort_plan",
        )


def progress_cumulatives(value: Money, plan: Sequence[EffortPeriod]) -> list[Money]:
    """Cumulative revenue at the end of each effort period, capped at ``value``."""
    _check_effort_plan(plan)
    estimate_at_completion = sum((p.hours for p in plan), Decimal(0))
    to_date = Decimal(0)
    cumulatives = []
    for period in plan:
        to_date += period.hours
        earned = Money(value.amount * to_date / estimate_at_completion, value.currency).rounded()
        cumulatives.append(min(earned, value))
    return cumulatives


def percent_complete_entries(
    value: Money,
    plan: Sequence[EffortPeriod],
    *,
    recognized: Money | None = None,
    after: date | None = None,
) -> list[RevenueEntry]:
    """Entries for the plan's periods after ``after``, net of ``recognized`` revenue."""
    previous = recognized if recognized is not None else Money.zero(value.currency)
    entries = []
    for period, cumulative in zip(plan, progress_cumulatives(value, plan), strict=True):
        if after is not None and period.period_start <= after:
            if period.period_end > after:
                raise RevenuePlanError(
                    f"Effort period {period.period_start}..{period.period_end} straddles the "
                    f"last recognized period ending {after}; align effort periods to revenue "
                    "periods.",
                    field="effort_plan",
                )
            continue
        entries.append(_entry(period.period_start, period.period_end, cumulative - previous))
        previous = cumulative
    if not entries and previous != value:
        raise NoRemainingPeriodError(
            f"Every effort period is already recognized, yet {value - previous} of the "
            f"{value} value is not; add an effort period for it."
        )
    return entries


def update_progress(schedule: RevenueSchedule, plan: Sequence[EffortPeriod]) -> RevenueSchedule:
    """Re-measure progress: recognized entries stay; open periods take the catch-up.

    Call with the latest actual hours (and revised planned hours) before a period close.
    """
    kept = [e for e in schedule.entries if e.status == "recognized"]
    recognized = Money.total((e.amount for e in kept), schedule.total.currency)
    after = max((e.period_end for e in kept), default=None)
    fresh = percent_complete_entries(schedule.total, plan, recognized=recognized, after=after)
    return schedule.model_copy(update={"entries": [*kept, *fresh]})


# --- as-invoiced ---------------------------------------------------------------------------
#
# Revenue equals what the firm has the right to invoice (practical expedient, ASC
# 606-10-55-18): one entry per invoice, on its date, in date order. Revenue never exceeds the
# cap: the not-to-exceed amount of a capped time-and-materials contract, the contract value of
# any other contract. An uncapped T&M contract has no cap (its value is an estimate), so its
# schedule total is simply what has been invoiced. With a cap, the total is the cap and the
# entries add up to the invoices so far, reaching the total once the contract is fully billed.
# A credit note (negative amount) reduces revenue only below the cap.


def _revenue_cap(contract: Contract) -> Money | None:
    if contract.billing_model is BillingModel.TIME_AND_MATERIALS:
        nte = contract.not_to_exceed
        return nte.rounded() if nte is not None else None
    return _contract_value(contract)


def as_invoiced_entries(
    invoices: Sequence[Invoiced],
    *,
    cap: Money | None,
    currency: str,
    already: Money | None = None,
) -> list[RevenueEntry]:
    """One entry per invoice (zero-revenue ones left out), capped cumulatively at ``cap``."""
    invoiced = already if already is not None else Money.zero(currency)
    entries = []
    for when, amount in sorted(invoices, key=lambda invoice: invoice[0]):
        if amount.currency != currency:
            raise RevenuePlanError(
                f"Invoice of {when} is in {amount.currency}; the contract is in {currency}.",
                field="invoices",
            )
        before = invoiced if cap is None else min(invoiced, cap)
        invoiced = invoiced + amount.rounded()
        after = invoiced if cap is None else min(invoiced, cap)
        if after != before:
            entries.append(_entry(when, when, after - before))
    return entries
