"""POST /v1/events and the read endpoints, over a real store on both backends (as admin)."""

from __future__ import annotations

import copy

import orjson
import pytest
import sqlalchemy as sa

from q2c.store.schema import inbox, transactions
from tests.flows.helpers import approved_event, proposal

CE = {"content-type": "application/cloudevents+json"}
BATCH = {"content-type": "application/cloudevents-batch+json"}


def _event(opportunity: str = "006A", event_id: str | None = None) -> dict:
    p = proposal(opportunity)
    p = p.model_copy(update={"customer": p.customer.model_copy(
        update={"xrefs": {"salesforce": p.customer.id}})})
    return orjson.loads(approved_event(p, event_id).to_json())


def _rows(hub, table) -> int:
    with hub.db.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_single_event_is_accepted_once_then_reported_duplicate(client, hub):
    event = _event()
    event["correlationid"] = "corr-api-1"
    body = orjson.dumps(event)
    first = client.post("/v1/events", content=body, headers=CE)
    assert first.status_code == 202
    [result] = first.json()["results"]
    assert result["status"] == "accepted" and result["transaction_id"]
    again = client.post("/v1/events", content=body, headers=CE)
    assert again.status_code == 202
    assert again.json()["results"][0]["status"] == "duplicate"
    assert again.json()["duplicates"] == 1
    assert _rows(hub, inbox) == 1 and _rows(hub, transactions) == 1
    kept = hub.payloads.for_correlation("corr-api-1")
    assert [row["direction"] for row in kept] == ["inbound", "inbound"]
    assert "US-TAX-006A" not in kept[0]["request_body"]  # tax ids are redacted PII
    assert "Customer 006A Ltd" in kept[0]["request_body"]


def test_batch_mixes_new_and_duplicate(client):
    events = [_event("006A", "a"), _event("006A", "a"), _event("006B", "b")]
    response = client.post("/v1/events", content=orjson.dumps(events), headers=BATCH)
    assert response.status_code == 202
    assert [r["status"] for r in response.json()["results"]] == [
        "accepted", "duplicate", "accepted"]


def test_malformed_json_is_400(client):
    response = client.post("/v1/events", content=b'{"specversion": "1.0",', headers=CE)
    assert response.status_code == 400
    assert response.json()["title"] == "Malformed JSON"
    assert "not valid JSON" in response.json()["detail"]


@pytest.mark.parametrize(
    ("mutate", "field", "words"),
    [
        (lambda e: e.pop("id"), "event.id", "is required"),
        (lambda e: e.update(specversion="0.3"), "event.specversion", '"1.0"'),
        (lambda e: e.update(type="invoice.exploded"), "event.type", "unknown event type"),
        (lambda e: e["data"]["lines"][0]["unit_price"].update(amount=200.5),
         "event.data.lines[0].unit_price", "floating-point"),
        (lambda e: e["data"]["total"].update(currency="XXY"), "event.data.total", "XXY"),
        (lambda e: e["data"]["lines"][0].update(quantity=-1), "event.data.lines[0].quantity",
         "negative"),
        (lambda e: e["data"].update(surprise=1), "event.data.surprise", "not a known field"),
        (lambda e: e["data"]["customer"].pop("legal_name"), "event.data.customer.legal_name",
         "is required"),
    ],
)
def test_invalid_event_is_422_naming_the_field(client, hub, mutate, field, words):
    event = _event()
    mutate(event)
    response = client.post("/v1/events", content=orjson.dumps(event), headers=CE)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["field"] == field and words in e["message"] for e in errors), errors
    assert _rows(hub, inbox) == 0


def test_batch_with_one_bad_event_applies_nothing(client, hub):
    good, bad = _event("006A", "a"), _event("006B", "b")
    bad["data"]["total"]["amount"] = 1.5
    response = client.post("/v1/events", content=orjson.dumps([good, bad]), headers=BATCH)
    assert response.status_code == 422
    assert response.json()["errors"][0]["index"] == 1
    assert response.json()["errors"][0]["field"].startswith("events[1].data.total")
    assert _rows(hub, inbox) == 0 and _rows(hub, transactions) == 0


def test_oversized_body_is_413(client):
    event = _event()
    event["data"]["name"] = "x" * (70 * 1024)
    response = client.post("/v1/events", content=orjson.dumps(event), headers=CE)
    assert response.status_code == 413
    assert "limit" in response.json()["detail"]


def test_wrong_media_type_is_415(client):
    response = client.post("/v1/events", content=b"id=1", headers={"content-type": "text/plain"})
    assert response.status_code == 415


def test_batch_media_type_needs_an_array(client):
    response = client.post("/v1/events", content=orjson.dumps(_event()), headers=BATCH)
    assert response.status_code == 400


def test_transactions_list_pages_and_timeline_shows_steps(client, hub):
    events = [_event(f"006{i}", f"e{i}") for i in range(5)]
    client.post("/v1/events", content=orjson.dumps(events), headers=BATCH)
    hub.engine.run_due()
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/transactions", params=params).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))
    detail = client.get(f"/v1/transactions/{seen[0]}").json()
    assert detail["status"] == "completed"
    assert [s["step"] for s in detail["steps"]][:3] == [
        "fetch_proposal", "validate", "resolve_customer"]
    assert all(s["status"] == "done" for s in detail["steps"])
    assert client.get("/v1/transactions/nope").status_code == 404
    assert client.get("/v1/transactions", params={"cursor": "%%%"}).status_code == 400


def test_exception_listing_and_replay(client, hub):
    event = _event("006Z")
    event["data"]["department"] = "Consulting-EMEA"
    client.post("/v1/events", content=orjson.dumps(event), headers=CE)
    hub.engine.run_due()
    [parked] = client.get("/v1/exceptions").json()
    assert "Consulting-EMEA" in parked["message"]
    assert parked["suggested_fix"]
    dry = client.post(f"/v1/exceptions/{parked['id']}/replay",
                      json={"requested_by": "ops", "dry_run": True}).json()
    assert dry["dry_run"] and not dry["accepted"]
    assert "would fail again" in dry["message"]
    hub.add_mapping("department", "Consulting-EMEA", "US01", "netsuite", "9")
    replayed = client.post(f"/v1/exceptions/{parked['id']}/replay",
                           json={"requested_by": "ops"})
    assert replayed.status_code == 200 and replayed.json()["from_step"] == "enrich"
    hub.engine.run_due()
    assert client.get("/v1/exceptions").json() == []
    detail = client.get(f"/v1/transactions/{parked['transaction_id']}").json()
    assert detail["status"] == "completed"
    assert [(r["requested_by"], r["dry_run"], r["from_step"]) for r in detail["replays"]] == [
        ("ops (client admin)", True, "enrich"), ("ops (client admin)", False, "enrich")]
    assert [e["status"] for e in detail["exceptions"]] == ["resolved"]
    again = client.post(f"/v1/exceptions/{parked['id']}/replay", json={"requested_by": "ops"})
    assert again.status_code == 409


def test_xref_health_metrics_and_openapi(client, hub):
    client.post("/v1/events", content=orjson.dumps(_event()), headers=CE)
    hub.engine.run_due()
    links = client.get("/v1/xref", params={"object_type": "customer"}).json()
    assert {link["system"] for link in links} == {"salesforce", "netsuite"}
    assert client.get("/healthz").json()["status"] == "ok"
    metrics = client.get("/metrics").text
    assert 'q2c_events_ingested_total{status="accepted",type="proposal.approved"}' in metrics
    assert 'q2c_transactions_total{flow="opportunity_to_project",outcome="completed"}' in metrics
    assert 'q2c_step_seconds_count{flow="opportunity_to_project",outcome="done",step="enrich"}' in (
        metrics)
    spec = client.get("/openapi.json").json()
    assert "/v1/events" in spec["paths"]
    assert copy.deepcopy(spec)["info"]["title"] == "q2c"
