"""Change notifications (Subscribed Events) -> which delivery records to fetch."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest

from q2c.connectors.kantata import parse_change_events
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.errors import ValidationError
from tests.connectors.kantata.conftest import World

DAY = date(2025, 3, 3)


def event(**fields: Any) -> dict[str, Any]:
    return {
        "id": "9",
        "account_id": 1,
        "event_type": "time_entry:updated",
        "subject_type": "TimeEntry",
        "subject_id": 7,
        "subject_changed_at": "2025-03-03T08:00:05Z",
        "created_at": "2025-03-03T08:01:00Z",
        "current_payload": {"id": "7"},
        **fields,
    }


def test_single_event_names_the_record_to_fetch() -> None:
    (notice,) = parse_change_events(json.dumps(event()).encode())

    assert (notice.kind, notice.resource, notice.record_id) == ("time", "time_entries", "7")
    assert notice.system_id == "time_entry:7"
    assert notice.changed_at is not None and notice.changed_at.isoformat().startswith(
        "2025-03-03T08:00:05"
    )
    assert not notice.deleted and notice.may_be_delivery


def test_list_is_deduplicated_filtered_and_ordered() -> None:
    notices = parse_change_events(
        [
            event(
                id="3",
                subject_type="Expense",
                subject_id=4,
                event_type="expense:updated",
                subject_changed_at="2025-03-03T09:00:00Z",
            ),
            event(id="1"),
            event(id="1"),  # Kantata may deliver an event twice
            event(id="2", subject_type="Workspace", subject_id=1, event_type="workspace:updated"),
            event(
                id="5",
                subject_type="Story",
                subject_id=8,
                event_type="story:deleted",
                current_payload=json.dumps({"story_type": "milestone"}),
            ),
            event(
                id="6",
                subject_type="Story",
                subject_id=9,
                event_type="story:updated",
                current_payload=json.dumps({"story_type": "task"}),
            ),
        ]
    )

    assert [n.event_id for n in notices] == ["1", "5", "6", "3"]
    story_deleted, task = notices[1], notices[2]
    assert story_deleted.deleted and story_deleted.system_id == "story:8"
    assert not task.may_be_delivery


@pytest.mark.parametrize("payload", [b"{not json", b"42", b'{"hello": 1}'])
def test_unreadable_notifications_are_refused(payload: bytes) -> None:
    with pytest.raises(ValidationError):
        parse_change_events(payload)


def test_feed_round_trip_fetches_only_current_approved_records(
    box: KantataSandbox, world: World
) -> None:
    approved = box.add_time_entry(
        world.workspace, date_performed=DAY, minutes=30, user_id=world.user
    )
    pending = box.add_time_entry(
        world.workspace, date_performed=DAY, minutes=45, user_id=world.user
    )
    spent = box.add_expense(world.workspace, expense_date=DAY, amount_in_cents=999, currency="GBP")
    milestone = box.add_milestone(world.workspace, "Kick-off", amount_in_cents=10000)
    box.approve(time_entries=[approved], expenses=[spent])
    box.complete_milestone(milestone)
    psa = box.psa()

    notices, cursor = psa.change_events_since(None)
    records = psa.delivery_for(notices)

    assert {n.system_id for n in notices} >= {
        f"time_entry:{approved}",
        f"time_entry:{pending}",
        f"expense:{spent}",
        f"story:{milestone}",
    }
    assert {r.system_id for r in records} == {
        f"time_entry:{approved}",
        f"expense:{spent}",
        f"story:{milestone}",
    }
    assert cursor is not None

    box.advance(30)
    box.approve(time_entries=[pending])
    later, next_cursor = psa.change_events_since(cursor)
    assert {n.system_id for n in later} == {f"time_entry:{pending}"}
    assert [r.system_id for r in psa.delivery_for(later)] == [f"time_entry:{pending}"]
    assert next_cursor is not None and next_cursor > cursor
