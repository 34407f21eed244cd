"""The emulator's index routes: filters, ordering, pagination and side-loads, per resource.

A list request is turned into a ``Query`` (the resource's documented filters that matter to
q2c, with the same defaults Kantata applies: archived projects and tasks are left out unless
asked for). Matching ids are computed once per (query, table version) and cached, so paging
through 10,000 time entries 200 at a time costs O(page) per request after the first; an
``updated_after`` filter starts from a bisect of the table's ``updated_at`` index.

Simplified: only the filters and ``order`` values q2c, its tests and the demo use are
implemented; others are accepted and ignored (Kantata ignores unknown parameters too), except
that an ``order`` outside the endpoint's documented list is refused with a 400.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from q2c.connectors.kantata import wire
from q2c.connectors.kantata.state import KantataState, Record

__all__ = ["ORDERS", "KantataApiError", "Query", "QueryEngine", "render"]

Predicate = Callable[[Record], bool]

# documented ``order`` values per endpoint (Kantata OX API reference), and their defaults
ORDERS: dict[str, tuple[tuple[str, ...], str]] = {
    "time_entries": (("created_at", "date_performed", "updated_at"), "date_performed:desc"),
    "expenses": (("amount", "category", "created_at", "date", "notes"), "date:desc"),
    "stories": (("created_at", "due_date", "start_date", "updated_at"), "updated_at:desc"),
    "workspaces": (("created_at", "updated_at", "title"), "created_at:desc"),
    "workspace_groups": (("created_at", "name"), "created_at:desc"),
    "users": (("created_at", "full_name"), "created_at:asc"),
    "roles": (("created_at", "name"), "created_at:asc"),
    "subscribed_events": (("created_at",), "created_at:asc"),
}
_ORDER_FIELDS = {"amount": "amount_in_cents", "date": "date"}
_SUBJECTS = {
    "workspaces": "Workspace",
    "workspace_groups": "WorkspaceGroup",
    "time_entries": "TimeEntry",
    "expenses": "Expense",
    "stories": "Story",
}


class KantataApiError(Exception):
    """An error response as Kantata words it."""

    def __init__(self, status: int, errors: list[dict[str, str]]) -> None:
        super().__init__(errors[0]["message"] if errors else str(status))
        self.status = status
        self.errors = errors

    @classmethod
    def one(cls, status: int, kind: str, message: str, field: str | None = None) -> KantataApiError:
        entry = {"type": kind, "message": message}
        if field:
            entry["field"] = field
        return cls(status, [entry])


def _flag(params: Mapping[str, str], name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    return raw.strip().lower() in ("true", "1", "yes", "t")


def _when(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return wire.parse_timestamp(raw)
    except ValueError:
        raise KantataApiError.one(
            400, "system", f"{name} must be an ISO 8601 date-time with a time zone, got {raw!r}"
        ) from None


def _ids(params: Mapping[str, str], name: str) -> set[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


@dataclass(frozen=True)
class Query:
    resource: str
    params: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, resource: str, params: Mapping[str, str]) -> Query:
        ignored = {"page", "per_page", "include", "optional_fields"}
        kept = tuple(sorted((k, v) for k, v in params.items() if k not in ignored))
        return cls(resource, kept)


class QueryEngine:
    """Filter + order + cache over a ``KantataState``."""

    def __init__(self, state: KantataState, cache_size: int = 64) -> None:
        self.state = state
        self._cache: OrderedDict[Query, tuple[int, list[str]]] = OrderedDict()
        self._cache_size = cache_size

    def matching_ids(self, resource: str, params: Mapping[str, str]) -> list[str]:
        query = Query.of(resource, params)
        with self.state.lock:
            table = self.state.table(resource)
            cached = self._cache.get(query)
            if cached is not None and cached[0] == table.version:
                self._cache.move_to_end(query)
                return cached[1]
            ids = self._compute(resource, params)
            self._cache[query] = (table.version, ids)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
            return ids

    def _compute(self, resource: str, params: Mapping[str, str]) -> list[str]:
        table = self.state.table(resource)
        stamp = "created" if resource == "subscribed_events" else "updated"
        after, before = _when(params, f"{stamp}_after"), _when(params, f"{stamp}_before")
        if after is not None:
            candidates = table.updated_after(after)
        elif before is not None:
            candidates = table.updated_before(before)
        else:
            candidates = list(table.records)
        checks = self._predicates(resource, params)
        if before is not None and after is not None:
            checks.append(lambda r: r["updated_at"] < before)
        only = _ids(params, "only")
        if only is not None:
            candidates = [c for c in candidates if c in only]
        records = table.records
        matched = [records[i] for i in candidates if all(check(records[i]) for check in checks)]
        field, descending = self._order(resource, params)
        if field == "title" or field == "name" or field == "full_name" or field == "category":
            matched.sort(
                key=lambda r: (str(r.get(field) or "").lower(), int(r["id"])), reverse=descending
            )
        else:
            matched.sort(key=lambda r: (_sortable(r.get(field)), int(r["id"])), reverse=descending)
        return [r["id"] for r in matched]

    def _order(self, resource: str, params: Mapping[str, str]) -> tuple[str, bool]:
        allowed, default = ORDERS.get(resource, (("created_at",), "created_at:asc"))
        raw = params.get("order") or default
        name, _, direction = raw.partition(":")
        if name not in allowed or direction not in ("asc", "desc"):
            valid = ", ".join(f"{a}:asc, {a}:desc" for a in allowed)
            raise KantataApiError.one(
                400, "system", f"Invalid order '{raw}' for {resource}. Valid values: {valid}"
            )
        return _ORDER_FIELDS.get(name, name), direction == "desc"

    def _predicates(self, resource: str, params: Mapping[str, str]) -> list[Predicate]:
        state = self.state
        checks: list[Predicate] = []
        subject = _SUBJECTS.get(resource)
        if subject and params.get("external_reference_service_name"):
            refs = _ids(params, "external_reference_service_model_refs") or set()
            if params.get("external_reference_service_model_ref"):
                refs.add(params["external_reference_service_model_ref"])
            owners = state.subjects_with_reference(
                subject,
                params["external_reference_service_name"],
                params.get("external_reference_service_model", ""),
                refs,
            )
            checks.append(lambda r: r["id"] in owners)
        workspaces = state.table("workspaces").records
        if resource in ("time_entries", "expenses"):
            checks += self._line_item_checks(resource, params, workspaces)
        elif resource == "stories":
            checks += self._story_checks(params, workspaces)
        elif resource == "workspaces":
            archived = params.get("archived")
            if archived == "only":
                checks.append(lambda r: bool(r["archived"]))
            elif not (_flag(params, "include_archived") or archived == "include"):
                checks.append(lambda r: not r["archived"])
        elif resource == "subscribed_events":
            types = _ids(params, "event_types")
            if types:
                checks.append(lambda r: r["event_type"] in types)
        return checks

    def _line_item_checks(
        self, resource: str, params: Mapping[str, str], workspaces: Mapping[str, Record]
    ) -> list[Predicate]:
        state = self.state
        checks: list[Predicate] = []
        if "approved" in params:  # "always processed as true; the value you provide is ignored"
            checks.append(lambda r: state.is_approved(resource, r))
        billable = _flag(params, "billable")
        if billable is not None:
            name = "billable" if resource == "time_entries" else "is_billable"
            checks.append(lambda r: bool(r[name]) == billable)
        if params.get("workspace_id"):
            workspace_id = params["workspace_id"]
            checks.append(lambda r: r["workspace_id"] == workspace_id)
        workspace_ids = _ids(params, "workspace_ids")
        if workspace_ids:
            checks.append(lambda r: r["workspace_id"] in workspace_ids)
        if not _flag(params, "from_archived_workspaces"):
            checks.append(lambda r: not workspaces[r["workspace_id"]]["archived"])
        return checks

    def _story_checks(
        self, params: Mapping[str, str], workspaces: Mapping[str, Record]
    ) -> list[Predicate]:
        checks: list[Predicate] = []
        types = _ids(params, "story_types") or _ids(params, "story_type")
        if types:
            checks.append(lambda r: r["story_type"] in types)
        if _flag(params, "completed"):
            checks.append(lambda r: r["state"] == "completed")
        if _flag(params, "uncompleted"):
            checks.append(lambda r: r["state"] != "completed")
        if params.get("workspace_id"):
            workspace_id = params["workspace_id"]
            checks.append(lambda r: r["workspace_id"] == workspace_id)
        if not (_flag(params, "show_archived") or params.get("archived") in ("include", "only")):
            checks.append(lambda r: not r["archived"])
        if params.get("archived") == "only" or _flag(params, "only_archived"):
            checks.append(lambda r: bool(r["archived"]))
        if not _flag(params, "show_from_archived_workspaces") and "only" not in params:
            checks.append(lambda r: not workspaces[r["workspace_id"]]["archived"])
        return checks


def _sortable(value: Any) -> Any:
    return "" if value is None else value


def render(state: KantataState, resource: str, record: Record, include: set[str]) -> Record:
    """A record as the API shows it: internals dropped, computed fields and include ids added."""
    out: Record = {k: v for k, v in record.items() if not k.startswith("_")}
    if resource in ("time_entries", "expenses"):
        if resource == "time_entries":
            out["approved"] = state.is_approved(resource, record)
        if "active_submission" in include:
            out["active_submission_id"] = record.get("_active_submission_id")
    subject = _SUBJECTS.get(resource)
    if subject and "external_references" in include:
        out["external_reference_ids"] = state.reference_ids(subject, record["id"])
    if subject and "custom_field_values" in include:
        out["custom_field_value_ids"] = state.custom_value_ids(subject, record["id"])
    return out
