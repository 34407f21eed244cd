"""Working exceptions from the console: replay, bulk replay with a dry-run preview,
edit-and-replay, dismiss, and "fix mapping" that replays everything the mapping blocked."""

from __future__ import annotations

import orjson
import sqlalchemy as sa

from q2c.store.schema import replays, transactions
from tests.console.conftest import csrf_of, deal, parked


def _status(hub, transaction_id: str) -> str:
    with hub.db.connect() as c:
        return c.execute(sa.select(transactions.c.status).where(
            transactions.c.id == transaction_id)).scalar_one()


def _replayed_by(hub, transaction_id: str) -> list[str]:
    with hub.db.connect() as c:
        return list(c.execute(sa.select(replays.c.requested_by).where(
            replays.c.transaction_id == transaction_id, replays.c.dry_run == 0)).scalars())


def test_replay_runs_the_transaction_and_records_who(hub, operator):
    transaction_id = deal(hub, "006K", department="Consulting-EMEA")
    item = parked(hub, transaction_id)
    hub.add_mapping("department", "Consulting-EMEA", "US01", "netsuite", "7")
    response = operator.post(f"/console/exceptions/{item.id}/replay",
                             data={"csrf_token": csrf_of(operator), "reason": "mapped"})
    assert response.status_code == 200
    assert '<span class="badge completed">completed</span>' in response.text
    assert _status(hub, transaction_id) == "completed"
    assert _replayed_by(hub, transaction_id) == ["ada (client ops)"]


def test_replay_that_fails_again_shows_the_new_message(hub, operator):
    transaction_id = deal(hub, "006L", department="Consulting-EMEA")
    item = parked(hub, transaction_id)
    response = operator.post(f"/console/exceptions/{item.id}/replay",
                             data={"csrf_token": csrf_of(operator)})
    assert '<span class="badge parked">parked</span>' in response.text
    assert "Consulting-EMEA" in response.text
    assert _status(hub, transaction_id) == "parked"


def test_preview_is_a_dry_run_that_writes_nothing(hub, operator):
    transaction_id = deal(hub, "006M", department="Consulting-EMEA")
    item = parked(hub, transaction_id)
    token = csrf_of(operator)
    before = operator.post(f"/console/exceptions/{item.id}/preview",
                           headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert before.status_code == 200 and "would fail again at step" in before.text
    hub.add_mapping("department", "Consulting-EMEA", "US01", "netsuite", "7")
    after = operator.post(f"/console/exceptions/{item.id}/preview",
                          headers={"HX-Request": "true", "X-CSRF-Token": token})
    assert "would complete" in after.text
    assert _status(hub, transaction_id) == "parked" and _replayed_by(hub, transaction_id) == []


def test_bulk_replay_previews_then_replays_what_the_filter_matches(hub, operator):
    emea = [deal(hub, f"006N{n}", department="Consulting-EMEA") for n in range(2)]
    apac = deal(hub, "006NA", department="Consulting-APAC")
    hub.add_mapping("department", "Consulting-EMEA", "*", "netsuite", "7")
    token = csrf_of(operator)
    preview = operator.post("/console/exceptions/bulk-replay",
                            data={"csrf_token": token, "dry_run": "1",
                                  "flow": "opportunity_to_project"},
                            headers={"HX-Request": "true"})
    assert "3 would be replayed; 2 would complete" in preview.text
    assert all(_status(hub, t) == "parked" for t in [*emea, apac])
    done = operator.post("/console/exceptions/bulk-replay",
                         data={"csrf_token": token, "dry_run": "0", "reason": "EMEA mapped",
                               "flow": "opportunity_to_project"})
    assert "3 of 3 replayed" in done.text
    assert [_status(hub, t) for t in emea] == ["completed", "completed"]
    assert _status(hub, apac) == "parked"


def test_edit_and_replay_needs_a_reason_and_valid_json(hub, operator):
    item = parked(hub, deal(hub, "006O", department="Consulting-EMEA"))
    token = csrf_of(operator)
    url = f"/console/exceptions/{item.id}/edit-and-replay"
    no_reason = operator.post(url, data={"csrf_token": token, "data": "{}"})
    assert no_reason.status_code == 422 and "Say why" in no_reason.text
    bad_json = operator.post(url, data={"csrf_token": token, "data": "{oops", "reason": "x"})
    assert bad_json.status_code == 422 and "not valid JSON" in bad_json.text
    invalid = operator.post(url, data={"csrf_token": token, "data": '{"total": 1}',
                                       "reason": "x"})
    assert invalid.status_code == 422
    assert parked(hub, item.transaction_id).status == "open"


def test_edit_and_replay_runs_the_corrected_payload_and_keeps_it(hub, operator):
    transaction_id = deal(hub, "006Q", department="Consulting-EMEA")
    item = parked(hub, transaction_id)
    page = operator.get(f"/console/exceptions/{item.id}").text
    assert "Consulting-EMEA" in page  # the form is prefilled with the event data
    with hub.db.connect() as c:
        data = orjson.loads(c.execute(sa.select(transactions.c.input).where(
            transactions.c.id == transaction_id)).scalar_one())["data"]
    data["department"] = "Consulting-US"
    response = operator.post(f"/console/exceptions/{item.id}/edit-and-replay", data={
        "csrf_token": csrf_of(operator), "data": orjson.dumps(data).decode(),
        "reason": "booked to the wrong department"})
    assert response.status_code == 200, response.text
    assert '<span class="badge completed">completed</span>' in response.text
    payload_id = int(response.text.split("/console/payloads/")[1].split('"')[0])
    kept = hub.payloads.get(payload_id)
    assert kept["direction"] == "edit" and "booked to the wrong department" in kept["operation"]
    assert "ada (client ops)" in kept["operation"]


def test_dismiss_needs_a_reason_and_closes_the_transaction(hub, operator):
    transaction_id = deal(hub, "006U", department="Consulting-EMEA")
    item = parked(hub, transaction_id)
    url = f"/console/exceptions/{item.id}/dismiss"
    assert operator.post(url, data={"csrf_token": csrf_of(operator)}).status_code == 422
    response = operator.post(url, data={"csrf_token": csrf_of(operator),
                                        "reason": "duplicate deal"})
    assert response.status_code == 200 and "dismissed" in response.text
    assert _status(hub, transaction_id) == "dismissed"
    assert "ada (client ops): duplicate deal" in parked(hub, transaction_id).resolution
    again = operator.post(url, data={"csrf_token": csrf_of(operator), "reason": "again"})
    assert again.status_code == 409


def test_fix_mapping_adds_it_and_replays_everything_it_blocked(hub, operator):
    blocked = [deal(hub, f"006V{n}", department="Consulting-EMEA") for n in range(2)]
    other = deal(hub, "006VA", department="Consulting-APAC")
    item = parked(hub, blocked[0])
    form_page = operator.get(f"/console/exceptions/{item.id}/fix-mapping").text
    for prefilled in ('name="dimension" value="department"',
                      'name="value" value="Consulting-EMEA"',
                      'name="legal_entity" value="US01"', 'name="system" value="netsuite"'):
        assert prefilled in form_page
    assert "Add mapping and replay 2" in form_page
    response = operator.post(f"/console/exceptions/{item.id}/fix-mapping", data={
        "csrf_token": csrf_of(operator), "dimension": "department",
        "value": "Consulting-EMEA", "legal_entity": "US01", "system": "netsuite",
        "external_id": "7"})
    assert response.status_code == 200, response.text
    assert "Replayed 2 blocked transactions: 2 completed" in response.text
    assert [_status(hub, t) for t in blocked] == ["completed", "completed"]
    assert _status(hub, other) == "parked"
    assert hub.maps.get("department", "Consulting-EMEA", "US01", "netsuite") == "7"
    departments = [p["department"] for p in hub.extras["erp"].projects.values()]
    assert departments == ["7", "7"]  # the ERP projects carry the newly mapped department


def test_fix_mapping_form_needs_every_field(hub, operator):
    item = parked(hub, deal(hub, "006W", department="Consulting-EMEA"))
    response = operator.post(f"/console/exceptions/{item.id}/fix-mapping", data={
        "csrf_token": csrf_of(operator), "dimension": "department",
        "value": "Consulting-EMEA", "legal_entity": "US01", "system": "netsuite",
        "external_id": " "})
    assert response.status_code == 422 and "external id" in response.text
    assert hub.maps.get("department", "Consulting-EMEA", "US01", "netsuite") is None


def test_fix_mapping_only_for_missing_mapping_exceptions(hub, operator):
    assert operator.get("/console/exceptions/424242/fix-mapping").status_code == 404
