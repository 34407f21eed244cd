from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from q2c.connectors.http import RestClient
from q2c.errors import ValidationError
from q2c.runtime.context import bind_correlation
from q2c.runtime.payload_history import REDACTED, PayloadHistory, Redactor


def test_redactor_hides_secrets_and_configured_pii():
    redactor = Redactor(["email", "Tax_Id__c"])
    body = redactor.body(b'{"Name": "Acme", "Tax_Id__c": "DE123", "contacts": '
                         b'[{"email": "a@b.c"}], "access_token": "tok-XYZ"}')
    assert "DE123" not in body and "a@b.c" not in body and "tok-XYZ" not in body
    assert "Acme" in body and REDACTED in body
    form = redactor.body(b"grant_type=client_credentials&client_secret=s3cret&client_id=x")
    assert "s3cret" not in form and "client_id=x" in form
    assert redactor.headers({"Authorization": "Bearer x", "Accept": "json"}) == {
        "Authorization": REDACTED, "Accept": "json"}


def test_redactor_finds_keys_spelled_in_capitals_or_json_escapes():
    redactor = Redactor(["email"])
    escaped = redactor.body(b'{"user": {"\\u0065mail": "a@b.c"}}')
    assert "a@b.c" not in escaped and REDACTED in escaped
    assert "pw-1" not in redactor.body(b'{"user": {"PassWord": "pw-1"}}')
    assert redactor.body('{"EMAIL": "x@y.z", "n": [1, {"ok": true}]}') == (
        f'{{"EMAIL":"{REDACTED}","n":[1,{{"ok":true}}]}}'
    )
    # nothing to redact: the same compact JSON as a redacted body
    assert redactor.body(b'{ "id": "in_1",  "total": 1250 }') == '{"id":"in_1","total":1250}'


def test_outbound_exchange_is_kept_with_correlation_and_redacted(sqlite_db, clock):
    history = PayloadHistory(sqlite_db, now=clock, retention=timedelta(days=1),
                             redactor=Redactor(["email"]))

    def vendor(request: httpx.Request) -> httpx.Response:
        assert request.headers["X-Correlation-ID"] == "corr-1"
        return httpx.Response(400, json={"error": "bad", "email": "x@y.z"})

    client = RestClient(
        system="vendor",
        client=httpx.Client(transport=httpx.MockTransport(vendor), base_url="https://v"),
        translate_error=lambda r: ValidationError("vendor refused the record"),
        recorder=history.record_exchange,
    )
    with bind_correlation("corr-1"), pytest.raises(ValidationError) as info:
        client.request("POST", "/things", json={"email": "x@y.z", "name": "n"},
                       headers={"Authorization": "Bearer secret"})
    assert "POST https://v/things -> 400" in info.value.detail
    [row] = history.for_correlation("corr-1")
    assert row["direction"] == "outbound" and row["status"] == 400
    assert "secret" not in row["request_headers"]
    assert "x@y.z" not in row["request_body"] and "x@y.z" not in row["response_body"]
    clock.advance(86_401)
    assert history.purge_expired() == 1
    assert history.for_correlation("corr-1") == []


def test_calls_inside_a_transaction_are_kept_under_it_written_once_the_transaction_moves_on(
    sqlite_db, clock
):
    from q2c.runtime.context import current_transaction_id
    from q2c.store.schema import payloads

    history = PayloadHistory(sqlite_db, now=clock, transaction_id=current_transaction_id)
    client = RestClient(
        system="vendor",
        client=httpx.Client(
            transport=httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True})),
            base_url="https://v",
        ),
        translate_error=lambda r: ValidationError("refused"),
        recorder=history.record_exchange,
    )

    def stored() -> list[tuple[str, str]]:
        with sqlite_db.connect() as connection:
            return [(r.transaction_id, r.operation) for r in connection.execute(
                payloads.select().order_by(payloads.c.id))]

    with bind_correlation("corr-a", transaction_id="tx-a"):
        client.request("GET", "/one")
        client.request("GET", "/two")
    assert stored() == []  # buffered: one commit for the transaction's calls, not one each
    with bind_correlation("corr-b", transaction_id="tx-b"):
        client.request("GET", "/three")
    assert stored() == [("tx-a", "GET https://v/one"), ("tx-a", "GET https://v/two")]
    assert [r["operation"] for r in history.for_correlation("corr-b")] == ["GET https://v/three"]
    assert history.flush() == 0
