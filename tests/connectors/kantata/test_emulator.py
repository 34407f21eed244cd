"""The emulator as a client sees it: auth, envelope, filters, paging, validation, faults."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from q2c.connectors.kantata import wire
from q2c.connectors.kantata.sandbox import KantataSandbox
from q2c.connectors.kantata.state import KantataClock
from q2c.connectors.sandbox import Fault
from tests.connectors.kantata.conftest import World

DAY = date(2025, 3, 3)


def listed(body: dict[str, Any], key: str) -> list[str]:
    return [r["id"] for r in wire.result_records(body, key)]


# --- auth -------------------------------------------------------------------------------


@pytest.mark.parametrize("header", [None, "Bearer nope", "Basic abc"])
def test_api_needs_a_live_bearer_token(box: KantataSandbox, header: str | None) -> None:
    client = box.client()
    if header:
        client.headers["Authorization"] = header

    response = client.get("/workspaces.json")

    assert response.status_code == 401
    assert response.json() == {"errors": [{"type": "oauth", "message": "Invalid OAuth 2 Request"}]}


def test_token_endpoint_grants_and_refuses_like_doorkeeper(box: KantataSandbox) -> None:
    client = box.client()
    ok = client.post(
        box.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": box.client_id,
            "client_secret": box.client_secret,
        },
    )
    bad_client = client.post(
        box.token_url,
        data={"grant_type": "client_credentials", "client_id": box.client_id, "client_secret": "x"},
    )
    bad_grant = client.post(
        box.token_url,
        auth=(box.client_id, box.client_secret),
        data={"grant_type": "refresh_token", "refresh_token": "old"},
    )
    odd_grant = client.post(
        box.token_url, auth=(box.client_id, box.client_secret), data={"grant_type": "password"}
    )

    assert ok.status_code == 200 and ok.json()["token_type"] == "Bearer"
    token = ok.json()["access_token"]
    assert client.get("/users/me.json", headers={"Authorization": f"Bearer {token}"}).is_success
    assert (bad_client.status_code, bad_client.json()["error"]) == (401, "invalid_client")
    assert (bad_grant.status_code, bad_grant.json()["error"]) == (400, "invalid_grant")
    assert odd_grant.json()["error"] == "unsupported_grant_type"


# --- envelope, paging, filters ----------------------------------------------------------------


def test_list_envelope_and_pages(api: httpx.Client, box: KantataSandbox, world: World) -> None:
    for n in range(5):
        box.add_time_entry(world.workspace, date_performed=DAY, minutes=n + 1, user_id=world.user)

    first = api.get("/time_entries.json", params={"per_page": 2, "order": "created_at:asc"}).json()
    last = api.get(
        "/time_entries.json", params={"per_page": 2, "page": 3, "order": "created_at:asc"}
    ).json()

    assert first["count"] == 5
    assert first["meta"] == {"count": 5, "page_count": 3, "page_number": 1, "page_size": 2}
    assert first["results"][0] == {"key": "time_entries", "id": listed(first, "time_entries")[0]}
    assert len(listed(first, "time_entries")) == 2 and len(listed(last, "time_entries")) == 1
    record = first["time_entries"][listed(first, "time_entries")[0]]
    assert record["time_in_minutes"] == 1 and record["approved"] is False
    assert record["updated_at"].endswith("Z")


def test_per_page_is_capped_at_two_hundred(
    api: httpx.Client, box: KantataSandbox, world: World
) -> None:
    body = api.get("/time_entries.json", params={"per_page": 5000}).json()

    assert body["meta"]["page_size"] == 200


def test_default_order_is_documented_and_bad_order_refused(
    api: httpx.Client, box: KantataSandbox, world: World
) -> None:
    older = box.add_time_entry(
        world.workspace, date_performed=date(2025, 1, 1), minutes=5, user_id=world.user
    )
    newer = box.add_time_entry(
        world.workspace, date_performed=date(2025, 2, 1), minutes=5, user_id=world.user
    )

    body = api.get("/time_entries.json").json()  # date_performed:desc
    refused = api.get("/expenses.json", params={"order": "updated_at:asc"})

    assert listed(body, "time_entries") == [newer, older]
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["type"] == "system"


def test_filters_approved_billable_updated_after_and_only(
    api: httpx.Client, box: KantataSandbox, world: World
) -> None:
    a = box.add_time_entry(world.workspace, date_performed=DAY, minutes=5, user_id=world.user)
    b = box.add_time_entry(
        world.workspace, date_performed=DAY, minutes=5, user_id=world.user, billable=False
    )
    box.approve(time_entries=[a, b])
    cutoff = box.clock.now()
    box.advance(10)
    c = box.add_time_entry(world.workspace, date_performed=DAY, minutes=5, user_id=world.user)

    def ids(**params: str) -> set[str]:
        return set(listed(api.get("/time_entries.json", params=params).json(), "time_entries"))

    assert ids(approved="false") == {a, b}  # the value is ignored: always approved
    assert ids(billable="false") == {b}
    assert ids(updated_after=wire.format_timestamp(cutoff)) == {c}
    assert ids(updated_after=wire.format_timestamp(cutoff - timedelta(seconds=1))) == {b, c}
    assert ids(only=f"{a},{c}") == {a, c}
    assert ids(workspace_id="999") == set()
    assert api.get("/time_entries.json", params={"updated_after": "yesterday"}).status_code == 400


def test_includes_side_load_associations(
    api: httpx.Client, box: KantataSandbox, world: World
) -> None:
    entry = box.add_time_entry(
        world.workspace, date_performed=DAY, minutes=5, user_id=world.user, story_id=world.task
    )
    (submission,) = box.approve(time_entries=[entry])

    body = api.get(
        "/time_entries.json", params={"include": "role,user,story,active_submission"}
    ).json()
    stories = api.get("/stories.json", params={"include": "custom_field_values,workspace"}).json()

    assert body["roles"][world.role]["name"] == "Senior Consultant"
    assert body["users"][world.user]["full_name"] == "Ada Lovelace"
    assert world.task in body["stories"]
    assert body["timesheet_submissions"][submission]["status"] == "approved"
    assert body["time_entries"][entry]["active_submission_id"] == submission
    (value_id,) = stories["stories"][world.task]["custom_field_value_ids"]
    assert stories["custom_field_values"][value_id]["value"] == "CONSULTING-HOUR"
    assert stories["workspaces"][world.workspace]["currency"] == "USD"


def test_archived_records_are_hidden_by_default(api: httpx.Client, box: KantataSandbox) -> None:
    live = box.add_workspace("Live")
    gone = box.add_workspace("Gone", archived=True)

    assert listed(api.get("/workspaces.json").json(), "workspaces") == [live]
    assert set(
        listed(
            api.get("/workspaces.json", params={"include_archived": "true"}).json(), "workspaces"
        )
    ) == {live, gone}
    assert api.get(f"/workspaces/{gone}.json").status_code == 404
    assert api.get(f"/workspaces/{live}.json").json()["workspaces"][live]["title"] == "Live"


def test_story_filters(api: httpx.Client, box: KantataSandbox, world: World) -> None:
    done = box.complete_milestone(box.add_milestone(world.workspace, "M1", amount_in_cents=1))
    box.add_milestone(world.workspace, "M2", amount_in_cents=1)
    body = api.get("/stories.json", params={"story_type": "milestone", "completed": "true"})

    assert listed(body.json(), "stories") == [done]


def test_external_reference_filter(api: httpx.Client, box: KantataSandbox) -> None:
    linked = box.add_workspace("Linked", external_id="opp-1")
    box.add_workspace("Other", external_id="opp-2")
    params = {
        "external_reference_service_name": "q2c",
        "external_reference_service_model": "project",
        "external_reference_service_model_refs": "opp-1,opp-9",
    }

    body = api.get("/workspaces.json", params={**params, "include": "external_references"}).json()

    assert listed(body, "workspaces") == [linked]
    (ref_id,) = body["workspaces"][linked]["external_reference_ids"]
    assert body["external_references"][ref_id]["service_model_ref"] == "opp-1"


# --- validation -----------------------------------------------------------------------


def test_workspace_create_validates_like_kantata(api: httpx.Client) -> None:
    response = api.post("/workspaces.json", json={"workspace": {"title": ""}})

    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"type": "validation", "message": "Please give your project a title", "field": "title"},
        {
            "type": "validation",
            "message": "Please select a role for this project",
            "field": "creator_role",
        },
    ]


def test_workspace_create_returns_the_record(api: httpx.Client, box: KantataSandbox) -> None:
    response = api.post(
        "/workspaces.json",
        json={
            "workspace": {
                "title": "New",
                "creator_role": "maven",
                "currency": "EUR",
                "external_reference": {
                    "service_name": "q2c",
                    "service_model": "project",
                    "service_model_ref": "opp-3",
                },
            }
        },
    )

    (created,) = wire.result_records(response.json(), "workspaces")
    assert response.status_code == 200 and created["currency_base_unit"] == 100
    assert box.workspaces_linked_to("opp-3") == {created["id"]}


@pytest.mark.parametrize(
    ("resource", "fields", "field"),
    [
        ("time_entries", {"date_performed": "2025-03-03", "time_in_minutes": 5}, "workspace_id"),
        ("time_entries", {"workspace_id": "WS", "time_in_minutes": 5}, "date_performed"),
        (
            "time_entries",
            {"workspace_id": "WS", "date_performed": "2025-03-03", "time_in_minutes": 0},
            "time_in_minutes",
        ),
        (
            "expenses",
            {"workspace_id": "WS", "date": "2025-03-03", "category": "Food"},
            "amount_in_cents",
        ),
        ("stories", {"workspace_id": "WS", "title": "X", "story_type": "epic"}, "story_type"),
        ("workspace_groups", {"name": "Acme"}, "company"),
        (
            "workspaces",
            {"title": "T", "creator_role": "maven", "external_reference": {"service_name": "q2c"}},
            "external_reference.service_model",
        ),
    ],
)
def test_creates_refuse_bad_fields(
    api: httpx.Client, world: World, resource: str, fields: dict[str, Any], field: str
) -> None:
    key = {
        "time_entries": "time_entry",
        "expenses": "expense",
        "stories": "story",
        "workspace_groups": "workspace_group",
        "workspaces": "workspace",
    }[resource]
    body = {k: (world.workspace if v == "WS" else v) for k, v in fields.items()}

    response = api.post(f"/{resource}.json", json={key: body})

    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


def test_created_time_entry_is_listed(api: httpx.Client, world: World) -> None:
    response = api.post(
        "/time_entries.json",
        json={
            "time_entry": {
                "workspace_id": world.workspace,
                "date_performed": "2025-03-03",
                "time_in_minutes": 25,
            }
        },
    )

    (created,) = wire.result_records(response.json(), "time_entries")
    assert created["id"] in listed(api.get("/time_entries.json").json(), "time_entries")


# --- faults, clock, change feed --------------------------------------------------------------


def test_injected_rate_limit_speaks_kantata(api: httpx.Client, box: KantataSandbox) -> None:
    box.faults.inject(Fault("rate_limit", retry_after=9))

    response = api.get("/workspaces.json")

    assert response.status_code == 429 and response.headers["retry-after"] == "9"
    assert response.json()["errors"][0]["type"] == "system"


def test_clock_is_deterministic_and_forward_only() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock = KantataClock(start, tick=timedelta(seconds=2))

    assert clock.stamp() == start + timedelta(seconds=2)
    assert clock.advance(60) == start + timedelta(seconds=62)
    with pytest.raises(ValueError):
        clock.set(start)
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_every_write_lands_in_the_change_feed(
    api: httpx.Client, box: KantataSandbox, world: World
) -> None:
    entry = box.add_time_entry(world.workspace, date_performed=DAY, minutes=5, user_id=world.user)
    box.approve(time_entries=[entry])

    body = api.get(
        "/subscribed_events.json",
        params={"event_types": "time_entry:created,time_entry:updated", "include": "subject"},
    ).json()
    events = wire.result_records(body, "subscribed_events")

    assert [e["event_type"] for e in events] == ["time_entry:created", "time_entry:updated"]
    assert events[1]["subject_ref"] == {"key": "time_entries", "id": entry}
    assert "_active_submission_id" not in events[1]["current_payload"]
    assert body["time_entries"][entry]["approved"] is True
