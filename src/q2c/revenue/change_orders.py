"""Change orders: re-plan the rest of a schedule for a new contract value (prospectively).

ASC 606-10-25-13(a) treats a modification of remaining distinct services prospectively: what
was recognized stays; the consideration still to come is spread over what is still to deliver.
So, with ``recognized`` the revenue already booked and ``kept`` the recognized entries plus any
open entry whose period ended before the change took effect (delivered under the old terms,
merely not closed yet):

    re-planned value = new_value - kept, spread with the schedule's own method, exact to the cent

The change applies from the start of the first open period that ends on or after ``effective``
(periods are the unit of recognition, so a mid-month change re-plans that whole month).
Per method: straight-line re-runs the day-count split over the remaining months up to the
(new) end; milestone and percent-complete spread in proportion to the open entries (for
percent-complete these mirror the remaining planned hours; pass a revised ``effort_plan`` to
re-measure instead, which takes the difference as a cumulative catch-up in the first open
period whatever ``effective`` says, as ASC 606-10-25-13(b) does for a single partly delivered
obligation); as-invoiced moves its cap to the new value (an uncapped T&M schedule becomes
capped: a change order states a value).

A new value below what was already recognized would need revenue taken back — a cumulative
catch-up reversal — which is an accounting decision: ``ChangeOrderBelowRecognizedError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from q2c.canonical.models import RevenueEntry, RevenueMethod, RevenueSchedule
from q2c.canonical.money import Money
from q2c.revenue.errors import (
    ChangeOrderBelowRecognizedError,
    NoRemainingPeriodError,
    RevenuePlanError,
)
from q2c.revenue.schedules import (
    EffortPeriod,
    as_invoiced_entries,
    schedule_id,
    schedule_version,
    straight_line_entries,
    update_progress,
)

__all__ = ["apply_change_order"]

_PERIOD_METHODS = (RevenueMethod.STRAIGHT_LINE, RevenueMethod.PERCENT_COMPLETE)


def apply_change_order(
    schedule: RevenueSchedule,
    *,
    new_value: Money,
    effective: date,
    new_end: date | None = None,
    effort_plan: Sequence[EffortPeriod] | None = None,
) -> RevenueSchedule:
    """The next version of ``schedule`` for a contract now worth ``new_value``."""
    value = _checked_value(schedule, new_value)
    recognized = [e for e in schedule.entries if e.status == "recognized"]
    booked = _sum(recognized, value.currency)
    if value < booked:
        raise ChangeOrderBelowRecognizedError(
            f"Change order lowers contract {schedule.contract_id} to {value}, but {booked} "
            f"has already been recognized: a cumulative catch-up reversal of {booked - value} "
            "would be needed, which q2c does not post on its own.",
            field="new_value",
            context=_context(schedule, value, booked),
        )
    bumped = schedule.model_copy(
        update={"id": schedule_id(schedule.contract_id, schedule_version(schedule) + 1)}
    )
    if schedule.method is RevenueMethod.PERCENT_COMPLETE and effort_plan is not None:
        return update_progress(bumped.model_copy(update={"total": value}), effort_plan)
    is_open = [
        e.status != "recognized"
        and not (schedule.method in _PERIOD_METHODS and e.period_end < effective)
        for e in schedule.entries
    ]
    kept = [e for e, reopened in zip(schedule.entries, is_open, strict=True) if not reopened]
    open_entries = [e for e, reopened in zip(schedule.entries, is_open, strict=True) if reopened]
    remaining = value - _sum(kept, value.currency)
    if remaining.amount < 0:
        raise ChangeOrderBelowRecognizedError(
            f"Change order lowers contract {schedule.contract_id} to {value}, but "
            f"{value - remaining} was already earned before it took effect on {effective} "
            f"({booked} of it recognized): a cumulative catch-up reversal of {-remaining} "
            "would be needed, which q2c does not post on its own.",
            field="new_value",
            context=_context(schedule, value, booked),
        )
    if schedule.method is RevenueMethod.AS_INVOICED:
        entries = _as_invoiced(value, recognized, open_entries)
    elif schedule.method is RevenueMethod.STRAIGHT_LINE:
        entries = [*kept, *_straight_line(schedule, kept, open_entries, remaining, new_end)]
    else:
        parts = iter(_proportional(schedule, open_entries, remaining, new_end))
        entries = [
            next(parts) if reopened else e
            for e, reopened in zip(schedule.entries, is_open, strict=True)
        ]
    return bumped.model_copy(update={"total": value, "entries": entries})


def _proportional(
    schedule: RevenueSchedule,
    open_entries: list[RevenueEntry],
    remaining: Money,
    new_end: date | None,
) -> list[RevenueEntry]:
    """Milestone and percent-complete: the open entries share ``remaining`` as they stood."""
    current_end = max((e.period_end for e in schedule.entries), default=None)
    if schedule.method is RevenueMethod.PERCENT_COMPLETE and new_end not in (None, current_end):
        raise RevenuePlanError(
            f"Change order moves the end of contract {schedule.contract_id} to {new_end}; a "
            "percent-complete schedule needs the revised effort plan for that.",
            field="effort_plan",
        )
    if not open_entries:
        if remaining.is_zero():
            return []
        raise NoRemainingPeriodError(
            f"Change order leaves {remaining} of contract {schedule.contract_id} to recognize "
            "but every milestone or period is already recognized.",
            context={"contract_id": schedule.contract_id, "remaining": str(remaining)},
        )
    weights: list[Decimal | int] = [max(e.amount.to_minor(), 0) for e in open_entries]
    if sum(weights) == 0:
        weights = [1] * len(open_entries)
    parts = remaining.allocate(weights)
    return [
        _moved(entry, new_end).model_copy(update={"amount": part})
        for entry, part in zip(open_entries, parts, strict=True)
    ]


def _straight_line(
    schedule: RevenueSchedule,
    kept: list[RevenueEntry],
    open_entries: list[RevenueEntry],
    remaining: Money,
    new_end: date | None,
) -> list[RevenueEntry]:
    last_kept = max((e.period_end for e in kept), default=None)
    if open_entries:
        start = open_entries[0].period_start
    elif last_kept is not None:
        start = last_kept + timedelta(days=1)
    else:  # pragma: no cover - a straight-line plan always has at least one entry
        raise NoRemainingPeriodError(f"Schedule of {schedule.contract_id} has no periods.")
    end = new_end or max(e.period_end for e in schedule.entries)
    if end < start:
        if remaining.is_zero():
            return []
        raise NoRemainingPeriodError(
            f"Change order leaves {remaining} of contract {schedule.contract_id} to recognize "
            f"but no open period remains between {start} and the end date {end}.",
            context={"contract_id": schedule.contract_id, "remaining": str(remaining)},
        )
    return straight_line_entries(remaining, start, end)


def _moved(entry: RevenueEntry, new_end: date | None) -> RevenueEntry:
    """A milestone due after a new, earlier end date is now due on that end date."""
    if new_end is None or entry.period_end <= new_end:
        return entry
    start = min(entry.period_start, new_end)
    return entry.model_copy(update={"period_start": start, "period_end": new_end})


def _as_invoiced(
    value: Money, recognized: list[RevenueEntry], open_entries: list[RevenueEntry]
) -> list[RevenueEntry]:
    """The new value is the new cap; open invoice entries are re-capped in date order."""
    invoices = [(e.period_start, e.amount) for e in open_entries]
    already = _sum(recognized, value.currency)
    fresh = as_invoiced_entries(invoices, cap=value, currency=value.currency, already=already)
    return [*recognized, *fresh]


def _checked_value(schedule: RevenueSchedule, new_value: Money) -> Money:
    if new_value.currency != schedule.total.currency:
        raise RevenuePlanError(
            f"Change order for contract {schedule.contract_id} is in {new_value.currency}; "
            f"its revenue schedule is in {schedule.total.currency}.",
            field="new_value",
        )
    return new_value.rounded()


def _sum(entries: Sequence[RevenueEntry], currency: str) -> Money:
    return Money.total((e.amount for e in entries), currency)


def _context(schedule: RevenueSchedule, value: Money, booked: Money) -> dict[str, str]:
    return {
        "contract_id": schedule.contract_id,
        "new_value": str(value),
        "recognized": str(booked),
    }
