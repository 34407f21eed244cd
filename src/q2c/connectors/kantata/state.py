"""The emulated Kantata OX account's data: tables, a deterministic clock and the change feed.

``KantataState`` is what the emulator reads and writes and what tests and the demo seed. Each
resource lives in a ``Table`` (records keyed by id, ids increasing with creation, an index by
``updated_at`` kept sorted so ``updated_after`` is a bisect) whose ``version`` moves on every
write, so the query layer can cache a filtered, ordered id list and serve page after page in
O(page). Every change also lands in the Subscribed Events log (``time_entry:updated`` ...),
which is what Kantata offers instead of push webhooks.

Kantata rules applied here: a time entry or expense is *approved* when its active submission
is approved or its project requires no approval; approving bumps ``updated_at`` (Kantata emits
``time_entry:updated`` / ``expense:updated`` on approval); completing a milestone moves its
``state`` to ``completed``. The clock only moves forward: by ``tick`` on every write (default
one second, so ``updated_at`` values are distinct and ordered) and by ``advance``/``set``.
"""

from __future__ import annotations

import bisect
import copy
import itertools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from q2c.canonical.money import minor_units

__all__ = ["DEFAULT_START", "KantataClock", "KantataState", "Record", "Table"]

Record = dict[str, Any]
DEFAULT_START = datetime(2025, 1, 6, 9, 0, tzinfo=UTC)
ACCOUNT_ID = 4242

# collection key -> (subject type as Kantata names it, event subject prefix)
RESOURCES: dict[str, tuple[str, str]] = {
    "workspaces": ("Workspace", "workspace"),
    "workspace_groups": ("WorkspaceGroup", "workspace_group"),
    "users": ("User", "user"),
    "roles": ("Role", "role"),
    "stories": ("Story", "story"),
    "time_entries": ("TimeEntry", "time_entry"),
    "expenses": ("Expense", "expense"),
    "timesheet_submissions": ("Submission", "timesheet"),
    "expense_report_submissions": ("Submission", "expense_report"),
    "custom_fields": ("CustomField", "custom_field"),
    "custom_field_values": ("CustomFieldValue", "custom_field_value"),
    "external_references": ("ExternalReference", "external_reference"),
    "subscribed_events": ("SubscribedEvent", "subscribed_event"),
}
_QUIET = {"subscribed_events", "custom_field_values", "external_references", "custom_fields"}


class KantataClock:
    """The account's clock: whole seconds, forward only, moved by writes and by tests."""

    def __init__(self, start: datetime | None = None, *, tick: timedelta = timedelta(seconds=1)):
        when = (start or DEFAULT_START).astimezone(UTC)
        self._now = when.replace(microsecond=0)
        self.tick = tick
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def stamp(self) -> datetime:
        """The time of a write: the clock moves by ``tick`` first."""
        with self._lock:
            self._now += self.tick
            return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        if step < timedelta(0):
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._now = (self._now + step).replace(microsecond=0)
            return self._now

    def set(self, when: datetime) -> datetime:
        target = when.astimezone(UTC).replace(microsecond=0)
        with self._lock:
            if target < self._now:
                raise ValueError(f"the clock is at {self._now}; it cannot go back to {target}")
            self._now = target
            return self._now


@dataclass
class Table:
    """One resource: records by id (creation order), and ids sorted by ``updated_at``."""

    key: str
    subject_type: str
    records: dict[str, Record] = field(default_factory=dict)
    by_updated: list[tuple[datetime, int]] = field(default_factory=list)
    version: int = 0
    next_id: int = 100  # every resource counts from 100: ids collide across resources

    def insert(self, record: Record, now: datetime) -> str:
        record_id = str(self.next_id)
        self.next_id += 1
        record.update(id=record_id, created_at=now, updated_at=now)
        self.records[record_id] = record
        bisect.insort(self.by_updated, (now, int(record_id)))
        self.version += 1
        return record_id

    def touch(self, record_id: str, now: datetime) -> None:
        record = self.records[record_id]
        old = (record["updated_at"], int(record_id))
        index = bisect.bisect_left(self.by_updated, old)
        if index < len(self.by_updated) and self.by_updated[index] == old:
            del self.by_updated[index]
        record["updated_at"] = now
        bisect.insort(self.by_updated, (now, int(record_id)))
        self.version += 1

    def updated_after(self, when: datetime) -> list[str]:
        start = bisect.bisect_right(self.by_updated, (when, 2**62))
        return [str(i) for _, i in self.by_updated[start:]]

    def updated_before(self, when: datetime) -> list[str]:
        stop = bisect.bisect_left(self.by_updated, (when, -1))
        return [str(i) for _, i in self.by_updated[:stop]]


def currency_fields(currency: str) -> dict[str, Any]:
    return {
        "currency": currency,
        "currency_symbol": currency,
        "currency_base_unit": 10 ** minor_units(currency),
    }


class KantataState:
    """Thread-safe in-memory Kantata OX account."""

    def __init__(self, clock: KantataClock | None = None) -> None:
        self.clock = clock or KantataClock()
        self.lock = threading.RLock()
        self.tables = {key: Table(key, subject) for key, (subject, _) in RESOURCES.items()}
        self._refs: dict[tuple[str, str, str, str], set[str]] = {}
        self._custom: dict[tuple[str, str], list[str]] = {}
        self._fields_by_name: dict[tuple[str, str], str] = {}
        self._event_ids = itertools.count(1)
        self.current_user_id = self.add_user("Q2C Integration", email="q2c@example.com")

    # --- reads ----------------------------------------------------------------------------

    def table(self, key: str) -> Table:
        return self.tables[key]

    def get(self, key: str, record_id: str | int) -> Record | None:
        with self.lock:
            record = self.tables[key].records.get(str(record_id))
            return copy.deepcopy(record) if record is not None else None

    def count(self, key: str) -> int:
        with self.lock:
            return len(self.tables[key].records)

    def subjects_with_reference(
        self, subject_type: str, service_name: str, service_model: str, refs: Iterable[str]
    ) -> set[str]:
        with self.lock:
            out: set[str] = set()
            for ref in refs:
                out |= self._refs.get((subject_type, service_name, service_model, ref), set())
            return out

    def reference_ids(self, subject_type: str, subject_id: str) -> list[str]:
        with self.lock:
            return [
                r["id"]
                for r in self.tables["external_references"].records.values()
                if r["subject_type"] == subject_type and r["subject_id"] == subject_id
            ]

    def custom_value_ids(self, subject_type: str, subject_id: str) -> list[str]:
        with self.lock:
            return list(self._custom.get((subject_type, subject_id), []))

    def is_approved(self, key: str, record: Mapping[str, Any]) -> bool:
        """Kantata's ``approved``: on an approved submission, or no approval required."""
        with self.lock:
            workspace = self.tables["workspaces"].records.get(str(record["workspace_id"]), {})
            setting = (
                "require_time_approvals" if key == "time_entries" else ("require_expense_approvals")
            )
            if not workspace.get(setting, True):
                return True
            submission_key = (
                "timesheet_submissions" if key == "time_entries" else "expense_report_submissions"
            )
            submission_id = record.get("_active_submission_id")
            submission = self.tables[submission_key].records.get(str(submission_id or ""))
            return bool(submission and submission["status"] == "approved")

    # --- writes (each one stamps the clock and logs a subscribed event) -----------------------

    def insert(self, key: str, fields: Mapping[str, Any]) -> str:
        with self.lock:
            now = self.clock.stamp()
            record = dict(fields)
            record_id = self.tables[key].insert(record, now)
            self._log(key, record, "created", previous=None)
            return record_id

    def update(self, key: str, record_id: str | int, changes: Mapping[str, Any]) -> Record:
        with self.lock:
            table = self.tables[key]
            record = table.records.get(str(record_id))
            if record is None:
                raise KeyError(f"no {key} record {record_id}")
            previous = dict(record)  # values are replaced, never mutated in place
            record.update(changes)
            table.touch(record["id"], self.clock.stamp())
            self._log(key, record, "updated", previous=previous)
            return dict(record)

    def _log(self, key: str, record: Record, verb: str, previous: Record | None) -> None:
        if key in _QUIET:
            return
        subject_type, prefix = RESOURCES[key]
        events = self.tables["subscribed_events"]
        current = _public(record)
        changes = {
            name: [(previous or {}).get(name), value]
            for name, value in current.items()
            if previous is None or previous.get(name) != value
        }
        events.insert(
            {
                "account_id": ACCOUNT_ID,
                "event_type": f"{prefix}:{verb}",
                "subject_type": subject_type,
                "subject_id": int(record["id"]),
                "subject_changed_at": record["updated_at"],
                "user_id": int(self.current_user_id) if hasattr(self, "current_user_id") else None,
                "current_payload": current,
                "previous_payload": _public(previous) if previous else None,
                "payload_changes": changes,
                "subject_ref": {"key": key, "id": record["id"]},
                "_sequence": next(self._event_ids),
            },
            record["updated_at"],
        )

    # --- seeding ------------------------------------------------------------------------------

    def add_role(self, name: str) -> str:
        return self.insert("roles", {"name": name})

    def add_user(
        self, full_name: str, *, email: str | None = None, role_id: str | None = None
    ) -> str:
        slug = full_name.lower().replace(" ", ".")
        return self.insert(
            "users",
            {
                "full_name": full_name,
                "email_address": email or f"{slug}@example.com",
                "headline": "",
                "account_id": ACCOUNT_ID,
                "_role_id": role_id,
            },
        )

    def add_workspace_group(
        self,
        name: str,
        *,
        company: bool = True,
        external_reference: Mapping[str, Any] | None = None,
    ) -> str:
        with self.lock:
            group_id = self.insert("workspace_groups", {"name": name, "company": company})
            if external_reference:
                self.add_external_reference("WorkspaceGroup", group_id, external_reference)
            return group_id

    def add_workspace(
        self,
        title: str,
        *,
        currency: str = "USD",
        group_ids: Iterable[str] = (),
        description: str = "",
        start_date: date | None = None,
        due_date: date | None = None,
        require_time_approvals: bool = True,
        require_expense_approvals: bool = True,
        archived: bool = False,
        price_in_cents: int | None = None,
        external_reference: Mapping[str, Any] | None = None,
    ) -> str:
        with self.lock:
            workspace_id = self.insert(
                "workspaces",
                {
                    "title": title,
                    "description": description,
                    "archived": archived,
                    **currency_fields(currency),
                    "start_date": start_date.isoformat() if start_date else None,
                    "due_date": due_date.isoformat() if due_date else None,
                    "budgeted": price_in_cents is not None,
                    "price_in_cents": price_in_cents,
                    "require_time_approvals": require_time_approvals,
                    "require_expense_approvals": require_expense_approvals,
                    "access_level": "invitation",
                    "workspace_group_ids": [str(g) for g in group_ids],
                },
            )
            if external_reference:
                self.add_external_reference("Workspace", workspace_id, external_reference)
            return workspace_id

    def add_external_reference(
        self, subject_type: str, subject_id: str, reference: Mapping[str, Any]
    ) -> str:
        with self.lock:
            fields = {
                "subject_type": subject_type,
                "subject_id": str(subject_id),
                "service_name": str(reference["service_name"]),
                "service_model": str(reference["service_model"]),
                "service_model_ref": str(reference["service_model_ref"]),
                "status": reference.get("status", "successful"),
                "external_link": reference.get("external_link"),
                "external_message": reference.get("external_message"),
                "external_status": reference.get("external_status"),
                "locked": bool(reference.get("locked", False)),
            }
            ref_id = self.insert("external_references", fields)
            key = (
                subject_type,
                fields["service_name"],
                fields["service_model"],
                fields["service_model_ref"],
            )
            self._refs.setdefault(key, set()).add(str(subject_id))
            return ref_id

    def set_custom_value(
        self, subject_type: str, subject_id: str, field_name: str, value: str
    ) -> str:
        """Set (or replace) a custom field value on a record; creates the field if new."""
        with self.lock:
            field_id = self._fields_by_name.get((subject_type, field_name))
            if field_id is None:
                field_id = self.insert(
                    "custom_fields",
                    {"name": field_name, "value_type": "string", "subject_type": subject_type},
                )
                self._fields_by_name[(subject_type, field_name)] = field_id
            values = self.tables["custom_field_values"].records
            for value_id in self._custom.get((subject_type, str(subject_id)), []):
                if values[value_id]["custom_field_id"] == field_id:
                    self.update(
                        "custom_field_values", value_id, {"value": value, "display_value": value}
                    )
                    return value_id
            value_id = self.insert(
                "custom_field_values",
                {
                    "subject_type": subject_type,
                    "subject_id": int(subject_id),
                    "custom_field_id": field_id,
                    "custom_field_name": field_name,
                    "value": value,
                    "display_value": value,
                    "type": "string",
                    "account_id": ACCOUNT_ID,
                },
            )
            self._custom.setdefault((subject_type, str(subject_id)), []).append(value_id)
            return value_id

    def require(self, key: str, record_id: str | int | None) -> Record:
        with self.lock:
            record = self.tables[key].records.get(str(record_id))
            if record is None:
                raise KeyError(f"no {key} record {record_id}")
            return record

    def add_story(
        self,
        workspace_id: str,
        title: str,
        *,
        story_type: str = "task",
        state: str = "not started",
        billable: bool = True,
        fixed_fee: bool = False,
        budget_estimate_in_cents: int | None = None,
        start_date: date | None = None,
        due_date: date | None = None,
        archived: bool = False,
        custom_fields: Mapping[str, str] | None = None,
    ) -> str:
        with self.lock:
            self.require("workspaces", workspace_id)
            story_id = self.insert(
                "stories",
                {
                    "title": title,
                    "description": "",
                    "story_type": story_type,
                    "state": state,
                    "status": state,
                    "workspace_id": str(workspace_id),
                    "billable": billable,
                    "fixed_fee": fixed_fee,
                    "budget_estimate_in_cents": budget_estimate_in_cents,
                    "start_date": start_date.isoformat() if start_date else None,
                    "due_date": due_date.isoformat() if due_date else None,
                    "archived": archived,
                    "percentage_complete": 100 if state == "completed" else 0,
                    "weight": None,
                },
            )
            for name, value in (custom_fields or {}).items():
                self.set_custom_value("Story", story_id, name, value)
            return story_id

    def add_time_entry(
        self,
        workspace_id: str,
        *,
        user_id: str,
        date_performed: date,
        time_in_minutes: int,
        billable: bool = True,
        rate_in_cents: int | None = None,
        story_id: str | None = None,
        role_id: str | None = None,
        notes: str = "",
    ) -> str:
        with self.lock:
            workspace = self.require("workspaces", workspace_id)
            user = self.require("users", user_id)
            if story_id is not None:
                self.require("stories", story_id)
            role = role_id or user.get("_role_id")
            return self.insert(
                "time_entries",
                {
                    "date_performed": date_performed.isoformat(),
                    "time_in_minutes": int(time_in_minutes),
                    "billable": billable,
                    "notes": notes,
                    "rate_in_cents": rate_in_cents,
                    "cost_rate_in_cents": None,
                    **currency_fields(workspace["currency"]),
                    "workspace_id": str(workspace_id),
                    "user_id": str(user_id),
                    "story_id": str(story_id) if story_id is not None else None,
                    "role_id": str(role) if role is not None else None,
                    "taxable": False,
                    "is_invoiced": False,
                    "_active_submission_id": None,
                },
            )

    def add_expense(
        self,
        workspace_id: str,
        *,
        user_id: str,
        expense_date: date,
        amount_in_cents: int,
        currency: str | None = None,
        category: str = "Travel",
        billable: bool = True,
        reimbursable: bool = True,
        notes: str = "",
        story_id: str | None = None,
    ) -> str:
        with self.lock:
            workspace = self.require("workspaces", workspace_id)
            self.require("users", user_id)
            return self.insert(
                "expenses",
                {
                    "date": expense_date.isoformat(),
                    "notes": notes,
                    "category": category,
                    "amount_in_cents": int(amount_in_cents),
                    **currency_fields(currency or workspace["currency"]),
                    "is_invoiced": False,
                    "is_billable": billable,
                    "taxable": False,
                    "reimbursable": reimbursable,
                    "workspace_id": str(workspace_id),
                    "user_id": str(user_id),
                    "story_id": str(story_id) if story_id is not None else None,
                    "expense_category_id": None,
                    "_active_submission_id": None,
                },
            )

    def submit(self, key: str, ids: Iterable[str], *, status: str) -> list[str]:
        """Put time entries or expenses on submissions (one per project and person)."""
        submission_key = (
            "timesheet_submissions" if key == "time_entries" else "expense_report_submissions"
        )
        kind = "TimesheetSubmission" if key == "time_entries" else "ExpenseReportSubmission"
        with self.lock:
            groups: dict[tuple[str, str], list[str]] = {}
            for record_id in ids:
                record = self.tables[key].records.get(str(record_id))
                if record is None:
                    raise KeyError(f"no {key} record {record_id}")
                groups.setdefault((record["workspace_id"], record["user_id"]), []).append(
                    record["id"]
                )
            created: list[str] = []
            for (workspace_id, user_id), line_ids in groups.items():
                submission_id = self.insert(
                    submission_key,
                    {
                        "status": status,
                        "title": f"{kind} for project {workspace_id}",
                        "type": kind,
                        "workspace_id": workspace_id,
                        "user_id": user_id,
                        "current_resolution_created_at_date": None,
                        "_line_ids": list(line_ids),
                    },
                )
                submission = self.tables[submission_key].records[submission_id]
                if status == "approved":
                    submission["current_resolution_created_at_date"] = submission["created_at"]
                created.append(submission_id)
                for line_id in line_ids:
                    self.update(key, line_id, {"_active_submission_id": submission_id})
            return created


def _public(record: Mapping[str, Any]) -> Record:
    return {k: v for k, v in record.items() if not k.startswith("_")}
