"""An emulated Kantata OX account's REST API v1, as an ASGI app (Starlette).

Endpoints, as the account serves them (``.json`` suffix optional, like Kantata's):

* ``POST /oauth/token`` - refresh-token and client-credentials grants;
* ``GET /api/v1/users/me`` - the signed-in user;
* ``GET /api/v1/{workspaces|workspace_groups|stories|time_entries|expenses|users|roles|
  subscribed_events}`` - filtered, ordered, paged lists in Kantata's envelope, with ``include``
  side-loads and ``only``; ``GET .../{id}`` - one record, 404 when missing or hidden by the
  endpoint's default filters;
* ``POST /api/v1/{workspaces|workspace_groups|stories|time_entries|expenses}`` - create, with
  Kantata's validation messages (422) and a nested ``external_reference``.

Every ``/api/v1`` request needs a live bearer token (401 ``oauth`` error otherwise). Simplified:
JSON bodies only (not Rails form encoding), single creates (not the bulk array form), no
update/delete routes (tests change records through the sandbox), one account.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from q2c.canonical.money import MINOR_UNITS
from q2c.connectors.kantata import wire
from q2c.connectors.kantata.queries import KantataApiError, QueryEngine, render
from q2c.connectors.kantata.server_auth import TokenRefusedError, TokenStore
from q2c.connectors.kantata.state import KantataState, Record

__all__ = ["build_app", "kantata_error_body"]

LISTABLE = {
    "workspaces", "workspace_groups", "stories", "time_entries", "expenses", "users", "roles",
    "subscribed_events",
}  # fmt: skip
# include name -> (foreign key on the record, collection it points into), per resource
SIDELOADS: dict[str, dict[str, tuple[str, str]]] = {
    "time_entries": {
        "role": ("role_id", "roles"),
        "user": ("user_id", "users"),
        "story": ("story_id", "stories"),
        "workspace": ("workspace_id", "workspaces"),
        "active_submission": ("_active_submission_id", "timesheet_submissions"),
    },
    "expenses": {
        "user": ("user_id", "users"),
        "story": ("story_id", "stories"),
        "workspace": ("workspace_id", "workspaces"),
        "active_submission": ("_active_submission_id", "expense_report_submissions"),
    },
    "stories": {"workspace": ("workspace_id", "workspaces")},
}
_ONE_KEY = {
    "workspaces": "workspace",
    "workspace_groups": "workspace_group",
    "stories": "story",
    "time_entries": "time_entry",
    "expenses": "expense",
}
STORY_TYPES = ("task", "deliverable", "milestone", "issue")


def kantata_error_body(status: int, kind: str) -> tuple[bytes, dict[str, str]]:
    """Body for an injected fault (``FaultInjector(error_body=...)``), as Kantata words it."""
    if status == 429:
        message = "Too many requests. Please retry your request after a small delay."
    elif status == 503:
        message = "Kantata OX is temporarily unavailable. Please try again later."
    else:
        message = f"An unexpected error occurred ({kind}). Please try again later."
    return wire.dumps(wire.error_body([{"type": "system", "message": message}])), {
        "content-type": "application/json; charset=utf-8"
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(wire.dumps(body), status_code=status, media_type="application/json")


def _number(params: Mapping[str, str], name: str, default: int) -> int:
    try:
        return int(params.get(name) or default)
    except ValueError:
        raise KantataApiError.one(400, "system", f"{name} must be an integer") from None


class _Api:
    def __init__(self, state: KantataState, tokens: TokenStore) -> None:
        self.state = state
        self.tokens = tokens
        self.engine = QueryEngine(state)
        self.creators: dict[str, Callable[[dict[str, Any]], str]] = {
            "workspaces": self._create_workspace,
            "workspace_groups": self._create_group,
            "stories": self._create_story,
            "time_entries": self._create_time_entry,
            "expenses": self._create_expense,
        }

    # --- plumbing -----------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        try:
            return _json(self.tokens.grant(form, request.headers.get("authorization")))
        except TokenRefusedError as refused:
            return _json(refused.body, refused.status)

    async def api(self, request: Request) -> Response:
        if not self.tokens.valid(request.headers.get("authorization")):
            return _json(
                wire.error_body([{"type": "oauth", "message": "Invalid OAuth 2 Request"}]), 401
            )
        parts = [p for p in request.path_params["path"].split("/") if p]
        if parts:
            parts[-1] = parts[-1].removesuffix(".json")
        try:
            return await self._route(request, parts)
        except KantataApiError as error:
            return _json(wire.error_body(error.errors), error.status)

    async def _route(self, request: Request, parts: list[str]) -> Response:
        params = dict(request.query_params)
        if parts == ["users", "me"] and request.method == "GET":
            return _json(self._page("users", [self.state.current_user_id], 1, 1, 1, set()))
        if len(parts) == 1 and parts[0] in LISTABLE and request.method == "GET":
            return _json(self._list(parts[0], params))
        if len(parts) == 2 and parts[0] in LISTABLE and request.method == "GET":
            ids = self.engine.matching_ids(parts[0], {**params, "only": parts[1]})
            if not ids:
                raise KantataApiError.one(404, "system", "Page Not Found")
            return _json(self._page(parts[0], ids, 1, 1, 1, _include(params)))
        if len(parts) == 1 and parts[0] in self.creators and request.method == "POST":
            try:
                body = wire.loads(await request.body() or b"{}")
            except ValueError:
                raise KantataApiError.one(400, "system", "The request body is not JSON") from None
            fields = body.get(_ONE_KEY[parts[0]]) if isinstance(body, dict) else None
            if not isinstance(fields, dict):
                raise KantataApiError.one(
                    400, "system", f"Expected a '{_ONE_KEY[parts[0]]}' object in the body"
                )
            with self.state.lock:
                record_id = self.creators[parts[0]](fields)
                return _json(self._page(parts[0], [record_id], 1, 1, 1, _include(params)))
        raise KantataApiError.one(404, "system", "Page Not Found")

    def _list(self, resource: str, params: Mapping[str, str]) -> dict[str, Any]:
        per_page = min(max(_number(params, "per_page", 20), 1), wire.MAX_PER_PAGE)
        page = max(_number(params, "page", 1), 1)
        with self.state.lock:
            ids = self.engine.matching_ids(resource, params)
            window = ids[(page - 1) * per_page : page * per_page]
            return self._page(resource, window, len(ids), page, per_page, _include(params))

    def _page(
        self, resource: str, ids: list[str], total: int, page: int, per_page: int, include: set[str]
    ) -> dict[str, Any]:
        state = self.state
        with state.lock:
            table = state.table(resource).records
            records = [table[i] for i in ids]
            body: dict[str, Any] = {
                "count": total,
                "meta": {
                    "count": total,
                    "page_count": math.ceil(total / per_page),
                    "page_number": page,
                    "page_size": per_page,
                },
                "results": [{"key": resource, "id": r["id"]} for r in records],
                resource: {r["id"]: render(state, resource, r, include) for r in records},
            }
            self._sideload(body, resource, records, include)
            return body

    def _sideload(
        self, body: dict[str, Any], resource: str, records: list[Record], include: set[str]
    ) -> None:
        state = self.state

        def add(collection: str, record_id: Any) -> None:
            record = state.table(collection).records.get(str(record_id or ""))
            if record is not None:
                body.setdefault(collection, {})[record["id"]] = render(
                    state, collection, record, set()
                )

        for name, (key, collection) in SIDELOADS.get(resource, {}).items():
            if name in include:
                for record in records:
                    add(collection, record.get(key))
        subject = {
            "workspaces": "Workspace",
            "workspace_groups": "WorkspaceGroup",
            "stories": "Story",
        }.get(resource)
        for record in records:
            if subject and "external_references" in include:
                for ref_id in state.reference_ids(subject, record["id"]):
                    add("external_references", ref_id)
            if subject and "custom_field_values" in include:
                for value_id in state.custom_value_ids(subject, record["id"]):
                    add("custom_field_values", value_id)
            if resource == "subscribed_events" and "subject" in include:
                ref = record["subject_ref"]
                add(ref["key"], ref["id"])

    # --- creates ------------------------------------------------------------------------

    def _create_workspace(self, fields: dict[str, Any]) -> str:
        errors: list[dict[str, str]] = []
        title = str(fields.get("title") or "").strip()
        if not title:
            errors.append(_invalid("Please give your project a title", "title"))
        if fields.get("creator_role") not in ("maven", "buyer"):
            errors.append(_invalid("Please select a role for this project", "creator_role"))
        currency = str(fields.get("currency") or "USD")
        if currency not in MINOR_UNITS:
            errors.append(_invalid("Currency is not included in the list", "currency"))
        start, due = _date(fields, "start_date", errors), _date(fields, "due_date", errors)
        if start and due and due < start:
            errors.append(_invalid("Due date must be on or after the start date", "due_date"))
        group_ids = [str(g) for g in fields.get("workspace_group_ids") or []]
        for group_id in group_ids:
            if self.state.get("workspace_groups", group_id) is None:
                errors.append(
                    _invalid(f"Workspace group {group_id} does not exist", "workspace_group_ids")
                )
        reference = _reference(fields, errors)
        _raise(errors)
        return self.state.add_workspace(
            title,
            currency=currency,
            group_ids=group_ids,
            description=str(fields.get("description") or ""),
            start_date=start,
            due_date=due,
            require_time_approvals=bool(fields.get("require_time_approvals", True)),
            require_expense_approvals=bool(fields.get("require_expense_approvals", True)),
            external_reference=reference,
        )

    def _create_group(self, fields: dict[str, Any]) -> str:
        errors: list[dict[str, str]] = []
        name = str(fields.get("name") or "").strip()
        if not name:
            errors.append(_invalid("Name can't be blank", "name"))
        if fields.get("company") not in (True, False):
            errors.append(_invalid("Company is not included in the list", "company"))
        reference = _reference(fields, errors)
        _raise(errors)
        return self.state.add_workspace_group(
            name, company=bool(fields["company"]), external_reference=reference
        )

    def _create_story(self, fields: dict[str, Any]) -> str:
        errors: list[dict[str, str]] = []
        title = str(fields.get("title") or "").strip()
        if not title:
            errors.append(_invalid("Title can't be blank", "title"))
        if fields.get("story_type") not in STORY_TYPES:
            errors.append(_invalid("Story type is not included in the list", "story_type"))
        self._workspace(fields, errors)
        _raise(errors)
        return self.state.add_story(
            str(fields["workspace_id"]),
            title,
            story_type=str(fields["story_type"]),
            state=str(fields.get("state") or "not started"),
            billable=bool(fields.get("billable", True)),
            budget_estimate_in_cents=_int_or_none(fields.get("budget_estimate_in_cents")),
        )

    def _create_time_entry(self, fields: dict[str, Any]) -> str:
        errors: list[dict[str, str]] = []
        self._workspace(fields, errors)
        performed = _date(fields, "date_performed", errors)
        if performed is None and not any(e["field"] == "date_performed" for e in errors):
            errors.append(_invalid("Date performed can't be blank", "date_performed"))
        minutes = fields.get("time_in_minutes")
        if minutes is None:
            errors.append(_invalid("Time in minutes can't be blank", "time_in_minutes"))
        elif not isinstance(minutes, int) or isinstance(minutes, bool) or minutes <= 0:
            errors.append(_invalid("Time in minutes must be greater than 0", "time_in_minutes"))
        _raise(errors)
        assert performed is not None and isinstance(minutes, int)
        return self.state.add_time_entry(
            str(fields["workspace_id"]),
            user_id=str(fields.get("user_id") or self.state.current_user_id),
            date_performed=performed,
            time_in_minutes=minutes,
            billable=bool(fields.get("billable", True)),
            rate_in_cents=_int_or_none(fields.get("rate_in_cents")),
            story_id=str(fields["story_id"]) if fields.get("story_id") else None,
            notes=str(fields.get("notes") or ""),
        )

    def _create_expense(self, fields: dict[str, Any]) -> str:
        errors: list[dict[str, str]] = []
        self._workspace(fields, errors)
        when = _date(fields, "date", errors)
        for name, label in (
            ("date", "Date"),
            ("category", "Category"),
            ("amount_in_cents", "Amount in cents"),
        ):
            if fields.get(name) in (None, "") and not any(e["field"] == name for e in errors):
                errors.append(_invalid(f"{label} can't be blank", name))
        amount = fields.get("amount_in_cents")
        if amount is not None and (not isinstance(amount, int) or isinstance(amount, bool)):
            errors.append(_invalid("Amount in cents is not a number", "amount_in_cents"))
        _raise(errors)
        assert when is not None and isinstance(amount, int)
        return self.state.add_expense(
            str(fields["workspace_id"]),
            user_id=str(fields.get("user_id") or self.state.current_user_id),
            expense_date=when,
            amount_in_cents=amount,
            category=str(fields["category"]),
            billable=bool(fields.get("billable", True)),
            notes=str(fields.get("notes") or ""),
        )

    def _workspace(self, fields: Mapping[str, Any], errors: list[dict[str, str]]) -> None:
        workspace_id = fields.get("workspace_id")
        if workspace_id in (None, ""):
            errors.append(_invalid("Workspace can't be blank", "workspace_id"))
        elif self.state.get("workspaces", str(workspace_id)) is None:
            errors.append(
                _invalid("Workspace does not exist or you do not have access to it", "workspace_id")
            )


def _invalid(message: str, field: str) -> dict[str, str]:
    return {"type": "validation", "message": message, "field": field}


def _raise(errors: list[dict[str, str]]) -> None:
    if errors:
        raise KantataApiError(422, errors)


def _date(fields: Mapping[str, Any], name: str, errors: list[dict[str, str]]) -> date | None:
    raw = fields.get(name)
    if raw in (None, ""):
        return None
    try:
        return date.fromisoformat(str(raw))
    except ValueError:
        errors.append(_invalid(f"{name.replace('_', ' ').capitalize()} is not a valid date", name))
        return None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and not isinstance(value, bool) else None


def _reference(fields: Mapping[str, Any], errors: list[dict[str, str]]) -> dict[str, Any] | None:
    reference = fields.get("external_reference")
    if reference is None:
        return None
    if not isinstance(reference, dict):
        errors.append(_invalid("External reference is invalid", "external_reference"))
        return None
    for key in ("service_name", "service_model", "service_model_ref"):
        if not str(reference.get(key) or "").strip():
            label = key.replace("_", " ")
            errors.append(
                _invalid(f"External reference {label} can't be blank", f"external_reference.{key}")
            )
    return reference


def _include(params: Mapping[str, str]) -> set[str]:
    return {p.strip() for p in (params.get("include") or "").split(",") if p.strip()}


def build_app(state: KantataState, tokens: TokenStore) -> Starlette:
    """The account's API over ``state``, accepting the tokens in ``tokens``."""
    api = _Api(state, tokens)
    return Starlette(
        routes=[
            Route("/oauth/token", api.token, methods=["POST"]),
            Route("/api/v1/{path:path}", api.api, methods=["GET", "POST", "PUT", "DELETE"]),
        ]
    )
