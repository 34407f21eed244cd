"""Tryton as q2c's PSA: projects (``project.work``) and time (``timesheet.line``).

Time is logged in Tryton as ``timesheet.line`` (employee, date, duration, the work's timesheet
work). Tryton's timesheet module has no approval step: every line counts as approved. Hours
are the line's duration in hours, exact to 1/1,000,000 of an hour (half-even), as
``DeliveryRecord`` documents. ``project_ref`` is the id of the *project* the line belongs to
(the root of the task tree, from ``project.work.path``), and ``service_item`` the code of the
product set on the task or project (``project_revenue``), if any.

Watermark: ``<last change, ISO>|<line id>`` where the last change is ``write_date`` (or
``create_date`` for a line never edited), server time (UTC); the next call returns lines changed
at or after that instant, minus the ones already returned, so none is skipped when several
lines share a timestamp.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from q2c.canonical.models import Project
from q2c.connectors.tryton.base import TrytonBase
from q2c.connectors.tryton.payloads import duration_from, hours_from
from q2c.errors import ConfigError, ValidationError
from q2c.flows.ports import DeliveryPage, DeliveryRecord, ErpRecordRef

__all__ = ["TrytonPsa"]

SYSTEM = "tryton"
LINE_FIELDS = [
    "date", "duration", "work", "work.origin", "employee.rec_name", "description",
    "create_date", "write_date",
]  # fmt: skip


class TrytonPsa(TrytonBase):
    """Projects and approved time as Tryton's project and timesheet modules hold them."""

    def approved_delivery_since(self, watermark: str | None) -> DeliveryPage:
        since, last_id = _parse_watermark(watermark)
        domain: list[Any] = []
        if since is not None:
            domain = [
                "OR",
                [["write_date", ">=", since]],
                [["write_date", "=", None], ["create_date", ">=", since]],
            ]
        rows = list(self.rpc.iter_search_read("timesheet.line", domain, LINE_FIELDS))
        changed = [(_changed_at(row), int(row["id"]), row) for row in rows]
        if since is not None:
            changed = [c for c in changed if (c[0], c[1]) > (since, last_id)]
        changed.sort(key=lambda c: (c[0], c[1]))
        projects = self._projects_of([row for _, _, row in changed])
        records = [
            DeliveryRecord(
                kind="time",
                system_id=str(line_id),
                project_ref=projects[_work_of(row)][0],
                work_date=row["date"],
                quantity=hours_from(row["duration"] or dt.timedelta(0)),
                unit="hour",
                updated_at=when.replace(tzinfo=dt.UTC),
                person=(row.get("employee.") or {}).get("rec_name"),
                service_item=projects[_work_of(row)][1],
                description=str(row["description"] or ""),
            )
            for when, line_id, row in changed
            if _work_of(row) in projects
        ]
        if not changed:
            return DeliveryPage(records, watermark)
        when, line_id, _ = changed[-1]
        return DeliveryPage(records, f"{when.isoformat()}|{line_id}")

    def upsert_project(
        self, project: Project, *, external_id: str, customer_name: str
    ) -> ErpRecordRef:
        rows = self.rpc.search_read(
            "party.party", [["name", "ilike", customer_name]], ["name"], order=[("id", "ASC")]
        )
        wanted = customer_name.strip().casefold()
        parties = [int(r["id"]) for r in rows if str(r["name"]).strip().casefold() == wanted]
        return self.upsert_work(
            project,
            external_id=external_id,
            party=parties[0] if parties else None,
            company=self.company_id,
        )

    def log_time(
        self,
        project_erp_id: str,
        *,
        hours: Decimal,
        on: dt.date,
        description: str = "",
        employee: int | None = None,
    ) -> str:
        """Record time on a project (or task) the way an employee does; returns the line id."""
        (work,) = self.rpc.read("project.work", [int(project_erp_id)], ["timesheet_works"])
        if not work["timesheet_works"]:
            raise ValidationError(
                f"Project {project_erp_id} does not take timesheets in Tryton",
                detail="project.work has no timesheet work",
                system=SYSTEM,
            )
        employee = employee or self.rpc.context.get("employee")
        if not isinstance(employee, int):
            raise ConfigError("q2c's Tryton user is not an employee", system=SYSTEM)
        values = {
            "company": self.company_id,
            "employee": employee,
            "date": on,
            "duration": duration_from(hours),
            "work": work["timesheet_works"][0],
            "description": description,
        }
        (line_id,) = self.rpc.create("timesheet.line", [values])
        return str(line_id)

    def _projects_of(self, rows: list[dict[str, Any]]) -> dict[int, tuple[str, str | None]]:
        """timesheet work id -> (project id, product code of the task or project)."""
        works: dict[int, int] = {}
        for row in rows:
            origin = str((row.get("work.") or {}).get("origin") or "")
            model, _, ident = origin.partition(",")
            if model == "project.work" and ident.isdigit():
                works[_work_of(row)] = int(ident)
        if not works:
            return {}
        tasks = {
            int(t["id"]): t
            for t in self.rpc.read(
                "project.work", sorted(set(works.values())), ["path", "product.code"]
            )
        }
        result: dict[int, tuple[str, str | None]] = {}
        for timesheet_work, task_id in works.items():
            task = tasks[task_id]
            root = str(task["path"] or f"{task_id}/").split("/")[0]
            product = (task.get("product.") or {}).get("code")
            result[timesheet_work] = (root, product)
        return result


def _work_of(row: dict[str, Any]) -> int:
    return int(row["work"])


def _changed_at(row: dict[str, Any]) -> dt.datetime:
    value = row["write_date"] or row["create_date"]
    return value if isinstance(value, dt.datetime) else dt.datetime.min


def _parse_watermark(watermark: str | None) -> tuple[dt.datetime | None, int]:
    if not watermark:
        return None, 0
    stamp, _, last = watermark.partition("|")
    try:
        return dt.datetime.fromisoformat(stamp), int(last or 0)
    except ValueError:
        raise ValidationError(
            f"The Tryton time watermark {watermark!r} is not one q2c wrote",
            detail="expected '<ISO datetime>|<timesheet line id>'",
            system=SYSTEM,
        ) from None
