"""Working exceptions over HTTP: bulk replay with a dry run, edit-and-replay, dismiss, payloads."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from q2c.runtime.payload_history import REDACTED
from q2c.store.schema import transactions
from tests.api.conftest import bearer
from tests.api.test_events_api import CE, _event


def park(client, hub, opportunity: str, department: str = "Consulting-EMEA") -> dict:
    """An opportunity whose department has no mapping: parked at the enrich step."""
    event = _event(opportunity, f"ev-{opportunity}")
    event["data"]["department"] = department
    assert client.post("/v1/events", content=orjson.dumps(event), headers=CE).status_code == 202
    hub.engine.run_due()
    [parked] = [e for e in client.get("/v1/exceptions").json()
                if e["business_key"].endswith(opportunity) or opportunity in e["message"]
                or opportunity in e["business_key"]]
    return parked


def status_of(hub, transaction_id: str) -> str:
    with hub.db.connect() as c:
        return c.execute(sa.select(transactions.c.status).where(
            transactions.c.id == transaction_id)).scalar_one()


def test_bulk_replay_previews_then_replays_what_the_filter_matches(client, hub):
    first, second = park(client, hub, "006P"), park(client, hub, "006Q")
    other = park(client, hub, "006R", department="Consulting-APAC")
    selection = {"filter": {"message_contains": "Consulting-EMEA"}}
    preview = client.post("/v1/exceptions/replay", json={**selection, "dry_run": True})
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["dry_run"] and body["matched"] == 2 and body["would_complete"] == 0
    assert {o["transaction_id"] for o in body["outcomes"]} == {
        first["transaction_id"], second["transaction_id"]}
    assert all("would fail again" in o["message"] for o in body["outcomes"])
    assert status_of(hub, first["transaction_id"]) == "parked"  # a preview writes nothing

    hub.add_mapping("department", "Consulting-EMEA", "US01", "netsuite", "9")
    fixed = client.post("/v1/exceptions/replay", json={**selection, "dry_run": True}).json()
    assert fixed["would_complete"] == 2
    done = client.post("/v1/exceptions/replay",
                       json={**selection, "requested_by": "ada", "reason": "mapping added"})
    assert done.json()["accepted"] == 2 and not done.json()["dry_run"]
    hub.engine.run_due()
    assert status_of(hub, first["transaction_id"]) == "completed"
    assert status_of(hub, second["transaction_id"]) == "completed"
    assert status_of(hub, other["transaction_id"]) == "parked"
    replays = client.get(f"/v1/transactions/{first['transaction_id']}").json()["replays"]
    assert replays[-1]["requested_by"] == "ada (client admin)"
    assert replays[-1]["reason"] == "mapping added"


def test_edit_and_replay_keeps_the_correction_with_who_and_why(app, client, hub):
    parked = park(client, hub, "006S")
    ops = bearer(app, "ops")
    response = client.post(
        f"/v1/exceptions/{parked['id']}/edit-and-replay",
        json={"merge_patch": {"department": "Consulting-US"}, "reason": "typo in CRM",
              "requested_by": "grace"},
        headers=ops,
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["replay"]["accepted"] and result["replay"]["from_step"] == "fetch_proposal"
    hub.engine.run_due()
    detail = client.get(f"/v1/transactions/{parked['transaction_id']}").json()
    assert detail["status"] == "completed", [e["message"] for e in detail["exceptions"]]
    assert detail["input"]["data"]["department"] == "Consulting-US"
    assert all(s["status"] == "done" for s in detail["steps"])  # every step ran again
    erp = hub.extras["erp"]
    assert len(erp.customers) == 1 and len(erp.projects) == 1  # and wrote nothing twice
    assert detail["replays"][-1]["reason"] == "edit-and-replay: typo in CRM"
    kept = client.get(f"/v1/payloads/{result['payload_id']}", headers=ops).json()
    assert kept["direction"] == "edit"
    assert kept["operation"] == "edit-and-replay by grace (client ops): typo in CRM"
    assert orjson.loads(kept["request_body"])["department"] == "Consulting-US"
    assert orjson.loads(kept["response_body"])["department"] == "Consulting-EMEA"
    assert orjson.loads(kept["request_body"])["customer"]["tax_id"] == REDACTED
    assert any(p["href"] == f"/v1/payloads/{result['payload_id']}" for p in detail["payloads"])


def test_edit_and_replay_refuses_bad_corrections(client, hub):
    parked = park(client, hub, "006T")
    path = f"/v1/exceptions/{parked['id']}/edit-and-replay"
    invalid = client.post(path, json={"merge_patch": {"total": {"amount": 1.5}},
                                      "reason": "oops"})
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"].startswith("data.total")
    both = client.post(path, json={"data": {}, "merge_patch": {}, "reason": "x"})
    assert both.status_code == 422 and "exactly one" in both.json()["detail"]
    no_reason = client.post(path, json={"merge_patch": {}})
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "body.reason"
    assert status_of(hub, parked["transaction_id"]) == "parked"  # nothing changed
    assert client.post("/v1/exceptions/999999/edit-and-replay",
                       json={"merge_patch": {}, "reason": "x"}).status_code == 404


def test_dismiss_needs_a_reason_and_closes_the_transaction(client, hub):
    parked = park(client, hub, "006U")
    path = f"/v1/exceptions/{parked['id']}/dismiss"
    assert client.post(path, json={}).status_code == 422
    assert client.post(path, json={"reason": ""}).status_code == 422
    response = client.post(path, json={"reason": "deal cancelled", "requested_by": "ada"})
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dismissed"
    assert response.json()["resolution"] == "dismissed by ada (client admin): deal cancelled"
    assert status_of(hub, parked["transaction_id"]) == "dismissed"
    assert client.post(path, json={"reason": "again"}).status_code == 409
    assert client.post(f"/v1/exceptions/{parked['id']}/replay", json={}).status_code == 409
    assert client.get("/v1/exceptions").json() == []
    assert [e["id"] for e in client.get("/v1/exceptions",
                                        params={"status": "dismissed"}).json()] == [parked["id"]]
    assert client.post("/v1/exceptions/424242/dismiss", json={"reason": "x"}).status_code == 404


def test_payloads_are_redacted_and_missing_ones_are_404(client, hub):
    event = _event("006V", "pv")
    event["correlationid"] = "corr-payload"
    client.post("/v1/events", content=orjson.dumps(event), headers=CE)
    [row] = hub.payloads.for_correlation("corr-payload")
    kept = client.get(f"/v1/payloads/{row['id']}").json()
    assert kept["request_headers"]["authorization"] == REDACTED
    assert "Bearer" not in orjson.dumps(kept).decode()
    body = orjson.loads(kept["request_body"])
    assert body["data"]["customer"]["tax_id"] == REDACTED
    assert body["data"]["customer"]["legal_name"] == "Customer 006V Ltd"
    assert client.get("/v1/payloads/987654").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/exceptions/1/replay", {"content": b"{not json",
                                             "headers": {"content-type": "application/json"}},
         400),
        ("POST", "/v1/exceptions/1/replay", {"json": {"surprise": 1}}, 422),
        ("POST", "/v1/exceptions/1/replay", {"json": {"dry_run": "maybe"}}, 422),
        ("POST", "/v1/exceptions/replay", {"json": {"limit": 0}}, 422),
        ("POST", "/v1/exceptions/replay", {"json": {"filter": {"flow": "a\x00b"}}}, 422),
        ("POST", "/v1/exceptions/1/dismiss", {"json": ["reason"]}, 422),
        ("GET", "/v1/exceptions/99999999999999999999999", {}, 422),
        ("GET", "/v1/payloads/0", {}, 422),
        ("GET", "/v1/payloads/abc", {}, 422),
        ("GET", "/v1/transactions?flow=a%00b", {}, 400),
        ("GET", "/v1/transactions?created_after=yesterday", {}, 422),
        ("GET", "/v1/transactions?limit=100000", {}, 422),
        ("DELETE", "/v1/transactions", {}, 405),
        ("GET", "/v1/nothing-here", {}, 404),
    ],
)
def test_bad_input_is_a_precise_4xx_problem(client, method, path, kwargs, status):
    response = client.request(method, path, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status and response.json()["detail"]


def test_oversized_event_body_is_413_before_it_is_read_whole(client):
    headers = {**CE, "content-length": str(10 * 1024 * 1024)}
    response = client.post("/v1/events", content=b"{}", headers=headers)
    assert response.status_code == 413
