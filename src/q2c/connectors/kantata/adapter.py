"""Kantata OX (formerly Mavenlink) as q2c's PSA: ``PsaPort`` over the REST API v1.

*Reading delivery.* Three list calls, each paged (``page``/``per_page`` up to 200, following
``meta.page_count``): approved time entries (``approved``), approved expenses (``approved``)
and completed milestones (``story_type=milestone&completed=true``), all ``updated_after`` the
watermark minus an overlap and ordered ``created_at:asc``. Creation order does not move while
we page (an edit changes ``updated_at``, not position; new records append at the end), so
paging never skips a record; what changed behind us is picked up by the next poll, because the
overlap (default 5 minutes, longer than a poll takes) re-reads the recent past. A record read
twice in one poll is kept once (latest version). Side-loads (``include=role,user,
active_submission`` / ``workspace,custom_field_values``) bring roles, people, approval times
and milestone currencies in the same responses; task service items are fetched once per task
(``only=`` in batches of 200) and cached for the poll. Mapping rules live in ``payloads.py``.

*Creating projects.* ``upsert_project`` is idempotent by external reference: it looks for a
workspace linked to ``external_id`` (``external_reference_service_name=q2c``,
``service_model=project``, archived included) and creates one only if none exists, carrying the
external reference in the same POST - so a create that timed out after Kantata applied it is
found by the retry instead of duplicated. The client company is a Workspace Group found or
created the same way (``service_model=customer``, ref = q2c's customer id).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

import httpx

from q2c.canonical.models import Project
from q2c.connectors.http import ExchangeRecorder, RestClient, TokenBucket
from q2c.connectors.kantata import wire
from q2c.connectors.kantata.auth import KantataAuth
from q2c.connectors.kantata.errors import translate_error
from q2c.connectors.kantata.payloads import (
    MappingRules,
    Sideloads,
    custom_values,
    expense_record,
    group_body,
    milestone_record,
    time_record,
    workspace_body,
)
from q2c.connectors.kantata.webhooks import ChangeNotice, parse_change_events
from q2c.errors import BusinessFixError, ConfigError, FatalError, ValidationError
from q2c.flows.ports import DeliveryPage, DeliveryRecord, ErpRecordRef

__all__ = [
    "DEFAULT_OVERLAP",
    "SERVICE_NAME",
    "KantataPsa",
    "connect_kantata",
]

SYSTEM = "kantata"
SERVICE_NAME = "q2c"  # provider name on the external references q2c writes
DEFAULT_OVERLAP = timedelta(minutes=5)
_JSON = {"Content-Type": "application/json", "Accept": "application/json"}
_DELIVERY_EVENTS = (
    "time_entry:created,time_entry:updated,time_entry:deleted,expense:created,expense:updated,"
    "expense:deleted,story:created,story:updated,story:deleted"
)

Record = dict[str, Any]


class KantataPsa:
    """The PSA port for one Kantata OX account."""

    system = SYSTEM

    def __init__(
        self,
        rest: RestClient,
        *,
        base_url: str = wire.DEFAULT_BASE_URL,
        page_size: int = wire.MAX_PER_PAGE,
        overlap: timedelta = DEFAULT_OVERLAP,
        rules: MappingRules | None = None,
        service_name: str = SERVICE_NAME,
    ) -> None:
        if not 1 <= page_size <= wire.MAX_PER_PAGE:
            raise ValueError(f"Kantata pages hold 1 to {wire.MAX_PER_PAGE} records")
        if overlap < timedelta(0):
            raise ValueError("the watermark overlap cannot be negative")
        self.rest = rest
        self.base_url = base_url.rstrip("/")
        self.page_size = page_size
        self.overlap = overlap
        self.rules = rules or MappingRules()
        self.service_name = service_name

    # --- PsaPort ---------------------------------------------------------------------------

    def approved_delivery_since(self, watermark: str | None) -> DeliveryPage:
        """Approved time and expenses and completed milestones changed after ``watermark``."""
        since = None if watermark is None else wire.parse_timestamp(watermark) - self.overlap
        window = {"updated_after": wire.format_timestamp(since)} if since else {}
        latest: dict[str, DeliveryRecord] = {}
        for record in self._delivery(window, only=None):
            kept = latest.get(record.system_id)
            if kept is None or record.updated_at >= kept.updated_at:
                latest[record.system_id] = record
        records = sorted(latest.values(), key=lambda r: (r.updated_at, r.system_id))
        newest = max((r.updated_at for r in records), default=None)
        if newest is not None and watermark is not None:
            newest = max(newest, wire.parse_timestamp(watermark))
        return DeliveryPage(
            records, wire.format_timestamp(newest) if newest is not None else watermark
        )

    def upsert_project(
        self, project: Project, *, external_id: str, customer_name: str
    ) -> ErpRecordRef:
        """Find the workspace linked to ``external_id``, or create it (with its client group)."""
        _check_ref(external_id, "external_id")
        found = self.find_workspace(external_id)
        if found is not None:
            return ErpRecordRef(erp_id=str(found["id"]), external_id=external_id)
        group_id = self._client_group(project.customer_id, customer_name)
        body = workspace_body(
            project, external_id=external_id, group_id=group_id, service_name=self.service_name
        )
        created = self._post("/workspaces.json", body, "workspaces")
        return ErpRecordRef(erp_id=str(created["id"]), external_id=external_id)

    # --- more reads --------------------------------------------------------------------

    def find_workspace(self, external_id: str) -> Record | None:
        """The workspace q2c linked to ``external_id`` (archived ones included), if any."""
        return self._linked("workspaces", "project", external_id, {"include_archived": "true"})

    def current_user(self) -> Record:
        """The user q2c signs in as (a cheap authenticated call)."""
        body = self._get("/users/me.json", {})
        users = wire.result_records(body, "users")
        if not users:
            raise FatalError(
                "Kantata did not say who q2c is signed in as", system=SYSTEM, detail=str(body)[:500]
            )
        return users[0]

    def delivery_for(self, notices: Iterable[ChangeNotice]) -> list[DeliveryRecord]:
        """The current delivery records behind change notices (unapproved ones drop out)."""
        wanted: dict[str, set[str]] = {}
        for notice in notices:
            if notice.may_be_delivery and not notice.deleted:
                wanted.setdefault(notice.resource, set()).add(notice.record_id)
        records: list[DeliveryRecord] = []
        for resource, ids in wanted.items():
            ordered = sorted(ids, key=lambda i: (len(i), i))
            for start in range(0, len(ordered), wire.MAX_PER_PAGE):
                only = ",".join(ordered[start : start + wire.MAX_PER_PAGE])
                records += self._delivery({}, only=(resource, only))
        return sorted(records, key=lambda r: (r.updated_at, r.system_id))

    def change_events_since(self, after: str | None) -> tuple[list[ChangeNotice], str | None]:
        """Delivery changes from the Subscribed Events feed; returns the cursor to poll from."""
        params = {"event_types": _DELIVERY_EVENTS, "order": "created_at:asc"}
        if after:
            params["created_after"] = after
        events: list[Record] = []
        for page, _ in self._pages("subscribed_events", params):
            events += page
        stamps = [wire.parse_timestamp(e["created_at"]) for e in events if e.get("created_at")]
        cursor = wire.format_timestamp(max(stamps)) if stamps else after
        return parse_change_events(events), cursor

    # --- internals -----------------------------------------------------------------------

    def _delivery(
        self, window: Mapping[str, str], *, only: tuple[str, str] | None
    ) -> Iterator[DeliveryRecord]:
        def wanted(resource: str) -> bool:
            return only is None or only[0] == resource

        def scoped(params: dict[str, str]) -> dict[str, str]:
            return {**params, **window, **({"only": only[1]} if only else {})}

        if wanted("time_entries"):
            items: dict[str, str | None] = {}
            params = {
                "approved": "true",
                "from_archived_workspaces": "true",
                "include": "role,user,active_submission",
                "order": "created_at:asc",
            }
            for entries, side in self._pages("time_entries", scoped(params)):
                self._load_service_items(entries, items)
                for entry in entries:
                    if entry.get("approved", True):
                        story = entry.get("story_id")
                        yield time_record(entry, side, service_item=items.get(str(story)))
        if wanted("expenses"):
            params = {
                "approved": "true",
                "from_archived_workspaces": "true",
                "include": "user,active_submission",
                "order": "created_at:asc",
            }
            for expenses, side in self._pages("expenses", scoped(params)):
                for expense in expenses:
                    yield expense_record(expense, side)
        if wanted("stories"):
            params = {
                "story_type": "milestone",
                "completed": "true",
                "all_on_account": "true",
                "show_archived": "true",
                "show_from_archived_workspaces": "true",
                "include": "workspace,custom_field_values",
                "order": "created_at:asc",
            }
            for stories, side in self._pages("stories", scoped(params)):
                for story in stories:
                    if story.get("story_type") == "milestone" and story.get("state") == "completed":
                        yield milestone_record(story, side, self.rules)

    def _load_service_items(self, entries: list[Record], cache: dict[str, str | None]) -> None:
        story_ids = {str(e["story_id"]) for e in entries if e.get("story_id") not in (None, "")}
        missing = sorted(story_ids - cache.keys(), key=lambda i: (len(i), i))
        for start in range(0, len(missing), wire.MAX_PER_PAGE):
            chunk = missing[start : start + wire.MAX_PER_PAGE]
            params = {
                "only": ",".join(chunk),
                "include": "custom_field_values",
                "show_archived": "true",
                "show_from_archived_workspaces": "true",
            }
            for stories, side in self._pages("stories", params):
                for story in stories:
                    values = custom_values(story, side)
                    cache[str(story["id"])] = values.get(self.rules.service_item_field)
            for story_id in chunk:
                cache.setdefault(story_id, None)

    def _pages(
        self, resource: str, params: Mapping[str, str]
    ) -> Iterator[tuple[list[Record], Sideloads]]:
        page = 1
        while True:
            body = self._get(
                f"/{resource}.json", {**params, "page": str(page), "per_page": str(self.page_size)}
            )
            records = wire.result_records(body, resource)
            yield records, Sideloads(body)
            if not records or page >= wire.page_count(body, self.page_size):
                return
            page += 1

    def _linked(
        self, resource: str, model: str, ref: str, extra: Mapping[str, str]
    ) -> Record | None:
        params = {
            "external_reference_service_name": self.service_name,
            "external_reference_service_model": model,
            "external_reference_service_model_refs": ref,
            "per_page": "2",
            **extra,
        }
        found = wire.result_records(self._get(f"/{resource}.json", params), resource)
        if len(found) > 1:
            ids = ", ".join(str(r["id"]) for r in found)
            raise BusinessFixError(
                f"Several Kantata {resource.replace('_', ' ')} are linked to q2c {model} "
                f"'{ref}' ({ids})",
                detail=f"{resource} with external reference {self.service_name}/{model}/{ref}",
                suggested_fix="Keep one of them linked (delete the external reference on the "
                "others in Kantata), then replay.",
                system=SYSTEM,
                context={"ids": [str(r["id"]) for r in found]},
            )
        return found[0] if found else None

    def _client_group(self, customer_ref: str, customer_name: str) -> str | None:
        if not customer_name.strip():
            return None
        _check_ref(customer_ref, "customer_id")
        group = self._linked("workspace_groups", "customer", customer_ref, {})
        if group is not None:
            return str(group["id"])
        body = group_body(
            customer_name.strip(), customer_ref=customer_ref, service_name=self.service_name
        )
        return str(self._post("/workspace_groups.json", body, "workspace_groups")["id"])

    def _get(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        response = self.rest.request("GET", self.base_url + path, params=params, headers=_JSON)
        return _body(response)

    def _post(self, path: str, body: Mapping[str, Any], key: str) -> Record:
        response = self.rest.request(
            "POST", self.base_url + path, content=wire.dumps(body), headers=_JSON
        )
        created = wire.result_records(_body(response), key)
        if not created:
            raise FatalError(
                f"Kantata accepted the {key.replace('_', ' ')} but did not return it",
                detail=f"POST {response.request.url} -> {response.status_code}: "
                f"{response.text[:500]}",
                system=SYSTEM,
            )
        return created[0]


def _body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = wire.loads(response.content)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise FatalError(
            "Kantata answered with something that is not its JSON envelope",
            detail=f"{response.request.method} {response.request.url} -> "
            f"{response.status_code}: {response.text[:500]}",
            system=SYSTEM,
        )
    return body


def _check_ref(value: str, field: str) -> None:
    if not value or "," in value:
        raise ValidationError(
            f"q2c cannot link '{value}' in Kantata: an identifier must be non-empty and "
            "without commas (Kantata searches external references by comma-separated lists)",
            field=field,
            system=SYSTEM,
        )


def connect_kantata(
    client: httpx.Client,
    *,
    access_token: str | None = None,
    base_url: str = wire.DEFAULT_BASE_URL,
    recorder: ExchangeRecorder | None = None,
    bucket: TokenBucket | None = None,
    client_id: str | None = None,
    client_secret: str | None = None,
    refresh_token: str | None = None,
    token_url: str | None = None,
    page_size: int = wire.MAX_PER_PAGE,
    overlap: timedelta = DEFAULT_OVERLAP,
    rules: MappingRules | None = None,
    service_name: str = SERVICE_NAME,
) -> KantataPsa:
    """A ``KantataPsa`` on an OAuth bearer token: the ``access_token`` given (renewed on 401
    when given the means), or, without one, tokens from the client-credentials grant."""
    if access_token is None and not (client_id and client_secret):
        raise ConfigError("Kantata needs an access token, or a client id and secret to get one")
    auth = KantataAuth(
        access_token,
        token_url=token_url or wire.token_url_for(base_url),
        client_id=client_id,
        client_secret=client_secret,
        refresh_token=refresh_token,
    )
    rest = RestClient(
        system=SYSTEM,
        client=client,
        translate_error=translate_error,
        auth=auth,
        bucket=bucket,
        recorder=recorder,
    )
    return KantataPsa(
        rest,
        base_url=base_url,
        page_size=page_size,
        overlap=overlap,
        rules=rules,
        service_name=service_name,
    )
