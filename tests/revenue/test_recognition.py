"""Recognition: period close, milestone completion, invoice posting; idempotent."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from q2c.canonical.models import RevenueMethod
from q2c.revenue import (
    EffortPeriod,
    Milestone,
    MilestoneCompleted,
    UnknownMilestoneError,
    plan_schedule,
    recognize,
    update_progress,
)
from q2c.revenue.recognition import idempotency_key
from tests.revenue.factories import contract, money


def statuses(schedule) -> list[str]:
    return [e.status for e in schedule.entries]


def test_period_close_recognizes_every_period_ended_by_then():
    schedule = plan_schedule(contract("120000.00"))
    closed, journal = recognize(schedule, through=date(2026, 3, 31))
    assert statuses(closed) == ["recognized"] * 3 + ["planned"] * 9
    assert [j.amount for j in journal] == [money("10000.00")] * 3
    first = journal[0]
    assert first.idempotency_key == "rev-ctr-1-v1-20260101-20260131"
    assert (first.from_account, first.to_account, first.kind) == (
        "deferred",
        "earned",
        "recognition",
    )
    assert (first.period_start, first.period_end, first.posting_date) == (
        date(2026, 1, 1),
        date(2026, 1, 31),
        date(2026, 1, 31),
    )
    assert first.contract_id == "ctr-1"
    assert first.schedule_id == "ctr-1-rev-v1"
    assert first.method is RevenueMethod.STRAIGHT_LINE


def test_a_period_still_running_is_not_recognized():
    schedule = plan_schedule(contract("120000.00"))
    closed, journal = recognize(schedule, through=date(2026, 1, 30))
    assert journal == []
    assert closed == schedule


def test_running_twice_never_recognizes_twice():
    schedule = plan_schedule(contract("120000.00"))
    once, first = recognize(schedule, through=date(2026, 6, 30))
    twice, second = recognize(once, through=date(2026, 6, 30))
    assert second == []
    assert twice == once
    # re-running from the unsaved schedule yields the same keys (the ledger drops duplicates)
    _, replay = recognize(schedule, through=date(2026, 6, 30))
    assert [j.idempotency_key for j in replay] == [j.idempotency_key for j in first]


def test_later_close_recognizes_only_the_new_periods():
    schedule = plan_schedule(contract("120000.00"))
    march, _ = recognize(schedule, through=date(2026, 3, 31))
    _, journal = recognize(march, through=date(2026, 5, 31))
    assert [j.period_start.month for j in journal] == [4, 5]


def test_milestone_is_recognized_on_completion_not_on_its_due_date():
    milestones = [
        Milestone("Design", date(2026, 3, 31), percent=Decimal(40)),
        Milestone("Go-live", date(2026, 9, 30), percent=Decimal(60)),
    ]
    schedule = plan_schedule(
        contract("100000.00"), method=RevenueMethod.MILESTONE, milestones=milestones
    )
    nothing, journal = recognize(schedule, through=date(2026, 12, 31))
    assert journal == [] and statuses(nothing) == ["planned", "planned"]

    done = [MilestoneCompleted(sequence=2, completed_on=date(2026, 4, 20))]
    early, journal = recognize(schedule, through=date(2026, 4, 30), completed=done)
    assert statuses(early) == ["planned", "recognized"]
    assert early.entries[1].period_end == date(2026, 4, 20)  # re-dated to the completion
    assert journal[0].amount == money("60000.00")
    assert journal[0].idempotency_key == "rev-ctr-1-v1-20260420-20260420"

    _, again = recognize(early, through=date(2026, 4, 30), completed=done)
    assert again == []


def test_completion_after_the_close_date_waits():
    schedule = plan_schedule(
        contract("100.00"),
        method=RevenueMethod.MILESTONE,
        milestones=[Milestone("All", date(2026, 1, 1), percent=Decimal(100))],
    )
    done = [MilestoneCompleted(1, date(2026, 2, 3))]
    later, journal = recognize(schedule, through=date(2026, 1, 31), completed=done)
    assert journal == [] and later == schedule


def test_unknown_milestone_is_named():
    schedule = plan_schedule(
        contract("100.00"),
        method=RevenueMethod.MILESTONE,
        milestones=[Milestone("All", date(2026, 1, 1), percent=Decimal(100))],
    )
    with pytest.raises(UnknownMilestoneError, match=r"Milestone 3 .* has 1 milestone"):
        recognize(
            schedule,
            through=date(2026, 12, 31),
            completed=[MilestoneCompleted(3, date(2026, 1, 1))],
        )


def test_two_milestones_on_one_day_get_distinct_keys():
    milestones = [Milestone(n, date(2026, 6, 30), percent=Decimal(50)) for n in ("A", "B")]
    schedule = plan_schedule(
        contract("100.00"), method=RevenueMethod.MILESTONE, milestones=milestones
    )
    done = [MilestoneCompleted(1, date(2026, 6, 30)), MilestoneCompleted(2, date(2026, 6, 30))]
    _, journal = recognize(schedule, through=date(2026, 6, 30), completed=done)
    assert [j.idempotency_key for j in journal] == [
        "rev-ctr-1-v1-20260630-20260630",
        "rev-ctr-1-v1-20260630-20260630-2",
    ]


def test_as_invoiced_recognizes_posted_invoices_by_date():
    invoices = [(date(2026, 1, 31), money("100.00")), (date(2026, 2, 28), money("50.00"))]
    schedule = plan_schedule(
        contract("1000.00"), method=RevenueMethod.AS_INVOICED, invoices=invoices
    )
    closed, journal = recognize(schedule, through=date(2026, 2, 1))
    assert statuses(closed) == ["recognized", "planned"]
    assert [j.amount for j in journal] == [money("100.00")]


def test_negative_catch_up_is_journaled_as_a_reversal():
    months = [(date(2026, m, 1), date(2026, m, 28)) for m in (1, 2, 3)]
    plan = [EffortPeriod(s, e, Decimal(h)) for (s, e), h in zip(months, (50, 25, 25), strict=True)]
    schedule = plan_schedule(
        contract("100.00"), method=RevenueMethod.PERCENT_COMPLETE, effort_plan=plan
    )
    jan, _ = recognize(schedule, through=date(2026, 1, 31))
    revised = update_progress(
        jan,
        [
            EffortPeriod(*months[0], Decimal(50), Decimal(50)),
            EffortPeriod(*months[1], Decimal(25), Decimal(0)),
            EffortPeriod(*months[2], Decimal(150)),
        ],
    )
    _, journal = recognize(revised, through=date(2026, 2, 28))
    assert [(j.kind, j.amount, j.from_account, j.to_account) for j in journal] == [
        ("reversal", money("25.00"), "earned", "deferred")
    ]


def test_zero_entries_are_marked_recognized_without_a_journal_line():
    months = [(date(2026, m, 1), date(2026, m, 28)) for m in (1, 2)]
    plan = [EffortPeriod(*months[0], Decimal(0)), EffortPeriod(*months[1], Decimal(10))]
    schedule = plan_schedule(
        contract("100.00"), method=RevenueMethod.PERCENT_COMPLETE, effort_plan=plan
    )
    closed, journal = recognize(schedule, through=date(2026, 1, 31))
    assert statuses(closed) == ["recognized", "planned"] and journal == []


def test_idempotency_key_shape():
    assert (
        idempotency_key("c", date(2026, 1, 1), date(2026, 1, 31), 3) == "rev-c-v3-20260101-20260131"
    )
    assert idempotency_key("c", date(2026, 1, 1), date(2026, 1, 1), 1, 2).endswith("-2")


def test_recognition_entry_serializes_for_events():
    _, journal = recognize(plan_schedule(contract("120000.00")), through=date(2026, 1, 31))
    payload = journal[0].model_dump(mode="json")
    assert payload["amount"] == {"amount": "10000.00", "currency": "USD"}
    assert payload["period_end"] == "2026-01-31"
