"""Kantata records <-> q2c values. Pure functions: no I/O, no clock.

Delivery mapping (the billing flow and the independent recomputation test rely on it):

* ``system_id`` is ``time_entry:<id>``, ``expense:<id>`` or ``story:<id>``: Kantata numbers
  each resource separately, so a bare id could name a time entry and an expense at once.
* ``project_ref`` is the workspace id; ``updated_at`` is the record's ``updated_at``.
* **time** (approved entries only): ``quantity`` = ``Decimal(time_in_minutes) / 60`` quantised
  to 0.000001 hour, ROUND_HALF_UP; unit ``hour``; ``work_date`` = ``date_performed``;
  ``role`` = name of the entry's Role (``role_id``: the person's project role, stamped on the
  entry by Kantata); ``service_item`` = the entry's task's custom field *Service Item* when
  set, else None (the rate card then prices by role); ``person`` = the user's full name;
  ``description`` = notes; ``billable`` = the entry's ``billable``; ``approved_at`` = when its
  timesheet was approved (None when the project needs no approval).
* **expense** (approved only): ``quantity`` 1, unit ``each``; ``amount`` = exact Money of
  ``amount_in_cents / currency_base_unit`` in the expense's own currency; ``expense_category``
  = ``category``; ``billable`` = ``is_billable``; ``work_date`` = ``date``; ``approved_at`` as
  for time (expense report).
* **milestone** (stories with ``story_type`` milestone and ``state`` completed): quantity 1,
  unit ``each``; ``percent`` = the task's custom field *Billing Percent* when set, otherwise
  ``amount`` = its ``budget_estimate_in_cents`` in the project's currency when set and non-zero;
  ``work_date`` = ``due_date``, else the day it was last updated; ``description`` = title;
  ``service_item`` = custom field *Service Item* or None; ``billable`` = the task's billable.

The hub's event id for a record is ``f"{system_id}@{updated_at}"`` (``event_id``): the same
version read twice (the watermark overlap) is the same event; a later edit is a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from q2c.canonical.models import Project
from q2c.canonical.money import Money, minor_units
from q2c.connectors.kantata import wire
from q2c.errors import ValidationError
from q2c.flows.ports import DeliveryRecord

__all__ = [
    "BILLING_PERCENT_FIELD",
    "SERVICE_ITEM_FIELD",
    "MappingRules",
    "Sideloads",
    "custom_values",
    "event_id",
    "expense_record",
    "group_body",
    "hours",
    "milestone_record",
    "subunits",
    "time_record",
    "workspace_body",
]

SYSTEM = "kantata"
SERVICE_ITEM_FIELD = "Service Item"
BILLING_PERCENT_FIELD = "Billing Percent"
HOUR_QUANTUM = Decimal("0.000001")
Record = Mapping[str, Any]


@dataclass(frozen=True)
class MappingRules:
    """Which custom fields carry q2c's meaning (names as set up in the Kantata account)."""

    service_item_field: str = SERVICE_ITEM_FIELD
    billing_percent_field: str = BILLING_PERCENT_FIELD


@dataclass(frozen=True)
class Sideloads:
    """The top-level collections of one or more responses (``include=`` associations)."""

    tables: Mapping[str, Any]

    def get(self, collection: str, record_id: Any) -> Record | None:
        if record_id in (None, ""):
            return None
        table = self.tables.get(collection)
        record = table.get(str(record_id)) if isinstance(table, Mapping) else None
        return record if isinstance(record, Mapping) else None


def hours(minutes: Any) -> Decimal:
    """Minutes as hours, exact to a millionth of an hour (ROUND_HALF_UP)."""
    return (Decimal(int(minutes)) / Decimal(60)).quantize(HOUR_QUANTUM, rounding=ROUND_HALF_UP)


def subunits(amount: Any, currency: str, base_unit: Any = None, *, what: str) -> Money:
    """``amount_in_cents`` as exact Money: over ``currency_base_unit`` (else ISO minor units)."""
    try:
        unit = int(base_unit) if base_unit else 10 ** minor_units(currency)
        value = Decimal(int(amount))
        exponent = len(str(unit)) - 1
        scaled = value.scaleb(-exponent) if unit == 10**exponent else value / Decimal(unit)
        return Money(scaled, currency)
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise ValidationError(
            f"Kantata {what} has an amount q2c cannot read: {amount!r} {currency!r}",
            detail=f"{type(exc).__name__}: {exc}",
            suggested_fix="Correct the amount or currency in Kantata, then replay.",
            field="currency",
            system=SYSTEM,
        ) from exc


def _approved_at(record: Record, side: Sideloads, collection: str) -> datetime | None:
    submission = side.get(collection, record.get("active_submission_id"))
    stamp = submission.get("current_resolution_created_at_date") if submission else None
    if submission and submission.get("status") == "approved" and isinstance(stamp, str):
        return wire.parse_timestamp(stamp)
    return None


def _person(record: Record, side: Sideloads) -> str | None:
    user = side.get("users", record.get("user_id"))
    if user and user.get("full_name"):
        return str(user["full_name"])
    return str(record["user_id"]) if record.get("user_id") not in (None, "") else None


def custom_values(record: Record, side: Sideloads) -> dict[str, str]:
    """A record's custom field values by field name (``include=custom_field_values``)."""
    out: dict[str, str] = {}
    for value_id in record.get("custom_field_value_ids") or []:
        value = side.get("custom_field_values", value_id)
        if value and value.get("custom_field_name") and value.get("value") not in (None, ""):
            out[str(value["custom_field_name"])] = str(value["value"]).strip()
    return out


def time_record(entry: Record, side: Sideloads, *, service_item: str | None) -> DeliveryRecord:
    role = side.get("roles", entry.get("role_id"))
    return DeliveryRecord(
        kind="time",
        system_id=f"time_entry:{entry['id']}",
        project_ref=str(entry["workspace_id"]),
        work_date=wire.parse_date(entry["date_performed"]),
        quantity=hours(entry["time_in_minutes"]),
        unit="hour",
        updated_at=wire.parse_timestamp(entry["updated_at"]),
        approved_at=_approved_at(entry, side, "timesheet_submissions"),
        role=str(role["name"]) if role and role.get("name") else None,
        service_item=service_item or None,
        person=_person(entry, side),
        description=str(entry.get("notes") or ""),
        billable=bool(entry.get("billable")),
    )


def expense_record(expense: Record, side: Sideloads) -> DeliveryRecord:
    billable = expense.get("is_billable", expense.get("billable"))
    return DeliveryRecord(
        kind="expense",
        system_id=f"expense:{expense['id']}",
        project_ref=str(expense["workspace_id"]),
        work_date=wire.parse_date(expense["date"]),
        quantity=Decimal(1),
        unit="each",
        updated_at=wire.parse_timestamp(expense["updated_at"]),
        approved_at=_approved_at(expense, side, "expense_report_submissions"),
        person=_person(expense, side),
        amount=subunits(
            expense["amount_in_cents"],
            str(expense.get("currency") or ""),
            expense.get("currency_base_unit"),
            what=f"expense {expense['id']}",
        ),
        description=str(expense.get("notes") or ""),
        expense_category=str(expense["category"]) if expense.get("category") else None,
        billable=bool(billable),
    )


def milestone_record(story: Record, side: Sideloads, rules: MappingRules) -> DeliveryRecord:
    values = custom_values(story, side)
    percent = _percent(values.get(rules.billing_percent_field), story)
    amount = None
    budget = story.get("budget_estimate_in_cents")
    workspace = side.get("workspaces", story.get("workspace_id")) or {}
    if percent is None and budget not in (None, 0) and workspace.get("currency"):
        amount = subunits(
            budget,
            str(workspace["currency"]),
            workspace.get("currency_base_unit"),
            what=f"milestone {story['id']}",
        )
    updated_at = wire.parse_timestamp(story["updated_at"])
    due = story.get("due_date")
    return DeliveryRecord(
        kind="milestone",
        system_id=f"story:{story['id']}",
        project_ref=str(story["workspace_id"]),
        work_date=wire.parse_date(due) if due else updated_at.date(),
        quantity=Decimal(1),
        unit="each",
        updated_at=updated_at,
        service_item=values.get(rules.service_item_field) or None,
        amount=amount,
        percent=percent,
        description=str(story.get("title") or ""),
        billable=bool(story.get("billable", True)),
    )


def _percent(raw: str | None, story: Record) -> Decimal | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = Decimal(raw.strip().rstrip("%").strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 <= value <= 100:
        raise ValidationError(
            f"Kantata milestone '{story.get('title')}' ({story['id']}) has a billing percent "
            f"q2c cannot use: {raw!r}",
            suggested_fix="Set the milestone's Billing Percent to a number from 0 to 100 in "
            "Kantata, then replay.",
            field="billing_percent",
            system=SYSTEM,
        )
    return value


def event_id(record: DeliveryRecord) -> str:
    """The hub's event id: one per version of a record (``time_entry:7@2025-01-06T09:00:01Z``)."""
    return f"{record.system_id}@{wire.format_timestamp(record.updated_at)}"


def _reference(service_name: str, model: str, external_id: str) -> dict[str, str]:
    return {
        "service_name": service_name,
        "service_model": model,
        "service_model_ref": external_id,
        "status": "successful",
    }


def group_body(name: str, *, customer_ref: str, service_name: str) -> dict[str, Any]:
    """A client company as a Workspace Group, linked to q2c's customer id."""
    return {
        "workspace_group": {
            "name": name,
            "company": True,
            "external_reference": _reference(service_name, "customer", customer_ref),
        }
    }


def workspace_body(
    project: Project, *, external_id: str, group_id: str | None, service_name: str
) -> dict[str, Any]:
    """A project as a Kantata workspace, linked to q2c by an external reference."""
    fields: dict[str, Any] = {
        "title": project.name,
        "creator_role": "maven",  # q2c works for the provider (consultant) side
        "description": f"{project.code} - provisioned by q2c",
        "start_date": project.start_date.isoformat(),
        "external_reference": _reference(service_name, "project", external_id),
    }
    if project.end_date is not None:
        fields["due_date"] = project.end_date.isoformat()
    if group_id is not None:
        fields["workspace_group_ids"] = [group_id]
    return {"workspace": fields}
