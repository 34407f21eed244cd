"""Recognition: turn planned schedule entries into journal-ready entries, deferred → earned.

Which planned entries a run recognizes depends on how control passes (ASC 606-10-25-23):

- straight-line and percent-complete (over time): every entry whose period ended on or before
  ``through`` — a period close. Percent-complete amounts are whatever the schedule says, so
  re-measure with ``update_progress`` (latest actual hours) before closing;
- milestone (point in time): only entries whose milestone was reported completed on or before
  ``through``; the entry is re-dated to the completion date;
- as-invoiced: every entry (an invoice) dated on or before ``through`` — the invoice posting.

Recognition is idempotent twice over: entries already ``recognized`` are never journaled again,
and each journal entry carries a key derived from contract, period, schedule version and the
entry's ordinal within that period, so re-running the same schedule yields the same keys and
the ledger's external-id check drops the duplicate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Literal

from q2c.canonical.base import CanonicalModel
from q2c.canonical.models import RevenueEntry, RevenueMethod, RevenueSchedule
from q2c.canonical.money import Money
from q2c.revenue.errors import UnknownMilestoneError
from q2c.revenue.schedules import schedule_version

__all__ = [
    "Account",
    "MilestoneCompleted",
    "RecognitionEntry",
    "idempotency_key",
    "recognize",
]

Account = Literal["deferred", "earned"]
"""Logical accounts; the ERP mapping turns them into GL accounts per legal entity."""


@dataclass(frozen=True, slots=True)
class MilestoneCompleted:
    """Milestone ``sequence`` (1-based, the n-th entry of a milestone schedule) was completed."""

    sequence: int
    completed_on: date


class RecognitionEntry(CanonicalModel):
    """One journal entry, ready to post: move ``amount`` from one account to the other.

    ``amount`` is always positive; a negative schedule entry (a percent-complete catch-up
    after the estimate grew) becomes a ``reversal`` from earned back to deferred.
    """

    idempotency_key: str
    contract_id: str
    schedule_id: str
    schedule_version: int
    method: RevenueMethod
    kind: Literal["recognition", "reversal"]
    period_start: date
    period_end: date
    posting_date: date
    amount: Money
    from_account: Account
    to_account: Account


def idempotency_key(
    contract_id: str, period_start: date, period_end: date, version: int, ordinal: int = 1
) -> str:
    """``rev-<contract>-v<version>-<start>-<end>[-<ordinal>]``: stable across re-runs."""
    key = f"rev-{contract_id}-v{version}-{period_start:%Y%m%d}-{period_end:%Y%m%d}"
    return key if ordinal == 1 else f"{key}-{ordinal}"


def recognize(
    schedule: RevenueSchedule,
    *,
    through: date,
    completed: Iterable[MilestoneCompleted] = (),
) -> tuple[RevenueSchedule, list[RecognitionEntry]]:
    """Recognize what is due by ``through``; return the updated schedule and its journal."""
    entries, evidenced = _with_completions(schedule, through, completed)
    version = schedule_version(schedule)
    seen: Counter[tuple[date, date]] = Counter()
    updated: list[RevenueEntry] = []
    journal: list[RecognitionEntry] = []
    for index, entry in enumerate(entries):
        seen[(entry.period_start, entry.period_end)] += 1
        due = (
            index in evidenced
            if schedule.method is RevenueMethod.MILESTONE
            else (entry.period_end <= through)
        )
        if entry.status == "recognized" or not due:
            updated.append(entry)
            continue
        updated.append(entry.model_copy(update={"status": "recognized"}))
        if not entry.amount.is_zero():
            ordinal = seen[(entry.period_start, entry.period_end)]
            journal.append(_journal(schedule, entry, version, ordinal))
    return schedule.model_copy(update={"entries": updated}), journal


def _with_completions(
    schedule: RevenueSchedule, through: date, completed: Iterable[MilestoneCompleted]
) -> tuple[list[RevenueEntry], set[int]]:
    """Milestone entries re-dated to their completion, and the indexes that have evidence."""
    entries = list(schedule.entries)
    evidenced: set[int] = set()
    if schedule.method is not RevenueMethod.MILESTONE:
        return entries, evidenced
    for event in completed:
        if not 1 <= event.sequence <= len(entries):
            raise UnknownMilestoneError(
                f"Milestone {event.sequence} was reported completed, but the revenue plan of "
                f"contract {schedule.contract_id} has {len(entries)} milestone(s).",
                field="sequence",
                context={"contract_id": schedule.contract_id, "sequence": event.sequence},
            )
        index = event.sequence - 1
        entry = entries[index]
        if entry.status == "recognized" or event.completed_on > through:
            continue
        day = event.completed_on
        entries[index] = entry.model_copy(update={"period_start": day, "period_end": day})
        evidenced.add(index)
    return entries, evidenced


def _journal(
    schedule: RevenueSchedule, entry: RevenueEntry, version: int, ordinal: int
) -> RecognitionEntry:
    reversal = entry.amount.amount < 0
    return RecognitionEntry(
        idempotency_key=idempotency_key(
            schedule.contract_id, entry.period_start, entry.period_end, version, ordinal
        ),
        contract_id=schedule.contract_id,
        schedule_id=schedule.id,
        schedule_version=version,
        method=schedule.method,
        kind="reversal" if reversal else "recognition",
        period_start=entry.period_start,
        period_end=entry.period_end,
        posting_date=entry.period_end,
        amount=-entry.amount if reversal else entry.amount,
        from_account="earned" if reversal else "deferred",
        to_account="deferred" if reversal else "earned",
    )
