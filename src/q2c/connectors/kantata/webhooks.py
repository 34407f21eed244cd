"""Kantata change notifications -> which delivery records changed (fetch them, then map).

Kantata OX does not push webhooks from its REST API; its documented change feed is the
*Subscribed Events* API (an add-on, account administrators only): ``GET /subscribed_events``
returns events in the usual envelope, each shaped like::

    {"id": "9", "account_id": 1, "event_type": "time_entry:updated", "subject_type": "TimeEntry",
     "subject_id": 7, "subject_changed_at": "...", "created_at": "...", "user_id": 2,
     "current_payload": {...}, "previous_payload": {...}, "payload_changes": {...},
     "subject_ref": {"key": "time_entries", "id": "7"}}

Events can arrive late, out of order and more than once, and are kept 9 days. Kantata
automations (or a relay) can POST the same event JSON to q2c; ``parse_change_events`` accepts
a Subscribed Events page, a list of events or one event, so the hub handles both. Assumed (the
docs type the payload fields as strings): ``current_payload`` may be an object or a JSON string.
No signature is documented, so the hub should only accept relayed events on an authenticated
route. A notice says *what to fetch*; the record's current state (approved or not) is read
from the API, never trusted from the event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from q2c.connectors.kantata import wire
from q2c.errors import ValidationError
from q2c.flows.ports import DeliveryKind

__all__ = ["ChangeNotice", "parse_change_events"]

SYSTEM = "kantata"
_EARLIEST = datetime.min.replace(tzinfo=UTC)
_KINDS: dict[str, tuple[DeliveryKind, str, str]] = {
    "TimeEntry": ("time", "time_entry", "time_entries"),
    "Expense": ("expense", "expense", "expenses"),
    "Story": ("milestone", "story", "stories"),
}


@dataclass(frozen=True, slots=True)
class ChangeNotice:
    """One change to a delivery record: enough to fetch it by id.

    ``kind`` is the delivery kind the subject may become (a changed story is a milestone only
    if its type says so: ``may_be_delivery`` is False when the payload shows another type).
    """

    event_id: str
    event_type: str
    kind: DeliveryKind
    resource: str
    record_id: str
    system_id: str
    changed_at: datetime | None
    deleted: bool
    may_be_delivery: bool = True


def parse_change_events(payload: bytes | str | Mapping[str, Any] | list[Any]) -> list[ChangeNotice]:
    """The delivery-relevant changes in a Subscribed Events page, event list or single event.

    Events about other subjects (workspaces, users...) are skipped; duplicates (same event id)
    are dropped; the result is ordered by when the subject changed.
    """
    body: Any = payload
    if isinstance(payload, bytes | str):
        try:
            body = wire.loads(payload)
        except ValueError as exc:
            raise ValidationError(
                "A Kantata change notification was not valid JSON",
                detail=str(exc),
                system=SYSTEM,
            ) from exc
    notices: dict[str, ChangeNotice] = {}
    for event in _events(body):
        notice = _notice(event)
        if notice is not None:
            notices.setdefault(notice.event_id, notice)
    return sorted(notices.values(), key=lambda n: (n.changed_at or _EARLIEST, n.event_id))


def _events(body: Any) -> Iterable[Mapping[str, Any]]:
    if isinstance(body, list):
        return [e for e in body if isinstance(e, Mapping)]
    if not isinstance(body, Mapping):
        raise ValidationError(
            "A Kantata change notification had an unexpected shape",
            detail=f"expected an object or a list, got {type(body).__name__}",
            system=SYSTEM,
        )
    if "subscribed_events" in body:
        return wire.result_records(body, "subscribed_events")
    if "event_type" in body:
        return [body]
    raise ValidationError(
        "A Kantata change notification carried no events",
        detail=f"keys: {sorted(body)[:20]}",
        system=SYSTEM,
    )


def _notice(event: Mapping[str, Any]) -> ChangeNotice | None:
    known = _KINDS.get(str(event.get("subject_type", "")))
    if known is None or event.get("subject_id") in (None, ""):
        return None
    kind, prefix, resource = known
    record_id = str(event["subject_id"])
    event_type = str(event.get("event_type") or "")
    payload = _payload(event.get("current_payload"))
    may_be = True
    if prefix == "story" and payload and payload.get("story_type") not in (None, "milestone"):
        may_be = False
    changed = event.get("subject_changed_at") or event.get("created_at")
    return ChangeNotice(
        event_id=str(event.get("id") or f"{event_type}:{record_id}:{changed}"),
        event_type=event_type,
        kind=kind,
        resource=resource,
        record_id=record_id,
        system_id=f"{prefix}:{record_id}",
        changed_at=wire.parse_timestamp(changed) if isinstance(changed, str) else None,
        deleted=event_type.endswith(":deleted"),
        may_be_delivery=may_be,
    )


def _payload(raw: Any) -> Mapping[str, Any] | None:
    if isinstance(raw, Mapping):
        return raw
    if isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            parsed = json.loads(raw)
        except ValueError:
            return None
        return parsed if isinstance(parsed, Mapping) else None
    return None
