"""POST /v1/webhooks/{connection}: Stripe-Signature, Kantata via a signing relay, generic HMAC.

Stripe and Kantata run as their bundled emulators; the events a delivery makes must be the
ones the pollers make (same source and ids), so a delivery and a poll are one event.
"""

from __future__ import annotations

from datetime import date

import orjson
import pytest
from fastapi.testclient import TestClient

from q2c.api.app import create_app
from q2c.api.webhooks import sign_hmac, verify_hmac
from q2c.bootstrap import bootstrap
from q2c.connectors.stripe.webhooks import sign_payload
from q2c.runtime.poller import BillingPoller, DeliveryPoller
from tests.api.conftest import SECRETS, api_config, api_section
from tests.api.test_events_api import _event
from tests.connectors.stripe.helpers import line, new_draft

NOW = 1_790_000_000  # the receiver's wall clock in these tests
HOOK = SECRETS["Q2C_TEST_HOOK_SECRET"]
RELAY = SECRETS["Q2C_TEST_KANTATA_SECRET"]


@pytest.fixture
def hub(db, clock):
    section = api_section()
    section["webhooks"] |= {
        "kantata": {"kind": "kantata", "secret_env": "Q2C_TEST_KANTATA_SECRET"},
        "acme-strict": {"kind": "hmac", "secret_env": "Q2C_TEST_HOOK_SECRET",
                        "tolerance_seconds": 30, "signature_header": "X-Acme-Signature",
                        "timestamp_header": "X-Acme-Time"},
    }
    systems = {
        "stripe": {"vendor": "stripe", "roles": ["billing"], "sandbox": True},
        "kantata": {"vendor": "kantata", "roles": ["psa"], "sandbox": True},
    }
    hub = bootstrap(api_config(section, systems), db=db, clock=clock, worker_id="hooks")
    yield hub
    hub.close()


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub, max_body_bytes=64 * 1024, now=lambda: NOW)) as c:
        yield c


def post_signed(client, connection, body: bytes, *, timestamp=NOW, secret=HOOK, **names):
    headers = {"content-type": "application/json",
               **sign_hmac(body, secret, timestamp, **names)}
    return client.post(f"/v1/webhooks/{connection}", content=body, headers=headers)


# --- generic HMAC ----------------------------------------------------------------------------


def test_signed_cloudevents_are_accepted_once(client, hub):
    events = [_event("006A", "w1"), _event("006B", "w2")]
    events[0]["correlationid"] = "corr-hook-1"
    body = orjson.dumps(events)
    first = post_signed(client, "acme", body)
    assert first.status_code == 200, first.text
    assert [r["status"] for r in first.json()["results"]] == ["accepted", "accepted"]
    again = post_signed(client, "acme", body, timestamp=NOW - 10)  # the sender's retry
    assert again.status_code == 200
    assert again.json()["duplicates"] == 2 and again.json()["accepted"] == 0
    kept = hub.payloads.for_correlation("corr-hook-1")
    assert [row["operation"] for row in kept] == ["POST /v1/webhooks/acme (cloudevents)"] * 2
    assert all("sha256=" not in row["request_headers"] for row in kept)  # signature masked


@pytest.mark.parametrize(
    ("mutate", "words"),
    [
        (lambda h, b: h.pop("X-Q2C-Signature"), "no signature header"),
        (lambda h, b: h.pop("X-Q2C-Timestamp"), "timestamp header is missing"),
        (lambda h, b: h.update({"X-Q2C-Timestamp": "yesterday"}), "not a number"),
        (lambda h, b: h.update({"X-Q2C-Signature": "md5=abc"}), "no sha256="),
        (lambda h, b: h.update({"X-Q2C-Signature": "sha256=" + "0" * 64}), "does not match"),
        (lambda h, b: h.update(sign_hmac(b, "someone-elses-secret", NOW)), "does not match"),
        (lambda h, b: h.update({"X-Q2C-Timestamp": str(NOW - 1)}), "does not match"),
    ],
)
def test_bad_signatures_are_401(client, hub, mutate, words):
    body = orjson.dumps(_event("006C", "bad"))
    headers = {"content-type": "application/json", **sign_hmac(body, HOOK, NOW)}
    mutate(headers, body)
    response = client.post("/v1/webhooks/acme", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert words in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Signature")
    assert hub.inbox is not None and client.get("/healthz").status_code == 200


def test_tampered_body_is_401(client):
    body = orjson.dumps(_event("006D", "tamper"))
    headers = {"content-type": "application/json", **sign_hmac(body, HOOK, NOW)}
    forged = body.replace(b"006D", b"006E")
    response = client.post("/v1/webhooks/acme", content=forged, headers=headers)
    assert response.status_code == 401


@pytest.mark.parametrize(("offset", "words"), [(-301, "too old"), (301, "far in the future")])
def test_replays_outside_the_tolerance_window_are_401(client, offset, words):
    body = orjson.dumps(_event("006F", "old"))
    response = post_signed(client, "acme", body, timestamp=NOW + offset)
    assert response.status_code == 401
    assert words in response.json()["detail"] and "replay" in response.json()["detail"]
    assert post_signed(client, "acme", body, timestamp=NOW - 299).status_code == 200


def test_header_names_and_tolerance_are_per_endpoint(client):
    body = orjson.dumps(_event("006G", "strict"))
    names = {"signature_header": "X-Acme-Signature", "timestamp_header": "X-Acme-Time"}
    assert post_signed(client, "acme-strict", body, timestamp=NOW - 31, **names).status_code == 401
    assert post_signed(client, "acme-strict", body, **names).status_code == 200
    assert post_signed(client, "acme-strict", body).status_code == 401  # default header names


def test_unknown_oversized_malformed_and_invalid_deliveries(client):
    assert post_signed(client, "nobody", b"{}").status_code == 404
    big = orjson.dumps({"x": "y" * (65 * 1024)})
    assert post_signed(client, "acme", big).status_code == 413
    malformed = post_signed(client, "acme", b'{"specversion": ')
    assert malformed.status_code == 400 and malformed.json()["title"] == "Malformed JSON"
    invalid = _event("006H", "inv")
    invalid["type"] = "invoice.exploded"
    response = post_signed(client, "acme", orjson.dumps(invalid))
    assert response.status_code == 422 and "unknown event type" in response.json()["detail"]
    assert post_signed(client, "acme", b"[]").status_code == 400


def test_generic_scheme_accepts_any_of_several_signatures():
    body = b'{"a": 1}'
    good = sign_hmac(body, "new-secret", NOW)["X-Q2C-Signature"]
    rolled = f"sha256={'f' * 64}, {good}"
    verify_hmac(body, signature=rolled, timestamp=str(NOW), secret="new-secret",
                tolerance_seconds=5, now=NOW)


# --- Stripe ----------------------------------------------------------------------------------


def _stripe_delivery(hub, event, *, timestamp=NOW, secret=None):
    sandbox = hub.connections.sandboxes["stripe"]
    body = orjson.dumps(sandbox.state.render(event))
    signature = sign_payload(body, secret or sandbox.webhook_secret, timestamp)
    return body, {"content-type": "application/json", "Stripe-Signature": signature}


def _finalized_invoice(hub) -> str:
    sandbox = hub.connections.sandboxes["stripe"]
    billing = hub.connections.by_system["stripe"]
    customer = sandbox.seed_customer("Acme Corp")
    invoice_id = new_draft(billing, customer, "q2c-hook-1")
    billing.add_invoice_items(customer, [line("hook-1", "1250.00")], invoice_id=invoice_id)
    billing.finalize_invoice(invoice_id)
    return invoice_id


def test_stripe_invoice_finalized_becomes_the_pollers_event(client, hub, clock):
    invoice_id = _finalized_invoice(hub)
    sandbox = hub.connections.sandboxes["stripe"]
    [event] = sandbox.events("invoice.finalized")
    body, headers = _stripe_delivery(hub, event)
    response = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.json()["received"] == "invoice.finalized"
    [receipt] = response.json()["results"]
    assert receipt == {"index": 0, "id": f"{invoice_id}:finalized",
                       "source": "urn:q2c:stripe:poller", "status": "accepted",
                       "transaction_id": receipt["transaction_id"]}
    redelivered = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert redelivered.json()["results"][0]["status"] == "duplicate"
    polled = BillingPoller(hub.db, hub.inbox, hub.connections.by_system["stripe"], now=clock)
    assert [r.status for r in polled.poll() if r.event_id.startswith(invoice_id)] == [
        "duplicate"]


def test_stripe_invoice_paid_becomes_a_payment(client, hub):
    invoice_id = _finalized_invoice(hub)
    sandbox = hub.connections.sandboxes["stripe"]
    sandbox.pay(invoice_id, out_of_band=True)
    [event] = sandbox.events("invoice.paid")
    body, headers = _stripe_delivery(hub, event)
    response = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200, response.text
    [receipt] = response.json()["results"]
    assert receipt["id"].endswith(":received") and receipt["status"] == "accepted"


def test_stripe_other_event_types_are_acknowledged_and_ignored(client, hub):
    event = {"id": "evt_other", "object": "event", "type": "customer.created",
             "data": {"object": {"id": "cus_1", "object": "customer"}}, "created": NOW}
    body = orjson.dumps(event)
    sandbox = hub.connections.sandboxes["stripe"]
    headers = {"content-type": "application/json",
               "Stripe-Signature": sign_payload(body, sandbox.webhook_secret, NOW)}
    response = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert response.status_code == 200
    assert response.json()["ignored"] is True and response.json()["results"] == []


def test_stripe_bad_signature_and_stale_delivery_are_401(client, hub):
    _finalized_invoice(hub)
    [event] = hub.connections.sandboxes["stripe"].events("invoice.finalized")
    body, headers = _stripe_delivery(hub, event, secret="whsec_not_ours")
    wrong = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert wrong.status_code == 401 and "does not match" in wrong.json()["detail"]
    body, headers = _stripe_delivery(hub, event, timestamp=NOW - 600)
    stale = client.post("/v1/webhooks/stripe", content=body, headers=headers)
    assert stale.status_code == 401 and "replay" in stale.json()["detail"]
    missing = client.post("/v1/webhooks/stripe", content=body,
                          headers={"content-type": "application/json"})
    assert missing.status_code == 401 and "Stripe-Signature" in missing.json()["detail"]
    sandbox = hub.connections.sandboxes["stripe"]
    not_json = b"not json"
    signed = {"Stripe-Signature": sign_payload(not_json, sandbox.webhook_secret, NOW)}
    assert client.post("/v1/webhooks/stripe", content=not_json,
                       headers=signed).status_code == 400
    empty = orjson.dumps({"type": "invoice.paid", "data": {}})
    signed = {"Stripe-Signature": sign_payload(empty, sandbox.webhook_secret, NOW)}
    assert client.post("/v1/webhooks/stripe", content=empty, headers=signed).status_code == 422


# --- Kantata (through a signing relay) -------------------------------------------------------


def test_kantata_change_event_becomes_the_delivery_pollers_event(client, hub, clock):
    box = hub.connections.sandboxes["kantata"]
    role = box.add_role("Senior Consultant")
    user = box.add_user("Ada Lovelace", role_id=role)
    customer = box.add_customer("Acme Corp", external_id="CUST-1")
    workspace = box.add_workspace("Acme rollout", customer_id=customer, currency="USD")
    entry = box.add_time_entry(workspace, date_performed=date(2026, 11, 20), minutes=90,
                               user_id=user)
    box.approve(time_entries=[entry])
    notice = {"id": "991", "event_type": "time_entry:updated", "subject_type": "TimeEntry",
              "subject_id": int(entry), "subject_changed_at": "2026-11-20T10:00:00Z",
              "created_at": "2026-11-20T10:00:01Z"}
    body = orjson.dumps(notice)
    unsigned = client.post("/v1/webhooks/kantata", content=body,
                           headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    response = post_signed(client, "kantata", body, secret=RELAY)
    assert response.status_code == 200, response.text
    [receipt] = response.json()["results"]
    assert receipt["status"] == "accepted"
    assert receipt["id"].startswith(f"kantata:time_entry:{entry}@")
    again = post_signed(client, "kantata", body, secret=RELAY, timestamp=NOW + 5)
    assert again.json()["results"][0]["status"] == "duplicate"
    psa = hub.connections.by_system["kantata"]
    # the poller's one-event-per-entry mode makes the very same event (batches are deduplicated
    # per entry by the intake flow instead)
    polled = DeliveryPoller(hub.db, hub.inbox, psa, hub.xref, now=clock, batch_size=None).poll()
    assert [(r.event_id, r.status) for r in polled] == [(receipt["id"], "duplicate")]
    shapeless = post_signed(client, "kantata", b'{"hello": 1}', secret=RELAY)
    assert shapeless.status_code == 422
