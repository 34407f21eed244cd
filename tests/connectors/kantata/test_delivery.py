"""Reading approved delivery: approval semantics, exact hours, paging, watermarks, mapping."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from q2c.canonical.money import Money
from q2c.connectors.http import Exchange
from q2c.connectors.kantata import event_id
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.kantata.wire import format_timestamp, parse_timestamp
from q2c.errors import ValidationError
from q2c.flows.ports import DeliveryRecord
from tests.connectors.kantata.conftest import World

DAY = date(2025, 3, 3)


def by_id(records: list[DeliveryRecord]) -> dict[str, DeliveryRecord]:
    return {r.system_id: r for r in records}


def entry(box: KantataSandbox, world: World, minutes: int = 60, **fields: object) -> str:
    return box.add_time_entry(
        world.workspace, date_performed=DAY, minutes=minutes, user_id=world.user, **fields
    )


# --- approval semantics -----------------------------------------------------------------


def test_only_approved_time_and_expenses_are_delivered(box: KantataSandbox, world: World) -> None:
    approved, pending, draft = entry(box, world), entry(box, world), entry(box, world)
    spent = box.add_expense(world.workspace, expense_date=DAY, amount_in_cents=1000)
    unspent = box.add_expense(world.workspace, expense_date=DAY, amount_in_cents=2000)
    box.approve(time_entries=[approved], expenses=[spent])
    box.submit(time_entries=[pending], expenses=[unspent])

    ids = set(by_id(box.psa().approved_delivery_since(None).records))

    assert ids == {f"time_entry:{approved}", f"expense:{spent}"}
    assert f"time_entry:{draft}" not in ids


def test_projects_without_approvals_deliver_everything(box: KantataSandbox, world: World) -> None:
    open_ws = box.add_workspace(
        "No approvals", require_time_approvals=False, require_expense_approvals=False
    )
    logged = box.add_time_entry(open_ws, date_performed=DAY, minutes=30, user_id=world.user)
    spent = box.add_expense(open_ws, expense_date=DAY, amount_in_cents=500)

    records = by_id(box.psa().approved_delivery_since(None).records)

    assert set(records) == {f"time_entry:{logged}", f"expense:{spent}"}
    assert records[f"time_entry:{logged}"].approved_at is None


def test_unapproved_entries_arrive_once_approved(box: KantataSandbox, world: World) -> None:
    first, later = entry(box, world), entry(box, world)
    box.approve(time_entries=[first])
    psa = box.psa(overlap=timedelta(0))
    page = psa.approved_delivery_since(None)
    assert set(by_id(page.records)) == {f"time_entry:{first}"}

    box.advance(3600)
    box.approve(time_entries=[later])
    resumed = psa.approved_delivery_since(page.watermark)

    assert set(by_id(resumed.records)) == {f"time_entry:{later}"}
    assert resumed.records[0].updated_at > parse_timestamp(page.watermark or "")
    assert resumed.watermark is not None and resumed.watermark > (page.watermark or "")


def test_non_billable_approved_time_is_delivered_as_non_billable(
    box: KantataSandbox, world: World
) -> None:
    billable, internal = entry(box, world), entry(box, world, billable=False)
    box.approve(time_entries=[billable, internal])

    records = by_id(box.psa().approved_delivery_since(None).records)

    assert records[f"time_entry:{billable}"].billable is True
    assert records[f"time_entry:{internal}"].billable is False


def test_time_in_archived_projects_is_still_delivered(box: KantataSandbox, world: World) -> None:
    closed = box.add_workspace("Closed", require_time_approvals=False, archived=True)
    logged = box.add_time_entry(closed, date_performed=DAY, minutes=15, user_id=world.user)

    assert f"time_entry:{logged}" in by_id(box.psa().approved_delivery_since(None).records)


# --- time mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "hours"),
    [
        (1, "0.016667"),
        (7, "0.116667"),
        (20, "0.333333"),
        (45, "0.750000"),
        (50, "0.833333"),
        (59, "0.983333"),
        (61, "1.016667"),
        (125, "2.083333"),
        (480, "8.000000"),
    ],
)
def test_minutes_become_exact_hours(
    box: KantataSandbox, world: World, minutes: int, hours: str
) -> None:
    logged = entry(box, world, minutes=minutes)
    box.approve(time_entries=[logged])

    record = by_id(box.psa().approved_delivery_since(None).records)[f"time_entry:{logged}"]

    assert record.quantity == Decimal(hours)
    assert record.quantity.as_tuple().exponent == -6
    assert record.unit == "hour"


def test_time_entry_maps_role_person_task_service_item_and_approval(
    box: KantataSandbox, world: World
) -> None:
    logged = entry(box, world, minutes=90, story_id=world.task, notes="Workshop")
    untasked = entry(box, world, minutes=30)
    (submission,) = box.approve(time_entries=[logged, untasked])

    records = by_id(box.psa().approved_delivery_since(None).records)
    record = records[f"time_entry:{logged}"]

    approved_at = box.state.get("timesheet_submissions", submission)
    assert approved_at is not None
    assert record.approved_at == approved_at["current_resolution_created_at_date"]
    assert record.role == "Senior Consultant"
    assert record.person == "Ada Lovelace"
    assert record.service_item == "CONSULTING-HOUR"
    assert record.project_ref == world.workspace
    assert record.work_date == DAY
    assert record.description == "Workshop"
    assert records[f"time_entry:{untasked}"].service_item is None


# --- expenses and milestones ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "subunits", "amount"),
    [("USD", 12345, "123.45"), ("EUR", 7, "0.07"), ("JPY", 5400, "5400"), ("KWD", 12345, "12.345")],
)
def test_expense_amount_is_exact_money_in_its_own_currency(
    box: KantataSandbox, world: World, currency: str, subunits: int, amount: str
) -> None:
    spent = box.add_expense(
        world.workspace,
        expense_date=DAY,
        amount_in_cents=subunits,
        currency=currency,
        category="Lodging",
        notes="Hotel",
    )
    box.approve(expenses=[spent])

    record = by_id(box.psa().approved_delivery_since(None).records)[f"expense:{spent}"]

    assert record.amount == Money(Decimal(amount), currency)
    assert (record.quantity, record.unit) == (Decimal(1), "each")
    assert record.expense_category == "Lodging"
    assert record.description == "Hotel"
    assert record.approved_at is not None


def test_completed_milestones_only(box: KantataSandbox, world: World) -> None:
    fixed = box.add_milestone(
        world.workspace,
        "Design signed off",
        amount_in_cents=2_500_000,
        due_date=date(2025, 3, 31),
        service_item="MILESTONE-FEE",
    )
    share = box.add_milestone(world.workspace, "Go-live", billing_percent="40%")
    open_one = box.add_milestone(world.workspace, "Hypercare", amount_in_cents=100)
    done_task = box.add_story(world.workspace, "Not a milestone", state="completed")
    for story in (fixed, share):
        box.complete_milestone(story)

    records = by_id(box.psa().approved_delivery_since(None).records)

    assert set(records) == {f"story:{fixed}", f"story:{share}"}
    fee = records[f"story:{fixed}"]
    assert (fee.amount, fee.percent) == (Money(Decimal("25000.00"), "USD"), None)
    assert fee.work_date == date(2025, 3, 31)
    assert fee.service_item == "MILESTONE-FEE"
    go_live = records[f"story:{share}"]
    assert (go_live.amount, go_live.percent) == (None, Decimal(40))
    assert go_live.work_date == go_live.updated_at.date()
    assert f"story:{open_one}" not in records and f"story:{done_task}" not in records


def test_unusable_billing_percent_needs_a_business_fix(box: KantataSandbox, world: World) -> None:
    box.complete_milestone(box.add_milestone(world.workspace, "Odd", billing_percent="140"))

    with pytest.raises(ValidationError) as info:
        box.psa().approved_delivery_since(None)
    assert "140" in info.value.message and info.value.field == "billing_percent"


# --- pagination and watermarks ------------------------------------------------------------


def test_every_record_once_across_pages(box: KantataSandbox, world: World) -> None:
    logged = [entry(box, world, minutes=10 + n) for n in range(53)]
    spent = [
        box.add_expense(world.workspace, expense_date=DAY, amount_in_cents=n + 1) for n in range(9)
    ]
    done = [
        box.complete_milestone(box.add_milestone(world.workspace, f"M{n}", amount_in_cents=100))
        for n in range(4)
    ]
    box.approve(time_entries=logged, expenses=spent)
    exchanges: list[Exchange] = []
    psa = box.psa(page_size=7, recorder=exchanges.append)

    records = psa.approved_delivery_since(None).records

    expected = (
        {f"time_entry:{i}" for i in logged}
        | {f"expense:{i}" for i in spent}
        | {f"story:{i}" for i in done}
    )
    assert sorted(r.system_id for r in records) == sorted(expected)
    time_pages = [e for e in exchanges if "/time_entries.json" in e.url]
    assert len(time_pages) == 8  # ceil(53 / 7)
    assert [r.updated_at for r in records] == sorted(r.updated_at for r in records)


def test_large_volume_pages_at_two_hundred(box: KantataSandbox, world: World) -> None:
    logged = [entry(box, world, minutes=1 + n % 240) for n in range(1000)]
    box.approve(time_entries=logged)
    exchanges: list[Exchange] = []

    records = box.psa(recorder=exchanges.append).approved_delivery_since(None).records

    assert len(records) == len({r.system_id for r in records}) == 1000
    assert sum("/time_entries.json" in e.url for e in exchanges) == 5
    total = sum((r.quantity for r in records), Decimal(0))
    assert total == sum(
        ((Decimal(1 + n % 240) / 60).quantize(Decimal("0.000001")) for n in range(1000)),
        Decimal(0),
    )


def test_watermark_resumes_after_the_last_change(box: KantataSandbox, world: World) -> None:
    first = [entry(box, world) for _ in range(3)]
    box.approve(time_entries=first)
    psa = box.psa(overlap=timedelta(0))
    page = psa.approved_delivery_since(None)
    assert page.watermark == format_timestamp(max(r.updated_at for r in page.records))

    assert psa.approved_delivery_since(page.watermark).records == []
    assert psa.approved_delivery_since(page.watermark).watermark == page.watermark

    box.advance(60)
    box.update("time_entries", first[0], notes="corrected")
    resumed = psa.approved_delivery_since(page.watermark)
    assert [r.system_id for r in resumed.records] == [f"time_entry:{first[0]}"]
    assert resumed.records[0].description == "corrected"
    assert event_id(resumed.records[0]) != event_id(by_id(page.records)[f"time_entry:{first[0]}"])


def test_overlap_rereads_the_recent_past_without_moving_back(
    box: KantataSandbox, world: World
) -> None:
    early = entry(box, world)
    box.approve(time_entries=[early])
    box.advance(60)
    late = entry(box, world)
    box.approve(time_entries=[late])
    psa = box.psa(overlap=timedelta(minutes=5))
    page = psa.approved_delivery_since(None)

    again = psa.approved_delivery_since(page.watermark)

    assert {r.system_id for r in again.records} == {f"time_entry:{early}", f"time_entry:{late}"}
    assert again.watermark == page.watermark
    narrow = box.psa(overlap=timedelta(seconds=30)).approved_delivery_since(page.watermark)
    assert {r.system_id for r in narrow.records} == {f"time_entry:{late}"}


def test_event_id_names_the_version(box: KantataSandbox, world: World) -> None:
    logged = entry(box, world)
    box.approve(time_entries=[logged])
    (record,) = box.psa().approved_delivery_since(None).records

    assert event_id(record) == f"time_entry:{logged}@{format_timestamp(record.updated_at)}"


def test_edits_while_paging_do_not_make_records_skip(box: KantataSandbox, world: World) -> None:
    logged = [entry(box, world, minutes=5 + n) for n in range(12)]
    box.approve(time_entries=logged)
    edited: list[str] = []

    def edit_after_first_page(exchange: Exchange) -> None:
        if "/time_entries.json" in exchange.url and not edited:
            edited.append(logged[0])  # an already-read entry changes: updated_at moves on
            box.update("time_entries", logged[0], notes="edited mid-poll")

    psa = box.psa(page_size=5, recorder=edit_after_first_page, overlap=timedelta(0))
    page = psa.approved_delivery_since(None)

    assert edited == [logged[0]]
    assert {r.system_id for r in page.records} == {f"time_entry:{i}" for i in logged}
    (again,) = psa.approved_delivery_since(page.watermark).records  # the edit, next poll
    assert (again.system_id, again.description) == (f"time_entry:{logged[0]}", "edited mid-poll")
